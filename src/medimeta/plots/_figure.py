"""Figures without pyplot: an Agg canvas per figure, deterministic PNG bytes, atomic saving.

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

from medimeta.safeio import write_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from PIL import Image

DPI = 100
FONT = 8.0  # points; captions and labels
TITLE_FONT = 10.0
# One colour per split and a cycle for methods/classes (colour-blind safe, Okabe-Ito).
SPLIT_COLOURS = {"train": "#0072B2", "val": "#E69F00", "test": "#009E73"}
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
)


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


def figure_png(fig: Figure, *, dpi: float = DPI) -> bytes:
    """PNG bytes of ``fig``; the same figure gives the same bytes (no version or date stamp)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white", metadata={"Software": None})
    return buf.getvalue()


def save_figure(fig: Figure, path: str | Path, *, dpi: float = DPI) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically (a crash leaves no half-written file)."""
    return write_bytes(path, figure_png(fig, dpi=dpi))


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
