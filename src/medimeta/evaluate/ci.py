"""Confidence intervals: Student-t over episodes, percentile bootstrap over samples.

The t quantile is computed here (regularised incomplete beta + bisection) so the package
needs no scipy; it agrees with ``scipy.stats.t.ppf`` to ~1e-12 (tested).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medimeta.errors import ShapeError
from medimeta.evaluate.metrics import UndefinedMetricWarning


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz method)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for i in range(1, 10_000):
        m2 = 2 * i
        for numerator in (
            i * (b - i) * x / ((a - 1.0 + m2) * (a + m2)),
            -(a + i) * (a + b + i) * x / ((a + m2) * (a + 1.0 + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # The fraction converges fast only left of the mode; use the symmetry I_x(a,b)=1-I_{1-x}(b,a).
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_sf(t: float, df: float) -> float:
    """Upper tail P(T > t) of Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def student_t_ppf(p: float, df: float) -> float:
    """Quantile of Student's t: the t with P(T <= t) = p (0 < p < 1, df > 0)."""
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"need 0 < p < 1 and df > 0; got p={p}, df={df}")
    if p == 0.5:
        return 0.0
    upper = min(p, 1.0 - p)  # solve in the tail for full relative precision
    lo, hi = 0.0, 1.0
    while student_t_sf(hi, df) > upper:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if student_t_sf(mid, df) > upper:
            lo = mid
        else:
            hi = mid
    t = 0.5 * (lo + hi)
    return t if p > 0.5 else -t


def mean_ci(values: ArrayLike, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of its Student-t confidence interval: t_{(1+c)/2, n-1} * s / sqrt(n).

    ``s`` is the sample standard deviation (ddof=1). NaN values (e.g. episodes whose metric
    was undefined) are left out with an UndefinedMetricWarning saying how many. With one
    value the half-width is NaN; with none both are NaN.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    arr = np.asarray(values, dtype=np.float64).ravel()
    finite = arr[~np.isnan(arr)]
    if finite.size < arr.size:
        warnings.warn(
            f"mean_ci: left out {arr.size - finite.size} NaN of {arr.size} values",
            UndefinedMetricWarning,
            stacklevel=2,
        )
    if finite.size == 0:
        return float("nan"), float("nan")
    mean = float(np.mean(finite))
    if finite.size == 1:
        warnings.warn("mean_ci: one value gives no interval", UndefinedMetricWarning, stacklevel=2)
        return mean, float("nan")
    n = finite.size
    t = student_t_ppf(0.5 + confidence / 2.0, n - 1)
    return mean, float(t * np.std(finite, ddof=1) / math.sqrt(n))


class BootstrapCI(NamedTuple):
    """Point estimate on all samples and a percentile bootstrap interval."""

    estimate: float
    low: float
    high: float
    n_valid: int  # resamples whose metric was defined (not NaN)


def bootstrap_ci(
    metric_fn: Callable[[NDArray, NDArray], float],
    y_true: ArrayLike,
    scores: ArrayLike,
    n: int = 1000,
    seed: int | np.random.Generator = 0,
    confidence: float = 0.95,
) -> BootstrapCI:
    """Percentile bootstrap of ``metric_fn(y_true[idx], scores[idx])`` over resampled rows.

    Rows are drawn with replacement ``n`` times from ``np.random.default_rng(seed)``.
    Resamples where the metric is NaN (e.g. one class only) are dropped and counted; the
    interval is the (1-c)/2 and (1+c)/2 quantiles (numpy 'linear') of the rest.
    """
    if not 0.0 < confidence < 1.0 or n < 1:
        raise ValueError(f"need 0 < confidence < 1 and n >= 1; got {confidence}, {n}")
    y, s = np.asarray(y_true), np.asarray(scores)
    if y.shape[0] != s.shape[0] or y.shape[0] == 0:
        raise ShapeError(f"y_true has {y.shape[0]} rows and scores {s.shape[0]}; need equal > 0")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    estimate = float(metric_fn(y, s))
    values = np.empty(n, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for i in range(n):
            idx = rng.integers(0, y.shape[0], size=y.shape[0])
            values[i] = metric_fn(y[idx], s[idx])
    valid = values[~np.isnan(values)]
    if valid.size < n:
        warnings.warn(
            f"bootstrap_ci: metric undefined in {n - valid.size} of {n} resamples; dropped",
            UndefinedMetricWarning,
            stacklevel=2,
        )
    if valid.size == 0:
        return BootstrapCI(estimate, float("nan"), float("nan"), 0)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(valid, [alpha, 1.0 - alpha])
    return BootstrapCI(estimate, float(low), float(high), int(valid.size))
