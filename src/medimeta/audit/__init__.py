"""Data audit: shared images across datasets, duplicates and subject leakage across splits,
suspect labels and class balance (``medimeta audit``; see ``docs/audit.md``).

* :func:`shared_image_sources`: candidate source ids -> reason, for the candidates that share
  images with a target (what the benchmark's source selection refuses).
* :func:`find_pairs`: exact and near-duplicate pairs within one dataset or across two, from
  :class:`Descriptors` (:func:`compute_descriptors`, cached by :class:`AuditCache`).
* :func:`medimeta.audit.run.run_audit`: the whole report (``report.json``, ``report.md``,
  ``pairs.csv``; the HTML page is :func:`medimeta.plots.audit_page.write_audit_page`'s); it
  is not imported here, so that this package stays light
  (numpy and h5py; no torch, no scikit-learn) for the benchmark's planner to import.
"""

from __future__ import annotations

from medimeta.audit.descriptors import Descriptors, compute_descriptors
from medimeta.audit.duplicates import PairTable, find_pairs
from medimeta.audit.pairing import THRESHOLD, PairResult, pair_datasets
from medimeta.audit.shared import SHARED_THRESHOLD, shared_image_sources
from medimeta.audit.store import AuditCache

__all__ = [
    "SHARED_THRESHOLD",
    "THRESHOLD",
    "AuditCache",
    "Descriptors",
    "PairResult",
    "PairTable",
    "compute_descriptors",
    "find_pairs",
    "pair_datasets",
    "shared_image_sources",
]
