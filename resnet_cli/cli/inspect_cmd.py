"""``resnet-cli inspect FILE``: what ResNet a checkpoint holds, read without running any code from it."""

from __future__ import annotations

import typer

from . import app
from .common import Format, emit, format_option, import_torch


@app.command("inspect")
def inspect_checkpoint(
    file: str = typer.Argument(..., metavar="FILE", help="A checkpoint: .pth, .pt or .safetensors."),
    fmt: Format = format_option(),
) -> None:
    """Identify the ResNet in a checkpoint from its key names and tensor shapes.

    Names the matching variant (or every variant the file fits, when the state_dict cannot tell them
    apart), prints the custom spec otherwise, and lists missing, unexpected and mismatched keys.
    Pickles are read with torch.load(weights_only=True): a file that would run code is refused
    (exit 1). Exit 0 whenever the file was read, also when it holds no known network.
    """
    from ..analysis.checkpoint import inspect_checkpoint as inspect_file
    from ..render.checkpoint import COLUMNS, report_row, report_tables

    import_torch()
    report = inspect_file(file)
    if report.notes:
        from ..render.console import note

        for line in report.notes:
            note(f"note: {line}")
    emit(fmt, report, [report_row(report)], COLUMNS, report_tables, numeric=("num_params",))
