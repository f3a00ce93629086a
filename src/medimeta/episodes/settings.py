"""What an episode sampler is asked for: ways, shots, queries, shot unit, small-class rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from medimeta.errors import EpisodeError, check_choice

SHOT_UNITS = ("sample", "subject")
SMALL_CLASS_RULES = ("exclude", "error")


def _positive_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise EpisodeError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return value


@dataclass(frozen=True)
class EpisodeSettings:
    """Sampler settings; everything here (and nothing else but seed, task, split) fixes episodes.

    * ``shots`` / ``queries``: units per class in the support / query set (binary: per class
      0 and 1; multi-label: at least that many positives and negatives per label).
    * ``ways``: classes (multi-label: labels) per episode; None uses every eligible class.
      Binary tasks always have 2 ways.
    * ``shot_unit``: ``"sample"`` (one image is one shot) or ``"subject"`` (MedFM protocol: a
      shot is one subject, and all its images of that class join the set).
    * ``subject_column``: annotations.csv column naming the subject (with ``"subject"`` only).
    * ``min_class_units``: a class is eligible when it has at least this many units (samples or
      subjects) in the split; None means ``shots + queries``, the least that can work.
    * ``on_small_class``: ``"exclude"`` drops classes below the minimum with a warning (and
      records them in saved files); ``"error"`` raises EpisodeError.
    """

    shots: int = 5
    queries: int = 10
    ways: int | None = None
    shot_unit: str = "sample"
    subject_column: str = "patient_id"
    min_class_units: int | None = None
    on_small_class: str = "exclude"

    def __post_init__(self) -> None:
        _positive_int("shots", self.shots, 1)
        _positive_int("queries", self.queries, 0)
        if self.ways is not None:
            _positive_int("ways", self.ways, 1)
        check_choice("shot unit", self.shot_unit, SHOT_UNITS)
        check_choice("small-class rule", self.on_small_class, SMALL_CLASS_RULES)
        if self.min_class_units is not None:
            _positive_int("min_class_units", self.min_class_units, 1)
        if self.shot_unit == "subject" and not self.subject_column:
            raise EpisodeError("shot_unit='subject' needs a subject_column (e.g. 'patient_id')")

    @property
    def per_subject(self) -> bool:
        return self.shot_unit == "subject"

    @property
    def min_units(self) -> int:
        """Units a class (or each side of a label) needs to be eligible."""
        need = self.shots + self.queries
        return max(need, self.min_class_units or need)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if not self.per_subject:
            out["subject_column"] = None  # unused, so it must not change the episodes' hash
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpisodeSettings:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise EpisodeError(f"unknown episode settings {unknown}; known: {sorted(known)}")
        values = dict(data)
        if values.get("subject_column") is None:
            values.pop("subject_column", None)
        return cls(**values)
