"""Pairing images by their views (:mod:`medimeta.audit.views`): a blocked float32 matrix
product, never a Python loop over pairs.

The score of two images is the maximum of their view correlations over the combinations
used. Pairs scoring at least the threshold (default ``THRESHOLD`` = 0.95) are kept, and every
image's best partner is tracked (for "paired" counts and mutual-best checks). The work is
tiles of ``block`` x ``block`` (4096: 64 MiB of float32 scores), the upper triangle only
within a dataset.

Combinations:

* within a dataset: ``full/full`` (one pipeline made all its images);
* across datasets, ``variants="auto"``: ``SAMPLE`` (512) images of the smaller dataset are
  compared with all of the other under every combination. If fewer than 2 of them reach the
  threshold the datasets are unrelated and one ``full/full`` scan follows. Otherwise the scan
  uses ``full/full`` and each combination that won (beat ``full/full`` by more than 0.005) for
  at least 2 % of the sample's matches and 2 images; a second pass compares the images left
  without a partner (of the side where that is cheaper) with all of the other dataset under
  the combinations that won less often; combinations that never won are not used;
* ``"all"``: every combination in one scan; ``"none"``: ``full/full`` only.

So two unrelated datasets cost one product, N_a x N_b x 256 multiply-adds, plus the sample
(512 x N_large x 25); related ones cost one product per kept combination, plus the second
pass (unpaired x N_other x its combinations).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medimeta.audit.descriptors import Descriptors
from medimeta.audit.views import (
    CROPS,
    FULL_FULL,
    Combo,
    View,
    all_combos,
    all_views,
    combo_name,
    view_table,
    views,
)
from medimeta.errors import check_choice

THRESHOLD = 0.95
SAMPLE = 512
BLOCK = 4096
MAX_PAIRS = 2_000_000
MODES = ("auto", "all", "none")
Views = dict[View, np.ndarray]


@dataclass
class PairResult:
    """Image pairs of dataset a with b (or within a) scoring at least ``threshold``."""

    ia: np.ndarray
    ib: np.ndarray
    score: np.ndarray
    best_a: np.ndarray  # best score of every a image (within: of its best other image)
    best_a_index: np.ndarray
    best_b: np.ndarray | None
    best_b_index: np.ndarray | None
    combos: list[Combo]
    threshold: float
    same: bool
    truncated: bool = False
    seconds: float = 0.0
    choice: dict[str, Any] = field(default_factory=dict)
    products: float = 0.0  # image pairs x combinations scored

    def __len__(self) -> int:
        return int(self.ia.size)


class Scan:
    """Running state of a scan: best partners of both sides and the pairs kept so far."""

    def __init__(self, na: int, nb: int, same: bool, threshold: float, max_pairs: int) -> None:
        self.threshold = threshold
        self.max_pairs = max_pairs
        self.best_a = np.full(na, -2.0, np.float32)
        self.best_a_index = np.full(na, -1, np.int64)
        self.best_b = self.best_a if same else np.full(nb, -2.0, np.float32)
        self.best_b_index = self.best_a_index if same else np.full(nb, -1, np.int64)
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.count = 0
        self.truncated = False
        self.products = 0.0

    def add(self, scores: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> None:
        """Record a tile of scores of a images ``rows`` against b images ``cols``."""
        am = scores.argmax(axis=1)
        mx = scores[np.arange(scores.shape[0]), am]
        better(self.best_a, self.best_a_index, rows, mx, cols[am])
        cmx = scores.max(axis=0)
        up = np.flatnonzero(cmx > self.best_b[cols])
        if up.size:  # argmax along axis 0 is strided (10x a row argmax): find the maxima
            r, c = np.nonzero(scores == cmx)
            cam = np.zeros(scores.shape[1], np.int64)
            cam[c] = r
            better(self.best_b, self.best_b_index, cols[up], cmx[up], rows[cam[up]])
        hit = np.flatnonzero(mx >= self.threshold)
        if hit.size:
            sub = scores[hit]
            r, c = np.nonzero(sub >= self.threshold)
            self.parts.append((rows[hit[r]], cols[c], sub[r, c].astype(np.float32)))
            self.count += r.size
            if self.count > 2 * self.max_pairs:
                self.prune()

    def prune(self) -> None:
        ia, ib, s = self.pairs()
        if s.size > self.max_pairs:
            keep = np.argpartition(-s, self.max_pairs - 1)[: self.max_pairs]
            ia, ib, s = ia[keep], ib[keep], s[keep]
            self.truncated = True
        self.parts = [(ia, ib, s)]
        self.count = int(s.size)

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ia, ib, score), each pair once (the highest score when found twice)."""
        if not self.parts:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
        ia, ib, s = (np.concatenate(p) for p in zip(*self.parts, strict=True))
        order = np.lexsort((-s, ib, ia))
        ia, ib, s = ia[order], ib[order], s[order]
        first = np.ones(ia.size, bool)
        first[1:] = (ia[1:] != ia[:-1]) | (ib[1:] != ib[:-1])
        return ia[first], ib[first], s[first]


def better(best: np.ndarray, index: np.ndarray, at: np.ndarray, mx: np.ndarray, am: np.ndarray):
    """``best[at] = max(best[at], mx)``, with ``index`` following (``at`` distinct)."""
    up = mx > best[at]
    best[at[up]] = mx[up]
    index[at[up]] = am[up]


def scan(
    va: Views,
    vb: Views | None,
    combos: Sequence[Combo],
    state: Scan,
    *,
    rows: np.ndarray | None = None,
    cols: np.ndarray | None = None,
    block: int = BLOCK,
) -> Scan:
    """Score a images ``rows`` against b images ``cols`` (default all; the upper triangle of
    a x a when ``vb`` is None) tile by tile into ``state``."""
    same = vb is None
    vb_ = va if vb is None else vb
    ra = np.arange(next(iter(va.values())).shape[0]) if rows is None else rows
    cb = np.arange(next(iter(vb_.values())).shape[0]) if cols is None else cols
    for i0 in range(0, ra.size, block):
        ri = ra[i0 : i0 + block]
        sub_a = {v: va[v][ri] for v in {c[0] for c in combos}}
        for j0 in range(i0 if same else 0, cb.size, block):
            cj = cb[j0 : j0 + block]
            scores: np.ndarray | None = None
            for a_view, b_view in combos:
                s = sub_a[a_view] @ vb_[b_view][cj].T
                scores = s if scores is None else np.maximum(scores, s, out=scores)
            if not (scores is not None):
                raise RuntimeError("internal inconsistency (please report)")
            if same and i0 == j0:  # keep i < j only
                scores[np.tril_indices(scores.shape[0], 0, scores.shape[1])] = -2.0
            state.add(scores, ri, cj)
            state.products += float(ri.size) * cj.size * len(combos)
    return state


def choose_combos(
    a: Descriptors,
    b: Descriptors,
    *,
    threshold: float,
    crops: Sequence[float] = CROPS,
    sample: int = SAMPLE,
    seed: int = 0,
) -> tuple[list[Combo], list[Combo], dict[str, Any]]:
    """(combinations of the first scan, of the second pass, facts) for ``auto``."""
    small, large, swap = (b, a, True) if len(b) < len(a) else (a, b, False)
    usable = np.flatnonzero(~small.flat)
    pick = np.sort(np.random.default_rng(seed).choice(usable, min(sample, usable.size), False))
    combos = all_combos(crops)
    oriented = [(c[1], c[0]) if swap else c for c in combos]  # (small view, large view)
    vs = view_table(small.thumbs[pick], all_views(crops))
    best = np.full((pick.size, len(combos)), -2.0, np.float32)
    large_flat = large.flat
    for j0 in range(0, len(large), BLOCK):
        part = slice(j0, min(j0 + BLOCK, len(large)))
        vl = view_table(large.thumbs[part], all_views(crops), large_flat[part])
        for k, (sv, lv) in enumerate(oriented):
            top_k = (vs[sv] @ vl[lv].T).max(axis=1, initial=-2.0)
            np.maximum(best[:, k], top_k, out=best[:, k])
    top = best.max(axis=1) if pick.size else np.empty(0, np.float32)
    sure = top >= threshold
    gain = top - best[:, 0]
    wins = np.bincount(best.argmax(axis=1)[sure & (gain > 0.005)], minlength=len(combos))
    need = max(2, int(np.ceil(0.02 * sure.sum())))
    related = int(sure.sum()) >= 2
    first = [FULL_FULL] + [c for k, c in enumerate(combos) if k and related and wins[k] >= need]
    second = [c for k, c in enumerate(combos) if related and 0 < wins[k] < need]
    info = {
        "sample": int(pick.size),
        "sample_of": small.dataset_id,
        "sample_matched": int(sure.sum()),
        "wins": {combo_name(c): int(wins[k]) for k, c in enumerate(combos) if wins[k]},
        "first_scan": [combo_name(c) for c in first],
        "second_pass": [combo_name(c) for c in second],
    }
    return first, second, info


def _second_pass(
    a: Descriptors, b: Descriptors, state: Scan, combos: list[Combo], block: int
) -> int:
    """The images left without a partner after the first scan, of the side where that is
    cheaper (unpaired x size of the other side), against all of the other dataset under
    ``combos``; returns how many were compared. A pair of two unpaired images is found
    either way."""
    ua = np.flatnonzero((state.best_a < state.threshold) & ~a.flat)
    ub = np.flatnonzero((state.best_b < state.threshold) & ~b.flat)
    wanted_a = {c[0] for c in combos}
    wanted_b = {c[1] for c in combos}
    if not ua.size or not ub.size:
        return 0
    if ua.size * len(b) <= ub.size * len(a):
        va = view_table(a.thumbs[ua], wanted_a)
        vb = view_table(b.thumbs, wanted_b, b.flat)
        sub = scan(va, vb, combos, _sub(state, ua.size, len(b)), block=block)
        _fold(state, sub, ua, None)
        return int(ua.size)
    va = view_table(a.thumbs, wanted_a, a.flat)
    vb = view_table(b.thumbs[ub], wanted_b)
    sub = scan(va, vb, combos, _sub(state, len(a), ub.size), block=block)
    _fold(state, sub, None, ub)
    return int(ub.size)


def _sub(state: Scan, na: int, nb: int) -> Scan:
    return Scan(na, nb, False, state.threshold, state.max_pairs)


def _fold(state: Scan, sub: Scan, rows: np.ndarray | None, cols: np.ndarray | None) -> None:
    """Merge a scan of a subset (``rows`` of a or ``cols`` of b) into ``state``."""
    ra = np.arange(sub.best_a.size) if rows is None else rows
    cb = np.arange(sub.best_b.size) if cols is None else cols
    better(state.best_a, state.best_a_index, ra, sub.best_a, cb[np.maximum(sub.best_a_index, 0)])
    better(state.best_b, state.best_b_index, cb, sub.best_b, ra[np.maximum(sub.best_b_index, 0)])
    ia, ib, s = sub.pairs()
    if s.size:
        state.parts.append((ra[ia], cb[ib], s))
        state.count += s.size
    state.products += sub.products
    state.truncated |= sub.truncated


def pair_datasets(
    a: Descriptors,
    b: Descriptors | None = None,
    *,
    threshold: float = THRESHOLD,
    variants: str = "auto",
    crops: Sequence[float] = CROPS,
    block: int = BLOCK,
    max_pairs: int = MAX_PAIRS,
) -> PairResult:
    """Near-duplicate pairs of a with b (or within a when ``b`` is None), module docstring."""
    check_choice("variants", variants, MODES)
    t0 = time.perf_counter()
    choice: dict[str, Any] = {}
    second: list[Combo] = []
    if variants == "none" or (b is None and variants == "auto"):
        first = [FULL_FULL]
    elif variants == "all":
        first = all_combos(crops)
    else:
        if not (b is not None):
            raise RuntimeError("internal inconsistency (please report)")
        first, second, choice = choose_combos(a, b, threshold=threshold, crops=crops)
    nb = len(a) if b is None else len(b)
    state = Scan(len(a), nb, b is None, threshold, max_pairs)
    a_views = {c[0] for c in first} | ({c[1] for c in first} if b is None else set())
    va = view_table(a.thumbs, a_views, a.flat)
    vb = None if b is None else view_table(b.thumbs, {c[1] for c in first}, b.flat)
    scan(va, vb, first, state, block=block)
    del va, vb
    if second and b is not None:
        choice["second_pass_images"] = _second_pass(a, b, state, second, block)
    state.prune()
    ia, ib, s = state.pairs()
    return PairResult(
        ia,
        ib,
        s,
        state.best_a,
        state.best_a_index,
        None if b is None else state.best_b,
        None if b is None else state.best_b_index,
        first + second,
        threshold,
        b is None,
        state.truncated,
        time.perf_counter() - t0,
        choice,
        state.products,
    )


def winning_combos(
    a: Descriptors, b: Descriptors, combos: Sequence[Combo], ia: np.ndarray, ib: np.ndarray
) -> list[str]:
    """The name of the combination that gave each pair its score."""
    if len(combos) == 1 or ia.size == 0:
        return [combo_name(combos[0])] * int(ia.size) if combos else []
    scores = np.empty((ia.size, len(combos)), np.float32)
    step = 65536
    for k, (av, bv) in enumerate(combos):
        for s in range(0, ia.size, step):
            x = views(a.thumbs[ia[s : s + step]], av)
            y = views(b.thumbs[ib[s : s + step]], bv)
            scores[s : s + step, k] = (x * y).sum(axis=1)
    names = [combo_name(c) for c in combos]
    return [names[k] for k in scores.argmax(axis=1)]
