"""timm and open_clip checkpoints as transformers checkpoints, by a fixed key mapping.

Neither timm nor open_clip is imported: the mapping works on state dicts. The transformers side
is the layout of transformers' checkpoint files (what ``save_pretrained`` writes and the hub
serves; transformers converts it to its current module names when loading).

timm ``VisionTransformer`` (class token, absolute position embeddings, no pre-norm, no layer
scale; ``qkv`` fused) -> transformers ``ViTModel`` (``layer_norm_eps`` 1e-6, GELU):

==========================================  ==================================================
timm key                                    transformers key
==========================================  ==================================================
``cls_token``                               ``embeddings.cls_token``
``pos_embed``                               ``embeddings.position_embeddings``
``patch_embed.proj.{weight,bias}``          ``embeddings.patch_embeddings.projection.*``
``blocks.N.norm1.*``                        ``encoder.layer.N.layernorm_before.*``
``blocks.N.attn.qkv.{weight,bias}``         ``encoder.layer.N.attention.attention.Q.*``, Q =
                                            query, key, value (rows split in three, in order)
``blocks.N.attn.proj.*``                    ``encoder.layer.N.attention.output.dense.*``
``blocks.N.norm2.*``                        ``encoder.layer.N.layernorm_after.*``
``blocks.N.mlp.fc1.*``                      ``encoder.layer.N.intermediate.dense.*``
``blocks.N.mlp.fc2.*``                      ``encoder.layer.N.output.dense.*``
``norm.*``                                  ``layernorm.*``
``head.*``                                  dropped (classifier)
==========================================  ==================================================

open_clip with a timm image tower and a Hugging Face text tower (BiomedCLIP):
``visual.trunk.*`` is the timm ViT above, ``visual.head.proj.weight`` the image projection,
``text.transformer.*`` the BERT checkpoint (same keys), ``text.proj.*`` the text projection
(``linear``: one matrix; ``mlp``: ``proj.0``, GELU, ``proj.2``), ``logit_scale`` kept.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from medimeta.errors import FormatError

_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")
_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")
_PARTS = ("query", "key", "value")
_SIMPLE = {  # timm block suffix -> transformers layer suffix
    "norm1": "layernorm_before",
    "attn.proj": "attention.output.dense",
    "norm2": "layernorm_after",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
}
_TOP = {
    "cls_token": "embeddings.cls_token",
    "pos_embed": "embeddings.position_embeddings",
    "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
    "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
    "norm.weight": "layernorm.weight",
    "norm.bias": "layernorm.bias",
}
#: Heads of timm's ViT sizes (the width alone does not give them).
TIMM_HEADS = {"tiny": 3, "small": 6, "base": 12, "large": 16, "huge": 16, "giant": 16}


def _block_key(rest: str, where: str) -> str:
    stem, _, leaf = rest.rpartition(".")
    if stem not in _SIMPLE:
        raise FormatError(where, "timm ViT key outside the mapping", key=f"blocks.N.{rest}")
    return f"{_SIMPLE[stem]}.{leaf}"


def timm_vit_to_hf(state: dict[str, torch.Tensor], where: str = "timm") -> dict[str, torch.Tensor]:
    """A timm ViT state dict in transformers' ViT checkpoint layout (see the module table)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key in _TOP:
            out[_TOP[key]] = value
        elif key.startswith("head.") or key == "head":
            continue
        elif (m := _BLOCK.match(key)) is not None:
            layer, rest = m.group(1), m.group(2)
            base = f"encoder.layer.{layer}."
            if rest.startswith("attn.qkv."):
                leaf = rest.rsplit(".", 1)[1]
                for part, chunk in zip(_PARTS, value.chunk(3, dim=0), strict=True):
                    out[f"{base}attention.attention.{part}.{leaf}"] = chunk.clone()
            else:
                out[base + _block_key(rest, where)] = value
        elif key.startswith("fc_norm.") or key.startswith("norm_pre.") or key == "reg_token":
            raise FormatError(
                where,
                "timm ViT variant not supported (average pool, pre-norm or registers)",
                key=key,
                fix="a class-token ViT checkpoint",
            )
        else:
            raise FormatError(where, "timm ViT key outside the mapping", key=key)
    return out


def hf_vit_to_timm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`timm_vit_to_hf` (the classifier is not restored)."""
    top = {v: k for k, v in _TOP.items()}
    simple = {v: k for k, v in _SIMPLE.items()}
    out: dict[str, torch.Tensor] = {}
    pending: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key in top:
            out[top[key]] = value
            continue
        m = _LAYER.match(key)
        if m is None:
            raise FormatError("transformers ViT", "key outside the mapping", key=key)
        layer, rest = m.group(1), m.group(2)
        stem, _, leaf = rest.rpartition(".")
        if stem.startswith("attention.attention."):
            pending.setdefault((layer, leaf), {})[stem.rsplit(".", 1)[1]] = value
        elif stem in simple:
            out[f"blocks.{layer}.{simple[stem]}.{leaf}"] = value
        else:
            raise FormatError("transformers ViT", "key outside the mapping", key=key)
    for (layer, leaf), parts in pending.items():
        out[f"blocks.{layer}.attn.qkv.{leaf}"] = torch.cat([parts[p] for p in _PARTS], dim=0)
    return out


def timm_heads(model_name: str | None, hint: int | None, width: int) -> int:
    """Attention heads: a given hint, else timm's size in the model name, else width / 64."""
    if hint:
        return int(hint)
    size = re.search(r"vit_(tiny|small|base|large|huge|giant)", model_name or "")
    if size:
        return TIMM_HEADS[size.group(1)]
    if width % 64 == 0:
        return width // 64
    raise FormatError(
        str(model_name), "cannot tell the number of attention heads", fix="add a num_heads hint"
    )


def vit_config_from_hf_state(state: dict[str, torch.Tensor], heads: int) -> dict[str, Any]:
    """ViTConfig values of a ViT checkpoint (transformers layout) read from its shapes."""
    width = int(state["embeddings.cls_token"].shape[-1])
    proj = state["embeddings.patch_embeddings.projection.weight"]
    patch = int(proj.shape[-1])
    tokens = int(state["embeddings.position_embeddings"].shape[1]) - 1
    side = round(tokens**0.5)
    layers = 1 + max(int(m.group(1)) for k in state if (m := _LAYER.match(k)))
    return {
        "model_type": "vit",
        "hidden_size": width,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": int(state["encoder.layer.0.intermediate.dense.weight"].shape[0]),
        "patch_size": patch,
        "image_size": side * patch,
        "num_channels": int(proj.shape[1]),
        "qkv_bias": "encoder.layer.0.attention.attention.query.bias" in state,
        "layer_norm_eps": 1e-6,
        "hidden_act": "gelu",
    }


def bert_config_from_state(state: dict[str, torch.Tensor], heads: int | None) -> dict[str, Any]:
    """BertConfig values of a BERT checkpoint read from its shapes (heads: hint or width/64)."""
    words = state["embeddings.word_embeddings.weight"]
    width = int(words.shape[1])
    layers = 1 + max(int(m.group(1)) for k in state if (m := _LAYER.match(k)))
    return {
        "model_type": "bert",
        "vocab_size": int(words.shape[0]),
        "hidden_size": width,
        "num_hidden_layers": layers,
        "num_attention_heads": int(heads or width // 64),
        "intermediate_size": int(state["encoder.layer.0.intermediate.dense.weight"].shape[0]),
        "max_position_embeddings": int(state["embeddings.position_embeddings.weight"].shape[0]),
        "type_vocab_size": int(state["embeddings.token_type_embeddings.weight"].shape[0]),
    }


def split_open_clip(state: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """An open_clip (timm image tower, HF text tower) state dict as its transformers parts:
    ``vision`` (ViT layout), ``visual_projection``, ``text`` (BERT layout),
    ``text_projection`` (``0.weight``/``2.weight`` of an MLP, or ``weight``), ``extra``."""
    parts: dict[str, dict[str, torch.Tensor]] = {
        k: {} for k in ("vision", "visual_projection", "text", "text_projection", "extra")
    }
    trunk: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("visual.trunk."):
            trunk[key.removeprefix("visual.trunk.")] = value
        elif key == "visual.head.proj.weight":
            parts["visual_projection"]["weight"] = value
        elif key.startswith("text.transformer."):
            inner = key.removeprefix("text.transformer.")
            if not inner.endswith("position_ids"):  # a buffer of older transformers
                parts["text"][inner] = value
        elif key.startswith("text.proj."):
            parts["text_projection"][key.removeprefix("text.proj.")] = value
        elif key in ("logit_scale", "logit_bias"):
            parts["extra"][key] = value
        else:
            raise FormatError("open_clip checkpoint", "key outside the mapping", key=key)
    if not trunk or "weight" not in parts["visual_projection"]:
        raise FormatError(
            "open_clip checkpoint",
            "no timm image tower with a linear projection",
            expected="visual.trunk.* and visual.head.proj.weight",
        )
    parts["vision"] = timm_vit_to_hf(trunk, "open_clip visual.trunk")
    return parts


def join_open_clip(parts: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`split_open_clip`."""
    out = {f"visual.trunk.{k}": v for k, v in hf_vit_to_timm(parts["vision"]).items()}
    out["visual.head.proj.weight"] = parts["visual_projection"]["weight"]
    out.update({f"text.transformer.{k}": v for k, v in parts["text"].items()})
    out.update({f"text.proj.{k}": v for k, v in parts["text_projection"].items()})
    out.update(parts["extra"])
    return out
