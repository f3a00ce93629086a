"""LoRA and VPT on hf: backbones (tiny random models): which families take them, the adapted
model starts as the original (LoRA) and pools as before, training moves only the adapters, and
the share of trained parameters of a ViT-B-shaped model."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from medimeta.errors import OptionError
from medimeta.models import create_backbone
from medimeta.models.hf.adapters import add_lora, add_prompts, lora_targets, token_tower
from models.hf_helpers import save_tiny

EXPECTED = {  # family: (LoRA, VPT)
    "vit": (True, True),
    "deit": (True, True),
    "dinov2": (True, True),
    "clip": (True, True),
    "beit": (True, False),
    "siglip": (True, False),
    "swin": (True, False),
    "resnet": (False, False),
}


@pytest.fixture(scope="module")
def backbones(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("adapters")
    out = {}
    for family in EXPECTED:
        save_tiny(family, root / family)
        out[family] = create_backbone(f"hf:{root / family}", pretrained=True).eval()
    return out


def _frozen_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items() if "lora_" not in k}


@pytest.mark.parametrize("family", list(EXPECTED))
def test_adapters_train_only_themselves(family: str, backbones: dict[str, object]) -> None:
    template = backbones[family]
    lora_ok, vpt_ok = EXPECTED[family]
    assert (lora_targets(template) is not None) == lora_ok  # type: ignore[arg-type]
    assert (token_tower(template) is not None) == vpt_ok  # type: ignore[arg-type]
    x = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = template(x)  # type: ignore[operator]
    adders = []
    if lora_ok:
        adders.append(lambda b: add_lora(b, rank=4, alpha=8, dropout=0.0))
    if vpt_ok:
        adders += [lambda b, d=d: add_prompts(b, tokens=3, deep=d) for d in (False, True)]
    for add in adders:
        model = copy.deepcopy(template)
        base = _frozen_state(model)  # type: ignore[arg-type]
        params = add(model)
        trained = {id(p) for p in params}
        assert all(p.requires_grad == (id(p) in trained) for p in model.parameters())  # type: ignore[attr-defined]
        start = [p.detach().clone() for p in params]
        optimizer = torch.optim.Adam(params, lr=1e-2)
        for _ in range(3):
            loss = model(x).pow(2).mean()  # type: ignore[operator]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        assert any(not torch.equal(a, p) for a, p in zip(start, params, strict=True))
        after = {k: v for k, v in _frozen_state(model).items() if k in base}  # type: ignore[arg-type]
        assert all(torch.equal(base[k], v) for k, v in after.items())
        with torch.no_grad():
            assert model(x).shape == before.shape  # type: ignore[operator]
            assert not torch.allclose(model(x), before)  # type: ignore[operator]
    if lora_ok:  # B starts at zero: the adapted model is the original until trained
        model = copy.deepcopy(template)
        add_lora(model, rank=4, alpha=8, dropout=0.0)  # type: ignore[arg-type]
        with torch.no_grad():
            assert torch.allclose(model(x), before, atol=1e-6)  # type: ignore[operator]
    if not lora_ok:
        with pytest.raises(OptionError, match="no linear layers named"):
            add_lora(copy.deepcopy(template), rank=4, alpha=8, dropout=0.0)  # type: ignore[arg-type]
    if not vpt_ok:
        with pytest.raises(OptionError, match="class-token transformer"):
            add_prompts(copy.deepcopy(template), tokens=3, deep=True)  # type: ignore[arg-type]


def test_lora_and_vpt_train_under_five_percent_of_a_vit_b(tmp_path: Path) -> None:
    from transformers import ViTConfig, ViTImageProcessor

    from medimeta.train.fewshot import FewShotConfig
    from medimeta.train.fewshot.methods.finetune import trainable_parameters
    from medimeta.train.fewshot.methods.lora import _adapt as lora
    from medimeta.train.fewshot.methods.vpt import _adapt as vpt

    ViTConfig().save_pretrained(tmp_path)  # ViT-B/16: 768 wide, 12 layers (config only)
    ViTImageProcessor().save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["hidden_size"] == 768
    vit_b = create_backbone(f"hf:{tmp_path}", pretrained=False)
    total = sum(p.numel() for p in vit_b.parameters())
    assert 85e6 < total < 87e6
    for method, adapt, expected in (
        ("lora", lora, 12 * 2 * (768 * 8 * 2)),  # rank 8 on q and v of 12 layers
        ("vpt", vpt, 12 * 10 * 768),  # 10 deep prompt tokens per layer
    ):
        cfg = FewShotConfig(method=method, backbone=f"hf:{tmp_path}")
        facts = trainable_parameters(vit_b, cfg, adapt)
        assert facts["backbone_parameters"] == total
        assert facts["trained_parameters"] == expected
        assert facts["trained_share"] < 0.05
    full = trainable_parameters(vit_b, FewShotConfig(method="finetune"))
    assert full["trained_share"] == 1.0
