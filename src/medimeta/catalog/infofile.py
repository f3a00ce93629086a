"""Parse and validate a release-style ``info.yaml`` mapping into the fields of a ``DatasetSpec``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medimeta.catalog.checks import (
    check_type,
    child,
    plain_name,
    require,
    require_count,
    string_list,
    string_map,
)
from medimeta.catalog.tasks import SPLIT_NAMES, SourceRecord, TaskSpec, TaskTarget
from medimeta.errors import FormatError

# Keys of an original_data item with a fixed meaning; any other string key is kept as extra.
_SOURCE_KEYS = ("name", "title", "url", "license", "authors", "paper_title", "paper_url")
_CHANNELS = (1, 3)


def info_fields(info: Any, *, info_file: str = "info.yaml") -> dict[str, Any]:
    """The DatasetSpec fields of a parsed info.yaml; raise FormatError naming the bad key."""
    path = info_file
    if not isinstance(info, Mapping):
        raise FormatError(
            path,
            "the file must hold a YAML mapping at top level",
            expected="a mapping",
            actual=type(info).__name__,
        )
    dataset_id = require(info, "id", str, path=path)
    if not dataset_id.strip():
        raise FormatError(
            path, "id must not be empty", key="id", expected="a dataset id", actual=""
        )
    plain_name(dataset_id, path=path, key="id", kind="id")
    tasks_node = require(info, "tasks", list, path=path)
    if not tasks_node:
        raise FormatError(
            path, "tasks must not be empty", key="tasks", expected="1+ tasks", actual=[]
        )
    tasks = tuple(
        _parse_task(node, dataset_id, path=path, key=f"tasks[{i}]")
        for i, node in enumerate(tasks_node)
    )
    names = [t.name for t in tasks]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise FormatError(
            path, "task names must be unique", key="tasks", expected="unique names", actual=repeated
        )
    total = require_count(info, "total_num_samples", path=path)
    splits = _parse_counts(info, "splits_num_samples", path=path, required=True)
    original = _parse_counts(info, "original_splits_num_samples", path=path, required=False)
    check_sums(total, splits, original, path=path)
    sources_node = require(info, "original_data", list, path=path, default=[])
    return dict(
        id=dataset_id,
        name=require(info, "name", str, path=path),
        summary=require(info, "summary", str, path=path, default=""),
        domain=require(info, "domain", str, path=path),
        input_size=_parse_input_size(info, path=path),
        num_samples=total,
        splits=splits or dict.fromkeys(SPLIT_NAMES, 0),
        original_splits=original or dict.fromkeys(SPLIT_NAMES, 0),
        tasks=tasks,
        license=require(info, "license", str, path=path, default=""),
        domain_overlaps=_optional_list(info, "domain_overlaps", path=path),
        subject_overlaps=_optional_list(info, "subject_overlaps", path=path),
        project_website=require(info, "project_website", str, path=path, default=""),
        download_url=require(info, "download_url", str, path=path, default=""),
        doi=require(info, "DOI", str, path=path, default=""),
        sources=tuple(
            _parse_source(node, path=path, key=f"original_data[{i}]")
            for i, node in enumerate(sources_node)
        ),
        info_file=info_file,
    )


def _parse_task(node: Any, dataset_id: str, *, path: str, key: str) -> TaskSpec:
    check_type(node, Mapping, path=path, key=key)
    name = plain_name(
        require(node, "task_name", str, path=path, where=key),
        path=path,
        key=child(key, "task_name"),
        kind="task_name",
    )
    target_text = require(node, "task_target", str, path=path, where=key)
    names = [t.value for t in TaskTarget]
    if target_text not in names:
        raise FormatError(
            path,
            f"unsupported task_target for task {name!r}",
            key=child(key, "task_target"),
            expected=names,
            actual=target_text,
            fix="use one of the TaskTarget names exactly as written",
        )
    labels_key = child(key, "labels")
    labels_node = require(node, "labels", Mapping, path=path, where=key)
    if not labels_node:
        raise FormatError(
            path, f"task {name!r} has no labels", key=labels_key, expected="1+ labels", actual={}
        )
    labels: dict[int, str] = {}
    for label_key, value in labels_node.items():
        if isinstance(label_key, bool) or not isinstance(label_key, int):
            raise FormatError(
                path,
                f"label keys of task {name!r} must be integers",
                key=labels_key,
                expected="an integer key",
                actual=label_key,
                fix="write keys unquoted, e.g. `0: normal`",
            )
        labels[label_key] = check_type(value, str, path=path, key=f"{labels_key}[{label_key}]")
    return TaskSpec(dataset_id, name, TaskTarget[target_text], labels)


def _parse_input_size(info: Mapping[str, Any], *, path: str) -> tuple[int, int, int]:
    size = require(info, "input_size", list, path=path)
    ok = len(size) == 3 and all(isinstance(v, int) and not isinstance(v, bool) for v in size)
    if not ok or size[0] not in _CHANNELS or size[1] <= 0 or size[2] <= 0:
        raise FormatError(
            path,
            "input_size must be [C, H, W] with C 1 or 3 and H, W positive",
            key="input_size",
            expected="[1|3, H, W]",
            actual=size,
        )
    return (size[0], size[1], size[2])


def _parse_counts(
    info: Mapping[str, Any], key: str, *, path: str, required: bool
) -> dict[str, int] | None:
    if required:
        node = require(info, key, Mapping, path=path)
    else:
        node = require(info, key, Mapping, path=path, default=None)
    if node is None:
        return None
    unknown = [k for k in node if k not in SPLIT_NAMES]
    if unknown:
        raise FormatError(
            path,
            f"{key} has unknown split names",
            key=key,
            expected=list(SPLIT_NAMES),
            actual=unknown,
        )
    # A split without an entry has no file on disk, which the format writes as 0.
    return {s: require_count(node, s, path=path, where=key, default=0) for s in SPLIT_NAMES}


def check_sums(
    total: int, splits: dict[str, int] | None, original: dict[str, int] | None, *, path: str
) -> None:
    for key, counts in (("splits_num_samples", splits), ("original_splits_num_samples", original)):
        if counts is not None and sum(counts.values()) != total:
            raise FormatError(
                path,
                f"the {key} counts do not add up to total_num_samples",
                key=key,
                expected=total,
                actual=sum(counts.values()),
                fix="make train + val + test equal total_num_samples",
            )


def _optional_list(info: Mapping[str, Any], key: str, *, path: str) -> tuple[str, ...]:
    if key not in info or info[key] is None:
        return ()
    return string_list(info[key], path=path, key=key)


def _parse_source(node: Any, *, path: str, key: str) -> SourceRecord:
    check_type(node, Mapping, path=path, key=key)
    fields = {k: require(node, k, str, path=path, where=key) for k in _SOURCE_KEYS[:5]}
    citations_node = require(node, "citations", (list, Mapping), path=path, where=key)
    citations_key = child(key, "citations")
    citations: tuple[str, ...] | dict[str, str]
    if isinstance(citations_node, list):
        citations = string_list(citations_node, path=path, key=citations_key)
    else:
        citations = string_map(citations_node, path=path, key=citations_key)
    extra = {
        k: check_type(v, str, path=path, key=child(key, str(k)))
        for k, v in node.items()
        if k not in _SOURCE_KEYS and k != "citations"
    }
    return SourceRecord(
        **fields,
        paper_title=require(node, "paper_title", str, path=path, where=key, default=None),
        paper_url=require(node, "paper_url", str, path=path, where=key, default=None),
        citations=citations,
        extra=extra,
    )
