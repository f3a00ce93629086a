"""open_clip and timm checkpoints read into transformers modules without open_clip or timm.

Two kinds of evidence:

* round trips in this environment: a transformers ViT checkpoint -> timm layout -> back gives
  the same tensors and the same forward; an open_clip-layout state dict split into its
  transformers parts and joined again is unchanged;
* committed fixtures made by timm and open_clip themselves (tools/make_hf_fixtures.py, run in
  a separate venv where they work; versions in each expected.safetensors): a tiny timm ViT and
  a tiny BiomedCLIP-shaped open_clip model with their inputs and outputs. Loaded through the
  mapping, our features and text embeddings must equal theirs (relative error <= 1e-5), and
  our reading of timm's eval transform must give timm's pixels exactly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from medimeta.errors import FormatError
from medimeta.models import create_backbone
from medimeta.models.hf import convert
from medimeta.models.hf.loading import load_open_clip_text
from medimeta.models.hf.source import resolve
from models.hf_helpers import relative_error

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hf"


def _tiny_vit(folder: Path) -> torch.nn.Module:
    import transformers as T

    torch.manual_seed(0)
    cfg = T.ViTConfig(
        hidden_size=24,
        num_hidden_layers=3,
        num_attention_heads=3,
        intermediate_size=40,
        image_size=32,
        patch_size=8,
        layer_norm_eps=1e-6,
    )
    model = T.ViTModel(cfg, add_pooling_layer=False)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.eval().save_pretrained(folder)
    return model


def test_vit_round_trip_through_timm_layout(tmp_path: Path) -> None:
    model = _tiny_vit(tmp_path / "hf")
    hub = load_file(str(tmp_path / "hf" / "model.safetensors"))
    timm_state = convert.hf_vit_to_timm(hub)
    assert "blocks.2.attn.qkv.weight" in timm_state and timm_state["cls_token"].shape == (1, 1, 24)
    assert timm_state["blocks.0.attn.qkv.weight"].shape == (72, 24)
    back = convert.timm_vit_to_hf(timm_state)
    assert back.keys() == hub.keys()
    assert all(torch.equal(back[k], hub[k]) for k in hub)
    # the timm-layout weights as a timm hub folder load to the same forward
    folder = tmp_path / "timm"
    folder.mkdir()
    save_file(timm_state, str(folder / "model.safetensors"))
    cfg = {"architecture": "vit_custom", "model_args": {"num_heads": 3}}
    cfg["pretrained_cfg"] = {"input_size": [3, 32, 32]}
    (folder / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    backbone = create_backbone(f"hf:{folder}", pretrained=True).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ours = backbone(x)
        theirs = model(pixel_values=x).last_hidden_state[:, 0]
    assert relative_error(ours, theirs) <= 1e-6
    assert backbone.describe()["hf"]["format"] == "timm"


def test_open_clip_split_join_round_trip() -> None:
    state = load_file(str(FIXTURES / "open_clip" / "open_clip_model.safetensors"))
    parts = convert.split_open_clip(state)
    assert set(parts) == {"vision", "visual_projection", "text", "text_projection", "extra"}
    assert "embeddings.word_embeddings.weight" in parts["text"]
    assert set(parts["text_projection"]) == {"0.weight", "2.weight"}
    joined = convert.join_open_clip(parts)
    kept = {k: v for k, v in state.items() if not k.endswith("position_ids")}
    assert joined.keys() == kept.keys()
    assert all(torch.equal(joined[k], kept[k]) for k in kept)


def test_timm_fixture_matches_timm() -> None:
    expected = load_file(str(FIXTURES / "timm_vit" / "expected.safetensors"))
    backbone = create_backbone(f"hf:{FIXTURES / 'timm_vit'}", pretrained=True).eval()
    assert backbone.pooling == "cls" and backbone.num_features == 16
    with torch.no_grad():
        ours = backbone(expected["x"])
    assert relative_error(ours, expected["pooled"]) <= 1e-5
    # timm's eval transform (shortest edge int(32 / 0.875) = 36, bicubic, torchvision crop)
    image = expected["image"].permute(2, 0, 1)[None]  # (1, 3, 40, 44): odd crop margins
    assert torch.equal(backbone.preprocessing(image), expected["pixels"])


def test_open_clip_fixture_matches_open_clip() -> None:
    expected = load_file(str(FIXTURES / "open_clip" / "expected.safetensors"))
    backbone = create_backbone(f"hf:{FIXTURES / 'open_clip'}", pretrained=True).eval()
    assert backbone.pooling == "projected" and backbone.num_features == 8
    with torch.no_grad():
        image = backbone(expected["x"])
        text = load_open_clip_text(resolve(str(FIXTURES / "open_clip"))).encode(
            expected["input_ids"]
        )
    assert relative_error(image, expected["image_embeds"]) <= 1e-5
    assert relative_error(text, expected["text_embeds"]) <= 1e-5
    described = backbone.describe()
    assert described["hf"]["format"] == "open_clip"
    assert (
        described["weights"]["sha256"] and described["preprocessing"]["crop_rule"] == "torchvision"
    )


def test_mapping_refuses_what_it_does_not_know(tmp_path: Path) -> None:
    state = load_file(str(FIXTURES / "timm_vit" / "model.safetensors"))
    with pytest.raises(FormatError, match="blocks.N.ls1.gamma"):
        convert.timm_vit_to_hf({**state, "blocks.0.ls1.gamma": torch.ones(16)})
    with pytest.raises(FormatError, match="fc_norm.weight"):
        convert.timm_vit_to_hf({**state, "fc_norm.weight": torch.ones(16)})
    assert convert.timm_heads("vit_base_patch16_224", None, 768) == 12
    assert convert.timm_heads("vit_large_patch14_clip_224", None, 1024) == 16
    with pytest.raises(FormatError, match="attention heads"):
        convert.timm_heads("vit_custom", None, 16)
    folder = tmp_path / "oc"
    shutil.copytree(FIXTURES / "open_clip", folder)
    cfg = json.loads((folder / "open_clip_config.json").read_text(encoding="utf-8"))
    cfg["model_cfg"]["vision_cfg"]["timm_proj"] = "mlp"
    (folder / "open_clip_config.json").write_text(json.dumps(cfg), encoding="utf-8")
    with pytest.raises(FormatError, match="linear projection"):
        create_backbone(f"hf:{folder}", pretrained=True)


def test_fixtures_are_small() -> None:
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    assert total < 200_000, total
