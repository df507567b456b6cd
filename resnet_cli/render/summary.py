"""How a :class:`~resnet_cli.analysis.summary.Summary` and a
:class:`~resnet_cli.analysis.summary.Comparison` look: a rich layer table with a totals block, flat
rows for CSV/Markdown, and the one-line totals that go to stderr beside machine formats.
Nothing here computes a figure; it only formats the records' numbers.
"""

from __future__ import annotations

from typing import Any, Optional

from rich import box
from rich.table import Table

from ..bench.memory import human_bytes
from .tables import LinesTable, keep_whole

#: CSV / Markdown columns of ``summary``, one row per layer.
LAYER_COLUMNS = ["name", "type", "depth", "output_shape", "kernel_size", "layer_stride", "params",
                 "trainable_params", "macs", "macs_percent", "receptive_field", "stride", "calls", "is_leaf",
                 "receptive_field_note"]
LAYER_NUMERIC = ["depth", "params", "trainable_params", "macs", "macs_percent", "receptive_field", "stride", "calls"]
#: CSV / Markdown columns of ``compare``, one row per variant.
COMPARE_COLUMNS = ["variant", "params", "macs", "flops", "input_size", "conv_layers", "stage_channels",
                   "output_stride", "default_input_size"]
COMPARE_NUMERIC = ["params", "macs", "flops", "conv_layers", "output_stride"]


def layer_rows(summary) -> list[dict]:
    """One flat dict per layer record, ``LAYER_COLUMNS`` keys; the percentage to 4 decimals."""
    rows = []
    for r in summary.layers:
        row = {c: getattr(r, c) for c in LAYER_COLUMNS}
        row["macs_percent"] = round(r.macs_percent, 4)
        rows.append(row)
    return rows


def compare_rows(comparison) -> list[dict]:
    """One flat dict per variant, ``COMPARE_COLUMNS`` keys; stage channels as ``64-128-256-512``."""
    rows = [{c: getattr(r, c) for c in COMPARE_COLUMNS} for r in comparison.variants]
    for row in rows:
        row["stage_channels"] = "-".join(map(str, row["stage_channels"]))
    return rows


def totals_line(s) -> str:
    """The totals in one line (stderr companion of CSV and Markdown output)."""
    return (f"{s.variant} {_shape(s.input_size)}: {s.total_params:,} params, {s.macs:,} MACs, "
            f"{s.flops:,} FLOPs (2 x MACs), engine {s.engine}. {s.note}")


def summary_table(s) -> list:
    """The layer table (a title, a header and one line per row) and the totals block."""
    shown = f", rows to depth {max((r.depth for r in s.layers), default=0)}" if s.layers else ""
    title = (f"{s.variant}: input {_shape(s.input_size)} (N, C, H, W), {s.memory.dtype}, "
             f"MACs by {s.engine}{shown}")
    cells = [["  " * (r.depth - 1) + r.name, r.type + (f" x{r.calls}" if r.calls > 1 else ""),
              _shape(r.output_shape), _kernel(r.kernel_size, r.layer_stride), f"{r.params:,}", f"{r.macs:,}",
              f"{r.macs_percent:.2f}", _global(r.receptive_field, r.output_shape, r.receptive_field_note),
              _global(r.stride, r.output_shape, r.receptive_field_note)] for r in s.layers]
    m = s.memory
    totals = Table.grid(padding=(0, 2))
    totals.add_column(style="bold")
    totals.add_column(justify="right")
    totals.add_column()
    totals.add_row("Params", f"{s.total_params:,}",
                   f"trainable {s.trainable_params:,}, non-trainable {s.non_trainable_params:,}")
    totals.add_row("MACs", f"{s.macs:,}", f"{_si(s.macs)}MACs, batch {s.input_size[0]}")
    totals.add_row("FLOPs", f"{s.flops:,}", f"{_si(s.flops)}FLOPs = 2 x MACs")
    totals.add_row("Counted", "", s.note)
    totals.add_row("Output stride", "n/a" if s.output_stride is None else f"{s.output_stride}", "")
    memory = ", ".join(f"{what} {human_bytes(n, 2)}" for what, n in (
        ("input", m.input_bytes), ("params", m.param_bytes), ("buffers", m.buffer_bytes),
        ("activations", m.activation_bytes)))
    totals.add_row("Memory", "", f"{m.dtype}: {memory}")
    totals.add_row("Training", f"~{human_bytes(m.training_bytes, 2)}",
                   "estimate, Adam: input + 4 x params (weights, grads, 2 moments) + buffers + activations")
    return [LinesTable(title, _HEADER, cells, _RIGHT), totals]


_HEADER = ["Layer", "Type", "Output shape", "Kernel/stride", "Params", "MACs", "% MACs", "RF", "Stride"]
_RIGHT = {4, 5, 6, 7, 8}


def compare_table(c) -> list:
    """Variants side by side, and the counting note."""
    table = Table(title="Variants compared", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD,
                  caption=c.note, caption_justify="left")
    for name in ("Variant", "Params", "MACs", "FLOPs", "MACs at", "Conv layers", "Stage channels",
                 "Output stride", "Default input"):
        table.add_column(name, justify="left" if name in ("Variant", "MACs at", "Stage channels", "Default input")
                         else "right")
    for r in c.variants:
        table.add_row(r.variant, f"{r.params:,}", f"{r.macs:,}", f"{r.flops:,}", _shape(r.input_size),
                      f"{r.conv_layers}", "-".join(map(str, r.stage_channels)), f"{r.output_stride}",
                      _shape(r.default_input_size))
    return [keep_whole(table, longest=80)]  # a file.py:factory name is long; it must not vanish


def _shape(shape: Optional[Any]) -> str:
    return "-" if not shape else "x".join(str(v) for v in shape)


def _kernel(kernel, stride) -> str:
    if not kernel:
        return ""
    text = "x".join(map(str, kernel))
    if not stride or all(v == 1 for v in stride):
        return text
    return f"{text} /{stride[0]}" if len(set(stride)) == 1 else f"{text} /{'x'.join(map(str, stride))}"


def _global(value: Optional[int], shape, not_known: Optional[str] = None) -> str:
    if value is not None:
        return str(value)
    if not_known:
        return "n/a"  # the reason is in the summary's notes
    if shape and len(shape) == 4 and shape[2] * shape[3] > 1:
        return "n/a"  # a spatial map after a fractional resize (U-Net decoder): no defined RF
    return "global" if shape else ""


def _si(value: int) -> str:
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.2f} {prefix}"
    return f"{value} "
