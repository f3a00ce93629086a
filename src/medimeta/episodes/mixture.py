"""Episodes from many tasks (cross-domain meta-training): episode ``i`` picks its task, then
takes that task's episode ``i``; both are pure functions of (seed, i, tasks, settings)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medimeta.episodes.episode import Episode, EpisodeSequence
from medimeta.episodes.sampler import EpisodeSampler
from medimeta.episodes.seeding import check_seed, item_rng, stable_hash
from medimeta.errors import EpisodeError, check_choice

MIXTURE_WEIGHTS = ("uniform", "proportional")


class MultiTaskEpisodes(EpisodeSequence):
    """Index-addressable episodes over several samplers.

    ``weights``: ``"uniform"`` (each task equally likely), ``"proportional"`` (by samples in
    the task's split) or one non-negative number per sampler.
    """

    def __init__(
        self,
        samplers: Sequence[EpisodeSampler],
        *,
        weights: str | Sequence[float] = "uniform",
        seed: int = 0,
        num_episodes: int | None = None,
    ) -> None:
        if not samplers:
            raise EpisodeError("MultiTaskEpisodes needs at least one sampler")
        self.samplers = list(samplers)
        self.seed = check_seed(seed)
        self.num_episodes = num_episodes
        if isinstance(weights, str):
            check_choice("task weighting", weights, MIXTURE_WEIGHTS)
            raw = (
                np.ones(len(self.samplers))
                if weights == "uniform"
                else np.array([s.pool.indices.size for s in self.samplers], dtype=float)
            )
        else:
            raw = np.asarray(weights, dtype=float)
            if raw.shape != (len(self.samplers),) or np.any(raw < 0) or not np.isfinite(raw).all():
                raise EpisodeError(
                    f"weights must be {len(self.samplers)} non-negative numbers; got {weights!r}"
                )
        if raw.sum() <= 0:
            raise EpisodeError("task weights sum to zero")
        self.probabilities = raw / raw.sum()
        self.key = stable_hash(
            "medimeta-episode-mixture-v1",
            [
                [s.pool.identifier, s.pool.split_label, s.settings.to_dict(), s.seed]
                for s in self.samplers
            ],
            self.probabilities.tolist(),
        )

    def task_of(self, index: int) -> int:
        """Which sampler episode ``index`` comes from."""
        rng = item_rng(self.seed, int(index), self.key)
        return int(rng.choice(len(self.samplers), p=self.probabilities))

    def episode(self, index: int) -> Episode:
        if self.num_episodes is not None and not 0 <= index < self.num_episodes:
            raise IndexError(f"episode {index} out of range (num_episodes={self.num_episodes})")
        sampler = self.samplers[self.task_of(index)]
        if sampler.num_episodes is not None and index >= sampler.num_episodes:
            raise EpisodeError(
                "samplers inside MultiTaskEpisodes must be unbounded (num_episodes=None)"
            )
        return sampler.episode(index)
