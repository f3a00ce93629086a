"""A tiny CBIS-DDSM download: TCIA folder tree of real DICOM files + the description CSVs.

Layout (as the NBIA Data Retriever writes it, descriptive folder names)::

    manifest-1234/CBIS-DDSM/<case>/<date>-DDSM-NA-<n>/<k>.000000-<description>-<m>/1-<j>.dcm
    manifest-1234/{calc,mass}_case_description_{train,test}_set.csv

Every full mammogram is a 16-bit MONOCHROME2 image; ROI masks are 8-bit {0, 255} images of the
full image's size; cropped ROIs are 16-bit and smaller. The ROI folders deliberately mix the
layouts a real download contains:

* ``"one-series"``: mask and cropped image in one series, both described ``ROI mask images``
  (identification must use the image shape), mask written as ``1-2.dcm``;
* ``"one-series-mask-first"``: as above but the mask is ``1-1.dcm``;
* ``"two-series"``: separate ``ROI mask images`` and ``cropped images`` series.

In the ``"one-series"`` cases the cropped image file is larger than the mask file, so the
original file-size rule (smaller file = cropped image) would pick the wrong file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CSV_COLUMNS = {
    "calc": [
        "patient_id", "breast density", "left or right breast", "image view", "abnormality id",
        "abnormality type", "calc type", "calc distribution", "assessment", "pathology",
        "subtlety", "image file path", "cropped image file path", "ROI mask file path",
    ],
    "mass": [
        "patient_id", "breast_density", "left or right breast", "image view", "abnormality id",
        "abnormality type", "mass shape", "mass margins", "assessment", "pathology",
        "subtlety", "image file path", "cropped image file path", "ROI mask file path",
    ],
}  # fmt: skip


@dataclass
class FakeAbnormality:
    """One CSV row: the abnormality's labels, ROI box (rows, cols; exclusive) and ROI layout."""

    kind: str
    split: str
    patient: str
    side: str
    view: str
    number: int
    attr1: str
    attr2: str
    pathology: str
    box: tuple[tuple[int, int], tuple[int, int]]
    layout: str = "one-series"


@dataclass
class FakeCbis:
    """What was written (paths, boxes, the full images' pixels) for the tests to check."""

    root: Path
    abnormalities: list[FakeAbnormality]
    full_pixels: dict[str, np.ndarray] = field(default_factory=dict)
    csv_paths: dict[str, Path] = field(default_factory=dict)


FULL_SHAPE = (360, 280)  # rows, columns of every full mammogram


def default_abnormalities() -> list[FakeAbnormality]:
    """Five calc patients (four train, one test) and three mass patients."""
    a = FakeAbnormality
    return [
        a("calc", "train", "P_00001", "LEFT", "CC", 1, "LUCENT_CENTERED", "NA", "BENIGN",
          ((100, 140), (60, 90)), "one-series"),
        a("calc", "train", "P_00001", "LEFT", "CC", 2, "ROUND_AND_REGULAR-LUCENT_CENTER",
          "CLUSTERED-LINEAR", "MALIGNANT", ((200, 230), (150, 170)), "one-series-mask-first"),
        a("calc", "train", "P_00002", "RIGHT", "MLO", 1, "PLEOMORPHIC", "SEGMENTAL",
          "BENIGN_WITHOUT_CALLBACK", ((10, 300), (5, 260)), "two-series"),
        a("calc", "train", "P_00003", "LEFT", "MLO", 1, "VASCULAR-COARSE-LUCENT_CENTERED",
          "REGIONAL", "MALIGNANT", ((0, 20), (250, 280)), "one-series"),
        a("calc", "train", "P_00004", "RIGHT", "CC", 1, "AMORPHOUS", "CLUSTERED", "BENIGN",
          ((150, 170), (100, 120)), "two-series"),
        a("calc", "test", "P_00005", "LEFT", "CC", 1, "PUNCTATE-PLEOMORPHIC", "CLUSTERED",
          "MALIGNANT", ((50, 80), (40, 70)), "one-series"),
        a("mass", "train", "P_00010", "LEFT", "CC", 1, "IRREGULAR-ARCHITECTURAL_DISTORTION",
          "SPICULATED", "MALIGNANT", ((120, 180), (100, 170)), "one-series"),
        a("mass", "train", "P_00011", "RIGHT", "MLO", 1, "OVAL", "NA", "BENIGN",
          ((30, 90), (20, 60)), "two-series"),
        a("mass", "test", "P_00012", "LEFT", "MLO", 1, "ROUND", "CIRCUMSCRIBED-OBSCURED",
          "BENIGN_WITHOUT_CALLBACK", ((200, 260), (150, 230)), "one-series-mask-first"),
    ]  # fmt: skip


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    patient_id: str,
    study_uid: str,
    series_uid: str,
    description: str,
    bits_stored: int | None = None,
    photometric: str = "MONOCHROME2",
) -> None:
    """Write a minimal, valid uncompressed grey DICOM file (Explicit VR Little Endian)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[str(path)])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MG"
    ds.PatientID = patient_id
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SeriesDescription = description
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated = bits
    ds.BitsStored = bits_stored or bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(path), enforce_file_format=True)


def _uid(*parts: object) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(prefix="1.3.6.1.4.1.9590.100.1.2.", entropy_srcs=[repr(parts)])


def _full_image(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # A smooth ramp plus noise, full 16-bit range, so scaling mistakes show.
    rows, cols = FULL_SHAPE
    ramp = np.linspace(0, 60000, rows * cols).reshape(rows, cols)
    return (ramp + rng.integers(0, 5000, size=(rows, cols))).astype(np.uint16)


def make_cbis_tree(
    root: Path, abnormalities: list[FakeAbnormality] | None = None, *, seed: int = 0
) -> FakeCbis:
    """Write the fake download under ``root/manifest-1234`` and return what was written."""
    items = abnormalities if abnormalities is not None else default_abnormalities()
    base = root / "manifest-1234"
    dicom_root = base / "CBIS-DDSM"
    fake = FakeCbis(root=base, abnormalities=items)
    rows: dict[tuple[str, str], list[dict[str, str]]] = {}
    for i, ab in enumerate(items):
        word = "Training" if ab.split == "train" else "Test"
        case = f"{ab.kind.capitalize()}-{word}_{ab.patient}_{ab.side}_{ab.view}"
        roi_case = f"{case}_{ab.number}"
        full_study, full_series = _uid(case, "study"), _uid(case, "series")
        if case not in fake.full_pixels:
            fake.full_pixels[case] = _full_image(seed + i)
            write_dicom(
                dicom_root / case / "07-20-2016-DDSM-NA-1" / "1.000000-full mammogram images-1"
                / "1-1.dcm",
                fake.full_pixels[case],
                patient_id=case, study_uid=full_study, series_uid=full_series,
                description="full mammogram images",
            )  # fmt: skip
        mask = np.zeros(FULL_SHAPE, dtype=np.uint8)
        (r0, r1), (c0, c1) = ab.box
        mask[r0:r1, c0:c1] = 255
        region = fake.full_pixels[case][max(r0 - 5, 0) : r1 + 5, max(c0 - 5, 0) : c1 + 5]
        # 240x240 16-bit: a larger file than the 360x280 8-bit mask (the size rule would fail).
        cropped = np.resize(region, (240, 240)).astype(np.uint16)
        roi_study, mask_series = _uid(roi_case, "study"), _uid(roi_case, "series")
        study_dir = dicom_root / roi_case / "07-21-2016-DDSM-NA-2"
        common = {"patient_id": roi_case, "study_uid": roi_study}
        if ab.layout == "two-series":
            crop_series = _uid(roi_case, "crop-series")
            write_dicom(
                study_dir / "1.000000-ROI mask images-2" / "1-1.dcm",
                mask,
                series_uid=mask_series,
                description="ROI mask images",
                **common,
            )
            write_dicom(
                study_dir / "1.000000-cropped images-3" / "1-1.dcm",
                cropped,
                series_uid=crop_series,
                description="cropped images",
                **common,
            )
            mask_name, crop_name = "000000.dcm", "000000.dcm"
            crop_uid = crop_series
        else:
            mask_first = ab.layout == "one-series-mask-first"
            folder = study_dir / "1.000000-ROI mask images-2"
            write_dicom(
                folder / ("1-1.dcm" if mask_first else "1-2.dcm"),
                mask,
                series_uid=mask_series,
                description="ROI mask images",
                **common,
            )
            write_dicom(
                folder / ("1-2.dcm" if mask_first else "1-1.dcm"),
                cropped,
                series_uid=mask_series,
                description="ROI mask images",
                **common,
            )
            # The CSV's numbering is inconsistent in the real data too.
            mask_name, crop_name = (
                ("000000.dcm", "000001.dcm") if mask_first else ("000001.dcm", "000000.dcm")
            )
            crop_uid = mask_series
        row = {
            "patient_id": ab.patient,
            "left or right breast": ab.side,
            "image view": ab.view,
            "abnormality id": str(ab.number),
            "abnormality type": "calcification" if ab.kind == "calc" else "mass",
            "assessment": "4",
            "pathology": ab.pathology,
            "subtlety": "3",
            "image file path": f"{case}/{full_study}/{full_series}/000000.dcm",
            # Real cells sometimes end in a newline inside the quotes.
            "cropped image file path": f"{roi_case}/{roi_study}/{crop_uid}/{crop_name}\n",
            "ROI mask file path": f"{roi_case}/{roi_study}/{mask_series}/{mask_name}",
        }  # fmt: skip
        cols = CSV_COLUMNS[ab.kind]
        row[cols[1]] = "3"
        row[cols[6]], row[cols[7]] = ab.attr1, ab.attr2
        rows.setdefault((ab.kind, ab.split), []).append(row)
    for kind in ("calc", "mass"):
        for split in ("train", "test"):
            name = f"{kind}_case_description_{'train' if split == 'train' else 'test'}_set.csv"
            path = base / name
            with open(path, "w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS[kind])
                writer.writeheader()
                writer.writerows(rows.get((kind, split), []))
            fake.csv_paths[f"{kind}_{split}"] = path
    return fake
