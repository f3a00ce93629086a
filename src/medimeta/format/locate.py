"""Finding dataset folders in a data root by the ``id`` in their info.yaml (no numpy needed)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import yaml

from medimeta.catalog.checks import plain_name
from medimeta.errors import DatasetNotFoundError, FormatError, Note, UnknownNameError
from medimeta.format import layout


def read_info_file(path: Path) -> dict[str, Any]:
    """Parse an ``info.yaml`` with PyYAML's safe loader (YAML 1.1: ``112_120`` is an int)."""
    try:
        with open(path, encoding="utf-8") as fh:
            info = yaml.safe_load(fh)
    except FileNotFoundError:
        raise DatasetNotFoundError(
            f"{path}: info.yaml is missing; this is not a dataset folder"
        ) from None
    except yaml.YAMLError as exc:
        raise FormatError(
            path, f"not valid YAML ({exc})", fix="repair or re-download info.yaml"
        ) from None
    except UnicodeDecodeError as exc:
        raise FormatError(
            path,
            f"not UTF-8 text (byte {exc.start}: {exc.reason})",
            expected="UTF-8",
            fix="save info.yaml as UTF-8, or re-download the dataset",
        ) from None
    if not isinstance(info, dict):
        raise FormatError(
            path, "top level must be a mapping", expected="mapping", actual=type(info).__name__
        )
    return info


def find_datasets(root: str | Path) -> dict[str, Path]:
    """Dataset folders below ``root``, keyed by the ``id`` in their info.yaml (not folder name)."""
    root = Path(root)
    found: dict[str, Path] = {}
    if not root.is_dir():
        return found
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        info_path = sub / layout.INFO_FILE
        if not info_path.is_file():
            continue
        info = read_info_file(info_path)
        ds_id = info.get("id")
        if not isinstance(ds_id, str):
            raise FormatError(
                info_path, "missing or non-string 'id'", key="id", expected="str", actual=ds_id
            )
        plain_name(ds_id, path=info_path, key="id", kind="id")
        if ds_id != sub.name:
            warnings.warn(
                f"{sub}: folder name differs from the dataset id {ds_id!r} in info.yaml; "
                "using the id",
                RuntimeWarning,
                stacklevel=2,
            )
        if ds_id in found:
            raise FormatError(
                info_path,
                f"dataset id {ds_id!r} also used by {found[ds_id]}",
                key="id",
                fix="keep one copy of each dataset in a root",
            )
        found[ds_id] = sub
    return found


def locate_dataset(root: str | Path, dataset_id: str) -> Path:
    """Folder of ``dataset_id`` in ``root`` (fast path: ``root/<id>``), with a helpful error."""
    root = Path(root)
    direct = root / dataset_id
    if (direct / layout.INFO_FILE).is_file():
        info = read_info_file(direct / layout.INFO_FILE)
        if info.get("id") == dataset_id:
            return direct
    found = find_datasets(root)
    if dataset_id in found:
        return found[dataset_id]
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"data root {root} does not exist; pass the folder holding the dataset folders "
            f"(or set ${layout.ROOT_ENV}), or download with `medimeta download {dataset_id}`"
        )
    from medimeta.catalog import get_catalog

    known = sorted(set(found) | {d.id for d in get_catalog()})
    if dataset_id in known:
        raise DatasetNotFoundError(
            f"dataset {dataset_id!r} is not in {root} (present: {sorted(found) or 'none'}); "
            f"get it with `medimeta download {dataset_id} --root {root}`"
        )
    raise UnknownNameError("dataset id", dataset_id, known, where=str(root))


TASK_REF = "a task reference is DATASET (its first task) or DATASET:TASK, e.g. 'bus:case category'"


def resolve_task_ref(
    root: str | Path | None, ref: str | tuple[str, str], *, note: bool = True
) -> tuple[str, str]:
    """``"ID:TASK"`` or ``("ID", "TASK")`` -> ``(ID, TASK)``; ``"ID"`` alone means the
    dataset's first task (the paper's primary one): that of the folder under ``root`` when it
    is there, else the catalog's. The choice is announced once as a
    :class:`~medimeta.errors.Note` (``note=False``: silently). An unknown id fails with the
    closest ids; nothing is checked about ``TASK`` here (its dataset does that)."""
    if isinstance(ref, tuple):
        return ref
    text = str(ref)
    head, sep, tail = text.partition(":")
    ds, task = head.strip(), tail.strip()
    if not ds or (sep and not task):
        raise UnknownNameError("task reference", text, [], expected=TASK_REF)
    if task:
        return ds, task
    tasks = _task_names(root, ds)
    if not tasks:
        raise UnknownNameError("task reference", text, [], expected=f"{ds} lists no tasks")
    if note:
        others = f"; the others: {', '.join(tasks[1:])}" if len(tasks) > 1 else ""
        warnings.warn(
            f"{ds!r} means its first task: {ds}:{tasks[0]} (give {ds}:TASK for another{others})",
            Note,
            stacklevel=3,
        )
    return ds, tasks[0]


def _task_names(root: str | Path | None, dataset_id: str) -> list[str]:
    if root is not None and Path(root).is_dir():
        info = read_info_file(locate_dataset(root, dataset_id) / layout.INFO_FILE)
        return [str(t.get("task_name")) for t in info.get("tasks") or [] if isinstance(t, dict)]
    from medimeta.catalog import get_catalog

    return [t.name for t in get_catalog().get(dataset_id).tasks]
