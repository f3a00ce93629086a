"""``finetune``: full fine-tuning with the MedIMeta authors' fixed foundation-model settings.

The follow-up benchmark of the MedIMeta authors (Woerner et al., arXiv:2408.08058) fine-tunes
every foundation model per episode with Adam, learning rate 1e-4, 150 full-batch steps and a
zero-initialised linear head: this is ``im-pt``'s learner
(:mod:`medimeta.train.fewshot.methods.finetune`) with those defaults, as its own method so
that the paper's ``im-pt`` (lr 1e-2, 100 steps) and this protocol appear as separate rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from medimeta.train.fewshot.methods.finetune import EpisodeTraining
from medimeta.train.fewshot.options import FinetuneOptions
from medimeta.train.fewshot.registry import register_method


@dataclass(frozen=True)
class FmFinetuneOptions(FinetuneOptions):
    """finetune: the authors' Adam lr 1e-4 x 150 full-batch steps."""

    finetune_steps: int = 150
    finetune_lr: float = 1e-4
    finetune_bn: str = field(default="train", metadata={"omit_default": True})


@register_method
class FoundationFinetune(EpisodeTraining):
    name = "finetune"
    paper_name = "Fine-tuning (FM protocol)"
    summary = "fine-tune the whole model per episode: Adam 1e-4 x 150 steps, zero head"
    reference = "Woerner et al., arXiv:2408.08058 (MedIMeta foundation-model benchmark)"
    options = FmFinetuneOptions
    order = 15
    in_default_benchmark = False  # the fm-grid preset's
