"""The audit's pictures: thumbnails of the pairs and suspect labels it found, for people to look
at (``report.json``'s ``gallery``, shown by ``audit.html`` and linked from ``report.md``).

One *section* per pair of datasets (images shared across them), per dataset (duplicates inside
it: pairs that cross splits first, then by score), per subject column with leaking subjects (an
image of the subject in each of two splits) and per task with suspect labels (the image and its
nearest neighbours in feature space, each with its given label). A section shows at most
``cap`` examples (default :data:`CAP`) and says how many it left out (every pair is in
``pairs.csv``, every suspect index in ``report.json``).

Thumbnails are JPEG files, the longest side :data:`THUMB` pixels, written atomically to
``<out>/pictures/<dataset>-<index>.jpg`` before the report that names them; files of an earlier
run that the new report does not name are removed.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medimeta.audit.context import DatasetFacts, labels_of, pair_tasks
from medimeta.audit.duplicates import PairTable
from medimeta.catalog import TaskSpec
from medimeta.format import layout
from medimeta.safeio import write_bytes

THUMB = 96
CAP = 24
FOLDER = "pictures"
QUALITY = 85
FILE_NAME = re.compile(r"[A-Za-z0-9_-]+-\d+\.jpg")


def _ref(facts: DatasetFacts, task: TaskSpec | None, index: int, **extra: Any) -> dict[str, Any]:
    """What a thumbnail shows: dataset, sample index (row of images.hdf5), split and label."""
    label = labels_of(facts, task, np.array([index]))[0]
    return {
        "dataset": facts.id,
        "index": int(index),
        "split": str(facts.split_of[index]) or "–",
        "label": str(label),
        **extra,
    }


def _counts(total: int, shown: int) -> dict[str, int]:
    return {"total": int(total), "shown": int(shown), "left_out": int(total - shown)}


def _pair_items(
    table: PairTable, order: np.ndarray, fa: DatasetFacts, fb: DatasetFacts, tasks: tuple
) -> list[dict[str, Any]]:
    items = []
    for k in order:
        i, j = int(table.ia[k]), int(table.ib[k])
        a, b = _ref(fa, tasks[0], i), _ref(fb, tasks[1], j)
        item = {
            "score": round(float(table.score[k]), 4),
            "kind": "exact" if table.exact[k] else "near",
        }
        if table.same:  # a leak when the two copies sit in different splits
            item["crosses_splits"] = a["split"] != b["split"]
            item["labels_differ"] = a["label"] != b["label"]
        items.append({**item, "images": [a, b]})
    return items


def across_section(table: PairTable, fa: DatasetFacts, fb: DatasetFacts, cap: int) -> dict:
    """The ``cap`` best-scoring pairs of images shared by two datasets."""
    ta, tb, _ = pair_tasks(fa, fb)
    order = np.lexsort((table.ib, table.ia, -table.score))[:cap]
    return {
        "kind": "across",
        "title": f"Images shared by {fa.id} and {fb.id}",
        "a": fa.id,
        "b": fb.id,
        "order": "highest score first",
        **_counts(len(table), order.size),
        "items": _pair_items(table, order, fa, fb, (ta, tb)),
    }


def within_section(table: PairTable, facts: DatasetFacts, cap: int) -> dict:
    """The ``cap`` duplicate pairs of one dataset: pairs that cross splits (leaks) first."""
    task = facts.tasks()[0] if facts.tasks() else None
    split = facts.split_of
    same = split[table.ia] == split[table.ib]
    order = np.lexsort((table.ib, table.ia, -table.score, same))[:cap]
    return {
        "kind": "within",
        "title": f"Duplicates within {facts.id}",
        "dataset": facts.id,
        "order": "pairs that cross splits first, then highest score first",
        **_counts(len(table), order.size),
        "items": _pair_items(table, order, facts, facts, (task, task)),
    }


def _first_per_split(facts: DatasetFacts, column: str) -> dict[str, dict[str, int]]:
    """Subject -> split -> the subject's first sample index in that split."""
    frame = facts.folder.read_annotations()
    values = frame[column]
    known = (values.notna() & (values.astype(str).str.strip() != "")).to_numpy()
    ids = values.astype(str).to_numpy()
    split = facts.split_of
    first: dict[str, dict[str, int]] = {}
    for i in np.flatnonzero(known):
        if split[i]:
            first.setdefault(str(ids[i]), {}).setdefault(str(split[i]), int(i))
    return first


def subject_section(facts: DatasetFacts, column: str, cap: int) -> dict | None:
    """Per leaking subject (sorted, at most ``cap``) an image of it in each of two splits."""
    first = _first_per_split(facts, column)
    leaking = sorted(s for s, per in first.items() if len(per) > 1)
    if not leaking:
        return None
    task = facts.tasks()[0] if facts.tasks() else None
    items = []
    for subject in leaking[:cap]:
        per = first[subject]
        s1, s2 = [s for s in layout.SPLIT_NAMES if s in per][:2]
        images = [_ref(facts, task, per[s1]), _ref(facts, task, per[s2])]
        items.append({"subject": subject, "crosses_splits": True, "images": images})
    return {
        "kind": "subjects",
        "title": f"Subjects of {facts.id} in two splits ({column})",
        "dataset": facts.id,
        "column": column,
        "order": "subjects sorted by id",
        **_counts(len(leaking), len(items)),
        "items": items,
    }


def label_section(facts: DatasetFacts, result: Mapping[str, Any], cap: int) -> dict | None:
    """The ``cap`` most suspect labels of a task, each with its nearest neighbours."""
    if not result.get("issues"):
        return None
    items = []
    for ex in result["examples"][:cap]:
        suspect = _ref(facts, None, ex["index"], label=ex["given"], predicted=ex["predicted"])
        near = [
            _ref(facts, None, n["index"], label=n["given"], similarity=n["similarity"])
            for n in ex.get("neighbours", [])
        ]
        items.append({"p_given": ex["p_given"], "images": [suspect, *near]})
    return {
        "kind": "labels",
        "title": f"Suspect labels of {facts.id}, task {result['task']}",
        "dataset": facts.id,
        "task": result["task"],
        "order": "least confident first, by cleanlab's self-confidence",
        **_counts(int(result["issues"]), len(items)),
        "items": items,
    }


def gallery_sections(
    report: Mapping[str, Any],
    tables: Sequence[PairTable],
    facts: Mapping[str, DatasetFacts],
    cap: int = CAP,
) -> list[dict[str, Any]]:
    """Every section of the module docstring (sections with nothing to show are left out)."""
    out: list[dict[str, Any] | None] = []
    for t in tables:
        if not len(t):
            continue
        if t.same:
            out.append(within_section(t, facts[t.dataset_a], cap))
        else:
            out.append(across_section(t, facts[t.dataset_a], facts[t.dataset_b], cap))
    for ds, sec in report["datasets"].items():
        out += [subject_section(facts[ds], s["column"], cap) for s in sec["subjects"]]
    for ds, sec in report["datasets"].items():
        out += [label_section(facts[ds], r, cap) for r in sec.get("suspect_labels", [])]
    return [s for s in out if s is not None and s["shown"]]


def thumbnail(image: np.ndarray, side: int = THUMB) -> bytes:
    """JPEG bytes of a stored uint8 image shrunk to fit ``side`` x ``side`` (never enlarged)."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(image))
    img.thumbnail((side, side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=QUALITY, optimize=True)
    return buf.getvalue()


def _file_names(ids: Sequence[str]) -> dict[str, str]:
    """A file-name-safe, unique prefix per dataset id."""
    out: dict[str, str] = {}
    for ds in ids:
        base = re.sub(r"[^A-Za-z0-9_]+", "_", ds).strip("_") or "dataset"
        name, k = base, 2
        while name in out.values():
            name, k = f"{base}_{k}", k + 1
        out[ds] = name
    return out


def write_thumbnails(
    out: Path, sections: list[dict[str, Any]], facts: Mapping[str, DatasetFacts]
) -> int:
    """Write the thumbnail of every image the sections show (setting each ``file``, relative to
    ``out``) and remove thumbnails no longer named; returns the number of files."""
    refs = [r for s in sections for item in s["items"] for r in item["images"]]
    prefix = _file_names(list(facts))
    wanted: dict[str, set[int]] = {}
    for r in refs:
        wanted.setdefault(r["dataset"], set()).add(r["index"])
        r["file"] = f"{FOLDER}/{prefix[r['dataset']]}-{r['index']}.jpg"
    folder = out / FOLDER
    for ds, indices in wanted.items():
        store = facts[ds].folder.image_store()
        try:
            ordered = sorted(indices)
            for pos, image in store.rows(ordered):
                write_bytes(folder / f"{prefix[ds]}-{ordered[pos]}.jpg", thumbnail(image))
        finally:
            store.close()
    names = {r["file"].split("/", 1)[1] for r in refs}
    if folder.is_dir():
        for old in folder.iterdir():
            if FILE_NAME.fullmatch(old.name) and old.name not in names:
                old.unlink()
    return len(names)


def write_gallery(
    out: Path,
    report: Mapping[str, Any],
    tables: Sequence[PairTable],
    facts: Mapping[str, DatasetFacts],
    cap: int = CAP,
) -> dict[str, Any]:
    """The ``gallery`` block of ``report.json``, its thumbnails written under ``out``."""
    sections = gallery_sections(report, tables, facts, cap) if cap > 0 else []
    files = write_thumbnails(out, sections, facts)
    for n, sec in enumerate(sections, 1):
        sec["anchor"] = f"pictures-{n}"
    return {"folder": FOLDER, "thumb_px": THUMB, "cap": cap, "files": files, "sections": sections}
