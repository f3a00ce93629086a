"""How long an audit will take, printed before it starts.

* descriptors: the seconds per image measured on ``PROBE`` (256) images of the first dataset
  whose descriptors are not cached, times the images still to describe;
* pairing: the seconds per scored image pair measured on 2048 x 2048 tiles, times
  N (N - 1) / 2 per dataset and N_a x N_b per pair of datasets, for one combination
  (``full/full``), plus the sample that chooses the combinations (512 x N_large x 25 per
  pair of datasets); datasets that share images cost more: the combinations the sample keeps
  on all pairs and up to 25 on the unpaired images (the second pass,
  :mod:`medimeta.audit.pairing`);
* suspect labels: ``EMBED_S`` per image not in the embedding cache (EfficientNet-Lite0 at
  224 px on 2 CPU cores; a GPU is far faster) plus ``FIT_S`` per image and task for the
  cross-validated regression, both measured on ``bus`` (``benchmarks/audit.py``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from medimeta.audit.descriptors import compute_descriptors
from medimeta.audit.pairing import SAMPLE, Scan
from medimeta.audit.store import AuditCache
from medimeta.audit.views import SIDE, all_combos
from medimeta.format.reader import DatasetFolder

PROBE = 256
EMBED_S = 0.09
FIT_S = 0.013


def _pairs(n: list[int]) -> list[tuple[int, int]]:
    return [(n[i], n[j]) for i in range(len(n)) for j in range(i + 1, len(n))]


def _pair_rate() -> float:
    """Seconds per scored pair (product, maxima and threshold) on this machine: the median of
    three 2048 x 2048 tiles."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2048, SIDE * SIDE)).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b = a[::-1].copy()
    times = []
    for _ in range(3):
        state = Scan(2048, 2048, False, 0.95, 1000)
        t0 = time.perf_counter()
        state.add(a @ b.T, np.arange(2048), np.arange(2048))
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) / (2048 * 2048)


def _descriptor_rate(folder: DatasetFolder) -> float:
    """Seconds per image on ``PROBE`` images (after 16 to warm up)."""
    n = folder.num_samples
    compute_descriptors(folder, rows=np.arange(min(16, n)))
    rows = np.arange(min(16, n), min(16 + PROBE, n)) if n > 16 else np.arange(n)
    t0 = time.perf_counter()
    compute_descriptors(folder, rows=rows)
    return (time.perf_counter() - t0) / max(rows.size, 1)


def estimate(
    folders: Sequence[DatasetFolder],
    cache: AuditCache,
    *,
    within: bool = True,
    across: bool = True,
    labels: bool = True,
) -> dict[str, Any]:
    """The expected seconds of each stage (module docstring)."""
    sizes = {f.id: f.num_samples for f in folders}
    todo = [f for f in folders if cache.known_fingerprint(f.path) is None]
    per_image = 0.0
    if todo:
        per_image = _descriptor_rate(todo[0])
    to_describe = sum(f.num_samples for f in todo)
    n = list(sizes.values())
    within_pairs = sum(k * (k - 1) / 2 for k in n) if within else 0.0
    across_pairs = sum(x * y for x, y in _pairs(n)) if across else 0.0
    rate = _pair_rate()
    sample = (
        sum(min(SAMPLE, min(x, y)) * max(x, y) * len(all_combos()) for x, y in _pairs(n))
        if across
        else 0.0
    )
    fits = sum(f.num_samples * len(f.spec.tasks) for f in folders)
    total_images = sum(n)
    return {
        "images": total_images,
        "to_describe": to_describe,
        "descriptor_s_per_image": per_image,
        "descriptors_s": per_image * to_describe,
        "within_pairs": within_pairs,
        "across_pairs": across_pairs,
        "pair_s": rate,
        "sample_pairs": sample,
        "pairing_s": rate * (within_pairs + across_pairs + sample),
        "labels_s": (EMBED_S * total_images + FIT_S * fits) if labels else 0.0,
    }


def _s(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def describe(guess: dict[str, Any]) -> str:
    """One paragraph for the terminal."""
    lines = [
        f"estimate: descriptors {guess['to_describe']:,} images x "
        f"{guess['descriptor_s_per_image'] * 1e3:.2f} ms = {_s(guess['descriptors_s'])} "
        f"({guess['images'] - guess['to_describe']:,} cached)",
        f"          pairing {guess['within_pairs']:.3g} pairs within + "
        f"{guess['across_pairs']:.3g} across + {guess['sample_pairs']:.3g} sampled x "
        f"{guess['pair_s'] * 1e9:.2f} ns = {_s(guess['pairing_s'])} (more where datasets "
        "share images)",
    ]
    if guess["labels_s"]:
        lines.append(
            f"          suspect labels up to {_s(guess['labels_s'])} "
            "(less with cached features; --no-labels skips them)"
        )
    return "\n".join(lines)
