"""Intensity and colour-mode conversions to the 8-bit images MedIMeta stores.

Documented rules:

* Rounding to uint8 is round-half-up, ``floor(x + 0.5)``, after clipping to [0, 255]
  (``rounding="floor"`` truncates instead). NaN becomes 0.
* ``scale_to_uint8(..., rule="dtype_max")`` maps ``v`` to ``v * 255 / max`` where ``max`` is the
  largest value of the integer dtype (65535 for 16-bit), as the CBIS-DDSM pipeline did: no
  windowing and no per-image normalisation; negative values become 0. ``rule="minmax"`` maps the
  image's own minimum to 0 and maximum to 255 (a constant image becomes all 0).
  ``rule="range"`` maps a given ``value_range=(lo, hi)`` to 0..255, clipping outside it.
* ``to_mode`` drops an alpha channel (``alpha="drop"``, what ``PIL.Image.convert`` does and the
  original pipelines used) or composites the image over black (``alpha="black"``). Palette
  images are expanded through their palette first. RGB -> L uses Pillow's ITU-R 601-2 luma
  ``L = (299 R + 587 G + 114 B) / 1000``. 16-bit and 32-bit integer images go through
  :func:`scale_to_uint8` with ``high_bit`` as the rule; Pillow's mode ``"I"`` (32-bit) is read as
  a 16-bit container when all values lie in 0..65535 (Pillow opens some 16-bit files that way).
* ``ct_window`` clips Hounsfield units to ``[level - width/2, level + width/2]`` and maps that
  interval linearly to 0..255 (W400/L50: -150 -> 0, 50 -> 128, 250 -> 255).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image

from medimeta.errors import PreprocessError, check_choice

Rounding = Literal["nearest", "floor"]
ScaleRule = Literal["dtype_max", "minmax", "range"]

_HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_UINT16_MAX = 65535


def _quantize(values: np.ndarray, rounding: Rounding) -> np.ndarray:
    """Clip float values to [0, 255] and round them to uint8 with the documented rule."""
    check_choice("rounding", rounding, ("nearest", "floor"))
    # NaN has no intensity; it becomes 0 (black) rather than an undefined cast.
    clipped = np.clip(np.nan_to_num(values, nan=0.0), 0.0, 255.0)
    if rounding == "nearest":
        clipped = np.floor(clipped + 0.5)
    else:
        clipped = np.floor(clipped)
    return clipped.astype(np.uint8)


def _linear_to_uint8(arr: np.ndarray, lo: float, hi: float, rounding: Rounding) -> np.ndarray:
    values = arr.astype(np.float64)
    if hi == lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    # Multiply before dividing: (50 + 150) * 255 / 400 is exactly 127.5, the other order is not.
    return _quantize((values - lo) * 255.0 / (hi - lo), rounding)


def scale_to_uint8(
    arr: np.ndarray,
    rule: ScaleRule = "dtype_max",
    *,
    value_range: tuple[float, float] | None = None,
    rounding: Rounding = "nearest",
) -> np.ndarray:
    """Map an integer or float array to uint8 with one of the documented rules."""
    check_choice("scaling rule", rule, ("dtype_max", "minmax", "range"))
    if arr.dtype == np.uint8 and rule == "dtype_max":
        return arr.copy()
    if rule == "dtype_max":
        if not np.issubdtype(arr.dtype, np.integer):
            raise PreprocessError(
                f"rule='dtype_max' needs an integer array; got dtype {arr.dtype}; use "
                "rule='minmax', rule='range' with value_range=(lo, hi), or ct_window"
            )
        return _linear_to_uint8(arr, 0.0, float(np.iinfo(arr.dtype).max), rounding)
    if rule == "minmax":
        if arr.size == 0:
            return np.zeros(arr.shape, dtype=np.uint8)
        finite = arr[np.isfinite(arr)] if np.issubdtype(arr.dtype, np.floating) else arr
        if finite.size == 0:
            raise PreprocessError("rule='minmax' needs at least one finite value; got none")
        return _linear_to_uint8(arr, float(finite.min()), float(finite.max()), rounding)
    if value_range is None or len(value_range) != 2 or not value_range[0] < value_range[1]:
        raise PreprocessError(
            f"rule='range' needs value_range=(lo, hi) with lo < hi; got {value_range!r}"
        )
    return _linear_to_uint8(arr, float(value_range[0]), float(value_range[1]), rounding)


def ct_window(
    hu: np.ndarray,
    width: float = 400.0,
    level: float = 50.0,
    *,
    rounding: Rounding = "nearest",
) -> np.ndarray:
    """Apply a CT window (default abdominal W400/L50) to Hounsfield units; return uint8."""
    if not width > 0:
        raise PreprocessError(f"CT window width must be positive; got {width}")
    lower = level - width / 2.0
    return _linear_to_uint8(np.asarray(hu), lower, lower + width, rounding)


def binarize(mask: Image.Image | np.ndarray, threshold: float = 0) -> np.ndarray:
    """Return a bool array that is True where the (first-channel) value exceeds ``threshold``."""
    arr = np.asarray(mask)
    if arr.ndim == 3:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise PreprocessError(f"expected a 2-D mask; got shape {arr.shape}")
    return arr > threshold


def _high_bit_to_l(img: Image.Image, high_bit: ScaleRule) -> Image.Image:
    arr = np.asarray(img)
    if img.mode == "I" and high_bit == "dtype_max":
        if arr.size and (arr.min() < 0 or arr.max() > _UINT16_MAX):
            raise PreprocessError(
                "a 32-bit integer image (mode 'I') with values outside 0..65535 has no "
                f"documented 8-bit rule (range {arr.min()}..{arr.max()}); pass high_bit='minmax'"
            )
        arr = arr.astype(np.uint16)
    return Image.fromarray(scale_to_uint8(arr, high_bit))


def to_mode(
    img: Image.Image,
    mode: Literal["L", "RGB"],
    *,
    alpha: Literal["drop", "black"] = "drop",
    high_bit: ScaleRule = "dtype_max",
) -> Image.Image:
    """Convert a PIL image to 8-bit grey ("L") or colour ("RGB") with the documented rules."""
    check_choice("target mode", mode, ("L", "RGB"))
    check_choice("alpha handling", alpha, ("drop", "black"))
    if img.mode == mode:
        return img.copy()
    if img.mode == "P":
        # Expand through the palette first so transparency and colours are handled explicitly.
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode in _HIGH_BIT_MODES:
        img = _high_bit_to_l(img, high_bit)
    elif img.mode == "F":
        if high_bit == "dtype_max":
            raise PreprocessError(
                "a float image (mode 'F') has no dtype maximum; pass high_bit='minmax' or "
                "window it first (ct_window / scale_to_uint8 with rule='range')"
            )
        img = Image.fromarray(scale_to_uint8(np.asarray(img), high_bit))
    if img.mode in ("RGBA", "LA") and alpha == "black":
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(black, rgba).convert("RGB")
    if img.mode == mode:
        return img
    try:
        return img.convert(mode)
    except (ValueError, OSError) as exc:
        raise PreprocessError(
            f"cannot convert an image of mode {img.mode!r} to {mode!r}: {exc}"
        ) from exc
