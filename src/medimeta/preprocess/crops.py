"""Crops around bounding boxes: zero-padded crops, physically square crops, CBIS-style ROI crops.

Box convention: a box is one ``(start, stop)`` pair per array axis, in array axis order
(rows, columns[, slices]), with ``stop`` **exclusive** as in Python slicing. A source that gives
inclusive corners (for example the LiTS organ boxes ``x1 x2``) is passed as ``(x1, x2 + 1)``.
Boxes may reach outside the array; the part outside is filled with ``fill`` (default 0).

Growing rule: when an axis must grow from ``n`` to ``m`` voxels, the box grows around its centre
and the odd voxel goes to the far side: ``start' = start - (m - n) // 2``, ``stop' = start' + m``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medimeta.errors import PreprocessError

Box = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Crop:
    """A crop and the box it was cut from (source coordinates; may reach outside the source)."""

    array: np.ndarray
    box: Box
    padded: bool


@dataclass(frozen=True)
class VolumeSlice:
    """A 2-D slice through a volume with the box and voxel spacing of the remaining two axes."""

    array: np.ndarray
    box: Box
    index: int
    spacing: tuple[float, float] | None


def _check_box(box: Sequence[Sequence[int]], ndim: int) -> Box:
    if len(box) != ndim:
        raise PreprocessError(f"expected a box with {ndim} (start, stop) pairs; got {box!r}")
    out = []
    for axis, pair in enumerate(box):
        if len(pair) != 2:
            raise PreprocessError(f"box axis {axis} must be a (start, stop) pair; got {pair!r}")
        start, stop = int(pair[0]), int(pair[1])
        if stop <= start:
            raise PreprocessError(
                f"box axis {axis} is empty: start {start} must be below stop {stop} "
                "(stop is exclusive; for inclusive corners pass (lo, hi + 1))"
            )
        out.append((start, stop))
    return tuple(out)


def _check_spacing(spacing: Sequence[float], ndim: int) -> tuple[float, ...]:
    values = tuple(float(s) for s in spacing)
    if len(values) != ndim or not all(math.isfinite(s) and s > 0 for s in values):
        raise PreprocessError(
            f"voxel spacing must be {ndim} positive finite numbers (mm per voxel); got {spacing!r}"
        )
    return values


def grow_axis(start: int, stop: int, length: int) -> tuple[int, int]:
    """Grow ``[start, stop)`` around its centre to ``length`` voxels (never shrinks)."""
    extra = max(0, length - (stop - start))
    new_start = start - extra // 2
    return new_start, new_start + max(length, stop - start)


def mask_bbox(mask: np.ndarray) -> Box:
    """Tight box of the non-zero pixels of a 2-D mask."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise PreprocessError(f"expected a 2-D mask; got shape {arr.shape}")
    rows = np.flatnonzero(arr.any(axis=1))
    cols = np.flatnonzero(arr.any(axis=0))
    if rows.size == 0:
        raise PreprocessError(
            f"the mask of shape {arr.shape} has no non-zero pixel, so it has no bounding box"
        )
    return (int(rows[0]), int(rows[-1]) + 1), (int(cols[0]), int(cols[-1]) + 1)


def crop_with_padding(arr: np.ndarray, box: Sequence[Sequence[int]], fill: float = 0) -> Crop:
    """Cut ``box`` (over the first len(box) axes) out of ``arr``; pad with ``fill`` outside it."""
    checked = _check_box(box, len(box))
    if len(checked) > arr.ndim:
        raise PreprocessError(f"a {len(checked)}-axis box does not fit an array of {arr.shape}")
    out_shape = tuple(stop - start for start, stop in checked) + arr.shape[len(checked) :]
    out = np.full(out_shape, fill, dtype=arr.dtype)
    src, dst = [], []
    for (start, stop), extent in zip(checked, arr.shape, strict=False):
        lo, hi = max(start, 0), min(stop, extent)
        if hi <= lo:  # the box lies completely outside the array on this axis
            return Crop(array=out, box=checked, padded=True)
        src.append(slice(lo, hi))
        dst.append(slice(lo - start, hi - start))
    out[tuple(dst)] = arr[tuple(src)]
    padded = any(
        start < 0 or stop > extent
        for (start, stop), extent in zip(checked, arr.shape, strict=False)
    )
    return Crop(array=out, box=checked, padded=padded)


def physically_square_box(box: Sequence[Sequence[int]], spacing: Sequence[float]) -> Box:
    """Grow the physically shorter sides of a 2-D (or n-D) box to the longest physical side.

    The new voxel count of an axis is ``round(longest_mm / spacing)`` (half up), never fewer than
    before, so each side's physical length is within half a voxel of the longest side.
    """
    checked = _check_box(box, len(box))
    mm = _check_spacing(spacing, len(checked))
    longest = max((stop - start) * s for (start, stop), s in zip(checked, mm, strict=True))
    grown = []
    for (start, stop), s in zip(checked, mm, strict=True):
        grown.append(grow_axis(start, stop, math.floor(longest / s + 0.5)))
    return tuple(grown)


def crop_physically_square(
    image: np.ndarray,
    box: Sequence[Sequence[int]],
    spacing: Sequence[float],
    fill: float = 0,
) -> Crop:
    """Crop a physically square region around ``box`` of a 2-D slice, zero-padded at borders.

    The result is generally not square in pixels; resizing it to 224 x 224 makes the pixels
    isotropic.
    """
    if image.ndim != 2:
        raise PreprocessError(f"expected a 2-D slice; got shape {image.shape}")
    return crop_with_padding(image, physically_square_box(box, spacing), fill)


def roi_crop(
    image: np.ndarray,
    roi: np.ndarray | Sequence[Sequence[int]],
    *,
    min_size: int = 224,
    fill: float = 0,
) -> Crop:
    """CBIS-style region-of-interest crop: box grown to >= ``min_size`` px, squared, zero padded.

    ``roi`` is a mask of the image's height x width (its non-zero pixels define the box) or a
    box. Each side grows around the centre to ``max(min_size, longest side)``, so the crop is
    square and at least ``min_size`` px; parts outside the image are filled with ``fill``.
    (The original pipeline grew each side by ``(224 - n) // 2`` on both ends, which can end at
    223 px; here the side is exact.)
    """
    if image.ndim not in (2, 3):
        raise PreprocessError(f"expected an H x W [x C] image; got shape {image.shape}")
    if min_size < 1:
        raise PreprocessError(f"min_size must be a positive integer; got {min_size}")
    if isinstance(roi, np.ndarray):
        if roi.shape[:2] != image.shape[:2]:
            raise PreprocessError(
                f"ROI mask shape {roi.shape[:2]} differs from the image shape {image.shape[:2]}; "
                "the mask must cover the same pixels as the image"
            )
        box = mask_bbox(roi if roi.ndim == 2 else roi[..., 0])
    else:
        box = _check_box(roi, 2)
    side = max(min_size, *(stop - start for start, stop in box))
    return crop_with_padding(image, tuple(grow_axis(a, b, side) for a, b in box), fill)


def slice_through_box(
    volume: np.ndarray,
    box: Sequence[Sequence[int]],
    axis: int,
    spacing: Sequence[float] | None = None,
) -> VolumeSlice:
    """Take the slice through the centre voxel ``(start + stop - 1) // 2`` of ``box`` on ``axis``.

    For an inclusive box ``(lo, hi)`` this is the original pipeline's ``(lo + hi) // 2``. The
    returned box and spacing are those of the two remaining axes, in their array order.
    """
    if volume.ndim != 3:
        raise PreprocessError(f"expected a 3-D volume; got shape {volume.shape}")
    if axis not in (0, 1, 2):
        raise PreprocessError(f"axis must be 0, 1 or 2; got {axis}")
    checked = _check_box(box, 3)
    start, stop = checked[axis]
    index = (start + stop - 1) // 2
    if not 0 <= index < volume.shape[axis]:
        raise PreprocessError(
            f"the box centre {index} on axis {axis} lies outside the volume of shape "
            f"{volume.shape}; check the box and the volume orientation"
        )
    rest = [a for a in range(3) if a != axis]
    mm = None
    if spacing is not None:
        full = _check_spacing(spacing, 3)
        mm = (full[rest[0]], full[rest[1]])
    return VolumeSlice(
        array=np.take(volume, index, axis=axis),
        box=(checked[rest[0]], checked[rest[1]]),
        index=index,
        spacing=mm,
    )
