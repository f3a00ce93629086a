"""``verify``: check a dataset folder against its info.yaml and the MedIMeta format."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medimeta.errors import MedIMetaError
from medimeta.format import invariants, layout
from medimeta.format.reader import DatasetFolder
from medimeta.logs import plural

TIFF_SAMPLES = 8  # TIFF-vs-HDF5 rows compared when not ``deep``


@dataclass
class VerifyReport:
    """Outcome of verifying one folder: passed checks, problems (errors) and warnings."""

    path: Path
    dataset_id: str | None = None
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        head = f"{self.dataset_id or '?'} ({self.path}): {'OK' if self.ok else 'FAILED'}"
        lines = [head]
        lines += [f"  ok    {c}" for c in self.checks]
        lines += [f"  WARN  {w}" for w in self.warnings]
        lines += [f"  ERROR {p}" for p in self.problems]
        return "\n".join(lines)


def verify_dataset(path: str | Path, *, deep: bool = False) -> VerifyReport:
    """Run every check on ``path``; ``deep`` compares all TIFFs with the HDF5 rows."""
    report = VerifyReport(Path(path))
    try:
        folder = DatasetFolder(path, check=False)  # every rule is reported below
    except (MedIMetaError, OSError) as exc:
        report.problems.append(f"info.yaml: {exc}")
        return report
    report.dataset_id = folder.id
    report.checks.append(
        f"info.yaml parsed: {plural(folder.num_samples, 'sample')}, "
        f"{plural(len(folder.spec.tasks), 'task')}"
    )
    steps: list[Callable[[DatasetFolder, VerifyReport], None]] = [
        _check_catalog,
        _check_license,
        _check_hdf5,
        lambda f, r: _check_tiffs(f, r, deep=deep),
        _check_labels,
        lambda f, r: _check_splits(f, r, original=False),
        lambda f, r: _check_splits(f, r, original=True),
        _check_annotations,
    ]
    for step in steps:
        try:
            step(folder, report)
        except (MedIMetaError, OSError, ValueError, KeyError) as exc:
            report.problems.append(str(exc))
    return report


def _check_catalog(folder: DatasetFolder, report: VerifyReport) -> None:
    from medimeta.catalog import get_catalog

    catalog = get_catalog()
    if folder.id not in catalog:
        report.checks.append("not a release dataset id: catalog comparison skipped")
        return
    ref = catalog.get(folder.id)
    spec = folder.spec
    partial = bool(folder.info.get("partial"))
    differences = []
    if [t.name for t in spec.tasks] != [t.name for t in ref.tasks]:
        differences.append(
            f"tasks {[t.name for t in spec.tasks]} != catalog {[t.name for t in ref.tasks]}"
        )
    for t in spec.tasks:
        if t.name in [r.name for r in ref.tasks] and dict(t.labels) != dict(
            ref.task(t.name).labels
        ):
            differences.append(f"labels of task {t.name!r} differ from the catalog")
    if spec.input_size != ref.input_size:
        differences.append(f"input_size {spec.input_size} != catalog {ref.input_size}")
    if spec.num_samples != ref.num_samples:
        msg = f"total_num_samples {spec.num_samples} != release {ref.num_samples}"
        (report.warnings if partial else differences).append(
            msg + (" (partial build)" if partial else "")
        )
    for d in differences:
        report.problems.append(f"{folder.info_path}: {d}")
    if not differences:
        report.checks.append("info.yaml agrees with the catalog")


def _check_license(folder: DatasetFolder, report: VerifyReport) -> None:
    if (folder.path / layout.LICENSE_FILE).is_file():
        report.checks.append("LICENSE present")
    else:
        report.warnings.append(
            f"{folder.path / layout.LICENSE_FILE}: missing (licence: {folder.spec.license})"
        )


def _check_hdf5(folder: DatasetFolder, report: VerifyReport) -> None:
    store = folder.image_store("auto")  # validates shape and dtype
    report.checks.append(f"images.hdf5: shape {store.shape}, uint8, backend {store.backend}")


def _check_tiffs(folder: DatasetFolder, report: VerifyReport, *, deep: bool) -> None:
    image_dir = folder.path / layout.IMAGES_DIR
    if not image_dir.is_dir():
        report.warnings.append(f"{image_dir}: no TIFF folder (HDF5-only copy)")
        return
    n = folder.num_samples
    names = {p.name for p in image_dir.iterdir()}
    expected = {layout.image_name(i).split("/")[1] for i in range(n)}
    missing = sorted(expected - names)
    extra = sorted(names - expected)
    if missing:
        report.problems.append(
            f"{image_dir}: {len(missing)} of {n} TIFFs missing (first: {missing[0]})"
        )
        return
    if extra:
        report.warnings.append(f"{image_dir}: {len(extra)} unexpected files (first: {extra[0]})")
    rows = (
        np.arange(n) if deep else np.unique(np.linspace(0, n - 1, min(n, TIFF_SAMPLES)).astype(int))
    )
    hdf5 = folder.image_store("auto")
    tiff = folder.image_store("tiff")
    for i in rows.tolist():
        if not np.array_equal(hdf5.read(i), tiff.read(i)):
            report.problems.append(
                f"{folder.path / layout.image_name(i)}: pixels differ from images.hdf5 row {i}"
            )
            return
    report.checks.append(f"TIFF files: {n} present, {len(rows)} compared with HDF5, identical")


def _check_labels(folder: DatasetFolder, report: VerifyReport) -> None:
    for task in folder.spec.tasks:
        try:
            arr = folder.labels(task.name)
        except (MedIMetaError, OSError) as exc:
            report.problems.append(str(exc))
            continue
        report.checks.append(
            f"labels {task.name!r}: shape {arr.shape}, values within {task.target.short} keys"
        )


def _check_splits(folder: DatasetFolder, report: VerifyReport, *, original: bool) -> None:
    kind = "original_splits" if original else "splits"
    problems = invariants.split_problems(folder, folder._read_split, original=original)
    report.problems += [str(p) for p in problems]
    for split in layout.SPLIT_NAMES:
        path = layout.split_path(folder.path, split, original=original)
        if path.is_file() and path.read_bytes().endswith(b"\n"):
            report.warnings.append(f"{path}: trailing newline (the release writes none)")
    if not problems:
        counts = folder.split_counts(original=original)
        report.checks.append(f"{kind}: disjoint and covering ({dict(counts)})")


def _check_annotations(folder: DatasetFolder, report: VerifyReport) -> None:
    path = folder.path / layout.ANNOTATIONS_FILE
    if not path.is_file():
        report.warnings.append(f"{path}: missing")
        return
    frame = folder.read_annotations()
    problems = invariants.annotation_problems(folder, frame)
    report.problems += [str(p) for p in problems]
    if not problems:
        report.checks.append(
            f"annotations.csv: {plural(len(frame), 'row')}, {plural(len(frame.columns), 'column')}"
        )
