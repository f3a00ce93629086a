"""Task-target names shared by metrics, heads and losses (plain strings, enum values accepted)."""

from __future__ import annotations

from medimeta.errors import UnknownNameError

MULTICLASS = "MULTICLASS_CLASSIFICATION"
BINARY = "BINARY_CLASSIFICATION"
MULTILABEL = "MULTILABEL_CLASSIFICATION"
ORDINAL = "ORDINAL_REGRESSION"

TASK_TARGETS: tuple[str, ...] = (MULTICLASS, BINARY, MULTILABEL, ORDINAL)


def target_name(target: object) -> str:
    """Return the canonical string of a task target (a string or a ``TaskTarget`` member).

    Raises UnknownNameError (listing the valid values) for anything else.
    """
    value = getattr(target, "value", target)
    if not isinstance(value, str) or value not in TASK_TARGETS:
        raise UnknownNameError("task target", str(value), TASK_TARGETS)
    return value
