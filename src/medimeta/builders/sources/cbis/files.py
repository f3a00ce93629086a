"""Which CBIS-DDSM DICOM file is the full mammogram, the ROI mask and the cropped ROI.

The original pipeline renamed files by size (the smaller of a two-file series was taken to be
the cropped image). Here each file is identified by its DICOM content, never by file size or
file name, because the CSV's ``000000.dcm`` / ``000001.dcm`` names are not consistent (the mask
is ``000000`` in some rows and ``000001`` in others) and a download tool may name files
``1-1.dcm``, ``1-2.dcm``:

1. Full mammogram: the DICOM file(s) of the row's image case folder (``Calc-Test_P_00038_LEFT_CC``);
   with several, the one whose SeriesDescription contains ``full mammogram``, else the largest
   image (rows x columns).
2. ROI folder (``..._LEFT_CC_1``): if it holds more than two files, those of the CSV's series UID.
   Then, in this order:

   a. **description**: exactly one file says ``ROI mask`` and another ``cropped``
      (SeriesDescription), as in downloads where the two are separate series;
   b. **shape**: exactly one file has the full mammogram's rows x columns (the mask is drawn on
      the full image; the cropped ROI is smaller);
   c. **pixels**: exactly one file has at most two distinct pixel values.

   Whatever chose it, the mask must then be binary (at most two values, non-zero somewhere) or
   the row fails with a message naming the files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medimeta.builders.engine.dicom import (
    DicomHeader,
    header_of,
    is_binary_mask,
    pixel_array,
    read_dataset,
)
from medimeta.builders.engine.tree import SourceFile
from medimeta.errors import SourceTreeError


@dataclass(frozen=True)
class CbisSource:
    """The raw files of one CBIS row, as a picklable record ``source``."""

    full_files: tuple[SourceFile, ...]
    roi_files: tuple[SourceFile, ...]
    roi_series_uid: str
    row: str


@dataclass
class LoadedDicom:
    """A file, its header and (once decoded) its pixels."""

    file: SourceFile
    header: DicomHeader
    dataset: Any
    pixels: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (self.header.rows, self.header.columns)

    def load(self) -> np.ndarray:
        if self.pixels is None:
            self.pixels = pixel_array(self.dataset, self.file.location())
        return self.pixels


def load_dicom(source: SourceFile) -> LoadedDicom:
    """Read one DICOM file of the raw tree (pixels decoded lazily by :meth:`LoadedDicom.load`)."""
    with source.open() as fh:
        # dcmread reads every element (pixel data included) into memory before returning,
        # so the pixels can be decoded after the file object is closed.
        ds = read_dataset(fh, name=source.location())
    return LoadedDicom(source, header_of(ds, source.location()), ds)


def _describes(loaded: LoadedDicom, word: str) -> bool:
    return word in loaded.header.series_description.lower()


def pick_full(files: Sequence[LoadedDicom], row: str) -> LoadedDicom:
    """The full mammogram among the image folder's files (module rule 1)."""
    if not files:
        raise SourceTreeError(f"{row}: the full-mammogram folder holds no DICOM file")
    if len(files) == 1:
        return files[0]
    described = [f for f in files if _describes(f, "full mammogram")]
    if len(described) == 1:
        return described[0]
    return max(files, key=lambda f: (f.header.rows * f.header.columns, f.file.path))


def _names(files: Sequence[LoadedDicom]) -> str:
    return ", ".join(f.file.path for f in files)


def pick_roi(
    files: Sequence[LoadedDicom], full_shape: tuple[int, int], series_uid: str, row: str
) -> tuple[LoadedDicom, LoadedDicom | None, str]:
    """``(mask, cropped or None, rule)`` among the ROI folder's files (module rule 2)."""
    candidates = list(files)
    if len(candidates) > 2 and series_uid:
        candidates = [f for f in candidates if f.header.series_uid == series_uid] or candidates
    if not candidates or len(candidates) > 2:
        raise SourceTreeError(
            f"{row}: expected one or two DICOM files (ROI mask, cropped image) in the ROI "
            f"folder; found {len(candidates)}: {_names(candidates)}"
        )
    if len(candidates) == 1:
        return _checked(candidates[0], row), None, "single file"
    masks = [f for f in candidates if _describes(f, "mask")]
    crops = [f for f in candidates if _describes(f, "crop")]
    if len(masks) == 1 and len(crops) == 1 and masks[0] is not crops[0]:
        return _checked(masks[0], row), crops[0], "description"
    same = [f for f in candidates if f.shape == full_shape]
    if len(same) == 1:
        other = candidates[1] if same[0] is candidates[0] else candidates[0]
        return _checked(same[0], row), other, "shape"
    binary = [f for f in candidates if is_binary_mask(f.load())]
    if len(binary) == 1:
        other = candidates[1] if binary[0] is candidates[0] else candidates[0]
        return _checked(binary[0], row), other, "pixels"
    raise SourceTreeError(
        f"{row}: cannot tell the ROI mask from the cropped image in {_names(candidates)} "
        f"(descriptions {[f.header.series_description for f in candidates]}, shapes "
        f"{[f.shape for f in candidates]}, full image {full_shape}); check the download"
    )


def _checked(mask: LoadedDicom, row: str) -> LoadedDicom:
    pixels = mask.load()
    if not is_binary_mask(pixels) or not np.any(pixels):
        raise SourceTreeError(
            f"{row}: {mask.file.path} was identified as the ROI mask but its pixels are not a "
            "binary mask with a non-empty region; check the download"
        )
    return mask


def mask_on_full(mask: np.ndarray, full_shape: tuple[int, int], row: str) -> tuple[Any, bool]:
    """The mask's region as a box on the full image: ``(box, rescaled)``.

    A mask of the full image's shape gives its tight box. A mask of another size but the same
    aspect ratio (within 1 %) has its box scaled to the full image (``rescaled=True``); any
    other mismatch is an error, because the region cannot be placed reliably.
    """
    from medimeta.preprocess import mask_bbox

    box = mask_bbox(mask != 0)
    if mask.shape == full_shape:
        return box, False
    (mh, mw), (fh, fw) = mask.shape, full_shape
    if abs((mh / mw) / (fh / fw) - 1.0) > 0.01:
        raise SourceTreeError(
            f"{row}: the ROI mask is {mw}x{mh} px but the full mammogram is {fw}x{fh} px with a "
            "different aspect ratio; the region cannot be placed on the image"
        )
    sy, sx = fh / mh, fw / mw
    (r0, r1), (c0, c1) = box
    scaled = (
        (int(np.floor(r0 * sy)), int(np.ceil(r1 * sy))),
        (int(np.floor(c0 * sx)), int(np.ceil(c1 * sx))),
    )
    return scaled, True
