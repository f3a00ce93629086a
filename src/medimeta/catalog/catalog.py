"""The :class:`Catalog`: look-up and filtering over the datasets and tasks of one release."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from medimeta.catalog.frozen import FrozenMap
from medimeta.catalog.model import DatasetSpec, RelatedRecord, ReleaseRecord
from medimeta.catalog.tasks import TaskSpec, TaskTarget
from medimeta.errors import FormatError, UnknownNameError


class Catalog:
    """Read-only collection of :class:`DatasetSpec` (in catalog order) with look-ups."""

    __slots__ = ("_by_id", "_datasets", "_licenses", "_related", "_release", "_source")

    def __init__(
        self,
        datasets: Iterable[DatasetSpec],
        *,
        release: ReleaseRecord,
        licenses: Mapping[str, str] | None = None,
        related: Mapping[str, RelatedRecord] | None = None,
        source: str | Path = "<memory>",
    ) -> None:
        self._datasets = tuple(datasets)
        self._release = release
        self._related: Mapping[str, RelatedRecord] = FrozenMap(related or {})
        self._licenses: Mapping[str, str] = FrozenMap(licenses or {})
        self._source = str(source)
        by_id: dict[str, DatasetSpec] = {}
        for ds in self._datasets:
            if ds.id in by_id:
                raise FormatError(source, "dataset id appears twice", key="id", actual=ds.id)
            by_id[ds.id] = ds
        self._by_id: Mapping[str, DatasetSpec] = FrozenMap(by_id)
        for ds in self._datasets:
            for key, others in (("domain", ds.domain_overlaps), ("subject", ds.subject_overlaps)):
                unknown = [o for o in others if o not in by_id]
                if unknown:
                    raise FormatError(
                        source,
                        f"dataset {ds.id!r} lists {key} overlaps that are not in the catalog",
                        key=f"{key}_overlaps",
                        expected=sorted(by_id),
                        actual=unknown,
                    )

    # -- container protocol -------------------------------------------------------------------
    def __iter__(self) -> Iterator[DatasetSpec]:
        return iter(self._datasets)

    def __len__(self) -> int:
        return len(self._datasets)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, DatasetSpec):
            return self._by_id.get(item.id) == item
        return isinstance(item, str) and item in self._by_id

    def __getitem__(self, dataset_id: str) -> DatasetSpec:
        return self.get(dataset_id)

    def __repr__(self) -> str:
        return (
            f"Catalog({len(self)} datasets, {self.num_tasks} tasks, "
            f"{len(self.domains)} domains, release {self._release.version})"
        )

    # -- facts ----------------------------------------------------------------------------------
    @property
    def release(self) -> ReleaseRecord:
        """The release this catalog describes."""
        return self._release

    def related(self, name: str) -> RelatedRecord:
        """Another published record the toolkit reads, by name (``"medmnist"``)."""
        if name not in self._related:
            raise UnknownNameError("related record", name, sorted(self._related))
        return self._related[name]

    def zenodo_record(self, name: str = "medimeta") -> str:
        """Zenodo record id of the MedIMeta release (``"medimeta"``) or of a related record."""
        if name == "medimeta":
            return str(self._release.zenodo_record)
        return str(self.related(name).zenodo_record)

    @property
    def licenses(self) -> Mapping[str, str]:
        """Short licence name -> full licence text (as written in info.yaml)."""
        return self._licenses

    @property
    def source(self) -> str:
        """Where the catalog was read from."""
        return self._source

    @property
    def ids(self) -> tuple[str, ...]:
        """Dataset ids in catalog order."""
        return tuple(self._by_id)

    @property
    def domains(self) -> tuple[str, ...]:
        """Distinct domains, sorted."""
        return tuple(sorted({ds.domain for ds in self._datasets}))

    @property
    def num_tasks(self) -> int:
        """Number of tasks over all datasets."""
        return sum(len(ds.tasks) for ds in self._datasets)

    @property
    def num_samples(self) -> int:
        """Number of images over all datasets."""
        return sum(ds.num_samples for ds in self._datasets)

    # -- look-ups -------------------------------------------------------------------------------
    def get(self, dataset_id: str) -> DatasetSpec:
        """The dataset with this id; UnknownNameError with suggestions otherwise."""
        try:
            return self._by_id[dataset_id]
        except (KeyError, TypeError):
            raise UnknownNameError("dataset", str(dataset_id), self._by_id) from None

    def task(self, dataset_id: str, task_name: str | None = None) -> TaskSpec:
        """A task by dataset id and task name, or by one ``"id:task name"`` string."""
        if task_name is None:
            return self.parse_task_id(dataset_id)
        return self.get(dataset_id).task(task_name)

    def parse_task_id(self, text: str) -> TaskSpec:
        """Resolve ``"bus:case category"`` (or ``"<dataset name>: <task>"``) to a TaskSpec."""
        head, sep, tail = text.partition(":")
        if not sep:
            if text.strip() in self._by_id:
                choices = [t.identifier for t in self._by_id[text.strip()].tasks]
            else:
                choices = [t.identifier for t in self.tasks()]
            raise UnknownNameError("task identifier ('dataset_id:task name')", text, choices)
        return self._resolve_dataset(head.strip()).task(tail.strip())

    def _resolve_dataset(self, text: str) -> DatasetSpec:
        if text in self._by_id:
            return self._by_id[text]
        # The reference loader identifies tasks as "<dataset name>: <task name>"; accept that.
        for ds in self._datasets:
            if ds.name.lower() == text.lower():
                return ds
        return self.get(text)

    # -- filters --------------------------------------------------------------------------------
    def datasets(
        self,
        *,
        domain: str | None = None,
        license: str | None = None,
        task_type: str | TaskTarget | None = None,
        noncommercial: bool | None = None,
    ) -> list[DatasetSpec]:
        """Datasets matching every given filter, in catalog order.

        ``domain`` is matched case-insensitively; ``license`` matches a short form
        (``"CC BY-SA 4.0"``) or any part of the licence text; ``task_type`` keeps datasets
        with at least one task of that type (``"binary"`` or ``"BINARY_CLASSIFICATION"``).
        """
        result = list(self._datasets)
        if domain is not None:
            wanted = self._resolve_domain(domain)
            result = [ds for ds in result if ds.domain == wanted]
        if license is not None:
            self._check_license(license)
            result = [ds for ds in result if _license_matches(ds, license)]
        if task_type is not None:
            target = TaskTarget.parse(task_type)
            result = [ds for ds in result if any(t.target is target for t in ds.tasks)]
        if noncommercial is not None:
            result = [ds for ds in result if ds.is_noncommercial == noncommercial]
        return result

    def tasks(
        self,
        *,
        dataset_id: str | None = None,
        domain: str | None = None,
        task_type: str | TaskTarget | None = None,
    ) -> list[TaskSpec]:
        """Tasks matching every given filter, in catalog then info.yaml order."""
        pool = [self.get(dataset_id)] if dataset_id is not None else list(self._datasets)
        if domain is not None:
            wanted = self._resolve_domain(domain)
            pool = [ds for ds in pool if ds.domain == wanted]
        target = TaskTarget.parse(task_type) if task_type is not None else None
        return [t for ds in pool for t in ds.tasks if target is None or t.target is target]

    def _resolve_domain(self, domain: str) -> str:
        for known in self.domains:
            if known.lower() == domain.strip().lower():
                return known
        raise UnknownNameError("domain", domain, self.domains)

    def _check_license(self, license: str) -> None:
        if not any(_license_matches(ds, license) for ds in self._datasets):
            choices = sorted({ds.license_short for ds in self._datasets})
            raise UnknownNameError("license", license, choices)


def _license_matches(ds: DatasetSpec, wanted: str) -> bool:
    text = wanted.strip().lower()
    return text == ds.license_short.lower() or text in ds.license.lower()
