"""The run record: one typed record, with a schema version, for every kind of run.

Kinds: ``supervised`` (``medimeta train``), ``fewshot`` (``medimeta fewshot`` and every
benchmark cell of a few-shot method; a benchmark cell carries a ``cell`` block as well),
``medfm-import`` (``medimeta episodes import-medfm``), ``embedding`` (``medimeta embed
--out``) and ``medfm-average`` (``medimeta results medfm``).

A record holds the protocol (settings, seeds, the episode file's and the weights' sha256, the
package version and environment), the metrics with their intervals, the per-episode rows and
what is particular to its kind (``details``). Files: :mod:`medimeta.runs.record`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from medimeta.errors import FormatError

SCHEMA = "medimeta-run"
SCHEMA_VERSION = 2
KINDS = ("supervised", "fewshot", "medfm-import", "embedding", "medfm-average")


@dataclass(frozen=True)
class TargetRef:
    """The task a run is about: ``dataset_id:task`` with its target type and where it was read."""

    dataset_id: str
    task: str
    target: str | None = None
    dataset_name: str | None = None
    folder: str | None = None

    @property
    def id(self) -> str:
        return f"{self.dataset_id}:{self.task}"


@dataclass
class RunRecord:
    """One run. ``summary`` maps a metric to ``{"mean", "ci", "n", ...}`` (few-shot: over
    episodes with a Student-t interval; supervised: the test value, ``n`` test samples)."""

    kind: str
    target: TargetRef | None = None
    method: str | None = None
    paper_name: str | None = None
    backbone: str | None = None
    shots: int | None = None
    seed: int | None = None
    summary: dict[str, dict[str, Any]] = field(default_factory=dict)
    confidence: float | None = None
    per_episode: list[dict[str, Any]] = field(default_factory=list)
    protocol: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    cell: dict[str, Any] | None = None
    status: str = "done"
    #: The other files of the run folder with their sha256 (relative path -> hex digest).
    files: dict[str, str] = field(default_factory=dict)
    #: Where the record was read from (not written).
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FormatError(
                self.source or "run record",
                "unknown run kind",
                key="kind",
                expected=list(KINDS),
                actual=self.kind,
            )

    # -- what tables, plots and the report show -------------------------------------------
    @property
    def target_id(self) -> str:
        return self.target.id if self.target is not None else "–"

    @property
    def row_name(self) -> str:
        """The row of the paper's tables (training type)."""
        return self.paper_name or self.method or self.kind

    @property
    def title(self) -> str:
        shots = f", {self.shots}-shot" if self.shots is not None else ""
        seed = f", seed {self.seed}" if self.seed is not None else ""
        what = self.method or self.kind
        return f"{what} on {self.target_id} ({self.backbone or '–'}{shots}{seed})"

    def metric(self, name: str) -> tuple[float, float, int]:
        """(mean, interval half-width, n) of ``name`` (NaN, 0 and 0 when absent)."""
        entry = self.summary.get(name) or {}
        mean = entry.get("mean")
        ci = entry.get("ci")
        mean = math.nan if mean is None else float(mean)
        ci = 0.0 if ci is None or not math.isfinite(float(ci)) else float(ci)
        return mean, ci, int(entry.get("n") or 0)

    def episode_values(self, name: str) -> list[float]:
        """The finite values of ``name`` over the episodes (few-shot runs)."""
        out = []
        for row in self.per_episode:
            value = (row.get("metrics") or {}).get(name)
            if value is not None and math.isfinite(float(value)):
                out.append(float(value))
        return out

    @property
    def settings(self) -> dict[str, Any]:
        """The method's (or the training's) recorded settings."""
        return dict(self.protocol.get("config") or {})

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = {"schema": SCHEMA, "version": SCHEMA_VERSION}
        for f in fields(self):
            if f.name == "source":
                continue
            value = getattr(self, f.name)
            data[f.name] = asdict(value) if isinstance(value, TargetRef) else value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> RunRecord:
        """A record from its JSON form (this schema version; see :func:`read_run` for older)."""
        where = source or "run record"
        if data.get("schema") != SCHEMA:
            raise FormatError(
                where, "not a run record", key="schema", expected=SCHEMA, actual=data.get("schema")
            )
        if data.get("version") != SCHEMA_VERSION:
            raise FormatError(
                where,
                "run record of an unknown schema version",
                key="version",
                expected=SCHEMA_VERSION,
                actual=data.get("version"),
                fix="read it with the toolkit version that wrote it, or upgrade this one",
            )
        names = {f.name for f in fields(cls)} - {"source"}
        if not isinstance(data.get("files", {}), dict):
            raise FormatError(where, "bad file list", key="files", expected="{path: sha256}",
                              actual=type(data["files"]).__name__)  # fmt: skip
        values = {k: v for k, v in data.items() if k in names}
        target = values.get("target")
        if target is not None:
            if not isinstance(target, dict) or not {"dataset_id", "task"} <= set(target):
                raise FormatError(
                    where,
                    "bad target",
                    key="target",
                    expected="{dataset_id, task, ...}",
                    actual=target,
                )
            values["target"] = TargetRef(
                str(target["dataset_id"]),
                str(target["task"]),
                target.get("target"),
                target.get("dataset_name"),
                target.get("folder"),
            )
        try:
            return cls(**values, source=source)
        except TypeError as exc:
            raise FormatError(where, f"run record is incomplete ({exc})") from None
