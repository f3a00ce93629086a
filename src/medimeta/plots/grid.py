"""A grid of image tiles laid out in inches: rows with a label, blocks of columns with a
header, a caption under each tile and a title, none of which can overlap.

Every size is computed from the text it has to hold, so a long class name makes its column
wider or wraps, instead of running into the next tile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from medimeta.plots._figure import (
    FONT,
    GREY,
    TITLE_FONT,
    line_height,
    new_figure,
    show_image,
    wrap,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MARGIN = 0.12  # inches around the figure
GAP = 0.06  # between tiles
BLOCK_GAP = 0.3  # between blocks (support | query)


@dataclass(frozen=True)
class Cell:
    """One tile: a stored uint8 image (or ``None`` for a text-only slot) and its caption."""

    image: np.ndarray | None
    caption: str = ""
    note: str = ""  # drawn in the tile when there is no image


@dataclass(frozen=True)
class Row:
    """One row of tiles: ``blocks`` of cells side by side, ``label`` to their left."""

    blocks: tuple[tuple[Cell, ...], ...]
    label: str = ""


@dataclass(frozen=True)
class GridStyle:
    """Sizes in inches (``tile`` the side of a square tile) and points (``font``)."""

    tile: float = 1.3
    label_width: float = 0.0
    font: float = FONT
    title_font: float = TITLE_FONT


def label_width_for(labels: Sequence[str], font: float = FONT, most: float = 2.4) -> float:
    """Width in inches of a label column that holds the longest line of ``labels``."""
    longest = max((len(line) for text in labels for line in text.splitlines()), default=0)
    return min(most, max(0.8, longest * font * 0.6 / 72 + 0.2))


def _caption_lines(row: Row, style: GridStyle) -> int:
    texts = [wrap(c.caption, style.tile, style.font) for b in row.blocks for c in b if c.caption]
    return max((t.count("\n") + 1 for t in texts), default=0)


def grid_size(
    rows: Sequence[Row], headers: Sequence[str], title: str, style: GridStyle
) -> tuple[float, float, list[int], float]:
    """Figure width and height, columns per block, and the title's height (inches)."""
    n_blocks = max((len(r.blocks) for r in rows), default=1)
    cols = [
        max((len(r.blocks[b]) for r in rows if b < len(r.blocks)), default=0)
        for b in range(n_blocks)
    ]
    cols = [max(c, 1) for c in cols]
    width = 2 * MARGIN + style.label_width + sum(c * (style.tile + GAP) for c in cols)
    width += BLOCK_GAP * (n_blocks - 1)
    title_text = wrap(title, width - 2 * MARGIN, style.title_font) if title else ""
    title_h = (title_text.count("\n") + 1) * line_height(style.title_font) + 0.1 if title else 0.0
    header_h = line_height(style.font) + 0.08 if any(headers) else 0.0
    body = sum(style.tile + GAP + _caption_lines(r, style) * line_height(style.font) for r in rows)
    return width, 2 * MARGIN + title_h + header_h + body, cols, title_h


def draw_grid(
    rows: Sequence[Row],
    *,
    headers: Sequence[str] = (),
    title: str = "",
    style: GridStyle | None = None,
) -> Figure:
    """The figure of ``rows``: one image axes per cell with an image (``fig.axes`` in row
    order), captions below tiles, row labels on the left, ``headers`` over the blocks."""
    style = style or GridStyle()
    width, height, cols, title_h = grid_size(rows, headers, title, style)
    fig = new_figure(width, height)
    if title:
        fig.text(
            0.5,
            1 - MARGIN / height,
            wrap(title, width - 2 * MARGIN, style.title_font),
            ha="center",
            va="top",
            fontsize=style.title_font,
            fontweight="bold",
        )
    block_x = [MARGIN + style.label_width]
    for c in cols[:-1]:
        block_x.append(block_x[-1] + c * (style.tile + GAP) + BLOCK_GAP)
    top = MARGIN + title_h
    if any(headers):
        for x0, c, head in zip(block_x, cols, headers, strict=False):
            span = c * (style.tile + GAP) - GAP
            fig.text(
                (x0 + span / 2) / width,
                1 - top / height,
                head,
                ha="center",
                va="top",
                fontsize=style.font + 1,
                fontweight="bold",
            )
        top += line_height(style.font) + 0.08
    for row in rows:
        top = _draw_row(fig, row, block_x, top, (width, height), style)
    return fig


def _draw_row(
    fig: Figure,
    row: Row,
    block_x: list[float],
    top: float,
    size: tuple[float, float],
    style: GridStyle,
) -> float:
    """Draw one row whose tiles start ``top`` inches below the figure's top; return the next
    row's top."""
    width, height = size
    t = style.tile
    bottom = top + t
    if row.label:
        fig.text(
            (MARGIN + style.label_width - 0.08) / width,
            1 - (top + t / 2) / height,
            wrap(row.label, style.label_width - 0.1, style.font),
            ha="right",
            va="center",
            fontsize=style.font,
        )
    for x0, block in zip(block_x, row.blocks, strict=False):
        for j, cell in enumerate(block):
            x = x0 + j * (t + GAP)
            rect = (x / width, 1 - bottom / height, t / width, t / height)
            if cell.image is not None:
                show_image(fig.add_axes(rect), cell.image)
            elif cell.note:
                fig.text(
                    (x + t / 2) / width,
                    1 - (top + t / 2) / height,
                    wrap(cell.note, t, style.font),
                    ha="center",
                    va="center",
                    fontsize=style.font,
                    color=GREY,
                )
            if cell.caption:
                fig.text(
                    (x + t / 2) / width,
                    1 - (bottom + 0.02) / height,
                    wrap(cell.caption, t, style.font),
                    ha="center",
                    va="top",
                    fontsize=style.font,
                    linespacing=1.1,
                )
    return bottom + GAP + _caption_lines(row, style) * line_height(style.font)


def chunk(cells: Sequence[Cell], columns: int) -> list[Row]:
    """``cells`` as rows of ``columns`` tiles."""
    columns = max(1, columns)
    return [Row((tuple(cells[i : i + columns]),)) for i in range(0, len(cells), columns)]
