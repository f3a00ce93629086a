"""Few-shot methods: prototypes, MAML (weights preserved, exact second-order gradient), runner."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from medimeta.data.distributed import DistEnv
from medimeta.data.pixels import Normalizer
from medimeta.episodes import EpisodeSampler, EpisodeSet
from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.evaluate.predictions import read_predictions, score_predictions
from medimeta.features.reader import EpisodeReader
from medimeta.models import make_loss
from medimeta.models.backbone import Backbone
from medimeta.models.build import build_backbone
from medimeta.runs.record import read_run
from medimeta.train.fewshot import EpisodePlan, FewShotConfig, RunSettings, run_fewshot
from medimeta.train.fewshot.methods.mm_maml import EpisodeNet, adapt, maml_episode, meta_train
from medimeta.train.fewshot.methods.protonet import pairwise_distance, prototype_scores

TINY = {"backbone": "tiny_cnn", "pretrained": False, "image_size": 16}


class BNNet(Backbone):
    """A backbone with BatchNorm, so buffers are part of what must stay untouched."""

    def __init__(self) -> None:
        from medimeta.models.small import RANDOM_INIT as _RANDOM_INIT

        super().__init__(num_features=6, in_chans=3, pretrained_cfg=_RANDOM_INIT)
        self.conv = nn.Conv2d(3, 6, 3, stride=2)
        self.bn = nn.BatchNorm2d(6)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))


def _reader() -> EpisodeReader:
    return EpisodeReader(
        image_size=16, normalizer=Normalizer((0.5,), (0.5,)), device=torch.device("cpu")
    )


def _episodes(root: Path, task: str = "case category", n: int = 3) -> list:
    sampler = EpisodeSampler.from_root(root, f"target:{task}", None, shots=2, queries=3, seed=0)
    return [sampler[i] for i in range(n)]


def test_prototype_scores_by_hand() -> None:
    support = torch.tensor([[0.0, 0.0], [0.0, 2.0], [4.0, 0.0], [4.0, 2.0]])
    labels = torch.tensor([0, 0, 1, 1])
    query = torch.tensor([[1.0, 1.0]])
    scores = prototype_scores(
        support, labels, query, "MULTICLASS_CLASSIFICATION", 2, "squared_euclidean"
    )
    expected = torch.softmax(torch.tensor([[-1.0, -9.0]]), dim=1)
    torch.testing.assert_close(scores, expected)
    binary = prototype_scores(support, labels, query, "BINARY_CLASSIFICATION", 2, "euclidean")
    torch.testing.assert_close(binary, torch.softmax(torch.tensor([-1.0, -3.0]), 0)[1:].view(1, 1))
    multi = prototype_scores(
        support,
        torch.tensor([[1], [1], [0], [0]]),
        query,
        "MULTILABEL_CLASSIFICATION",
        1,
        "squared_euclidean",
    )
    torch.testing.assert_close(multi, torch.sigmoid(torch.tensor([[9.0 - 1.0]])))


def test_cosine_distance_is_pairwise() -> None:
    a, b = torch.randn(5, 3), torch.randn(4, 3)
    d = pairwise_distance(a, b, "cosine")
    manual = torch.tensor([[1 - float(torch.cosine_similarity(x, y, dim=0)) for y in b] for x in a])
    assert d.shape == (5, 4)
    torch.testing.assert_close(d, manual, atol=1e-6, rtol=0)


def test_maml_evaluation_leaves_meta_weights_bit_identical(fewshot_root: Path) -> None:
    torch.manual_seed(0)
    backbone = BNNet()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    reader = _reader()
    cfg = FewShotConfig(method="mm-maml", eval_inner_steps=5, eval_inner_lr=0.5)
    episodes = [reader.load(ep) for ep in _episodes(fewshot_root)]
    first, _ = maml_episode(backbone, episodes[0], cfg, seed=0)
    for ep in episodes[1:]:
        maml_episode(backbone, ep, cfg, seed=0)
    after = backbone.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key  # parameters and BatchNorm buffers
    again, _ = maml_episode(backbone, episodes[0], cfg, seed=0)
    assert np.array_equal(first, again)  # every episode starts from the same weights
    assert not np.allclose(first, 1.0 / 3.0)  # adaptation moved away from the zero head


def test_second_order_meta_gradient_matches_autograd_and_differs_from_first_order() -> None:
    torch.manual_seed(0)
    backbone = BNNet()
    net = EpisodeNet(backbone, nn.Linear(6, 3))
    nn.init.zeros_(net.head.weight)
    nn.init.zeros_(net.head.bias)
    loss_fn = make_loss("MULTICLASS_CLASSIFICATION")
    sx, sy = torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    qx, qy = torch.randn(6, 3, 8, 8), torch.tensor([2, 1, 0, 0, 1, 2])
    buffers = {k: v.clone() for k, v in net.named_buffers()}

    def meta_grad(order: str) -> list[torch.Tensor]:
        params = dict(net.named_parameters())
        b = {k: v.clone() for k, v in buffers.items()}
        adapted = adapt(net, params, b, sx, sy, loss_fn, steps=2, lr=0.3, order=order)
        loss = loss_fn(functional_call(net, (adapted, b), (qx,)), qy)
        return list(torch.autograd.grad(loss, list(backbone.parameters())))

    # reference: plain autograd with create_graph=True
    params = dict(net.named_parameters())
    b = {k: v.clone() for k, v in buffers.items()}
    for _ in range(2):
        loss = loss_fn(functional_call(net, (params, b), (sx,)), sy)
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        params = {k: p - 0.3 * g for (k, p), g in zip(params.items(), grads, strict=True)}
    loss = loss_fn(functional_call(net, (params, b), (qx,)), qy)
    reference = torch.autograd.grad(loss, list(backbone.parameters()))
    second, first = meta_grad("second"), meta_grad("first")
    for got, want in zip(second, reference, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    assert any(not torch.allclose(s, f, atol=1e-7) for s, f in zip(second, first, strict=True))


def test_meta_training_updates_the_backbone_reproducibly(fewshot_root: Path) -> None:
    episodes = _episodes(fewshot_root, n=4)
    cfg = FewShotConfig(
        method="mm-maml", meta_steps=2, meta_batch_size=2, inner_steps=1, first_order=True, **TINY
    )
    states = []
    for _ in range(2):
        backbone = build_backbone("tiny_cnn", seed=0)
        start = {k: v.clone() for k, v in backbone.state_dict().items()}
        record = meta_train(backbone, episodes, _reader(), cfg)
        states.append(backbone.state_dict())
        assert len(record["query_loss_curve"]) == 2
        assert any(not torch.equal(start[k], v) for k, v in backbone.state_dict().items())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def _run(
    root: Path,
    out: Path,
    method: str,
    target: str = "target:case category",
    *,
    episodes_file: Path | None = None,
    limit: int | None = None,
    env: DistEnv | None = None,
):
    cfg = FewShotConfig(method=method, **TINY).with_overrides(
        finetune_steps=3,
        probe_steps=5,
        pretrain_steps=3,
        pretrain_batch_size=8,
        meta_steps=2,
        inner_steps=1,
        eval_inner_steps=2,
    )
    plan = EpisodePlan(file=episodes_file, shots=2, queries=3, episodes=4, limit=limit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return run_fewshot(
            root,
            None if episodes_file else target,
            cfg,
            episodes=plan,
            run=RunSettings(out_dir=out),
            env=env,
        )


def test_runner_writes_results_rescoreable_predictions_and_resumes(
    fewshot_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "probe"
    record = _run(fewshot_root, out, "linear-probe")
    assert record is not None and record == read_run(out)
    episodes = record.protocol["episodes"]
    assert episodes["evaluated"] == 4 and episodes["in_file"] == 4
    assert episodes["settings"]["shots"] == 2 and record.shots == 2
    assert len(episodes["fingerprint"]) == 64
    assert (out / "results.md").read_text().startswith("# Few-shot: linear-probe")
    assert "| ImageNet (linear probe) | tiny_cnn |" in (out / "results.md").read_text()
    rescored = score_predictions(read_predictions(out / "predictions_query.csv"))

    def nan(metrics: dict) -> dict:  # the record stores an undefined metric as null
        return {k: float("nan") if v is None else v for k, v in metrics.items()}

    for again_, recorded in zip(rescored["episodes"], record.per_episode, strict=True):
        assert again_["metrics"] == pytest.approx(nan(recorded["metrics"]), nan_ok=True)
    assert rescored["summary"]["auroc"]["mean"] == pytest.approx(record.summary["auroc"]["mean"])
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "episodes").iterdir()}
    again = _run(fewshot_root, out, "linear-probe")
    assert {p.name: p.stat().st_mtime_ns for p in (out / "episodes").iterdir()} == stamps
    assert again is not None and again.summary == record.summary
    # the same episode file drives another method and a limited run
    other = _run(
        fewshot_root, tmp_path / "proto", "protonet", episodes_file=out / "episodes.json", limit=2
    )
    assert other is not None
    assert other.protocol["episodes"]["file_sha256"] == episodes["file_sha256"]
    assert other.protocol["episodes"]["indices"] == [0, 1]


def test_episodes_shared_over_two_ranks_give_the_single_process_result(
    fewshot_root: Path, tmp_path: Path
) -> None:
    single = _run(fewshot_root, tmp_path / "single", "im-pt")
    file = tmp_path / "single" / "episodes.json"
    shared = tmp_path / "shared"
    assert _run(fewshot_root, shared, "im-pt", episodes_file=file, env=DistEnv(1, 2)) is None
    assert len(list((shared / "episodes").iterdir())) == 2  # positions 1 and 3
    merged = _run(fewshot_root, shared, "im-pt", episodes_file=file, env=DistEnv(0, 2))
    assert merged is not None and single is not None
    assert [e["metrics"] for e in merged.per_episode] == [e["metrics"] for e in single.per_episode]
    ranks = {json.loads(p.read_text())["rank"] for p in (shared / "episodes").iterdir()}
    assert ranks == {0, 1}


@pytest.mark.filterwarnings("ignore::medimeta.episodes.SmallClassWarning")
@pytest.mark.parametrize(
    ("method", "task"),
    [("mm-pt", "Malignancy"), ("mm-maml", "finding labels"), ("protonet", "DR level")],
)
def test_methods_with_source_training_run_on_every_target(
    fewshot_root: Path, tmp_path: Path, method: str, task: str
) -> None:
    record = _run(fewshot_root, tmp_path, method, f"target:{task}")
    assert record is not None and record.target is not None
    assert record.target.task == task and len(record.per_episode) == 4
    assert np.isfinite(record.summary["auroc"]["mean"])
    if method != "protonet":
        assert record.details["stage"]["sources"] == ["source:case category"]
        assert record.details["stage"]["excluded"] == {"target": "target"}
        assert (tmp_path / f"{method.replace('-', '_')}_backbone.safetensors").is_file()


def test_episode_file_of_another_task_is_refused(fewshot_root: Path, tmp_path: Path) -> None:
    from medimeta.errors import EpisodeError

    sampler = EpisodeSampler.from_root(
        fewshot_root, "target:Malignancy", None, shots=2, queries=3, seed=0, num_episodes=2
    )
    path = sampler.sample().save(tmp_path / "e.json")
    assert len(EpisodeSet.load(path)) == 2
    with pytest.raises(EpisodeError, match="not 'target:case category'"):
        run_fewshot(
            fewshot_root,
            "target:case category",
            FewShotConfig(**TINY),
            episodes=path,
            run=RunSettings(out_dir=tmp_path / "o"),
        )
