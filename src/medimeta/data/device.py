"""Normalisation on the device: move uint8 batches (4x fewer bytes than float32), convert there.

``DeviceNormalize(preset)`` is a small ``torch.nn.Module`` holding the uint8 path's float32
constants of :class:`~medimeta.data.pixels.Normalizer` as buffers (so ``.to(device)`` moves
them). Called on a uint8 (B, C, H, W) or (C, H, W) tensor it copies it to its device
(``non_blocking``: asynchronous from page-locked memory, e.g. a dataset made with
``pin_memory=True`` or a DataLoader with ``pin_memory=True``) and computes
``x * scale + shift`` there as two float32 operations, multiply then add, each rounded once:
the same arithmetic as the CPU kernel, so the values are the CPU float path's bit for bit on the
CPU (tested) and, the two operations being separately rounded IEEE float32 kernels, expected to
be on an accelerator as well (not tested here: no accelerator on the development machines).

:func:`model_input` and :func:`channels_last_default` put a float batch on the device in the
memory layout the convolutions run fastest in.
"""

from __future__ import annotations

import torch

from medimeta.data.pixels import Normalizer, get_normalization


class DeviceNormalize(torch.nn.Module):
    """uint8 images -> normalised float32 on this module's device.

    ``preset``: "half", "imagenet", "unit" or a :class:`Normalizer`. Grey (1-channel) and RGB
    (3-channel) inputs get the constants the CPU path uses for that channel count.
    """

    scale1: torch.Tensor
    shift1: torch.Tensor
    scale3: torch.Tensor
    shift3: torch.Tensor

    def __init__(self, preset: str | Normalizer = "half") -> None:
        super().__init__()
        norm = preset if isinstance(preset, Normalizer) else get_normalization(preset)
        self.preset = norm.name
        for c in (1, 3):
            scale, shift = norm.affine(c)
            self.register_buffer(f"scale{c}", torch.from_numpy(scale.copy()).view(c, 1, 1))
            self.register_buffer(f"shift{c}", torch.from_numpy(shift.copy()).view(c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.uint8:
            raise TypeError(f"DeviceNormalize expects uint8 images; got {x.dtype}")
        channels = x.shape[-3]
        if channels not in (1, 3):
            raise ValueError(f"DeviceNormalize expects 1 or 3 channels; got shape {tuple(x.shape)}")
        scale = self.scale1 if channels == 1 else self.scale3
        shift = self.shift1 if channels == 1 else self.shift3
        x = x.to(scale.device, non_blocking=True)
        return x.to(torch.float32).mul_(scale).add_(shift)

    def extra_repr(self) -> str:
        return f"preset={self.preset!r}"


def channels_last_default(flag: bool | None, device: torch.device, side: int) -> bool:
    """``flag``, else True on CPU for images of 64 pixels or more.

    Convolutions in channels-last layout run several times faster on CPU (oneDNN) for
    ImageNet-size inputs; on tiny images the plain layout is as fast.
    """
    return flag if flag is not None else (device.type == "cpu" and side >= 64)


def model_input(
    x01: torch.Tensor, normalizer: Normalizer, device: torch.device, channels_last: bool
) -> torch.Tensor:
    """A float batch in [0, 1], normalised, on ``device`` in the chosen memory layout."""
    x = normalizer.normalize_unit(x01).to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
