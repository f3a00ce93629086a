"""Settings of the cross-domain few-shot methods (defaults: the MedIMeta paper's code).

* ``im-pt``: ImageNet weights, then per episode a fresh zero-initialised head and the whole
  network fine-tuned on the support set: Adam lr 1e-2, 100 full-batch steps.
* ``mm-pt``: the backbone is first pre-trained on the leave-one-out source tasks (a random
  source task per step, one zero-initialised head per task; Adam lr 1e-3, batch 64), then
  fine-tuned per episode as ``im-pt``.
* ``mm-maml``: MAML over source-task episodes with a fresh zero-initialised head per episode
  (rows per class); inner SGD lr 0.1 x 4 steps (second order unless ``first_order``),
  outer Adam lr 1e-3; evaluation adapts a copy with SGD lr 0.1 x 32 steps.
* ``protonet``: nearest class prototype (mean support embedding) with softmax over negative
  distances; no training on the target.
* ``linear-probe``: frozen backbone features, a zero-initialised linear head trained on the
  support features (Adam lr 1e-2, 100 full-batch steps).
* ``knn``: cosine k-nearest-neighbour vote over frozen features (not in the paper): the
  ``knn_k`` most similar support samples vote with weight ``exp(cos / knn_temperature)``
  (k 10, temperature 0.07 as in DINO's k-NN evaluation); see :mod:`medimeta.train.fewshot.knn`.
* ``meta-baseline`` (Chen et al., ICCV 2021; MedFM's baseline, not in the MedIMeta paper):
  mm-pt's classifier pre-training, then ``meta_steps`` x ``meta_batch_size`` source episodes
  (``meta_shots`` / ``meta_queries``, as mm-maml) with the heads dropped: logits ``tau`` x
  cosine to the mean support features, query cross-entropy, SGD ``mb_lr`` 1e-3, momentum 0.9,
  weight decay 5e-4, ``tau`` learnable from ``mb_tau`` 10; evaluation scores the target
  query by the same cosine centroids with the learned ``tau`` (no training on the target); see
  :mod:`medimeta.train.fewshot.metabaseline`.

``sources`` / ``exclude_sources`` (mm-pt, mm-maml, meta-baseline): only these source datasets
or tasks (``ID`` or ``ID:TASK``), or the leave-one-out default without these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from medimeta.errors import check_choice

METHODS = ("im-pt", "mm-pt", "mm-maml", "protonet", "linear-probe", "knn", "meta-baseline")
#: Methods that only read eval-mode features (what the embedding cache serves).
FROZEN_METHODS = ("linear-probe", "protonet", "knn")
#: Methods with a training stage on the source tasks before the episodes.
SOURCE_METHODS = ("mm-pt", "mm-maml", "meta-baseline")
#: Methods whose episodes only read eval-mode features of the backbone after its stage (the
#: embedding cache is keyed by the backbone's state, so it serves a trained one too).
CACHED_METHODS = (*FROZEN_METHODS, "meta-baseline")
DISTANCES = ("squared_euclidean", "euclidean", "cosine")
BN_POLICIES = ("train", "frozen")
#: Meta-Baseline's meta-stage settings (its classifier pre-training does not depend on them).
META_BASELINE_META_FIELDS = (
    "meta_steps",
    "meta_batch_size",
    "meta_shots",
    "meta_queries",
    "mb_lr",
    "mb_momentum",
    "mb_weight_decay",
    "mb_tau",
)
PAPER_NAMES = {
    "im-pt": "ImageNet",
    "mm-pt": "MM-PFT",
    "mm-maml": "MM-MAML",
    "protonet": "ProtoNet",
    "linear-probe": "ImageNet (linear probe)",
    "knn": "ImageNet (kNN)",
    "meta-baseline": "Meta-Baseline",
}


@dataclass(frozen=True)
class FewShotConfig:
    """Everything that determines a few-shot evaluation besides the episodes and the data."""

    method: str = "im-pt"
    backbone: str = "resnet18"
    pretrained: bool | str = True
    image_size: int | None = None
    normalize: str = "auto"
    channels_last: bool | None = None
    ordinal: str = "nominal"
    head_init: str = "zero"
    seed: int = 0
    # fine-tuning (im-pt, mm-pt) and linear probe
    finetune_steps: int = 100
    finetune_lr: float = 1e-2
    finetune_bn: str = "train"  # BatchNorm while fine-tuning: "train" or "frozen"
    probe_steps: int = 100
    probe_lr: float = 1e-2
    # protonet
    distance: str = "squared_euclidean"
    # mm-pt pre-training
    pretrain_steps: int = 1000
    pretrain_batch_size: int = 64
    pretrain_lr: float = 1e-3
    source_tasks: str = "first"
    sources: tuple[str, ...] = ()
    exclude_sources: tuple[str, ...] = ()
    allow_shared: bool = False  # keep sources the audit finds sharing images with the target
    # mm-maml; meta_steps, meta_batch_size, meta_shots, meta_queries also meta-baseline
    meta_steps: int = 1000
    meta_batch_size: int = 1
    meta_lr: float = 1e-3
    inner_lr: float = 0.1
    inner_steps: int = 4
    eval_inner_lr: float = 0.1
    eval_inner_steps: int = 32
    first_order: bool = False
    meta_shots: int = 5
    meta_queries: int = 10
    transductive: bool = True
    # knn
    knn_k: int = 10
    knn_temperature: float = 0.07
    # meta-baseline meta stage (the paper's: SGD lr 1e-3, momentum 0.9, wd 5e-4, tau from 10)
    mb_lr: float = 1e-3
    mb_momentum: float = 0.9
    mb_weight_decay: float = 5e-4
    mb_tau: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "exclude_sources", tuple(self.exclude_sources))
        check_choice("few-shot method", self.method, METHODS)
        check_choice("prototype distance", self.distance, DISTANCES)
        check_choice("fine-tuning BatchNorm policy", self.finetune_bn, BN_POLICIES)
        check_choice("normalisation", self.normalize, ("auto", "half", "imagenet"))
        for name in (
            "finetune_steps",
            "probe_steps",
            "pretrain_steps",
            "meta_steps",
            "inner_steps",
            "eval_inner_steps",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}")
        if self.meta_batch_size < 1 or self.pretrain_batch_size < 1:
            raise ValueError("meta_batch_size and pretrain_batch_size must be >= 1")
        if self.knn_k < 1 or not self.knn_temperature > 0:
            raise ValueError("knn_k must be >= 1 and knn_temperature > 0")
        if not (self.mb_tau > 0 and self.mb_lr >= 0 and self.mb_weight_decay >= 0):
            raise ValueError(
                f"meta-baseline needs mb_tau > 0, mb_lr >= 0 and mb_weight_decay >= 0; got "
                f"{self.mb_tau}, {self.mb_lr}, {self.mb_weight_decay}"
            )

    def with_overrides(self, **changes: Any) -> FewShotConfig:
        """A copy with the given fields changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def relevant(self) -> dict[str, Any]:
        """The fields that matter for this method (what result files record)."""
        common = [
            "method",
            "backbone",
            "pretrained",
            "image_size",
            "normalize",
            "ordinal",
            "head_init",
            "seed",
            "channels_last",
        ]
        extra = {
            "im-pt": ["finetune_steps", "finetune_lr", "finetune_bn"],
            "mm-pt": [
                "finetune_steps",
                "finetune_lr",
                "finetune_bn",
                "pretrain_steps",
                "pretrain_batch_size",
                "pretrain_lr",
                "source_tasks",
                "sources",
                "exclude_sources",
                "allow_shared",
            ],
            "mm-maml": [
                "meta_steps",
                "meta_batch_size",
                "meta_lr",
                "inner_lr",
                "inner_steps",
                "eval_inner_lr",
                "eval_inner_steps",
                "first_order",
                "meta_shots",
                "meta_queries",
                "transductive",
                "source_tasks",
                "sources",
                "exclude_sources",
                "allow_shared",
            ],
            "protonet": ["distance"],
            "linear-probe": ["probe_steps", "probe_lr"],
            "knn": ["knn_k", "knn_temperature"],
            "meta-baseline": [
                "pretrain_steps",
                "pretrain_batch_size",
                "pretrain_lr",
                *META_BASELINE_META_FIELDS,
                "source_tasks",
                "sources",
                "exclude_sources",
                "allow_shared",
            ],
        }[self.method]
        data = asdict(self)
        out = {k: data[k] for k in common + extra}
        # absent when unset: the hashes of earlier runs hold
        for key in ("sources", "exclude_sources", "allow_shared"):
            if key in out and not out[key]:
                del out[key]
        if out.get("finetune_bn") == "train":
            del out["finetune_bn"]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
