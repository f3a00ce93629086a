"""The multi-label cover: guarantee, minimality, exclusions and explicit shortfall."""

from __future__ import annotations

import numpy as np
import pytest

from medimeta.episodes.multilabel import Shortfall, draw_cover
from medimeta.errors import EpisodeError


def problem(seed: int, units: int = 200, labels: int = 6, rate: float = 0.3):
    rng = np.random.default_rng(seed)
    pos = rng.random((units, labels)) < rate
    neg = ~pos
    cands = [(np.flatnonzero(pos[:, c]), np.flatnonzero(neg[:, c])) for c in range(labels)]
    return pos, neg, cands


@pytest.mark.parametrize("seed", range(8))
def test_guarantee_and_minimality(seed: int) -> None:
    pos, neg, cands = problem(seed)
    cols = np.array([0, 2, 3, 5])
    k = 4
    got = draw_cover(np.random.default_rng(seed), pos, neg, cands, cols, k)
    assert np.unique(got).size == got.size
    p, n = pos[got][:, cols].sum(0), neg[got][:, cols].sum(0)
    assert (p >= k).all() and (n >= k).all()
    assert got.size <= 2 * k * cols.size
    for u in got:  # no unit can be dropped without breaking the guarantee
        rest = got[got != u]
        assert not (
            (pos[rest][:, cols].sum(0) >= k).all() and (neg[rest][:, cols].sum(0) >= k).all()
        )


def test_excluded_units_are_never_used() -> None:
    pos, neg, cands = problem(1)
    excluded = np.zeros(pos.shape[0], dtype=bool)
    excluded[::2] = True
    cols = np.arange(6)
    got = draw_cover(np.random.default_rng(0), pos, neg, cands, cols, 3, excluded)
    assert not excluded[got].any()
    assert (pos[got].sum(0) >= 3).all() and (neg[got].sum(0) >= 3).all()


def test_rare_label_exhausted_is_reported() -> None:
    pos, neg, cands = problem(2)
    pos[:, 1] = False
    pos[:3, 1] = True  # label 1: three positive units
    neg = ~pos
    cands = [(np.flatnonzero(pos[:, c]), np.flatnonzero(neg[:, c])) for c in range(6)]
    cols = np.array([1])
    got = draw_cover(np.random.default_rng(0), pos, neg, cands, cols, 3)
    assert set(got.tolist()) >= {0, 1, 2}
    excluded = np.zeros(pos.shape[0], dtype=bool)
    excluded[0] = True
    with pytest.raises(Shortfall, match="label column 1: only 2 positive") as info:
        draw_cover(np.random.default_rng(0), pos, neg, cands, cols, 3, excluded)
    assert isinstance(info.value, EpisodeError)


def test_zero_shots_is_empty() -> None:
    pos, neg, cands = problem(3)
    assert draw_cover(np.random.default_rng(0), pos, neg, cands, np.arange(6), 0).size == 0


def test_uses_only_the_given_generator() -> None:
    pos, neg, cands = problem(4)
    a = draw_cover(np.random.default_rng(9), pos, neg, cands, np.arange(6), 2)
    np.random.seed(123)
    b = draw_cover(np.random.default_rng(9), pos, neg, cands, np.arange(6), 2)
    assert np.array_equal(a, b)
