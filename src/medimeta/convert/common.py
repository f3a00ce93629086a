"""Shared pieces of the converters: loading image files, channel detection, provenance.

Image rule for file-based converters (folder, CSV, MedFMC), in this order:

1. open with Pillow and convert to ``L`` (grey) or ``RGB`` with :func:`medimeta.preprocess.to_mode`
   (16-bit grey is scaled by the dtype maximum; transparency is composited on black);
2. make it square: ``pad`` (default: zero padding, centred as ``PIL.ImageOps.pad`` does, like
   most MedIMeta pipelines), ``crop`` (central square) or ``stretch`` (no squaring);
3. resize to 224x224 with bicubic interpolation; a side smaller than 224 is upscaled and the
   ``upscaled`` column says so. ``original_image_size`` records (width, height) of the file.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from medimeta.catalog.checks import plain_name
from medimeta.convert.inputs import IMAGE_ERRORS
from medimeta.errors import SourceTreeError, check_choice
from medimeta.format.record import SampleRecord
from medimeta.preprocess import center_crop_square, pad_to_square, resize_square, to_mode

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
FITS = ("pad", "crop", "stretch")
SPLIT_MANIFEST = "split_manifest.json"
_COLOUR_MODES = {"RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"}


@dataclass(frozen=True)
class ImageOptions:
    """How a converter turns an image file into a 224x224 sample (see the module rule)."""

    base_dir: str
    channels: int
    fit: str = "pad"

    def __post_init__(self) -> None:
        check_choice("fit", self.fit, FITS)
        check_choice("channels", str(self.channels), ("1", "3"))


def load_image_file(options: ImageOptions, record: SampleRecord) -> tuple[Image.Image, dict]:
    """Process function of the file converters; ``record.source`` is a path below base_dir."""
    path = Path(options.base_dir) / str(record.source)
    try:
        with Image.open(path) as opened:
            opened.load()
            img = to_mode(opened, "RGB" if options.channels == 3 else "L", alpha="black")
    except IMAGE_ERRORS as exc:
        raise SourceTreeError(
            f"{path}: not a readable image ({type(exc).__name__}: {exc}); fix: replace the file "
            "(or drop its row) and run again to resume"
        ) from None
    original = img.size
    if options.fit == "pad":
        img = pad_to_square(img)
    elif options.fit == "crop":
        img = center_crop_square(img)
    result = resize_square(img, allow_upscale=True)
    return result.image, {"original_image_size": original, "upscaled": result.upscaled}


def is_image_file(path: Path) -> bool:
    return (
        path.is_file()
        and not path.name.startswith(".")
        and (path.suffix.lower() in IMAGE_EXTENSIONS)
    )


def detect_channels(paths: Iterable[Path]) -> int:
    """3 if any file has a colour mode (read from its header only), else 1."""
    for path in paths:
        try:
            with Image.open(path) as img:
                if img.mode in _COLOUR_MODES:
                    return 3
        except IMAGE_ERRORS as exc:
            raise SourceTreeError(f"{path}: not a readable image ({exc})") from None
    return 1


def natural_key(text: str) -> list[Any]:
    """Sort key that orders ``img2`` before ``img10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(
    kind: str, source: str, *, derived_from: Sequence[str] = (), **details: Any
) -> dict[str, Any]:
    """info.yaml keys that say how the folder was made (toolkit version, source, options).

    ``derived_from``: ids of the datasets whose images these are (``--derived-from``), so that
    such a dataset is never a few-shot source for its origin.
    """
    from medimeta._version import __version__

    keys: dict[str, Any] = {
        "converted_by": f"medimeta {__version__}",
        "converted_from": {"kind": kind, "source": source, **details},
    }
    origins = [plain_name(d, path="--derived-from", key="derived_from", kind="dataset id")
               for d in derived_from]  # fmt: skip
    if origins:
        keys["derived_from"] = origins
    return keys


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """A split manifest as the JSON text written next to the data."""
    return (json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def user_info(
    dataset_id: str,
    *,
    name: str | None,
    summary: str,
    domain: str,
    tasks: list[dict[str, Any]],
    channels: int,
    license: str,
) -> dict[str, Any]:
    """Release-shaped info mapping for a user dataset (counts are filled in by the writer)."""
    return {
        "id": dataset_id,
        "name": name or dataset_id,
        "summary": summary,
        "domain": domain,
        "tasks": tasks,
        "input_size": [channels, 224, 224],
        "domain_overlaps": [],
        "subject_overlaps": [],
        "license": license,
        "original_data": [],
    }
