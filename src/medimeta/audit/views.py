"""Views compared by the pairing: 16 x 16 zero-mean, unit-norm vectors cut from thumbnails.

* ``full``: the whole content box;
* ``crop-xF`` / ``crop-yF``: the central fraction F (``CROPS``: 0.95 ... 0.7) of the box's
  width / height, stretched back to 16 x 16.

The dot product of two views is their Pearson correlation over 256 cells, invariant to
brightness and contrast. A *combination* is (view of image a, view of image b): ``full/full``
compares like with like; ``full/crop-x0.8`` finds b in a when a dataset center-cropped a
non-square source to a square while the other stretched or padded it (BreastMNIST against
MedIMeta's ``bus``: BUSI images are wider than tall, so the crop keeps 70-95 % of the width).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medimeta.audit.descriptors import BASE, area_matrix

SIDE = 16
CROPS = (0.95, 0.9, 0.85, 0.8, 0.75, 0.7)
View = tuple[float, float]  # (share of the height, share of the width) kept, centred
Combo = tuple[View, View]
FULL: View = (1.0, 1.0)
FULL_FULL: Combo = (FULL, FULL)
CHUNK = 8192


def view_name(view: View) -> str:
    fy, fx = view
    if view == FULL:
        return "full"
    if fy == 1.0:
        return f"crop-x{fx:g}"
    return f"crop-y{fy:g}" if fx == 1.0 else f"crop-{fy:g}x{fx:g}"


def combo_name(combo: Combo) -> str:
    return f"{view_name(combo[0])}/{view_name(combo[1])}"


def all_views(crops: Sequence[float] = CROPS) -> list[View]:
    """``full``, then the width crops, then the height crops."""
    return [FULL] + [(1.0, float(c)) for c in crops] + [(float(c), 1.0) for c in crops]


def all_combos(crops: Sequence[float] = CROPS) -> list[Combo]:
    """``full/full``, then ``full`` against each crop, then each crop against ``full``."""
    crops_ = all_views(crops)[1:]
    return [FULL_FULL] + [(FULL, v) for v in crops_] + [(v, FULL) for v in crops_]


def _matrix(share: float) -> np.ndarray:
    half = BASE / 2
    lo, hi = np.array([half * (1 - share)]), np.array([half * (1 + share)])
    return area_matrix(lo, hi, BASE, SIDE)[0]  # (SIDE, BASE)


def view_operator(view: View) -> np.ndarray:
    """``(BASE * BASE, SIDE * SIDE)`` float32: flattened thumbnail -> flattened view (the
    Kronecker product of the row and column box filters)."""
    return np.ascontiguousarray(np.kron(_matrix(view[0]), _matrix(view[1])).T, dtype=np.float32)


def views(thumbs: np.ndarray, view: View, flat: np.ndarray | None = None) -> np.ndarray:
    """``(N, 256)`` float32 vectors of one view of ``(N, BASE, BASE)`` thumbnails (zeros for
    the ``flat`` ones)."""
    return view_table(thumbs, [view], flat)[view]


def view_table(
    thumbs: np.ndarray, wanted: set[View] | list[View], flat: np.ndarray | None = None
) -> dict[View, np.ndarray]:
    """The vectors of each of ``wanted`` (one product per chunk for all views; about 1 KiB
    per image and view)."""
    order = list(wanted)
    n = thumbs.shape[0]
    ops = np.concatenate([view_operator(v) for v in order], axis=1)
    out = {v: np.empty((n, SIDE * SIDE), dtype=np.float32) for v in order}
    for s in range(0, n, CHUNK):
        t = np.asarray(thumbs[s : s + CHUNK], dtype=np.float32).reshape(-1, BASE * BASE)
        allv = t @ ops
        for k, v in enumerate(order):
            part = allv[:, k * SIDE * SIDE : (k + 1) * SIDE * SIDE]
            part -= part.mean(axis=1, keepdims=True)
            norm = np.sqrt(np.einsum("ij,ij->i", part, part))[:, None]
            out[v][s : s + t.shape[0]] = part / np.maximum(norm, 1e-6)
    if flat is not None:
        mask = np.asarray(flat, dtype=bool)
        for v in order:
            out[v][mask] = 0.0
    return out
