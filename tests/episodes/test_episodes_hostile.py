"""Edited episode files whose checksum was recomputed: the semantic checks still refuse them.

One edit per class of fault, on a freshly sampled file; each is refused with an error naming
the file, the episode and what is wrong, and the file itself is left unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from episode_toys import make_rgb

from medimeta.episodes import EpisodeSampler, EpisodeSet
from medimeta.episodes.fileio import _digest
from medimeta.errors import EpisodeError, FormatError

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile-episodes")
    make_rgb(path)
    return path


def _sample(root: Path, task: str = "case category", **kw: Any) -> dict[str, Any]:
    opts = {"shots": 2, "queries": 2, "seed": 4, **kw}
    sampler = EpisodeSampler.from_root(root, f"ep_rgb:{task}", "train", **opts)
    return json.loads(sampler.sample(4).to_json())


def _save(path: Path, data: dict[str, Any]) -> Path:
    data["episodes_sha256"] = _digest(data["episodes"])  # what a careful editor would do
    path.write_text(json.dumps(data))
    return path


def _copy_support_into_query(d: dict[str, Any]) -> None:
    ep = d["episodes"][1]
    label = ep["support_labels"][0]
    j = ep["query_labels"].index(label)
    ep["query"][j] = ep["support"][0]


def _duplicate_in_support(d: dict[str, Any]) -> None:
    ep = d["episodes"][2]
    label = ep["support_labels"][0]
    j = next(i for i in range(1, len(ep["support"])) if ep["support_labels"][i] == label)
    ep["support"][j] = ep["support"][0]


def _drop_one_query(d: dict[str, Any]) -> None:
    ep = d["episodes"][0]
    del ep["query"][0], ep["query_labels"][0]


def _swap_two_labels(d: dict[str, Any]) -> None:
    ep = d["episodes"][3]
    labels = ep["support_labels"]
    j = next(i for i, v in enumerate(labels) if v != labels[0])
    labels[0], labels[j] = labels[j], labels[0]


def _index_outside_split(root: Path) -> Edit:
    from medimeta.format.reader import DatasetFolder

    folder = DatasetFolder(root / "ep_rgb")
    test = folder.split_indices("test")
    labels = folder.labels("case category")

    def edit(d: dict[str, Any]) -> None:
        ep = d["episodes"][0]
        key = ep["classes"][ep["support_labels"][0]]
        ep["support"][0] = int(next(g for g in test if labels[g] == key))

    return edit


def _set(path: str, value: Any) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        *head, last = path.split(".")
        target: Any = d
        for part in head:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return edit


#: class of fault -> (edit, error type, words, check against the data?)
FAULTS: dict[str, tuple[Callable[[Path], Edit], type[Exception], tuple[str, ...], bool]] = {
    "support-index-copied-into-query": (
        lambda r: _copy_support_into_query,
        EpisodeError,
        ("episode 1", "in both support and query"),
        False,
    ),
    "num-episodes-larger-than-records": (
        lambda r: _set("num_episodes", 100_000),
        FormatError,
        ("num_episodes does not match", "expected: 4; actual: 100000"),
        False,
    ),
    "duplicate-index-in-support": (
        lambda r: _duplicate_in_support,
        EpisodeError,
        ("episode 2", "support lists samples", "more than once"),
        False,
    ),
    "per-class-count-off": (
        lambda r: _drop_one_query,
        EpisodeError,
        ("episode 0", "query has 1 for class", "exactly 2 per class"),
        False,
    ),
    "header-shots-edited": (
        lambda r: _set("settings.shots", 3),
        EpisodeError,
        ("episode 0", "support has 2", "exactly 3 per class"),
        False,
    ),
    "class-not-in-task": (
        lambda r: _set("episodes.1.classes", [0, 1, 9]),
        EpisodeError,
        ("episode 1", "classes [9] are not keys"),
        False,
    ),
    "duplicate-episode-index": (
        lambda r: _set("episodes.3.index", 0),
        EpisodeError,
        ("episode 0", "appears twice"),
        False,
    ),
    "float-index": (
        lambda r: _set("episodes.2.support.0", 1.5),
        FormatError,
        ("episode record 2: support is not a list of integers",),
        False,
    ),
    "eligible-classes-edited": (
        lambda r: _set("eligible_classes", [0, 1]),
        EpisodeError,
        ("episode 0", "classes [0, 1, 2]", "distinct keys among [0, 1]"),
        False,
    ),
    "index-outside-split": (
        _index_outside_split,
        EpisodeError,
        ("episode 0", "outside split train"),
        True,
    ),
    "labels-differ-from-data": (
        lambda r: _swap_two_labels,
        EpisodeError,
        ("episode 3", "support[0]", "the data give"),
        True,
    ),
    "split-unknown": (
        lambda r: _set("split", ["training"]),
        FormatError,
        ("split names no known split", "'training'"),
        False,
    ),
    "task-labels-renamed": (
        lambda r: _set("task.labels.0", "renamed"),
        EpisodeError,
        ("labels", "renamed", "the file says"),
        True,
    ),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_edited_episode_file_is_refused(root: Path, tmp_path: Path, fault: str) -> None:
    make, error, words, with_data = FAULTS[fault]
    data = _sample(root)
    make(root)(data)
    path = _save(tmp_path / "edited.json", data)
    before = path.read_bytes()
    with pytest.raises(error) as info:
        EpisodeSet.load(path, root) if with_data else EpisodeSet.load(path)
    text = str(info.value)
    assert str(path) in text, text
    for word in words:
        assert word in text, (word, text)
    assert path.read_bytes() == before


def test_binary_classes_must_be_0_and_1(root: Path, tmp_path: Path) -> None:
    data = _sample(root, "Malignancy")
    _set("episodes.0.classes", [1, 0])(data)
    path = _save(tmp_path / "b.json", data)
    with pytest.raises(EpisodeError, match=r"episode 0: classes \[1, 0\] for a binary task"):
        EpisodeSet.load(path)


def test_multilabel_needs_positives_and_negatives(root: Path, tmp_path: Path) -> None:
    data = _sample(root, "finding labels")
    ep = data["episodes"][0]
    ep["support_labels"] = [[1] * len(ep["classes"]) for _ in ep["support"]]
    path = _save(tmp_path / "m.json", data)
    with pytest.raises(EpisodeError, match="at least 2 positives and 2 negatives per label"):
        EpisodeSet.load(path)


def test_subjects_shared_by_support_and_query_are_refused(root: Path, tmp_path: Path) -> None:
    from medimeta.format.reader import DatasetFolder

    folder = DatasetFolder(root / "ep_rgb")
    subjects = folder.metadata(["patient_id"])["patient_id"]
    labels = folder.labels("case category")
    train = set(folder.split_indices("train").tolist())
    data = _sample(root, shot_unit="subject", shots=1, queries=1)
    for ep in data["episodes"]:
        taken = set(ep["support"]) | set(ep["query"])
        support_subjects = {str(subjects[g]) for g in ep["support"]}
        for j, g in enumerate(ep["query"]):
            key = ep["classes"][ep["query_labels"][j]]
            twin = [
                h
                for h in sorted(train - taken)
                if labels[h] == key
                and str(subjects[h]) in support_subjects
                and str(subjects[h]) != str(subjects[g])
            ]
            if twin and sum(str(subjects[x]) == str(subjects[g]) for x in ep["query"]) == 1:
                ep["query"][j] = int(twin[0])
                break
        else:
            continue
        index = ep["index"]
        break
    else:
        pytest.fail("the toy data offer no subject to share")
    path = _save(tmp_path / "s.json", data)
    assert len(EpisodeSet.load(path)) == 4  # the file alone looks fine
    with pytest.raises(EpisodeError, match=rf"episode {index}: subjects .* both support and query"):
        EpisodeSet.load(path, root)


def test_untouched_files_of_every_kind_still_load(root: Path, tmp_path: Path) -> None:
    for task in ("case category", "Malignancy", "finding labels", "DR level", "grade"):
        for unit in ("sample", "subject"):
            data = _sample(root, task, shot_unit=unit, shots=1, queries=1)
            path = _save(tmp_path / f"{task}-{unit}.json", data)
            loaded = EpisodeSet.load(path, root)
            assert len(loaded) == 4
            assert all(np.intersect1d(e.support_indices, e.query_indices).size == 0 for e in loaded)
