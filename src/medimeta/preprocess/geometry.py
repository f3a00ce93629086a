"""Square padding, square cropping and resizing to the MedIMeta output size.

Every function accepts a PIL image or a numpy array (height x width [x channels]) and returns
the same kind. Inputs are never modified.

Offset rules (kept identical to the original MedIMeta pipelines so that builds can be compared
pixel by pixel):

* :func:`pad_to_square` puts the image at offset ``round((side - short) / 2)`` with Python's
  round-half-to-even (this is what ``PIL.ImageOps.pad`` does). A padding of 3 gives 2 before
  and 1 after; a padding of 5 gives 2 before and 3 after.
* :func:`center_crop_square` starts the crop at ``(long - short) // 2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import numpy as np
from PIL import Image

from medimeta.errors import PreprocessError, check_choice

ImageT = TypeVar("ImageT", Image.Image, np.ndarray)

#: Side length of every MedIMeta image.
OUTPUT_SIZE = 224

_BICUBIC = Image.Resampling.BICUBIC
_NEAREST = Image.Resampling.NEAREST
# Pillow's default for ``thumbnail``; the original pipelines relied on it.
_THUMBNAIL_REDUCING_GAP = 2.0


def image_size(img: Image.Image | np.ndarray) -> tuple[int, int]:
    """Return ``(width, height)`` of a PIL image or an H x W [x C] array."""
    if isinstance(img, Image.Image):
        return img.size
    _check_array(img)
    return int(img.shape[1]), int(img.shape[0])


def pad_offset(short: int, long: int) -> int:
    """Offset of the image inside its padded square: ``round((long - short) / 2)``, half-to-even."""
    return round((long - short) / 2)


def pad_to_square(img: ImageT, fill: int | float | tuple[int, ...] = 0) -> ImageT:
    """Pad the shorter side with ``fill`` (default black) to a centred square of side max(w, h)."""
    width, height = image_size(img)
    side = max(width, height)
    left = pad_offset(width, side)
    top = pad_offset(height, side)
    if isinstance(img, Image.Image):
        out = Image.new(img.mode, (side, side), fill)  # type: ignore[arg-type]
        if img.mode == "P":
            palette = img.getpalette()
            if palette is not None:
                out.putpalette(palette)
        out.paste(img, (left, top))
        return out
    pad = [(top, side - height - top), (left, side - width - left)]
    pad += [(0, 0)] * (img.ndim - 2)
    if isinstance(fill, tuple):
        if img.ndim != 3 or len(fill) != img.shape[2]:
            raise PreprocessError(
                f"a fill of {len(fill)} values needs an H x W x {len(fill)} array; "
                f"got shape {img.shape}"
            )
        out_arr = np.empty((side, side, img.shape[2]), dtype=img.dtype)
        out_arr[...] = np.asarray(fill, dtype=img.dtype)
        out_arr[top : top + height, left : left + width] = img
        return out_arr
    return np.pad(img, pad, mode="constant", constant_values=fill)


def center_crop_square(img: ImageT) -> ImageT:
    """Crop the central min(w, h) square (offset floor). A square input is returned as is."""
    width, height = image_size(img)
    side = min(width, height)
    if width == height:
        return img
    left = (width - side) // 2
    top = (height - side) // 2
    if isinstance(img, Image.Image):
        return img.crop((left, top, left + side, top + side))
    return img[top : top + side, left : left + side]


@dataclass(frozen=True)
class ResizeResult(Generic[ImageT]):
    """Output of :func:`resize_square`.

    ``upscaled`` is True when the width or the height had to grow to reach the output size;
    builders record it in the annotations. ``original_size`` is the input's ``(width, height)``.
    """

    image: ImageT
    upscaled: bool
    original_size: tuple[int, int]


def resize_square(
    img: ImageT,
    size: int = OUTPUT_SIZE,
    *,
    allow_upscale: bool = False,
    is_mask: bool = False,
    method: Literal["resize", "thumbnail"] = "resize",
) -> ResizeResult[ImageT]:
    """Resize to exactly ``size`` x ``size``: bicubic for images, nearest neighbour for masks.

    ``method="resize"`` is ``PIL.Image.resize`` and accepts any aspect ratio (a non-square input
    is stretched; physically square CT crops rely on this). ``method="thumbnail"`` reproduces
    ``PIL.Image.thumbnail`` (``reducing_gap=2.0``: a box pre-reduction for sources at least ~4.5x
    larger), which only yields a square output from a square input, so it requires one. Neither
    method uses JPEG draft decoding, because the image is already decoded. Enlarging always uses
    plain ``resize`` and is refused unless ``allow_upscale`` is True.
    """
    check_choice("resize method", method, ("resize", "thumbnail"))
    if size < 1:
        raise PreprocessError(f"output size must be a positive integer; got {size}")
    width, height = image_size(img)
    upscaled = width < size or height < size
    if upscaled and not allow_upscale:
        raise PreprocessError(
            f"image of {width}x{height} px is smaller than the output size {size}x{size} and "
            "upscaling is not allowed; pass allow_upscale=True (the result records "
            "upscaled=True) or use a larger source"
        )
    if method == "thumbnail" and width != height:
        raise PreprocessError(
            f"method='thumbnail' keeps the aspect ratio, so it needs a square input; got "
            f"{width}x{height}; call pad_to_square or center_crop_square first"
        )
    resample = _NEAREST if is_mask else _BICUBIC
    thumb = method == "thumbnail" and not upscaled
    if isinstance(img, Image.Image):
        out = _resize_pil(img, size, resample, thumb)
        return ResizeResult(image=out, upscaled=upscaled, original_size=(width, height))
    out_arr = np.asarray(_resize_pil(_array_to_pil(img), size, resample, thumb)).copy()
    return ResizeResult(image=out_arr, upscaled=upscaled, original_size=(width, height))


def _resize_pil(
    img: Image.Image, size: int, resample: Image.Resampling, thumb: bool
) -> Image.Image:
    if thumb:
        out = img.copy()
        out.thumbnail((size, size), resample, reducing_gap=_THUMBNAIL_REDUCING_GAP)
        return out
    return img.resize((size, size), resample)


def _check_array(arr: np.ndarray) -> None:
    if arr.ndim not in (2, 3) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise PreprocessError(
            f"expected an image array of shape H x W or H x W x C; got shape {arr.shape}"
        )


def _array_to_pil(arr: np.ndarray) -> Image.Image:
    ok = (
        (arr.dtype == np.bool_ and arr.ndim == 2)
        or (arr.dtype == np.uint8 and (arr.ndim == 2 or arr.shape[2] in (3, 4)))
        or (arr.dtype == np.float32 and arr.ndim == 2)
    )
    if not ok:
        raise PreprocessError(
            "arrays to resize must be bool (H x W), uint8 (H x W, H x W x 3, H x W x 4) or "
            f"float32 (H x W); got dtype {arr.dtype} with shape {arr.shape}; convert with "
            "scale_to_uint8 or to_mode first"
        )
    return Image.fromarray(np.ascontiguousarray(arr))
