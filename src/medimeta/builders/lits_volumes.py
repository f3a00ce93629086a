"""LiTS CT volumes and the organ bounding boxes of Xu et al. (organs_axial/coronal/sagittal).

* Box files: one organ per line, ``<label> <idx> x1 x2 y1 y2 z1 z2``, integer voxel indices of
  the volume's three array axes (nibabel order), **inclusive** on both ends. They are stored here
  as exclusive ``(start, stop)`` pairs (``(x1, x2 + 1)``), the convention of
  :mod:`medimeta.preprocess.crops`.
* Planes: sagittal slices along array axis 0, coronal along axis 1, axial along axis 2 (as in the
  release; no reorientation to the radiological display convention).
* ``test-volume-59`` stores its second and third axes swapped relative to the other volumes and
  to its box file; reads are permuted accordingly (without loading the whole volume).
* Spacing comes from the NIfTI header (``get_zooms``); a volume whose three spacings are all
  exactly 1.0 has no real spacing information and is reported by :func:`has_spacing`.
* Slices are read through nibabel's array proxy, so only the needed slice is loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medimeta.errors import SourceTreeError

#: Label names in the box files -> MedIMeta label names.
ORGAN_NAMES = {
    "heart": "heart",
    "lung-l": "left lung",
    "lung-r": "right lung",
    "liver": "liver",
    "spleen": "spleen",
    "pancreas": "pancreas",
    "kidney-l": "left kidney",
    "kidney-r": "right kidney",
    "bladder": "bladder",
    "femur-l": "left femoral head",
    "femur-r": "right femoral head",
}
#: Plane name -> array axis the slice is taken along.
PLANE_AXES = {"sagittal": 0, "coronal": 1, "axial": 2}
#: Volumes stored with their 2nd and 3rd axes swapped (file name -> axis permutation).
AXIS_PERMUTATIONS = {"test-volume-59": (0, 2, 1)}

Box3 = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
_VOLUME_RE = re.compile(r"^(test-)?volume-(\d+)\.nii(\.gz)?$")


@dataclass(frozen=True)
class OrganBox:
    """One organ box of one volume (exclusive stops)."""

    organ: str
    label_name: str
    index: str
    box: Box3
    line: int

    @property
    def inclusive(self) -> tuple[int, int, int, int, int, int]:
        """The box as written in the file: ``x1 x2 y1 y2 z1 z2`` (inclusive)."""
        (a, b), (c, d), (e, f) = self.box
        return (a, b - 1, c, d - 1, e, f - 1)


def volume_key(path: Path) -> tuple[str, int] | None:
    """``("train", n)`` for ``volume-n.nii[.gz]``, ``("test", n)`` for ``test-volume-n``."""
    found = _VOLUME_RE.match(path.name)
    if found is None:
        return None
    return ("test" if found.group(1) else "train", int(found.group(2)))


def volume_stem(split: str, number: int) -> str:
    """``volume-<n>`` or ``test-volume-<n>``."""
    return f"{'test-' if split == 'test' else ''}volume-{number}"


def box_file_number(path: Path) -> int:
    """Volume number of a box file (the last integer in its name, e.g. segmentation-12.txt)."""
    numbers = re.findall(r"\d+", path.stem)
    if not numbers:
        raise SourceTreeError(
            f"{path}: an organ box file name must contain the volume number "
            "(e.g. segmentation-12.txt); rename it or remove it"
        )
    return int(numbers[-1])


def parse_box_file(path: Path) -> list[OrganBox]:
    """Read one box file (module rules); unknown organs and malformed lines are errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceTreeError(f"{path}: cannot read the organ box file ({exc})") from exc
    boxes = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path} line {number}"
        if len(fields) != 8:
            raise SourceTreeError(
                f"{where}: expected 8 fields 'label idx x1 x2 y1 y2 z1 z2'; got {line!r}"
            )
        if fields[0] not in ORGAN_NAMES:
            raise SourceTreeError(
                f"{where}: unknown organ {fields[0]!r}; known: {sorted(ORGAN_NAMES)}"
            )
        try:
            coords = [int(v) for v in fields[2:]]
        except ValueError as exc:
            raise SourceTreeError(f"{where}: box corners must be integers; got {line!r}") from exc
        pairs = []
        for lo, hi in zip(coords[0::2], coords[1::2], strict=True):
            if hi < lo or lo < 0:
                raise SourceTreeError(f"{where}: box corners out of order or negative: {line!r}")
            pairs.append((lo, hi + 1))
        boxes.append(
            OrganBox(
                organ=fields[0],
                label_name=ORGAN_NAMES[fields[0]],
                index=fields[1],
                box=(pairs[0], pairs[1], pairs[2]),
                line=number,
            )
        )
    return boxes


class Volume:
    """A lazily read CT volume: shape, spacing and single slices in the corrected axis order."""

    def __init__(self, path: Path) -> None:
        try:
            import nibabel as nib
        except ImportError as exc:  # pragma: no cover - nibabel is a core dependency
            from medimeta.errors import MissingDependencyError

            raise MissingDependencyError("reading NIfTI volumes needs nibabel") from exc
        self.path = Path(path)
        try:
            self._img: Any = nib.load(str(self.path))
        except Exception as exc:  # nibabel raises several unrelated types for broken files
            raise SourceTreeError(f"{self.path}: not a readable NIfTI volume ({exc})") from exc
        stem = self.path.name.split(".nii")[0]
        self.perm = AXIS_PERMUTATIONS.get(stem, (0, 1, 2))
        stored_shape = tuple(int(s) for s in self._img.shape[:3])
        if len(self._img.shape) < 3:
            raise SourceTreeError(f"{self.path}: expected a 3-D volume; got {self._img.shape}")
        zooms = tuple(float(z) for z in self._img.header.get_zooms()[:3])
        self.shape = tuple(stored_shape[p] for p in self.perm)
        self.spacing = tuple(zooms[p] for p in self.perm)

    def has_spacing(self) -> bool:
        """False when all three spacings are exactly 1.0 (no spacing in the header)."""
        return not all(s == 1.0 for s in self.spacing)

    def slice(self, axis: int, index: int) -> np.ndarray:
        """The 2-D slice at ``index`` along ``axis`` (remaining axes in increasing order)."""
        if not 0 <= index < self.shape[axis]:
            raise SourceTreeError(
                f"{self.path}: slice {index} on axis {axis} is outside the volume of shape "
                f"{self.shape}; the organ box does not fit this volume"
            )
        stored_axis = self.perm[axis]
        key: list[Any] = [slice(None)] * 3
        key[stored_axis] = index
        data = np.asarray(self._img.dataobj[tuple(key)], dtype=np.float32)
        rest = [a for a in range(3) if a != axis]
        if self.perm[rest[0]] > self.perm[rest[1]]:
            data = data.T
        return np.ascontiguousarray(data)


def central_index(box: Box3, axis: int) -> int:
    """Index of the box centre on ``axis``: ``(start + stop - 1) // 2`` (``(x1 + x2) // 2``)."""
    start, stop = box[axis]
    return (start + stop - 1) // 2


def in_plane(box: Box3, spacing: tuple[float, ...], axis: int) -> tuple[Any, tuple[float, float]]:
    """The 2-D box and spacing of the two axes that remain after slicing along ``axis``."""
    rest = [a for a in range(3) if a != axis]
    return (box[rest[0]], box[rest[1]]), (spacing[rest[0]], spacing[rest[1]])
