"""``medimeta audit``: descriptors, duplicate pairs within and across datasets, subject
leakage, class and split balance and suspect labels, written as a report.

:func:`run_audit` prints an estimate first (:mod:`medimeta.audit.estimate`), then works
dataset by dataset; the files are written by :mod:`medimeta.audit.report`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medimeta.audit import estimate as E
from medimeta.audit.context import DatasetFacts
from medimeta.audit.descriptors import Descriptors, params
from medimeta.audit.duplicates import PairTable, find_pairs
from medimeta.audit.gallery import CAP
from medimeta.audit.labels import FOLDS, dataset_features, suspect_labels
from medimeta.audit.leakage import balance, subject_leakage
from medimeta.audit.pairing import BLOCK, MAX_PAIRS, THRESHOLD
from medimeta.audit.report import write_outputs
from medimeta.audit.store import AuditCache
from medimeta.audit.summary import across_summary, dataset_pairs, within_summary
from medimeta.audit.views import CROPS
from medimeta.errors import MedIMetaError, UnknownNameError
from medimeta.format.reader import DatasetFolder, find_datasets, locate_dataset
from medimeta.logs import Log, plural
from medimeta.paths import cache_dir


@dataclass
class AuditOptions:
    """What to audit and how (the CLI's options)."""

    threshold: float = THRESHOLD
    variants: str = "auto"
    within: bool = True
    across: bool = True
    labels: bool = True
    tasks: tuple[str, ...] = ()
    folds: int = FOLDS
    feature_size: int | None = None
    subject_columns: tuple[str, ...] = ()
    block: int = BLOCK
    max_pairs: int = MAX_PAIRS
    cache: Path | None = None
    persist: bool = True
    pictures: int = CAP  # examples pictured per section (0: none)
    html_page: bool = True  # report.md links audit.html (the command writes it unless --no-html)


@dataclass
class AuditRun:
    """The report (as written to report.json), the pair tables and the files written."""

    report: dict[str, Any]
    tables: list[PairTable] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)


def audit_folders(root: str | Path, ids: Sequence[str]) -> list[DatasetFolder]:
    """The datasets named by ``ids`` (default: every dataset in ``root``)."""
    if ids:
        return [DatasetFolder(locate_dataset(root, i)) for i in dict.fromkeys(ids)]
    found = find_datasets(root)
    if not found:
        raise MedIMetaError(f"no dataset folders in {root}; pass --root or dataset ids")
    return [DatasetFolder(p) for p in found.values()]


def check_tasks(folders: Sequence[DatasetFolder], tasks: Sequence[str]) -> None:
    """Every name of ``--task`` is a task of at least one audited dataset (else the closest
    names, before anything is computed)."""
    known = {t.name for f in folders for t in f.spec.tasks}
    for name in tasks:
        if name not in known:
            where = ", ".join(f.id for f in folders)
            raise UnknownNameError("task", name, known, where=f"the audited datasets ({where})")


def _descriptors(
    facts: dict[str, DatasetFacts], cache: AuditCache, log: Log
) -> dict[str, Descriptors]:
    out = {}
    for ds_id, f in facts.items():
        d = cache.descriptors(f.folder, log=log)
        how = "from the cache" if d.from_cache else f"computed in {d.seconds:.1f} s"
        log(f"descriptors of {ds_id}: {plural(len(d), 'image', thousands=True)}, {how}")
        out[ds_id] = d
    return out


def _tables(
    facts: dict[str, DatasetFacts], desc: dict[str, Descriptors], opts: AuditOptions, log: Log
) -> tuple[list[PairTable], list[dict[str, Any]], list[dict[str, Any]]]:
    kw: dict[str, Any] = {
        "threshold": opts.threshold,
        "variants": opts.variants,
        "crops": CROPS,
        "max_pairs": opts.max_pairs,
        "block": opts.block,
    }
    tables, within, across = [], [], []
    if opts.within:
        for ds_id in facts:
            t = find_pairs(desc[ds_id], **kw)
            tables.append(t)
            within.append(within_summary(t, facts[ds_id]))
            log(
                f"within {ds_id}: {plural(len(t), 'pair', thousands=True)} "
                f"({t.result.seconds:.1f} s)"
            )
    if opts.across:
        for a, b in dataset_pairs(list(facts)):
            t = find_pairs(desc[a], desc[b], **kw)
            tables.append(t)
            s = across_summary(t, facts[a], facts[b])
            across.append(s)
            log(
                f"{a} x {b}: {plural(len(t), 'pair', thousands=True)}; "
                f"{s['a_paired']:,} of {s['a_images']:,} {a} and "
                f"{s['b_paired']:,} of {s['b_images']:,} {b} images paired "
                f"({t.result.seconds:.1f} s)"
            )
    return tables, within, across


def _dataset_section(
    root: Path, f: DatasetFacts, d: Descriptors, opts: AuditOptions, log: Log
) -> dict[str, Any]:
    section: dict[str, Any] = {
        "id": f.id,
        "path": str(f.folder.path),
        "images": f.num_samples,
        "channels": f.folder.num_channels,
        "fingerprint": d.fingerprint,
        "flat_images": int(d.flat.sum()),
        "splits": {k: int(v) for k, v in f.folder.split_counts().items()},
        "subjects": subject_leakage(f, opts.subject_columns),
        "balance": balance(f),
    }
    if opts.labels:
        t0 = time.perf_counter()
        feats = dataset_features(
            root, f.id, cache=opts.cache, image_size=opts.feature_size, log=log
        )
        section["suspect_labels"] = suspect_labels(f, feats, tasks=opts.tasks, folds=opts.folds)
        n = sum(t["issues"] for t in section["suspect_labels"])
        log(f"labels of {f.id}: {n:,} suspect ({time.perf_counter() - t0:.1f} s)")
    return section


def run_audit(
    root: str | Path,
    ids: Sequence[str],
    out: str | Path,
    options: AuditOptions | None = None,
    log: Log = print,
) -> AuditRun:
    """Audit the datasets ``ids`` of ``root`` (default all) and write the report to ``out``."""
    opts = options or AuditOptions()
    root = Path(root)
    t0 = time.perf_counter()
    folders = audit_folders(root, ids)
    if opts.labels:
        check_tasks(folders, opts.tasks)
    facts = {f.id: DatasetFacts(f) for f in folders}
    cache = AuditCache(cache_dir(opts.cache, root), persist=opts.persist)
    guess = E.estimate(folders, cache, within=opts.within, across=opts.across, labels=opts.labels)
    log(E.describe(guess))
    timings: dict[str, float] = {}
    t = time.perf_counter()
    desc = _descriptors(facts, cache, log)
    timings["descriptors_s"] = time.perf_counter() - t
    t = time.perf_counter()
    tables, within, across = _tables(facts, desc, opts, log)
    timings["pairing_s"] = time.perf_counter() - t
    t = time.perf_counter()
    sections = {i: _dataset_section(root, facts[i], desc[i], opts, log) for i in facts}
    timings["datasets_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    report = {
        "audit": {
            "root": str(root),
            "datasets": list(facts),
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
            "descriptor": params(),
            "crops": list(CROPS),
            "cache": str(cache.directory) if cache.persist else None,
            "estimate": guess,
            "timings": {k: round(v, 3) for k, v in timings.items()},
        },
        "datasets": sections,
        "within": within,
        "across": across,
    }
    files = write_outputs(Path(out), report, tables, facts, desc, opts.pictures)
    return AuditRun(report, tables, files)
