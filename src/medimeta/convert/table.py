"""Shared back end of the file converters: rows of (image path, labels, subject, source split).

Order: rows are sorted by image path (natural order), so the same files listed in any order
give the same dataset. Splits come from :mod:`medimeta.splitting` (stable hashing of subject
keys, largest-remainder counts), so they too are independent of row order:

* the source has train, val and test: they are kept as the MedIMeta splits;
* the source has train and only one of val/test: ``holdout`` of the train subjects become the
  missing split;
* no source split (or train only): subjects are split by ``ratios`` (default 70/10/20).

A subject never spans two splits (checked; a source split that puts one subject in two
splits is an error). ``stratify`` balances each split's label mix (first single-label task).
The assignment is written as ``split_manifest.json`` and referenced from info.yaml.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medimeta.catalog import TaskTarget
from medimeta.convert.common import (
    SPLIT_MANIFEST,
    ImageOptions,
    load_image_file,
    manifest_bytes,
    natural_key,
    provenance,
    user_info,
)
from medimeta.convert.inputs import check_images, check_paths
from medimeta.convert.labels import InterpretedTask
from medimeta.errors import LabelError, SourceTreeError, SplitError
from medimeta.format import layout
from medimeta.format.record import SampleRecord
from medimeta.format.writer import write_dataset
from medimeta.format.writer.stage import check_target
from medimeta.splitting import (
    assign_splits,
    assign_splits_within,
    build_split_manifest,
    check_groups_disjoint,
)

#: Source split names understood in a split column.
SPLIT_SYNONYMS = {
    "train": "train",
    "training": "train",
    "trainval": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}


@dataclass
class TableSource:
    """Everything a converter read from its source, one entry per row."""

    base_dir: Path
    paths: list[str]
    tasks: list[InterpretedTask]
    subjects: list[str] | None = None
    source_splits: list[str] | None = None
    annotations: list[dict[str, Any]] | None = None
    origin: str = ""
    description: str = ""
    kind: str = "table"
    details: dict[str, Any] = field(default_factory=dict)
    row_names: list[str] | None = None  # how errors name row i, e.g. "labels.csv, line 5"

    def where(self, i: int) -> str:
        """Row ``i`` as errors name it (file and line, or the source and the image path)."""
        if self.row_names is not None:
            return self.row_names[i]
        return f"{self.origin or self.base_dir}, image {self.paths[i]!r}"

    def check_lengths(self) -> None:
        """Every per-row list has one entry per image path (LabelError naming the first)."""
        n = len(self.paths)
        lists: dict[str, list[Any] | None] = {
            "subjects": self.subjects,
            "source splits": self.source_splits,
            "annotations": self.annotations,
            "row names": self.row_names,
        }
        lists.update({f"labels of task {t.name!r}": t.values for t in self.tasks})
        for what, values in lists.items():
            if values is not None and len(values) != n:
                raise LabelError(
                    f"{self.origin or self.base_dir}: {len(values)} {what} for {n} images; "
                    "expected one per image; nothing was written"
                )


@dataclass(frozen=True)
class SplitOptions:
    """How MedIMeta splits are made when the source does not give all three."""

    ratios: tuple[float, float, float] = (0.7, 0.1, 0.2)
    holdout: float = 0.15
    seed: int = 42
    stratify: bool = True


def normalize_split(value: str, where: str) -> str:
    """A source split value mapped to train/val/test (synonyms accepted)."""
    name = SPLIT_SYNONYMS.get(str(value).strip().lower())
    if name is None:
        raise SplitError(
            f"{where}: split value {value!r} is not one of {sorted(SPLIT_SYNONYMS)}; "
            "rename it or drop the split column"
        )
    return name


def _sorted(source: TableSource) -> TableSource:
    order = sorted(range(len(source.paths)), key=lambda i: natural_key(source.paths[i]))

    def pick(values: list[Any] | None) -> list[Any] | None:
        return None if values is None else [values[i] for i in order]

    tasks = [
        InterpretedTask(t.name, t.target, t.labels, [t.values[i] for i in order])
        for t in source.tasks
    ]
    return TableSource(
        source.base_dir,
        [source.paths[i] for i in order],
        tasks,
        pick(source.subjects),
        pick(source.source_splits),
        pick(source.annotations),
        source.origin,
        source.description,
        source.kind,
        source.details,
        pick(source.row_names),
    )


def make_splits(
    groups: Sequence[str],
    originals: Sequence[str],
    strata: Sequence[Any] | None,
    options: SplitOptions,
) -> tuple[list[str], str, dict[str, float] | None]:
    """MedIMeta split per row, the method name and the ratios used (module rules)."""
    present = {s for s in originals}
    if "train" not in present:
        raise SplitError(f"the source splits {sorted(present)} have no train split to keep")
    if present == set(layout.SPLIT_NAMES):
        check_groups_disjoint(groups, originals)
        return list(originals), "source splits kept", None
    if present == {"train"}:
        ratios = dict(zip(layout.SPLIT_NAMES, options.ratios, strict=True))
        splits = assign_splits(groups, ratios=ratios, seed=options.seed, labels=strata)
        return splits.tolist(), "subjects split by ratios", ratios
    missing = ({"val", "test"} - present).pop()
    ratios = {"train": 1.0 - options.holdout, missing: options.holdout}
    splits = assign_splits_within(
        groups, originals, resplit="train", ratios=ratios, seed=options.seed, labels=strata
    )
    return splits.tolist(), f"train subjects split to make {missing}", ratios


def _records(source: TableSource, splits: list[str], originals: list[str]) -> list[SampleRecord]:
    return [
        SampleRecord(
            source=path,
            labels={t.name: t.values[i] for t in source.tasks},
            split=splits[i],
            original_split=originals[i],
            original_filepath=path,
            patient_id=None if source.subjects is None else source.subjects[i],
            annotations=source.annotations[i] if source.annotations else {},
        )
        for i, path in enumerate(source.paths)
    ]


def write_table(
    source: TableSource,
    root: str | Path,
    dataset_id: str,
    *,
    channels: int | None = None,
    fit: str = "pad",
    split_options: SplitOptions | None = None,
    name: str | None = None,
    domain: str = "Unspecified",
    license: str = "unspecified",
    summary: str | None = None,
    workers: int = 1,
    overwrite: bool = False,
    resume: bool = True,
    progress: Any = None,
    allow_outside_paths: bool = False,
    derived_from: Sequence[str] = (),
) -> Path:
    """Check rows and files, sort rows, make splits and write the dataset folder.

    Image paths must stay inside ``source.base_dir`` unless ``allow_outside_paths`` (then
    info.yaml records it). Nothing is written before every path and image header is checked.
    """
    options = split_options or SplitOptions()
    if not source.paths:
        raise SourceTreeError(f"{source.base_dir}: no images found")
    source.check_lengths()
    check_paths(source.base_dir, source.paths, source.where, allow_outside=allow_outside_paths)
    if not overwrite:
        check_target(Path(root), dataset_id, overwrite=False)
    source = _sorted(source)
    n = len(source.paths)
    groups = source.subjects if source.subjects is not None else list(source.paths)
    originals = source.source_splits or ["train"] * n
    single = [t for t in source.tasks if t.target is not TaskTarget.MULTILABEL_CLASSIFICATION]
    strata = single[0].values if options.stratify and single else None
    splits, method, ratios = make_splits(groups, originals, strata, options)
    group_column = "patient_id" if source.subjects is not None else "original_filepath"
    manifest = build_split_manifest(
        groups,
        splits,
        method=method,
        seed=options.seed,
        ratios=ratios,
        group_column=group_column,
        stratify_column=single[0].name if strata else None,
    )
    detected = check_images(source.base_dir, source.paths, source.where)
    channels = detected if channels is None else channels
    records = _records(source, splits, originals)
    info = user_info(
        dataset_id,
        name=name,
        domain=domain,
        channels=channels,
        license=license,
        tasks=[t.info_entry() for t in source.tasks],
        summary=summary or source.description or f"Converted from {source.kind} with medimeta.",
    )
    extra = provenance(
        source.kind, source.origin, derived_from=derived_from, **source.details, fit=fit
    )
    if allow_outside_paths:
        extra["converted_from"]["allow_outside_paths"] = True
    extra["split_manifest"] = SPLIT_MANIFEST
    process = functools.partial(load_image_file, ImageOptions(str(source.base_dir), channels, fit))
    return write_dataset(
        root,
        info,
        records,
        process,
        workers=workers,
        extra_info=extra,
        extra_files={SPLIT_MANIFEST: manifest_bytes(manifest)},
        overwrite=overwrite,
        resume=resume,
        progress=progress,
    )
