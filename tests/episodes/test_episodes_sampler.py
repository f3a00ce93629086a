"""Guarantees of the episode sampler per task target, reproducibility and the small-class rule."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from medimeta.episodes import Episode, EpisodeSampler, SmallClassWarning
from medimeta.errors import EpisodeError, Note, UnknownNameError
from medimeta.format.reader import DatasetFolder


def sampler(root: Path, task: str, split: str | None = "train", **kw: object) -> EpisodeSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallClassWarning)
        return EpisodeSampler.from_root(root, f"ep_rgb:{task}", split, **kw)  # type: ignore[arg-type]


def check_common(ep: Episode, folder: DatasetFolder, split: str | None) -> np.ndarray:
    """Disjoint, inside the split, labels re-derivable from the data; returns stored labels."""
    allowed = folder.split_indices(split) if split else np.arange(folder.num_samples)
    both = np.concatenate([ep.support_indices, ep.query_indices])
    assert np.unique(both).size == both.size, "support and query overlap or repeat"
    assert np.isin(both, allowed).all()
    assert ep.support_indices.dtype == np.int64 and ep.support_labels.dtype == np.int64
    return folder.labels(ep.task_name)


@pytest.mark.parametrize("task", ["case category", "DR level"])
def test_single_label_counts_per_class(ep_root: Path, task: str) -> None:
    s = sampler(ep_root, task, shots=2, queries=3)
    folder = DatasetFolder(ep_root / "ep_rgb")
    for i in range(10):
        ep = s[i]
        stored = check_common(ep, folder, "train")
        keys = np.array(ep.class_keys)
        assert list(keys) == sorted(keys), "classes keep key (ordinal) order"
        for labels, rows, k in (
            (ep.support_labels, ep.support_indices, 2),
            (ep.query_labels, ep.query_indices, 3),
        ):
            assert np.bincount(labels, minlength=ep.n_way).tolist() == [k] * ep.n_way
            assert np.array_equal(keys[labels], stored[rows]), "re-indexed labels map back to keys"


def test_random_way_subsets_keep_ordinal_order(ep_root: Path) -> None:
    s = sampler(ep_root, "DR level", shots=1, queries=1, ways=3)
    seen = set()
    for i in range(30):
        ep = s[i]
        assert ep.n_way == 3 and list(ep.class_keys) == sorted(ep.class_keys)
        assert [c.index for c in ep.classes] == [0, 1, 2]
        seen.add(ep.class_keys)
    assert len(seen) > 5, "subsets vary between episodes"


def test_binary_k_positives_and_negatives(ep_root: Path) -> None:
    s = sampler(ep_root, "Malignancy", shots=4, queries=5)
    folder = DatasetFolder(ep_root / "ep_rgb")
    for i in range(10):
        ep = s[i]
        stored = check_common(ep, folder, "train")
        assert ep.class_keys == (0, 1) and ep.support_labels.shape == (8,)
        assert int(ep.support_labels.sum()) == 4 and int(ep.query_labels.sum()) == 5
        assert np.array_equal(stored[ep.support_indices], ep.support_labels)


def test_binary_ways_must_be_two(ep_root: Path) -> None:
    with pytest.raises(EpisodeError, match="binary"):
        sampler(ep_root, "Malignancy", ways=3)


def test_multilabel_at_least_k_positives_and_negatives(ep_root: Path) -> None:
    s = sampler(ep_root, "finding labels", shots=3, queries=4)
    folder = DatasetFolder(ep_root / "ep_rgb")
    for i in range(20):
        ep = s[i]
        stored = check_common(ep, folder, "train")
        assert ep.support_labels.shape == (ep.support_indices.size, 4)
        assert np.array_equal(stored[ep.support_indices], ep.support_labels)
        for labels, k in ((ep.support_labels, 3), (ep.query_labels, 4)):
            assert (labels.sum(0) >= k).all() and ((1 - labels).sum(0) >= k).all()
        assert ep.support_indices.size <= 2 * 3 * 4


def test_multilabel_label_subset(ep_root: Path) -> None:
    s = sampler(ep_root, "finding labels", shots=2, queries=2, ways=2)
    folder = DatasetFolder(ep_root / "ep_rgb")
    ep = s[3]
    assert ep.n_way == 2 and ep.support_labels.shape[1] == 2
    cols = list(ep.class_keys)
    assert np.array_equal(
        folder.labels("finding labels")[ep.query_indices][:, cols], ep.query_labels
    )


def test_sets_are_shuffled(ep_root: Path) -> None:
    s = sampler(ep_root, "case category", shots=3, queries=3)
    orders = [s[i].support_labels for i in range(5)]
    assert any(not np.array_equal(o, np.sort(o)) for o in orders), "support is class-ordered"


def test_episode_is_pure_function_of_seed_index_and_settings(ep_root: Path) -> None:
    a = sampler(ep_root, "finding labels", shots=2, queries=2, seed=7)
    b = sampler(ep_root, "finding labels", shots=2, queries=2, seed=7, num_episodes=50)
    forward = [a[i] for i in range(8)]
    backward = [b[i] for i in reversed(range(8))][::-1]
    assert forward == backward
    assert a[3] != a[4]
    assert sampler(ep_root, "finding labels", shots=2, queries=2, seed=8)[3] != a[3]
    assert sampler(ep_root, "finding labels", shots=2, queries=3, seed=7)[3] != a[3]
    assert sampler(ep_root, "finding labels", "test", shots=2, queries=2, seed=7)[3] != a[3]


def test_no_global_rng_use(ep_root: Path) -> None:
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    sampler(ep_root, "case category", shots=2, queries=2)[0]
    assert np.array_equal(np.random.get_state()[1], state)


def test_small_class_excluded_with_warning(ep_root: Path) -> None:
    with pytest.warns(SmallClassWarning, match=r"4 \('g4': 3 samples\)"):
        s = EpisodeSampler.from_root(ep_root, "ep_rgb:grade", "train", shots=2, queries=2)
    assert s.eligible == (0, 1, 2, 3) and s.excluded == {4: (3, 0)}
    assert all(4 not in s[i].class_keys for i in range(5))


def test_small_class_error_rule(ep_root: Path) -> None:
    with pytest.raises(EpisodeError, match="g4"):
        EpisodeSampler.from_root(
            ep_root, "ep_rgb:grade", "train", shots=2, queries=2, on_small_class="error"
        )


def test_min_class_units_raises_the_bar(ep_root: Path) -> None:
    with pytest.warns(SmallClassWarning):
        s = EpisodeSampler.from_root(
            ep_root, "ep_rgb:grade", "train", shots=1, queries=1, min_class_units=4
        )
    assert 4 in s.excluded
    with pytest.raises(EpisodeError, match="ways"), pytest.warns(SmallClassWarning):
        EpisodeSampler.from_root(
            ep_root, "ep_rgb:grade", "train", shots=1, queries=1, min_class_units=100
        )


def test_multilabel_rare_label_excluded(ep_root: Path) -> None:
    with pytest.warns(SmallClassWarning, match="'Z'"):
        s = EpisodeSampler.from_root(ep_root, "ep_rgb:rare findings", "train", shots=2, queries=3)
    assert s.eligible == (0, 1) and s[0].n_way == 2


def test_binary_small_class_is_an_error(ep_root: Path) -> None:
    with pytest.raises(EpisodeError, match="shots"):
        EpisodeSampler.from_root(ep_root, "ep_rgb:Malignancy", "train", shots=20, queries=20)


def test_a_bare_dataset_id_means_its_first_task_with_a_note(ep_root: Path) -> None:
    with pytest.warns(Note, match="'ep_rgb' means its first task: ep_rgb:case category"):
        warnings.simplefilter("ignore", SmallClassWarning)
        s = EpisodeSampler.from_root(ep_root, "ep_rgb", "train")
    assert s.pool.identifier == sampler(ep_root, "case category").pool.identifier


def test_bad_arguments(ep_root: Path) -> None:
    with pytest.raises(EpisodeError, match="shots"):
        sampler(ep_root, "case category", shots=0)
    with pytest.raises(EpisodeError, match="seed"):
        sampler(ep_root, "case category", seed=-1)
    with pytest.raises(UnknownNameError):
        sampler(ep_root, "case category", on_small_class="ignore")
    with pytest.raises(UnknownNameError, match=r"is DATASET \(its first task\) or DATASET:TASK"):
        EpisodeSampler.from_root(ep_root, "ep_rgb:", "train")
    with pytest.raises(UnknownNameError, match="did you mean 'ep_rgb'"):
        EpisodeSampler.from_root(ep_root, "ep_rbg", "train")
    s = sampler(ep_root, "case category", num_episodes=3)
    with pytest.raises(IndexError):
        s[3]
    assert len(list(s)) == 3


def _subjects(root: Path) -> dict[int, str]:
    folder = DatasetFolder(root / "ep_rgb")
    return dict(enumerate(folder.metadata(["patient_id"])["patient_id"].tolist()))


def test_per_subject_shots_multiclass(ep_root: Path) -> None:
    s = sampler(ep_root, "case category", None, shots=2, queries=2, shot_unit="subject")
    folder = DatasetFolder(ep_root / "ep_rgb")
    labels = folder.labels("case category")
    subject_of = _subjects(ep_root)
    for i in range(10):
        ep = s[i]
        check_common(ep, folder, None)
        sets = {}
        for part, rows, ys in (
            ("s", ep.support_indices, ep.support_labels),
            ("q", ep.query_indices, ep.query_labels),
        ):
            for c in range(ep.n_way):
                chosen = {subject_of[r] for r in rows[ys == c].tolist()}
                assert len(chosen) == 2, "a shot is one subject"
                # every image of a chosen subject with that class joins
                everything = {
                    g
                    for g, subj in subject_of.items()
                    if subj in chosen and labels[g] == ep.class_keys[c]
                }
                assert everything == set(rows[ys == c].tolist())
                sets.setdefault(part, set()).update(chosen)
        assert not sets["s"] & sets["q"], "support and query share a subject"


def test_per_subject_multilabel(ep_root: Path) -> None:
    s = sampler(ep_root, "finding labels", None, shots=2, queries=2, shot_unit="subject")
    subject_of = _subjects(ep_root)
    for i in range(10):
        ep = s[i]
        subjects = {
            p: [subject_of[r] for r in getattr(ep, f"{p}_indices").tolist()]
            for p in ("support", "query")
        }
        assert not set(subjects["support"]) & set(subjects["query"])
        for part, labels in (("support", ep.support_labels), ("query", ep.query_labels)):
            subj = np.array(subjects[part])
            for col in range(ep.n_way):
                assert (
                    len(set(subj[labels[:, col] == 1])) >= 2
                    and len(set(subj[labels[:, col] == 0])) >= 2
                )
            # a chosen subject brings all its images
            all_images = {g for g, name in subject_of.items() if name in set(subj)}
            assert all_images == set(getattr(ep, f"{part}_indices").tolist())


def test_per_subject_needs_the_column(ep_root: Path) -> None:
    with pytest.raises(UnknownNameError, match="annotation column"):
        sampler(ep_root, "case category", shot_unit="subject", subject_column="no_such_column")
