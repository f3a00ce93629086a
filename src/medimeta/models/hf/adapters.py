"""Parameter-efficient adaptation of an ``hf:`` backbone: LoRA (via peft) and visual prompt
tokens (VPT). Both change a backbone in place (the few-shot methods adapt a copy per episode),
freeze its own weights and return the new trainable parameters.

LoRA (Hu et al., ICLR 2022) adds ``B @ A`` (rank ``r``, scaled by ``alpha / r``, ``B`` zero so
the adapted model starts as the original) beside the attention projections named by
``targets``: by default the attention's query and value projections (``q_proj``/``v_proj`` in
transformers' ViT, DeiT, BEiT, DINOv2, CLIP, SigLIP and Swin; ``query``/``value`` in models of
older naming).

VPT (Jia et al., ECCV 2022) inserts ``tokens`` learnable prompt tokens after the class (and
register) tokens: *shallow* once after the embeddings, *deep* replaced with new ones before
every transformer layer. The prompts are ignored by the pooling (they count as prefix tokens,
like the class token), so ``cls``, ``mean`` and ``projected`` features keep their meaning.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from medimeta.errors import MissingDependencyError, OptionError
from medimeta.models.backbone import Backbone

#: Attention projections LoRA adapts by default, by the naming of the model's modules.
QUERY_VALUE = (("q_proj", "v_proj"), ("query", "value"))


def _linear_names(model: nn.Module) -> set[str]:
    return {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)}


def lora_targets(backbone: Backbone, targets: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The module names LoRA adapts in ``backbone`` (``targets``, else the query and value
    projections the model has); None when it has none of them."""
    model = getattr(backbone, "model", None)
    if model is None:
        return None
    names = _linear_names(model)
    if targets:
        return targets if set(targets) <= names else None
    for pair in QUERY_VALUE:
        if set(pair) <= names:
            return pair
    return None


def freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


def add_lora(
    backbone: Backbone, *, rank: int, alpha: int, dropout: float, targets: tuple[str, ...] = ()
) -> list[nn.Parameter]:
    """Inject LoRA adapters into ``backbone.model`` (in place); returns their parameters."""
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError as exc:  # peft is in the models extra
        raise MissingDependencyError.for_extra(
            "models", f"LoRA needs the package 'peft' ({exc})"
        ) from None

    chosen = lora_targets(backbone, targets)
    if chosen is None:
        wanted = ", ".join(targets) if targets else "q_proj and v_proj (or query and value)"
        raise OptionError(
            f"LoRA: the backbone has no linear layers named {wanted}; fix: lora_targets with "
            "the names of its attention projections"
        )
    freeze(backbone)
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(chosen))
    model: Any = getattr(backbone, "model")  # noqa: B009 (an nn.Module attribute)
    adapted = inject_adapter_in_model(config, model)
    setattr(backbone, "model", adapted)  # noqa: B010
    params = [p for n, p in adapted.named_parameters() if "lora_" in n]
    for p in params:
        p.requires_grad_(True)
    return params


# -- visual prompt tokens ----------------------------------------------------------------------
def token_tower(backbone: Backbone) -> tuple[nn.Module, nn.ModuleList] | None:
    """The embeddings module and the transformer layers of a class-token model, or None."""
    model = getattr(backbone, "model", None)
    family = getattr(backbone, "family", None)
    if model is None or family is None or family.kind not in ("tokens", "clip", "open_clip"):
        return None
    if family.name == "beit":  # its relative position bias assumes the patch tokens only
        return None
    tower = model
    for name in ("vision_model", "vision"):  # CLIP, open_clip: the image tower inside
        tower = getattr(tower, name, tower)
    encoder = getattr(tower, "encoder", tower)
    layers = next(
        (x for x in (getattr(encoder, n, None) for n in ("layers", "layer")) if x is not None),
        None,
    )
    embeddings = getattr(tower, "embeddings", None)
    if embeddings is None or not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        return None
    return embeddings, layers


class PromptTokens(nn.Module):
    """``layers`` x ``tokens`` prompt vectors inserted at token position ``at``."""

    def __init__(self, layers: int, tokens: int, width: int, at: int, patch: int) -> None:
        super().__init__()
        self.at, self.tokens = at, tokens
        self.prompts = nn.Parameter(torch.empty(layers, tokens, width))
        bound = math.sqrt(6.0 / float(3 * patch * patch + width))  # VPT's Xavier-uniform
        nn.init.uniform_(self.prompts, -bound, bound)

    def insert(self, hidden: torch.Tensor) -> torch.Tensor:
        p = self.prompts[0].to(hidden.dtype).expand(hidden.shape[0], -1, -1)
        return torch.cat([hidden[:, : self.at], p, hidden[:, self.at :]], dim=1)

    def replace(self, hidden: torch.Tensor, layer: int) -> torch.Tensor:
        p = self.prompts[layer].to(hidden.dtype).expand(hidden.shape[0], -1, -1)
        end = self.at + self.tokens
        return torch.cat([hidden[:, : self.at], p, hidden[:, end:]], dim=1)


def _hooks(prompts: PromptTokens, embeddings: nn.Module, layers: nn.ModuleList) -> Iterator[Any]:
    yield embeddings.register_forward_hook(lambda _m, _a, out: prompts.insert(out))
    for i in range(1, prompts.prompts.shape[0]):

        def before(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], i: int = i):
            if args:
                return (prompts.replace(args[0], i), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": prompts.replace(kwargs["hidden_states"], i)}

        yield layers[i].register_forward_pre_hook(before, with_kwargs=True)


def add_prompts(backbone: Backbone, *, tokens: int, deep: bool) -> list[nn.Parameter]:
    """Insert VPT prompt tokens into ``backbone`` (in place; its own weights frozen)."""
    tower = token_tower(backbone)
    if tower is None:
        raise OptionError("VPT needs a class-token transformer (ViT, DeiT, DINOv2, CLIP)")
    embeddings, layers = tower
    model: Any = getattr(backbone, "model")  # noqa: B009
    config = getattr(model.config, "vision_config", model.config)
    width, patch = int(config.hidden_size), int(getattr(config, "patch_size", 16))
    at = int(getattr(backbone, "prefix", 1))
    freeze(backbone)
    prompts = PromptTokens(len(layers) if deep else 1, tokens, width, at, patch)
    prompts.to(next(backbone.parameters()).device)
    backbone.add_module("vpt", prompts)  # moved, counted and saved with the backbone
    setattr(backbone, "vpt_hooks", list(_hooks(prompts, embeddings, layers)))  # noqa: B010
    setattr(backbone, "prefix", at + tokens)  # noqa: B010 (pooling skips them like the CLS)
    return [prompts.prompts]
