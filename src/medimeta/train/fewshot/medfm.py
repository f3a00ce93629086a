"""MedFM's numbers for few-shot runs on MedFM's own lists: per run, then over experiments.

A run on an episode file imported by :mod:`medimeta.episodes.medfm` (header block
``protocol.name == "medfm"``) carries ``record["medfm"]``: the protocol (dataset key, N, K,
the lists with their sha256, repeated support lines) and MedFM's metrics of its episode,
:func:`medimeta.evaluate.compute.compute_metrics` mode ``"medfm"`` in percent (multi-label:
``map``, ``auroc``; binary and multi-class: ``accuracy``, ``auroc``). MedFM's final number
per shot count is the mean over its 5 experiments: :func:`average_experiments` gives it with
the sample standard deviation (n - 1), refusing runs that mix datasets, test lists, methods,
method settings, or repeat an experiment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medimeta.catalog.tasks import TaskTarget
from medimeta.errors import EpisodeError, FormatError
from medimeta.escape import markdown_code, markdown_escape
from medimeta.evaluate.compute import compute_metrics
from medimeta.runs.model import RunRecord

LABELS = {"map": "mAP", "auroc": "AUC", "accuracy": "Acc"}
_PROTOCOL_KEYS = ("name", "dataset", "shots", "experiment", "lists", "unique", "duplicates")


def metric_names(target: str) -> tuple[str, str]:
    """MedFM's two numbers for a task target, in its table order."""
    multilabel = TaskTarget.parse(target) is TaskTarget.MULTILABEL_CLASSIFICATION
    return ("map", "auroc") if multilabel else ("accuracy", "auroc")


def medfm_record(header: dict[str, Any], rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """``record["medfm"]`` of a run from its episode files' predictions (None: not MedFM)."""
    protocol = header.get("protocol")
    if not protocol or protocol.get("name") != "medfm":
        return None
    target = header["task"]["target"]
    per_episode = []
    for row in rows:
        p = row["predictions"]
        scores = np.asarray(p["scores"], dtype=np.float64)
        metrics = compute_metrics(target, np.asarray(p["labels"]), scores, mode="medfm")
        per_episode.append({"episode": row["episode"], "metrics": metrics})
    names = metric_names(target)
    mean = {n: _mean([e["metrics"].get(n) for e in per_episode]) for n in names}
    return {
        "protocol": {
            **{k: protocol[k] for k in _PROTOCOL_KEYS},
            "val": len(protocol.get("val_indices", [])),
            # MedFM's published val lists share images with the support (chest, endo)
            "val_overlap": len(protocol.get("val_overlap", [])),
        },
        "metrics": mean,
        "per_episode": per_episode,
        "definitions": "MedFM (compute_metrics mode 'medfm'), percent",
    }


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(kept)) if kept else None


def _medfm(record: RunRecord) -> dict[str, Any]:
    return dict(record.details["medfm"])


def _fail(runs: Sequence[tuple[Path, RunRecord]], what: str, key: Any) -> None:
    seen: dict[str, Path] = {}
    for path, rec in runs:
        seen.setdefault(repr(key(rec)), path)
    if len(seen) > 1:
        listed = "; ".join(f"{k} ({p})" for k, p in seen.items())
        raise EpisodeError(
            f"the runs mix {what}: {listed}; MedFM's average is over the experiments of one "
            f"dataset and one method; fix: pass the runs of one dataset and one method"
        )


def check_runs(runs: Sequence[tuple[Path, RunRecord]]) -> None:
    """EpisodeError unless the runs share dataset, test list, method and settings, and no
    (shots, experiment) appears twice."""
    for path, rec in runs:
        if not rec.details.get("medfm"):
            raise FormatError(
                path,
                "not a run on MedFM's lists (no 'medfm' block)",
                key="medfm",
                fix="run `medimeta fewshot --episodes-file` on a file from "
                "`medimeta episodes import-medfm`",
            )
        problem = _block_problem(rec.details["medfm"])
        if problem is not None:
            raise FormatError(
                path,
                "the run's 'medfm' block is not usable",
                key=f"details.medfm.{problem[0]}",
                expected=problem[1],
                actual=problem[2],
                fix="run the few-shot command on the imported file again",
            )
    _fail(runs, "datasets", lambda r: (r.target_id, _medfm(r)["protocol"]["dataset"]))
    _fail(runs, "test lists", lambda r: _medfm(r)["protocol"]["lists"]["test"]["sha256"])
    _fail(runs, "methods", lambda r: r.method)
    _fail(runs, "method settings", lambda r: sorted(r.settings.items()))
    first: dict[tuple[int, int], Path] = {}
    for path, rec in runs:
        p = _medfm(rec)["protocol"]
        pair = (int(p["shots"]), int(p["experiment"]))
        if pair in first:
            raise EpisodeError(
                f"{p['shots']}-shot experiment {p['experiment']} appears twice: {first[pair]} "
                f"and {path}; fix: pass each experiment once"
            )
        first[pair] = path


def _block_problem(block: Any) -> tuple[str, str, Any] | None:
    """(key, expected, actual) of the first thing ``average_experiments`` cannot use."""
    if not isinstance(block, dict):
        return "", "an object", type(block).__name__
    protocol, metrics = block.get("protocol"), block.get("metrics")
    if not isinstance(protocol, dict):
        return "protocol", "an object", type(protocol).__name__
    for key in ("shots", "experiment"):
        value = protocol.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return f"protocol.{key}", "an integer >= 0", value
    if not isinstance(protocol.get("dataset"), str):
        return "protocol.dataset", "a string", protocol.get("dataset")
    lists = protocol.get("lists")
    test = lists.get("test") if isinstance(lists, dict) else None
    if not isinstance(test, dict) or not isinstance(test.get("sha256"), str):
        return "protocol.lists.test.sha256", "a string", test
    if not isinstance(metrics, dict) or not all(
        v is None or (isinstance(v, int | float) and not isinstance(v, bool))
        for v in metrics.values()
    ):
        return "metrics", "{name: number or null}", metrics
    return None


def _spread(values: list[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(arr.mean()) if arr.size else None,
        "sd": float(arr.std(ddof=1)) if arr.size > 1 else None,
        "n": int(arr.size),
        "values": [float(v) for v in arr],
    }


def average_experiments(runs: Sequence[tuple[Path, RunRecord]]) -> RunRecord:
    """MedFM's table as a ``medfm-average`` record: per shot count (``details["shots"]``), mean
    ± sd over the experiments of each metric, and the protocol of every run (lists with
    sha256, method, settings, episode file)."""
    if not runs:
        raise EpisodeError("no runs given; pass the output folders of MedFM-protocol runs")
    check_runs(runs)
    first = runs[0][1]
    target = first.target.target if first.target is not None else None
    names = metric_names(str(target))
    by_shots: dict[int, list[dict[str, Any]]] = {}
    for _, rec in runs:
        block = _medfm(rec)
        by_shots.setdefault(int(block["protocol"]["shots"]), []).append(block)
    shots: dict[str, Any] = {}
    for n in sorted(by_shots):
        group = sorted(by_shots[n], key=lambda m: int(m["protocol"]["experiment"]))
        metrics = {}
        for name in names:
            values = [m["metrics"].get(name) for m in group]
            metrics[name] = _spread([v for v in values if v is not None and math.isfinite(v)])
        shots[str(n)] = {
            "experiments": [int(m["protocol"]["experiment"]) for m in group],
            "metrics": metrics,
        }
    return RunRecord(
        kind="medfm-average",
        target=first.target,
        method=first.method,
        paper_name=first.paper_name,
        backbone=first.backbone,
        protocol={"config": first.settings, "runs": [_run_entry(p, r) for p, r in runs]},
        details={
            "dataset": _medfm(first)["protocol"]["dataset"],
            "metrics": list(names),
            "definitions": "MedFM's (compute_metrics mode 'medfm'), percent; sd with n - 1",
            "shots": shots,
        },
    )


def _run_entry(path: Path, rec: RunRecord) -> dict[str, Any]:
    p = _medfm(rec)["protocol"]
    episodes = rec.protocol["episodes"]
    return {
        "run_dir": str(path),
        "shots": p["shots"],
        "experiment": p["experiment"],
        "lists": p["lists"],
        "duplicates": p["duplicates"],
        "method": rec.method,
        "config": rec.settings,
        "episodes_file": episodes["file"],
        "episodes_file_sha256": episodes["file_sha256"],
        "fingerprint": episodes["fingerprint"],
        "metrics": _medfm(rec)["metrics"],
    }


def _cell(entry: dict[str, Any]) -> str:
    if entry["mean"] is None:
        return "–"
    sd = entry["sd"]
    return f"{entry['mean']:.2f}" + ("" if sd is None else f" ± {sd:.2f}")


def medfm_markdown(summary: RunRecord) -> str:
    """The average as a Markdown table, one row per shot count."""
    d = summary.details
    names = d["metrics"]
    lines = [
        f"# MedFM protocol: {markdown_escape(summary.method)} on "
        f"{markdown_escape(summary.target.dataset_id if summary.target else '–')} "
        f"({markdown_escape(d['dataset'])})",
        "",
        "| shots | experiments | " + " | ".join(LABELS[n] for n in names) + " |",
        "|---:|---|" + "---:|" * len(names),
    ]
    for n, entry in d["shots"].items():
        exps = ", ".join(str(k) for k in entry["experiments"])
        cells = " | ".join(_cell(entry["metrics"][m]) for m in names)
        lines.append(f"| {n} | {exps} | {cells} |")
    lines += [
        "",
        "Mean ± sd (n - 1) over the experiments, in percent, MedFM's metric definitions "
        f"({', '.join(LABELS[n] for n in names)}); backbone "
        f"{markdown_escape(summary.backbone)}.",
    ]
    return "\n".join(lines) + "\n"


def protocol_line(record: RunRecord) -> list[str]:
    """The results.md line of a MedFM-protocol run (none for other runs)."""
    block = record.details.get("medfm")
    if not block:
        return []
    p, m = block["protocol"], block["metrics"]
    values = ", ".join(f"{LABELS[k]} {'–' if v is None else f'{v:.2f}'}" for k, v in m.items())
    overlap = p.get("val_overlap") or 0
    shared = f"; its official val list shares {overlap} images with the support" if overlap else ""
    return [
        f"- MedFM protocol: {markdown_escape(p['dataset'])} {p['shots']}-shot experiment "
        f"{p['experiment']} ({markdown_code(p['lists']['train']['file'])}, {p['duplicates']} "
        f"repeated support lines, test {markdown_code(p['lists']['test']['file'])}{shared}); "
        f"MedFM's metrics (%): {values}"
    ]


def import_record(
    lists_dir: Path, root: Path, dataset_id: str, out: Path, done: Sequence[Any]
) -> Path:
    """Write the ``medfm-import`` run record of ``episodes import-medfm`` beside its output:
    the lists (with sha256, read back from each written episode file) and what each gave."""
    from medimeta.episodes import EpisodeSet
    from medimeta.runs.files import environment
    from medimeta.runs.model import RunRecord, TargetRef
    from medimeta.runs.record import record_beside, write_record_file

    imported = []
    for d in done:
        protocol = EpisodeSet.load(d.path).header["protocol"]
        imported.append(
            {
                "file": str(d.path),
                "shots": d.shots,
                "experiment": d.experiment,
                "lists": protocol["lists"],
                "lines": d.lines,
                "unique": d.unique,
                "duplicates": d.duplicates,
                "val": d.val,
                "val_overlap": d.overlap,
                "test": d.test,
            }
        )
    first = EpisodeSet.load(done[0].path).header if done else {}
    task = (first.get("task") or {}).get("name", "–")
    record = RunRecord(
        kind="medfm-import",
        target=TargetRef(dataset_id, task, (first.get("task") or {}).get("target")),
        method="import-medfm",
        protocol={"lists_dir": str(lists_dir), "root": str(root), "environment": environment()},
        details={"imported": imported},
    )
    return write_record_file(record_beside(out), record)
