"""Which candidate source datasets share images with a target: the benchmark's refusal rule.

:func:`shared_image_sources` compares the target with each candidate as ``medimeta audit``
does (exact hashes, then near duplicates at ``threshold``; views and combinations of
:mod:`medimeta.audit.pairing`, ``variants="auto"``) and returns the candidates to refuse, with
a reason. A candidate is refused when at least ``min_shared`` images of the target, or of the
candidate, have a partner on the other side:
``min_shared = max(MIN_COUNT, ceil(MIN_FRACTION x images of that side))`` (3 images and 1 %),
so a handful of look-alikes in one modality does not refuse a source while a real copy (90 %
of BreastMNIST in ``bus``) always does.

Threshold 0.95 (:data:`SHARED_THRESHOLD`), as for the audit. Measured on the real data (see
``docs/audit.md``): BreastMNIST against ``bus`` pairs 99 % of the images (99.9 % of the pairs
agree on malignancy); ``bus`` against ``pbc`` pairs none (the best score is 0.64).

Descriptors are cached per dataset (:mod:`medimeta.audit.store`) and each comparison's counts
are cached under the two fingerprints and the settings, so a second call reads two JSON files
and stats two HDF5 files.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medimeta.audit.descriptors import params
from medimeta.audit.duplicates import find_pairs, paired_mask
from medimeta.audit.pairing import THRESHOLD
from medimeta.audit.store import AuditCache
from medimeta.audit.views import CROPS
from medimeta.format.reader import DatasetFolder, locate_dataset
from medimeta.paths import cache_dir

SHARED_THRESHOLD = THRESHOLD
MIN_FRACTION = 0.01
MIN_COUNT = 3


def share_counts(
    cache: AuditCache,
    target: DatasetFolder,
    candidate: DatasetFolder,
    threshold: float = SHARED_THRESHOLD,
    variants: str = "auto",
) -> dict[str, Any]:
    """How many images of each side have a partner on the other (cached)."""
    known = [cache.known_fingerprint(f.path) for f in (target, candidate)]
    key: dict[str, Any] = {
        "target": known[0],
        "candidate": known[1],
        "threshold": threshold,
        "variants": variants,
        "crops": list(CROPS),
        "descriptor": params(),
    }
    if None not in known:
        hit = cache.read_summary(target.id, candidate.id, key)
        if hit is not None:
            return {**hit, "from_cache": True}
    dt, dc = cache.descriptors(target), cache.descriptors(candidate)
    key.update(target=dt.fingerprint, candidate=dc.fingerprint)
    table = find_pairs(dt, dc, threshold=threshold, variants=variants, max_pairs=100_000)
    summary = {
        "target_id": target.id,
        "candidate_id": candidate.id,
        "target_images": len(dt),
        "target_shared": int(paired_mask(table, "a").sum()),
        "candidate_images": len(dc),
        "candidate_shared": int(paired_mask(table, "b").sum()),
        "exact_pairs": int(table.exact.sum()),
        "best_score": float(table.result.best_a.max()) if len(dt) else 0.0,
    }
    cache.write_summary(target.id, candidate.id, key, summary)
    return {**summary, "from_cache": False}


def refusal(counts: dict[str, Any], threshold: float) -> str | None:
    """The reason to refuse a candidate with these counts, or None."""
    need_t = max(MIN_COUNT, math.ceil(MIN_FRACTION * counts["target_images"]))
    need_c = max(MIN_COUNT, math.ceil(MIN_FRACTION * counts["candidate_images"]))
    if counts["target_shared"] < need_t and counts["candidate_shared"] < need_c:
        return None
    return (
        f"shares {counts['candidate_shared']:,} of {counts['candidate_images']:,} images with "
        f"{counts['target_id']} ({counts['target_shared']:,} of the "
        f"{counts['target_images']:,} {counts['target_id']} images; audit, score ≥ "
        f"{threshold:.2f})"
    )


def shared_image_sources(
    root: str | Path,
    target_id: str,
    candidates: Iterable[str],
    threshold: float = SHARED_THRESHOLD,
    *,
    cache: str | Path | None = None,
    variants: str = "auto",
) -> dict[str, str]:
    """Candidate dataset id -> reason, for each candidate that shares images with the target.

    ``root``: the data root holding the target and the candidates (a missing one is an
    error). ``threshold``: the pair score (0.95 by default, module docstring). ``cache``: the
    cache folder (default ``$MEDIMETA_CACHE``, else ``<root>/.cache``). The target itself is
    skipped. Example: ``{"breastmnist": "shares 773 of 780 images with bus (772 of the 780
    bus images; audit, score ≥ 0.95)"}``.
    """
    store = AuditCache(cache_dir(cache, root))
    target = DatasetFolder(locate_dataset(root, target_id), check=False)
    out: dict[str, str] = {}
    for cand_id in dict.fromkeys(candidates):
        if cand_id == target.id:
            continue
        candidate = DatasetFolder(locate_dataset(root, cand_id), check=False)
        reason = refusal(share_counts(store, target, candidate, threshold, variants), threshold)
        if reason is not None:
            out[cand_id] = reason
    return out
