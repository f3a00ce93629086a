"""The demo and its generated sample dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from medimeta import MedIMeta
from medimeta.demo import main
from medimeta.format.verify import verify_dataset
from medimeta.sample import SAMPLE_ID, make_sample_dataset


def test_sample_dataset_is_valid_and_learnable_by_eye(tmp_path: Path) -> None:
    path = make_sample_dataset(tmp_path, n=30, workers=1)
    assert verify_dataset(path, deep=True).ok
    data = MedIMeta(tmp_path, SAMPLE_ID, "large lesion", dtype="uint8")
    x, y = data[list(range(30))]
    # large lesions cover more bright pixels than small ones
    bright = (x > 140).float().mean(dim=(1, 2, 3)).numpy()
    big = y[:, 0].numpy().astype(bool)
    assert bright[big].mean() > 2 * bright[~big].mean()


def test_sample_is_identical_with_workers(tmp_path: Path) -> None:
    a = make_sample_dataset(tmp_path / "a", n=12, workers=1)
    b = make_sample_dataset(tmp_path / "b", n=12, workers=2)
    for name in ("images.hdf5", "annotations.csv", "splits/train.txt", "task_labels/shape.npy"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_demo_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--root", str(tmp_path / "MedIMeta"), "--workers", "1", "--episodes", "2"])
    out = capsys.readouterr().out
    assert "1 of 1 datasets OK" in out and "batch: x (32, 1, 224, 224)" in out
    assert "| ProtoNet | efficientnet_lite0 | " in out and "(n=2)" in out
    assert (tmp_path / "demo_shapes.episodes.json").is_file()
