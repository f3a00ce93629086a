"""Figures without pyplot: an Agg canvas per figure, deterministic PNG/SVG/PDF bytes, atomic
saving, and the one palette every figure draws with.

matplotlib is imported inside these functions, never at module import, so importing
``medimeta.plots`` (or a dataset class that refers to it) stays as light as before. Figures are
``matplotlib.figure.Figure`` objects on their own Agg canvas: pyplot is not imported, the
user's chosen backend and pyplot's figure list are untouched, and no window ever opens.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medimeta.errors import UnknownNameError
from medimeta.plots.outputs import output_file
from medimeta.safeio import write_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from PIL import Image

DPI = 100  # screen: the report's pictures
FILE_DPI = 300  # files written by `medimeta plot`
FORMATS = ("png", "svg", "pdf")
FONT = 8.0  # points; captions and labels
TITLE_FONT = 10.0
# The palette, the one home of every colour a figure uses (tests/plots check the artists).
# Series (methods, classes, splits) take Okabe & Ito's colour-blind-safe colours in this order;
# beyond eight, a series repeats a colour with another line style (series_style).
PALETTE = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)
SPLIT_COLOURS = {"train": PALETTE[0], "val": PALETTE[1], "test": PALETTE[2]}
GREY = "#666666"  # reference lines, notes
LIGHT_GREY = "#999999"  # chance lines, secondary bars
NEUTRALS = ("#FFFFFF", "#F2F2F2", "#DDDDDD", LIGHT_GREY, GREY, "#222222", "#000000")
SEQUENTIAL = "viridis"  # colour map of heatmaps (perceptually uniform, colour-blind safe)
LINE_STYLES = ("-", "--", ":", "-.")


def series_colour(k: int) -> str:
    """The colour of series ``k``."""
    return PALETTE[k % len(PALETTE)]


def series_style(k: int) -> str:
    """The line style of series ``k``: solid for the first eight, then dashed, dotted ..."""
    return LINE_STYLES[(k // len(PALETTE)) % len(LINE_STYLES)]


def new_figure(width: float, height: float, *, constrained: bool = False) -> Figure:
    """A figure of ``width`` x ``height`` inches on its own Agg canvas (not managed by pyplot).

    Every text of the figure is drawn as plain text: class names, dataset ids and paths come
    from data files, and ``$...$`` in one of them must not be read as mathtext (a label such
    as ``$\\foo{$`` would otherwise end the drawing with a parse error)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    class PlainTextFigure(Figure):
        def draw(self, renderer: Any) -> None:
            from matplotlib import rc_context
            from matplotlib.text import Text

            # texts made while drawing (tick labels) read the setting, the others are set
            with rc_context({"text.parse_math": False, "text.usetex": False}):
                for text in self.findobj(Text):
                    text.set_parse_math(False)
                    text.set_usetex(False)
                super().draw(renderer)

    fig = PlainTextFigure(
        figsize=(width, height), dpi=DPI, layout="constrained" if constrained else None
    )
    FigureCanvasAgg(fig)
    return fig


_NO_STAMP = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "Creator": None, "Producer": None},
}


def figure_bytes(fig: Figure, fmt: str = "png", *, dpi: float = DPI) -> bytes:
    """``fig`` as PNG, SVG or PDF bytes (``dpi``: PNG pixels per inch, and the resolution of
    images inside SVG/PDF); the same figure gives the same bytes (no version or date stamp)."""
    from matplotlib import rc_context

    if fmt not in FORMATS:
        raise UnknownNameError("picture format", fmt, FORMATS)
    buf = io.BytesIO()
    with rc_context({"svg.hashsalt": "medimeta"}):
        fig.savefig(buf, format=fmt, dpi=dpi, facecolor="white", metadata=_NO_STAMP[fmt])
    return buf.getvalue()


def figure_png(fig: Figure, *, dpi: float = DPI) -> bytes:
    """PNG bytes of ``fig`` (:func:`figure_bytes`)."""
    return figure_bytes(fig, "png", dpi=dpi)


def save_figure(fig: Figure, path: str | Path, *, dpi: float = DPI, fmt: str | None = None) -> Path:
    """Write ``fig`` to ``path`` atomically (a crash leaves no half-written file), as ``fmt`` or
    as the file's suffix says (``.png``, ``.svg``, ``.pdf``; PNG without a suffix)."""
    target, kind = output_file(Path(path), fmt, default="png", add_suffix=False)
    return write_bytes(target, figure_bytes(fig, kind, dpi=dpi))


def save_image(image: Image.Image, path: str | Path) -> Path:
    """Write a PIL image as a PNG to ``path`` atomically."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return write_bytes(path, buf.getvalue())


def figure_to_image(fig: Figure, *, dpi: float = DPI) -> Image.Image:
    """``fig`` rendered as an RGB PIL image."""
    from PIL import Image

    with Image.open(io.BytesIO(figure_png(fig, dpi=dpi))) as img:
        return img.convert("RGB")


def wrap(text: str, width_in: float, font: float = FONT) -> str:
    """``text`` wrapped to lines that fit ``width_in`` inches at ``font`` points (each line
    of the input wrapped on its own)."""
    chars = max(6, int(width_in * 72 / (font * 0.6)))
    lines: list[str] = []
    for line in text.splitlines() or [""]:
        lines += textwrap.wrap(line, chars, break_long_words=True) or [""]
    return "\n".join(lines)


def line_height(font: float = FONT) -> float:
    """Height in inches of one line of text at ``font`` points."""
    return font * 1.3 / 72


def show_image(ax: Axes, image: np.ndarray) -> None:
    """Draw a stored uint8 image: grey (H, W) with the grey colour map on 0..255, RGB as is."""
    kwargs: dict[str, Any] = {"interpolation": "antialiased"}
    if image.ndim == 2:
        kwargs.update(cmap="gray", vmin=0, vmax=255)
    ax.imshow(image, **kwargs)
    ax.set_axis_off()


def label_bars(ax: Axes, containers: Any, font: float = FONT - 1) -> None:
    """Write each bar's count at its end."""
    for container in containers:
        ax.bar_label(container, fmt="{:,.0f}", fontsize=font, padding=2)
