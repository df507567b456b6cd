"""Generic rich tables. Record-specific layouts live beside the command that shows them."""

from __future__ import annotations

from typing import Sequence

from rich.table import Table


def keep_whole(table: Table, longest: int = 28) -> Table:
    """Never shorten a number or a name: columns whose cells are all short get a minimum width of
    their longest cell and no wrapping, so a narrow terminal wraps the line instead of printing
    '25,557,0…'. Longer text (notes) may still wrap. Returns ``table``."""
    for column in table.columns:
        cells = [c.plain if hasattr(c, "plain") else c for c in column.cells]
        if cells and all(isinstance(c, str) and len(c) <= longest for c in cells):
            width = max([len(c) for c in cells] + [len(str(column.header))])
            column.min_width, column.no_wrap = width, True
    return table


def simple_table(rows: Sequence[dict], columns: Sequence[str], title: str | None = None,
                 numeric: Sequence[str] = ()) -> Table:
    """A rich table of ``rows`` restricted to ``columns``; ``numeric`` columns right-aligned."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        table.add_column(c, justify="right" if c in numeric else "left")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    return keep_whole(table)
