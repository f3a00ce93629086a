"""Every export escaped for its format, and ``report --audit`` refusing a report it cannot show.

Class names, dataset ids and annotation values come from data files: a label
``<img src=x onerror=alert(1)>`` must not become HTML in a rendered ``report.md``, a label
``=HYPERLINK(...)`` must not become a formula in ``pairs.csv``, a ``|`` must not split a
Markdown table cell, and ``$\\foo{$`` must be drawn as text in a figure (not parsed as
mathtext). An audit ``report.json`` that is not what the audit writes is refused with one line
naming the place in it, and nothing is written.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from audit.audit_helpers import smooth_images, write_dataset
from fixtures.release import ToyTask
from medimeta.audit.run import AuditOptions, run_audit
from medimeta.cli.app import main
from medimeta.errors import FormatError
from medimeta.evaluate.predictions import Predictions
from medimeta.evaluate.subgroups import report_markdown, subgroup_report
from medimeta.plots._figure import figure_png, new_figure
from medimeta.plots.report import read_audit

IMG = "<img src=x onerror=alert(1)>"
FORMULA = '=HYPERLINK("http://evil.example","x")'
PIPE = "a|b *c* [d](e)"
MATH = "$\\foo{$"
TASK = ToyTask("kind", "MULTICLASS_CLASSIFICATION", {0: IMG, 1: FORMULA, 2: PIPE, 3: MATH})


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An audit of a dataset whose class names are hostile (with exact duplicate pairs)."""
    base = tmp_path_factory.mktemp("exports")
    root = base / "root"
    images = smooth_images(16, seed=5)
    images[8:12] = images[0:4]  # four exact duplicates: pairs.csv has rows with labels
    write_dataset(root, "evil", images, labels=[i % 4 for i in range(16)], task=TASK)
    out = base / "audit"
    run_audit(root, [], out, AuditOptions(labels=False), log=lambda m: None)
    return {"root": root, "audit": out}


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_audit_markdown_carries_labels_as_text(audited: dict[str, Path]) -> None:
    md = (audited["audit"] / "report.md").read_text()
    assert "<img" not in md and "&lt;img src=x onerror=alert(1)&gt;" in md
    assert "a\\|b \\*c\\* \\[d\\](e)" in md
    header, checked = "", 0
    for line in md.splitlines():
        if not line.startswith("|"):
            header = ""  # a table ends
        elif not header:
            header = line  # the first row of a table is its header
        elif "img" in line:  # a row of that table: no cell was split
            assert line.count(" | ") == header.count(" | "), (line, header)
            checked += 1
    assert checked >= 2


def test_pairs_csv_has_no_formula_cells(audited: dict[str, Path]) -> None:
    with open(audited["audit"] / "pairs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    cells = [row[k] for row in rows for k in ("label_a", "label_b")]
    assert rows and not [c for c in cells if c.startswith(("=", "+", "-", "@"))]
    assert "'" + FORMULA in cells


def test_report_pages_and_label_figures_draw_hostile_names_as_text(
    audited: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "site"
    code, text = _run(
        ["report", "--root", str(audited["root"]), "--out", str(out), "--audit",
         str(audited["audit"]), "--no-verify"],
        capsys,
    )  # fmt: skip
    assert code == 0, text
    for page in out.rglob("*.html"):
        assert "<img src=x" not in page.read_text(), page
    png = tmp_path / "labels.png"
    code, text = _run(
        ["plot", "labels", "evil", "--root", str(audited["root"]), "--out", str(png)], capsys
    )
    assert code == 0 and "Traceback" not in text, text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_mathtext_label_is_drawn_as_plain_text() -> None:
    fig = new_figure(3.0, 2.0, constrained=True)
    ax = fig.add_subplot()
    ax.bar([MATH, "$x^2$"], [1, 2])
    ax.set_title(MATH)
    assert figure_png(fig)[:4] == b"\x89PNG"  # matplotlib would raise ParseFatalException


def test_subgroup_markdown_escapes_group_values() -> None:
    n = 40
    preds = Predictions(
        np.arange(n), np.arange(n) % 2, np.linspace(0, 1, n), "BINARY_CLASSIFICATION", "d"
    )
    frame = pd.DataFrame(
        {"filepath": [f"images/{i:06d}.tiff" for i in range(n)], "site": [IMG, PIPE] * 20}
    )
    md = report_markdown(subgroup_report(preds, frame, ["site"], n_boot=0, min_count=1))
    assert "<img" not in md and "&lt;img" in md and "a\\|b" in md
    rows = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    assert len({line.count(" | ") for line in rows}) == 1  # every row has the header's cells


def _report(audited: dict[str, Path]) -> dict[str, Any]:
    return json.loads((audited["audit"] / "report.json").read_text())


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def edit(report: dict[str, Any]) -> Any:
        *head, last = path.split(".")
        target: Any = report
        for part in head:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is KeyError:
            del target[last]
        else:
            target[int(last) if last.isdigit() else last] = value
        return report

    return edit


#: class of fault -> (edit of report.json, the place the error names, expected)
AUDIT_FAULTS: dict[str, tuple[Callable[[dict[str, Any]], Any], str, str]] = {
    "across-missing": (_set("across", KeyError), "key: across", "present"),
    "within-not-a-list": (_set("within", {"a": 1}), "key: within", "a list"),
    "pairs-not-a-number": (_set("within.0.pairs", "12"), "key: within[0].pairs", "int"),
    "root-not-text": (_set("audit.root", 3), "key: audit.root", "str"),
    "datasets-list-of-numbers": (_set("audit.datasets", [1]), "audit.datasets[0]", "str"),
    "threshold-missing": (_set("audit.options.threshold", KeyError), "threshold", "present"),
    "balance-without-all": (
        _set("datasets.evil.balance.0.counts.all", KeyError),
        "datasets['evil'].balance[0].counts",
        "a count for 'all'",
    ),
    "subjects-not-a-list": (_set("datasets.evil.subjects", None), "subjects", "a list"),
    "report-is-a-list": (lambda r: [r], "key: (top level)", "an object"),
}


@pytest.mark.parametrize("fault", sorted(AUDIT_FAULTS))
def test_report_audit_refuses_a_report_of_the_wrong_structure(
    audited: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: str
) -> None:
    edit, place, expected = AUDIT_FAULTS[fault]
    bad = tmp_path / "audit"
    bad.mkdir()
    (bad / "report.json").write_text(json.dumps(edit(_report(audited))))
    with pytest.raises(FormatError) as info:
        read_audit(bad)
    assert place in str(info.value) and expected in str(info.value), str(info.value)
    out = tmp_path / "site"
    args = ["report", "--root", str(audited["root"]), "--out", str(out), "--audit", str(bad)]
    code, text = _run([*args, "--no-verify"], capsys)
    assert code == 2 and len(text.strip().splitlines()) == 1 and "Traceback" not in text, text
    assert text.startswith(f"error: {bad / 'report.json'}: is not an audit report"), text
    assert place in text
    assert not out.exists()


def test_the_audit_written_by_the_toolkit_passes_the_check(audited: dict[str, Path]) -> None:
    assert read_audit(audited["audit"])["audit"]["datasets"] == ["evil"]
