"""``resnet-cli plot``: throughput, latency and compute plots of measured cases (no torch)."""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from ..errors import UsageError
from . import app

_FORMATS = (".svg", ".png")


@app.command("plot")
def plot(
    file: str = typer.Argument(..., metavar="FILE", help="A 'bench --save' history (JSON Lines) or a 'bench "
                               "--format json' file (one run or a grid)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", metavar="PLOT.svg|PLOT.png",
                                         help="Write an SVG or PNG through matplotlib (pip install "
                                         "'resnet-cli[plot]') instead of drawing in the terminal."),
    width: Optional[int] = typer.Option(None, "--width", min=40, help="Terminal plot width in columns "
                                        "[default: the terminal's, at most 120]."),
    height: int = typer.Option(18, "--height", min=8, help="Terminal plot height in rows per plot."),
) -> None:
    """Plot measured cases: images/s by batch size per variant, the latency distribution per case, and
    images/s by GMACs per image."""
    from ..bench.history import load
    from ..render import plot as view
    from ..render.console import note

    if output is not None and not output.lower().endswith(_FORMATS):
        raise UsageError(f"-o {output!r} must end in .svg or .png")
    points, superseded = load(file)
    if superseded:
        note(f"resnet-cli plot: {superseded} earlier record(s) of the same case were superseded by later ones")
    first = points[0]
    title = f"{os.path.basename(file)}: {first.device}" + (f" ({first.device_name})" if first.device_name else "")
    if output is not None:
        view.write_file(points, output, title)
        note(f"resnet-cli plot: wrote {output} ({len(points)} cases, {len(view.series(points))} series)")
        return
    columns = width or min(120, max(40, _terminal_columns()))
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    unicode = (getattr(sys.stdout, "encoding", "") or "").lower().replace("-", "").startswith("utf")
    typer.echo(view.terminal(points, columns, height, color, title, unicode))


def _terminal_columns() -> int:
    try:
        return int(os.environ.get("COLUMNS") or os.get_terminal_size(sys.stdout.fileno()).columns)
    except (OSError, ValueError):
        return 100
