"""Run records from the fields a run collects, and from the files of earlier versions.

A supervised run and a few-shot run collect their facts as one flat mapping (what the
toolkit's version 0.1 wrote as ``result.json`` / ``results.json``); :func:`supervised_record`
and :func:`fewshot_record` sort them into a :class:`~medimeta.runs.record.RunRecord`, so a
file of an earlier version and a run of this version give the same record. :func:`convert`
reads such a file, with the ``cell.json`` of a benchmark cell beside it.
"""

from __future__ import annotations

from typing import Any

from medimeta.errors import FormatError
from medimeta.runs.model import RunRecord, TargetRef

SUPERVISED_PROTOCOL = (
    "config",
    "data",
    "backbone",
    "seed",
    "normalization",
    "image_size",
    "world_size",
    "device",
    "environment",
)
SUPERVISED_DETAILS = (
    "val",
    "test",
    "selected_checkpoint",
    "selected_epoch",
    "best_epoch",
    "best_val",
    "epochs_run",
    "stopped_early",
    "timings",
)
CELL_KEYS = (
    "hash",
    "status",
    "label",
    "protocol",
    "seconds",
    "estimate_s",
    "estimate_detail",
    "finished",
    "world_size",
    "rank",
)


def _target(block: dict[str, Any]) -> TargetRef:
    return TargetRef(
        str(block["dataset_id"]),
        str(block["task"]),
        block.get("target"),
        block.get("dataset_name"),
        block.get("folder"),
    )


def supervised_record(flat: dict[str, Any], source: str | None = None) -> RunRecord:
    """The record of a supervised run from its collected fields (``data``, ``backbone``,
    ``config``, ``seed``, ``val``/``test`` with ``metrics``, ``loss`` and ``n``, ...)."""
    test = flat.get("test") or {}
    summary = {
        name: {"mean": value, "ci": None, "n": test.get("n")}
        for name, value in (test.get("metrics") or {}).items()
    }
    return RunRecord(
        kind="supervised",
        target=_target(flat["data"]),
        method="supervised",
        paper_name="Supervised",
        backbone=str(flat["backbone"]["name"]),
        seed=flat.get("seed"),
        summary=summary,
        protocol={k: flat[k] for k in SUPERVISED_PROTOCOL if k in flat},
        details={k: flat[k] for k in SUPERVISED_DETAILS if k in flat},
        source=source,
    )


def fewshot_record(flat: dict[str, Any], source: str | None = None) -> RunRecord:
    """The record of a few-shot run from its collected fields (``target``, ``method``,
    ``config``, ``episodes``, ``summary``, ``per_episode``, ``stage``, ``timings``, ...)."""
    config = flat["config"]
    episodes = flat["episodes"]
    kept = ("stage", "method_details", "timings", "medfm")
    details = {k: flat[k] for k in kept if flat.get(k) is not None}
    return RunRecord(
        kind="fewshot",
        target=_target(flat["target"]),
        method=str(flat["method"]),
        paper_name=flat.get("paper_name"),
        backbone=str(config.get("backbone")),
        shots=int(episodes["settings"]["shots"]),
        seed=config.get("seed"),
        summary=flat["summary"],
        confidence=flat.get("confidence"),
        per_episode=flat.get("per_episode", []),
        protocol={
            "config": config,
            "episodes": episodes,
            "backbone": flat.get("backbone"),
            "run": flat.get("run"),
            "environment": flat.get("environment"),
        },
        details=details,
        source=source,
    )


def convert(data: dict[str, Any], kind: str, cell: dict[str, Any] | None, source: str) -> RunRecord:
    """The record of a file written by an earlier version (``kind`` from its name or its
    ``kind`` key), with the benchmark ``cell`` record found beside it."""
    makers = {"supervised": supervised_record, "fewshot": fewshot_record}
    kind = str(data.get("kind", kind))
    if kind not in makers:
        raise FormatError(
            source, "unknown run kind", key="kind", expected=list(makers), actual=kind
        )
    try:
        record = makers[kind](data, source)
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(source, f"run record of an earlier version lacks {exc}") from None
    if cell is not None:
        record.cell = {k: cell[k] for k in CELL_KEYS if k in cell}
        record.status = str(cell.get("status", "done"))
    return record
