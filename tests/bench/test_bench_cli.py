"""``medimeta benchmark`` and ``medimeta embed`` through typer's test runner."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from safetensors.numpy import load_file
from typer.testing import CliRunner

from medimeta.cli.bench import benchmark_command, embed_command
from medimeta.errors import OptionError
from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.runs.record import read_run, read_runs

app = typer.Typer()
app.command("benchmark")(benchmark_command)
app.command("embed")(embed_command)
RUNNER = CliRunner()

MODULE = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=4)

    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3))


def factory():
    torch.manual_seed(0)
    return Net()
"""


def _ok(args: list[str]) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        result = RUNNER.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _bench(root: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "benchmark",
        "--root",
        str(root),
        "--targets",
        "target:Malignancy",
        "--methods",
        "linear-probe,knn",
        "--backbones",
        "tiny_cnn",
        "--shots",
        "2",
        "--query",
        "2",
        "--episodes",
        "3",
        "--image-size",
        "16",
        "--steps",
        "5",
        "--out",
        str(out),
        "--cache",
        str(cache),
        "--quiet",
        *extra,
    ]


def test_embed_fills_the_cache_the_benchmark_reads(bench_root: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    out = _ok(
        [
            "embed",
            "target:Malignancy",
            "--root",
            str(bench_root),
            "--backbone",
            "tiny_cnn",
            "--image-size",
            "16",
            "--cache",
            str(cache),
            "--out",
            str(tmp_path / "f.safetensors"),
            "--quiet",
        ]
    )
    assert "36 samples x 16 features of tiny_cnn: 0 from the cache, 36 computed" in out
    exported = load_file(str(tmp_path / "f.safetensors"))
    made = read_run(tmp_path / "f.safetensors")  # the embedding record beside the export
    assert made.kind == "embedding" and made.backbone == "tiny_cnn"
    assert made.protocol["export"]["file"] == str(tmp_path / "f.safetensors")
    assert exported["features"].shape == (36, 16) and exported["labels"].shape == (36,)
    again = _ok(
        [
            "embed",
            "target",
            "--root",
            str(bench_root),
            "--backbone",
            "tiny_cnn",
            "--image-size",
            "16",
            "--cache",
            str(cache),
            "--quiet",
        ]
    )
    assert "36 from the cache, 0 computed" in again
    _ok(_bench(bench_root, tmp_path / "b", cache))
    results = read_runs([tmp_path / "b" / "cells"])
    assert len(results) == 2
    for record in results:
        assert record.details["stage"]["features"]["computed"] == 0
    assert "| ImageNet (kNN) | tiny_cnn |" in (tmp_path / "b" / "results.md").read_text()


def test_benchmark_dry_run_and_budget(bench_root: Path, tmp_path: Path) -> None:
    out = _ok(_bench(bench_root, tmp_path / "d", tmp_path / "c", "--dry-run"))
    assert "dry run: plan written to" in out
    assert not (tmp_path / "d" / "cells").exists()
    with pytest.raises(OptionError, match="over the budget"):
        RUNNER.invoke(
            app,
            _bench(bench_root, tmp_path / "d", tmp_path / "c", "--budget", "0.001s"),
            catch_exceptions=False,
        )


def test_embed_your_own_module_and_weights(bench_root: Path, tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(MODULE)
    spec = f"{tmp_path / 'mine.py'}:factory"
    cache = tmp_path / "cache"
    base = [
        "embed",
        "target",
        "--root",
        str(bench_root),
        "--module",
        spec,
        "--image-size",
        "16",
        "--cache",
        str(cache),
        "--quiet",
    ]
    first = _ok([*base, "--out", str(tmp_path / "a.h5")])
    assert "36 samples x 4 features of module:mine.py:factory" in first
    torch.manual_seed(1)
    other = torch.nn.Conv2d(3, 4, 3, stride=4)
    torch.save({"conv.weight": other.weight, "conv.bias": other.bias}, tmp_path / "w.pth")
    second = _ok([*base, "--weights", str(tmp_path / "w.pth"), "--out", str(tmp_path / "b.h5")])
    assert "0 from the cache, 36 computed" in second  # other weights: another key
    assert len(list((cache / "features").glob("*/key.json"))) == 2  # two models, two stores
    import h5py

    with h5py.File(tmp_path / "a.h5") as fa, h5py.File(tmp_path / "b.h5") as fb:
        assert not np.allclose(fa["features"][...], fb["features"][...])
