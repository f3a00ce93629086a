"""Typed, immutable records for the release and its datasets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from medimeta.catalog.frozen import FrozenMap
from medimeta.catalog.infofile import info_fields
from medimeta.catalog.tasks import SPLIT_NAMES, SourceRecord, TaskSpec
from medimeta.errors import FormatError, UnknownNameError


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
        return cls(**info_fields(info, info_file=info_file))


@dataclass(frozen=True)
class RelatedRecord:
    """Another published record the toolkit reads (e.g. MedMNIST v2's Zenodo record)."""

    name: str
    zenodo_record: int
    doi: str
    url: str
    title: str


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
