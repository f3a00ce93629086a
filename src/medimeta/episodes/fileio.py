"""Episode sets on disk: one JSON file with settings, a data fingerprint and the episodes.

Layout (``format: medimeta-episodes``, ``version: 1``)::

    {"format", "version", "dataset": {id, name, domain},
     "task": {name, identifier, target, labels: {key: name}},
     "split": [names] | null, "original_split", "split_label", "seed", "settings": {...},
     "eligible_classes": [keys], "excluded_classes": {key: [units, negative units]},
     "fingerprint": {"algorithm": "sha256", "value": hex, "covers": text},
     "num_episodes", "episodes_sha256", "created_with": {medimeta, numpy},
     "episodes": [{"index", "classes": [keys], "support": [global indices],
                   "support_labels": [...], "query": [...], "query_labels": [...]}, ...]}

``fingerprint`` hashes what the episodes depend on in the data (dataset id, task name, split
names, the split's global indices, their labels as int64, subject ids); ``episodes_sha256``
hashes the episode records, so an edited file is refused as well as changed data; since an
editor can recompute that hash, the records are also checked for what they must satisfy
(:mod:`medimeta.episodes.filecheck`: disjoint support and query, per-class counts, classes,
``num_episodes``, and against the data, indices, labels and subjects). No pickle.

An optional ``protocol`` block (last in the file, one line per key) marks a file imported from
another benchmark's own lists (:mod:`medimeta.episodes.medfm`); sampled files have none.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, overload

import numpy as np

from medimeta._version import __version__
from medimeta.catalog import TaskTarget
from medimeta.episodes.episode import Episode, EpisodeClass
from medimeta.episodes.filecheck import (
    check_against_data,
    check_episodes,
    check_header,
    check_record,
)
from medimeta.episodes.pool import TaskPool
from medimeta.episodes.settings import EpisodeSettings
from medimeta.errors import EpisodeError, FormatError
from medimeta.format.reader import DatasetFolder, locate_dataset
from medimeta.safeio import write_text


class SamplerState(Protocol):
    """What an episode file records of the sampler that drew its episodes."""

    pool: TaskPool
    seed: int
    settings: EpisodeSettings
    eligible: tuple[int, ...]
    excluded: dict[int, Any]


FORMAT = "medimeta-episodes"
VERSION = 1
FINGERPRINT_COVERS = (
    "dataset id, task name, split names, the split's global indices and their labels "
    "(int64, as stored), subject ids (per-subject shots only)"
)


def _digest(records: list[dict[str, Any]]) -> str:
    text = json.dumps(records, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _labels(values: Any, multilabel: bool, ways: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.int64)
    return arr.reshape(-1, ways) if multilabel else arr.reshape(-1)


class EpisodeSet(Sequence[Episode]):
    """A saved (or to-be-saved) list of episodes with the header that reproduces and checks it."""

    def __init__(self, header: dict[str, Any], episodes: Sequence[Episode]) -> None:
        self.header = header
        self.episodes = list(episodes)
        self.path: Path | None = None  # the file it was loaded from, if any

    @classmethod
    def from_sampler(cls, sampler: SamplerState, episodes: Sequence[Episode]) -> EpisodeSet:
        pool, spec = sampler.pool, sampler.pool.folder.spec
        header: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "dataset": {"id": spec.id, "name": spec.name, "domain": spec.domain},
            "task": {
                "name": pool.task.name,
                "identifier": pool.identifier,
                "target": pool.target.value,
                "labels": {str(k): v for k, v in pool.task.labels.items()},
            },
            "split": list(pool.split) if pool.split else None,
            "original_split": pool.original_split,
            "split_label": pool.split_label,
            "seed": sampler.seed,
            "settings": sampler.settings.to_dict(),
            "eligible_classes": list(sampler.eligible),
            "excluded_classes": {str(k): list(c) for k, c in sampler.excluded.items()},
            "fingerprint": {
                "algorithm": "sha256",
                "value": pool.fingerprint,
                "covers": FINGERPRINT_COVERS,
            },
            "num_episodes": len(episodes),
            "created_with": {"medimeta": __version__, "numpy": np.__version__},
        }
        return cls(header, episodes)

    # -- sequence protocol ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.episodes)

    @overload
    def __getitem__(self, index: int) -> Episode: ...
    @overload
    def __getitem__(self, index: slice) -> list[Episode]: ...
    def __getitem__(self, index: int | slice) -> Episode | list[Episode]:
        return self.episodes[index]

    def __iter__(self) -> Iterator[Episode]:
        return iter(self.episodes)

    def __repr__(self) -> str:
        h = self.header
        return (
            f"EpisodeSet({h['task']['identifier']!r}, split={h['split_label']!r}, "
            f"episodes={len(self)}, seed={h['seed']}, settings={h['settings']})"
        )

    @property
    def settings(self) -> EpisodeSettings:
        return EpisodeSettings.from_dict(self.header["settings"])

    @property
    def fingerprint(self) -> str:
        return str(self.header["fingerprint"]["value"])

    @property
    def task_id(self) -> str:
        return str(self.header["task"]["identifier"])

    # -- writing --------------------------------------------------------------------------------
    def to_json(self) -> str:
        records = [ep.to_record() for ep in self.episodes]
        header = {**self.header, "num_episodes": len(records), "episodes_sha256": _digest(records)}
        protocol = header.pop("protocol", None)
        head = json.dumps(header, indent=2, ensure_ascii=False)
        if protocol is not None:  # one line per key: thousands of val indices stay one line
            items = ",\n".join(
                f"    {json.dumps(k)}: {json.dumps(v, ensure_ascii=False, separators=(',', ':'))}"
                for k, v in protocol.items()
            )
            head = f'{head[:-2]},\n  "protocol": {{\n{items}\n  }}\n}}'
        # One compact line per episode: readable header, diff-able episodes, small files.
        lines = ",\n".join("    " + json.dumps(r, separators=(",", ":")) for r in records)
        return f'{head[:-2]},\n  "episodes": [\n{lines}\n  ]\n}}\n'

    def save(self, path: str | Path) -> Path:
        """Write the set atomically (temp file in the same folder, then rename)."""
        return write_text(path, self.to_json())

    # -- reading --------------------------------------------------------------------------------
    @classmethod
    def load(
        cls, path: str | Path, root: str | Path | None = None, *, folder: str | Path | None = None
    ) -> EpisodeSet:
        """Read a set; with ``root`` (data root) or ``folder`` (dataset folder), check it against
        that data and bind the episodes to it (needed to read their images)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise EpisodeError(f"{path}: no such episode file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FormatError(
                path, f"not a JSON episode file ({exc})", fix="re-create it"
            ) from None
        episodes = cls._parse(path, data)
        header = {k: v for k, v in data.items() if k not in ("episodes", "episodes_sha256")}
        out = cls(header, episodes)
        out.path = path
        if root is not None or folder is not None:
            return out.verify(root, folder=folder)
        return out

    @staticmethod
    def _parse(path: Path, data: Any) -> list[Episode]:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise FormatError(
                path,
                "not a medimeta episode file",
                key="format",
                expected=FORMAT,
                actual=data.get("format") if isinstance(data, dict) else type(data).__name__,
            )
        if data.get("version") != VERSION:
            raise FormatError(
                path,
                "unsupported episode file version",
                key="version",
                expected=VERSION,
                actual=data.get("version"),
                fix="upgrade medimeta or re-create the file",
            )
        records = data.get("episodes")
        if not isinstance(records, list):
            raise FormatError(path, "missing episode list", key="episodes", expected="list")
        if data.get("episodes_sha256") != _digest(records):
            raise EpisodeError(
                f"{path}: the episode records do not match their recorded sha256 "
                f"({data.get('episodes_sha256')}); the file was edited or damaged; re-create it "
                f"with `medimeta episodes sample`"
            )
        settings = check_header(path, data, len(records))
        try:
            ds, task = data["dataset"], data["task"]
            target = TaskTarget.parse(task["target"])
            names = {int(k): str(v) for k, v in task["labels"].items()}
            multilabel = target is TaskTarget.MULTILABEL_CLASSIFICATION
            episodes = []
            for pos, r in enumerate(records):
                check_record(path, pos, r, names, multilabel)
                keys = [int(k) for k in r["classes"]]
                episodes.append(
                    Episode(
                        index=int(r["index"]),
                        seed=int(data["seed"]),
                        dataset_id=str(ds["id"]),
                        task_name=str(task["name"]),
                        task_target=target,
                        domain=str(ds["domain"]),
                        split=str(data["split_label"]),
                        classes=tuple(EpisodeClass(i, k, names[k]) for i, k in enumerate(keys)),
                        support_indices=np.asarray(r["support"], dtype=np.int64).reshape(-1),
                        support_labels=_labels(r["support_labels"], multilabel, len(keys)),
                        query_indices=np.asarray(r["query"], dtype=np.int64).reshape(-1),
                        query_labels=_labels(r["query_labels"], multilabel, len(keys)),
                        dataset_name=str(ds.get("name", "")),
                    )
                )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, EpisodeError | FormatError):
                raise
            raise FormatError(
                path, f"malformed episode file ({exc!r})", fix="re-create it"
            ) from None
        check_episodes(path, settings, data["eligible_classes"], episodes, data.get("protocol"))
        return episodes

    def verify(
        self, root: str | Path | None = None, *, folder: str | Path | None = None
    ) -> EpisodeSet:
        """Check the set against a dataset (fingerprint, indices, labels); bound copy if it fits."""
        h = self.header
        where = (
            Path(folder) if folder is not None else locate_dataset(_need(root), h["dataset"]["id"])
        )
        data = DatasetFolder(where)
        settings = self.settings
        pool = TaskPool(
            data,
            h["task"]["name"],
            h["split"],
            original_split=bool(h["original_split"]),
            subject_column=settings.subject_column if settings.per_subject else None,
        )
        name = self.path or "episode set"
        if pool.fingerprint != self.fingerprint:
            raise EpisodeError(
                f"{name}: drawn from data with fingerprint {self.fingerprint}, but {where} gives "
                f"{pool.fingerprint} for {pool.identifier} split {pool.split_label}: the labels or "
                f"split files differ from those the episodes were drawn from. Fix: point the root "
                f"at the data the episodes were drawn from (or restore it), or draw new episodes "
                f"from this data with `medimeta episodes sample`"
            )
        check_episodes(name, settings, h["eligible_classes"], self.episodes, h.get("protocol"))
        check_against_data(name, pool, h, settings, self.episodes)
        bound = EpisodeSet(self.header, [ep.bind(where) for ep in self.episodes])
        bound.path = self.path
        return bound


def _need(root: str | Path | None) -> str | Path:
    if root is None:
        raise EpisodeError("verify() needs the data root (or folder=) the episodes refer to")
    return root
