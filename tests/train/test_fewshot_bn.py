"""The fine-tuning BatchNorm policy: frozen keeps the running statistics, train updates them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch

from medimeta.models import create_backbone
from medimeta.train.fewshot.config import FewShotConfig
from medimeta.train.fewshot.methods.finetune import finetune_episode


def _episode() -> Any:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(12, 3, 32, 32, generator=g) * 3 + 1  # far from ImageNet statistics
    y = torch.tensor([0, 1, 2] * 4)
    return SimpleNamespace(  # the fields finetune_episode reads of EpisodeTensors
        support_x=x[:6], support_y=y[:6], query_x=x[6:], query_y=y[6:],
        target="MULTICLASS_CLASSIFICATION", n_way=3,
    )  # fmt: skip


def test_frozen_batchnorm_changes_the_scores_and_keeps_the_template() -> None:
    template = create_backbone("resnet18_cifar", pretrained=False)
    before = {k: v.clone() for k, v in template.state_dict().items()}
    ep = _episode()
    base = FewShotConfig(
        method="im-pt", backbone="resnet18_cifar", finetune_steps=3, finetune_lr=1e-2
    )
    s_train, _ = finetune_episode(template, ep, base, seed=0)
    s_frozen, _ = finetune_episode(template, ep, base.with_overrides(finetune_bn="frozen"), seed=0)
    assert s_train.shape == s_frozen.shape == (6, 3)
    assert not torch.allclose(torch.from_numpy(s_train), torch.from_numpy(s_frozen))
    after = template.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # a copy is fine-tuned


def test_the_default_policy_leaves_the_run_hash_fields_unchanged() -> None:
    assert "finetune_bn" not in FewShotConfig(method="im-pt").relevant()
    assert FewShotConfig(method="mm-pt", finetune_bn="frozen").relevant()["finetune_bn"] == "frozen"
