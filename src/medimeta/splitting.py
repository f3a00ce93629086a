"""Deterministic, subject-aware train/val/test splits and the split manifest.

Rules (each chosen so that the same input always gives the same splits, whatever the row order
or the numpy/pandas version):

* Groups. All rows with the same group key (patient, volume, image) get the same split. Keys are
  compared through :func:`canonical_key`, a type-tagged JSON form: ``3``, ``np.int64(3)`` and
  ``3.0`` are the same key, ``"3"`` is a different one, tuples are multi-column keys. Missing keys
  (None, NaN) are an error.
* Order. A group's position is the SHA-256 of ``f"{seed}:{canonical_key}"`` (ties, which need a
  hash collision, by the canonical key). No numpy or pandas shuffle is involved.
* Counts. Split ``s`` gets ``ratio_s * G`` groups rounded by the largest-remainder method:
  everyone gets the floor, the leftover groups go to the largest fractional parts, ties to the
  earlier split in train, val, test order. Ratios are read as their shortest decimal form
  (0.7 is 7/10 exactly) and must be non-negative and sum to 1 within 1e-9.
* Assignment. Groups in hash order fill train, then val, then test.
* Stratification. A group's label is its most frequent row label (ties: the smallest canonical
  label). Each label stratum is counted and assigned on its own with the rules above, so every
  stratum's split counts are within one group of ``ratio * stratum size``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from medimeta.errors import FormatError, SplitError
from medimeta.safeio import write_json

SPLIT_NAMES = ("train", "val", "test")
MANIFEST_FORMAT = "medimeta-split-manifest"
MANIFEST_VERSION = 1
MANIFEST_FILENAME = "split_manifest.json"
_RATIO_TOLERANCE = 1e-9
_MANIFEST_KEYS = ("format", "version", "method", "seed", "ratios", "group_column", "counts")

Ratios = Mapping[str, float] | Sequence[float]


def _normal_form(key: Any) -> Any:
    """JSON-able, type-tagged form of a group key or label (see the module docstring)."""
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, bool):
        return ["b", key]
    if isinstance(key, int):
        return ["i", str(key)]
    if isinstance(key, float):
        if math.isnan(key):
            raise SplitError("a group key or label is NaN (missing); fill or drop those rows")
        if key.is_integer():
            return ["i", str(int(key))]
        return ["f", repr(key)]
    if isinstance(key, str):
        return ["s", key]
    if isinstance(key, (tuple, list)):
        return ["t", [_normal_form(k) for k in key]]
    if key is None or type(key).__name__ in ("NAType", "NaTType"):
        raise SplitError("a group key or label is missing (None or NA); fill or drop those rows")
    raise SplitError(
        f"unsupported group key or label type {type(key).__name__} ({key!r}); use str, int, "
        "float, bool or a tuple of those"
    )


def canonical_key(key: Hashable) -> str:
    """Canonical string form of a key; equal keys (3, np.int64(3), 3.0) give equal strings."""
    return json.dumps(_normal_form(key), separators=(",", ":"), ensure_ascii=False)


def _canonical_all(values: Sequence[Hashable]) -> list[str]:
    # Cache by (type, value): bool and int compare equal in a dict but are different keys here.
    cache: dict[tuple[type, Hashable], str] = {}
    out = []
    for v in values:
        tag = (type(v), v)
        try:
            text = cache[tag]
        except KeyError:
            text = cache[tag] = canonical_key(v)
        except TypeError as exc:
            raise SplitError(f"group keys and labels must be hashable; got {v!r}") from exc
        out.append(text)
    return out


def group_hash(key: Hashable, seed: int) -> str:
    """Hex SHA-256 of ``f"{seed}:{canonical_key(key)}"``: the group's place in the shuffle."""
    return hashlib.sha256(f"{int(seed)}:{canonical_key(key)}".encode()).hexdigest()


def normalize_ratios(ratios: Ratios) -> dict[str, Fraction]:
    """Validate ratios; return exact fractions keyed by split name in train, val, test order.

    A sequence is read as (train, val) or (train, val, test); a mapping may name any of
    train/val/test (missing ones are 0).
    """
    if isinstance(ratios, Mapping):
        unknown = sorted(set(ratios) - set(SPLIT_NAMES))
        if unknown:
            raise SplitError(f"unknown split name(s) {unknown} in ratios; use {SPLIT_NAMES}")
        given = {name: ratios.get(name, 0.0) for name in SPLIT_NAMES}
    else:
        values = list(ratios)
        if len(values) not in (2, 3):
            raise SplitError(
                f"ratios must be (train, val) or (train, val, test); got {len(values)} values"
            )
        given = dict(zip(SPLIT_NAMES, [*values, 0.0, 0.0][:3], strict=True))
    out: dict[str, Fraction] = {}
    for name, value in given.items():
        v = float(value)
        if not math.isfinite(v) or v < 0:
            raise SplitError(f"ratio for {name!r} must be a finite number >= 0; got {value!r}")
        out[name] = Fraction(repr(v))
    total = sum(out.values(), Fraction(0))
    if abs(float(total) - 1.0) > _RATIO_TOLERANCE:
        raise SplitError(
            f"ratios must sum to 1 (within {_RATIO_TOLERANCE}); got {float(total)!r} from "
            f"{ {k: float(v) for k, v in out.items()} }"
        )
    # Rescale so that the exact fractions sum to exactly 1 (0.1 + 0.2 + 0.7 may not in floats).
    return {name: value / total for name, value in out.items()}


def split_counts(n_groups: int, ratios: Ratios) -> dict[str, int]:
    """Number of groups per split by the largest-remainder rule (ties: train, val, test)."""
    exact = normalize_ratios(ratios)
    quotas = {name: r * n_groups for name, r in exact.items()}
    counts = {name: math.floor(q) for name, q in quotas.items()}
    left = n_groups - sum(counts.values())
    order = sorted(SPLIT_NAMES, key=lambda s: (-(quotas[s] - counts[s]), SPLIT_NAMES.index(s)))
    for name in order[:left]:
        counts[name] += 1
    return counts


def _assign_keys(keys: list[str], ratios: Ratios, seed: int) -> dict[str, str]:
    ordered = sorted(keys, key=lambda k: (hashlib.sha256(f"{seed}:{k}".encode()).digest(), k))
    counts = split_counts(len(ordered), ratios)
    out: dict[str, str] = {}
    pos = 0
    for name in SPLIT_NAMES:
        for key in ordered[pos : pos + counts[name]]:
            out[key] = name
        pos += counts[name]
    return out


def _group_labels(keys: list[str], labels: Sequence[Hashable]) -> dict[str, str]:
    per_group: dict[str, Counter[str]] = {}
    for key, label in zip(keys, _canonical_all(labels), strict=True):
        per_group.setdefault(key, Counter())[label] += 1
    return {k: min(c, key=lambda lab: (-c[lab], lab)) for k, c in per_group.items()}


def assign_splits(
    groups: Sequence[Hashable],
    *,
    ratios: Ratios = (0.7, 0.1, 0.2),
    seed: int,
    labels: Sequence[Hashable] | None = None,
) -> np.ndarray:
    """Assign every row a split name so that rows of one group share it (module rules).

    Returns a numpy string array with one of ``"train"``, ``"val"``, ``"test"`` per row.
    ``labels`` (one per row) turns on stratification by each group's majority label.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise SplitError(f"seed must be an integer; got {seed!r}")
    normalize_ratios(ratios)
    keys = _canonical_all(groups)
    if labels is not None and len(labels) != len(keys):
        raise SplitError(f"got {len(labels)} labels for {len(keys)} rows; give one label per row")
    distinct = sorted(set(keys))
    if labels is None:
        by_key = _assign_keys(distinct, ratios, int(seed))
    else:
        group_label = _group_labels(keys, labels)
        strata: dict[str, list[str]] = {}
        for key in distinct:
            strata.setdefault(group_label[key], []).append(key)
        by_key = {}
        for label in sorted(strata):
            by_key.update(_assign_keys(strata[label], ratios, int(seed)))
    return np.array([by_key[k] for k in keys], dtype="<U5")


def reuse_source_splits(
    source_splits: Sequence[str], mapping: Mapping[str, str] | None = None
) -> np.ndarray:
    """Map the source's own split names to MedIMeta names (default: train/val/test unchanged)."""
    table = dict(mapping) if mapping is not None else {s: s for s in SPLIT_NAMES}
    bad_targets = sorted({str(v) for v in table.values()} - set(SPLIT_NAMES))
    if bad_targets:
        raise SplitError(f"mapping targets {bad_targets} are not split names {SPLIT_NAMES}")
    unknown = sorted({str(s) for s in source_splits} - set(table))
    if unknown:
        raise SplitError(
            f"source split value(s) {unknown} have no mapping; known: {sorted(table)}; add them "
            "to the mapping"
        )
    return np.array([table[str(s)] for s in source_splits], dtype="<U5")


def check_groups_disjoint(groups: Sequence[Hashable], splits: Sequence[str]) -> None:
    """Raise SplitError if any group has rows in more than one split."""
    if len(groups) != len(splits):
        raise SplitError(f"got {len(groups)} group keys but {len(splits)} split values")
    seen: dict[str, str] = {}
    clashes: list[str] = []
    for key, split in zip(_canonical_all(groups), splits, strict=True):
        first = seen.setdefault(key, str(split))
        if first != split and len(clashes) < 5:
            clashes.append(f"{key} in {first!r} and {split!r}")
    if clashes:
        raise SplitError(
            "group(s) appear in more than one split: " + "; ".join(clashes) + "; the group key "
            "must identify the subject, and every row of a subject needs the same split"
        )


def assign_splits_within(
    groups: Sequence[Hashable],
    source_splits: Sequence[str],
    *,
    resplit: str | Sequence[str] = "train",
    ratios: Ratios = (0.85, 0.15),
    seed: int,
    labels: Sequence[Hashable] | None = None,
    mapping: Mapping[str, str] | None = None,
    require_disjoint: bool = True,
) -> np.ndarray:
    """Re-split only the rows whose source split is in ``resplit``; map the others.

    Typical use: source train -> 85/15 train/val by patient, source test stays test. Rows not
    re-split go through :func:`reuse_source_splits` with ``mapping``. With ``require_disjoint``
    a group that ends up in two splits (because the source put it in two) raises SplitError.
    """
    # Plain lists: positional indexing must not hit a pandas Series' label index.
    group_list, source_list = list(groups), [str(s) for s in source_splits]
    label_list = None if labels is None else list(labels)
    n = len(group_list)
    if len(source_list) != n or (label_list is not None and len(label_list) != n):
        raise SplitError("groups, source_splits and labels must have one value per row")
    chosen = {resplit} if isinstance(resplit, str) else set(resplit)
    idx_in = [i for i, s in enumerate(source_list) if s in chosen]
    idx_out = [i for i, s in enumerate(source_list) if s not in chosen]
    out = np.empty(n, dtype="<U5")
    if idx_in:
        out[idx_in] = assign_splits(
            [group_list[i] for i in idx_in],
            ratios=ratios,
            seed=seed,
            labels=None if label_list is None else [label_list[i] for i in idx_in],
        )
    if idx_out:
        out[idx_out] = reuse_source_splits([source_list[i] for i in idx_out], mapping)
    if require_disjoint:
        check_groups_disjoint(group_list, list(out))
    return out


def _json_key(key: Hashable) -> Any:
    """A group key as a plain JSON value (numpy scalars unwrapped, tuples as lists)."""
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, float) and key.is_integer():
        return int(key)
    if isinstance(key, (tuple, list)):
        return [_json_key(k) for k in key]
    return key


def assignment_fingerprint(groups: Sequence[Hashable], splits: Sequence[str]) -> str:
    """SHA-256 over the sorted ``canonical_key<TAB>split`` lines of all distinct groups."""
    pairs = sorted(set(zip(_canonical_all(groups), (str(s) for s in splits), strict=True)))
    digest = hashlib.sha256()
    for key, split in pairs:
        digest.update(f"{key}\t{split}\n".encode())
    return digest.hexdigest()


def build_split_manifest(
    groups: Sequence[Hashable],
    splits: Sequence[str],
    *,
    method: str,
    seed: int | None,
    ratios: Ratios | None,
    group_column: str,
    stratify_column: str | None = None,
    include_groups: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Describe an assignment: method, seed, ratios, rows and groups per split, fingerprint."""
    check_groups_disjoint(groups, splits)
    unknown = sorted({str(s) for s in splits} - set(SPLIT_NAMES))
    if unknown:
        raise SplitError(f"split values {unknown} are not split names {SPLIT_NAMES}")
    keys = _canonical_all(groups)
    first_value: dict[str, Hashable] = {}
    split_of: dict[str, str] = {}
    rows: Counter[str] = Counter()
    for key, value, split in zip(keys, groups, splits, strict=True):
        first_value.setdefault(key, value)
        split_of[key] = str(split)
        rows[str(split)] += 1
    n_groups = Counter(split_of.values())
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "method": method,
        "seed": seed,
        "ratios": None
        if ratios is None
        else {k: float(v) for k, v in normalize_ratios(ratios).items()},
        "rounding": "largest_remainder",
        "order": "sha256(f'{seed}:{canonical_key}')",
        "group_column": group_column,
        "stratify_column": stratify_column,
        "counts": {s: {"rows": rows[s], "groups": n_groups[s]} for s in SPLIT_NAMES},
        "fingerprint": assignment_fingerprint(groups, splits),
        "extra": dict(extra or {}),
    }
    if include_groups:
        manifest["groups"] = {
            s: [_json_key(first_value[k]) for k in sorted(split_of) if split_of[k] == s]
            for s in SPLIT_NAMES
        }
    return manifest


def write_split_manifest(path: str | Path, manifest: Mapping[str, Any]) -> Path:
    """Write a manifest as JSON atomically (through :mod:`medimeta.safeio`)."""
    target = Path(path)
    missing = [k for k in _MANIFEST_KEYS if k not in manifest]
    if missing:
        raise SplitError(f"manifest for {target} lacks keys {missing}; use build_split_manifest")
    return write_json(target, dict(manifest), ensure_ascii=False, allow_nan=False)


def read_split_manifest(path: str | Path) -> dict[str, Any]:
    """Read and check a manifest written by :func:`write_split_manifest`."""
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FormatError(source, f"not valid JSON ({exc})", fix="rebuild the splits") from exc
    if not isinstance(data, dict):
        raise FormatError(source, "top level must be a JSON object", actual=type(data).__name__)
    missing = [k for k in _MANIFEST_KEYS if k not in data]
    if missing:
        raise FormatError(source, "split manifest lacks required keys", expected=missing)
    if data["format"] != MANIFEST_FORMAT:
        raise FormatError(
            source,
            "not a split manifest",
            key="format",
            expected=MANIFEST_FORMAT,
            actual=data["format"],
        )
    if data["version"] != MANIFEST_VERSION:
        raise FormatError(
            source,
            "unsupported split manifest version",
            key="version",
            expected=MANIFEST_VERSION,
            actual=data["version"],
            fix="upgrade medimeta",
        )
    return data
