"""Cross-domain few-shot methods and their evaluation loop.

Methods are registered in :mod:`medimeta.train.fewshot.registry` (built-in: im-pt, mm-pt,
mm-maml, protonet, linear-probe, knn, meta-baseline, and whatever else
:mod:`medimeta.train.fewshot.methods` holds); :func:`run_fewshot` evaluates one on episodes.
"""

from __future__ import annotations

from medimeta.train.fewshot.config import FewShotConfig
from medimeta.train.fewshot.registry import (
    FewShotMethod,
    MethodKind,
    all_methods,
    get_method,
    method_names,
    register_method,
)
from medimeta.train.fewshot.report import result_markdown
from medimeta.train.fewshot.runner import run_fewshot
from medimeta.train.settings import EpisodePlan, RunSettings

__all__ = [
    "EpisodePlan",
    "FewShotConfig",
    "FewShotMethod",
    "MethodKind",
    "RunSettings",
    "all_methods",
    "get_method",
    "method_names",
    "register_method",
    "result_markdown",
    "run_fewshot",
]
