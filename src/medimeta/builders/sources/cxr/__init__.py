"""NIH ChestX-ray14 (CXR8) -> ``cxr``.

Source: the NIH download folder ``CXR8/`` (or ``CXR8.zip``): ``images/images_001.tar.gz`` ..
``images_012.tar.gz`` (each holding ``images/<Image Index>.png``; already extracted PNGs work
too), ``Data_Entry_2017_v2020.csv`` (or the older ``Data_Entry_2017.csv``),
``BBox_List_2017.csv``, ``train_val_list.txt`` and ``test_list.txt``.

* ``disease labels`` (14-label multi-hot): ``Finding Labels`` split on ``|``; label j is 1 when a
  token equals label name j exactly; ``No Finding`` gives all zeros; an unknown token is an
  error.
* ``patient sex``: ``Patient Gender`` F -> 0, M -> 1.
* Images: RGBA/RGB sources -> grey (alpha dropped), padded to square (they are 1024 x 1024), Pillow
  thumbnail to 224 px (bicubic), as in the release.
* Archives are read by streaming (:mod:`medimeta.builders.sources.cxr.stream`): samples follow
  the order of the archives' members, so each worker process decompresses each archive once and
  nothing is extracted to disk.
* Splits: ``train_val_list.txt`` -> 85/15 train/val by ``Patient ID``; ``test_list.txt`` ->
  test (the official lists are patient-wise; a patient in both would be an error).
* Annotations: patient age, view position, follow-up number, original size and pixel spacing,
  finding labels and the ``BBox_List_2017.csv`` boxes (``Label: (x, y, w, h)``, ``; ``-joined).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from PIL import Image

from medimeta.builders.engine.common import (
    RESPLIT_RATIOS,
    ImageRecipe,
    read_table,
    require_columns,
    resplit_train,
    split_manifest,
)
from medimeta.builders.engine.registry import Builder, BuildPlan, register_builder
from medimeta.builders.engine.source import Part, Require, SourceReport, locate_parts
from medimeta.builders.engine.tree import SourceFile, SourceTree
from medimeta.builders.sources.cxr.stream import (
    TarMember,
    member_positions,
    read_member,
    split_source,
)
from medimeta.errors import LabelError, PreprocessError, SourceTreeError, SplitError
from medimeta.format.record import SampleRecord
from medimeta.logs import plural

RECIPE = ImageRecipe(mode="L", square="pad", method="thumbnail")
NO_FINDING = "No Finding"
ENTRY_COLUMNS = (
    "Image Index",
    "Finding Labels",
    "Follow-up #",
    "Patient ID",
    "Patient Age",
    "Patient Gender",
    "View Position",
)
SIZE_COLUMNS = ("OriginalImage[Width", "Height]")
SPACING_COLUMNS = ("OriginalImagePixelSpacing[x", "y]")


def disease_vector(value: str, names: Sequence[str], where: str) -> list[int]:
    """Multi-hot vector of a ``Finding Labels`` cell (module rules)."""
    tokens = [t.strip() for t in str(value).split("|") if t.strip()]
    if tokens == [NO_FINDING]:
        return [0] * len(names)
    unknown = sorted(set(tokens) - set(names))
    if unknown or not tokens:
        raise LabelError(
            f"{where}: finding labels {value!r} contain {unknown or 'nothing'}; expected "
            f"'{NO_FINDING}' or '|'-joined names from {list(names)}"
        )
    return [int(name in tokens) for name in names]


def sex_label(value: str, labels: dict[int, str], where: str) -> int:
    """Key of ``F`` / ``M`` in the task's label dict."""
    wanted = str(value).strip().upper()
    for key, name in labels.items():
        if name.upper() == wanted:
            return key
    raise LabelError(f"{where}: Patient Gender {value!r} is not one of {list(labels.values())}")


def decode_image(data: bytes, where: str) -> Image.Image:
    """Decode PNG bytes fully."""
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise PreprocessError(f"{where}: cannot decode image ({exc})") from exc
    return img


def process_cxr(record: SampleRecord) -> tuple[Image.Image, dict[str, Any]]:
    """Writer ``process``: grey, square, thumbnail to 224 px (from a tar stream or a file)."""
    src = record.source
    if isinstance(src, TarMember):
        img = decode_image(read_member(src), src.location())
    else:
        img = decode_image(src.read_bytes(), src.location())
    mode = img.mode
    image, annotations = RECIPE.apply(img)
    annotations["original_image_mode"] = mode
    return image, annotations


def _tables_part() -> Part:
    return Part(
        name="ChestX-ray14 label files",
        anchors=("train_val_list.txt", "test_list.txt", "BBox_List_2017.csv"),
        requires=(
            Require("Data_Entry_2017*.csv", "Data_Entry_2017_v2020.csv", essential=True),
            Require("train_val_list.txt", "train_val_list.txt", essential=True),
            Require("test_list.txt", "test_list.txt", essential=True),
            Require("BBox_List_2017.csv", "BBox_List_2017.csv"),
        ),
        hint="the CXR8 folder with Data_Entry_2017_v2020.csv and the split lists",
    )


@register_builder
class CxrBuilder(Builder):
    """ChestX-ray14 -> ``cxr``."""

    dataset_id = "cxr"
    source_title = "NIH ChestX-ray14 (Wang et al., 2017)"
    source_help = "the CXR8 folder (or CXR8.zip) with images/images_0NN.tar.gz and the CSV/TXT"

    def parts(self) -> tuple[Part, ...]:
        return (_tables_part(),)

    def plan(self, tree: SourceTree, *, partial: bool = False) -> BuildPlan:
        report = self.new_report(tree)
        loc = locate_parts(tree, self.parts(), report, partial=partial)[self.parts()[0].name]
        if not loc.found:
            report.raise_for_errors()
        prefix = loc.prefix or ""
        entries = self._entries(tree, prefix, report)
        list_files = (("train", "train_val_list.txt"), ("test", "test_list.txt"))
        lists = {s: _read_list(tree, prefix + n, report) for s, n in list_files}
        boxes = _boxes(tree, prefix + "BBox_List_2017.csv", report)
        report.raise_for_errors()
        split_of = _official_splits(lists, entries, report)
        images = _image_index(tree, set(entries))
        spec = self.spec
        names = spec.task("disease labels").class_names
        sexes = dict(spec.task("patient sex").labels)
        records = []
        for name, row in entries.items():
            where = f"Data_Entry row {name}"
            if name not in split_of:
                continue
            source = images.get(name)
            if source is None:
                report.miss(f"image {name} (listed in Data_Entry)", partial=partial)
                continue
            try:
                labels = {
                    "disease labels": disease_vector(row["Finding Labels"], names, where),
                    "patient sex": sex_label(row["Patient Gender"], sexes, where),
                }
            except LabelError as exc:
                report.problems.append(str(exc))
                continue
            records.append((source, name, row, labels))
        report.raise_for_errors()
        ordered = _stream_order(records, report)
        report.raise_for_errors()
        out = [
            self._record(src, name, row, labels, split_of[name], boxes)
            for src, name, row, labels in ordered
        ]
        groups = [str(r.patient_id) for r in out]
        try:
            splits = [str(s) for s in resplit_train(groups, [r.original_split for r in out])]
        except SplitError as exc:
            report.problems.append(f"the official lists are not patient-wise: {exc}")
            report.raise_for_errors()
            raise
        out = [replace(r, split=s) for r, s in zip(out, splits, strict=True)]
        manifest = split_manifest(
            groups,
            splits,
            method="train_val_list.txt -> 85/15 train/val by Patient ID; test_list.txt -> test",
            group_column="patient_id",
            ratios=RESPLIT_RATIOS,
        )
        notes = [
            "disease labels: exact token match on '|'-separated Finding Labels; No Finding = "
            "all zeros",
            "images: grey, padded to square, thumbnail to 224 px (bicubic); tar.gz archives "
            "are streamed, never extracted to disk",
            "splits: train_val_list.txt -> 85/15 train/val by Patient ID; test_list.txt -> test",
        ]
        return BuildPlan(
            dataset_id=self.dataset_id,
            records=out,
            process=process_cxr,
            report=report,
            split_manifest=manifest,
            notes=notes,
            partial=partial,
        )

    def _entries(self, tree: SourceTree, prefix: str, report: SourceReport) -> dict[str, dict]:
        files = sorted(tree.glob("Data_Entry_2017*.csv", prefix), key=lambda f: f.name)
        if not files:
            return {}
        # Prefer the corrected 2020 table when both are present.
        source = next((f for f in files if "v2020" in f.name), files[-1])
        frame = read_table(source, report)
        if frame is None or not require_columns(frame, ENTRY_COLUMNS, source, report):
            return {}
        out: dict[str, dict] = {}
        for row in frame.to_dict("records"):
            name = str(row["Image Index"]).strip()
            if name in out:
                report.problems.append(f"{source.path}: image {name} appears twice")
            out[name] = {k: str(v).strip() for k, v in row.items()}
        return dict(sorted(out.items()))

    def _record(
        self, source: Any, name: str, row: dict, labels: dict, split: str, boxes: dict
    ) -> SampleRecord:
        def pair(cols: tuple[str, str]) -> Any:
            values = [row.get(c, "") for c in cols]
            return tuple(_number(v) for v in values) if all(values) else ""

        return SampleRecord(
            source=source,
            labels=labels,
            split="train",
            original_split=split,
            original_filepath=source.path,
            patient_id=row["Patient ID"],
            annotations={
                "image_index": name,
                "finding_labels": row["Finding Labels"],
                "follow_up_nb": row["Follow-up #"],
                "patient_age": row["Patient Age"],
                "view_position": row["View Position"],
                "original_image_size_csv": pair(SIZE_COLUMNS),
                "original_pixel_spacing": pair(SPACING_COLUMNS),
                "bounding_boxes": "; ".join(boxes.get(name, [])),
            },
        )


def _number(text: str) -> int | float | str:
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


def _read_list(tree: SourceTree, path: str, report: SourceReport) -> list[str]:
    source = tree.get(path)
    if source is None:
        return []
    try:
        text = source.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        report.problems.append(f"{path}: cannot read ({exc})")
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def _boxes(tree: SourceTree, path: str, report: SourceReport) -> dict[str, list[str]]:
    source = tree.get(path)
    if source is None:
        return {}
    frame = read_table(source, report)
    cols = ["Image Index", "Finding Label", "Bbox [x", "y", "w", "h]"]
    if frame is None or not require_columns(frame, cols, source, report):
        return {}
    out: dict[str, list[str]] = {}
    for row in frame.to_dict("records"):
        coords = ", ".join(str(row[c]).strip() for c in cols[2:])
        out.setdefault(str(row["Image Index"]).strip(), []).append(
            f"{str(row['Finding Label']).strip()}: ({coords})"
        )
    return out


def _official_splits(
    lists: dict[str, list[str]], entries: dict[str, dict], report: SourceReport
) -> dict[str, str]:
    split_of: dict[str, str] = {}
    for split, names in lists.items():
        for name in names:
            if split_of.setdefault(name, split) != split:
                report.problems.append(f"{name} is in both train_val_list.txt and test_list.txt")
    unknown = [n for n in split_of if n not in entries]
    if unknown:
        report.problems.append(
            f"{plural(len(unknown), 'listed image')} without a Data_Entry row, e.g. {unknown[:3]}"
        )
    unlisted = [n for n in entries if n not in split_of]
    if unlisted:
        report.problems.append(
            f"{plural(len(unlisted), 'Data_Entry image')} in neither split list, e.g. "
            f"{unlisted[:3]}"
        )
    return split_of


def _image_index(tree: SourceTree, wanted: set[str]) -> dict[str, SourceFile]:
    out: dict[str, SourceFile] = {}
    for f in tree:
        if f.name in wanted:
            old = out.get(f.name)
            # A file on disk (already extracted) is cheaper to read than an archive member.
            if old is None or (old.needs_staging and not f.needs_staging):
                out[f.name] = f
    return out


def _stream_order(records: list[tuple], report: SourceReport) -> list[tuple]:
    """Records in read order; tar members become :class:`TarMember` sources."""
    by_archive: dict[tuple, list[tuple]] = {}
    plain = []
    for rec in records:
        src = rec[0]
        if src.needs_staging:
            origin, chain, _ = split_source(src)
            by_archive.setdefault((origin, chain), []).append(rec)
        else:
            plain.append(rec)
    ordered = sorted(plain, key=lambda r: r[0].path)
    archives = sorted(by_archive.items(), key=lambda kv: (str(kv[0][0]), kv[0][1]))
    for (origin, chain), recs in archives:
        try:
            positions = member_positions(origin, chain)
        except SourceTreeError as exc:
            report.problems.append(str(exc))
            continue
        recs.sort(key=lambda r: positions.get(split_source(r[0])[2], -1))
        last = max(positions.get(split_source(r[0])[2], -1) for r in recs)
        for src, name, row, labels in recs:
            member = split_source(src)[2]
            if member not in positions:
                report.problems.append(f"{src.location()}: not found when listing the archive")
                continue
            item = TarMember(origin, chain, member, positions[member], last, src.path)
            ordered.append((item, name, row, labels))
    return ordered
