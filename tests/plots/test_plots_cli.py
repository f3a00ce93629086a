"""``medimeta montage``, ``report``, ``plot ...`` and ``episodes show --image`` through the CLI."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from plot_toys import make_runs
from typer.testing import CliRunner

from medimeta.cli.app import app

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def _png(path: Path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        return img.size


def test_montage_overview_is_deterministic(toy_root: Path, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    assert "wrote" in _ok(["montage", "--root", str(toy_root), "--out", str(a)])
    _ok(["montage", "--root", str(toy_root), "--out", str(b)])
    _ok(["montage", "--root", str(toy_root), "--out", str(c), "--seed", "7"])
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    width, height = _png(a)
    assert width > height > 100


def test_montage_per_class_and_plain_grid(toy_root: Path, tmp_path: Path) -> None:
    grid = tmp_path / "grid.png"
    root = ["--root", str(toy_root)]
    _ok(
        ["montage", "toy_gray", *root, "--per-class", "2", "--task", "DR level", "--out", str(grid)]
    )
    assert _png(grid)[1] > 6 * 100  # six ordinal classes, one row each
    plain = tmp_path / "plain.png"
    _ok(["montage", "toy_rgb", *root, "--length", "2", "--split", "train+val", "--out", str(plain)])
    assert _png(plain) == (448, 448)
    bad = runner.invoke(app, ["montage", *root, "--per-class", "2", "--out", str(grid)], env=WIDE)
    assert bad.exit_code != 0 and "exactly one id" in str(bad.exception)


def test_report_command(toy_root: Path, tmp_path: Path) -> None:
    runs = make_runs(tmp_path / "runs")
    out = tmp_path / "site"
    output = _ok(["report", "--root", str(toy_root), "--runs", str(runs), "--out", str(out)])
    assert "2 datasets, 4 runs" in output
    assert (out / "index.html").is_file() and (out / "overview.png").is_file()


def test_plot_commands(toy_root: Path, tmp_path: Path) -> None:
    runs = make_runs(tmp_path / "runs")
    root = ["--root", str(toy_root)]
    _ok(["plot", "labels", "toy_rgb", *root, "--out", str(tmp_path / "labels.png")])
    _ok(["plot", "labels", "toy_rgb", *root, "--splits", "--out", str(tmp_path / "splits.png")])
    sup = runs / "toy_gray" / "case_category" / "resnet18"
    _ok(["plot", "run", str(sup), "--out", str(tmp_path / "sup")])
    assert sorted(p.name for p in (tmp_path / "sup").iterdir()) == [
        "curves.png",
        "roc_test.png",
        "roc_val.png",
    ]
    _ok(
        [
            "plot",
            "run",
            str(runs / "fewshot" / "toy_gray" / "protonet"),
            "--out",
            str(tmp_path / "fs"),
        ]
    )
    assert (tmp_path / "fs" / "episodes.png").is_file()
    _ok(["plot", "fewshot", str(runs), "--out", str(tmp_path / "fewshot.png")])
    _png(tmp_path / "fewshot.png")
    for name in ("labels", "splits"):
        _png(tmp_path / f"{name}.png")
    tex = tmp_path / "tasks.tex"
    _ok(["plot", "tasks", "--format", "latex", "--out", str(tex)])
    assert "\\toprule" in tex.read_text(encoding="utf-8")
    assert "| `bus` |" in _ok(["plot", "tasks"])


def test_episodes_show_image(toy_root: Path, tmp_path: Path) -> None:
    eps = tmp_path / "toy.episodes.json"
    root = ["--root", str(toy_root)]
    _ok(
        [
            "episodes",
            "sample",
            *root,
            "--task",
            "toy_gray:case category",
            "--shots",
            "1",
            "--query",
            "2",
            "--episodes",
            "3",
            "--seed",
            "0",
            "--out",
            str(eps),
        ]
    )
    text = _ok(["episodes", "show", str(eps)])
    assert "classes" in text and "support:" not in text  # the text summary, unchanged
    listed = _ok(["episodes", "show", str(eps), "--episode", "1"])
    assert "support: " in listed and "->" in listed
    image = tmp_path / "episode.png"
    out = _ok(["episodes", "show", str(eps), *root, "--image", str(image)])
    assert "wrote" in out and "support:" not in out
    width, height = _png(image)
    assert width > height > 200
    other = tmp_path / "episode2.png"
    _ok(["episodes", "show", str(eps), *root, "--image", str(other), "--episode", "2"])
    assert other.read_bytes() != image.read_bytes()
    missing = runner.invoke(
        app, ["episodes", "show", str(eps), *root, "--image", str(other), "--episode", "9"]
    )
    assert missing.exit_code != 0 and "no episode 9" in str(missing.exception)
