"""Few-shot episodes, portable episode sets and cross-domain batches.

* :class:`EpisodeSampler`: episode ``i`` of one task and split, a pure function of
  (seed, i, task, split, settings), drawn from label arrays only.
* :class:`EpisodeSet`: episodes saved to / loaded from JSON with a data fingerprint.
* :class:`EpisodeLoader`, :class:`EpisodeDataset`, :class:`EpisodeStream`: episodes as
  tensors (one batched read each), split over DataLoader workers and ranks.
* :class:`MultiTaskEpisodes`: episodes drawn over many tasks.
* :class:`CrossDomainBatches`: interleaved single-task batches from many tasks.
* :func:`source_tasks`: leave-one-out source tasks for a target.
* :func:`import_medfm`: MedFM's own few-shot lists as episode files (imported on first use:
  it needs the MedFMC converter).
"""

from typing import TYPE_CHECKING

from medimeta._lazy import lazy_getattr
from medimeta.episodes.batches import CrossDomainBatches, TaskBatch
from medimeta.episodes.episode import Episode, EpisodeClass
from medimeta.episodes.fileio import EpisodeSet
from medimeta.episodes.loading import EpisodeDataset, EpisodeLoader, EpisodeStream, LoadedEpisode
from medimeta.episodes.mixture import MultiTaskEpisodes
from medimeta.episodes.pool import TaskPool
from medimeta.episodes.sampler import EpisodeSampler, SmallClassWarning, parse_task_ref
from medimeta.episodes.settings import EpisodeSettings
from medimeta.episodes.sources import excluded_datasets, source_tasks

if TYPE_CHECKING:
    from medimeta.episodes.medfm import ImportedList, MissingValListWarning, import_medfm

_LAZY = {
    "ImportedList": "medimeta.episodes.medfm",
    "MissingValListWarning": "medimeta.episodes.medfm",
    "import_medfm": "medimeta.episodes.medfm",
}

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
    "ImportedList",
    "LoadedEpisode",
    "MissingValListWarning",
    "MultiTaskEpisodes",
    "SmallClassWarning",
    "TaskBatch",
    "TaskPool",
    "excluded_datasets",
    "import_medfm",
    "parse_task_ref",
    "source_tasks",
]

__getattr__ = lazy_getattr(__name__, _LAZY, globals())
