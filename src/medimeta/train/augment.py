"""Data augmentation on batched tensors (no torchvision): flips, rotation, random resized crop.

All geometric operations of one sample are folded into one 2x3 affine matrix, and the whole
batch is resampled by one ``grid_sample`` call (bilinear, zero fill outside the image, as
torchvision's defaults). Samples that draw no operation get the identity matrix, which
reproduces their pixels exactly. Every random number comes from the ``torch.Generator``
passed in, so a seed fixes the augmentation of every batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.nn import functional as F

from medimeta.errors import ShapeError


@dataclass(frozen=True)
class AugmentConfig:
    """What to apply, each with its own probability per sample.

    ``crop_scale`` is the range of the crop's area as a fraction of the image and
    ``crop_ratio`` the range of its aspect ratio (width / height, sampled log-uniformly), as
    in torchvision's ``RandomResizedCrop``; the crop is resized back to the input size.
    ``rotation`` is the largest angle in degrees (uniform in [-rotation, rotation]).
    """

    hflip: float = 0.0
    vflip: float = 0.0
    rotation: float = 0.0
    rotation_p: float = 1.0
    crop_p: float = 0.0
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def __post_init__(self) -> None:
        for name in ("hflip", "vflip", "rotation_p", "crop_p"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"augmentation probability {name} must be in [0, 1]; got {p}")
        lo, hi = self.crop_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"crop_scale must satisfy 0 < min <= max <= 1; got {self.crop_scale}")
        if not 0.0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ValueError(f"crop_ratio must satisfy 0 < min <= max; got {self.crop_ratio}")
        if self.rotation < 0:
            raise ValueError(f"rotation must be >= 0 degrees; got {self.rotation}")

    @property
    def active(self) -> bool:
        return bool(self.hflip or self.vflip or (self.rotation and self.rotation_p) or self.crop_p)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        values = dict(data)
        for key in ("crop_scale", "crop_ratio"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


# The supplementary code of the MedIMeta paper: flips with p=0.25, rotation up to 10 degrees,
# a 200-pixel crop of the 224 image resized back with p=0.25.
PAPER_AUGMENT = AugmentConfig(
    hflip=0.25,
    vflip=0.25,
    rotation=10.0,
    rotation_p=0.25,
    crop_p=0.25,
    crop_scale=((200 / 224) ** 2, (200 / 224) ** 2),
    crop_ratio=(1.0, 1.0),
)
NO_AUGMENT = AugmentConfig()


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)


def affine_matrices(n: int, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """(n, 2, 3) matrices mapping output to input coordinates in [-1, 1] (``affine_grid``).

    Composition per sample: flip, then rotation, then crop (scale and shift). The draws are
    made in a fixed order for all n samples, so results do not depend on which samples
    end up using an operation.
    """
    flip_x = torch.where(torch.rand(n, generator=gen) < cfg.hflip, -1.0, 1.0).double()
    flip_y = torch.where(torch.rand(n, generator=gen) < cfg.vflip, -1.0, 1.0).double()
    rotate = torch.rand(n, generator=gen) < cfg.rotation_p
    angle = _uniform(n, -cfg.rotation, cfg.rotation, gen) * rotate
    angle = angle * (math.pi / 180.0)
    crop = torch.rand(n, generator=gen) < cfg.crop_p
    area = _uniform(n, cfg.crop_scale[0], cfg.crop_scale[1], gen)
    log_ratio = _uniform(n, math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1]), gen)
    ratio = torch.exp(log_ratio)
    width = torch.sqrt(area * ratio).clamp(max=1.0)
    height = torch.sqrt(area / ratio).clamp(max=1.0)
    shift_x = _uniform(n, -1.0, 1.0, gen) * (1.0 - width)
    shift_y = _uniform(n, -1.0, 1.0, gen) * (1.0 - height)
    width = torch.where(crop, width, torch.ones_like(width))
    height = torch.where(crop, height, torch.ones_like(height))
    shift_x = torch.where(crop, shift_x, torch.zeros_like(shift_x))
    shift_y = torch.where(crop, shift_y, torch.zeros_like(shift_y))
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    # diag(width, height) @ R(angle) @ diag(flip_x, flip_y), then translate.
    theta[:, 0, 0] = width * cos * flip_x
    theta[:, 0, 1] = -width * sin * flip_y
    theta[:, 1, 0] = height * sin * flip_x
    theta[:, 1, 1] = height * cos * flip_y
    theta[:, 0, 2] = shift_x
    theta[:, 1, 2] = shift_y
    return theta


def apply_affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resample each sample of (B, C, H, W) with its matrix of ``theta`` (B, 2, 3).

    Samples whose matrix is the identity are copied unchanged (no resampling).
    """
    if x.ndim != 4 or not x.is_floating_point():
        raise ShapeError(f"augmentation needs a float batch (B, C, H, W); got {x.dtype} {x.shape}")
    if theta.shape != (x.shape[0], 2, 3):
        raise ShapeError(f"need one 2x3 matrix per sample; got {tuple(theta.shape)} for {x.shape}")
    theta = theta.to(device=x.device, dtype=x.dtype)
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=x.dtype, device=x.device)
    moved = ~(theta == identity).all(dim=2).all(dim=1)
    if not bool(moved.any()):
        return x
    out = x.clone()
    idx = torch.nonzero(moved).flatten()
    grid = F.affine_grid(theta[idx], [idx.numel(), *x.shape[1:]], align_corners=False)
    out[idx] = F.grid_sample(
        x[idx].contiguous(), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return out


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Augmented copy of a float batch (B, C, H, W); the input is not modified."""
    if not cfg.active or x.shape[0] == 0:
        return x
    return apply_affine(x, affine_matrices(x.shape[0], cfg, gen))
