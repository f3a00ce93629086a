"""Run a builder: scan, validate, check counts, stage archived files, write, clean up.

:func:`build_dataset` runs the registered builder of a dataset id; :func:`run_build` runs a
given :class:`~medimeta.builders.engine.registry.Builder`. Steps of :func:`run_build` (nothing
is written before step 4):

1. :func:`~medimeta.builders.engine.scan.scan_sources` merges the given paths into one tree.
2. :meth:`Builder.plan` locates and validates the raw tree and enumerates the records.
3. :func:`check_counts` compares the sample count and the source-split counts with the
   catalog; without ``partial`` any difference is an error, with it the build describes what
   it holds (info.yaml gets the actual counts and ``partial: true``). Then every missing file
   and problem is raised at once; unexpected files and warnings are logged.
4. Files inside tar or nested archives are copied once to ``<root>/.<id>.source-staging/``
   (removed afterwards, also on failure, and before the copy when a killed build left one;
   held under ``<root>/.medimeta/locks/source-<id>.lock``, so a second build of the same id
   waits and then finds the dataset published instead of copying again); zip members are
   read in place.
5. :func:`medimeta.format.writer.write_dataset` writes ``<root>/<id>`` atomically, with
   ``notes`` (deviations from the original pipeline) in info.yaml and ``split_manifest.json``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from medimeta.builders.engine.archives import close_cached_archives
from medimeta.builders.engine.registry import Builder, BuildPlan, get_builder
from medimeta.builders.engine.scan import scan_sources
from medimeta.builders.engine.source import SourceReport
from medimeta.builders.engine.staging import stage_files
from medimeta.builders.engine.tree import SourceFile
from medimeta.format.layout import default_root
from medimeta.format.record import SampleRecord
from medimeta.format.writer import write_dataset
from medimeta.format.writer.stage import check_target, remove_tree
from medimeta.splitting import MANIFEST_FILENAME

log = logging.getLogger("medimeta.builders")


@dataclass
class BuildResult:
    """What a build produced."""

    dataset_id: str
    path: Path
    num_samples: int
    partial: bool
    splits: dict[str, int]
    original_splits: dict[str, int]
    report: SourceReport
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return self.num_samples / self.seconds if self.seconds > 0 else 0.0


def check_counts(builder: Builder, plan: BuildPlan) -> None:
    """Compare totals and source-split counts with the catalog (errors unless partial)."""
    spec = builder.spec
    found = plan.counts(original=True)
    wanted = dict(spec.original_splits)
    lines = []
    if plan.num_samples != spec.num_samples:
        lines.append(f"{plan.num_samples} samples found; the release has {spec.num_samples}")
    several = sum(1 for v in wanted.values() if v) > 1
    for split in ("train", "val", "test"):
        if found[split] != wanted[split] and (several or not wanted[split]):
            lines.append(
                f"source split {split!r}: {found[split]} samples found; the release has "
                f"{wanted[split]}"
            )
    if not lines:
        return
    if plan.partial:
        plan.report.warnings.append("partial build: " + "; ".join(lines))
    else:
        plan.report.problems.extend(f"incomplete source: {line}" for line in lines)


def plan_build(
    builder: Builder,
    source: str | Path | Sequence[str | Path],
    *,
    partial: bool = False,
    raise_errors: bool = True,
) -> BuildPlan:
    """Steps 1-3: the validated plan.

    Raises SourceTreeError listing every problem, unless ``raise_errors`` is False (then the
    plan's ``report`` holds them; used by ``medimeta build --check``).
    """
    tree = scan_sources(source)
    plan = builder.plan(tree, partial=partial)
    if plan.records:
        check_counts(builder, plan)
    else:
        plan.report.problems.append(
            f"no {builder.dataset_id} samples found in {tree.describe()} "
            f"(expected: {builder.source_help})"
        )
    if raise_errors:
        plan.report.raise_for_errors()
        plan.report.log_warnings()
    return plan


def _files_in(obj: Any) -> list[SourceFile]:
    if isinstance(obj, SourceFile):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [f for item in obj for f in _files_in(item)]
    if isinstance(obj, dict):
        return [f for item in obj.values() for f in _files_in(item)]
    return []


def _swap(obj: Any, table: dict[str, SourceFile]) -> Any:
    if isinstance(obj, SourceFile):
        return table.get(obj.path, obj)
    if isinstance(obj, tuple):
        return tuple(_swap(item, table) for item in obj)
    if isinstance(obj, list):
        return [_swap(item, table) for item in obj]
    if isinstance(obj, dict):
        return {k: _swap(v, table) for k, v in obj.items()}
    return obj


def stage_records(records: list[SampleRecord], workdir: Path) -> list[SampleRecord]:
    """Records whose tar/nested-archive files were copied to ``workdir`` (others unchanged)."""
    files = {f.path: f for rec in records for f in _files_in(rec.source) if f.needs_staging}
    if not files:
        return records
    log.info("copying %d files out of tar/nested archives to %s", len(files), workdir)
    staged = stage_files(list(files.values()), workdir)
    table = {f.path: f for f in staged}
    return [replace(rec, source=_swap(rec.source, table)) for rec in records]


def run_build(
    builder: Builder,
    source: str | Path | Sequence[str | Path],
    *,
    root: str | Path | None = None,
    workers: int = 1,
    partial: bool = False,
    overwrite: bool = False,
    progress: bool | Callable[[int, int], None] = False,
) -> BuildResult:
    """Build ``builder.dataset_id`` from ``source`` into ``<root>/<id>`` (module docstring)."""
    start = time.perf_counter()
    plan = plan_build(builder, source, partial=partial)
    out_root = Path(root) if root is not None else default_root()
    out_root.mkdir(parents=True, exist_ok=True)
    info = builder.spec.to_info_dict()
    info.pop("splits_num_samples")  # filled in from the records by the writer
    extra_info: dict[str, Any] = {}
    if partial:
        extra_info["partial"] = True
    if plan.notes:
        extra_info["notes"] = list(plan.notes)
    manifest = json.dumps(plan.split_manifest, indent=2, ensure_ascii=False) + "\n"
    workdir = out_root / f".{builder.dataset_id}.source-staging"
    callback = _progress_printer(builder.dataset_id) if progress is True else progress or None
    # One build of an id at a time uses its source staging folder: a second one waits, then
    # finds the dataset published (and copies nothing), and a folder a killed build left is
    # removed before it is filled again.
    with _source_lock(out_root, builder.dataset_id):
        remove_tree(workdir)  # left by a killed build: nobody else can be using it now
        check_target(out_root, builder.dataset_id, overwrite=overwrite)
        try:
            records = stage_records(plan.records, workdir)
            path = write_dataset(
                out_root,
                info,
                records,
                plan.process,
                workers=workers,
                extra_info=extra_info,
                extra_files={MANIFEST_FILENAME: manifest.encode("utf-8")},
                aux_columns=plan.aux_columns,
                overwrite=overwrite,
                progress=callback,
            )
        finally:
            remove_tree(workdir)
            close_cached_archives()
    return BuildResult(
        dataset_id=builder.dataset_id,
        path=path,
        num_samples=plan.num_samples,
        partial=partial,
        splits=plan.counts(),
        original_splits=plan.counts(original=True),
        report=plan.report,
        notes=list(plan.notes),
        seconds=time.perf_counter() - start,
    )


def build_dataset(
    dataset_id: str,
    source: str | Path | Sequence[str | Path],
    *,
    root: str | Path | None = None,
    workers: int = 1,
    partial: bool = False,
    overwrite: bool = False,
    progress: bool = False,
) -> BuildResult:
    """Build ``dataset_id`` from its raw ``source`` into ``<root>/<dataset_id>``.

    ``source`` is the publisher's archive(s), the folder holding them, or the extracted tree
    (several paths are merged). Returns the :class:`BuildResult`. See :func:`run_build` for the
    steps.
    """
    return run_build(
        get_builder(dataset_id),
        source,
        root=root,
        workers=workers,
        partial=partial,
        overwrite=overwrite,
        progress=progress,
    )


@contextmanager
def _source_lock(root: Path, dataset_id: str) -> Iterator[None]:
    """``<root>/.medimeta/locks/source-<id>.lock``, held while the source staging folder of
    ``dataset_id`` exists (taken before the writer's build lock, never after it)."""
    from filelock import FileLock

    path = root / ".medimeta" / "locks" / f"source-{dataset_id}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path)):
        yield


def _progress_printer(dataset_id: str) -> Callable[[int, int], None]:
    step = {"next": 0.0}

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now >= step["next"]:
            step["next"] = now + 2.0
            log.info("%s: %d/%d images", dataset_id, done, total)

    return show
