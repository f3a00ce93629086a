"""The model families an ``hf:`` backbone can be: which transformers module holds the image
tower, which poolings it offers and its default, and the width of each pooled feature.

Poolings (``--pool``):

* ``cls``: the class token of the last hidden state (ViT, DeiT, BEiT, DINOv2: after the final
  layer norm; CLIP: the vision tower's pooled output, i.e. the class token after its
  post-layer-norm);
* ``mean``: the mean of the patch tokens (class, distillation and register tokens left out);
  BEiT with ``use_mean_pooling``: its pooler (layer norm of that mean); Swin, ConvNeXt,
  ResNet: the model's global average (``pooler_output``);
* ``cls+mean``: both, concatenated (2 x hidden size), as DINOv2's image classifier does;
* ``projected``: the image embedding of a contrastive model (CLIP: the projection of the pooled
  output, ``get_image_features``; SigLIP: its attention-pooling head; open_clip: the projection
  of the image tower's output).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medimeta.errors import UnknownNameError

if TYPE_CHECKING:  # torch is imported where features are computed, not with the table
    import torch

POOLS = ("cls", "mean", "cls+mean", "projected")


@dataclass(frozen=True)
class Family:
    """One family: its ``model_type`` values, transformers class and poolings."""

    name: str
    model_types: tuple[str, ...]
    module: str
    pools: tuple[str, ...]
    default_pool: str
    default_why: str
    pooling_layer: bool | None = None  # the class's add_pooling_layer (None: no such argument)
    kind: str = "tokens"  # tokens | clip | siglip | cnn | open_clip


_TOKENS = ("cls", "mean", "cls+mean")

FAMILIES: tuple[Family, ...] = (
    Family("vit", ("vit",), "ViTModel", _TOKENS, "cls", "CLS after the final layer norm", False),
    Family("deit", ("deit",), "DeiTModel", _TOKENS, "cls", "CLS after the final layer norm", False),
    Family(
        "beit", ("beit",), "BeitModel", _TOKENS, "mean", "its pooler: LN(mean of patches)", True
    ),
    Family("dinov2", ("dinov2",), "Dinov2Model", _TOKENS, "cls+mean", "CLS and patch mean"),
    Family(
        "dinov2_with_registers",
        ("dinov2_with_registers",),
        "Dinov2WithRegistersModel",
        _TOKENS,
        "cls+mean",
        "CLS and patch mean",
    ),
    Family(
        "clip",
        ("clip",),
        "CLIPVisionModelWithProjection",
        (*_TOKENS, "projected"),
        "projected",
        "the projected image embedding (get_image_features)",
        kind="clip",
    ),
    Family(
        "clip_vision_model",
        ("clip_vision_model",),
        "CLIPVisionModel",
        _TOKENS,
        "cls",
        "the pooled output (no projection in a vision-only checkpoint)",
        kind="clip",
    ),
    Family(
        "siglip",
        ("siglip", "siglip_vision_model"),
        "SiglipVisionModel",
        ("mean", "projected"),
        "projected",
        "the attention-pooling head (get_image_features)",
        kind="siglip",
    ),
    Family("swin", ("swin",), "SwinModel", ("mean",), "mean", "global average", True, "cnn"),
    Family(
        "convnext", ("convnext",), "ConvNextModel", ("mean",), "mean", "LN(global avg)", None, "cnn"
    ),
    Family(
        "convnextv2",
        ("convnextv2",),
        "ConvNextV2Model",
        ("mean",),
        "mean",
        "LN(global avg)",
        None,
        "cnn",
    ),
    Family("resnet", ("resnet",), "ResNetModel", ("mean",), "mean", "global average", None, "cnn"),
    Family(
        "open_clip",
        (),
        "ViTModel",
        (*_TOKENS, "projected"),
        "projected",
        "the projected image embedding (encode_image)",
        False,
        "open_clip",
    ),
    Family(
        "timm_vit", (), "ViTModel", _TOKENS, "cls", "the class token (timm's 'token' pool)", False
    ),
)
BY_NAME = {f.name: f for f in FAMILIES}
BY_MODEL_TYPE = {t: f for f in FAMILIES for t in f.model_types}


def supported_model_types() -> list[str]:
    return sorted(BY_MODEL_TYPE)


def family_for(model_type: str, where: str = "") -> Family:
    """The family of a config's ``model_type``; UnknownNameError naming the supported ones."""
    if model_type not in BY_MODEL_TYPE:
        raise UnknownNameError(
            "transformers model type (supported families: ViT, DeiT, BEiT, DINOv2, CLIP, SigLIP, "
            "Swin, ConvNeXt, ResNet; open_clip and timm ViT checkpoints)",
            model_type,
            BY_MODEL_TYPE,
            where,
        )
    return BY_MODEL_TYPE[model_type]


def default_pool(family: Family, config: Any) -> str:
    """The family's default pooling (BEiT without mean pooling: the class token)."""
    if family.name == "beit" and not getattr(config, "use_mean_pooling", True):
        return "cls"
    return family.default_pool


def check_pool(family: Family, pool: str) -> str:
    if pool not in family.pools:
        raise UnknownNameError(f"pooling of a {family.name} model", pool, family.pools)
    return pool


def tower_config(family: Family, config: Any) -> Any:
    """The config the family's module class takes (the vision part of a CLIP/SigLIP config)."""
    if family.name == "clip":
        vision = config.vision_config
        vision.projection_dim = config.projection_dim
        return vision
    if family.name == "siglip" and hasattr(config, "vision_config"):
        return config.vision_config
    return config


def prefix_tokens(family: Family, config: Any) -> int:
    """Tokens before the patch tokens: class, distillation (DeiT) and register tokens."""
    if family.name == "deit":
        return 2
    if family.name == "dinov2_with_registers":
        return 1 + int(config.num_register_tokens)
    return 0 if family.kind == "siglip" else 1


def num_features(family: Family, config: Any, pool: str) -> int:
    """Width of the pooled features of ``config`` (the family's tower config)."""
    if family.name == "swin":
        return int(config.embed_dim * 2 ** (len(config.depths) - 1))
    if family.kind == "cnn":
        return int(config.hidden_sizes[-1])
    if pool == "projected":
        if family.kind == "clip":
            return int(config.projection_dim)
        if family.kind == "open_clip":
            return int(config.projection_dim)
        return int(config.hidden_size)
    width = int(config.hidden_size)
    return 2 * width if pool == "cls+mean" else width


def _token_pool(
    hidden: torch.Tensor,
    prefix: int,
    pool: str,
    pooled_mean: torch.Tensor | None = None,
    pooled_cls: torch.Tensor | None = None,
) -> torch.Tensor:
    import torch

    cls = pooled_cls if pooled_cls is not None else hidden[:, 0]
    mean = pooled_mean if pooled_mean is not None else hidden[:, prefix:].mean(dim=1)
    if pool == "cls":
        return cls
    if pool == "mean":
        return mean
    return torch.cat([cls, mean], dim=-1)


def pool_features(
    family: Family, module: Any, x: torch.Tensor, pool: str, prefix: int
) -> torch.Tensor:
    """Pooled features (B, F) of pixel values ``x`` (B, 3, H, W) through ``module``."""
    import torch

    if family.kind == "cnn":
        return torch.flatten(module(pixel_values=x).pooler_output, 1)
    if family.kind == "clip":
        out = module.vision_model(pixel_values=x)
        if pool == "projected":
            return module.visual_projection(out.pooler_output)
        return _token_pool(out.last_hidden_state, prefix, pool, pooled_cls=out.pooler_output)
    if family.kind == "siglip":
        out = module(pixel_values=x)
        return out.pooler_output if pool == "projected" else out.last_hidden_state.mean(dim=1)
    if family.kind == "open_clip":
        hidden = module.vision(pixel_values=x).last_hidden_state
        if pool == "projected":
            return module.visual_projection(hidden[:, 0])
        return _token_pool(hidden, prefix, pool)
    out = module(pixel_values=x)
    pooled_mean = None
    if family.name == "beit" and getattr(module.config, "use_mean_pooling", False):
        pooled_mean = out.pooler_output
    return _token_pool(out.last_hidden_state, prefix, pool, pooled_mean)
