"""Tiny random transformers models of every supported family, saved as model folders (weights,
config and image processor), and the reference each family's default pooling is checked
against: the model's own forward through transformers' public outputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

Reference = Callable[[torch.Tensor], torch.Tensor]

_TOWER = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4}
_TOWER["intermediate_size"] = 37
_IMAGENET = {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}


def _build(family: str) -> tuple[Any, Any, Reference]:
    """(model, image processor, reference pooled features of pixel values)."""
    import transformers as T

    v = _TOWER
    if family == "vit":
        m = T.ViTModel(T.ViTConfig(**v, image_size=224, patch_size=16))
        return m, T.ViTImageProcessor(), lambda px: m(pixel_values=px).last_hidden_state[:, 0]
    if family == "deit":
        m = T.DeiTModel(T.DeiTConfig(**v, image_size=224, patch_size=16))
        return m, T.DeiTImageProcessor(), lambda px: m(pixel_values=px).last_hidden_state[:, 0]
    if family == "beit":
        cfg = T.BeitConfig(**v, image_size=224, patch_size=16, use_mean_pooling=True)
        cfg.use_relative_position_bias = True
        m = T.BeitModel(cfg)
        return m, T.BeitImageProcessor(), lambda px: m(pixel_values=px).pooler_output
    if family == "dinov2":
        m = T.Dinov2Model(T.Dinov2Config(**v, image_size=224, patch_size=14))
        proc = T.BitImageProcessor(
            size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224}, **_IMAGENET
        )

        def dino(px: torch.Tensor) -> torch.Tensor:  # Dinov2ForImageClassification's input
            h = m(pixel_values=px).last_hidden_state
            return torch.cat([h[:, 0], h[:, 1:].mean(dim=1)], dim=1)

        return m, proc, dino
    if family == "clip":
        cfg = T.CLIPConfig(
            text_config={**v, "vocab_size": 99},
            vision_config={**v, "image_size": 224, "patch_size": 32},
            projection_dim=16,
        )
        m = T.CLIPModel(cfg)
        return m, T.CLIPImageProcessor(), lambda px: _tensor(m.get_image_features(pixel_values=px))
    if family == "siglip":
        cfg = T.SiglipConfig(
            text_config={**v, "vocab_size": 99},
            vision_config={**v, "image_size": 224, "patch_size": 32},
        )
        m = T.SiglipModel(cfg)
        return (
            m,
            T.SiglipImageProcessor(),
            lambda px: _tensor(m.get_image_features(pixel_values=px)),
        )
    if family == "swin":
        cfg = T.SwinConfig(embed_dim=8, depths=[1, 1], num_heads=[1, 2], window_size=7)
        m = T.SwinModel(cfg)
        return m, T.ViTImageProcessor(resample=3), lambda px: m(pixel_values=px).pooler_output
    if family == "convnext":
        m = T.ConvNextModel(T.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2))
        proc = T.ConvNextImageProcessor(size={"shortest_edge": 224})
        return m, proc, lambda px: m(pixel_values=px).pooler_output
    if family == "resnet":
        cfg = T.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1])
        cfg.layer_type = "basic"
        m = T.ResNetModel(cfg)
        proc = T.ConvNextImageProcessor(size={"shortest_edge": 224})
        return m, proc, lambda px: m(pixel_values=px).pooler_output.flatten(1)
    raise KeyError(family)


FAMILIES = ("vit", "deit", "beit", "dinov2", "clip", "siglip", "swin", "convnext", "resnet")
#: The documented default pooling of each family.
DEFAULT_POOL = {
    "vit": "cls",
    "deit": "cls",
    "beit": "mean",
    "dinov2": "cls+mean",
    "clip": "projected",
    "siglip": "projected",
    "swin": "mean",
    "convnext": "mean",
    "resnet": "mean",
}


def _tensor(out: Any) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def save_tiny(family: str, folder: Path, seed: int = 0) -> tuple[Any, Reference]:
    """Save a tiny random ``family`` model and its image processor into ``folder``; return the
    model (eval mode) and its reference pooled features."""
    from transformers.utils import logging as tlog

    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    torch.manual_seed(seed)
    model, processor, reference = _build(family)
    with torch.no_grad():  # leave the inits (zeros, ones) so every parameter matters
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    model.eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model, reference


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def _byte_vocab() -> dict[str, int]:
    """A CLIP byte-level BPE vocabulary without merges: every byte, alone and word-final."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    chars = [chr(c) for c in cs]
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": 256 + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = 512, 513
    return vocab


def save_tiny_contrastive(family: str, folder: Path, seed: int = 0) -> Any:
    """A tiny random CLIP or SigLIP (image and text towers) saved into ``folder`` with its
    image processor and a real CLIP tokenizer (byte-level, 514 tokens; SigLIP's own needs
    sentencepiece, and any tokenizer serves a random model); returns the model (eval)."""
    import json
    import tempfile

    import transformers as T
    from transformers.utils import logging as tlog

    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    torch.manual_seed(seed)
    text = {**_TOWER, "vocab_size": 520, "bos_token_id": 512, "eos_token_id": 513}
    text["pad_token_id"] = 513
    vision = {**_TOWER, "image_size": 224, "patch_size": 32}
    if family == "clip":
        model = T.CLIPModel(T.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
        processor = T.CLIPImageProcessor()
    else:
        text["max_position_embeddings"] = 24
        model = T.SiglipModel(T.SiglipConfig(text_config=text, vision_config=vision))
        processor = T.SiglipImageProcessor()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    model.eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(_byte_vocab()), encoding="utf-8")
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
        T.CLIPTokenizer(
            str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt")
        ).save_pretrained(folder)
    return model
