"""Multi-label sets with at least k positive and k negative units for every chosen label.

Algorithm (``draw_cover``), over units (samples, or subjects with all their images):

1. *Needs*: for every chosen label, "k positives" and "k negatives". They are visited rarest
   first (fewest candidate units), so scarce needs are filled before common ones are met as a
   by-product of other picks.
2. *Fill*: while a need is unmet, add one unit drawn uniformly from the units that meet it and
   are not yet in the set nor excluded (the support, when drawing the query). Each added unit
   updates the counts of every chosen label.
3. *Prune*: visit the set in random order and drop every unit whose removal keeps all counts
   at >= k, so the result is minimal (no single unit can be removed).

Guarantee: a returned set has >= k positive and >= k negative units for every chosen label.
Adding a unit never lowers a count, so step 2 fails exactly when a need has fewer than k
candidates outside the excluded units; that is then reported with an EpisodeError naming the
label, never silently. Size: at most ``2 k L`` units (each pick raises a count that was below
k); after pruning usually far fewer, as one unit meets several needs.

Cost per set: ``O(k L^2)`` for the count updates plus, per pick, an expected O(1) rejection
draw (a vectorised O(candidates) fallback once most candidates are taken). Nothing scans the
whole (units x labels) matrix per episode.

With support and query drawn one after the other, the query can run short where the support
took most units of a rare label; the sampler then redraws the pair from the same per-episode
generator (deterministic) a bounded number of times before raising.
"""

from __future__ import annotations

import numpy as np

from medimeta.errors import EpisodeError

_REJECTION_TRIES = 16


class Shortfall(EpisodeError):
    """A need cannot be met from the units left (lets the sampler redraw, then report)."""


def _draw_free(
    rng: np.random.Generator, candidates: np.ndarray, taken: set[int], excluded: np.ndarray | None
) -> int | None:
    """A uniform draw from ``candidates`` minus ``taken`` and ``excluded`` (None if empty)."""
    n = candidates.size
    if n == 0:
        return None
    for _ in range(_REJECTION_TRIES):
        unit = int(candidates[rng.integers(n)])
        if unit not in taken and (excluded is None or not excluded[unit]):
            return unit
    free = np.ones(n, dtype=bool)
    if taken:
        free &= ~np.isin(candidates, np.fromiter(taken, dtype=np.int64, count=len(taken)))
    if excluded is not None:
        free &= ~excluded[candidates]
    left = candidates[free]
    return int(left[rng.integers(left.size)]) if left.size else None


def draw_cover(
    rng: np.random.Generator,
    positive: np.ndarray,
    negative: np.ndarray,
    candidates: list[tuple[np.ndarray, np.ndarray]],
    columns: np.ndarray,
    shots: int,
    excluded: np.ndarray | None = None,
) -> np.ndarray:
    """Units (positions into the masks) meeting ``shots`` positives and negatives per column.

    ``positive``/``negative`` are (U, L) masks "unit has a positive/negative of label l";
    ``candidates[l]`` holds ``(flatnonzero(positive[:, l]), flatnonzero(negative[:, l]))``;
    ``columns`` are the chosen labels; ``excluded`` is an optional (U,) mask of forbidden units.
    Raises :class:`Shortfall` when a need cannot be met.
    """
    if shots <= 0:
        return np.empty(0, dtype=np.int64)
    needs = [(int(c), pol) for c in columns for pol in (True, False)]
    needs.sort(key=lambda need: candidates[need[0]][0 if need[1] else 1].size)
    slot = {int(c): i for i, c in enumerate(columns)}
    pos_count = np.zeros(len(columns), dtype=np.int64)
    neg_count = np.zeros(len(columns), dtype=np.int64)
    chosen: list[int] = []
    taken: set[int] = set()
    for col, pol in needs:
        counts = pos_count if pol else neg_count
        pool = candidates[col][0 if pol else 1]
        while counts[slot[col]] < shots:
            unit = _draw_free(rng, pool, taken, excluded)
            if unit is None:
                side = "positive" if pol else "negative"
                raise Shortfall(
                    f"label column {col}: only {int(counts[slot[col]])} {side} units available "
                    f"outside the excluded ones, {shots} needed"
                )
            chosen.append(unit)
            taken.add(unit)
            pos_count += positive[unit, columns]
            neg_count += negative[unit, columns]
    keep = dict.fromkeys(chosen, True)
    for unit in rng.permutation(np.array(chosen, dtype=np.int64)).tolist():
        p, n = positive[unit, columns], negative[unit, columns]
        if np.all(pos_count - p >= shots) and np.all(neg_count - n >= shots):
            keep[unit] = False
            pos_count -= p
            neg_count -= n
    return np.array([u for u in chosen if keep[u]], dtype=np.int64)
