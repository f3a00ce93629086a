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

import gzip
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from medimeta.builders.engine.tree import SourceFile
from medimeta.errors import MissingDependencyError, SourceTreeError

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


def volume_key(name: str) -> tuple[str, int] | None:
    """``("train", n)`` for ``volume-n.nii[.gz]``, ``("test", n)`` for ``test-volume-n``."""
    found = _VOLUME_RE.match(name)
    if found is None:
        return None
    return ("test" if found.group(1) else "train", int(found.group(2)))


def volume_stem(split: str, number: int) -> str:
    """``volume-<n>`` or ``test-volume-<n>``."""
    return f"{'test-' if split == 'test' else ''}volume-{number}"


def box_file_number(name: str) -> int:
    """Volume number of a box file (the last integer in its name, e.g. segmentation-12.txt)."""
    numbers = re.findall(r"\d+", name.rsplit(".", 1)[0])
    if not numbers:
        raise SourceTreeError(
            f"{name}: an organ box file name must contain the volume number "
            "(e.g. segmentation-12.txt); rename it or remove it"
        )
    return int(numbers[-1])


def parse_box_file(path: Path) -> list[OrganBox]:
    """Read one box file on disk (see :func:`parse_box_file_text`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceTreeError(f"{path}: cannot read the organ box file ({exc})") from exc
    return parse_box_file_text(text, str(path))


def parse_box_file_text(text: str, name: str) -> list[OrganBox]:
    """Parse a box file (module rules); unknown organs and malformed lines are errors."""
    boxes = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{name} line {number}"
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


@dataclass(frozen=True)
class VolumeHeader:
    """Shape and voxel spacing (mm) of a volume, in the corrected axis order."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]

    def has_spacing(self) -> bool:
        """False when all three spacings are exactly 1.0 (no spacing in the header)."""
        return not all(s == 1.0 for s in self.spacing)


def _nibabel() -> Any:
    try:
        import nibabel
    except ImportError as exc:  # pragma: no cover - the sources extra (and dev) install it
        raise MissingDependencyError.for_extra(
            "sources", f"reading NIfTI volumes needs nibabel ({exc})"
        ) from exc
    return nibabel


def _permutation(name: str) -> tuple[int, int, int]:
    return AXIS_PERMUTATIONS.get(name.split(".nii")[0], (0, 1, 2))


def _header(name: str, shape: Any, zooms: Any) -> VolumeHeader:
    if len(shape) < 3:
        raise SourceTreeError(f"{name}: expected a 3-D volume; got shape {tuple(shape)}")
    perm = _permutation(name)
    stored = tuple(int(v) for v in shape[:3])
    mm = tuple(float(z) for z in zooms[:3])
    return VolumeHeader(
        shape=(stored[perm[0]], stored[perm[1]], stored[perm[2]]),
        spacing=(mm[perm[0]], mm[perm[1]], mm[perm[2]]),
    )


def read_volume_header(source: SourceFile) -> VolumeHeader:
    """Header of a raw volume (on disk or inside an archive) without reading its voxels."""
    nib = _nibabel()
    try:
        if not source.members:
            img = nib.load(str(source.origin))
            return _header(source.name, img.shape, img.header.get_zooms())
        with source.open() as raw:
            fh: IO[bytes] | gzip.GzipFile = raw
            if source.name.endswith(".gz"):
                fh = gzip.GzipFile(fileobj=raw)
            header = nib.Nifti1Header.from_fileobj(io.BytesIO(fh.read(348)))
        return _header(source.name, header.get_data_shape(), header.get_zooms())
    except SourceTreeError:
        raise
    except Exception as exc:  # nibabel raises several unrelated types for broken files
        raise SourceTreeError(f"{source.location()}: not a readable NIfTI volume ({exc})") from exc


class Volume:
    """A lazily read CT volume: shape, spacing and single slices in the corrected axis order."""

    def __init__(self, img: Any, name: str) -> None:
        self.name = name
        self._img = img
        self.perm = _permutation(Path(name).name)
        header = _header(name, img.shape, img.header.get_zooms())
        self.shape = header.shape
        self.spacing = header.spacing

    @classmethod
    def from_path(cls, path: str | Path) -> Volume:
        """Open a volume file on disk (voxels are read slice by slice later)."""
        nib = _nibabel()
        try:
            img = nib.load(str(path))
        except Exception as exc:  # nibabel raises several unrelated types for broken files
            raise SourceTreeError(f"{path}: not a readable NIfTI volume ({exc})") from exc
        return cls(img, Path(path).name)

    @classmethod
    def from_source(cls, source: SourceFile) -> Volume:
        """Open a raw volume: from disk lazily, from an archive member in memory."""
        if not source.members:
            return cls.from_path(source.origin)
        nib = _nibabel()
        try:
            data = source.read_bytes()
            if source.name.endswith(".gz"):
                data = gzip.decompress(data)
            img = nib.Nifti1Image.from_bytes(data)
        except Exception as exc:  # nibabel raises several unrelated types for broken files
            raise SourceTreeError(
                f"{source.location()}: not a readable NIfTI volume ({exc})"
            ) from exc
        return cls(img, source.name)

    def has_spacing(self) -> bool:
        """False when all three spacings are exactly 1.0 (no spacing in the header)."""
        return VolumeHeader(self.shape, self.spacing).has_spacing()

    def slice(self, axis: int, index: int) -> np.ndarray:
        """The 2-D slice at ``index`` along ``axis`` (remaining axes in increasing order)."""
        if not 0 <= index < self.shape[axis]:
            raise SourceTreeError(
                f"{self.name}: slice {index} on axis {axis} is outside the volume of shape "
                f"{self.shape}; the organ box does not fit this volume"
            )
        key: list[Any] = [slice(None)] * 3
        key[self.perm[axis]] = index
        key += [0] * (len(self._img.shape) - 3)  # a trailing singleton time axis, if any
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
