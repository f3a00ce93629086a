"""uint8 image arrays to tensors: channel policy and vectorised normalisation per batch."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from medimeta.errors import check_choice
from medimeta.format.images import ImageStore

DTYPES = ("float", "uint8")


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and std (in [0, 1] units) applied after dividing by 255."""

    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def for_channels(self, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if len(self.mean) == channels:
            return self.mean, self.std
        # ImageNet statistics on a grey image: the channel average is the natural single value.
        return (float(np.mean(self.mean)),), (float(np.mean(self.std)),)


NORMALIZATIONS = {
    "half": Normalization("half", (0.5,), (0.5,)),
    "imagenet": Normalization("imagenet", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "unit": Normalization("unit", (0.0,), (1.0,)),
}


def get_normalization(name: str) -> Normalization:
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


class BatchNormalizer:
    """uint8 images -> normalised float32, ``x * scale + shift`` per channel.

    ``scale = 1 / (255 std)`` and ``shift = -mean / std``. CPU work runs in single-threaded
    numpy ufuncs rather than torch ops: torch's intra-op threads stall whenever the cores are
    shared (DataLoader workers, other jobs), which made per-image calls up to 100x slower here.
    """

    def __init__(self, normalization: Normalization, channels: int) -> None:
        mean, std = normalization.for_channels(channels)
        m = np.broadcast_to(np.asarray(mean, dtype=np.float64), (channels,))
        s = np.broadcast_to(np.asarray(std, dtype=np.float64), (channels,))
        self.channels = channels
        self.scale = (1.0 / (255.0 * s)).astype(np.float32)
        self.shift = (-m / s).astype(np.float32)
        self.uniform = bool(
            np.all(self.scale == self.scale[0]) and np.all(self.shift == self.shift[0])
        )
        self._patterns: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

    def _pattern(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Scale and shift expanded to one channels-last image, so the ufuncs run contiguously."""
        if shape not in self._patterns:
            self._patterns[shape] = (
                np.ascontiguousarray(np.broadcast_to(self.scale, shape)),
                np.ascontiguousarray(np.broadcast_to(self.shift, shape)),
            )
        return self._patterns[shape]

    def normalize_rows(
        self, rows: Iterable[tuple[int, np.ndarray]], count: int, shape: tuple[int, ...]
    ) -> torch.Tensor:
        """Float (B, C, H, W) batch from ``(position, uint8 image)`` pairs in stored layout
        ((H, W) grey or (H, W, C)); the stored channel count must equal ``channels``.

        Each image is converted and normalised while it is still in cache, so the whole batch
        costs about one uint8 -> float32 conversion.
        """
        out = np.empty((count, *shape), dtype=np.float32)
        scale: np.ndarray | np.float32
        shift: np.ndarray | np.float32
        if len(shape) == 2 or self.uniform:
            scale, shift = self.scale[0], self.shift[0]  # scalars: the fastest ufunc loop
        else:
            scale, shift = self._pattern(shape)
        for pos, row in rows:
            np.multiply(row, scale, out=out[pos])
            out[pos] += shift
        t = torch.from_numpy(out)
        return t.unsqueeze(1) if len(shape) == 2 else t.permute(0, 3, 1, 2)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) or (C, H, W) uint8 -> float32 on the same device (contiguous on CPU)."""
        view = (1, -1, 1, 1) if x.ndim == 4 else (-1, 1, 1)
        if x.device.type != "cpu":
            scale = torch.from_numpy(self.scale).to(x.device).view(view)
            shift = torch.from_numpy(self.shift).to(x.device).view(view)
            return torch.addcmul(shift, x.to(torch.float32), scale)
        src = x.numpy()
        out = np.empty(src.shape, dtype=np.float32)
        np.multiply(src, self.scale.reshape(view), out=out)
        out += self.shift.reshape(view)
        return torch.from_numpy(out)


def load_images(
    store: ImageStore, indices: np.ndarray, channels: int, dtype: str, normalizer: BatchNormalizer
) -> torch.Tensor:
    """(B, C, H, W) uint8 or normalised float32 images at global ``indices`` of ``store``."""
    if dtype == "float" and channels == store.num_channels:
        return normalizer.normalize_rows(store.rows(indices), indices.size, store.sample_shape)
    x = to_uint8_tensor(store.read_batch(indices), channels)
    return x if dtype == "uint8" else normalizer(x)
