"""Building backbones reproducibly: seeded construction, the weights choice and the
normaliser the weights expect.

PyTorch initialises layers from its global generator. :func:`seeded` runs a block with that
generator forked and seeded, and restores it afterwards, so building a model (or training with
modules that draw random numbers) is a function of the seed and leaves the caller's global
random state untouched.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from medimeta.data.pixels import Normalizer, get_normalization
from medimeta.models.backbone import Backbone
from medimeta.models.registry import create_backbone, is_external

Pretrained = bool | str | os.PathLike[str]


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's global CPU generator forked and seeded with ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def build_backbone(
    name: str, *, pretrained: Pretrained = False, in_chans: int = 3, seed: int = 0
) -> Backbone:
    """``create_backbone`` with a seeded random initialisation."""
    with seeded(seed):
        return create_backbone(name, pretrained=pretrained_arg(pretrained), in_chans=in_chans)


def pretrained_arg(pretrained: Pretrained) -> Pretrained:
    if isinstance(pretrained, str) and pretrained.lower() in ("imagenet", "default", "true"):
        return True
    if isinstance(pretrained, str) and pretrained.lower() in ("none", "false", "random", ""):
        return False
    return pretrained if isinstance(pretrained, bool) else Path(pretrained)


def pretrained_choice(name: str, pretrained: str) -> bool | str:
    """``auto``: the backbone's default (ImageNet) weights when it has some, else random
    initialisation; ``imagenet``/``none``; anything else a registered weights name or an
    explicit path (:func:`medimeta.models.user_weights.resolve_pretrained`)."""
    low = pretrained.lower()
    if low == "auto":
        if is_external(name):
            return True
        return build_backbone(name, pretrained=False).pretrained_cfg.file_name is not None
    if low in ("imagenet", "default", "true"):
        return True
    if low in ("none", "random", "false"):
        return False
    from medimeta.models.user_weights import resolve_pretrained

    return resolve_pretrained(pretrained)  # a registered name or an explicit path


@dataclass(frozen=True)
class NormalizeChoice:
    """A bare normalisation choice (``auto``, ``half``, ``imagenet``) for
    :func:`make_normalizer`."""

    normalize: str = "auto"


class _Normalize(Protocol):
    """A configuration with a ``normalize`` choice (TrainConfig, FewShotConfig)."""

    @property
    def normalize(self) -> str: ...


def make_normalizer(config: _Normalize, backbone: nn.Module) -> Normalizer:
    """The normaliser of ``config.normalize``: a preset ("half", "imagenet"), or for "auto"
    the mean and std of the backbone's weights ("half" for a module without them)."""
    if config.normalize != "auto":
        return get_normalization(config.normalize)
    cfg: Any = getattr(backbone, "pretrained_cfg", None)
    if cfg is None:
        return get_normalization("half")
    return Normalizer(tuple(cfg.mean), tuple(cfg.std))
