"""Checkpoints as ``.safetensors`` files: tensors plus a JSON record, no pickle.

Layout of the tensor names: ``model/<state-dict key>`` for the model,
``optim/<param id>/<name>`` for optimiser state tensors. The safetensors metadata holds one
JSON string under ``medimeta`` with the optimiser's non-tensor state (param groups,
scalars) and anything the caller adds (epoch, best metric, configuration, history).
Files are written to a temporary name and renamed, so a crash never leaves a torn file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medimeta.errors import FormatError, MissingDependencyError
from medimeta.safeio import atomic_path

FORMAT = "medimeta-checkpoint-1"


def _safetensors() -> Any:
    try:
        import safetensors.torch as st
    except ImportError as exc:
        raise MissingDependencyError.for_extra(
            "models", f"checkpoints need the package 'safetensors' ({exc})"
        ) from exc
    return st


def _plain(value: Any) -> Any:
    """JSON-safe copy: tuples become lists, tensors scalars, non-finite floats strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _plain(value.item()) if value.numel() == 1 else _plain(value.tolist())
    if isinstance(value, float) and value != value:
        return "NaN"
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _plain(value.item())
    return value


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    record: dict[str, Any] | None = None,
) -> Path:
    """Write model (and optimiser) state and a JSON ``record`` atomically to ``path``."""
    st = _safetensors()
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {
        f"model/{k}": v.detach().to("cpu").contiguous().clone()
        for k, v in model.state_dict().items()
    }
    optim_meta: dict[str, Any] | None = None
    if optimizer is not None:
        state = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for pid, entries in state["state"].items():
            for name, value in entries.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim/{pid}/{name}"] = value.detach().to("cpu").contiguous().clone()
                else:
                    scalars.setdefault(str(pid), {})[name] = _plain(value)
        optim_meta = {"param_groups": _plain(state["param_groups"]), "scalars": scalars}
    meta = {"format": FORMAT, "optimizer": optim_meta, "record": _plain(record or {})}
    with atomic_path(path) as tmp:
        st.save_file(tensors, str(tmp), metadata={"medimeta": json.dumps(meta)})
    return path


def load_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> dict[str, Any]:
    """Restore what ``save_checkpoint`` wrote into ``model``/``optimizer``; returns the record."""
    st = _safetensors()
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "checkpoint file not found", fix="check the --resume path")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            raw = (fh.metadata() or {}).get("medimeta")
        tensors = st.load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for foreign files
        raise FormatError(path, f"not a readable safetensors file ({exc})") from exc
    if raw is None:
        raise FormatError(
            path, "no 'medimeta' metadata", expected=FORMAT, fix="use a toolkit checkpoint"
        )
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"its 'medimeta' metadata is not JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise FormatError(
            path,
            "unknown checkpoint format",
            expected=FORMAT,
            actual=meta.get("format") if isinstance(meta, dict) else type(meta).__name__,
        )
    if model is not None:
        state = {k[6:]: v for k, v in tensors.items() if k.startswith("model/")}
        model.load_state_dict(state, strict=True)
    if optimizer is not None:
        if meta.get("optimizer") is None:
            raise FormatError(path, "the checkpoint holds no optimiser state", fix="start anew")
        optimizer.load_state_dict(_optimizer_state(tensors, meta["optimizer"]))
    record: dict[str, Any] = meta.get("record", {})
    return record


def model_state(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The model tensors of a checkpoint (``model/`` prefix removed)."""
    st = _safetensors()
    try:
        tensors = st.load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise FormatError(Path(path), f"not a readable safetensors file ({exc})") from exc
    return {k[6:]: v for k, v in tensors.items() if k.startswith("model/")}


def _optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, pid, name = key.split("/", 2)
            state.setdefault(int(pid), {})[name] = value
    for pid, entries in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(entries)
    groups = meta["param_groups"]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    return {"state": state, "param_groups": groups}
