"""pbc builder on a fake PBC tree (zip and folder): labels incl. ``ig``, crop + thumbnail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from builders.conftest import (
    info_of,
    labels_by_file,
    open_built,
    reference_pixels,
    row_of,
    split_sizes,
)
from fakes import zip_folder
from fakes.pbc import make_pbc
from medimeta.builders import build_dataset, get_builder, plan_build
from medimeta.errors import SourceTreeError

KEYS = {
    "neutrophil": 0,
    "eosinophil": 1,
    "basophil": 2,
    "lymphocyte": 3,
    "monocyte": 4,
    "ig": 5,
    "erythroblast": 6,
    "platelet": 7,
}


@pytest.fixture(scope="module")
def pbc(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    src = tmp_path_factory.mktemp("pbc-src")
    facts = make_pbc(src)
    archive = zip_folder(src / "PBC_dataset_normal_DIB", src.parent / "pbcz" / "PBC.zip")
    result = build_dataset("pbc", archive, root=tmp_path_factory.mktemp("pbc-out"), partial=True)
    return src, facts, result.path


def test_labels_splits_and_input_untouched(pbc: tuple[Path, dict, Path]) -> None:
    src, facts, built = pbc
    folder = open_built(built)
    assert labels_by_file(folder, "cell class") == {p: KEYS[c] for p, c in facts.items()}
    assert split_sizes(folder) == {"train": 11, "val": 1, "test": 4}  # floor 11.2, 1.6
    assert (src / "PBC_dataset_normal_DIB" / "ig").is_dir()  # never renamed
    assert info_of(built)["partial"] is True


def test_pixels_crop_then_thumbnail(pbc: tuple[Path, dict, Path]) -> None:
    src, _, built = pbc
    folder = open_built(built)
    rel = "ig/IG_110.jpg"
    expected = reference_pixels(src / "PBC_dataset_normal_DIB" / rel, "RGB", "crop", "thumbnail")
    assert np.array_equal(folder.image_store("hdf5").read(row_of(folder, rel)), expected)


def test_folder_source_matches_zip_source(pbc: tuple[Path, dict, Path], tmp_path: Path) -> None:
    src, _, built = pbc
    plan = plan_build(get_builder("pbc"), src / "PBC_dataset_normal_DIB", partial=True)
    ann = open_built(built).annotations
    assert [r.original_filepath for r in plan.records] == list(ann["original_filepath"])
    assert [r.split for r in plan.records] == list(ann["split"])


def test_missing_class_folder_is_an_error(tmp_path: Path) -> None:
    make_pbc(tmp_path, per_class=1)
    for f in (tmp_path / "PBC_dataset_normal_DIB" / "platelet").iterdir():
        f.unlink()
    with pytest.raises(SourceTreeError, match=r"platelet/\*\.jpg"):
        plan_build(get_builder("pbc"), tmp_path)
