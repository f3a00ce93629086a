"""Builder registry and the ``medimeta build`` command."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fakes.bus import make_busi
from medimeta.builders import available_builders, build_dataset, builders_table, get_builder
from medimeta.cli.build import build_command
from medimeta.errors import SourceTreeError, UnknownNameError

MINE = {
    "aml",
    "bus",
    "crc",
    "derm",
    "fundus",
    "oct",
    "pbc",
    "pneumonia",
    "skinl_derm",
    "skinl_photo",
}


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("build")(build_command)
    app.command("noop")(lambda: None)  # a second command keeps "build" as a sub-command
    return app


def test_registry_lists_every_builder_with_help() -> None:
    assert set(available_builders()) >= MINE
    rows = {r["id"]: r for r in builders_table()}
    assert all(rows[i]["source"] and rows[i]["pass"] for i in MINE)
    assert get_builder("bus").dataset_id == "bus"
    with pytest.raises(UnknownNameError, match="did you mean 'bus'"):
        get_builder("buss")


def test_cli_builds_checks_and_refuses(tmp_path: Path) -> None:
    make_busi(tmp_path / "src")
    runner = CliRunner()
    args = ["build", "bus", "--source", str(tmp_path / "src"), "--root", str(tmp_path / "out")]
    result = runner.invoke(_app(), [*args, "--check", "--partial"])
    assert result.exit_code == 0, result.output
    assert "9 samples" in result.output and "OK" in result.output
    assert not (tmp_path / "out").exists()
    result = runner.invoke(_app(), [*args, "--partial", "--workers", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert "partial build of 9 images" in result.output
    assert (tmp_path / "out" / "bus" / "info.yaml").is_file()
    result = runner.invoke(_app(), [*args, "--check"])
    assert result.exit_code == 1 and "FAILED" in result.output
    assert "9 samples found; the release has 780" in result.output
    result = runner.invoke(_app(), args)
    assert isinstance(result.exception, SourceTreeError)
    assert "the release has 780" in str(result.exception)
    result = runner.invoke(_app(), ["build", "--list"])
    assert result.exit_code == 0 and "pneumonia" in result.output


@pytest.mark.parametrize("dataset_id", sorted(MINE))
def test_wrong_tree_fails_before_writing(dataset_id: str, tmp_path: Path) -> None:
    if dataset_id != "bus":  # a real-looking tree of another source
        make_busi(tmp_path / "src", per_class=1)
    (tmp_path / "src" / "notes").mkdir(parents=True, exist_ok=True)
    (tmp_path / "src" / "notes" / "readme.txt").write_text("not a dataset")
    out = tmp_path / "out"
    with pytest.raises(SourceTreeError) as err:
        build_dataset(dataset_id, tmp_path / "src", root=out)
    assert "missing:" in str(err.value) and "not found" in str(err.value)
    with pytest.raises(SourceTreeError, match=f"no {dataset_id} samples found"):
        build_dataset(dataset_id, tmp_path / "src", root=out, partial=True)
    assert not out.exists() or not any(out.iterdir())
