"""Real BUSI images (../shared/realdata/busi-256) written in the release layout and read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from fixtures.release import write_release_folder
from medimeta import MedIMeta, MedIMetaMultiTask
from medimeta.catalog import get_dataset
from medimeta.format.verify import verify_dataset

pytestmark = pytest.mark.realdata
CLASSES = {"normal": 0, "benign": 1, "malignant": 2}


@pytest.fixture(scope="module")
def busi_root(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simple conversion: grey, bicubic 256 -> 224, labels from the folders, a 70/10/20 split."""
    src = realdata / "busi-256"
    files = sorted(src.glob("*/*.png"))
    assert len(files) == 780
    images = np.stack(
        [np.asarray(Image.open(f).convert("L").resize((224, 224), Image.BICUBIC)) for f in files]
    )
    category = [CLASSES[f.parent.name] for f in files]
    labels = {"case category": category, "malignancy": [int(c == 2) for c in category]}
    rng = np.random.default_rng(42)
    split_of = np.array(["train"] * 546 + ["val"] * 78 + ["test"] * 156)
    rng.shuffle(split_of)
    root = tmp_path_factory.mktemp("busi")
    extra = {"original_filepath": [f"{f.parent.name}/{f.name}" for f in files]}
    write_release_folder(
        root / "bus",
        get_dataset("bus").to_info_dict(),
        images,
        labels,
        split_of,
        np.array(["train"] * 780),
        extra,
    )
    return root


def test_busi_folder_verifies_and_loads(busi_root: Path, realdata: Path) -> None:
    report = verify_dataset(busi_root / "bus", deep=True)
    assert report.ok, report.format()
    data = MedIMeta(busi_root, "bus", "case category", dtype="uint8")
    assert len(data) == 780
    assert np.bincount(data.labels).tolist() == [133, 437, 210]
    # pixel identity with an independent decode of the source file
    ann = pd.read_csv(busi_root / "bus" / "annotations.csv")
    i = 123
    src = realdata / "busi-256" / ann["original_filepath"][i]
    ref = np.asarray(Image.open(src).convert("L").resize((224, 224), Image.BICUBIC))
    assert torch.equal(data[i][0][0], torch.from_numpy(ref.copy()))


def test_busi_splits_and_multitask_agree(busi_root: Path) -> None:
    sizes = {
        s: len(MedIMeta(busi_root, "bus", "malignancy", split=s)) for s in ("train", "val", "test")
    }
    assert sizes == {"train": 546, "val": 78, "test": 156}
    mt = MedIMetaMultiTask(busi_root, "bus", split="test", metadata=["original_filepath"])
    single = MedIMeta(busi_root, "bus", "malignancy", split="test")
    batch = mt[list(range(16))]
    xs, ys = single[list(range(16))]
    assert torch.equal(batch["image"], xs)
    assert torch.equal(batch["labels"]["malignancy"], ys)
    for name, y in zip(batch["metadata"]["original_filepath"], ys[:, 0].tolist(), strict=True):
        assert (name.startswith("malignant/")) == bool(y)
