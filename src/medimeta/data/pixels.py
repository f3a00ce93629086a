"""uint8 image arrays to tensors: channel policy, normalisation presets and the one normaliser.

Every route from stored pixels to model input passes here: the datasets, the episode loader
and the training splits (:mod:`medimeta.data.splits`) read with :func:`load_images`, which
runs the pixel kernel (:mod:`medimeta.data.kernel`) with the constants of a
:class:`Normalizer`; the preset numbers live only in :data:`NORMALIZATIONS`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from medimeta.data.kernel import read_images
from medimeta.errors import check_choice
from medimeta.format.images import ImageStore

DTYPES = ("float", "uint8")


@dataclass(frozen=True)
class Normalizer:
    """Per-channel ``mean`` and ``std`` in [0, 1] units, and the arithmetic that applies them.

    Two input paths, each with its own (unchanged) arithmetic:

    * uint8 images (:meth:`normalize_uint8`, :meth:`normalize_rows`): ``x * scale + shift``
      with ``scale = 1 / (255 std)`` and ``shift = -mean / std`` in float32. CPU work runs
      in single-threaded numpy ufuncs rather than torch ops: torch's intra-op threads stall
      whenever the cores are shared (DataLoader workers, other jobs), which made per-image
      calls up to 100x slower here.
    * float images in [0, 1] (:meth:`normalize_unit`, e.g. after augmentation):
      ``(x01 - mean) / std`` in the input's dtype.

    Calling the normaliser picks the path from the dtype. With one value for a 3-channel
    image it is used for every channel; 3 values for a grey image become their average.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str = "custom"
    _affine: dict[int, _Affine] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def for_channels(self, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if len(self.mean) == channels:
            return self.mean, self.std
        # ImageNet statistics on a grey image: the channel average is the natural single value.
        return (float(np.mean(self.mean)),), (float(np.mean(self.std)),)

    def per_channel(self, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Mean and std with exactly ``channels`` values (a single value repeated)."""
        mean, std = self.for_channels(channels)
        return (mean * channels)[:channels], (std * channels)[:channels]

    # -- float input in [0, 1] ---------------------------------------------------------------
    @staticmethod
    def to_float(x: torch.Tensor) -> torch.Tensor:
        """uint8 -> float32 in [0, 1]."""
        return x.to(torch.float32).div_(255.0)

    def normalize_unit(self, x01: torch.Tensor) -> torch.Tensor:
        """Normalise a float batch in [0, 1] (B, C, H, W): ``(x01 - mean) / std``."""
        mean, std = self.for_channels(x01.shape[1])
        m = torch.tensor(mean, dtype=x01.dtype, device=x01.device).view(1, -1, 1, 1)
        s = torch.tensor(std, dtype=x01.dtype, device=x01.device).view(1, -1, 1, 1)
        return (x01 - m) / s

    # -- uint8 input -------------------------------------------------------------------------
    def _uint8(self, channels: int) -> _Affine:
        if channels not in self._affine:
            self._affine[channels] = _Affine(*self.for_channels(channels), channels)
        return self._affine[channels]

    def affine(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """float32 ``scale`` and ``shift`` (``channels`` values each) of the uint8 path."""
        a = self._uint8(channels)
        return a.scale, a.shift

    def normalize_rows(
        self, rows: Iterable[tuple[int, np.ndarray]], count: int, shape: tuple[int, ...]
    ) -> torch.Tensor:
        """Float (B, C, H, W) batch from ``(position, uint8 image)`` pairs in stored layout
        ((H, W) grey or (H, W, C)).

        Each image is converted and normalised while it is still in cache, so the whole batch
        costs about one uint8 -> float32 conversion.
        """
        affine = self._uint8(1 if len(shape) == 2 else shape[-1])
        out = np.empty((count, *shape), dtype=np.float32)
        scale: np.ndarray | np.float32
        shift: np.ndarray | np.float32
        if len(shape) == 2 or affine.uniform:
            scale, shift = affine.scale[0], affine.shift[0]  # scalars: the fastest ufunc loop
        else:
            scale, shift = affine.pattern(shape)
        for pos, row in rows:
            np.multiply(row, scale, out=out[pos])
            out[pos] += shift
        t = torch.from_numpy(out)
        return t.unsqueeze(1) if len(shape) == 2 else t.permute(0, 3, 1, 2)

    def normalize_uint8(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) or (C, H, W) uint8 -> float32 on the same device (contiguous on CPU)."""
        affine = self._uint8(x.shape[1] if x.ndim == 4 else x.shape[0])
        view = (1, -1, 1, 1) if x.ndim == 4 else (-1, 1, 1)
        if x.device.type != "cpu":
            # two roundings (multiply, then add), as on the CPU; addcmul would fuse them
            scale = torch.from_numpy(affine.scale).to(x.device).view(view)
            shift = torch.from_numpy(affine.shift).to(x.device).view(view)
            return x.to(torch.float32).mul_(scale).add_(shift)
        src = x.numpy()
        out = np.empty(src.shape, dtype=np.float32)
        np.multiply(src, affine.scale.reshape(view), out=out)
        out += affine.shift.reshape(view)
        return torch.from_numpy(out)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`normalize_uint8` for uint8 input, :meth:`normalize_unit` for floats in [0, 1]."""
        return self.normalize_uint8(x) if x.dtype == torch.uint8 else self.normalize_unit(x)


class _Affine:
    """float32 ``scale`` and ``shift`` of one channel count (the uint8 path's constants)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], channels: int) -> None:
        m = np.broadcast_to(np.asarray(mean, dtype=np.float64), (channels,))
        s = np.broadcast_to(np.asarray(std, dtype=np.float64), (channels,))
        self.scale = (1.0 / (255.0 * s)).astype(np.float32)
        self.shift = (-m / s).astype(np.float32)
        self.uniform = bool(
            np.all(self.scale == self.scale[0]) and np.all(self.shift == self.shift[0])
        )
        self._patterns: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

    def pattern(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Scale and shift expanded to one channels-last image, so the ufuncs run contiguously."""
        if shape not in self._patterns:
            self._patterns[shape] = (
                np.ascontiguousarray(np.broadcast_to(self.scale, shape)),
                np.ascontiguousarray(np.broadcast_to(self.shift, shape)),
            )
        return self._patterns[shape]


# The presets: the only place their numbers are written.
NORMALIZATIONS: dict[str, Normalizer] = {
    "half": Normalizer((0.5,), (0.5,), "half"),
    "imagenet": Normalizer((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "imagenet"),
    "unit": Normalizer((0.0,), (1.0,), "unit"),
}


def get_normalization(name: str) -> Normalizer:
    """The preset ``name`` ("half", "imagenet" or "unit")."""
    check_choice("normalisation preset", name, NORMALIZATIONS)
    return NORMALIZATIONS[name]


def to_uint8_tensor(images: np.ndarray, channels: int) -> torch.Tensor:
    """(B, H, W[, 3]) uint8 -> (B, C, H, W) uint8 without copying where possible.

    RGB batches come back as a channels-last view of the read buffer (no transpose copy);
    convolutions accept that layout directly.
    """
    t = torch.from_numpy(images)
    if t.ndim == 3:  # grey (B, H, W)
        t = t.unsqueeze(1)
        if channels == 3:
            t = t.expand(-1, 3, -1, -1)
        return t
    t = t.permute(0, 3, 1, 2)  # (B, 3, H, W) view, channels-last strides
    if channels == 1:
        # ITU-R 601-2 luma in Pillow's fixed-point form (Convert.c, L24), so the result equals
        # PIL's convert("L") bit for bit.
        w = torch.tensor([19595, 38470, 7471], dtype=torch.int32).view(1, 3, 1, 1)
        t = ((t.to(torch.int32) * w).sum(1, keepdim=True) + 0x8000) >> 16
        t = t.to(torch.uint8)
    return t


def load_images(
    store: ImageStore,
    indices: np.ndarray,
    channels: int,
    dtype: str,
    normalizer: Normalizer | None = None,
    *,
    reuse: bool = False,
    pin: bool = False,
    contiguous: bool = False,
) -> torch.Tensor:
    """(B, C, H, W) uint8 or (``dtype="float"``, with ``normalizer``) normalised float32
    images at global ``indices`` of ``store``, through the pixel kernel.

    ``reuse``: the output may be a reused pooled buffer (main process) or shared memory (in a
    DataLoader worker), see :mod:`medimeta.data.kernel`; ``pin``: page-locked output (needs an
    accelerator); ``contiguous``: C-contiguous (B, C, H, W) output in every channel mode
    (else RGB comes channels-last and uint8 grey -> 3 as an expanded view).
    """
    if dtype == "uint8":
        return read_images(
            store, indices, channels, "uint8", batch=reuse, pin=pin, contiguous=contiguous
        )
    if normalizer is None:
        raise ValueError("dtype 'float' needs a normalizer")
    return read_images(
        store,
        indices,
        channels,
        "float",
        normalizer.affine(channels),
        batch=reuse,
        pin=pin,
        contiguous=contiguous,
    )
