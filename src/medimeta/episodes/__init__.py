"""Few-shot episodes, portable episode sets and cross-domain batches.

* :class:`EpisodeSampler`: episode ``i`` of one task and split, a pure function of
  (seed, i, task, split, settings), drawn from label arrays only.
* :class:`EpisodeSet`: episodes saved to / loaded from JSON with a data fingerprint.
* :class:`EpisodeLoader`, :class:`EpisodeDataset`, :class:`EpisodeStream`: episodes as
  tensors (one batched read each), split over DataLoader workers and ranks.
* :class:`MultiTaskEpisodes`: episodes drawn over many tasks.
* :class:`CrossDomainBatches`: interleaved single-task batches from many tasks.
* :func:`source_tasks`: leave-one-out source tasks for a target.
"""

from medimeta.episodes.batches import CrossDomainBatches, TaskBatch
from medimeta.episodes.episode import Episode, EpisodeClass
from medimeta.episodes.fileio import EpisodeSet
from medimeta.episodes.loading import EpisodeDataset, EpisodeLoader, EpisodeStream, LoadedEpisode
from medimeta.episodes.mixture import MultiTaskEpisodes
from medimeta.episodes.pool import TaskPool
from medimeta.episodes.sampler import EpisodeSampler, SmallClassWarning, parse_task_ref
from medimeta.episodes.settings import EpisodeSettings
from medimeta.episodes.sources import excluded_datasets, source_tasks

__all__ = [
    "CrossDomainBatches",
    "Episode",
    "EpisodeClass",
    "EpisodeDataset",
    "EpisodeLoader",
    "EpisodeSampler",
    "EpisodeSet",
    "EpisodeSettings",
    "EpisodeStream",
    "LoadedEpisode",
    "MultiTaskEpisodes",
    "SmallClassWarning",
    "TaskBatch",
    "TaskPool",
    "excluded_datasets",
    "parse_task_ref",
    "source_tasks",
]
