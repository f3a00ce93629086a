"""The structure ``report --audit`` needs of an audit's ``report.json``, checked before use.

A report that was cut short, edited or written by something else is refused with one
:class:`~medimeta.errors.FormatError` line naming the file, the place in it
(``across[2].pairs``), the expected and the actual value, instead of a ``KeyError`` halfway
through the page. Only what the pages read is checked; other keys are free.

Spec language: ``"int"``, ``"num"`` (int or float), ``"str"``, a trailing ``?`` allows null;
``("list", spec)``; ``("map", spec)`` (string keys); a dict of keys (a key ending in ``?`` may
be absent); ``("pair", spec)`` a list of two.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medimeta.errors import FormatError

_COUNTS = ("map", ("map", "num?"))
SCHEMA: dict[str, Any] = {
    "audit": {"root": "str", "datasets": ("list", "str"), "options": {"threshold": "num"}},
    "across": (
        "list",
        {
            "a": "str",
            "b": "str",
            "pairs": "int",
            "a_paired": "int",
            "a_images": "int",
            "a_paired_pct": "num?",
            "b_paired": "int",
            "b_images": "int",
            "b_paired_pct": "num?",
            "mutual_best_pct": "num?",
            "label_agreement_pct": "num?",
            "label_tasks": ("pair", "str?"),
            "label_table": _COUNTS,
        },
    ),
    "within": (
        "list",
        {
            "dataset": "str",
            "pairs": "int",
            "exact_pairs": "int",
            "near_pairs": "int",
            "images_in_pairs": "int",
            "images_in_pairs_pct": "num?",
            "cross_split_pairs": "int",
            "by_split_pair": ("map", "num?"),
            "label_conflicts": "int",
        },
    ),
    "datasets": (
        "map",
        {
            "subjects": (
                "list",
                {
                    "column": "str",
                    "subjects": "int",
                    "leaking_subjects": "int",
                    "images_of_leaking_subjects": "int",
                    "by_split_pair": ("map", "num?"),
                },
            ),
            "suspect_labels?": (
                "list",
                {
                    "task": "str",
                    "checked": "int",
                    "cv_accuracy": "num?",
                    "issues": "int",
                    "issues_by_class": ("map", "num?"),
                    "checked_by_class": ("map", "num?"),
                },
            ),
            "balance": (
                "list",
                {
                    "task": "str",
                    "target": "str",
                    "counts": _COUNTS,
                    "imbalance": "num?",
                    "split_shift_pp": "num?",
                },
            ),
        },
    ),
}
_TYPES = {"int": (int,), "num": (int, float), "str": (str,)}


def _problem(value: Any, spec: Any, where: str) -> tuple[str, str, Any] | None:
    """(place, expected, actual) of the first mismatch, None when ``value`` fits ``spec``."""
    if isinstance(spec, str):
        base, nullable = spec.rstrip("?"), spec.endswith("?")
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, _TYPES[base]):
            return where, spec.replace("num", "number").replace("?", " or null"), value
        return None
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return where, "an object", type(value).__name__
        for key, inner in spec.items():
            name = key.rstrip("?")
            if name not in value:
                if key.endswith("?"):
                    continue
                return f"{where}.{name}".lstrip("."), "present", "missing"
            found = _problem(value[name], inner, f"{where}.{name}".lstrip("."))
            if found:
                return found
        return None
    kind, inner = spec
    if kind == "map":
        if not isinstance(value, dict):
            return where, "an object", type(value).__name__
        items = list(value.items())
    else:
        if not isinstance(value, list):
            return where, "a list", type(value).__name__
        if kind == "pair" and len(value) != 2:
            return where, "a list of two", value
        items = list(enumerate(value))
    for key, item in items:
        found = _problem(item, inner, f"{where}[{key!r}]" if kind == "map" else f"{where}[{key}]")
        if found:
            return found
    return None


def check_audit(report: Any, path: str | Path) -> dict[str, Any]:
    """``report`` when it has the structure the audit pages read; FormatError otherwise."""
    found = _problem(report, SCHEMA, "")
    if found is None:
        balance = _missing_all(report)
        if balance is None:
            return dict(report)
        found = balance
    where, expected, actual = found
    shown = actual if not isinstance(actual, dict | list) else type(actual).__name__
    raise FormatError(
        path,
        "is not an audit report this toolkit can show",
        key=where or "(top level)",
        expected=expected,
        actual=shown if not isinstance(shown, str) else shown[:80],
        fix="pass the --out folder of `medimeta audit` (run the audit again if it was edited)",
    )


def _missing_all(report: dict[str, Any]) -> tuple[str, str, Any] | None:
    for ds, section in report["datasets"].items():
        for i, b in enumerate(section["balance"]):
            if "all" not in b["counts"]:
                return f"datasets[{ds!r}].balance[{i}].counts", "a count for 'all'", "missing"
    return None
