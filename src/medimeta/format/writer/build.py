"""Write a dataset folder in the MedIMeta release format, in parallel, resumably, atomically.

::

    write_dataset(root, info, records, process, workers=2)

``records`` is a list of :class:`SampleRecord` (position = global index, sorted by the caller),
``process(record)`` a picklable top-level function returning the 224x224 image (PIL or uint8
array), optionally with a dict of extra annotations and a dict of auxiliary images
(``{"masks": mask}`` is written as ``masks/NNNNNN.tiff``). Everything is validated before the
first image is made: every label against its task, split names, the info mapping.

Atomicity and resume: the build runs in ``<root>/.<id>.partial-<fingerprint>/`` and is renamed
to ``<root>/<id>`` only when complete and verified. A killed build leaves only that hidden
staging folder. Re-running the same build (same fingerprint: info, records, processing
function and its arguments, licence, extra files) **resumes** after the last sample whose
outputs are intact (CRC-checked); anything else **starts clean**, and ``resume=False`` forces
that. An existing ``<root>/<id>`` is never replaced without ``overwrite=True``.
"""

from __future__ import annotations

import gc
import json
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from medimeta.catalog import DatasetSpec, TaskTarget
from medimeta.errors import BuildError, DatasetExistsError
from medimeta.format import layout
from medimeta.format.record import SampleRecord
from medimeta.format.writer.files import (
    annotation_columns,
    cell_text,
    label_name,
    license_text,
    sync_tree,
    write_annotations,
    write_split_files,
    write_task_labels,
)
from medimeta.format.writer.images import (
    Failure,
    ImageJob,
    ProcessFn,
    Produced,
    RowWriter,
    check_aux_folder,
    count_intact,
    create_hdf5,
    init_worker,
    produce,
    run_item,
)
from medimeta.format.writer.inputs import BuildInputs
from medimeta.format.writer.records import (
    check_extra_files,
)
from medimeta.format.writer.stage import (
    JOURNAL_FILE,
    Journal,
    check_target,
    publish,
    read_build_file,
    remove_tree,
    staging_dir,
    stale_staging,
    terminate_as_interrupt,
    write_build_file,
)

__all__ = ["default_workers", "write_dataset"]

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]


def write_dataset(
    root: str | Path,
    info: DatasetSpec | Mapping[str, Any] | str | Path,
    records: Sequence[SampleRecord],
    process: ProcessFn,
    *,
    workers: int = 1,
    chunksize: int | None = None,
    extra_info: Mapping[str, Any] | None = None,
    license_notice: str | None = None,
    extra_files: Mapping[str, str | Path | bytes] | None = None,
    aux_columns: Mapping[str, str] | None = None,
    overwrite: bool = False,
    resume: bool = True,
    verify: bool = True,
    build_tag: str = "",
    start_method: str | None = None,
    progress: ProgressFn | None = None,
) -> Path:
    """Build ``<root>/<id>`` from ``records``; return its path.

    ``info``: a DatasetSpec, an info mapping (counts are filled in from the records, or checked
    if present), or the path of an info.yaml to copy byte for byte. ``extra_info``: extra
    top-level info.yaml keys (``partial``, ``notes``, provenance). ``license_notice``: LICENSE
    text (default: derived from the info's licence). ``extra_files``: relative path -> source
    file or bytes, copied into the folder. ``aux_columns``: auxiliary image folder -> the
    annotations.csv column that gets its relative path. ``workers``: processes for
    ``process`` (1 = in this process); the output is byte-identical for every value.
    """
    build = _Build(root, info, records, process, extra_info, build_tag)
    build.license = license_notice or license_text(build.spec.license)
    build.extra_files = check_extra_files(extra_files or {})
    build.aux_columns = dict(aux_columns or {})
    for folder, column in build.aux_columns.items():
        check_aux_folder(folder)
        if column in build.reserved:
            raise BuildError(f"aux column {column!r} clashes with a column the writer fills")
    return build.run(
        workers=workers,
        chunksize=chunksize,
        overwrite=overwrite,
        resume=resume,
        verify=verify,
        start_method=start_method,
        progress=progress,
    )


class _Build(BuildInputs):
    """One build: validated inputs, then staging, image production, finishing, publishing."""

    # -- staging ---------------------------------------------------------------------------
    def _open_staging(self, resume: bool) -> int:
        n, channels = len(self.records), self.spec.num_channels
        meta = read_build_file(self.staging)
        wanted = {"fingerprint": self.fp, "num_samples": n, "num_channels": channels}
        self.folder = self.staging / self.spec.id
        self.journal = Journal(self.staging / JOURNAL_FILE)
        if (
            resume
            and meta
            and all(meta.get(k) == v for k, v in wanted.items())
            and (self.folder / layout.HDF5_FILE).is_file()
        ):
            self.job = ImageJob(str(self.folder), channels, int(meta["hdf5_offset"]))
            entries, ends = self.journal.read()
            done = count_intact(self.folder, self.job, entries)
            for entry in entries[:done]:
                self.produced_columns.update(entry["annotations"])
            self.journal.open(ends[done - 1] if done else 0)
            (self.folder / layout.INFO_FILE).unlink(missing_ok=True)
            return done
        remove_tree(self.staging)
        (self.folder / layout.IMAGES_DIR).mkdir(parents=True)
        offset = create_hdf5(self.folder / layout.HDF5_FILE, n, channels)
        self.job = ImageJob(str(self.folder), channels, offset)
        write_build_file(
            self.staging, {**wanted, "hdf5_offset": offset, "dataset_id": self.spec.id}
        )
        self.journal.open(0)
        return 0

    # -- producing images -------------------------------------------------------------------
    def _accept(self, result: Produced | Failure) -> None:
        if isinstance(result, Failure):
            rec = self.records[result.index]
            # the worker's traceback is for whoever debugs process(): the log, not the message
            logger.debug("record %d failed in a worker:\n%s", result.index, result.trace)
            error = BuildError(
                f"record {result.index} ({rec.original_filepath}): {result.kind}: "
                f"{result.message}. Outputs of records 0..{result.index - 1} are kept; fix the "
                "source or process() and re-run to resume (--debug shows the worker's traceback)"
            )
            error.worker_traceback = result.trace  # type: ignore[attr-defined]
            raise error
        rec = self.records[result.index]
        clash = (self.reserved | set(rec.annotations)).intersection(result.annotations)
        if clash:
            raise BuildError(
                f"record {result.index} ({rec.original_filepath}): process() returned "
                f"annotation(s) {sorted(clash)} that are reserved or already in the record"
            )
        self.produced_columns.update(result.annotations)
        self.journal.append(result)

    def _produce(
        self,
        start: int,
        workers: int,
        chunksize: int | None,
        start_method: str | None,
        progress: ProgressFn | None,
    ) -> None:
        n = len(self.records)
        hdf5 = self.folder / layout.HDF5_FILE
        items = ((i, self.records[i]) for i in range(start, n))
        if start:
            logger.info(
                "%s: resuming an interrupted build at sample %d of %d", self.spec.id, start, n
            )
        if progress:
            progress(start, n)
        if workers <= 1:
            rows = RowWriter(hdf5, self.job)
            try:
                for i, rec in items:
                    try:
                        result = produce(self.job, rows, self.process, i, rec)
                    except Exception as exc:
                        raise BuildError(
                            f"record {i} ({rec.original_filepath}): {type(exc).__name__}: {exc}."
                            f" Outputs of records 0..{i - 1} are kept; re-run to resume."
                        ) from exc
                    self._accept(result)
                    if progress:
                        progress(i + 1, n)
            finally:
                rows.close()
            return
        size = chunksize or max(1, min(16, (n - start) // (workers * 4)))
        ctx = multiprocessing.get_context(start_method)
        initargs = (self.job, str(hdf5), self.process)
        # Objects that exist now are moved out of the collector's reach before forking, so a
        # worker's garbage collection does not touch (and copy) every page it inherited.
        gc.freeze()
        try:
            pool = ctx.Pool(workers, initializer=init_worker, initargs=initargs)
        finally:
            gc.unfreeze()
        with pool:
            for outcome in pool.imap(run_item, items, chunksize=size):
                self._accept(outcome)
                if progress:
                    progress(outcome.index + 1, n)

    # -- finishing --------------------------------------------------------------------------
    def _rows(self) -> Iterator[dict[str, str]]:
        tasks = self.spec.tasks
        labels = self.checked.labels
        with open(self.staging / JOURNAL_FILE, encoding="utf-8") as fh:
            for i, (line, rec) in enumerate(zip(fh, self.records, strict=False)):
                entry = _json_line(line)
                if entry.get("i") != i:
                    raise BuildError(f"{self.staging / JOURNAL_FILE}: line {i + 1} is out of order")
                row = {
                    "filepath": layout.image_name(i),
                    "split": rec.split,
                    "original_filepath": rec.original_filepath,
                    "original_split": rec.original_split,
                    "patient_id": cell_text(rec.patient_id),
                }
                for task in tasks:
                    value = labels[task.name][i]
                    multilabel = task.target is TaskTarget.MULTILABEL_CLASSIFICATION
                    row[f"tasks/{task.name}"] = str(value.tolist()) if multilabel else str(value)
                    row[task.name] = label_name(task, value)
                row.update({k: cell_text(v) for k, v in rec.annotations.items()})
                row.update(entry["annotations"])
                for folder, column in self.aux_columns.items():
                    row[column] = f"{folder}/{i:06d}.tiff" if folder in entry["aux"] else ""
                yield row

    def _finish(self, verify: bool) -> None:
        folder = self.folder
        write_split_files(folder, self.checked.splits, original=False)
        write_split_files(folder, self.checked.original_splits, original=True)
        write_task_labels(folder, self.checked.labels)
        extra = self.record_columns | self.produced_columns | set(self.aux_columns.values())
        columns = annotation_columns(
            self.spec.tasks, extra, has_patient_id=self.checked.has_patient_id
        )
        count = write_annotations(folder / layout.ANNOTATIONS_FILE, columns, self._rows())
        if count != len(self.records):
            raise BuildError(f"{self.staging}: journal has {count} of {len(self.records)} samples")
        (folder / layout.LICENSE_FILE).write_text(self.license, encoding="utf-8")
        for rel, content in self.extra_files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            data = content if isinstance(content, bytes) else content.read_bytes()
            (folder / rel).write_bytes(data)
        (folder / layout.INFO_FILE).write_text(self.info_text, encoding="utf-8", newline="\n")
        sync_tree(folder)
        if verify:
            from medimeta.format.verify import verify_dataset

            report = verify_dataset(folder)
            if not report.ok:
                raise BuildError(
                    f"the finished folder fails verify; not published:\n{report.format()}"
                )

    def run(
        self,
        *,
        workers: int,
        chunksize: int | None,
        overwrite: bool,
        resume: bool,
        verify: bool,
        start_method: str | None,
        progress: ProgressFn | None,
    ) -> Path:
        from filelock import FileLock

        if workers < 1:
            raise BuildError(f"workers must be at least 1, got {workers}")
        self.root.mkdir(parents=True, exist_ok=True)
        target = check_target(self.root, self.spec.id, overwrite=overwrite)
        self.fp = self.fingerprint()
        self.staging = staging_dir(self.root, self.spec.id, self.fp)
        lock = self.root / ".medimeta" / "locks" / f"build-{self.spec.id}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock)), terminate_as_interrupt():
            for old in stale_staging(self.root, self.spec.id, self.staging):
                remove_tree(old)  # an earlier build with other inputs: cannot be resumed
            # Checked again under the lock: a build that waited for it may find the dataset
            # published meanwhile, and must not stage (and leave behind) a second copy.
            check_target(self.root, self.spec.id, overwrite=overwrite)
            self.resumed_from = self._open_staging(resume)
            try:
                self._produce(self.resumed_from, workers, chunksize, start_method, progress)
            finally:
                self.journal.close()
            self._finish(verify)
            try:
                publish(self.staging, self.spec.id, target, overwrite=overwrite)
            except DatasetExistsError:
                remove_tree(self.staging)  # another writer published this id: nothing to resume
                raise
        return target


def _json_line(line: str) -> dict[str, Any]:
    entry = json.loads(line)
    if not isinstance(entry, dict):
        raise BuildError(f"journal line is not an object: {line[:80]!r}")
    return entry


def default_workers() -> int:
    """A sensible ``--workers`` default: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
