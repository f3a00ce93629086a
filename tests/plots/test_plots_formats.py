"""Figures people can read: every `medimeta plot` command writes PNG, SVG and PDF (the suffix
or --format decides, a contradiction is one error line), PNG at 300 dpi unless --dpi, every
figure draws with the one palette, axes carry units and targets their display names."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from plot_toys import make_fewshot_run, make_runs
from typer.testing import CliRunner

from medimeta.cli.app import app, main
from medimeta.errors import OptionError, UnknownNameError
from medimeta.plots import (
    fewshot_episodes,
    fewshot_intervals,
    label_distribution,
    reliability_diagram,
    roc_curves,
    save_figure,
    shots_curves,
    split_distribution,
    task_heatmap,
    training_curves,
)
from medimeta.plots._figure import NEUTRALS, PALETTE, SEQUENTIAL, figure_bytes
from medimeta.plots.names import dataset_name, target_labels
from medimeta.plots.outputs import output_file
from medimeta.plots.tables import task_table_figure
from medimeta.runs.record import read_runs

runner = CliRunner()
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "svg": b"<svg", "pdf": b"%PDF-"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_runs(tmp_path_factory.mktemp("format-runs") / "runs")


def _supervised(runs: Path) -> Path:
    return runs / "toy_gray" / "case_category" / "resnet18"


COMMANDS: dict[str, Callable[[Path, Path], list[str]]] = {
    "labels": lambda root, runs: ["labels", "toy_rgb", "--root", str(root)],
    "splits": lambda root, runs: ["labels", "toy_rgb", "--root", str(root), "--splits"],
    "fewshot": lambda root, runs: ["fewshot", str(runs)],
    "shots": lambda root, runs: ["shots", str(runs)],
    "heatmap": lambda root, runs: ["heatmap", str(runs)],
    "reliability": lambda root, runs: ["reliability", str(_supervised(runs))],
    "tasks": lambda root, runs: ["tasks"],
}


def _is(data: bytes, fmt: str) -> bool:
    if fmt == "svg":  # an XML declaration, then the svg element
        return data.startswith(b"<?xml") and MAGIC["svg"] in data[:600]
    return data.startswith(MAGIC[fmt])


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, ["plot", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_plot_command_writes_every_format(
    name: str, fmt: str, toy_root: Path, runs: Path, tmp_path: Path
) -> None:
    args = COMMANDS[name](toy_root, runs)
    by_suffix = tmp_path / f"{name}.{fmt}"
    assert f"wrote {by_suffix}" in _ok([*args, "--out", str(by_suffix)])
    assert _is(by_suffix.read_bytes(), fmt)
    named = tmp_path / f"{name}-by-format"  # no suffix: --format decides, the suffix is added
    _ok([*args, "--out", str(named), "--format", fmt])
    assert _is(named.with_name(named.name + f".{fmt}").read_bytes(), fmt)


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_plot_run_writes_every_format(fmt: str, runs: Path, tmp_path: Path) -> None:
    _ok(["run", str(_supervised(runs)), "--out", str(tmp_path / "sup"), "--format", fmt])
    names = sorted(p.name for p in (tmp_path / "sup").iterdir())
    assert names == [f"curves.{fmt}", f"roc_test.{fmt}", f"roc_val.{fmt}"]
    assert all(_is((tmp_path / "sup" / n).read_bytes(), fmt) for n in names)
    _ok(["run", str(runs / "fewshot" / "toy_gray" / "protonet"), "--out", str(tmp_path / "fs"),
         "--format", fmt])  # fmt: skip
    assert _is((tmp_path / "fs" / f"episodes.{fmt}").read_bytes(), fmt)


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size


def test_png_files_are_300_dpi_unless_told(toy_root: Path, tmp_path: Path) -> None:
    args = ["labels", "toy_rgb", "--root", str(toy_root), "--splits"]
    _ok([*args, "--out", str(tmp_path / "a.png")])
    assert _size(tmp_path / "a.png") == (1500, 720)  # a 5.0 x 2.4 in figure at 300 dpi
    _ok([*args, "--out", str(tmp_path / "b.png"), "--dpi", "100"])
    assert _size(tmp_path / "b.png") == (500, 240)
    with Image.open(tmp_path / "a.png") as img:
        assert round(img.info["dpi"][0]) == 300
    _ok(["tasks", "--out", str(tmp_path / "tasks.png")])
    width, height = _size(tmp_path / "tasks.png")
    fig = task_table_figure()
    assert (width, height) == (round(fig.get_figwidth() * 300), round(fig.get_figheight() * 300))


def test_the_report_keeps_screen_resolution(toy_root: Path, tmp_path: Path) -> None:
    fig = split_distribution(toy_root / "toy_rgb")
    save_figure(fig, tmp_path / "s.png")  # the library's default: 100 dpi
    assert _size(tmp_path / "s.png") == (500, 240)


def test_tasks_follows_the_suffix(tmp_path: Path) -> None:
    _ok(["tasks", "--out", str(tmp_path / "t.png")])
    assert (tmp_path / "t.png").read_bytes().startswith(MAGIC["png"])  # a picture, not Markdown
    _ok(["tasks", "--out", str(tmp_path / "t.md")])
    assert "| `bus` |" in (tmp_path / "t.md").read_text(encoding="utf-8")
    _ok(["tasks", "--out", str(tmp_path / "t.tex")])
    assert "\\toprule" in (tmp_path / "t.tex").read_text(encoding="utf-8")
    _ok(["tasks", "--out", str(tmp_path / "plain")])
    assert (tmp_path / "plain.md").is_file()
    _ok(["tasks", "--format", "latex", "--out", str(tmp_path / "table.txt")])
    assert "\\toprule" in (tmp_path / "table.txt").read_text(encoding="utf-8")
    assert "| `bus` |" in _ok(["tasks"])


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["tasks", "--out", "x.png", "--format", "svg"], ["x.png", "--format svg", "'.svg'",
                                                          "fix: write to x.svg"]),
        (["tasks", "--out", "x.md", "--format", "png"], ["x.md", "contradicts", "x.png"]),
        (["tasks", "--out", "x.jpg"], ["x.jpg", "'.jpg'", ".png, .svg, .pdf", "fix:"]),
        (["tasks", "--format", "pdf"], ["--out"]),
        (["shots", ".", "--out", "x.pdf", "--format", "png"], ["x.pdf", "'.png'"]),
    ],
)  # fmt: skip
def test_a_contradiction_is_one_clear_line(
    args: list[str], words: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [a if not a.startswith("x.") else str(tmp_path / a) for a in args]
    with pytest.raises(SystemExit) as stop:
        main(["plot", *args])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert all(w in err for w in words), err
    assert not list(tmp_path.iterdir())  # nothing written


def test_output_file_rules(tmp_path: Path) -> None:
    assert output_file(tmp_path / "a.SVG", None) == (tmp_path / "a.SVG", "svg")
    assert output_file(tmp_path / "a", None) == (tmp_path / "a.png", "png")
    assert output_file(tmp_path / "a.v2", "pdf") == (tmp_path / "a.v2", "pdf")
    with pytest.raises(OptionError, match="contradicts"):
        output_file(tmp_path / "a.pdf", "png")
    with pytest.raises(UnknownNameError, match="did you mean 'svg'"):
        output_file(tmp_path / "a", "svgz")


def _colours(fig) -> set[str]:
    """Every colour the figure's lines, patches, collections and texts are drawn in."""
    from matplotlib.collections import Collection
    from matplotlib.colors import to_hex, to_rgba_array
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.text import Text

    def add(colour) -> None:
        for c in to_rgba_array(colour):
            if c[3] > 0:  # fully transparent: not drawn
                out.add(to_hex(c, keep_alpha=False).upper())

    def shown(artist) -> bool:
        return bool(artist.get_visible()) and all(
            a.get_visible() for a in (artist.axes, getattr(artist, "figure", None)) if a
        )

    out: set[str] = set()
    for line in fig.findobj(lambda a: isinstance(a, Line2D) and shown(a)):
        add(line.get_color())
        add(line.get_markerfacecolor())
    for patch in fig.findobj(lambda a: isinstance(a, Patch) and shown(a)):
        add(patch.get_facecolor())
        if patch.get_linewidth():
            add(patch.get_edgecolor())
    for coll in fig.findobj(lambda a: isinstance(a, Collection) and shown(a)):
        if coll.get_array() is None:  # not colour-mapped (the heatmap's colour bar is)
            add(coll.get_facecolor())
            add(coll.get_edgecolor())
    for text in fig.findobj(lambda a: isinstance(a, Text) and shown(a)):
        if text.get_text():
            add(text.get_color())
    return out


def _figures(toy_root: Path, runs: Path) -> dict[str, object]:
    records = [r for r in read_runs([runs]) if r.kind == "fewshot"]
    sup = _supervised(runs)
    return {
        "labels": label_distribution(toy_root / "toy_gray"),
        "splits": split_distribution(toy_root / "toy_rgb"),
        "curves": training_curves(sup),
        "roc": roc_curves(sup / "predictions_test.csv"),
        "reliability": reliability_diagram(sup / "predictions_test.csv"),
        "fewshot": fewshot_intervals(records),
        "episodes": fewshot_episodes(records[0]),
        "shots": shots_curves(records),
        "heatmap": task_heatmap(records, columns="method"),
        "tasks": task_table_figure(),
    }


def test_every_figure_draws_with_the_palette(toy_root: Path, runs: Path) -> None:
    allowed = {c.upper() for c in (*PALETTE, *NEUTRALS)}
    for name, fig in _figures(toy_root, runs).items():
        used = _colours(fig)
        assert used <= allowed, (name, sorted(used - allowed))
        series = used & {c.upper() for c in PALETTE[:-1]}  # black is also a neutral
        assert series or name in ("tasks", "heatmap"), name
        images = [im for ax in fig.axes for im in ax.get_images()]
        assert all(im.get_cmap().name == SEQUENTIAL for im in images), name
    heat = task_heatmap([r for r in read_runs([runs]) if r.kind == "fewshot"])
    assert heat.axes[0].get_images()[0].get_cmap().name == SEQUENTIAL
    stray = split_distribution(toy_root / "toy_rgb")
    stray.axes[0].plot([0, 1], [0, 1])  # matplotlib's own default colour: caught
    assert _colours(stray) - allowed == {"#1F77B4"}


def test_axes_carry_units(toy_root: Path, runs: Path) -> None:
    figs = _figures(toy_root, runs)

    def labels(name: str, k: int = 0) -> tuple[str, str]:
        ax = figs[name].axes[k]  # type: ignore[attr-defined]
        return ax.get_xlabel(), ax.get_ylabel()

    assert labels("labels")[0] == "images"
    assert labels("splits")[1] == "images"
    assert labels("curves", 1) == ("epoch", "validation metric (%)")
    assert labels("roc") == ("false positive rate, 1 - specificity (%)",
                             "true positive rate, sensitivity (%)")  # fmt: skip
    assert labels("reliability", 0)[1] == "accuracy (%)"
    assert labels("reliability", 1) == ("confidence: probability of the predicted class (%)",
                                        "predictions (count)")  # fmt: skip
    assert labels("fewshot")[0].startswith("AUROC (%)")
    assert labels("episodes") == ("AUROC (%), one value per episode", "episodes (count)")
    assert labels("shots") == ("shots per class (log scale)", "AUROC (%)")
    heat = figs["heatmap"]
    assert heat.axes[-1].get_ylabel() == "AUROC (%)"  # type: ignore[attr-defined]
    episodes = figs["episodes"].axes[0]  # type: ignore[attr-defined]
    assert max(p.get_x() + p.get_width() for p in episodes.patches) > 30  # drawn in percent


def test_display_names_instead_of_ids(runs: Path) -> None:
    records = [r for r in read_runs([runs]) if r.kind == "fewshot"]
    fig = shots_curves(records)
    titles = [" ".join(ax.get_title(loc="left").split()) for ax in fig.axes if ax.has_data()]
    assert titles == ["Toy Dataset (toy_gray): case category",
                      "Toy Dataset (toy_rgb): case category"]  # fmt: skip
    legend = {t.get_text() for t in fig.legends[0].get_texts()}
    assert legend == {"ProtoNet (efficientnet_lite0)", "Linear probe (efficientnet_lite0)"}
    one = make_fewshot_run(runs.parent / "bus-run", dataset_id="bus")
    (rec,) = read_runs([one])
    rec.target = type(rec.target)("bus", "case category")  # no recorded name: the catalog's
    assert target_labels([rec]) == {"bus:case category": "Breast Ultrasound: case category"}
    assert dataset_name("my_own_set") == "my_own_set"
    heat = task_heatmap(records, columns="method")
    ticks = [" ".join(t.get_text().split()) for t in heat.axes[0].get_xticklabels()]
    assert ticks == ["Linear probe", "ProtoNet"]


def test_figure_bytes_are_deterministic(toy_root: Path) -> None:
    for fmt in ("png", "svg", "pdf"):
        one = figure_bytes(split_distribution(toy_root / "toy_rgb"), fmt)
        two = figure_bytes(split_distribution(toy_root / "toy_rgb"), fmt)
        assert one == two and _is(one, fmt)
    with Image.open(io.BytesIO(figure_bytes(split_distribution(toy_root / "toy_rgb")))) as img:
        assert img.size == (500, 240)
