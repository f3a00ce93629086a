"""Your own images -> MedIMeta format: a folder of class subfolders, or a CSV of paths and labels.

Both produce a dataset that every MedIMeta tool can use: images as described in
:mod:`medimeta.convert.common`, labels as in :mod:`medimeta.convert.labels`, splits as in
:mod:`medimeta.convert.table`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medimeta.catalog import TaskTarget
from medimeta.convert.common import is_image_file, natural_key
from medimeta.convert.labels import TaskColumns, interpret, is_missing, is_number
from medimeta.convert.table import SplitOptions, TableSource, normalize_split, write_table
from medimeta.errors import LabelError, OptionError, SourceTreeError
from medimeta.format.writer.files import reserved_columns
from medimeta.logs import plural

__all__ = ["SplitOptions", "TaskColumns", "convert_csv", "convert_folder"]


def subject_of(path: str, pattern: re.Pattern[str] | None) -> str:
    """The subject id in ``path``: the first group of ``pattern`` (or its whole match)."""
    if pattern is None:
        return path
    match = pattern.search(path)
    if match is None:
        raise SourceTreeError(
            f"{path!r}: subject pattern {pattern.pattern!r} does not match; every image needs a "
            "subject id (check --subject-pattern)"
        )
    return match.group(1) if pattern.groups else match.group(0)


def _pattern(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise OptionError(
            f"subject pattern {text!r} is not a regular expression ({exc}); fix: correct "
            r"--subject-pattern, e.g. '^\w+/(pat\d+)_'"
        ) from None


def convert_folder(
    src: str | Path,
    root: str | Path,
    dataset_id: str,
    task_name: str,
    *,
    target: TaskTarget | str = TaskTarget.MULTICLASS_CLASSIFICATION,
    classes: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    subject_pattern: str | None = None,
    **options: Any,
) -> Path:
    """Convert ``src/<class>/.../<image>`` into ``<root>/<dataset_id>``; return the folder.

    Class folders are the direct subfolders of ``src`` (hidden ones skipped), images are found
    below them recursively (``exclude``: glob patterns on the relative path, e.g.
    ``*_mask.png``). ``classes`` fixes the class order (default: sorted folder names; numeric
    folder names of an ordinal task become the keys). ``subject_pattern``: regex whose first
    group (or match) is the subject id in the relative path. Other ``options`` go to
    :func:`medimeta.convert.table.write_table` (channels, fit, split_options, name, domain,
    license, summary, workers, overwrite, resume, progress).
    """
    base = Path(src)
    if not base.is_dir():
        raise SourceTreeError(f"{base}: not a folder (expected one subfolder per class)")
    folders = sorted(
        (p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: natural_key(p.name),
    )
    if not folders:
        raise SourceTreeError(f"{base}: no class subfolders found")
    paths: list[str] = []
    values: list[str] = []
    for folder in folders:
        for path in sorted(folder.rglob("*"), key=lambda p: natural_key(p.as_posix())):
            rel = path.relative_to(base).as_posix()
            hidden = any(part.startswith(".") for part in path.relative_to(base).parts)
            if hidden or not is_image_file(path) or any(fnmatch.fnmatch(rel, e) for e in exclude):
                continue
            paths.append(rel)
            values.append(folder.name)
    task = TaskColumns(task_name, target, ("class folder",), tuple(classes) if classes else None)
    ordinal = task.task_target is TaskTarget.ORDINAL_REGRESSION
    if task.classes is None and not ordinal and not any(is_number(v) for v in values):
        # Empty class folders still define a class (an ordinal order must be given explicitly).
        # Folders named by numbers are read as keys, and must then all be integers.
        task = TaskColumns(task_name, target, ("class folder",), tuple(f.name for f in folders))
    interpreted = interpret(task, {"class folder": values}, paths, origin=str(base))
    pattern = _pattern(subject_pattern) if subject_pattern else None
    source = TableSource(
        base_dir=base.resolve(),
        paths=paths,
        tasks=[interpreted],
        subjects=[subject_of(p, pattern) for p in paths] if pattern else None,
        origin=str(base),
        description=f"Images from the class folders of {base.name}.",
        kind="folder",
        details={"subject_pattern": subject_pattern, "exclude": list(exclude)},
    )
    return write_table(source, root, dataset_id, **options)


def read_csv(path: Path) -> Any:
    """The CSV as text cells (a pandas DataFrame); SourceTreeError naming the file otherwise."""
    import pandas as pd

    fix = "check the file: one header line, then one row per image, comma separated"
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        problem = f"is not UTF-8 text (byte {exc.start}: {exc.reason})"
        fix = "save it as UTF-8 (CSV UTF-8 in spreadsheet programs)"
    except (OSError, ValueError) as exc:  # pandas' ParserError and EmptyDataError are ValueErrors
        problem = f"cannot be read as a CSV ({type(exc).__name__}: {' '.join(str(exc).split())})"
    else:
        if isinstance(frame.index, pd.RangeIndex):
            return frame.fillna("")  # cells of short rows: empty, so they fail as empty cells
        problem = "has rows with more fields than its header line"
    raise SourceTreeError(f"{path}: the CSV {problem}; nothing was written; fix: {fix}")


def convert_csv(
    csv_file: str | Path,
    root: str | Path,
    dataset_id: str,
    tasks: Sequence[TaskColumns],
    *,
    path_column: str = "path",
    subject_column: str | None = None,
    split_column: str | None = None,
    image_dir: str | Path | None = None,
    keep_columns: bool = True,
    **options: Any,
) -> Path:
    """Convert a CSV of image paths and labels into ``<root>/<dataset_id>``; return the folder.

    Paths are relative to ``image_dir`` (default: the CSV's folder). ``tasks`` says which
    columns hold which task. ``subject_column``: patient/study id (splits never separate a
    subject). ``split_column``: the source's own split (train/val/test and synonyms). Other
    columns are kept as annotations (``keep_columns``). ``options`` as in
    :func:`convert_folder`.
    """
    path = Path(csv_file)
    frame = read_csv(path)
    used = [path_column] + [c for t in tasks for c in t.column_names]
    used += [c for c in (subject_column, split_column) if c]
    missing = sorted({c for c in used if c not in frame.columns})
    if missing:
        raise LabelError(f"{path}: column(s) {missing} not found; columns: {list(frame.columns)}")
    if not tasks:
        raise LabelError(f"{path}: give at least one task (--task/--label)")
    paths = [p.strip().replace("\\", "/") for p in frame[path_column]]
    cells = {c: frame[c].tolist() for c in frame.columns}
    interpreted = [interpret(t, cells, paths, origin=str(path)) for t in tasks]
    subjects = None
    if subject_column:
        subjects = [s.strip() for s in frame[subject_column]]
        empty = [i for i, s in enumerate(subjects) if is_missing(s)]
        if empty:
            raise LabelError(
                f"{path}, row {empty[0] + 1} ({paths[empty[0]]}): no {subject_column!r} "
                f"({subjects[empty[0]]!r}; {plural(len(empty), 'row')} in all); expected a subject "
                "id; fix: fill in the cells or convert without --subject-column"
            )
    splits = None
    if split_column:
        splits = [
            normalize_split(v, f"{path}, row {i + 1} ({paths[i]})")
            for i, v in enumerate(frame[split_column])
        ]
    annotations = None
    if keep_columns:
        taken = reserved_columns([]) | {t.name for t in tasks} | {f"tasks/{t.name}" for t in tasks}
        rest = [c for c in frame.columns if c not in used]
        annotations = [
            {(f"source_{c}" if c in taken else c): row[c] for c in rest}
            for row in frame[rest].to_dict("records")
        ]
    source = TableSource(
        base_dir=Path(image_dir).resolve() if image_dir else path.parent.resolve(),
        paths=paths,
        tasks=interpreted,
        subjects=subjects,
        source_splits=splits,
        annotations=annotations,
        origin=path.name,
        description=f"Images listed in {path.name}.",
        kind="csv",
        details={
            "path_column": path_column,
            "subject_column": subject_column,
            "split_column": split_column,
        },
        row_names=[f"{path}, row {i + 1} ({p})" for i, p in enumerate(paths)],
    )
    return write_table(source, root, dataset_id, **options)
