"""``zero-shot``: CLIP-style classification from class prompts; the support set is not used.

Each class of an episode gets prompts (a template set over the class name, dataset, task and
domain, or a prompts file: :mod:`medimeta.train.fewshot.prompts`); a class's text embedding is
the mean of its prompts' unit-length embeddings, normalised again (template ensembling,
Radford et al. 2021). The image's projected embedding (``--pool projected``) is compared with
them as the model's own ``logits_per_image`` does: ``scale * cosine`` (+ SigLIP's bias).

Scores, as the MedIMeta authors score zero-shot (arXiv:2408.08058): multi-class and ordinal,
the softmax over the classes' logits; binary, the sigmoid of logit(class 1) - logit(class 0);
multi-label, each label's logit against a "nothing" prompt, sigmoid(logit(label) -
logit(nothing)). The prompts used are recorded in the run record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from medimeta.catalog.tasks import TaskTarget
from medimeta.episodes import Episode
from medimeta.errors import check_choice
from medimeta.features.reader import EpisodeReader
from medimeta.features.table import FeatureTable
from medimeta.models.backbone import Backbone
from medimeta.models.hf.text import TextTower, load_text_tower, text_problem
from medimeta.train.fewshot.learners import Scored, eval_features
from medimeta.train.fewshot.options import MethodOptions, MethodSettings
from medimeta.train.fewshot.prompts import (
    PromptSet,
    TaskText,
    builtin_sets,
    check_classes,
    prompt_set,
)
from medimeta.train.fewshot.registry import (
    CostContext,
    FewShotMethod,
    MethodKind,
    Scorer,
    frozen_features_cost,
    register_method,
)


@dataclass(frozen=True)
class ZeroShotOptions(MethodOptions):
    """zero-shot: the built-in template set (``ensemble``, ``class-name``, ``domain-task``) or
    a prompts file (YAML; its sha256 is recorded with the prompts)."""

    zs_templates: str = "ensemble"
    zs_prompts: str | None = None

    def validate(self) -> None:
        super().validate()
        check_choice("zero-shot template set", self.zs_templates, builtin_sets())


def task_text(ep: Episode) -> TaskText:
    return TaskText(ep.dataset_name or ep.dataset_id, ep.task_name, ep.domain)


def task_labels(ep: Episode) -> dict[int, str]:
    """Key -> name of every class of the episode's task (a prompts file may name any)."""
    from medimeta.format.reader import DatasetFolder

    if ep.folder is None:
        return {c.key: c.name for c in ep.classes}
    return dict(DatasetFolder(ep.folder, check=False).task(ep.task_name).labels)


def _prompts(cfg: MethodSettings) -> PromptSet:
    o = cfg.options_as(ZeroShotOptions)
    return prompt_set(o.zs_templates, o.zs_prompts)


class ClassTexts:
    """Text embeddings of the task's classes (and its "nothing"), computed once each."""

    def __init__(self, tower: TextTower, prompts: PromptSet, device: torch.device) -> None:
        self.tower, self.prompts, self.device = tower, prompts, device
        self._memo: dict[object, torch.Tensor] = {}

    def _ensemble(self, key: object, texts: list[str]) -> torch.Tensor:
        if key not in self._memo:
            emb = self.tower.embed(texts, self.device).mean(dim=0)
            self._memo[key] = torch.nn.functional.normalize(emb, dim=-1)
        return self._memo[key]

    def of(self, ep: Episode) -> torch.Tensor:
        """(n_way, D) class embeddings of the episode's classes, in its order."""
        task = task_text(ep)
        return torch.stack(
            [self._ensemble(c.key, self.prompts.for_class(task, c.key, c.name)) for c in ep.classes]
        )

    def nothing(self, ep: Episode) -> torch.Tensor:
        return self._ensemble("nothing", self.prompts.for_nothing(task_text(ep)))


def zero_shot_scores(logits: torch.Tensor, target: str, nothing: torch.Tensor | None) -> np.ndarray:
    """Query scores of image-class logits (B, C) for a task with ``target`` (module docstring);
    ``nothing``: the (B,) logits of the "nothing" prompt (multi-label)."""
    t = TaskTarget.from_value(target)
    logits = logits.double()
    if t is TaskTarget.BINARY_CLASSIFICATION:
        return torch.sigmoid(logits[:, 1:] - logits[:, :1]).cpu().numpy()
    if t is TaskTarget.MULTILABEL_CLASSIFICATION:
        if nothing is None:
            raise ValueError("multi-label zero-shot needs the logits of the nothing prompt")
        return torch.sigmoid(logits - nothing.double()[:, None]).cpu().numpy()
    return torch.softmax(logits, dim=1).cpu().numpy()


@register_method
class ZeroShot(FewShotMethod):
    name = "zero-shot"
    paper_name = "Zero-shot"
    kind = MethodKind.FROZEN
    summary = "CLIP-style: image embedding vs the classes' prompt embeddings; no support images"
    reference = "Radford et al., ICML 2021; scoring of Woerner et al., arXiv:2408.08058"
    options = ZeroShotOptions
    stages = ("features", "episodes")
    reads_features = True
    order = 2
    in_default_benchmark = False

    def unsupported(self, backbone: Backbone) -> str | None:
        return text_problem(backbone)

    def scorer(
        self,
        backbone: Backbone,
        reader: EpisodeReader,
        cfg: MethodSettings,
        stage: dict[str, Any],
        table: FeatureTable | None,
    ) -> Scorer:
        prompts = _prompts(cfg)
        texts = ClassTexts(load_text_tower(backbone), prompts, reader.device)
        checked: set[str] = set()

        def score(ep: Episode, seed: int) -> Scored:
            if ep.task_id not in checked and ep.folder is not None:
                check_classes(prompts, dict(task_labels(ep)))
                checked.add(ep.task_id)
            if table is not None:
                query = table.take(ep.query_indices).to(reader.device)
            else:
                query = eval_features(backbone, reader.load(ep).query_x)
            classes = texts.of(ep)
            logits = texts.tower.logits(query, classes)
            nothing = None
            if ep.task_target is TaskTarget.MULTILABEL_CLASSIFICATION:
                nothing = texts.tower.logits(query, texts.nothing(ep)[None])[:, 0]
            return zero_shot_scores(logits, ep.task_target.value, nothing), {}

        return score

    def run_details(
        self, backbone: Backbone, cfg: MethodSettings, episodes: Sequence[Episode]
    ) -> dict[str, Any]:
        """The prompts of every class the episodes hold (and the "nothing" prompts)."""
        prompts = _prompts(cfg)
        seen: dict[int, tuple[str, list[str]]] = {}
        task = task_text(episodes[0]) if episodes else None
        for ep in episodes:
            for c in ep.classes:
                if c.key not in seen:
                    seen[c.key] = (c.name, prompts.for_class(task_text(ep), c.key, c.name))
        out: dict[str, Any] = {
            **prompts.describe(),
            "classes": {str(k): {"name": n, "prompts": p} for k, (n, p) in sorted(seen.items())},
        }
        if episodes and episodes[0].task_target is TaskTarget.MULTILABEL_CLASSIFICATION:
            out["nothing"] = prompts.for_nothing(task) if task else []
        return out

    def estimate(self, ctx: CostContext) -> tuple[float, dict[str, Any]]:
        return frozen_features_cost(ctx, 0.0)
