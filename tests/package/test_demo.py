"""The demo and its synthetic raw tree in BUSI's published layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medimeta.builders import build_dataset
from medimeta.data import MedIMeta
from medimeta.demo import main
from medimeta.synthetic import CLASSES, make_busi_like_tree


def _tree_bytes(base: Path) -> dict[str, bytes]:
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*.png"))}


def test_tree_has_busis_layout_and_is_deterministic(tmp_path: Path) -> None:
    a = make_busi_like_tree(tmp_path / "a", per_class=3, seed=0)
    b = make_busi_like_tree(tmp_path / "b", per_class=3, seed=0)
    c = make_busi_like_tree(tmp_path / "c", per_class=3, seed=1)
    assert a.name == "Dataset_BUSI_with_GT"
    names = sorted(_tree_bytes(a))
    assert names == sorted(
        f"{cls}/{cls} ({k}){suffix}.png"
        for cls in CLASSES
        for k in (1, 2, 3)
        for suffix in ("", "_mask")
    )
    assert _tree_bytes(a) == _tree_bytes(b) and _tree_bytes(a) != _tree_bytes(c)
    normal_mask = np.asarray(Image.open(a / "normal" / "normal (1)_mask.png"))
    assert not normal_mask.any()  # as published: normal images have an all-black mask


def test_lesions_are_darker_than_tissue_and_the_builder_reads_the_tree(tmp_path: Path) -> None:
    tree = make_busi_like_tree(tmp_path / "raw", per_class=4, seed=0)
    for k in (1, 2, 3, 4):
        image = np.asarray(Image.open(tree / "benign" / f"benign ({k}).png"), dtype=float)
        mask = np.asarray(Image.open(tree / "benign" / f"benign ({k})_mask.png")) > 0
        assert image[mask].mean() < image[~mask & (image > 0)].mean()
    result = build_dataset("bus", tree, root=tmp_path / "MedIMeta", partial=True)
    data = MedIMeta(tmp_path / "MedIMeta", "bus", "case category")
    assert len(data) == 12 and sorted(np.bincount(data.labels).tolist()) == [4, 4, 4]
    assert (result.path / "masks").is_dir()


def test_demo_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--root", str(tmp_path / "MedIMeta"), "--per-class", "15", "--episodes", "2"])
    out = capsys.readouterr().out
    assert "$ medimeta build bus --source" in out and "1 of 1 dataset OK" in out
    assert "batch: x (16, 1, 224, 224)" in out
    assert "| ProtoNet | efficientnet_lite0 | " in out and "(n=2)" in out
    for picture in ("montage.png", "bus_per_class.png", "episode.png", "report/index.html"):
        assert (tmp_path / picture).is_file(), picture
