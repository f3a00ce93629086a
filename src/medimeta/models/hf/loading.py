"""Building the image tower of a model folder as a transformers module, with or without its
weights, and its preprocessing.

transformers folders load through transformers itself (``from_pretrained`` of the family's
class, float32, local files only; a checkpoint that leaves a parameter of the tower unset is
refused). open_clip and timm folders are mapped to transformers' ViT checkpoint layout
(:mod:`medimeta.models.hf.convert`) and loaded through transformers the same way. Random
initialisation (``weights=False``) builds the same module from the config (open_clip and timm:
the config read from the weights' shapes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medimeta.errors import FormatError, WeightsNotFoundError
from medimeta.models.hf import convert
from medimeta.models.hf.families import BY_NAME, Family, family_for, tower_config
from medimeta.models.hf.processor import (
    open_clip_preprocessing,
    timm_preprocessing,
    transformers_preprocessing,
)
from medimeta.models.hf.quiet import quiet_transformers, require_transformers
from medimeta.models.hf.source import ModelSource, fetch_hint, weights_files
from medimeta.models.preprocessing import Preprocessing


@dataclass
class Loaded:
    """A built image tower: module, family, the config it was built from, preprocessing."""

    module: nn.Module
    family: Family
    config: Any
    preprocessing: Preprocessing
    model_type: str


class OpenClipVision(nn.Module):
    """An open_clip image tower in transformers modules: ``vision`` (ViTModel, no pooler) and
    ``visual_projection`` (the linear image projection)."""

    def __init__(self, vision: Any, projection_dim: int) -> None:
        super().__init__()
        self.vision = vision
        self.config = vision.config
        self.config.projection_dim = projection_dim
        self.visual_projection = nn.Linear(vision.config.hidden_size, projection_dim, bias=False)


class OpenClipText(nn.Module):
    """An open_clip Hugging Face text tower: ``transformer`` (BertModel, no pooler) and its
    ``projection``; :meth:`encode` is open_clip's ``encode_text`` (class token of the last
    hidden state, projected; padding masked)."""

    def __init__(self, transformer: Any, projection: nn.Module) -> None:
        super().__init__()
        self.transformer = transformer
        self.projection = projection

    def encode(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = (input_ids != self.transformer.config.pad_token_id).long()
        out = self.transformer(input_ids=input_ids, attention_mask=mask)
        return self.projection(out.last_hidden_state[:, 0])


def _checked(module_and_info: tuple[nn.Module, dict[str, Any]], where: Path) -> nn.Module:
    module, info = module_and_info
    missing, mismatched = sorted(info.get("missing_keys", ())), info.get("mismatched_keys", ())
    if missing or mismatched:
        raise FormatError(
            where,
            f"the weights do not fit the model ({len(missing)} missing, "
            f"{len(mismatched)} of another shape)",
            key=", ".join([*missing[:3], *map(str, list(mismatched)[:2])]),
            fix="the folder's config.json and weights must belong to one model",
        )
    return module.float()


def _from_state(
    cls: Any, config: Any, state: dict[str, torch.Tensor], where: Path, **kw: Any
) -> Any:
    with quiet_transformers():
        loaded = cls.from_pretrained(
            None, config=config, state_dict=state, output_loading_info=True, **kw
        )
    return _checked(loaded, where)


def _transformers(source: ModelSource, weights: bool) -> Loaded:
    transformers = require_transformers()
    from transformers import AutoConfig

    folder = source.folder
    with quiet_transformers():
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    family = family_for(config.model_type, str(folder / "config.json"))
    tcfg = tower_config(family, config)
    cls = getattr(transformers, family.module)
    kw = {} if family.pooling_layer is None else {"add_pooling_layer": family.pooling_layer}
    if weights:
        if not weights_files(folder, "transformers"):
            raise WeightsNotFoundError(
                f"{folder}: no model.safetensors or pytorch_model.bin; fix: {fetch_hint(source)}"
            )
        with quiet_transformers():
            loaded = cls.from_pretrained(
                str(folder),
                config=tcfg,
                dtype=torch.float32,
                local_files_only=True,
                output_loading_info=True,
                **kw,
            )
        module = _checked(loaded, folder)
    else:
        module = cls(tcfg, **kw)
    return Loaded(module, family, tcfg, transformers_preprocessing(folder), config.model_type)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FormatError(path, f"cannot be read as JSON ({exc})") from exc
    return data if isinstance(data, dict) else {}


def _state(source: ModelSource) -> dict[str, torch.Tensor]:
    from medimeta.models.weights import read_state_dict

    files = weights_files(source.folder, source.format)
    if not files:
        raise WeightsNotFoundError(f"{source.folder}: no weights file; fix: {fetch_hint(source)}")
    state: dict[str, torch.Tensor] = {}
    for path in files:
        state.update(read_state_dict(path))
    return state


def _vit(config_values: dict[str, Any], state: dict[str, torch.Tensor] | None, where: Path) -> Any:
    from transformers import ViTConfig, ViTModel

    values = {k: v for k, v in config_values.items() if k != "model_type"}
    config = ViTConfig(**values)
    if state is None:
        return ViTModel(config, add_pooling_layer=False)
    return _from_state(ViTModel, config, state, where, add_pooling_layer=False)


def _open_clip(source: ModelSource, weights: bool) -> Loaded:
    cfg_path = source.folder / "open_clip_config.json"
    cfg = _read_json(cfg_path)
    model_cfg = cfg.get("model_cfg", {})
    vision_cfg = model_cfg.get("vision_cfg", {})
    if "timm_model_name" not in vision_cfg or vision_cfg.get("timm_proj", "linear") != "linear":
        raise FormatError(
            cfg_path,
            "only open_clip models with a timm ViT image tower and a linear projection are read",
            key="model_cfg.vision_cfg",
            actual={k: vision_cfg.get(k) for k in ("timm_model_name", "timm_proj")},
        )
    parts = convert.split_open_clip(_state(source))
    vision = parts["vision"]
    width = int(vision["embeddings.cls_token"].shape[-1])
    hint = cfg.get("medimeta", {}).get("vision_heads")
    heads = convert.timm_heads(vision_cfg["timm_model_name"], hint, width)
    values = convert.vit_config_from_hf_state(vision, heads)
    tower = _vit(values, vision if weights else None, source.folder)
    module = OpenClipVision(tower, int(parts["visual_projection"]["weight"].shape[0]))
    if weights:
        with torch.no_grad():
            module.visual_projection.weight.copy_(parts["visual_projection"]["weight"].float())
    prep = open_clip_preprocessing(cfg_path)
    return Loaded(module, BY_NAME["open_clip"], module.config, prep, "open_clip")


def _timm(source: ModelSource, weights: bool) -> Loaded:
    cfg_path = source.folder / "config.json"
    cfg = _read_json(cfg_path)
    arch = str(cfg.get("architecture", ""))
    if not arch.startswith(("vit_", "deit_")):
        raise FormatError(
            cfg_path,
            "only timm ViT checkpoints are read",
            key="architecture",
            actual=arch,
            fix="a vit_* checkpoint, or a transformers folder",
        )
    vision = convert.timm_vit_to_hf(_state(source), str(source.folder))
    width = int(vision["embeddings.cls_token"].shape[-1])
    hint = cfg.get("model_args", {}).get("num_heads")
    values = convert.vit_config_from_hf_state(vision, convert.timm_heads(arch, hint, width))
    tower = _vit(values, vision if weights else None, source.folder)
    return Loaded(tower, BY_NAME["timm_vit"], tower.config, timm_preprocessing(cfg_path), "timm")


def load_model(source: ModelSource, *, weights: bool) -> Loaded:
    """The image tower of ``source`` (eval mode when loaded, float32)."""
    loaders = {"transformers": _transformers, "open_clip": _open_clip, "timm": _timm}
    return loaders[source.format](source, weights)


def load_open_clip_text(source: ModelSource, *, heads: int | None = None) -> OpenClipText:
    """The text tower of an open_clip folder (BERT text towers), weights loaded."""
    from transformers import BertConfig, BertModel

    cfg = _read_json(source.folder / "open_clip_config.json")
    parts = convert.split_open_clip(_state(source))
    hint = heads or cfg.get("medimeta", {}).get("text_heads")
    values = convert.bert_config_from_state(parts["text"], hint)
    config = BertConfig(**{k: v for k, v in values.items() if k != "model_type"})
    bert = _from_state(BertModel, config, parts["text"], source.folder, add_pooling_layer=False)
    proj_state = parts["text_projection"]
    if "weight" in proj_state:
        out_dim, in_dim = proj_state["weight"].shape
        projection: nn.Module = nn.Linear(int(in_dim), int(out_dim), bias=False)
    else:
        first, last = proj_state["0.weight"], proj_state["2.weight"]
        projection = nn.Sequential(
            nn.Linear(first.shape[1], first.shape[0], bias=False),
            nn.GELU(),
            nn.Linear(last.shape[1], last.shape[0], bias=False),
        )
    projection.load_state_dict({k: v.float() for k, v in proj_state.items()})
    return OpenClipText(bert, projection).eval()
