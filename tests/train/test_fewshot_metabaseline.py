"""Meta-Baseline: cosine-centroid scores by hand, the meta stage, the CLI run with its
protocol, resuming without the stage, the feature cache, other methods' run hashes."""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from medimeta.data.pixels import Normalizer
from medimeta.episodes import EpisodeSampler
from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.features.cache import FeatureCache
from medimeta.features.reader import EpisodeReader
from medimeta.models.build import build_backbone
from medimeta.runs.record import read_run
from medimeta.train.fewshot import EpisodePlan, FewShotConfig, RunSettings, run_fewshot
from medimeta.train.fewshot.centroids import centroid_scores
from medimeta.train.fewshot.methods.meta_baseline import meta_finetune, query_loss

TINY = {"backbone": "tiny_cnn", "pretrained": False, "image_size": 16}


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


def _softmax(values: list[float]) -> list[float]:
    top = max(values)
    e = [math.exp(v - top) for v in values]
    return [v / sum(e) for v in e]


def test_cosine_centroid_scores_by_hand() -> None:
    support = torch.tensor(
        [[1.0, 0.0], [3.0, 1.0], [0.0, 2.0], [1.0, 3.0], [-2.0, -1.0], [-1.0, -1.0]],
        dtype=torch.float64,
    )
    query = torch.tensor([[2.0, 1.0], [-1.0, 2.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    tau = 7.0
    cents = [[2.0, 0.5], [0.5, 2.5], [-1.5, -1.0]]  # class means
    got = centroid_scores(support, labels, query, "MULTICLASS_CLASSIFICATION", 3, tau)
    want = [_softmax([tau * _cos(q, c) for c in cents]) for q in query.tolist()]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    # binary: the class-1 column of the two-class softmax
    binary = centroid_scores(
        support[:4], torch.tensor([0, 0, 1, 1]), query, "BINARY_CLASSIFICATION", 2, tau
    )
    want_b = [[_softmax([tau * _cos(q, cents[0]), tau * _cos(q, cents[1])])[1]] for q in query]
    np.testing.assert_allclose(binary.numpy(), want_b, rtol=1e-12)
    # multi-label: per label sigmoid(tau * (cos to positives' mean - cos to negatives' mean))
    multi_y = torch.tensor([[1, 0], [1, 1], [0, 1], [0, 0], [0, 1], [1, 0]])
    multi = centroid_scores(support, multi_y, query, "MULTILABEL_CLASSIFICATION", 2, tau)
    rows = support.tolist()
    want_m = []
    for q in query.tolist():
        row = []
        for c in range(2):
            pos = [r for r, y in zip(rows, multi_y[:, c].tolist(), strict=True) if y == 1]
            neg = [r for r, y in zip(rows, multi_y[:, c].tolist(), strict=True) if y == 0]
            mp = [sum(v) / len(pos) for v in zip(*pos, strict=True)]
            mn = [sum(v) / len(neg) for v in zip(*neg, strict=True)]
            row.append(1 / (1 + math.exp(-tau * (_cos(q, mp) - _cos(q, mn)))))
        want_m.append(row)
    np.testing.assert_allclose(multi.numpy(), want_m, rtol=1e-12)
    # the centroid is the mean of the raw features, normalised after averaging
    assert not np.allclose(want[0], _softmax([tau * _cos(query[0].tolist(), [1.0, 0.2])] * 3))


def test_meta_stage_lowers_the_query_loss_and_learns_tau(fewshot_root: Path) -> None:
    sampler = EpisodeSampler.from_root(
        fewshot_root, "source:case category", "train", shots=3, queries=4, seed=0
    )
    reader = EpisodeReader(
        image_size=16, normalizer=Normalizer((0.5,), (0.5,)), device=torch.device("cpu")
    )
    held = [reader.load(sampler[1000 + i]) for i in range(4)]
    backbone = build_backbone("tiny_cnn", in_chans=1, seed=0)
    cfg = FewShotConfig(method="meta-baseline", meta_steps=25, mb_lr=0.05, **TINY)

    def loss() -> float:
        backbone.eval()
        with torch.no_grad():
            return float(
                np.mean([float(query_loss(backbone, ep, torch.tensor(10.0))) for ep in held])
            )

    before = loss()
    record = meta_finetune(backbone, sampler, reader, cfg)
    assert len(record["query_loss_curve"]) == 25 and len(record["tau_curve"]) == 25
    assert record["tau_init"] == 10.0 and record["tau"] != 10.0
    assert loss() < 0.8 * before  # held-out source episodes, at the initial tau
    assert np.mean(record["query_loss_curve"][-5:]) < np.mean(record["query_loss_curve"][:5])


def _cli(root: Path, out: Path, *extra: str) -> str:
    from medimeta.cli.train import fewshot_command

    app = typer.Typer()
    app.command()(fewshot_command)
    args = ["--root", str(root), "--target", "target:case category", "--method"]
    args += ["meta-baseline", "--backbone", "tiny_cnn", "--pretrained", "none"]
    args += ["--image-size", "16", "--shots", "2", "--query", "3", "--episodes", "3"]
    args += ["--pretrain-steps", "3", "--meta-steps", "2", "--out", str(out), *extra]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_run_records_the_protocol_and_resumes_without_the_stage(
    fewshot_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "mb"
    said = _cli(fewshot_root, out, "--no-cache")
    assert "meta-baseline: classifier pre-training on 1 source tasks" in said
    assert "| Meta-Baseline | tiny_cnn |" in said
    record = read_run(out)
    assert record.method == "meta-baseline" and record.paper_name == "Meta-Baseline"
    c = record.settings
    assert (c["pretrain_steps"], c["meta_steps"], c["meta_shots"], c["meta_queries"]) == (
        3,
        2,
        5,
        10,
    )
    assert (c["mb_lr"], c["mb_momentum"], c["mb_weight_decay"], c["mb_tau"]) == (
        1e-3,
        0.9,
        5e-4,
        10.0,
    )
    assert "finetune_steps" not in c and "inner_lr" not in c
    stage = record.details["stage"]
    assert stage["sources"] == ["source:case category"]
    assert stage["excluded"] == {"target": "target"}
    assert stage["tau"] == stage["stage"]["tau"] and stage["tau"] != 10.0
    assert stage["stage"]["pretrain_steps"] == 3 and stage["stage"]["meta_steps"] == 2
    assert np.isfinite(record.summary["auroc"]["mean"]) and len(record.per_episode) == 3
    files = [
        out / "meta_baseline_backbone.safetensors",
        out / "meta_baseline_classifier.safetensors",
    ]
    files += sorted((out / "episodes").iterdir())
    stamps = {p: p.stat().st_mtime_ns for p in files}
    again = _cli(fewshot_root, out, "--no-cache")
    assert "pre-training" not in again and "meta stage" not in again
    assert {p: p.stat().st_mtime_ns for p in files} == stamps
    assert read_run(out).summary == record.summary
    # other meta settings: a new meta stage from the saved classifier pre-training
    other = _cli(fewshot_root, out, "--no-cache", "--meta-steps", "3", "-v")
    assert "classifier pre-training of meta_baseline_classifier.safetensors reused" in other
    assert "meta-baseline meta step 3/3" in other
    redone = read_run(out)
    assert redone.details["stage"]["stage"]["meta_steps"] == 3
    assert redone.protocol["run"] != record.protocol["run"]


@pytest.mark.filterwarnings("ignore::medimeta.episodes.SmallClassWarning")
@pytest.mark.parametrize("task", ["Malignancy", "finding labels"])
def test_feature_cache_gives_the_per_episode_numbers(
    fewshot_root: Path, tmp_path: Path, task: str
) -> None:
    cfg = FewShotConfig(method="meta-baseline", pretrain_steps=2, meta_steps=1, **TINY)
    runs = {}
    for name, features in (("plain", None), ("cached", FeatureCache(tmp_path / "cache"))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            record = run_fewshot(
                fewshot_root,
                f"target:{task}",
                cfg,
                episodes=EpisodePlan(shots=2, queries=3, episodes=3),
                run=RunSettings(out_dir=tmp_path / name),
                features=features,
            )
            assert record is not None
            runs[name] = record
    plain, cached = runs["plain"], runs["cached"]
    assert cached.details["stage"]["features"]["computed"] > 0  # the trained backbone's
    assert plain.details["stage"]["tau"] == cached.details["stage"]["tau"]
    for a, b in zip(plain.per_episode, cached.per_episode, strict=True):
        assert a["metrics"] == pytest.approx(b["metrics"], abs=1e-6)


#: sha256 prefixes of ``json.dumps(FewShotConfig(method=m).relevant(), sort_keys=True)``
#: before meta-baseline was added: the run hashes of finished runs must hold.
OTHER_METHODS = {
    "im-pt": "3fdc5f89061e36ba",
    "mm-pt": "bfb4b3252f0d19c0",
    "mm-maml": "4abf91cfc6d5fa95",
    "protonet": "0a76ebde672a2ebe",
    "linear-probe": "c6534e6bf67e0e3e",
    "knn": "564cc0145ac79b9e",
}


@pytest.mark.parametrize(("method", "prefix"), sorted(OTHER_METHODS.items()))
def test_settings_of_the_other_methods_are_unchanged(method: str, prefix: str) -> None:
    relevant = FewShotConfig(method=method).relevant()
    assert not any(k.startswith("mb_") for k in relevant)
    digest = hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()
    assert digest[:16] == prefix


def test_pre_training_is_mm_pt_s(fewshot_root: Path, tmp_path: Path) -> None:
    from medimeta.train.checkpoint import load_checkpoint

    states = {}
    for method, extra in (("mm-pt", {"finetune_steps": 1}), ("meta-baseline", {"meta_steps": 0})):
        cfg = FewShotConfig(method=method, pretrain_steps=2, pretrain_batch_size=8, **TINY, **extra)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            record = run_fewshot(
                fewshot_root, "target:case category", cfg,
                episodes=EpisodePlan(shots=2, queries=3, episodes=1),
                run=RunSettings(out_dir=tmp_path / method),
            )  # fmt: skip
            assert record is not None
        backbone = build_backbone("tiny_cnn")
        name = "mm_pt_backbone" if method == "mm-pt" else "meta_baseline_classifier"
        load_checkpoint(tmp_path / method / f"{name}.safetensors", backbone)
        states[method] = backbone.state_dict()
    assert record.details["stage"]["tau"] == 10.0  # no meta step: the initial temperature
    assert all(torch.equal(v, states["meta-baseline"][k]) for k, v in states["mm-pt"].items())
