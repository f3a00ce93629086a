"""The text tower of a contrastive ``hf:`` backbone (CLIP, SigLIP, open_clip / BiomedCLIP), for
zero-shot classification: prompts -> unit-length embeddings in the space of the backbone's
``projected`` image features, and the model's own logit scale (and SigLIP's bias).

Loaded from the backbone's model folder: transformers folders through
``CLIPTextModelWithProjection`` / ``SiglipTextModel`` (the text half of the checkpoint), open_clip
folders through :func:`medimeta.models.hf.loading.load_open_clip_text`; the tokenizer from the
same folder (``medimeta weights get NAME --text`` fetches its files). Image-text logits are
``scale * <image, text>`` (+ ``bias``), the cosine similarities of the unit-length embeddings, as
the models' own ``logits_per_image``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medimeta.errors import FormatError, OptionError
from medimeta.models.backbone import Backbone
from medimeta.models.hf.quiet import quiet_transformers
from medimeta.models.hf.source import ModelSource, fetch_hint, weights_files

#: Families whose checkpoints hold a text tower.
TEXT_KINDS = ("clip", "siglip", "open_clip")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt")


@dataclass
class TextTower:
    """Prompts -> unit-length embeddings; ``scale`` (exp of the logit scale) and ``bias``."""

    encoder: nn.Module
    tokenizer: Any
    scale: float
    bias: float
    max_length: int | None
    pad_to_max: bool  # SigLIP was trained on prompts padded to its full length
    kind: str

    @torch.no_grad()
    def embed(self, texts: list[str], device: torch.device | str = "cpu") -> torch.Tensor:
        """(len(texts), D) float32 embeddings of unit length."""
        ids = self.token_ids(texts).to(device)
        self.encoder.to(device).eval()
        out = self.encoder(ids)
        return nn.functional.normalize(out.float(), dim=-1)

    def token_ids(self, texts: list[str]) -> torch.Tensor:
        padding: str | bool = "max_length" if self.pad_to_max else True
        enc = self.tokenizer(
            texts,
            padding=padding,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return enc["input_ids"]

    def logits(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Image-text logits of image features (B, D) and unit text embeddings (C, D)."""
        image = nn.functional.normalize(image.float(), dim=-1)
        return self.scale * image @ text.to(image.device).T + self.bias


class _Projected(nn.Module):
    """A transformers text model whose output is the projected text embedding."""

    def __init__(self, model: nn.Module, kind: str) -> None:
        super().__init__()
        self.model, self.kind = model, kind

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=input_ids)
        return out.text_embeds if self.kind == "clip" else out.pooler_output


class _OpenClip(nn.Module):
    def __init__(self, text: Any) -> None:
        super().__init__()
        self.text = text

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.text.encode(input_ids)


def text_problem(backbone: Backbone) -> str | None:
    """Why ``backbone`` has no usable text tower (one line), or None."""
    family = getattr(backbone, "family", None)
    info: dict[str, Any] = getattr(backbone, "hf", None) or {}
    why = "needs a text tower: an hf: CLIP, SigLIP or BiomedCLIP (open_clip) model"
    if family is None or family.kind not in TEXT_KINDS or family.name == "clip_vision_model":
        return why
    if backbone.pooling != "projected":
        return (
            "needs the image embedding the text is aligned with "
            f"(--pool projected, not {backbone.pooling})"
        )
    folder = Path(str(info.get("folder", "")))
    if info.get("format") == "transformers" and not (folder / "config.json").is_file():
        return why
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        hint = f"medimeta weights get {info.get('named') or info.get('name')} --text"
        return f"needs the tokenizer files in {folder} (fix: {hint}, or copy them there)"
    return None


def load_text_tower(backbone: Backbone) -> TextTower:
    """The text tower of ``backbone``'s model folder (OptionError when it has none)."""
    why = text_problem(backbone)
    if why is not None:
        raise OptionError(f"zero-shot {why}")
    info: dict[str, Any] = getattr(backbone, "hf")  # noqa: B009
    source = ModelSource(Path(info["folder"]), info["format"], info.get("hub_id"))
    with quiet_transformers():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(source.folder), local_files_only=True)
    if source.format == "open_clip":
        return _open_clip_tower(source, tokenizer)
    return _transformers_tower(source, tokenizer, getattr(backbone, "family").kind)  # noqa: B009


def _transformers_tower(source: ModelSource, tokenizer: Any, kind: str) -> TextTower:
    import transformers
    from transformers import AutoConfig

    with quiet_transformers():
        config = AutoConfig.from_pretrained(str(source.folder), local_files_only=True)
    text_config = config.text_config
    if kind == "clip":
        text_config.projection_dim = config.projection_dim
    cls: Any = (
        transformers.CLIPTextModelWithProjection if kind == "clip" else transformers.SiglipTextModel
    )
    with quiet_transformers():
        model, info = cls.from_pretrained(
            str(source.folder),
            config=text_config,
            dtype=torch.float32,
            local_files_only=True,
            output_loading_info=True,
        )
    if info.get("missing_keys") or info.get("mismatched_keys"):
        raise FormatError(
            source.folder,
            "the checkpoint does not hold the whole text tower",
            key=", ".join(sorted(info.get("missing_keys") or [])[:3]),
            fix=fetch_hint(source),
        )
    scalars = _scalars(source)
    return TextTower(
        _Projected(model.float().eval(), kind),
        tokenizer,
        float(torch.tensor(scalars["logit_scale"]).exp()),
        float(scalars.get("logit_bias", 0.0)),
        int(text_config.max_position_embeddings),
        kind == "siglip",
        kind,
    )


def _open_clip_tower(source: ModelSource, tokenizer: Any) -> TextTower:
    from medimeta.models.hf.loading import _read_json, load_open_clip_text

    text = load_open_clip_text(source)
    cfg = _read_json(source.folder / "open_clip_config.json")
    text_cfg = cfg.get("model_cfg", {}).get("text_cfg", {})
    scalars = _scalars(source)
    return TextTower(
        _OpenClip(text),
        tokenizer,
        float(torch.tensor(scalars["logit_scale"]).exp()),
        float(scalars.get("logit_bias", 0.0)),
        int(text_cfg.get("context_length", 77)),
        True,  # open_clip's HF tokenizer pads to the context length
        "open_clip",
    )


def _scalars(source: ModelSource) -> dict[str, float]:
    """``logit_scale`` (and ``logit_bias``) of the checkpoint, read without the towers."""
    from medimeta.models.weights import read_state_dict

    out: dict[str, float] = {}
    for path in weights_files(source.folder, source.format):
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                for key in ("logit_scale", "logit_bias"):
                    if key in f.keys():  # noqa: SIM118 (a safe_open handle, not a dict)
                        out[key] = float(f.get_tensor(key).reshape(-1)[0])
        else:
            state = read_state_dict(path)
            out.update(
                {
                    k: float(state[k].reshape(-1)[0])
                    for k in ("logit_scale", "logit_bias")
                    if k in state
                }
            )
    if "logit_scale" not in out:
        raise FormatError(
            source.folder,
            "no logit_scale in the checkpoint (not a contrastive image-text model)",
            key="logit_scale",
            fix="zero-shot needs the whole CLIP / SigLIP checkpoint, not its image tower",
        )
    return out
