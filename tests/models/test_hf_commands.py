"""hf: backbones through the commands, on real BUSI images (``bus`` built from
``$MEDIMETA_REALDATA/busi-256``; skipped when it is absent).

* ``medimeta embed bus --backbone hf:FOLDER --out F.safetensors`` for a tiny random DINOv2 and
  a tiny random CLIP saved with ``save_pretrained`` and their image processor: the exported
  features equal transformers' slow processor + the model's own forward on the same images,
  for the documented default pooling (relative error <= 1e-3 required; measured 0);
* ``--pool`` and ``@pool=`` give another cache entry and the other pooling;
* ``fewshot --method linear-probe --backbone hf:FOLDER`` on real BUSI episodes, ``train`` and
  ``benchmark`` with an hf: backbone: they run and record the model, its pooling and
  preprocessing.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.numpy import load_file

from medimeta.cli.app import main
from medimeta.runs.record import read_run
from models.hf_helpers import relative_error, save_tiny

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def bus_root(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medimeta.builders import build_dataset

    root = tmp_path_factory.mktemp("hf-commands")
    build_dataset("bus", realdata / "busi-256", root=root, workers=1)
    return root


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, object]]:
    base = tmp_path_factory.mktemp("hf-models")
    out = {}
    for family in ("dinov2", "clip"):
        _, reference = save_tiny(family, base / family, seed=5)
        out[family] = (base / family, reference)
    return out


def _invoke(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def _reference(folder: Path, reference: object, root: Path, rows: np.ndarray) -> torch.Tensor:
    """transformers' slow processor + the model's own forward on the stored images."""
    from transformers import AutoImageProcessor

    from medimeta.episodes import EpisodeLoader

    proc = AutoImageProcessor.from_pretrained(folder, use_fast=False)
    images = EpisodeLoader(dtype="uint8").images(root / "bus", rows).numpy()
    out = []
    for start in range(0, len(images), 64):
        pil = [Image.fromarray(im[0]).convert("RGB") for im in images[start : start + 64]]
        pixels = proc(images=pil, return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            out.append(reference(pixels))  # type: ignore[operator]
    return torch.cat(out)


@pytest.mark.parametrize(("family", "pool"), [("dinov2", "cls+mean"), ("clip", "projected")])
def test_embed_exports_the_models_own_features(
    family: str,
    pool: str,
    bus_root: Path,
    models: dict[str, tuple[Path, object]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, reference = models[family]
    out_file = tmp_path / "features.safetensors"
    args = ["embed", "bus", "--root", str(bus_root), "--backbone", f"hf:{folder}"]
    _invoke([*args, "--out", str(out_file), "--cache", str(tmp_path / "cache"), "-q"], capsys)
    exported = load_file(str(out_file))
    rows = exported["indices"]
    assert rows.size == 780
    expected = _reference(folder, reference, bus_root, rows)
    err = relative_error(torch.from_numpy(exported["features"]), expected)
    assert err <= 1e-3, err
    record = read_run(out_file)
    assert record.protocol["pooling"] == pool
    assert record.protocol["preprocessing"]["path"] == "model preprocessing"
    assert record.protocol["model"]["family"] == family
    # another pooling: another cache entry, the other features
    again = _invoke([*args, "--pool", "mean", "--cache", str(tmp_path / "cache")], capsys)
    assert "780 computed" in again and f"hf:{folder}@pool=mean" in again


def test_fewshot_linear_probe_on_busi_episodes(
    bus_root: Path,
    models: dict[str, tuple[Path, object]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, _ = models["dinov2"]
    out = tmp_path / "fewshot"
    args = ["fewshot", "--root", str(bus_root), "--target", "bus:case category"]
    args += ["--method", "linear-probe", "--backbone", f"hf:{folder}", "--shots", "3"]
    args += ["--query", "4", "--episodes", "3", "--steps", "5", "--out", str(out)]
    text = _invoke([*args, "--cache", str(tmp_path / "cache"), "-q"], capsys)
    assert "auroc" in text.lower()
    blob = json.dumps(read_run(out).to_dict(), default=str)
    assert '"pooling": "cls+mean"' in blob and '"family": "dinov2"' in blob
    assert str(folder) in blob and "BitImageProcessor" in blob


def test_train_and_benchmark_take_hf_backbones(
    bus_root: Path,
    models: dict[str, tuple[Path, object]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, _ = models["clip"]
    out = tmp_path / "train"
    args = ["train", "bus", "case category", "--root", str(bus_root), "--backbone"]
    args += [f"hf:{folder}", "--pool", "cls", "--epochs", "1", "--batch-size", "64"]
    _invoke([*args, "--out", str(out), "-q"], capsys)
    described = json.dumps(read_run(out).to_dict(), default=str)
    assert '"pooling": "cls"' in described and "CLIPImageProcessor" in described
    bench = tmp_path / "bench"
    args = ["benchmark", "--root", str(bus_root), "--targets", "bus:case category"]
    args += ["--methods", "knn", "--backbones", f"hf:{folder}", "--pool", "mean"]
    args += ["--shots", "2", "--query", "3", "--episodes", "2", "--out", str(bench)]
    _invoke([*args, "--cache", str(tmp_path / "cache"), "-q"], capsys)
    cells = list((bench / "cells").rglob("run.json"))
    assert cells
    cell = json.loads(cells[0].read_text(encoding="utf-8"))
    text = json.dumps(cell)
    assert '"pooling": "mean"' in text and str(folder) in text
