"""Typed, immutable records for the release, datasets, tasks and source attributions."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from medimeta.catalog.frozen import FrozenMap
from medimeta.errors import FormatError, LabelError, UnknownNameError

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")


class TaskTarget(str, enum.Enum):
    """Kind of a task's target, named as in info.yaml (TorchCross ``TaskTarget`` member names)."""

    MULTICLASS_CLASSIFICATION = "MULTICLASS_CLASSIFICATION"
    BINARY_CLASSIFICATION = "BINARY_CLASSIFICATION"
    MULTILABEL_CLASSIFICATION = "MULTILABEL_CLASSIFICATION"
    ORDINAL_REGRESSION = "ORDINAL_REGRESSION"

    def __str__(self) -> str:
        return self.value

    @property
    def short(self) -> str:
        """Short name: ``multiclass``, ``binary``, ``multilabel`` or ``ordinal``."""
        return _SHORT_NAMES[self]

    @classmethod
    def parse(cls, value: str | TaskTarget) -> TaskTarget:
        """Accept a member, its name (``BINARY_CLASSIFICATION``) or short name (``binary``)."""
        if isinstance(value, TaskTarget):
            return value
        if isinstance(value, str):
            wanted = _normalise(value)
            for member in cls:
                if wanted in (_normalise(member.value), member.short):
                    return member
        choices = [m.value for m in cls] + [m.short for m in cls]
        raise UnknownNameError("task target", str(value), choices)


def _normalise(text: str) -> str:
    # "Multi-Label", "multi_label" and "MULTILABEL" all mean the same thing.
    return re.sub(r"[\s_\-]", "", text).lower()


_SHORT_NAMES: dict[TaskTarget, str] = {
    TaskTarget.MULTICLASS_CLASSIFICATION: "multiclass",
    TaskTarget.BINARY_CLASSIFICATION: "binary",
    TaskTarget.MULTILABEL_CLASSIFICATION: "multilabel",
    TaskTarget.ORDINAL_REGRESSION: "ordinal",
}


@dataclass(frozen=True, repr=False)
class TaskSpec:
    """One task of one dataset: its target kind and its label dictionary (int key -> name).

    ``labels`` keeps the info.yaml order. Keys are the values stored in ``task_labels/*.npy``;
    ordinal tasks may have non-contiguous keys (e.g. 0, 1, 4, 6, 8, 10), so use
    :meth:`key_to_index` to get a class position.
    """

    dataset_id: str
    name: str
    target: TaskTarget
    labels: Mapping[int, str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", TaskTarget.parse(self.target))
        labels = FrozenMap(self.labels)
        where = f"task {self.dataset_id}:{self.name}"
        if not labels:
            raise LabelError(f"{where}: labels must not be empty")
        for key, value in labels.items():
            if isinstance(key, bool) or not isinstance(key, int) or not isinstance(value, str):
                raise LabelError(f"{where}: labels must map int -> str; got {key!r}: {value!r}")
        object.__setattr__(self, "labels", labels)

    def __hash__(self) -> int:
        return hash((self.dataset_id, self.name, self.target, self.labels))

    def __repr__(self) -> str:
        return f"TaskSpec({self.identifier!r}, {self.target.short}, {self.num_classes} classes)"

    @cached_property
    def keys(self) -> tuple[int, ...]:
        """Label keys in ascending order."""
        return tuple(sorted(self.labels))

    @property
    def num_classes(self) -> int:
        """Number of classes (for multi-label tasks: number of labels)."""
        return len(self.labels)

    @property
    def is_contiguous(self) -> bool:
        """True when the keys are exactly 0..C-1."""
        return self.keys == tuple(range(self.num_classes))

    @property
    def identifier(self) -> str:
        """``"<dataset_id>:<task name>"``, the form :meth:`Catalog.parse_task_id` reads."""
        return f"{self.dataset_id}:{self.name}"

    @property
    def class_names(self) -> tuple[str, ...]:
        """Label names in ascending key order (index i names class position i)."""
        return tuple(self.labels[k] for k in self.keys)

    @cached_property
    def _positions(self) -> dict[int, int]:
        return {key: i for i, key in enumerate(self.keys)}

    def key_to_index(self, key: int) -> int:
        """Position of a stored label key among the sorted keys."""
        try:
            # int() accepts numpy integers from task_labels/*.npy; the equality rejects 4.5.
            if not isinstance(key, bool) and int(key) == key:
                return self._positions[int(key)]
        except (KeyError, TypeError, ValueError):
            pass
        raise LabelError(
            f"task {self.identifier}: label key {key!r} is not one of {list(self.keys)}"
        )

    def index_to_key(self, index: int) -> int:
        """Stored label key of class position ``index`` (inverse of :meth:`key_to_index`)."""
        try:
            if not isinstance(index, bool) and int(index) == index and 0 <= index < len(self.keys):
                return self.keys[int(index)]
        except (TypeError, ValueError):
            pass
        last = self.num_classes - 1
        raise LabelError(f"task {self.identifier}: class index {index!r} is outside 0..{last}")


@dataclass(frozen=True, repr=False)
class SourceRecord:
    """Attribution of one source data set (an item of info.yaml ``original_data``).

    ``citations`` is a tuple when the release file has a list and a read-only mapping when it
    has a mapping (keys such as ``data``/``paper``). Extra URL keys (``url2``,
    ``download_url1``, ``code_url`` ...) are kept in ``extra`` in file order.
    """

    name: str
    title: str
    url: str
    license: str
    authors: str
    paper_title: str | None = None
    paper_url: str | None = None
    citations: tuple[str, ...] | Mapping[str, str] = ()
    extra: Mapping[str, str] = field(default_factory=FrozenMap)

    def __post_init__(self) -> None:
        if isinstance(self.citations, Mapping):
            object.__setattr__(self, "citations", FrozenMap(self.citations))
        else:
            object.__setattr__(self, "citations", tuple(self.citations))
        object.__setattr__(self, "extra", FrozenMap(self.extra))

    def __hash__(self) -> int:
        return hash((self.name, self.title, self.url, self.citations, self.extra))

    def __repr__(self) -> str:
        return f"SourceRecord({self.name!r}, license={self.license!r})"

    @property
    def citation_texts(self) -> tuple[str, ...]:
        """All citation strings, whether stored as a list or a mapping."""
        if isinstance(self.citations, Mapping):
            return tuple(self.citations.values())
        return tuple(self.citations)

    def to_info_dict(self) -> dict[str, Any]:
        """The ``original_data`` item, keys in release order (extras follow ``url``)."""
        out: dict[str, Any] = {"name": self.name, "title": self.title, "url": self.url}
        out.update(self.extra)
        out["license"] = self.license
        out["authors"] = self.authors
        if self.paper_title is not None:
            out["paper_title"] = self.paper_title
        if self.paper_url is not None:
            out["paper_url"] = self.paper_url
        if isinstance(self.citations, Mapping):
            out["citations"] = dict(self.citations)
        else:
            out["citations"] = list(self.citations)
        return out


@dataclass(frozen=True, repr=False)
class DatasetSpec:
    """Everything the release's info.yaml says about one dataset, typed and immutable."""

    id: str
    name: str
    summary: str
    domain: str
    input_size: tuple[int, int, int]
    num_samples: int
    splits: Mapping[str, int]
    original_splits: Mapping[str, int]
    tasks: tuple[TaskSpec, ...]
    license: str = ""
    domain_overlaps: tuple[str, ...] = ()
    subject_overlaps: tuple[str, ...] = ()
    project_website: str = ""
    download_url: str = ""
    doi: str = ""
    sources: tuple[SourceRecord, ...] = ()
    info_file: str = "info.yaml"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "input_size", tuple(self.input_size))
        set_(self, "tasks", tuple(self.tasks))
        set_(self, "domain_overlaps", tuple(self.domain_overlaps))
        set_(self, "subject_overlaps", tuple(self.subject_overlaps))
        set_(self, "sources", tuple(self.sources))
        for attr in ("splits", "original_splits"):
            counts: Mapping[str, int] = getattr(self, attr)
            unknown = sorted(set(counts) - set(SPLIT_NAMES))
            if unknown:
                raise FormatError(
                    self.info_file,
                    f"unknown split name in {attr}",
                    key=attr,
                    expected=list(SPLIT_NAMES),
                    actual=unknown,
                )
            set_(self, attr, FrozenMap((s, int(counts.get(s, 0))) for s in SPLIT_NAMES))
        if len(self.input_size) != 3:
            raise FormatError(
                self.info_file,
                "input_size must be [C, H, W]",
                key="input_size",
                expected="3 integers",
                actual=list(self.input_size),
            )
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise FormatError(self.info_file, "task names repeat", key="tasks", actual=names)
        for task in self.tasks:
            if task.dataset_id != self.id:
                raise FormatError(
                    self.info_file,
                    f"task {task.name!r} belongs to another dataset",
                    key="tasks",
                    expected=self.id,
                    actual=task.dataset_id,
                )

    def __hash__(self) -> int:
        return hash((self.id, self.name, self.tasks, self.num_samples, self.info_file))

    def __repr__(self) -> str:
        return (
            f"DatasetSpec({self.id!r}, name={self.name!r}, domain={self.domain!r}, "
            f"samples={self.num_samples}, tasks={len(self.tasks)})"
        )

    @property
    def num_channels(self) -> int:
        """Image channels: 1 (grey) or 3 (RGB)."""
        return self.input_size[0]

    @property
    def image_size(self) -> tuple[int, int]:
        """Image height and width."""
        return (self.input_size[1], self.input_size[2])

    @property
    def is_noncommercial(self) -> bool:
        """True when the MedIMeta licence of this dataset forbids commercial use."""
        return bool(re.search(r"\bNC\b|NonCommercial", self.license))

    @property
    def license_short(self) -> str:
        """Licence abbreviation, e.g. ``CC BY-SA 4.0``; the full text if none is found."""
        found = re.search(r"\b(CC BY[A-Z\-]* \d\.\d)\b", self.license)
        return found.group(1) if found else self.license

    @property
    def task_names(self) -> tuple[str, ...]:
        """Task names in info.yaml order."""
        return tuple(t.name for t in self.tasks)

    def task(self, name: str) -> TaskSpec:
        """The task called ``name`` (exact string); suggests close names otherwise."""
        for task in self.tasks:
            if task.name == name:
                return task
        raise UnknownNameError("task", name, self.task_names, where=f"dataset {self.id!r}")

    def to_info_dict(self) -> dict[str, Any]:
        """The release-style info.yaml content (plain dicts/lists, release key order)."""
        return {
            "id": self.id,
            "name": self.name,
            "summary": self.summary,
            "domain": self.domain,
            "tasks": [
                {"task_name": t.name, "task_target": t.target.value, "labels": dict(t.labels)}
                for t in self.tasks
            ],
            "input_size": list(self.input_size),
            "total_num_samples": self.num_samples,
            "splits_num_samples": dict(self.splits),
            "original_splits_num_samples": dict(self.original_splits),
            "domain_overlaps": list(self.domain_overlaps),
            "subject_overlaps": list(self.subject_overlaps),
            "license": self.license,
            "project_website": self.project_website,
            "download_url": self.download_url,
            "DOI": self.doi,
            "original_data": [s.to_info_dict() for s in self.sources],
        }

    @classmethod
    def from_info_dict(
        cls, info: Mapping[str, Any], *, info_file: str = "info.yaml"
    ) -> DatasetSpec:
        """Parse and validate a release-style info.yaml mapping (FormatError on problems)."""
        from medimeta.catalog.infofile import parse_info

        return parse_info(info, info_file=info_file)


@dataclass(frozen=True)
class ReleaseRecord:
    """The published MedIMeta release (Zenodo record) the catalog describes."""

    zenodo_record: int
    doi: str
    version: str
    url: str
    project_website: str
    paper_title: str
    authors: tuple[str, ...]
    info_repository: str
    info_commit: str

    @property
    def doi_url(self) -> str:
        """Resolvable DOI link."""
        return f"https://doi.org/{self.doi}"
