"""Batches as model input: normalised, on the device, in the chosen memory layout."""

from __future__ import annotations

import torch

from medimeta.data.pixels import Normalizer


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
