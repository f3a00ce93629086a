"""uint8 image arrays to tensors: channel policy and vectorised normalisation per batch."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from medimeta.errors import check_choice

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
    """Turns (B, C, H, W) uint8 batches into normalised float32: ``x * scale + shift``.

    ``scale = 1 / (255 std)`` and ``shift = -mean / std`` per channel. They are expanded once to
    the full pixel pattern of one image in the batch's memory layout, so the fused multiply-add
    runs as a plain contiguous loop (a (1, C, 1, 1) broadcast over a channels-last batch does not
    vectorise and costs a third of the throughput).
    """

    def __init__(self, normalization: Normalization, channels: int) -> None:
        mean, std = normalization.for_channels(channels)
        m = torch.tensor(mean, dtype=torch.float32).expand(channels)
        s = torch.tensor(std, dtype=torch.float32).expand(channels)
        self.channels = channels
        self.scale = 1.0 / (255.0 * s)
        self.shift = -m / s
        self._patterns: dict[tuple[bool, int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def _pattern(self, channels_last: bool, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        key = (channels_last, h, w)
        if key not in self._patterns:
            shape = (1, h, w, self.channels) if channels_last else (1, self.channels, h, w)
            view = (1, 1, 1, self.channels) if channels_last else (1, self.channels, 1, 1)
            self._patterns[key] = (
                self.scale.view(view).expand(shape).contiguous(),
                self.shift.view(view).expand(shape).contiguous(),
            )
        return self._patterns[key]

    def normalize_rows(
        self, rows: Iterable[tuple[int, np.ndarray]], count: int, shape: tuple[int, ...]
    ) -> torch.Tensor:
        """Float (B, C, H, W) batch from ``(position, uint8 image)`` pairs in stored layout.

        Each image is converted and normalised while it is still in cache, which keeps the
        cost close to a bare uint8 -> float32 conversion. Needs matching channel counts.
        """
        out = torch.empty((count, *shape), dtype=torch.float32)
        h, w = shape[0], shape[1]
        scale, shift = self._pattern(True, h, w)
        scale, shift = scale.view(shape), shift.view(shape)
        with warnings.catch_warnings():
            # memory-mapped rows are read-only; they are only ever read here
            warnings.simplefilter("ignore", UserWarning)
            for pos, row in rows:
                o = out[pos]
                o.copy_(torch.from_numpy(row))
                torch.addcmul(shift, o, scale, out=o)
        return out.unsqueeze(1) if len(shape) == 2 else out.permute(0, 3, 1, 2)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        squeeze = x.ndim == 3
        if squeeze:
            x = x.unsqueeze(0)
        if self.channels == 1:  # scalar affine: two in-place passes beat a pattern multiply-add
            out = x.to(torch.float32).mul_(float(self.scale[0])).add_(float(self.shift[0]))
            return out[0] if squeeze else out
        h, w = x.shape[-2:]
        channels_last = x.shape[1] > 1 and x.is_contiguous(memory_format=torch.channels_last)
        src = x.permute(0, 2, 3, 1) if channels_last else x.contiguous()
        out = src.to(torch.float32)
        scale, shift = self._pattern(channels_last, h, w)
        torch.addcmul(shift, out, scale, out=out)
        if channels_last:
            out = out.permute(0, 3, 1, 2)
        return out[0] if squeeze else out
