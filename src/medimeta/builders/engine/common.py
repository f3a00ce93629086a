"""Helpers shared by the builders: image recipes, split policies, class folders, label tables.

Split sizes follow the release's rule (reference §3.3): with ratios r over N units (images or
groups), train gets ``floor(r_train * N)``, val ``floor(r_val * N)`` and test the rest (or val
the rest when there is no test ratio). So a full build reproduces the release's split sizes
exactly (e.g. bus 546/78/156, pbc 11964/1709/3419). Which unit goes where follows
:mod:`medimeta.splitting` (SHA-256 order of the group key with the seed), which is independent
of pandas/numpy versions; the release's own assignment was never published.
"""

from __future__ import annotations

import io
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, Literal

import numpy as np
from PIL import Image

from medimeta.builders.engine.source import IMAGE_PATTERNS, SourceReport
from medimeta.builders.engine.tree import SourceFile, SourceTree
from medimeta.errors import PreprocessError, SourceTreeError
from medimeta.format.record import SampleRecord
from medimeta.preprocess import center_crop_square, pad_to_square, resize_square, to_mode
from medimeta.splitting import assign_splits, assign_splits_within, build_split_manifest

SEED = 42
RANDOM_RATIOS = (0.7, 0.1, 0.2)
RESPLIT_RATIOS = (0.85, 0.15)


# -- images --------------------------------------------------------------------------------


def open_image(source: SourceFile) -> Image.Image:
    """Decode a raw image file fully (the file is closed afterwards)."""
    try:
        img = Image.open(io.BytesIO(source.read_bytes()))
        img.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise PreprocessError(f"{source.location()}: cannot decode image ({exc})") from exc
    return img


@dataclass(frozen=True)
class ImageRecipe:
    """How one raw image becomes a 224x224 sample (reference §3.4 conventions).

    ``square``: ``"pad"`` (zero-pad to square), ``"crop"`` (central square) or ``"none"``
    (the source is square already; anything else is an error). ``method``: ``"resize"`` (may
    upscale when ``allow_upscale``) or ``"thumbnail"`` (Pillow's thumbnail reduction).
    """

    mode: Literal["L", "RGB"]
    square: Literal["pad", "crop", "none"] = "pad"
    method: Literal["resize", "thumbnail"] = "thumbnail"
    allow_upscale: bool = False

    def apply(self, img: Image.Image) -> tuple[Image.Image, dict[str, Any]]:
        """The processed image and annotations ``original_image_size`` (and ``upscaled``)."""
        original = img.size
        img = to_mode(img, self.mode, alpha="drop")
        if self.square == "pad":
            img = pad_to_square(img)
        elif self.square == "crop":
            img = center_crop_square(img)
        elif img.size[0] != img.size[1]:
            raise PreprocessError(f"expected a square image; got {img.size[0]}x{img.size[1]}")
        # A square source smaller than 224 px can only become 224 px by upscaling; the
        # thumbnail method never enlarges, so that case falls back to a bicubic resize.
        method = self.method
        if method == "thumbnail" and min(img.size) < 224 and self.allow_upscale:
            method = "resize"
        result = resize_square(img, allow_upscale=self.allow_upscale, method=method)
        notes: dict[str, Any] = {"original_image_size": original}
        if self.allow_upscale:
            notes["upscaled"] = result.upscaled
        return result.image, notes


def process_image(record: SampleRecord, recipe: ImageRecipe) -> tuple[Image.Image, dict]:
    """Writer ``process`` function for records whose ``source`` is one image file."""
    return recipe.apply(open_image(record.source))


# -- splits --------------------------------------------------------------------------------


def release_counts(n: int, ratios: Sequence[float]) -> tuple[int, ...]:
    """Units per split by the release rule (module docstring); exact decimal arithmetic."""
    exact = [Fraction(repr(float(r))) for r in ratios]
    counts = [math.floor(r * n) for r in exact[:-1]]
    return (*counts, n - sum(counts))


def _exact_ratios(n: int, ratios: Sequence[float]) -> tuple[float, ...]:
    # Ratios that make splitting's largest-remainder rule give exactly the release counts.
    counts = release_counts(n, ratios)
    return tuple(c / n for c in counts) if n else tuple(float(r) for r in ratios)


def random_splits(keys: Sequence[Hashable], *, seed: int = SEED) -> np.ndarray:
    """70/10/20 over distinct ``keys`` (images when no subject is known), release sizes."""
    n = len(set(keys))
    return assign_splits(keys, ratios=_exact_ratios(n, RANDOM_RATIOS), seed=seed)


def split_by_image(
    records: Sequence[SampleRecord], note: str
) -> tuple[list[SampleRecord], dict[str, Any]]:
    """Records with a random 70/10/20 split per image, and the split manifest that records it."""
    keys = [r.original_filepath for r in records]
    splits = random_splits(keys)
    out = [replace(r, split=str(s)) for r, s in zip(records, splits, strict=True)]
    manifest = split_manifest(
        keys,
        list(splits),
        method="random",
        group_column="original_filepath",
        ratios=RANDOM_RATIOS,
        note=note,
    )
    return out, manifest


def source_split_manifest(records: Sequence[SampleRecord], note: str) -> dict[str, Any]:
    """Manifest for records that keep the source's own split, one image per group."""
    return split_manifest(
        [r.original_filepath for r in records],
        [r.split for r in records],
        method="source",
        group_column="original_filepath",
        ratios=None,
        seed=None,
        note=note,
    )


def resplit_train(
    groups: Sequence[Hashable],
    source_splits: Sequence[str],
    *,
    mapping: dict[str, str] | None = None,
    seed: int = SEED,
    require_disjoint: bool = True,
) -> np.ndarray:
    """Source train -> 85/15 train/val by group; other source splits mapped (default same).

    ``require_disjoint=False`` accepts groups that the source itself put into train and test.
    """
    n = len({g for g, s in zip(groups, source_splits, strict=True) if s == "train"})
    return assign_splits_within(
        groups,
        source_splits,
        resplit="train",
        ratios=_exact_ratios(n, RESPLIT_RATIOS),
        seed=seed,
        mapping=mapping,
        require_disjoint=require_disjoint,
    )


def split_manifest(
    groups: Sequence[Hashable],
    splits: Sequence[str],
    *,
    method: str,
    group_column: str,
    ratios: Sequence[float] | None,
    seed: int | None = SEED,
    note: str = "",
) -> dict[str, Any]:
    """:func:`medimeta.splitting.build_split_manifest` with this module's rounding recorded."""
    manifest = build_split_manifest(
        list(groups),
        list(splits),
        method=method,
        seed=seed,
        ratios=ratios,
        group_column=group_column,
        extra={"note": note} if note else None,
    )
    if ratios is not None:
        manifest["rounding"] = "release: floor(train), floor(val), rest to the last split"
    return manifest


# -- raw trees -----------------------------------------------------------------------------


def image_files(tree: SourceTree, folder: str) -> list[SourceFile]:
    """Images (png/jpg/jpeg/tif/tiff) directly in virtual ``folder`` (``a/b/``), sorted."""
    return [f for p in IMAGE_PATTERNS for f in tree.glob(p, folder)]


def sorted_files(files: Sequence[SourceFile]) -> list[SourceFile]:
    """Files sorted by virtual path (the deterministic sample order of folder builders)."""
    return sorted(files, key=lambda f: f.path)


def read_table(source: SourceFile, report: SourceReport, **kwargs: Any) -> Any:
    """A CSV as a pandas DataFrame of strings (BOM stripped); problems go to ``report``."""
    import pandas as pd

    try:
        raw = source.read_bytes()
        return pd.read_csv(
            io.BytesIO(raw), dtype=str, keep_default_na=False, encoding="utf-8-sig", **kwargs
        )
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        report.problems.append(f"{source.path}: cannot read as CSV ({exc})")
        return None


def require_columns(
    frame: Any, columns: Sequence[str], source: SourceFile, report: SourceReport
) -> bool:
    """True when ``frame`` has every column; otherwise the missing ones go to ``report``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        report.problems.append(
            f"{source.path}: missing column(s) {missing}; found {list(frame.columns)[:12]}"
        )
        return False
    return True


def label_key(task_labels: Mapping[int, str], name: str, where: str) -> int:
    """The key of label ``name`` in a task's label dict, or SourceTreeError."""
    for key, value in task_labels.items():
        if value == name:
            return key
    raise SourceTreeError(f"{where}: label {name!r} is not one of {list(task_labels.values())}")
