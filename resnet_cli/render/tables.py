"""Generic rich tables. Record-specific layouts live beside the command that shows them."""

from __future__ import annotations

from typing import Sequence

from rich.table import Table


def simple_table(rows: Sequence[dict], columns: Sequence[str], title: str | None = None,
                 numeric: Sequence[str] = ()) -> Table:
    """A rich table of ``rows`` restricted to ``columns``; ``numeric`` columns right-aligned."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        table.add_column(c, justify="right" if c in numeric else "left")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    return table
