"""Typed access to parsed YAML nodes; every failure is a FormatError naming file and key."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medimeta.errors import FormatError

_MISSING: Any = object()

_DESCRIPTIONS: dict[type, str] = {
    str: "a string",
    int: "an integer",
    list: "a list",
    dict: "a mapping",
    Mapping: "a mapping",
}


def describe(expected: type | tuple[type, ...]) -> str:
    """Say in words what ``expected`` means ("a string or a list")."""
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(_DESCRIPTIONS.get(k, k.__name__) for k in kinds)


def child(parent: str, key: str | int) -> str:
    """Dotted key path: ``child("tasks[0]", "labels") == "tasks[0].labels"``."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def check_type(
    value: Any, expected: type | tuple[type, ...], *, path: str | Path, key: str, fix: str = ""
) -> Any:
    """Return ``value`` if it has the expected type (bool never counts as int), else raise."""
    kinds = expected if isinstance(expected, tuple) else (expected,)
    # YAML turns `yes`, `no`, `on`, `off` into booleans, and bool is a subclass of int.
    bool_ok = bool in kinds
    if isinstance(value, kinds) and (bool_ok or not isinstance(value, bool)):
        return value
    if not fix and isinstance(value, bool) and str in kinds:
        fix = "YAML read an unquoted yes/no/on/off/true/false as a boolean; quote it"
    raise FormatError(
        path,
        f"{key} must be {describe(expected)}, not {type(value).__name__}",
        key=key,
        expected=describe(expected),
        actual=value,
        fix=fix or None,
    )


def require(
    node: Mapping[str, Any],
    key: str,
    expected: type | tuple[type, ...],
    *,
    path: str | Path,
    where: str = "",
    default: Any = _MISSING,
) -> Any:
    """Return ``node[key]`` checked against ``expected``; ``default`` makes the key optional."""
    full = child(where, key)
    if key not in node:
        if default is not _MISSING:
            return default
        raise FormatError(
            path,
            f"required key {full!r} is missing",
            key=full,
            expected=describe(expected),
            actual="<missing>",
            fix=f"add `{key}:` to the file",
        )
    return check_type(node[key], expected, path=path, key=full)


def require_count(
    node: Mapping[str, Any], key: str, *, path: str | Path, where: str = "", default: Any = _MISSING
) -> int:
    """Return a non-negative integer count stored under ``key``."""
    value = require(node, key, int, path=path, where=where, default=default)
    if value < 0:
        full = child(where, key)
        raise FormatError(
            path, f"{full} must not be negative", key=full, expected="an integer >= 0", actual=value
        )
    return int(value)


def string_list(value: Any, *, path: str | Path, key: str) -> tuple[str, ...]:
    """Check a list of strings and return it as a tuple."""
    check_type(value, list, path=path, key=key)
    return tuple(check_type(v, str, path=path, key=child(key, i)) for i, v in enumerate(value))


def string_map(value: Any, *, path: str | Path, key: str) -> dict[str, str]:
    """Check a mapping of strings to strings and return it as a dict (order kept)."""
    check_type(value, Mapping, path=path, key=key)
    out: dict[str, str] = {}
    for k, v in value.items():
        check_type(k, str, path=path, key=f"{key} (a key)")
        out[k] = check_type(v, str, path=path, key=child(key, k))
    return out


def plain_name(value: str, *, path: str | Path, key: str, kind: str) -> str:
    """``value`` if it can name a file or folder on its own (no path separators, no leading
    dot, no surrounding spaces, no NUL), else FormatError: dataset ids and task names become
    folder and file names, and must never reach outside the dataset folder."""
    if (
        not value
        or value.startswith(".")
        or value != value.strip()
        or any(c in value for c in "/\\\0")
    ):
        raise FormatError(
            path,
            f"{kind} cannot be used as a file name",
            key=key,
            expected="a name without '/', '\\', a leading '.' or surrounding spaces",
            actual=value,
            fix="rename it in info.yaml (and its file under task_labels/)",
        )
    return value
