"""Calibration parts: what the benchmark's cost models time, and how a part is timed.

A method declares the parts its cost model reads (``calibration``) and may contribute parts
of its own (``measures``: a :data:`Measure` per name); :mod:`medimeta.bench.calibrate` runs
them on a :class:`Probe` and caches the results.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from medimeta.features.reader import EpisodeReader
from medimeta.models.backbone import Backbone


@dataclass(frozen=True)
class Probe:
    """What a calibration part times: a backbone, the reader preparing its input and the
    input side. :meth:`batch` gives prepared random images of that size (three channels:
    the backbone sees three whatever the dataset stores, so grey and RGB targets of one size
    share one calibration)."""

    backbone: Backbone
    reader: EpisodeReader
    size: int

    def batch(self, n: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(n)
        x = torch.randint(0, 256, (n, 3, self.size, self.size), generator=gen, dtype=torch.uint8)
        return self.reader.prepare(x)


#: A calibration part a method contributes: a probe -> timings.
Measure = Callable[[Probe], dict[str, Any]]
#: Seconds a calibration part may spend on repeats after its first timed call.
TIME_BUDGET_S = 2.0


def timed(fn: Callable[[], Any], repeats: int = 3) -> float:
    """Calibration timing: the fastest of up to ``repeats`` calls after a warm-up call (on a
    shared machine the fastest is the least disturbed one); repeats stop once they have taken
    :data:`TIME_BUDGET_S`, so a slow part is timed once, never for minutes."""
    fn()  # warm-up: allocations, oneDNN kernels
    times: list[float] = []
    spent = 0.0
    while len(times) < repeats and (not times or spent < TIME_BUDGET_S):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        spent += times[-1]
    return float(min(times))
