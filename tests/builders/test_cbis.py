"""CBIS-DDSM builders (mammo_calc, mammo_mass): labels, DICOM identification, crops, splits."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from builders.conftest import open_built
from fakes.cbis import FULL_SHAPE, make_cbis_tree
from medimeta.builders import build_dataset, get_builder
from medimeta.builders.engine.dicom import (
    header_of,
    is_binary_mask,
    pixel_array,
    read_dataset,
    to_uint8,
)
from medimeta.builders.engine.scan import scan_sources
from medimeta.builders.sources.cbis import process_cbis
from medimeta.builders.sources.cbis.labels import (
    CALC,
    KINDS,
    MASS,
    label_counts,
    multi_hot,
    read_rows,
    substring_disagreements,
    substring_multi_hot,
    tokens,
)
from medimeta.catalog import get_catalog
from medimeta.errors import LabelError, PreprocessError, SourceTreeError
from medimeta.preprocess import roi_crop, scale_to_uint8

CALC_TYPES = get_catalog().get("mammo_calc").task("calc type").class_names


def _names(kind):
    spec = get_catalog().get(kind.dataset_id)
    return {t: spec.task(t).class_names for t in kind.attribute_tasks}


# -- label rules ----------------------------------------------------------------------------


def test_tokens_split_on_hyphens_and_treat_na_as_missing():
    assert tokens("ROUND_AND_REGULAR-LUCENT_CENTERED") == ("ROUND_AND_REGULAR", "LUCENT_CENTERED")
    assert tokens("NA") == tokens("") == tokens(None) == tokens(" n/a ") == ()


def test_exact_match_keeps_lucent_center_and_lucent_centered_apart():
    centered = multi_hot("LUCENT_CENTERED", CALC_TYPES)
    assert centered[CALC_TYPES.index("LUCENT_CENTERED")] == 1
    assert centered[CALC_TYPES.index("LUCENT_CENTER")] == 0
    both = multi_hot("LUCENT_CENTER-LUCENT_CENTERED", CALC_TYPES)
    assert sum(both) == 2
    # The original rule marks LUCENT_CENTER too: that is the bug being fixed.
    assert substring_multi_hot("LUCENT_CENTERED", CALC_TYPES)[CALC_TYPES.index("LUCENT_CENTER")]


def test_unknown_token_is_an_error_not_dropped():
    with pytest.raises(LabelError, match="CRESCENT"):
        multi_hot("PLEOMORPHIC-CRESCENT", CALC_TYPES, where="x.csv line 2")


def test_missing_value_gives_all_zeros():
    assert multi_hot("NA", CALC_TYPES) == [0] * len(CALC_TYPES)


@pytest.mark.realdata
def test_real_csvs_parse_completely_and_fix_lucent_centered(realdata: Path):
    base = realdata / "labels-only" / "cbis-ddsm-csv"
    totals = {}
    for kind in (CALC, MASS):
        names = _names(kind)
        rows = [
            r for s in ("train", "test") for r in read_rows(base / kind.csv_name(s), kind, s, names)
        ]
        totals[kind.dataset_id] = rows
        spec = get_catalog().get(kind.dataset_id)
        assert len(rows) == spec.num_samples
        assert sum(r.source_split == "test" for r in rows) == spec.original_splits["test"]
        for task in kind.attribute_tasks:
            vectors = np.array([r.labels[task] for r in rows])
            assert vectors.shape == (len(rows), len(names[task]))
            # Every non-missing value yields at least one label.
            present = [bool(tokens(r.raw_values[task])) for r in rows]
            assert np.array_equal(vectors.sum(axis=1) > 0, present)
    calc = totals["mammo_calc"]
    centered_only = [
        r for r in calc
        if "LUCENT_CENTERED" in tokens(r.raw_values["calc type"])
        and "LUCENT_CENTER" not in tokens(r.raw_values["calc type"])
    ]  # fmt: skip
    assert len(centered_only) == 44
    for row in centered_only:
        assert row.labels["calc type"][CALC_TYPES.index("LUCENT_CENTER")] == 0
        assert row.labels["calc type"][CALC_TYPES.index("LUCENT_CENTERED")] == 1
    assert substring_disagreements(calc, "calc type", CALC_TYPES) == {"LUCENT_CENTER": 44}
    counts = label_counts(calc, "calc type", CALC_TYPES)
    assert counts["LUCENT_CENTER"] == 196 and counts["LUCENT_CENTERED"] == 44
    assert label_counts(calc, "pathology", ()) == {"benign": 1199, "malignant": 673}
    mass = totals["mammo_mass"]
    assert label_counts(mass, "pathology", ()) == {"benign": 912, "malignant": 784}
    for task in MASS.attribute_tasks:
        assert substring_disagreements(mass, task, _names(MASS)[task]) == {}


# -- DICOM decoding on real files -------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("CT_small.dcm", (128, 128)),
        ("MR_small.dcm", (64, 64)),
        ("693_UNCR.dcm", (512, 512)),
        ("MR-SIEMENS-DICOM-WithOverlays.dcm", (484, 484)),
        ("RG3_J2KI.dcm", (1760, 1760)),
        ("US1_UNCR.dcm", (480, 640, 3)),
    ],
)
def test_real_dicom_files_decode_to_uint8(realdata: Path, name: str, shape: tuple[int, ...]):
    path = realdata / "dicom-smoke" / name
    ds = read_dataset(path)
    header = header_of(ds, path)
    rule = "bits_stored"
    if header.signed:
        rule = "window" if "WindowCenter" in ds else "minmax"
    out = to_uint8(ds, path, rule)
    assert out.dtype == np.uint8 and out.shape == shape
    assert out.max() > out.min()  # not a constant image


@pytest.mark.realdata
def test_sixteen_bit_rule_scales_by_stored_bits(realdata: Path):
    path = realdata / "dicom-smoke" / "MR-SIEMENS-DICOM-WithOverlays.dcm"
    ds = read_dataset(path)
    raw = pixel_array(ds, path)
    assert raw.dtype == np.uint16 and ds.BitsStored == 12
    out = to_uint8(ds, path, "bits_stored")
    expected = np.floor(raw.astype(np.float64) * 255 / 4095 + 0.5).astype(np.uint8)
    assert np.array_equal(out, expected)
    # The original CBIS rule divides by the dtype maximum: a 12-bit image becomes nearly black.
    legacy = to_uint8(ds, path, "dtype_max")
    assert np.array_equal(legacy, scale_to_uint8(raw, "dtype_max")) and legacy.max() <= 5


@pytest.mark.realdata
def test_jpeg2000_monochrome1_is_inverted(realdata: Path):
    path = realdata / "dicom-smoke" / "RG3_J2KI.dcm"
    ds = read_dataset(path)
    raw = pixel_array(ds, path)
    assert ds.PhotometricInterpretation == "MONOCHROME1" and ds.BitsStored == 10
    out = to_uint8(ds, path)
    expected = 255 - np.floor(raw.astype(np.float64) * 255 / 1023 + 0.5).astype(np.uint8)
    assert np.array_equal(out, expected)


@pytest.mark.realdata
def test_signed_ct_needs_a_window_and_windows_in_hounsfield_units(realdata: Path):
    path = realdata / "dicom-smoke" / "693_UNCR.dcm"
    ds = read_dataset(path)
    with pytest.raises(PreprocessError, match="window"):
        to_uint8(ds, path, "bits_stored")
    out = to_uint8(ds, path, "window")
    hu = pixel_array(ds, path).astype(np.float64) * float(ds.RescaleSlope) + float(
        ds.RescaleIntercept
    )
    center, width = float(ds.WindowCenter), float(ds.WindowWidth)
    assert np.all(out[hu <= center - width / 2] == 0)
    assert np.all(out[hu >= center + width / 2] == 255)


# -- fake tree: plan, identification, crops, splits -----------------------------------------


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory):
    return make_cbis_tree(tmp_path_factory.mktemp("cbis"))


def _plan(path: Path, dataset_id: str = "mammo_calc", partial: bool = False):
    return get_builder(dataset_id).plan(scan_sources(path), partial=partial)


def test_plan_labels_and_patient_splits(fake):
    plan = _plan(fake.root)
    calc = [a for a in fake.abnormalities if a.kind == "calc"]
    assert len(plan.records) == len(calc)
    by_patient: dict[str, set[str]] = {}
    for rec, ab in zip(plan.records, calc, strict=True):
        assert rec.patient_id == ab.patient and rec.original_split == ab.split
        assert rec.labels["pathology"] == int(ab.pathology == "MALIGNANT")
        assert rec.labels["calc type"] == multi_hot(ab.attr1, CALC_TYPES)
        by_patient.setdefault(ab.patient, set()).add(rec.split)
        if ab.split == "test":
            assert rec.split == "test"
    assert all(len(s) == 1 for s in by_patient.values())  # no patient in two splits
    assert {rec.split for rec in plan.records} == {"train", "val", "test"}
    assert any("LUCENT_CENTER" in n and "2 row" in n for n in plan.notes)
    assert plan.split_manifest["group_column"] == "patient_id"


def test_process_identifies_mask_by_content_and_crops_full_image(fake):
    plan = _plan(fake.root)
    calc = [a for a in fake.abnormalities if a.kind == "calc"]
    rules = set()
    for rec, ab in zip(plan.records, calc, strict=True):
        image, ann = process_cbis(rec)
        assert image.shape == (224, 224) and image.dtype == np.uint8
        assert ann["roi_box"] == ab.box  # the mask was found, whatever the file names
        assert ann["cropped_image_file"] and ann["cropped_image_file"] != ann["roi_mask_file"]
        expected_mask = {"one-series": "1-2.dcm", "one-series-mask-first": "1-1.dcm"}
        if ab.layout in expected_mask:
            assert ann["roi_mask_file"].endswith(expected_mask[ab.layout])
        else:
            assert "ROI mask images" in ann["roi_mask_file"]
        rules.add(ann["roi_identified_by"])
        full = fake.full_pixels[rec.source.full_files[0].path.split("/")[-4]]
        expected = roi_crop(full, ab.box, min_size=224)
        assert ann["crop_box"] == expected.box
        side = expected.array.shape[0]
        if side == 224:  # no resampling: exactly the 16-bit pixels scaled by 255/65535
            assert np.array_equal(image, scale_to_uint8(expected.array, "dtype_max"))
        if expected.padded:
            assert ann["crop_padded"] is True
    assert rules == {"shape", "description"}


def test_identification_falls_back_to_pixels(tmp_path: Path, fake):
    # Make the cropped image exactly as large as the full image: only the pixels tell.
    from fakes.cbis import write_dicom

    root = tmp_path / "tree"
    shutil.copytree(fake.root, root)
    plan = _plan(root)
    rec = plan.records[0]  # P_00001 LEFT CC abnormality 1, one-series layout
    crop_file = next(
        f
        for f in rec.source.roi_files
        if not is_binary_mask(pixel_array(read_dataset(f.origin), f.origin))
    )
    ds = read_dataset(crop_file.origin)
    noise = np.random.default_rng(1).integers(0, 60000, FULL_SHAPE).astype(np.uint16)
    write_dicom(
        crop_file.origin,
        noise,
        patient_id=ds.PatientID,
        study_uid=ds.StudyInstanceUID,
        series_uid=ds.SeriesInstanceUID,
        description="ROI mask images",
    )
    _, ann = process_cbis(rec)
    assert ann["roi_identified_by"] == "pixels"


def test_mass_dataset_builds_from_the_same_tree(fake):
    plan = _plan(fake.root, "mammo_mass")
    mass = [a for a in fake.abnormalities if a.kind == "mass"]
    assert [r.patient_id for r in plan.records] == [a.patient for a in mass]
    shapes = [r.labels["mass shape"] for r in plan.records]
    names = _names(KINDS["mammo_mass"])["mass shape"]
    assert shapes[0] == multi_hot("IRREGULAR-ARCHITECTURAL_DISTORTION", names)


def test_missing_roi_folder_rejected_before_writing(tmp_path: Path, fake):
    root = tmp_path / "tree"
    shutil.copytree(fake.root, root)
    shutil.rmtree(root / "CBIS-DDSM" / "Calc-Training_P_00002_RIGHT_MLO_1")
    out = tmp_path / "out"
    with pytest.raises(SourceTreeError, match="P_00002_RIGHT_MLO_1"):
        build_dataset("mammo_calc", root, root=out)
    assert not (out / "mammo_calc").exists()
    # A partial build skips that row (with a warning) and keeps the others.
    plan = _plan(root, partial=True)
    assert len(plan.records) == len([a for a in fake.abnormalities if a.kind == "calc"]) - 1
    assert any("P_00002_RIGHT_MLO_1" in w for w in plan.report.warnings)


def test_missing_csv_rejected(tmp_path: Path, fake):
    root = tmp_path / "tree"
    shutil.copytree(fake.root, root)
    (root / "calc_case_description_test_set.csv").unlink()
    with pytest.raises(SourceTreeError, match="calc_case_description_test_set.csv"):
        _plan(root, partial=True)


def test_full_build_writes_a_valid_dataset(tmp_path: Path, fake):
    result = build_dataset("mammo_calc", fake.root, root=tmp_path, partial=True)
    folder = open_built(result.path)
    calc = [a for a in fake.abnormalities if a.kind == "calc"]
    assert folder.num_samples == len(calc)
    types = folder.labels("calc type")
    assert types.shape == (len(calc), len(CALC_TYPES))
    assert types[0, CALC_TYPES.index("LUCENT_CENTERED")] == 1
    assert types[0, CALC_TYPES.index("LUCENT_CENTER")] == 0
    assert folder.info.get("partial") is True
    assert any("exact" in n for n in folder.info["notes"])
    ann = folder.annotations
    assert list(ann["patient_id"]) == [a.patient for a in calc]
    assert (folder.path / "split_manifest.json").is_file()
