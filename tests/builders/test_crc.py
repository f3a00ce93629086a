"""crc builder on fake NCT-CRC-HE-100K + CRC-VAL-HE-7K zips: 7K is test, 100K 85/15."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from builders.conftest import info_of, labels_by_file, open_built, row_of, split_sizes
from fakes import zip_folder
from fakes.crc import CODES, make_crc
from medimeta.builders import build_dataset, get_builder, plan_build
from medimeta.errors import SourceTreeError


@pytest.fixture(scope="module")
def crc(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    src = tmp_path_factory.mktemp("crc-src")
    facts = make_crc(src / "x")
    dl = src / "downloads"
    zip_folder(src / "x" / "NCT-CRC-HE-100K", dl / "NCT-CRC-HE-100K.zip")
    zip_folder(src / "x" / "CRC-VAL-HE-7K", dl / "CRC-VAL-HE-7K.zip")
    result = build_dataset("crc", dl, root=tmp_path_factory.mktemp("crc-out"), partial=True)
    return src, facts, result.path


def test_labels_and_split_policy(crc: tuple[Path, dict, Path]) -> None:
    _, facts, built = crc
    folder = open_built(built)
    assert labels_by_file(folder, "tissue class") == {p: CODES.index(c) for p, c in facts.items()}
    ann = folder.annotations
    is_test_set = ann["original_filepath"].str.startswith("CRC-VAL-HE-7K/")
    assert set(ann["split"][is_test_set]) == {"test"}
    assert set(ann["original_split"][is_test_set]) == {"val"}
    assert split_sizes(folder) == {"train": 15, "val": 3, "test": 9}  # floor(0.85 * 18) = 15
    assert split_sizes(folder, original=True) == {"train": 18, "val": 9, "test": 0}
    assert any("by tile" in n for n in info_of(built)["notes"])


def test_tiles_are_reencoded_unchanged(crc: tuple[Path, dict, Path]) -> None:
    src, _, built = crc
    folder = open_built(built)
    rel = "NCT-CRC-HE-100K/MUS/MUS-A5B1XYZ.tif"
    expected = np.asarray(Image.open(src / "x" / rel).convert("RGB"))
    assert np.array_equal(folder.image_store("hdf5").read(row_of(folder, rel)), expected)


def test_one_set_missing_is_reported(crc: tuple[Path, dict, Path]) -> None:
    src, _, _ = crc
    with pytest.raises(SourceTreeError, match="CRC-VAL-HE-7K: not found"):
        plan_build(get_builder("crc"), src / "downloads" / "NCT-CRC-HE-100K.zip")
    plan = plan_build(get_builder("crc"), src / "x" / "NCT-CRC-HE-100K", partial=True)
    assert plan.counts() == {"train": 15, "val": 3, "test": 0}
