"""aml builder on a fake AML-Cytomorphology_LMU tree: labels, annotations.dat, RGBA input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from builders.conftest import labels_by_file, open_built, reference_pixels, row_of, split_sizes
from fakes import zip_folder
from fakes.aml import CODES, make_aml
from medimeta.builders import build_dataset, get_builder, plan_build
from medimeta.errors import SourceTreeError


@pytest.fixture(scope="module")
def aml(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    src = tmp_path_factory.mktemp("aml-src")
    facts = make_aml(src / "tree")
    archive = zip_folder(src / "tree", src / "AML-Cytomorphology_LMU.zip", top="")
    result = build_dataset("aml", archive, root=tmp_path_factory.mktemp("aml-out"), partial=True)
    return src, facts, result.path


def test_labels_from_folders_and_annotation_columns(aml: tuple[Path, dict, Path]) -> None:
    _, facts, built = aml
    folder = open_built(built)
    labels = labels_by_file(folder, "morphological class")
    assert labels == {f"AML-Cytomorphology/{rel}": CODES.index(rel[:3]) for rel in facts}
    ann = folder.annotations
    i = row_of(folder, "AML-Cytomorphology/MYB/MYB_0001.tiff")
    assert (ann["annotation"][i], ann["first_reannotation"][i]) == ("MYB", "MYO")
    assert pd.isna(ann["second_reannotation"][i])
    assert split_sizes(folder) == {"train": 10, "val": 1, "test": 4}


def test_rgba_tiff_becomes_rgb_thumbnail(aml: tuple[Path, dict, Path]) -> None:
    src, _, built = aml
    folder = open_built(built)
    for rel in ("BAS/BAS_0001.tiff", "NGS/NGS_0001.tiff"):
        path = src / "tree" / "AML-Cytomorphology" / rel
        expected = reference_pixels(path, "RGB", "pad", "thumbnail")
        got = folder.image_store("hdf5").read(row_of(folder, f"AML-Cytomorphology/{rel}"))
        assert np.array_equal(got, expected), rel


def test_annotations_dat_is_required_and_listed_images_must_exist(tmp_path: Path) -> None:
    make_aml(tmp_path)
    (tmp_path / "AML-Cytomorphology" / "EOS" / "EOS_0001.tiff").unlink()
    with pytest.raises(SourceTreeError, match=r"EOS/EOS_0001\.tiff \(listed in annotations"):
        plan_build(get_builder("aml"), tmp_path, partial=False)
    (tmp_path / "annotations.dat").unlink()
    with pytest.raises(SourceTreeError, match="annotations.dat: not found"):
        plan_build(get_builder("aml"), tmp_path, partial=True)  # essential even when partial


def test_annotation_paths_with_a_leading_folder_are_matched(tmp_path: Path) -> None:
    facts = make_aml(tmp_path)
    dat = tmp_path / "annotations.dat"
    dat.write_text(
        "".join(f"AML-Cytomorphology/{line}\n" for line in dat.read_text().split("\n") if line)
    )
    plan = plan_build(get_builder("aml"), tmp_path, partial=True)
    got = {r.original_filepath: r.annotations["annotation"] for r in plan.records}
    assert got == {f"AML-Cytomorphology/{rel}": v[0] for rel, v in facts.items()}
