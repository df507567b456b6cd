"""Generic tables: the plain :class:`LinesTable` for long listings, and :func:`keep_whole` for rich
tables. Record-specific layouts live in the render module of their command."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

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
    these rows never wrap and never shorten a value. ``right``: indices of right-aligned columns.

    On a colour terminal (not piped, no ``NO_COLOR``) it looks like a rich table: a rule under the
    header, ``styles`` per row (rich style names, e.g. ``bold`` for stage rows, ``dim`` for rows that
    recede), and with ``bars`` (a fraction 0..1 per row) a bar column after column ``bar_after``.
    Elsewhere it prints the same plain text as before."""

    BAR_WIDTH = 10

    def __init__(self, title: str, header: list[str], cells: list[list[str]], right: set[int],
                 styles: Optional[list[str]] = None, bars: Optional[list[float]] = None, bar_after: int = -1,
                 bar_header: str = ""):
        self.title, self.header, self.cells, self.right = title, header, cells, right
        self.styles, self.bars, self.bar_after, self.bar_header = styles, bars, bar_after, bar_header

    def _with_bars(self, unicode: bool) -> tuple[list[str], list[list[str]], set[int]]:
        at = self.bar_after + 1
        header = self.header[:at] + [self.bar_header] + self.header[at:]
        cells = [row[:at] + [_bar(f, self.BAR_WIDTH, unicode)] + row[at:] for row, f in zip(self.cells, self.bars)]
        return header, cells, {i if i < at else i + 1 for i in self.right}

    def __rich_console__(self, console, options):
        from rich.segment import Segment
        from rich.style import Style

        fancy = console.is_terminal and not console.no_color and console.color_system is not None
        unicode = (console.encoding or "").lower().startswith("utf")
        header, cells, right = self.header, self.cells, self.right
        if fancy and self.bars is not None:
            header, cells, right = self._with_bars(unicode)
        widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(header)]

        def line(values):
            return "  ".join(v.rjust(w) if i in right else v.ljust(w)
                             for i, (v, w) in enumerate(zip(values, widths))).rstrip()

        yield Segment(self.title, Style(italic=True) if fancy else None)
        yield Segment.line()
        if not cells:  # --depth 0: the totals only
            return
        yield Segment(line(header), Style(bold=True) if fancy else None)
        yield Segment.line()
        yield Segment(("─" if fancy and unicode else "-") * (sum(widths) + 2 * (len(widths) - 1)),
                      Style(dim=True) if fancy else None)
        yield Segment.line()
        styles = {name: Style.parse(name) for name in set(self.styles or []) if name} if fancy else {}
        bar_at = None
        if fancy and self.bars is not None:  # the bar's columns, drawn in a colour of their own
            k = self.bar_after + 1
            bar_at = (sum(widths[:k]) + 2 * k, sum(widths[:k + 1]) + 2 * k)
        bar_style = Style(color="cyan")
        for k, row in enumerate(cells):
            style = styles.get(self.styles[k]) if styles and self.styles else None
            text = line(row)
            if bar_at is None:
                yield Segment(text, style)
            else:
                a, b = bar_at
                yield Segment(text[:a], style)
                yield Segment(text[a:b], bar_style + style if style else bar_style)
                yield Segment(text[b:], style)
            yield Segment.line()
        yield Segment.line()


_EIGHTHS = " ▏▎▍▌▋▊▉█"


def _bar(fraction: float, width: int, unicode: bool) -> str:
    """``fraction`` (0..1) of ``width`` cells: eighth-cell steps in unicode, whole ``#`` cells in ASCII."""
    fraction = max(0.0, min(1.0, fraction))
    if not unicode:
        return "#" * round(fraction * width)
    eighths = round(fraction * width * 8)
    return "█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")


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
