"""Write the committed timm / open_clip fixtures of tests/models/test_hf_convert.py.

Run once, in a separate virtual environment where timm and open_clip work (they cannot be
imported beside the toolkit's CPU torch, which has no matching torchvision); never committed:

    python3 -m venv /tmp/timmvenv
    /tmp/timmvenv/bin/pip install torch torchvision timm open_clip_torch transformers safetensors
    /tmp/timmvenv/bin/python tools/make_hf_fixtures.py [--out tests/fixtures/hf]

It writes, with the versions used recorded in each ``expected.safetensors``'s metadata:

* ``timm_vit/``: a tiny timm ``VisionTransformer`` (16 wide, 2 blocks, 2 heads, 8 px patches,
  32 px input, a 5-class head) as a timm hub folder (``config.json`` with ``architecture``,
  ``model_args`` and ``pretrained_cfg``, ``model.safetensors``) and ``expected.safetensors``:
  a fixed input batch, timm's pooled features of it (``forward_head(pre_logits=True)``, the
  class token), a uint8 image and timm's eval transform of it.
* ``open_clip/``: a tiny BiomedCLIP-shaped open_clip model (that timm ViT as image tower with a
  linear projection, a 2-layer BERT text tower with an MLP projection and class-token pooling)
  as ``open_clip_config.json`` + ``open_clip_model.safetensors``, and ``expected.safetensors``:
  an input batch, token ids and open_clip's ``encode_image`` / ``encode_text`` of them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import open_clip
import timm
import torch
import transformers
from open_clip.model import CustomTextCLIP
from PIL import Image
from safetensors.torch import save_file
from timm.models import register_model
from timm.models.vision_transformer import VisionTransformer

ROOT = Path(__file__).resolve().parents[1]
MEAN, STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
TINY = {"img_size": 32, "patch_size": 8, "embed_dim": 16, "depth": 2, "num_heads": 2}


@register_model
def vit_micro_patch8_32(pretrained: bool = False, **kwargs: object) -> VisionTransformer:
    """The tiny ViT of the fixtures (timm's own class, as vit_base_patch16_224 builds it)."""
    timm_only = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")
    kwargs = {k: v for k, v in kwargs.items() if k not in timm_only}
    model = VisionTransformer(**{**TINY, **kwargs})  # type: ignore[arg-type]
    model.pretrained_cfg = model.default_cfg = {}  # what open_clip's TimmModel reads
    return model


def versions() -> dict[str, str]:
    return {
        "torch": torch.__version__,
        "timm": timm.__version__,
        "open_clip": open_clip.__version__,
        "transformers": transformers.__version__,
    }


def timm_fixture(out: Path) -> None:
    torch.manual_seed(0)
    model = timm.create_model("vit_micro_patch8_32", num_classes=5).eval()
    with torch.no_grad():  # move every parameter off its init (zeros, ones) so the test bites
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    cfg = {
        "architecture": "vit_micro_patch8_32",
        "num_classes": 5,
        "num_features": 16,
        "model_args": {k: v for k, v in TINY.items()},
        "pretrained_cfg": {
            "input_size": [3, 32, 32],
            "interpolation": "bicubic",
            "crop_pct": 0.875,
            "mean": list(MEAN),
            "std": list(STD),
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / "model.safetensors")
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        pooled = model.forward_head(model.forward_features(x), pre_logits=True)
    image = np.random.default_rng(2).integers(0, 256, (40, 44, 3), dtype=np.uint8)
    data_cfg = timm.data.resolve_data_config({}, model=model)
    data_cfg.update(
        input_size=(3, 32, 32), mean=MEAN, std=STD, crop_pct=0.875, interpolation="bicubic"
    )
    transform = timm.data.create_transform(**data_cfg)
    pixels = transform(Image.fromarray(image)).unsqueeze(0)
    tensors = {"x": x, "pooled": pooled, "image": torch.from_numpy(image), "pixels": pixels}
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, out / "expected.safetensors", metadata=versions())


def tiny_bert(folder: Path) -> None:
    config = transformers.BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    config.save_pretrained(folder)


def open_clip_fixture(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tiny_bert(Path(tmp))
        vision = {
            "timm_model_name": "vit_micro_patch8_32",
            "timm_model_pretrained": False,
            "timm_pool": "",
            "timm_proj": "linear",
            "image_size": 32,
        }
        text = {
            "hf_model_name": tmp,
            "hf_tokenizer_name": tmp,
            "hf_proj_type": "mlp",
            "hf_pooler_type": "cls_last_hidden_state_pooler",
            "hf_model_pretrained": False,
            "context_length": 16,
        }
        torch.manual_seed(3)
        model = CustomTextCLIP(embed_dim=8, vision_cfg=vision, text_cfg=text).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
        ids = torch.tensor([[2, 7, 11, 5, 3, 0, 0, 0], [2, 9, 4, 4, 8, 13, 6, 3]])
        with torch.no_grad():
            image_embeds = model.encode_image(x)
            text_embeds = model.encode_text(ids)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
    text_public = {**text, "hf_model_name": "tiny-bert (config inferred)", "hf_tokenizer_name": ""}
    cfg = {
        "model_cfg": {"embed_dim": 8, "vision_cfg": vision, "text_cfg": text_public},
        "preprocess_cfg": {"mean": list(MEAN), "std": list(STD)},
        "medimeta": {"vision_heads": 2, "text_heads": 2, "note": "tiny test model"},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "open_clip_config.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    save_file(state, out / "open_clip_model.safetensors")
    tensors = {"x": x, "input_ids": ids, "image_embeds": image_embeds, "text_embeds": text_embeds}
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, out / "expected.safetensors", metadata=versions())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests/fixtures/hf")
    args = parser.parse_args()
    timm_fixture(args.out / "timm_vit")
    open_clip_fixture(args.out / "open_clip")
    for path in sorted(args.out.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(args.out)}\t{path.stat().st_size} bytes")
    print(json.dumps(versions()))


if __name__ == "__main__":
    main()
