"""Generic tables: the plain :class:`LinesTable` for long listings, and :func:`keep_whole` for rich
tables. Record-specific layouts live in the render module of their command."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # rich.table is imported by the renderers that build rich tables, not by `list`
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


class LinesTable:
    """A plain aligned table written as whole lines, for long listings: a rich ``Table`` measures and
    wraps every cell, which takes seconds for the ~500 rows of a resnet152 (and 0.1 s for ``list``);
    these rows never wrap and never shorten a value. ``right``: indices of right-aligned columns."""

    def __init__(self, title: str, header: list[str], cells: list[list[str]], right: set[int]):
        self.title, self.header, self.cells, self.right = title, header, cells, right

    def __rich_console__(self, console, options):
        from rich.segment import Segment
        from rich.style import Style

        widths = [max([len(h)] + [len(row[i]) for row in self.cells]) for i, h in enumerate(self.header)]

        def line(values):
            return "  ".join(v.rjust(w) if i in self.right else v.ljust(w)
                             for i, (v, w) in enumerate(zip(values, widths))).rstrip()

        yield Segment(self.title, Style(italic=True))
        yield Segment.line()
        if not self.cells:  # --depth 0: the totals only
            return
        yield Segment(line(self.header), Style(bold=True))
        yield Segment.line()
        yield Segment("-" * (sum(widths) + 2 * (len(widths) - 1)))
        yield Segment.line()
        for row in self.cells:
            yield Segment(line(row))
            yield Segment.line()
        yield Segment.line()


def simple_table(rows: Sequence[dict], columns: Sequence[str], title: str = "",
                 numeric: Sequence[str] = ()) -> LinesTable:
    """A plain table of ``rows`` restricted to ``columns``; ``numeric`` columns right-aligned."""
    cells = [["" if row.get(c) is None else str(row.get(c)) for c in columns] for row in rows]
    return LinesTable(title, list(columns), cells, {i for i, c in enumerate(columns) if c in numeric})


def _cell_text(cell) -> str:
    """The plain text of a rich table cell (a str, a Text, or another renderable's str)."""
    if cell is None:
        return ""
    return cell.plain if hasattr(cell, "plain") else str(cell)


class RecordBlocks:
    """A rich ``Table`` too wide for the terminal, written as one block of ``header: value`` lines per
    row (headerless key/value tables as ``key  value`` lines), so every column stays on screen: rich
    would otherwise shrink columns to nothing and drop them."""

    def __init__(self, table: Table):
        self.table = table

    def __rich_console__(self, console, options):
        from rich.text import Text

        table = self.table
        if table.title:
            yield Text(_cell_text(table.title), style="italic")
        headers = [_cell_text(c.header) for c in table.columns]
        columns = [[_cell_text(c) for c in column._cells] for column in table.columns]
        rows = list(zip(*columns)) if columns else []
        label = max((len(h) for h in headers), default=0)
        for i, row in enumerate(rows):
            if table.show_header:
                for header, value in zip(headers, row):
                    yield Text(f"{header.rjust(label)}: {value}")
                if i < len(rows) - 1:
                    yield Text("")
            else:
                yield Text("  ".join(v for v in row if v))
        if table.caption:
            yield Text(_cell_text(table.caption), style="dim")
        yield Text("")


def fit_width(console, renderable):
    """``renderable``, or for a rich ``Table`` whose narrowest layout is wider than ``console`` (rich
    would drop columns), the same rows as :class:`RecordBlocks`. Other renderables are returned as they
    are (text wraps; :class:`LinesTable` lines are printed whole and wrap in the terminal)."""
    from rich.table import Table as RichTable

    if not isinstance(renderable, RichTable):
        return renderable
    options = console.options
    try:
        minimum = renderable.__rich_measure__(console, options).minimum
    except Exception:  # noqa: BLE001  (measuring is best effort: print the table as it is)
        return renderable
    return RecordBlocks(renderable) if minimum > options.max_width else renderable
