"""The report's numbers for one pair table (within a dataset or across two) and the rows of
``pairs.csv``."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from medimeta.audit.context import DatasetFacts, labels_of, pair_tasks
from medimeta.audit.descriptors import Descriptors
from medimeta.audit.duplicates import PairTable, mutual_best, paired_mask
from medimeta.audit.pairing import winning_combos
from medimeta.audit.views import combo_name

CSV_COLUMNS = (
    "dataset_a",
    "index_a",
    "dataset_b",
    "index_b",
    "score",
    "kind",
    "split_a",
    "split_b",
    "label_a",
    "label_b",
    "views",
)


def pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def _split_pairs(sa: np.ndarray, sb: np.ndarray) -> dict[str, int]:
    out: dict[str, int] = {}
    for x, y in zip(sa, sb, strict=True):
        key = "/".join(sorted((str(x) or "-", str(y) or "-")))
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def _common(table: PairTable) -> dict[str, Any]:
    res = table.result
    return {
        "threshold": res.threshold,
        "pairs": len(table),
        "exact_pairs": int(table.exact.sum()),
        "near_pairs": int((~table.exact).sum()),
        "combinations": [combo_name(c) for c in res.combos],
        "combination_choice": res.choice,
        "scored": res.products,
        "truncated": res.truncated,
        "seconds": round(res.seconds, 3),
    }


def within_summary(table: PairTable, facts: DatasetFacts) -> dict[str, Any]:
    """Duplicates inside one dataset: counts, split crossings and label conflicts."""
    split = facts.split_of
    sa, sb = split[table.ia], split[table.ib]
    crossing = sa != sb
    task = facts.tasks()[0] if facts.tasks() else None
    la, lb = labels_of(facts, task, table.ia), labels_of(facts, task, table.ib)
    involved = np.unique(np.concatenate([table.ia, table.ib])) if len(table) else table.ia
    return {
        "dataset": facts.id,
        **_common(table),
        "images_in_pairs": int(involved.size),
        "images_in_pairs_pct": pct(int(involved.size), facts.num_samples),
        "exact_groups": table.exact_groups,
        "largest_exact_group": table.largest_group,
        "cross_split_pairs": int(crossing.sum()),
        "by_split_pair": _split_pairs(sa, sb),
        "label_task": task.name if task else None,
        "label_conflicts": int((la != lb).sum()),
    }


def _label_table(la: np.ndarray, lb: np.ndarray) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for x, y in zip(la, lb, strict=True):
        row = out.setdefault(str(x), {})
        row[str(y)] = row.get(str(y), 0) + 1
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def across_summary(table: PairTable, fa: DatasetFacts, fb: DatasetFacts) -> dict[str, Any]:
    """Images shared by two datasets: how many of each side have a partner, whether best
    partners are mutual, their labels (one row per paired image of a, its best partner) and
    the splits the pairs join."""
    res = table.result
    paired_a, paired_b = paired_mask(table, "a"), paired_mask(table, "b")
    rows = np.flatnonzero(paired_a)
    partner = res.best_a_index[rows]
    ta, tb, same_names = pair_tasks(fa, fb)
    la, lb = labels_of(fa, ta, rows), labels_of(fb, tb, partner)
    mutual = mutual_best(table)[rows]
    out = {
        "a": fa.id,
        "b": fb.id,
        **_common(table),
        "a_images": fa.num_samples,
        "a_paired": int(rows.size),
        "a_paired_pct": pct(int(rows.size), fa.num_samples),
        "b_images": fb.num_samples,
        "b_paired": int(paired_b.sum()),
        "b_paired_pct": pct(int(paired_b.sum()), fb.num_samples),
        "mutual_best_pct": pct(int(mutual.sum()), int(rows.size)),
        "label_tasks": [ta.name if ta else None, tb.name if tb else None],
        "same_label_names": same_names,
        "label_agreement_pct": pct(int((la == lb).sum()), int(rows.size)) if same_names else None,
        "label_table": _label_table(la, lb),
        "best_pair_splits": _split_pairs(fa.split_of[rows], fb.split_of[partner]),
        "score_quantiles_of_best": _quantiles(res.best_a),
    }
    return out


def _quantiles(best: np.ndarray) -> dict[str, float]:
    qs = (0.01, 0.05, 0.25, 0.5)
    vals = np.quantile(best, qs) if best.size else [float("nan")] * len(qs)
    return {f"q{int(q * 100):02d}": round(float(v), 4) for q, v in zip(qs, vals, strict=True)}


def csv_frame(
    table: PairTable,
    fa: DatasetFacts,
    fb: DatasetFacts,
    da: Descriptors,
    db: Descriptors,
) -> Any:
    """The table's pairs as a DataFrame with :data:`CSV_COLUMNS`."""
    import pandas as pd

    if table.same:
        ta = tb = fa.tasks()[0] if fa.tasks() else None
    else:
        ta, tb, _ = pair_tasks(fa, fb)
    names = winning_combos(da, db, table.result.combos, table.ia, table.ib)
    exact = table.exact
    return pd.DataFrame(
        {
            "dataset_a": table.dataset_a,
            "index_a": table.ia,
            "dataset_b": table.dataset_b,
            "index_b": table.ib,
            "score": np.round(table.score.astype(np.float64), 5),
            "kind": np.where(exact, "exact", "near"),
            "split_a": fa.split_of[table.ia],
            "split_b": fb.split_of[table.ib],
            "label_a": labels_of(fa, ta, table.ia),
            "label_b": labels_of(fb, tb, table.ib),
            "views": np.where(exact, "exact", np.array(names, dtype=object)),
        },
        columns=list(CSV_COLUMNS),
    )


def dataset_pairs(ids: list[str]) -> list[tuple[str, str]]:
    """Unordered pairs of distinct datasets, in the order given."""
    return list(itertools.combinations(ids, 2))
