"""The catalog's task table (the MedIMeta paper's Table 2) as a figure, for ``medimeta plot
tasks --out tasks.png`` (or ``.svg``, ``.pdf``): one row per task, the rows of a dataset on a
shared band, numbers right-aligned. Column widths follow the longest text of each column."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medimeta.plots._figure import NEUTRALS, line_height, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from medimeta.catalog.catalog import Catalog

TABLE_FONT = 7.0
PAD = 0.12  # inches between columns
MARGIN = 0.2
RIGHT = {"classes", "images"}
BAND = NEUTRALS[1]
RULE = NEUTRALS[5]


def _width(texts: list[str], bold: bool = False) -> float:
    """Inches that the longest of ``texts`` needs at the table's font."""
    per_char = TABLE_FONT * (0.62 if bold else 0.56) / 72
    return max(len(t) for t in texts) * per_char + PAD


def task_table_figure(catalog: Catalog | None = None) -> Figure:
    """Every task of the catalog: dataset id, name and domain (on a dataset's first row), task,
    type, classes and the dataset's images."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    from medimeta.catalog.render import TASK_TABLE_HEADER, task_rows

    rows = task_rows(catalog)
    header = [h if h != "samples" else "images" for h in TASK_TABLE_HEADER]
    columns = list(zip(*rows, strict=True))
    widths = [
        max(_width(list(col)), _width([h], bold=True))
        for col, h in zip(columns, header, strict=True)
    ]
    row_h = line_height(TABLE_FONT) + 0.05
    width = 2 * MARGIN + sum(widths)
    height = 2 * MARGIN + row_h * (len(rows) + 1) + 0.05
    fig = new_figure(width, height)
    starts = [MARGIN + sum(widths[:i]) for i in range(len(widths))]

    def put(text: str, col: int, row: int, bold: bool = False) -> None:
        right = header[col] in RIGHT
        x = starts[col] + (widths[col] - PAD if right else 0)
        y = MARGIN + row_h * (row + 0.5)
        weight = "bold" if bold else "normal"
        align = "right" if right else "left"
        fig.text(x / width, 1 - y / height, text, ha=align, va="center", fontsize=TABLE_FONT,
                 fontweight=weight)  # fmt: skip

    for c, name in enumerate(header):
        put(name, c, 0, bold=True)
    y_rule = 1 - (MARGIN + row_h) / height
    fig.add_artist(Line2D([MARGIN / width, 1 - MARGIN / width], [y_rule, y_rule], color=RULE,
                          linewidth=0.6))  # fmt: skip
    group = -1
    for r, row in enumerate(rows, start=1):
        group += 1 if row[0] else 0
        if group % 2 == 1:
            top = MARGIN + row_h * r
            fig.add_artist(
                Rectangle(
                    (MARGIN / width, 1 - (top + row_h) / height),
                    1 - 2 * MARGIN / width,
                    row_h / height,
                    color=BAND,
                    linewidth=0,
                    zorder=-1,
                )
            )
        for c, text in enumerate(row):
            put(text, c, r)
    return fig
