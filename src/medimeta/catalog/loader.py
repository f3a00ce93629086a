"""Read ``datasets.yaml`` (schema ``medimeta-catalog/1``) into a :class:`Catalog`."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from medimeta.catalog.catalog import Catalog
from medimeta.catalog.checks import (
    check_type,
    child,
    require,
    require_count,
    string_list,
    string_map,
)
from medimeta.catalog.infofile import check_sums
from medimeta.catalog.model import DatasetSpec, RelatedRecord, ReleaseRecord
from medimeta.catalog.tasks import SPLIT_NAMES, SourceRecord, TaskSpec, TaskTarget
from medimeta.errors import FormatError, UnknownNameError

SCHEMA = "medimeta-catalog/1"
PACKAGED_NAME = "datasets.yaml"

# libyaml's loader is the same safe loader, only faster; fall back when it is not compiled in.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read a catalog file; ``None`` reads the one shipped with the package."""
    if path is None:
        text = resources.files("medimeta.catalog").joinpath(PACKAGED_NAME).read_text("utf-8")
        source: str | Path = f"medimeta/catalog/{PACKAGED_NAME}"
    else:
        text = Path(path).read_text(encoding="utf-8")
        source = path
    try:
        data = yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        raise FormatError(source, f"not valid YAML: {exc}") from exc
    return parse_catalog(data, source=source)


@functools.cache
def get_catalog() -> Catalog:
    """The packaged catalog, read once per process."""
    return load_catalog()


def get_dataset(dataset_id: str) -> DatasetSpec:
    """Shortcut for ``get_catalog().get(dataset_id)``."""
    return get_catalog().get(dataset_id)


def get_task(dataset_id: str, task_name: str | None = None) -> TaskSpec:
    """Shortcut for ``get_catalog().task(...)``; accepts ``"id:task name"`` alone."""
    return get_catalog().task(dataset_id, task_name)


def task_from_identifier(text: str) -> TaskSpec:
    """Shortcut for ``get_catalog().parse_task_id(text)``."""
    return get_catalog().parse_task_id(text)


def list_datasets(**filters: Any) -> list[DatasetSpec]:
    """Shortcut for ``get_catalog().datasets(**filters)``."""
    return get_catalog().datasets(**filters)


def list_tasks(**filters: Any) -> list[TaskSpec]:
    """Shortcut for ``get_catalog().tasks(**filters)``."""
    return get_catalog().tasks(**filters)


def parse_catalog(data: Any, *, source: str | Path) -> Catalog:
    """Build a Catalog from the parsed YAML document; FormatError names the bad key."""
    check_type(data, Mapping, path=source, key="<document>")
    schema = require(data, "schema", str, path=source)
    if schema != SCHEMA:
        raise FormatError(
            source, "unsupported catalog schema", key="schema", expected=SCHEMA, actual=schema
        )
    release = _parse_release(require(data, "release", Mapping, path=source), source)
    related = {
        str(name): _parse_related(str(name), node, source)
        for name, node in require(data, "related", Mapping, path=source, default={}).items()
    }
    licenses = string_map(
        require(data, "licenses", Mapping, path=source), path=source, key="licenses"
    )
    nodes = require(data, "datasets", list, path=source)
    datasets = [
        _parse_dataset(node, release, licenses, path=source, key=f"datasets[{i}]")
        for i, node in enumerate(nodes)
    ]
    return Catalog(datasets, release=release, licenses=licenses, related=related, source=source)


def _parse_release(node: Mapping[str, Any], path: str | Path) -> ReleaseRecord:
    text = {
        k: require(node, k, str, path=path, where="release")
        for k in ("doi", "version", "url", "project_website", "paper_title")
    }
    return ReleaseRecord(
        zenodo_record=require_count(node, "zenodo_record", path=path, where="release"),
        authors=string_list(
            require(node, "authors", list, path=path, where="release"),
            path=path,
            key="release.authors",
        ),
        info_repository=require(node, "info_repository", str, path=path, where="release"),
        info_commit=str(require(node, "info_commit", (str, int), path=path, where="release")),
        **text,
    )


def _parse_related(name: str, node: Any, path: str | Path) -> RelatedRecord:
    where = f"related.{name}"
    check_type(node, Mapping, path=path, key=where)
    text = {k: require(node, k, str, path=path, where=where) for k in ("doi", "url", "title")}
    return RelatedRecord(
        name=name,
        zenodo_record=require_count(node, "zenodo_record", path=path, where=where),
        **text,
    )


def _parse_dataset(
    node: Any,
    release: ReleaseRecord,
    licenses: Mapping[str, str],
    *,
    path: str | Path,
    key: str,
) -> DatasetSpec:
    check_type(node, Mapping, path=path, key=key)
    dataset_id = require(node, "id", str, path=path, where=key)
    shape = require(node, "image_shape", Mapping, path=path, where=key)
    shape_key = child(key, "image_shape")
    samples = require(node, "samples", Mapping, path=path, where=key)
    samples_key = child(key, "samples")
    total = require_count(samples, "total", path=path, where=samples_key)
    splits = _counts(samples, "splits", path=path, where=samples_key)
    original = _counts(samples, "original_splits", path=path, where=samples_key)
    check_sums(total, splits, original, path=str(path))
    overlaps = require(node, "overlaps", Mapping, path=path, where=key)
    overlaps_key = child(key, "overlaps")
    license_name = require(node, "license", str, path=path, where=key)
    if license_name not in licenses:
        raise UnknownNameError("licence", license_name, licenses, where=f"{path} {key}")
    links = require(node, "links", Mapping, path=path, where=key, default={})
    links_key = child(key, "links")
    return DatasetSpec(
        id=dataset_id,
        name=require(node, "name", str, path=path, where=key),
        summary=require(node, "summary", str, path=path, where=key),
        domain=require(node, "domain", str, path=path, where=key),
        input_size=(
            require_count(shape, "channels", path=path, where=shape_key),
            require_count(shape, "height", path=path, where=shape_key),
            require_count(shape, "width", path=path, where=shape_key),
        ),
        num_samples=total,
        splits=splits,
        original_splits=original,
        tasks=tuple(
            _parse_task(t, dataset_id, path=path, key=child(child(key, "tasks"), i))
            for i, t in enumerate(require(node, "tasks", list, path=path, where=key))
        ),
        license=licenses[license_name],
        domain_overlaps=string_list(
            require(overlaps, "domain", list, path=path, where=overlaps_key),
            path=path,
            key=child(overlaps_key, "domain"),
        ),
        subject_overlaps=string_list(
            require(overlaps, "subject", list, path=path, where=overlaps_key),
            path=path,
            key=child(overlaps_key, "subject"),
        ),
        project_website=require(
            links,
            "project_website",
            str,
            path=path,
            where=links_key,
            default=release.project_website,
        ),
        download_url=require(
            links, "download_url", str, path=path, where=links_key, default=release.url
        ),
        doi=require(links, "doi", str, path=path, where=links_key, default=release.doi),
        sources=tuple(
            _parse_source(s, path=path, key=child(child(key, "sources"), i))
            for i, s in enumerate(require(node, "sources", list, path=path, where=key))
        ),
        info_file=require(node, "info_file", str, path=path, where=key),
    )


def _counts(node: Mapping[str, Any], key: str, *, path: str | Path, where: str) -> dict[str, int]:
    counts = require(node, key, Mapping, path=path, where=where)
    return {s: require_count(counts, s, path=path, where=child(where, key)) for s in SPLIT_NAMES}


def _parse_task(node: Any, dataset_id: str, *, path: str | Path, key: str) -> TaskSpec:
    check_type(node, Mapping, path=path, key=key)
    labels = require(node, "labels", Mapping, path=path, where=key)
    for label_key, value in labels.items():
        check_type(label_key, int, path=path, key=f"{child(key, 'labels')} (a key)")
        check_type(value, str, path=path, key=f"{child(key, 'labels')}[{label_key}]")
    return TaskSpec(
        dataset_id=dataset_id,
        name=require(node, "name", str, path=path, where=key),
        target=TaskTarget.parse(require(node, "type", str, path=path, where=key)),
        labels=labels,
    )


def _parse_source(node: Any, *, path: str | Path, key: str) -> SourceRecord:
    check_type(node, Mapping, path=path, key=key)
    text = {
        k: require(node, k, str, path=path, where=key)
        for k in ("name", "title", "url", "license", "authors")
    }
    paper = require(node, "paper", Mapping, path=path, where=key, default={})
    paper_key = child(key, "paper")
    citations_node = require(node, "citations", (list, Mapping), path=path, where=key)
    citations: tuple[str, ...] | dict[str, str]
    if isinstance(citations_node, list):
        citations = string_list(citations_node, path=path, key=child(key, "citations"))
    else:
        citations = string_map(citations_node, path=path, key=child(key, "citations"))
    more = require(node, "more_urls", Mapping, path=path, where=key, default={})
    return SourceRecord(
        **text,
        paper_title=require(paper, "title", str, path=path, where=paper_key, default=None),
        paper_url=require(paper, "url", str, path=path, where=paper_key, default=None),
        citations=citations,
        extra=string_map(more, path=path, key=child(key, "more_urls")),
    )
