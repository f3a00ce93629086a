"""Few-shot episodes of any task of any dataset and split, drawn from label arrays only.

Episode ``i`` is a pure function of (seed, i, task, split, settings) and of the labels: its
generator is built from those alone (see :mod:`medimeta.episodes.seeding`).

Policies by task target (k = shots, q = queries, units = samples or subjects):

* multi-class and ordinal: ``ways`` classes (all eligible, or a random subset kept in key
  order), k support and q query units per class;
* binary: k units of class 1 and k of class 0 in the support, q of each in the query;
* multi-label: ``ways`` labels, support and query each with >= k (>= q) positive and
  negative units per label (:mod:`medimeta.episodes.multilabel`);
* ``shot_unit="subject"``: a unit is a subject with all its images of that class
  (multi-label: all its images); support and query never share a subject.

Support and query are disjoint and shuffled.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from medimeta.catalog import TaskTarget
from medimeta.episodes.episode import Episode, EpisodeClass, EpisodeSequence
from medimeta.episodes.fileio import EpisodeSet
from medimeta.episodes.multilabel import Shortfall, draw_cover
from medimeta.episodes.pool import TaskPool
from medimeta.episodes.seeding import check_seed, item_rng, stable_hash
from medimeta.episodes.settings import EpisodeSettings
from medimeta.errors import EpisodeError
from medimeta.format.locate import resolve_task_ref
from medimeta.format.reader import DatasetFolder, locate_dataset

MAX_ATTEMPTS = 20
Drawn = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
HASH_TAG = "medimeta-episodes-v1"


class SmallClassWarning(UserWarning):
    """Classes were left out of episodes because they have too few samples or subjects."""


def parse_task_ref(task: str | tuple[str, str], root: str | Path | None = None) -> tuple[str, str]:
    """``"bus:case category"``, ``("bus", "case category")`` or ``"bus"`` alone (its first
    task, that of the folder under ``root`` when given, else the catalog's; a
    :class:`~medimeta.errors.Note` says which) -> (dataset id, task name)."""
    return resolve_task_ref(root, task)


def _shuffled(
    rng: np.random.Generator, rows: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(rows.size)
    return rows[order], labels[order]


class EpisodeSampler(EpisodeSequence):
    """Episodes of one task and split; index them (``sampler[i]``) or iterate.

    ``num_episodes`` bounds ``len()`` and iteration (None: unbounded index space).
    """

    def __init__(
        self,
        folder: DatasetFolder | str | Path,
        task: str,
        split: str | Sequence[str] | None = None,
        *,
        shots: int = 5,
        queries: int = 10,
        ways: int | None = None,
        seed: int = 0,
        num_episodes: int | None = None,
        shot_unit: str = "sample",
        subject_column: str = "patient_id",
        min_class_units: int | None = None,
        on_small_class: str = "exclude",
        original_split: bool = False,
        settings: EpisodeSettings | None = None,
    ) -> None:
        if settings is None:
            settings = EpisodeSettings(
                shots, queries, ways, shot_unit, subject_column, min_class_units, on_small_class
            )
        self.settings = settings
        self.seed = check_seed(seed)
        if num_episodes is not None and (isinstance(num_episodes, bool) or num_episodes < 0):
            raise EpisodeError(f"num_episodes must be None or >= 0; got {num_episodes!r}")
        self.num_episodes = num_episodes
        folder = folder if isinstance(folder, DatasetFolder) else DatasetFolder(folder)
        subjects = settings.subject_column if settings.per_subject else None
        self.pool = TaskPool(
            folder, task, split, original_split=original_split, subject_column=subjects
        )
        self.key = stable_hash(
            HASH_TAG, self.pool.identifier, self.pool.split_label, settings.to_dict()
        )
        self.excluded = self._small_classes()
        self.eligible = tuple(k for k in self.pool.class_keys if k not in self.excluded)
        self._check_ways()

    @classmethod
    def from_root(
        cls,
        root: str | Path,
        task: str | tuple[str, str],
        split: str | Sequence[str] | None = None,
        **kwargs: object,
    ) -> EpisodeSampler:
        """Sampler for ``"dataset_id:task name"`` (or ``"dataset_id"``: its first task) of a
        dataset under ``root``."""
        dataset_id, task_name = parse_task_ref(task, root)
        return cls(locate_dataset(root, dataset_id), task_name, split, **kwargs)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"EpisodeSampler({self.pool.identifier!r}, split={self.pool.split_label!r}, "
            f"ways={self.n_way}, shots={s.shots}, queries={s.queries}, unit={s.shot_unit}, "
            f"seed={self.seed}, episodes={self.num_episodes})"
        )

    @property
    def target(self) -> TaskTarget:
        return self.pool.target

    @property
    def n_way(self) -> int:
        return self.settings.ways or len(self.eligible)

    # -- eligibility ----------------------------------------------------------------------------
    def _small_classes(self) -> dict[int, tuple[int, int]]:
        s, pool = self.settings, self.pool
        multilabel = self.target is TaskTarget.MULTILABEL_CLASSIFICATION
        counts = pool.unit_counts()
        small = {
            k: c
            for k, c in counts.items()
            if c[0] < s.min_units or (multilabel and c[1] < s.min_units)
        }
        if not small:
            return {}
        unit = "subjects" if s.per_subject else "samples"
        what = ", ".join(
            f"{k} ({pool.class_name(k)!r}: {c[0]}"
            + (f" positive / {c[1]} negative" if multilabel else "")
            + f" {unit})"
            for k, c in small.items()
        )
        text = (
            f"{pool.identifier} (split {pool.split_label}): classes below {s.min_units} {unit} "
            f"(shots + queries, or min_class_units): {what}"
        )
        if s.on_small_class == "error" or self.target is TaskTarget.BINARY_CLASSIFICATION:
            fix = "lower shots/queries" + (
                ""
                if self.target is TaskTarget.BINARY_CLASSIFICATION
                else ", or pass on_small_class='exclude'"
            )
            raise EpisodeError(f"{text}; fix: {fix} or use a larger split")
        warnings.warn(
            f"{text}; they are excluded from every episode", SmallClassWarning, stacklevel=3
        )
        return small

    def _check_ways(self) -> None:
        ways, target, have = self.settings.ways, self.target, len(self.eligible)
        if target is TaskTarget.BINARY_CLASSIFICATION:
            if ways not in (None, 2):
                raise EpisodeError(
                    f"{self.pool.identifier} is binary: ways must be 2 (or None); got {ways}"
                )
            return
        least = 1 if target is TaskTarget.MULTILABEL_CLASSIFICATION else 2
        wanted = ways or have
        if wanted < least or wanted > have:
            raise EpisodeError(
                f"{self.pool.identifier} (split {self.pool.split_label}): {wanted} ways asked, "
                f"{have} eligible classes {list(self.eligible)} (a {target.short} episode needs "
                f">= {least}); fix: change ways, shots/queries or min_class_units"
            )

    # -- drawing --------------------------------------------------------------------------------
    def _choose(self, rng: np.random.Generator) -> tuple[int, ...]:
        ways = self.settings.ways
        if ways is None or ways >= len(self.eligible):
            return self.eligible
        picked = rng.choice(len(self.eligible), ways, replace=False)
        return tuple(self.eligible[i] for i in sorted(picked.tolist()))  # keep key (ordinal) order

    def episode(self, index: int) -> Episode:
        """Episode number ``index`` (a pure function of seed, index, task, split, settings)."""
        if isinstance(index, bool) or not isinstance(index, int | np.integer) or index < 0:
            raise IndexError(f"episode index must be an integer >= 0; got {index!r}")
        if self.num_episodes is not None and index >= self.num_episodes:
            raise IndexError(f"episode {index} out of range (num_episodes={self.num_episodes})")
        rng = item_rng(self.seed, int(index), self.key)
        last: Shortfall | None = None
        for _ in range(MAX_ATTEMPTS):
            try:
                return self._draw(rng, int(index))
            except Shortfall as exc:  # the query ran short after this support: redraw both
                last = exc
        raise EpisodeError(
            f"{self.pool.identifier} (split {self.pool.split_label}), episode {index}: no disjoint "
            f"support and query after {MAX_ATTEMPTS} draws ({last}); fix: raise "
            f"min_class_units to exclude rare classes, or lower shots/queries"
        )

    def _draw(self, rng: np.random.Generator, index: int) -> Episode:
        keys = self._choose(rng)
        if self.target is TaskTarget.MULTILABEL_CLASSIFICATION:
            sup, sup_y, qry, qry_y = self._draw_multilabel(rng, keys)
        elif self.settings.per_subject:
            sup, sup_y, qry, qry_y = self._draw_subjects(rng, keys)
        else:
            sup, sup_y, qry, qry_y = self._draw_samples(rng, keys)
        spec = self.pool.folder.spec
        return Episode(
            index=index,
            seed=self.seed,
            dataset_id=spec.id,
            task_name=self.pool.task.name,
            task_target=self.target,
            domain=spec.domain,
            split=self.pool.split_label,
            classes=tuple(EpisodeClass(i, k, self.pool.class_name(k)) for i, k in enumerate(keys)),
            support_indices=sup,
            support_labels=sup_y,
            query_indices=qry,
            query_labels=qry_y,
            dataset_name=spec.name,
            folder=self.pool.folder.path,
        )

    def _draw_samples(self, rng: np.random.Generator, keys: tuple[int, ...]) -> Drawn:
        k, q = self.settings.shots, self.settings.queries
        sup, qry = [], []
        for key in keys:
            units = self.pool.class_units(key)
            rows = units.rows[rng.choice(len(units), k + q, replace=False)]
            sup.append(rows[:k])
            qry.append(rows[k:])
        return self._finish(rng, keys, sup, qry)

    def _draw_subjects(self, rng: np.random.Generator, keys: tuple[int, ...]) -> Drawn:
        k, q = self.settings.shots, self.settings.queries
        sup, qry, used = [], [], []
        for key in keys:
            units = self.pool.class_units(key)
            pick = rng.choice(len(units), k, replace=False)
            sup.append(units.members(pick))
            used.append(units.codes[pick])
        taken = np.concatenate(used)
        for key in keys:
            units = self.pool.class_units(key)
            free = np.flatnonzero(~np.isin(units.codes, taken))
            if free.size < q:
                raise Shortfall(
                    f"class {key}: {free.size} subjects left outside the support, {q} needed"
                )
            qry.append(units.members(np.sort(rng.choice(free, q, replace=False))))
        return self._finish(rng, keys, sup, qry)

    def _finish(
        self,
        rng: np.random.Generator,
        keys: tuple[int, ...],
        sup: list[np.ndarray],
        qry: list[np.ndarray],
    ) -> Drawn:
        def stack(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            rows = np.concatenate(parts).astype(np.int64, copy=False)
            labels = np.repeat(np.arange(len(keys), dtype=np.int64), [p.size for p in parts])
            return _shuffled(rng, rows, labels)

        return (*stack(sup), *stack(qry))

    @cached_property
    def _cover(self) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        _, pos, neg = self.pool.label_cover
        candidates = [
            (np.flatnonzero(pos[:, c]), np.flatnonzero(neg[:, c])) for c in range(pos.shape[1])
        ]
        return pos, neg, candidates

    def _draw_multilabel(self, rng: np.random.Generator, keys: tuple[int, ...]) -> Drawn:
        units = self.pool.label_cover[0]
        pos, neg, candidates = self._cover
        cols = np.array([self.pool.task.key_to_index(k) for k in keys], dtype=np.int64)
        s = self.settings
        support = draw_cover(rng, pos, neg, candidates, cols, s.shots)
        excluded = np.zeros(len(units), dtype=bool)
        excluded[support] = True
        query = draw_cover(rng, pos, neg, candidates, cols, s.queries, excluded)
        out: list[np.ndarray] = []
        for picked in (support, query):
            rows = units.members(picked)
            rows, labels = _shuffled(rng, rows, self.pool.all_labels[rows][:, cols])
            out += [rows.astype(np.int64, copy=False), np.ascontiguousarray(labels, dtype=np.int64)]
        return out[0], out[1], out[2], out[3]

    def sample(self, num_episodes: int | None = None, start: int = 0) -> EpisodeSet:
        """Episodes ``start .. start + n - 1`` (n defaults to ``num_episodes``) as an EpisodeSet."""
        n = self.num_episodes if num_episodes is None else num_episodes
        if n is None:
            raise EpisodeError("how many episodes? pass num_episodes (the sampler is unbounded)")
        return EpisodeSet.from_sampler(self, [self.episode(start + i) for i in range(n)])
