"""The audit page inside `medimeta report`: linked from the index, refused when not an audit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_audit_report import _two_datasets
from typer.testing import CliRunner

from medimeta.audit.run import AuditOptions, run_audit
from medimeta.cli.app import app
from medimeta.errors import DatasetNotFoundError, FormatError
from medimeta.plots import write_report
from medimeta.plots.audit_page import write_audit_page


def test_report_links_the_audit_page(root: Path, tmp_path: Path) -> None:
    _two_datasets(root)
    audit_out = tmp_path / "audit"
    run = run_audit(root, [], audit_out, AuditOptions(labels=False, cache=tmp_path / "cache"))
    write_audit_page(audit_out, run.report)
    rep = write_report(root, tmp_path / "site", audits=[audit_out], verify=False)
    index = rep.index.read_text(encoding="utf-8")
    assert '<a href="audit.html">audit.html</a>' in index
    assert "big × small: 2 pairs" in index
    page = (tmp_path / "site" / "audit.html").read_text(encoding="utf-8")
    assert 'href="index.html"' in page and "Images shared across datasets" in page
    assert "<script" not in page
    # the page is the audit's own page plus the way home
    own = (audit_out / "audit.html").read_text(encoding="utf-8")
    assert own.split("<h1>")[1] == page.split("<h1>")[1]


def test_report_refuses_what_is_not_an_audit(root: Path, tmp_path: Path) -> None:
    _two_datasets(root)
    with pytest.raises(DatasetNotFoundError, match="no audit report"):
        write_report(root, tmp_path / "a", audits=[tmp_path], verify=False)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"kind": "fewshot"}), encoding="utf-8")
    with pytest.raises(FormatError, match="is not an audit report"):
        write_report(root, tmp_path / "b", audits=[other], verify=False)
    assert not (tmp_path / "a" / "index.html").exists()


def test_cli_report_with_audit(root: Path, tmp_path: Path) -> None:
    _two_datasets(root)
    audit_out = tmp_path / "audit"
    run_audit(root, [], audit_out, AuditOptions(labels=False, cache=tmp_path / "cache"))
    args = ["report", "--root", str(root), "--out", str(tmp_path / "site")]
    res = CliRunner().invoke(app, [*args, "--no-verify", "--audit", str(audit_out)])
    assert res.exit_code == 0, res.output
    assert "1 audit," in res.output
    assert (tmp_path / "site" / "audit.html").is_file()
