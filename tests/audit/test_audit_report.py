"""The audit's report: subject leakage, balance, pairs.csv, report.json/.md, audit.html, the
cache and the command line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import typer
from audit_helpers import area_down_up, jpeg, smooth_images, write_dataset
from typer.testing import CliRunner

from medimeta.audit import AuditCache
from medimeta.audit.context import DatasetFacts
from medimeta.audit.leakage import balance, subject_leakage
from medimeta.audit.run import AuditOptions, run_audit
from medimeta.audit.summary import CSV_COLUMNS
from medimeta.cli.audit import audit_command
from medimeta.cli.options import make_app
from medimeta.format.reader import DatasetFolder
from medimeta.plots.audit_page import audit_fragment, write_audit_page


def _two_datasets(root: Path) -> None:
    base = smooth_images(24, seed=21)
    base[20] = jpeg(base[3], quality=80)  # a near duplicate inside, across splits
    splits = ["test" if i % 4 == 0 else "train" for i in range(24)]
    splits[3], splits[20] = "train", "test"
    patients = [f"P{i // 2:02d}" for i in range(24)]  # two images per patient
    write_dataset(root, "big", base, splits=splits, patients=patients)
    small = smooth_images(10, seed=22)
    small[0] = area_down_up(base[5])
    small[1] = area_down_up(base[9])
    write_dataset(root, "small", small, labels=[1, 0, 0, 1, 0, 1, 0, 1, 0, 1])


def test_subject_leakage_and_balance(root: Path) -> None:
    _two_datasets(root)
    facts = DatasetFacts(DatasetFolder(root / "big"))
    (leak,) = subject_leakage(facts)
    assert leak["column"] == "patient_id" and leak["subjects"] == 12
    # patients 00, 02, 04, ... hold one test image (index % 4 == 0) and one train image
    leaking = {e["subject"] for e in leak["examples"]}
    assert leak["leaking_subjects"] == len(leaking) == 6
    assert leak["by_split_pair"] == {"train/test": 6}
    assert all(e["images"] == {"test": 1, "train": 1} for e in leak["examples"])
    (b,) = balance(facts)
    assert b["counts"]["all"] == {"cat a": 12, "cat b": 12}
    assert b["imbalance"] == 1.0 and b["counts"]["test"]["cat a"] + b["counts"]["test"][
        "cat b"
    ] == len(facts.folder.split_indices("test"))


def test_run_audit_writes_json_markdown_csv_and_html(root: Path, tmp_path: Path) -> None:
    _two_datasets(root)
    out = tmp_path / "out"
    logs: list[str] = []
    opts = AuditOptions(labels=False, cache=tmp_path / "cache")
    run = run_audit(root, [], out, opts, log=logs.append)
    write_audit_page(out, run.report)
    assert logs[0].startswith("estimate: descriptors 34 images")
    assert {p.name for p in out.iterdir()} == {
        "report.json",
        "report.md",
        "pairs.csv",
        "audit.html",
        "pictures",
    }
    with open(out / "pairs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    got = {(r["dataset_a"], int(r["index_a"]), r["dataset_b"], int(r["index_b"])) for r in rows}
    assert got == {("big", 3, "big", 20), ("big", 5, "small", 0), ("big", 9, "small", 1)}
    assert all(r["kind"] == "near" and float(r["score"]) >= 0.95 for r in rows)
    inside = next(r for r in rows if r["dataset_b"] == "big")
    assert (inside["split_a"], inside["split_b"]) == ("train", "test")
    report = json.loads((out / "report.json").read_text())
    assert report == json.loads(json.dumps(run.report, default=str))
    w_big = report["within"][0]
    assert w_big["pairs"] == 1 and w_big["cross_split_pairs"] == 1
    (across,) = report["across"]
    assert (across["a_paired"], across["b_paired"]) == (2, 2)
    assert across["same_label_names"] and across["label_agreement_pct"] == 50.0
    assert report["datasets"]["big"]["subjects"][0]["leaking_subjects"] == 6
    md = (out / "report.md").read_text()
    assert "| big | small | 2 |" in md and "## Subject leakage across splits" in md
    page = (out / "audit.html").read_text()
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")


def test_html_escapes_everything(root: Path, tmp_path: Path) -> None:
    _two_datasets(root)
    run = run_audit(root, ["big"], tmp_path / "o", AuditOptions(labels=False), log=lambda m: None)
    report = run.report
    report["within"][0]["dataset"] = "<script>alert(1)</script>"
    report["datasets"]["big"]["balance"][0]["counts"]["all"]["<b>x</b>"] = 1
    text = audit_fragment(report)
    assert "<script>" not in text and "&lt;script&gt;" in text and "&lt;b&gt;x" in text


def test_descriptors_are_cached_by_fingerprint(root: Path, tmp_path: Path) -> None:
    path = write_dataset(root, "c", smooth_images(5, seed=30))
    cache = AuditCache(tmp_path / "cache")
    first = cache.descriptors(DatasetFolder(path))
    again = AuditCache(tmp_path / "cache").descriptors(DatasetFolder(path))
    assert not first.from_cache and again.from_cache
    assert again.fingerprint == first.fingerprint
    assert np.array_equal(again.thumbs, first.thumbs)
    assert np.array_equal(again.hashes, first.hashes)
    import h5py

    with h5py.File(path / "images.hdf5", "r+") as f:  # a changed pixel: a new fingerprint
        f["images"][0, 0, 0] = 255 - f["images"][0, 0, 0]
    changed = AuditCache(tmp_path / "cache").descriptors(DatasetFolder(path))
    assert not changed.from_cache and changed.fingerprint != first.fingerprint


def _cli() -> typer.Typer:
    app = make_app("medimeta", "test app")
    app.command("audit")(audit_command)

    @app.callback()
    def _cb() -> None:
        """Test."""

    return app


def test_cli_audit(root: Path, tmp_path: Path) -> None:
    _two_datasets(root)
    out = tmp_path / "cli-out"
    args = ["audit", "big", "small", "--root", str(root), "--out", str(out), "--no-labels"]
    result = CliRunner().invoke(_cli(), [*args, "--cache", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert "estimate: descriptors" in result.output and "big x small: 2 pairs" in result.output
    assert "(3 pairs)" in result.output
    assert (out / "pairs.csv").is_file() and (out / "report.md").is_file()
    quiet = CliRunner().invoke(_cli(), [*args, "-q", "--no-html", "--no-within", "--no-across"])
    # no pairs; the subjects in two splits are still pictured
    assert quiet.exit_code == 0, quiet.output
    assert quiet.output.strip().splitlines() == [
        f"wrote {out}: pairs.csv, report.json, report.md, pictures (0 pairs)"
    ]


def test_cli_help_follows_the_conventions() -> None:
    result = CliRunner().invoke(_cli(), ["audit", "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert max(len(line) for line in result.output.splitlines()) <= 80
    for flag in ("--quiet", "--verbose", "--threshold", "--no-labels", "--cache"):
        assert flag in result.output
    cmd = typer.main.get_command(_cli()).commands["audit"]  # type: ignore[attr-defined]
    assert all(p.help for p in cmd.params if type(p).__name__.endswith("Option"))


@pytest.mark.parametrize("bad", [["--variants", "some"], ["--threshold", "1.5"]])
def test_cli_refuses_bad_options(root: Path, tmp_path: Path, bad: list[str]) -> None:
    _two_datasets(root)
    args = ["audit", "--root", str(root), "--out", str(tmp_path / "x"), "--no-labels", *bad]
    result = CliRunner().invoke(_cli(), args)
    assert result.exit_code != 0
