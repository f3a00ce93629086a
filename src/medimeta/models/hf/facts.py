"""Parameter count and embedding width of a named model, computed from its ``arch`` (the image
tower's config values) by building the tower on the meta device: no weights, no memory."""

from __future__ import annotations

from typing import Any

import torch

from medimeta.models.hf.families import BY_NAME, num_features
from medimeta.models.hf.quiet import quiet_transformers
from medimeta.models.hf.table import NamedModel


def arch_config(entry: NamedModel) -> Any:
    """The transformers config of ``entry.arch`` (``model_type`` picks the config class)."""
    from transformers import CONFIG_MAPPING

    values = dict(entry.arch)
    model_type = values.pop("model_type")
    projection = values.pop("projection_dim", None) if entry.format == "open_clip" else None
    config = CONFIG_MAPPING[model_type](**values)
    if projection is not None:
        config.projection_dim = int(projection)
    return config


def arch_facts(entry: NamedModel) -> tuple[int, int]:
    """(parameters of the image tower as loaded, width of the default pooled features)."""
    import transformers

    family = BY_NAME[entry.family]
    config = arch_config(entry)
    kw = {} if family.pooling_layer is None else {"add_pooling_layer": family.pooling_layer}
    with quiet_transformers(), torch.device("meta"):
        module = getattr(transformers, family.module)(config, **kw)
    params = sum(p.numel() for p in module.parameters())
    if entry.format == "open_clip":
        params += int(config.hidden_size) * int(config.projection_dim)  # the projection
    return int(params), num_features(family, config, entry.pool)
