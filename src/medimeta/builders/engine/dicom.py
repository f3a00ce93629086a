"""Reading DICOM files and turning their pixels into 8-bit images.

Pixel decoding is pydicom's: uncompressed data needs nothing else; JPEG 2000 and JPEG data need a
decoder plugin (Pillow built with OpenJPEG, which the standard Pillow wheels are, or
pylibjpeg-openjpeg). A missing decoder raises :class:`MissingDependencyError` naming the transfer
syntax.

8-bit rules of :func:`to_uint8` (``rule=``):

* ``"bits_stored"`` (default): an unsigned image maps ``0 .. 2**BitsStored - 1`` linearly to
  ``0 .. 255`` (values above the stored range are clipped). For 16-bit files that store all 16
  bits (CBIS-DDSM) this is exactly the original MedIMeta rule ``v * 255 / 65535``; for a 10- or
  12-bit file it uses the whole grey range instead of leaving the image almost black. Signed
  images have no such range and are refused: use ``"window"`` or ``"minmax"``.
* ``"dtype_max"``: ``v * 255 / max(dtype)`` (the original CBIS pipeline, whatever BitsStored says).
* ``"window"``: the file's first WindowCenter/WindowWidth applied to modality values (Rescale
  Slope/Intercept applied first, so CT windows are in Hounsfield units).
* ``"minmax"``: the image's own minimum and maximum map to 0 and 255.

MONOCHROME1 images (where a high value is dark) are inverted after scaling so that the stored
image always shows high intensity as white. Colour images (RGB, YBR) come back as RGB uint8.
Rounding follows :mod:`medimeta.preprocess.intensity` (round half up).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from medimeta.errors import MissingDependencyError, PreprocessError, SourceTreeError, check_choice
from medimeta.preprocess import scale_to_uint8

DicomRule = Literal["bits_stored", "dtype_max", "window", "minmax"]
_RULES = ("bits_stored", "dtype_max", "window", "minmax")


@dataclass(frozen=True)
class DicomHeader:
    """The header fields the builders use (read without the pixel data)."""

    path: Path
    modality: str
    series_description: str
    study_uid: str
    series_uid: str
    patient_id: str
    rows: int
    columns: int
    bits_stored: int
    signed: bool
    photometric: str
    transfer_syntax: str


def _pydicom() -> Any:
    try:
        import pydicom
    except ImportError as exc:  # pragma: no cover - the sources extra (and dev) install it
        raise MissingDependencyError.for_extra(
            "sources", f"reading DICOM files needs pydicom ({exc})"
        ) from exc
    return pydicom


def read_dataset(source: str | Path | IO[bytes], *, pixels: bool = True, name: str = "") -> Any:
    """Read a DICOM file (a path or a binary file object) with pydicom.

    ``pixels=False`` stops before the pixel data. ``name`` is used in messages for file objects.
    """
    pydicom = _pydicom()
    where = name or str(source)
    try:
        return pydicom.dcmread(source, stop_before_pixels=not pixels)
    except (pydicom.errors.InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise SourceTreeError(
            f"{where}: not a readable DICOM file ({exc}); re-download the file"
        ) from exc


def header_of(ds: Any, path: str | Path) -> DicomHeader:
    """Collect the :class:`DicomHeader` fields of a pydicom dataset."""
    meta = getattr(ds, "file_meta", None)
    syntax = str(getattr(meta, "TransferSyntaxUID", "")) if meta is not None else ""
    return DicomHeader(
        path=Path(path),
        modality=str(ds.get("Modality", "") or ""),
        series_description=str(ds.get("SeriesDescription", "") or "").strip(),
        study_uid=str(ds.get("StudyInstanceUID", "") or ""),
        series_uid=str(ds.get("SeriesInstanceUID", "") or ""),
        patient_id=str(ds.get("PatientID", "") or ""),
        rows=int(ds.get("Rows", 0) or 0),
        columns=int(ds.get("Columns", 0) or 0),
        bits_stored=int(ds.get("BitsStored", 0) or 0),
        signed=int(ds.get("PixelRepresentation", 0) or 0) == 1,
        photometric=str(ds.get("PhotometricInterpretation", "") or ""),
        transfer_syntax=syntax,
    )


def read_header(path: str | Path) -> DicomHeader:
    """Read only the header of a DICOM file."""
    return header_of(read_dataset(path, pixels=False), path)


def pixel_array(ds: Any, path: str | Path) -> np.ndarray:
    """Decode the stored pixel values (no rescale, no inversion, first frame only)."""
    if "PixelData" not in ds:
        raise SourceTreeError(f"{path}: the DICOM file has no pixel data; re-download the file")
    try:
        arr = np.asarray(ds.pixel_array)
    except (RuntimeError, NotImplementedError) as exc:
        syntax = header_of(ds, path).transfer_syntax
        raise MissingDependencyError(
            f"{path}: no pixel-data decoder for transfer syntax {syntax} ({exc}); install "
            "Pillow with OpenJPEG support or `pip install pylibjpeg pylibjpeg-openjpeg`"
        ) from exc
    except ValueError as exc:
        raise SourceTreeError(f"{path}: the pixel data cannot be decoded ({exc})") from exc
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        arr = arr[0]
    return arr


def _first(value: Any) -> float:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = value[0]
    return float(value)


def _colour_to_uint8(arr: np.ndarray) -> np.ndarray:
    # pydicom already returns YBR data converted to RGB (its ``as_rgb`` default).
    if arr.dtype != np.uint8:
        arr = scale_to_uint8(arr, "dtype_max")
    return np.ascontiguousarray(arr)


def window_of(ds: Any) -> tuple[float, float] | None:
    """The first (WindowCenter, WindowWidth) pair of the header, or None."""
    if "WindowCenter" not in ds or "WindowWidth" not in ds:
        return None
    return _first(ds.WindowCenter), _first(ds.WindowWidth)


def rescale_of(ds: Any) -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept); (1, 0) when absent."""
    return float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)


def scale_pixels(
    arr: np.ndarray,
    header: DicomHeader,
    rule: DicomRule = "bits_stored",
    *,
    window: tuple[float, float] | None = None,
    rescale: tuple[float, float] = (1.0, 0.0),
) -> np.ndarray:
    """Map stored grey values (or a crop of them) to uint8 with the module's rules."""
    check_choice("DICOM 8-bit rule", rule, _RULES)
    path = header.path
    if arr.ndim != 2:
        raise PreprocessError(f"{path}: expected a 2-D grey image; got pixel shape {arr.shape}")
    if rule == "bits_stored":
        if header.signed or not np.issubdtype(arr.dtype, np.unsignedinteger):
            raise PreprocessError(
                f"{path}: rule 'bits_stored' needs unsigned pixels; this file stores signed "
                f"{arr.dtype} values; use rule='window' or rule='minmax'"
            )
        bits = header.bits_stored or arr.dtype.itemsize * 8
        out = scale_to_uint8(arr, "range", value_range=(0.0, float(2**bits - 1)))
    elif rule == "dtype_max":
        out = scale_to_uint8(arr, "dtype_max")
    elif rule == "minmax":
        out = scale_to_uint8(arr, "minmax")
    else:
        if window is None:
            raise PreprocessError(
                f"{path}: rule 'window' needs WindowCenter and WindowWidth in the header; "
                "use rule='minmax' or window the modality values yourself"
            )
        center, width = window
        if not width > 0:
            raise PreprocessError(f"{path}: WindowWidth must be positive; got {width}")
        lo = center - width / 2.0
        values = arr.astype(np.float64) * rescale[0] + rescale[1]
        out = scale_to_uint8(values, "range", value_range=(lo, lo + width))
    if header.photometric == "MONOCHROME1":
        out = 255 - out
    return out


def to_uint8(ds: Any, path: str | Path, rule: DicomRule = "bits_stored") -> np.ndarray:
    """Decode a DICOM image and map it to uint8 (grey: :func:`scale_pixels`; colour: RGB)."""
    check_choice("DICOM 8-bit rule", rule, _RULES)
    header = header_of(ds, path)
    arr = pixel_array(ds, path)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        return _colour_to_uint8(arr[..., :3])
    return scale_pixels(arr, header, rule, window=window_of(ds), rescale=rescale_of(ds))


def distinct_values(arr: np.ndarray, limit: int = 3) -> np.ndarray:
    """Up to ``limit`` distinct values of ``arr`` (sorted); cheap test for binary masks."""
    flat = arr.reshape(-1)
    # A quick look at a strided sample avoids sorting a 30-megapixel mammogram in most cases.
    sample = np.unique(flat[:: max(1, flat.size // 65536)])
    if sample.size >= limit:
        return sample[:limit]
    return np.unique(flat)[:limit]


def is_binary_mask(arr: np.ndarray) -> bool:
    """True when the image has at most two distinct values (a region-of-interest mask)."""
    return distinct_values(arr).size <= 2
