"""Foundation-model backbones from Hugging Face transformers (and open_clip / timm checkpoints
read without those libraries): ``--backbone hf:SOURCE[@pool=POOL]``.

The ``hf`` prefix is registered with the built-ins (:mod:`medimeta.models.registry` imports
:mod:`medimeta.models.hf.backbone`). This package itself imports neither torch nor
transformers: the named table, the cache look-up and the fetch command stay light, so a
missing model fails at once. See docs/backbones.md.
"""

from __future__ import annotations

from medimeta.models.hf.families import FAMILIES, POOLS
from medimeta.models.hf.source import HFSpec, hub_cache_dir, parse_spec, resolve, with_pool
from medimeta.models.hf.table import NamedModel, find_named, get_named, named_models

__all__ = [
    "FAMILIES",
    "POOLS",
    "HFSpec",
    "NamedModel",
    "find_named",
    "get_named",
    "hub_cache_dir",
    "named_models",
    "parse_spec",
    "resolve",
    "with_pool",
]
