"""ChestX-ray14 builder (cxr): labels, streamed tar.gz archives, patient-wise splits."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import medimeta.builders.sources.cxr.stream as cxr_stream
from builders.conftest import open_built
from fakes import zip_folder
from fakes.cxr import make_cxr_tree
from medimeta.builders import build_dataset, get_builder, plan_build
from medimeta.builders.engine.scan import scan_sources
from medimeta.builders.sources.cxr import disease_vector, process_cxr
from medimeta.builders.sources.cxr.stream import TarMember, close_cursors
from medimeta.catalog import get_catalog
from medimeta.errors import LabelError, SourceTreeError

NAMES = get_catalog().get("cxr").task("disease labels").class_names


def expected_vector(finding: str) -> list[int]:
    tokens = set(finding.split("|"))
    return [int(n in tokens) for n in NAMES]


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory):
    return make_cxr_tree(tmp_path_factory.mktemp("cxr"))


def _plan(path: Path, partial: bool = True):
    return get_builder("cxr").plan(scan_sources(path), partial=partial)


def test_disease_vector_is_exact_and_no_finding_is_zero():
    assert disease_vector("No Finding", NAMES, "x") == [0] * 14
    vec = disease_vector("Effusion|Pleural_Thickening", NAMES, "x")
    assert sum(vec) == 2 and vec[NAMES.index("Pleural_Thickening")] == 1
    with pytest.raises(LabelError, match="Pleural"):
        disease_vector("Pleural", NAMES, "x")
    with pytest.raises(LabelError):
        disease_vector("", NAMES, "x")


def test_plan_labels_sources_and_patient_splits(fake):
    plan = _plan(fake.root)
    assert len(plan.records) == len(fake.findings)
    patient_split: dict[str, str] = {}
    for rec in plan.records:
        name = rec.annotations["image_index"]
        assert rec.labels["disease labels"] == expected_vector(fake.findings[name])
        assert rec.labels["patient sex"] == (1 if fake.sex[name] == "M" else 0)
        assert isinstance(rec.source, TarMember)
        assert rec.source.origin.name == fake.archive_of[name]
        assert rec.original_split == ("test" if name in fake.test else "train")
        if name in fake.test:
            assert rec.split == "test"
        assert patient_split.setdefault(str(rec.patient_id), rec.split) == rec.split
    assert {r.split for r in plan.records} == {"train", "val", "test"}
    # records follow each archive's own member order (archive 2 is stored reversed)
    second = [
        r.source.position for r in plan.records if r.source.origin.name == "images_002.tar.gz"
    ]
    assert second == sorted(second)
    names = [
        r.annotations["image_index"]
        for r in plan.records
        if r.source.origin.name == "images_002.tar.gz"
    ]
    assert names == sorted(names, reverse=True)
    boxes = {r.annotations["image_index"]: r.annotations["bounding_boxes"] for r in plan.records}
    assert boxes["00000001_001.png"].startswith("Atelectasis: (225.08, 547.02, 86.79, 79.19)")


def test_each_archive_is_streamed_once(fake, monkeypatch: pytest.MonkeyPatch):
    opened: list[str] = []
    real = cxr_stream._open_tar

    def counting(stack, origin, chain):
        opened.append(origin.name)
        return real(stack, origin, chain)

    plan = _plan(fake.root)
    monkeypatch.setattr(cxr_stream, "_open_tar", counting)
    close_cursors()
    modes = {}
    for rec in plan.records:
        image, ann = process_cxr(rec)
        assert image.size == (224, 224) and image.mode == "L"
        modes[rec.annotations["image_index"]] = ann["original_image_mode"]
    assert sorted(opened) == ["images_001.tar.gz", "images_002.tar.gz", "images_003.tar.gz"]
    assert modes[fake.rgba] == "RGBA"
    # Asking for an earlier member re-opens the stream instead of failing.
    process_cxr(plan.records[1])
    process_cxr(plan.records[0])
    close_cursors()


def test_build_streams_without_staging(tmp_path: Path, fake, monkeypatch: pytest.MonkeyPatch):
    import medimeta.builders.engine.driver as driver

    def no_staging(files, workdir):
        raise AssertionError(f"{len(files)} files would be copied out of archives")

    monkeypatch.setattr(driver, "stage_files", no_staging)
    result = build_dataset("cxr", fake.root, root=tmp_path, partial=True)
    folder = open_built(result.path)
    ann = folder.annotations
    vectors = folder.labels("disease labels")
    for i, name in enumerate(ann["image_index"]):
        assert list(vectors[i]) == expected_vector(fake.findings[name])
    assert not any(p.name.endswith("source-staging") for p in tmp_path.iterdir())
    assert folder.split_indices("test").size == len(fake.test)


def test_extracted_and_nested_zip_layouts_give_the_same_records(tmp_path: Path, fake):
    extracted = make_cxr_tree(tmp_path / "ext", extracted=True)
    plan_ext = _plan(extracted.root)
    zip_folder(fake.root, tmp_path / "zip" / "CXR8.zip")
    plan_zip = _plan(tmp_path / "zip")
    plan_tar = _plan(fake.root)

    def key(plan):
        return {
            r.annotations["image_index"]: (r.labels["patient sex"], r.split) for r in plan.records
        }

    assert key(plan_ext) == key(plan_zip) == key(plan_tar)
    assert all(not isinstance(r.source, TarMember) for r in plan_ext.records)
    nested = plan_zip.records[0].source
    assert isinstance(nested, TarMember) and nested.chain
    image, _ = process_cxr(plan_zip.records[0])
    image_ext, _ = process_cxr(
        next(
            r
            for r in plan_ext.records
            if r.annotations["image_index"] == plan_zip.records[0].annotations["image_index"]
        )
    )
    assert np.array_equal(np.asarray(image), np.asarray(image_ext))
    close_cursors()


def test_missing_archive_rejected_before_writing(tmp_path: Path, fake):
    root = tmp_path / "CXR8"
    shutil.copytree(fake.root, root)
    (root / "images" / "images_003.tar.gz").unlink()
    out = tmp_path / "out"
    with pytest.raises(SourceTreeError, match="00000006_000.png"):
        build_dataset("cxr", root, root=out)
    assert not (out / "cxr").exists()


def test_unlisted_image_is_a_problem(tmp_path: Path, fake):
    root = tmp_path / "CXR8"
    shutil.copytree(fake.root, root)
    lines = (root / "test_list.txt").read_text().splitlines()
    (root / "test_list.txt").write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(SourceTreeError, match="neither split list"):
        _plan(root)


def test_parallel_build_matches_serial(tmp_path: Path, fake):
    import h5py

    serial = build_dataset("cxr", fake.root, root=tmp_path / "one", partial=True)
    parallel = build_dataset("cxr", fake.root, root=tmp_path / "two", partial=True, workers=2)
    with h5py.File(serial.path / "images.hdf5") as a, h5py.File(parallel.path / "images.hdf5") as b:
        assert np.array_equal(a["images"][:], b["images"][:])


def test_complete_tree_needs_no_partial(fake, release_counts):
    release_counts("cxr", {"train": len(fake.findings) - len(fake.test), "test": len(fake.test)})
    plan = plan_build(get_builder("cxr"), fake.root)
    assert plan.report.ok and plan.num_samples == len(fake.findings)
