"""What an episode file must satisfy beyond its checksum (which a careful editor can recompute).

On load (:func:`check_header`, :func:`check_record`, :func:`check_episodes`):

* ``num_episodes`` equals the number of records; episode indices are distinct integers >= 0;
* settings parse; ``eligible_classes`` are keys of the task's labels;
* every record has integer indices, labels of the right shape, and classes that are distinct
  eligible keys: binary ``[0, 1]``, otherwise ``ways`` of them (all eligible when unset);
* support and query are not empty, list a sample once each and share no sample;
* labels lie in ``0 .. ways-1`` (multi-label: 0/1 rows of ``ways`` values) and the per-class
  counts follow the settings: exactly ``shots`` support and ``queries`` query samples per class
  (per-subject shots: at least that many images), multi-label at least that many positives and
  negatives per label.

Against the data (:func:`check_against_data`, after the fingerprint matched): the task's
target and label names, the eligible classes recomputed from the labels, every index inside
the split, every label equal to the data's, and for per-subject shots, no subject in both
support and query and exactly ``shots`` / ``queries`` subjects per class; for MedFM protocol
files the val indices share with the support exactly the ``val_overlap`` recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medimeta.catalog import TaskTarget
from medimeta.episodes.episode import Episode
from medimeta.episodes.pool import TaskPool
from medimeta.episodes.settings import EpisodeSettings
from medimeta.errors import EpisodeError, FormatError
from medimeta.format import layout

_RECORD_KEYS = ("index", "classes", "support", "support_labels", "query", "query_labels")
_FIX = (
    "re-create the file with `medimeta episodes sample` or `medimeta episodes import-medfm` "
    "(it was edited or damaged)"
)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bad(path: object, ep: Episode | int, problem: str, expected: str) -> EpisodeError:
    number = ep.index if isinstance(ep, Episode) else ep
    return EpisodeError(f"{path}: episode {number}: {problem}; expected {expected}; fix: {_FIX}")


def check_header(path: Path, data: Mapping[str, Any], count: int) -> EpisodeSettings:
    """The header's settings; FormatError/EpisodeError naming the file for a bad header."""
    declared = data.get("num_episodes")
    if not _is_int(declared) or declared != count:
        raise FormatError(
            path,
            "num_episodes does not match the episode records",
            key="num_episodes",
            expected=count,
            actual=declared,
            fix=_FIX,
        )
    if not _is_int(data.get("seed")):
        raise FormatError(path, "seed is not an integer", key="seed", actual=data.get("seed"))
    split = data.get("split")
    if split is not None and (
        not isinstance(split, list) or not split or not set(split) <= set(layout.SPLIT_NAMES)
    ):
        raise FormatError(
            path,
            "split names no known split",
            key="split",
            expected=f"null or a list of {list(layout.SPLIT_NAMES)}",
            actual=split,
            fix=_FIX,
        )
    try:
        settings = EpisodeSettings.from_dict(dict(data["settings"]))
        labels = {int(k) for k in data["task"]["labels"]}
    except (EpisodeError, KeyError, TypeError, ValueError) as exc:
        raise FormatError(path, f"bad header ({exc})", key="settings / task", fix=_FIX) from None
    eligible = data.get("eligible_classes")
    if not isinstance(eligible, list) or not all(_is_int(k) and k in labels for k in eligible):
        raise FormatError(
            path,
            "eligible_classes are not keys of the task's labels",
            key="eligible_classes",
            expected=sorted(labels),
            actual=eligible,
            fix=_FIX,
        )
    if "protocol" in data:
        check_protocol(path, data["protocol"], count)
    return settings


PROTOCOLS = ("medfm",)
_PROTOCOL_INTS = ("shots", "experiment", "duplicates")


def check_protocol(path: Path, block: object, count: int) -> None:
    """FormatError unless ``block`` is a protocol block (module docstring) of a one-episode
    file: a known name, integer counts, the lists with their sha256 and the val indices."""
    problem = None
    if not isinstance(block, dict) or block.get("name") not in PROTOCOLS:
        problem = f"protocol name is not one of {list(PROTOCOLS)}"
    elif not all(_is_int(block.get(k)) and block[k] >= 0 for k in _PROTOCOL_INTS):
        problem = f"protocol {list(_PROTOCOL_INTS)} are not integers >= 0"
    elif not all(
        isinstance(block.get(k, []), list) and all(_is_int(v) and v >= 0 for v in block.get(k, []))
        for k in ("val_indices", "val_overlap")
    ) or not isinstance(block.get("val_indices"), list):
        problem = "protocol val_indices / val_overlap are not lists of integers >= 0"
    elif not isinstance(block.get("lists"), dict) or not all(
        isinstance(block["lists"].get(k), dict) and isinstance(block["lists"][k].get("sha256"), str)
        for k in ("train", "test")
    ):
        problem = "protocol lists lack the train and test lists with their sha256"
    elif count != 1:
        problem = f"a protocol file holds one episode, this one {count}"
    if problem is not None:
        raise FormatError(path, problem, key="protocol", fix=_FIX)


def _int_list(path: Path, pos: int, key: str, value: object, depth: int = 1) -> None:
    rows = value if isinstance(value, list) else None
    if depth == 2 and rows is not None:
        ok = all(isinstance(r, list) and all(_is_int(v) for v in r) for r in rows)
    else:
        ok = rows is not None and all(_is_int(v) for v in rows)
    if not ok:
        shape = "a list of lists of integers" if depth == 2 else "a list of integers"
        raise FormatError(
            path,
            f"episode record {pos}: {key} is not {shape}",
            key=f"episodes[{pos}].{key}",
            expected=shape,
            actual=repr(value)[:80],
            fix=_FIX,
        )


def check_record(
    path: Path, pos: int, record: object, labels: Mapping[int, str], multilabel: bool
) -> None:
    """FormatError unless record ``pos`` has every field with integer values of the right
    nesting and classes that are keys of the task (so an Episode can be built from it)."""
    if not isinstance(record, dict) or any(k not in record for k in _RECORD_KEYS):
        raise FormatError(
            path,
            f"episode record {pos} lacks fields",
            key=f"episodes[{pos}]",
            expected=list(_RECORD_KEYS),
            actual=sorted(record) if isinstance(record, dict) else type(record).__name__,
            fix=_FIX,
        )
    if not _is_int(record["index"]) or record["index"] < 0:
        raise _bad(path, pos, f"index {record['index']!r} is not an integer >= 0", "0, 1, ...")
    for key in ("classes", "support", "query"):
        _int_list(path, pos, key, record[key])
    for key in ("support_labels", "query_labels"):
        _int_list(path, pos, key, record[key], 2 if multilabel else 1)
    unknown = [k for k in record["classes"] if k not in labels]
    if unknown:
        raise _bad(path, record["index"], f"classes {unknown} are not keys of the task", "keys")


def _check_classes(
    path: object, ep: Episode, settings: EpisodeSettings, eligible: Sequence[int]
) -> None:
    keys = ep.class_keys
    if len(set(keys)) != len(keys) or not set(keys) <= set(eligible):
        raise _bad(path, ep, f"classes {list(keys)}", f"distinct keys among {list(eligible)}")
    if ep.task_target is TaskTarget.BINARY_CLASSIFICATION:
        if keys != (0, 1):
            raise _bad(path, ep, f"classes {list(keys)} for a binary task", "[0, 1]")
        return
    ways = settings.ways or len(eligible)
    if len(keys) != ways:
        raise _bad(path, ep, f"{len(keys)} classes {list(keys)}", f"{ways} (ways)")


def _check_rows(path: object, ep: Episode, repeats: int | None = None) -> None:
    """``repeats`` (protocol files): how many support rows repeat an earlier one."""
    for name, rows in (("support", ep.support_indices), ("query", ep.query_indices)):
        if not rows.size:
            raise _bad(path, ep, f"{name} is empty", f"at least one {name} sample")
        if rows.min() < 0:
            raise _bad(path, ep, f"{name} holds a negative sample index", "indices >= 0")
        uniq, counts = np.unique(rows, return_counts=True)
        if name == "support" and repeats is not None:
            if rows.size - uniq.size != repeats:
                found = f"support repeats {rows.size - uniq.size} rows"
                raise _bad(path, ep, found, f"{repeats} (protocol duplicates)")
        elif (counts > 1).any():
            twice = uniq[counts > 1].tolist()[:5]
            raise _bad(path, ep, f"{name} lists samples {twice} more than once", "each once")
    shared = np.intersect1d(ep.support_indices, ep.query_indices)
    if shared.size:
        raise _bad(
            path,
            ep,
            f"samples {shared.tolist()[:5]} are in both support and query",
            "disjoint support and query",
        )


def _check_counts(
    path: object, ep: Episode, settings: EpisodeSettings, counts_too: bool = True
) -> None:
    """Label shapes and values; with ``counts_too`` also the per-class counts."""
    ways = ep.n_way
    multilabel = ep.task_target is TaskTarget.MULTILABEL_CLASSIFICATION
    sets = (
        ("support", ep.support_indices, ep.support_labels, settings.shots),
        ("query", ep.query_indices, ep.query_labels, settings.queries),
    )
    for name, rows, labels, need in sets:
        shape = (rows.size, ways) if multilabel else (rows.size,)
        if labels.shape != shape:
            raise _bad(path, ep, f"{name} labels of shape {labels.shape}", f"shape {shape}")
        if labels.size and (labels.min() < 0 or labels.max() > (1 if multilabel else ways - 1)):
            allowed = "0/1" if multilabel else f"0..{ways - 1}"
            raise _bad(path, ep, f"{name} labels outside {allowed}", f"values in {allowed}")
        if not counts_too:
            continue
        if multilabel:
            positives = labels.sum(axis=0)
            counts = np.minimum(positives, rows.size - positives)
            what = f"{need} positives and {need} negatives per label"
        else:
            counts = np.bincount(labels, minlength=ways)
            what = f"{need} per class"
        exact = not multilabel and not settings.per_subject
        wrong = counts != need if exact else counts < need
        if wrong.any():
            c = int(np.flatnonzero(wrong)[0])
            found = f"{name} has {int(counts[c])} for class {ep.class_keys[c]}"
            raise _bad(path, ep, found, ("exactly " if exact else "at least ") + what)


def check_episodes(
    path: object,
    settings: EpisodeSettings,
    eligible: Sequence[int],
    episodes: Sequence[Episode],
    protocol: Mapping[str, Any] | None = None,
) -> None:
    """Every episode is consistent with the header (module docstring); EpisodeError names the
    file, the episode and the problem. ``protocol``: the header's protocol block, if any."""
    seen: set[int] = set()
    repeats = None if protocol is None else int(protocol["duplicates"])
    for ep in episodes:
        if ep.index in seen:
            raise _bad(path, ep, "the episode index appears twice", "distinct indices")
        seen.add(ep.index)
        _check_classes(path, ep, settings, eligible)
        _check_rows(path, ep, repeats)
        _check_counts(path, ep, settings, counts_too=protocol is None)


def expected_eligible(pool: TaskPool, settings: EpisodeSettings) -> list[int]:
    """The classes a sampler with ``settings`` finds eligible in ``pool`` (as the sampler)."""
    multilabel = pool.target is TaskTarget.MULTILABEL_CLASSIFICATION
    need = settings.min_units
    counts = pool.unit_counts()
    return [
        k
        for k in pool.class_keys
        if not (counts[k][0] < need or (multilabel and counts[k][1] < need))
    ]


def check_against_data(
    name: object,
    pool: TaskPool,
    header: Mapping[str, Any],
    settings: EpisodeSettings,
    episodes: Sequence[Episode],
) -> None:
    """The file fits the data beyond the fingerprint (module docstring)."""
    task = header["task"]
    labels = {int(k): str(v) for k, v in task["labels"].items()}
    if TaskTarget.parse(task["target"]) is not pool.target or labels != dict(pool.task.labels):
        raise EpisodeError(
            f"{name}: task {pool.identifier!r} is {pool.target.short} with labels "
            f"{dict(pool.task.labels)} in the data, the file says {task['target']} with "
            f"{labels}; fix: {_FIX}"
        )
    protocol = header.get("protocol")
    eligible = list(pool.class_keys) if protocol else expected_eligible(pool, settings)
    if list(header["eligible_classes"]) != eligible:
        rule = "every class" if protocol else f"the classes with >= {settings.min_units} units"
        raise EpisodeError(
            f"{name}: eligible_classes {header['eligible_classes']} differ from {eligible}, "
            f"{rule} in the data; fix: {_FIX}"
        )
    for ep in episodes:
        if protocol:
            _check_protocol_rows(name, pool, ep, protocol)
        for part, rows, stored in (
            ("support", ep.support_indices, ep.support_labels),
            ("query", ep.query_indices, ep.query_labels),
        ):
            _check_part_labels(name, pool, ep, part, rows, stored)
        if pool.subjects is not None:
            _check_subjects(name, pool, ep, settings)


def _check_part_labels(
    name: object, pool: TaskPool, ep: Episode, part: str, rows: np.ndarray, stored: np.ndarray
) -> None:
    outside = rows[~np.isin(rows, pool.indices)]
    if outside.size:
        raise _bad(
            name,
            ep,
            f"{part} uses samples {outside.tolist()[:5]} outside split {pool.split_label}",
            f"indices of split {pool.split_label}",
        )
    if not rows.size:
        return
    data = pool.all_labels[rows]
    if ep.task_target is TaskTarget.MULTILABEL_CLASSIFICATION:
        expected = data[:, [pool.task.key_to_index(k) for k in ep.class_keys]]
    else:
        lookup = {k: i for i, k in enumerate(ep.class_keys)}
        expected = np.array([lookup.get(int(v), -1) for v in data], dtype=np.int64)
    differ = np.flatnonzero((expected != stored).reshape(len(rows), -1).any(axis=1))
    if differ.size:
        i = int(differ[0])
        raise _bad(
            name,
            ep,
            f"{part}[{i}] (sample {int(rows[i])}) is recorded with label "
            f"{stored[i].tolist()}, the data give {expected[i].tolist()}",
            "the dataset's labels of its samples",
        )


def _check_subjects(name: object, pool: TaskPool, ep: Episode, settings: EpisodeSettings) -> None:
    if pool.subjects is None:
        return
    order = np.argsort(pool.indices)
    sorted_rows, codes = pool.indices[order], pool.subjects[order]

    def subjects(rows: np.ndarray) -> np.ndarray:
        return codes[np.searchsorted(sorted_rows, rows)]

    sup, qry = subjects(ep.support_indices), subjects(ep.query_indices)
    shared = np.intersect1d(sup, qry)
    if shared.size:
        names = [str(n) for n in np.asarray(pool.subject_names)[shared][:3]]
        raise _bad(name, ep, f"subjects {names} are in both support and query", "disjoint")
    if ep.task_target is TaskTarget.MULTILABEL_CLASSIFICATION:
        return
    for part, codes_of, labels, need in (
        ("support", sup, ep.support_labels, settings.shots),
        ("query", qry, ep.query_labels, settings.queries),
    ):
        for c in range(ep.n_way):
            count = np.unique(codes_of[labels == c]).size
            if count != need:
                found = f"{part} has {count} subjects of class {ep.class_keys[c]}"
                raise _bad(name, ep, found, f"exactly {need} (shots per subject)")


def _check_protocol_rows(
    name: object, pool: TaskPool, ep: Episode, protocol: Mapping[str, Any]
) -> None:
    """Support and val in the original train split and disjoint; query in the original test."""
    train = pool.folder.split_indices("train", original=True)
    test = pool.folder.split_indices("test", original=True)
    val = np.asarray(protocol["val_indices"], dtype=np.int64)
    for part, rows, split in (
        ("support", ep.support_indices, train),
        ("val_indices", val, train),
        ("query", ep.query_indices, test),
    ):
        outside = rows[~np.isin(rows, split)]
        if outside.size:
            where = "test" if split is test else "train"
            found = f"{part} uses samples {outside.tolist()[:5]} outside original split {where}"
            raise _bad(name, ep, found, f"{part} from the original {where} split (MedFM lists)")
    shared = np.intersect1d(val, ep.support_indices).tolist()
    if shared != sorted(set(protocol.get("val_overlap", []))):  # MedFM's lists share some
        found = f"val_indices {shared[:5]} (of {len(shared)}) are in the support"
        raise _bad(name, ep, found, "exactly the val_overlap the protocol records")
