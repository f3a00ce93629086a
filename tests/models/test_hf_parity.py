"""hf: backbones against transformers itself, family by family, with tiny random models.

Pixels: our batched path (:class:`~medimeta.models.preprocessing.Preprocessing` on uint8
batches) against transformers' slow image processor (``use_fast=False``, the PIL backend) on
the same images converted to RGB: required EXACTLY equal (the resize is Pillow's own, the
crop transformers' rule, the values a lookup table computed with transformers' arithmetic).
Features: our backbone on our pixels against the model's own forward on the processor's
pixels, for the family's documented default pooling: relative error <= 1e-3 required (it is 0
here: same pixels, same module).

Real BUSI images (``bus`` built from ``$MEDIMETA_REALDATA/busi-256``, stored 224 x 224 grey)
exercise both the no-resize families and the resizing ones (DINOv2: shortest edge 256 bicubic
then crop 224; ConvNeXt/ResNet: 224 / 0.875 = 256 then crop; DeiT: 256 x 256 then crop);
random RGB and grey images of odd, non-square sizes exercise the size rules and crop offsets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from medimeta.models import create_backbone
from models.hf_helpers import DEFAULT_POOL, FAMILIES, relative_error, save_tiny


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, object]]:
    root = tmp_path_factory.mktemp("hf-tiny")
    out = {}
    for family in FAMILIES:
        _, reference = save_tiny(family, root / family)
        out[family] = (root / family, reference)
    return out


@pytest.fixture(scope="module")
def busi_images(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> torch.Tensor:
    from medimeta.builders import build_dataset
    from medimeta.episodes import EpisodeLoader

    root = tmp_path_factory.mktemp("hf-busi")
    build_dataset("bus", realdata / "busi-256", root=root, workers=1)
    rows = np.array([0, 5, 17, 100, 333, 779], dtype=np.int64)
    images = EpisodeLoader(dtype="uint8").images(root / "bus", rows)
    assert images.shape == (6, 1, 224, 224) and images.dtype == torch.uint8
    return images


def _processor_pixels(folder: Path, images: torch.Tensor) -> torch.Tensor:
    from transformers import AutoImageProcessor

    proc = AutoImageProcessor.from_pretrained(folder, use_fast=False)
    assert type(proc).__name__.endswith("Pil")  # the slow (PIL) processor
    pil = []
    for im in images.numpy():
        arr = im[0] if im.shape[0] == 1 else im.transpose(1, 2, 0)
        pil.append(Image.fromarray(arr).convert("RGB"))
    return proc(images=pil, return_tensors="pt")["pixel_values"]


@pytest.mark.realdata
@pytest.mark.parametrize("family", FAMILIES)
def test_family_matches_transformers_on_busi(
    family: str, tiny_models: dict[str, tuple[Path, object]], busi_images: torch.Tensor
) -> None:
    folder, reference = tiny_models[family]
    expected_px = _processor_pixels(folder, busi_images)
    backbone = create_backbone(f"hf:{folder}", pretrained=True).eval()
    assert backbone.pooling == DEFAULT_POOL[family]
    ours_px = backbone.preprocessing(busi_images)
    assert ours_px.dtype == torch.float32 and ours_px.shape == expected_px.shape
    assert torch.equal(ours_px, expected_px), float((ours_px - expected_px).abs().max())
    with torch.no_grad():
        ours = backbone(ours_px)
        theirs = reference(expected_px)  # type: ignore[operator]
    assert ours.shape == (len(busi_images), backbone.num_features)
    err = relative_error(ours, theirs)
    assert err <= 1e-3, f"{family}: relative error {err:.2e}"


@pytest.mark.parametrize("family", ["dinov2", "convnext", "deit", "clip", "vit"])
@pytest.mark.parametrize(
    ("height", "width", "channels"), [(37, 45, 3), (301, 233, 1), (224, 224, 3)]
)
def test_pixels_exact_on_odd_sizes(
    family: str,
    height: int,
    width: int,
    channels: int,
    tiny_models: dict[str, tuple[Path, object]],
) -> None:
    """Non-square, odd and tiny images (upscaled; centre crops with odd margins), RGB and
    grey: still bit-identical to the slow processor."""
    folder, _ = tiny_models[family]
    rng = np.random.default_rng(height * width)
    images = torch.from_numpy(rng.integers(0, 256, (3, channels, height, width), dtype=np.uint8))
    backbone = create_backbone(f"hf:{folder}", pretrained=False)
    ours = backbone.preprocessing(images)
    theirs = _processor_pixels(folder, images)
    assert torch.equal(ours, theirs), float((ours - theirs).abs().max())


@pytest.mark.parametrize(
    ("family", "pool", "width"),
    [
        ("dinov2", "cls", 32),
        ("dinov2", "mean", 32),
        ("clip", "cls", 32),
        ("clip", "cls+mean", 64),
        ("siglip", "mean", 32),
        ("vit", "cls+mean", 64),
    ],
)
def test_pooling_choices(
    family: str, pool: str, width: int, tiny_models: dict[str, tuple[Path, object]]
) -> None:
    import transformers as T

    folder, _ = tiny_models[family]
    backbone = create_backbone(f"hf:{folder}@pool={pool}", pretrained=True).eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = backbone(x)
        model = T.AutoModel.from_pretrained(folder).eval()
        vision = getattr(model, "vision_model", model)
        out = vision(pixel_values=x)
    hidden = out.last_hidden_state
    start = 0 if family == "siglip" else 1
    expected = {
        "cls": out.pooler_output if family == "clip" else hidden[:, 0],
        "mean": hidden[:, start:].mean(dim=1),
    }
    expected["cls+mean"] = torch.cat([expected["cls"], expected["mean"]], dim=1)
    assert got.shape == (2, width) and backbone.num_features == width
    assert relative_error(got, expected[pool]) <= 1e-5
    assert backbone.describe()["pooling"] == pool


def test_unknown_pool_and_family_are_refused(
    tiny_models: dict[str, tuple[Path, object]], tmp_path: Path
) -> None:
    from medimeta.errors import UnknownNameError

    folder, _ = tiny_models["resnet"]
    with pytest.raises(UnknownNameError, match="pooling of a resnet model 'cls'"):
        create_backbone(f"hf:{folder}@pool=cls")
    import transformers as T

    T.BertModel(
        T.BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1)
    ).save_pretrained(tmp_path / "bert")
    with pytest.raises(UnknownNameError, match="supported families: ViT, DeiT, BEiT, DINOv2"):
        create_backbone(f"hf:{tmp_path / 'bert'}")
