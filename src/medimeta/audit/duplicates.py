"""Exact and near-duplicate pairs of one dataset or of two: the rows of ``pairs.csv``.

*Exact* pairs have equal pixel hashes (a grey image and its RGB copy included); they are found
by grouping hashes, so flat images (blank frames) are paired too. *Near* pairs score at least
the threshold in :func:`medimeta.audit.pairing.pair_datasets` without equal hashes. A group of
k identical images gives k (k - 1) / 2 pairs; beyond ``GROUP_CAP`` members only the pairs of
the group's first image with the others are listed (the report counts the whole group).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medimeta.audit.descriptors import Descriptors
from medimeta.audit.pairing import MAX_PAIRS, THRESHOLD, PairResult, pair_datasets
from medimeta.audit.views import CROPS

GROUP_CAP = 64


@dataclass
class PairTable:
    """Pairs of images (index_a of dataset_a, index_b of dataset_b), sorted."""

    dataset_a: str
    dataset_b: str
    ia: np.ndarray
    ib: np.ndarray
    score: np.ndarray
    exact: np.ndarray  # bool
    result: PairResult
    exact_groups: int = 0
    largest_group: int = 0

    def __len__(self) -> int:
        return int(self.ia.size)

    @property
    def same(self) -> bool:
        return self.dataset_a == self.dataset_b


def _group_pairs(members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All pairs i < j of ``members`` (sorted), or the first with each other when large."""
    if members.size > GROUP_CAP:
        return np.full(members.size - 1, members[0]), members[1:]
    i, j = np.triu_indices(members.size, 1)
    return members[i], members[j]


def exact_within(desc: Descriptors) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(ia, ib, number of groups, largest group) of identical images of one dataset."""
    keys = desc.hash_keys()
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    dup_groups = np.flatnonzero(counts > 1)
    if not dup_groups.size:
        return np.empty(0, np.int64), np.empty(0, np.int64), 0, 0
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    parts = [_group_pairs(np.sort(order[starts[g] : starts[g + 1]])) for g in dup_groups]
    ia = np.concatenate([p[0] for p in parts])
    ib = np.concatenate([p[1] for p in parts])
    return ia, ib, int(dup_groups.size), int(counts.max())


def exact_across(a: Descriptors, b: Descriptors) -> tuple[np.ndarray, np.ndarray]:
    """(ia, ib) of images of a and b with equal hashes (at most ``GROUP_CAP`` b per a)."""
    ka, kb = a.hash_keys(), b.hash_keys()
    common = np.intersect1d(ka, kb)
    if not common.size:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    order_b = np.argsort(kb, kind="stable")
    sorted_b = kb[order_b]
    rows_a = np.flatnonzero(np.isin(ka, common))
    lo = np.searchsorted(sorted_b, ka[rows_a], side="left")
    hi = np.searchsorted(sorted_b, ka[rows_a], side="right")
    counts = np.minimum(hi - lo, GROUP_CAP)
    ia = np.repeat(rows_a, counts)
    offsets = np.arange(ia.size) - np.repeat(np.cumsum(counts) - counts, counts)
    ib = order_b[np.repeat(lo, counts) + offsets]
    return ia.astype(np.int64), ib.astype(np.int64)


def find_pairs(
    a: Descriptors,
    b: Descriptors | None = None,
    *,
    threshold: float = THRESHOLD,
    variants: str = "auto",
    crops: Sequence[float] = CROPS,
    max_pairs: int = MAX_PAIRS,
    **scan: Any,
) -> PairTable:
    """Exact and near pairs within ``a`` (``b`` None) or between ``a`` and ``b``."""
    result = pair_datasets(
        a, b, threshold=threshold, variants=variants, crops=crops, max_pairs=max_pairs, **scan
    )
    other = a if b is None else b
    groups = largest = 0
    if b is None:
        ea, eb, groups, largest = exact_within(a)
    else:
        ea, eb = exact_across(a, b)
    ia = np.concatenate([result.ia, ea])
    ib = np.concatenate([result.ib, eb])
    score = np.concatenate([result.score, np.ones(ea.size, np.float32)])
    order = np.lexsort((-score, ib, ia))
    ia, ib, score = ia[order], ib[order], score[order]
    first = np.ones(ia.size, bool)
    first[1:] = (ia[1:] != ia[:-1]) | (ib[1:] != ib[:-1])
    ia, ib, score = ia[first], ib[first], score[first]
    exact = (a.hashes[ia] == other.hashes[ib]).all(axis=1) if ia.size else np.zeros(0, bool)
    score = np.where(exact, np.float32(1.0), np.minimum(score, np.float32(1.0)))
    _mark_exact_partners(result, ea, eb)
    return PairTable(a.dataset_id, other.dataset_id, ia, ib, score, exact, result, groups, largest)


def _mark_exact_partners(result: PairResult, ea: np.ndarray, eb: np.ndarray) -> None:
    """Exact partners count as best partners (score 1), flat images included."""
    if not ea.size:
        return
    result.best_a[ea] = 1.0
    result.best_a_index[ea] = eb
    if result.best_b is not None and result.best_b_index is not None:
        result.best_b[eb] = 1.0
        result.best_b_index[eb] = ea
    else:  # within: both members of a pair have a partner
        result.best_a[eb] = 1.0
        result.best_a_index[eb] = ea


def paired_mask(table: PairTable, side: str = "a") -> np.ndarray:
    """Images of side ``a`` (or ``b``) with a partner at or above the threshold."""
    res = table.result
    best = res.best_a if side == "a" or res.best_b is None else res.best_b
    return np.asarray(best >= res.threshold)


def mutual_best(table: PairTable) -> np.ndarray:
    """Per image of a: whether its best partner in b has it as its own best partner."""
    res = table.result
    if res.best_b_index is None:
        return np.asarray(
            res.best_a_index[np.maximum(res.best_a_index, 0)] == np.arange(len(res.best_a))
        )
    idx = np.maximum(res.best_a_index, 0)
    return np.asarray(res.best_b_index[idx] == np.arange(len(res.best_a)))
