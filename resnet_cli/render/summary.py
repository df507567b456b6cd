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
LAYER_NUMERIC = ["depth", "params", "trainable_params", "macs", "macs_percent", "receptive_field", "stride", "calls",
                 "forward_macs", "backward_input_macs", "backward_weight_macs", "optimizer_macs", "saved_bytes"]
#: CSV / Markdown columns of ``compare``, one row per variant.
COMPARE_COLUMNS = ["variant", "params", "macs", "flops", "input_size", "conv_layers", "stage_channels",
                   "output_stride", "default_input_size"]
COMPARE_NUMERIC = ["params", "macs", "flops", "conv_layers", "output_stride"]


#: Extra CSV / Markdown columns with ``--pass train``.
TRAIN_COLUMNS = ["forward_macs", "backward_input_macs", "backward_weight_macs", "optimizer_macs", "saved_bytes"]


def layer_columns(summary) -> list[str]:
    """``LAYER_COLUMNS``, plus ``TRAIN_COLUMNS`` for a training summary."""
    return LAYER_COLUMNS + (TRAIN_COLUMNS if summary.train is not None else [])


def layer_rows(summary) -> list[dict]:
    """One flat dict per layer record, :func:`layer_columns` keys; the percentage to 4 decimals."""
    rows = []
    for r in summary.layers:
        row = {c: getattr(r, c) for c in layer_columns(summary)}
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
    line = (f"{s.variant} {_shape(s.input_size)}: {s.total_params:,} params, {s.macs:,} MACs, "
            f"{s.flops:,} FLOPs (2 x MACs), engine {s.engine}. {s.note}")
    if s.train is not None:
        t = s.train
        line += (f". Training step: forward {t.forward_macs:,}, backward w.r.t. input {t.backward_input_macs:,}, "
                 f"w.r.t. weights {t.backward_weight_macs:,}, optimizer {t.optimizer_macs:,} MACs")
    plan = s.train.memory_plan if s.train is not None else s.memory_plan
    if plan is not None:
        line += f". Memory plan: peak {human_bytes(plan.peak_bytes, 2)}"
        if verdict(plan):
            line += f"; {verdict(plan)}"
    return line


def summary_table(s) -> list:
    """The layer table (a title, a header and one line per row) and the totals block."""
    shown = f", rows to depth {max((r.depth for r in s.layers), default=0)}" if s.layers else ""
    title = (f"{s.variant}: input {_shape(s.input_size)} (N, C, H, W), {s.memory.dtype}, "
             f"MACs by {s.engine}{shown}")
    cells = [["  " * (r.depth - 1) + r.name, r.type + (f" x{r.calls}" if r.calls > 1 else ""),
              _shape(r.output_shape), _kernel(r.kernel_size, r.layer_stride), f"{r.params:,}", f"{r.macs:,}",
              f"{r.macs_percent:.2f}", _global(r.receptive_field, r.output_shape, r.receptive_field_note),
              _global(r.stride, r.output_shape, r.receptive_field_note)] for r in s.layers]
    header, right = _HEADER, _RIGHT
    if s.train is not None:
        header, right = _HEADER + _TRAIN_HEADER, _RIGHT | {9, 10, 11}
        for row, r in zip(cells, s.layers):
            row += [_count(r.backward_input_macs), _count(r.backward_weight_macs),
                    human_bytes(r.saved_bytes, 2) if r.saved_bytes else ""]
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
    if s.train is None and s.memory_plan is None:
        totals.add_row("Training", f"~{human_bytes(m.training_bytes, 2)}",
                       "rough estimate, Adam: input + 4 x params + buffers + activations; --pass train plans the real step")
    if s.train is not None:
        _train_rows(totals, s.train)
    plan = s.train.memory_plan if s.train is not None else s.memory_plan
    if plan is not None:
        _plan_rows(totals, plan)
    # on a terminal: stages (the network's children that have rows below them) bold, rows that do no
    # multiply-accumulate dim, and a bar of each row's share of the MACs after "% MACs"
    styles = ["bold" if r.depth == 1 and not r.is_leaf else "dim" if r.macs == 0 else "" for r in s.layers]
    bars = [r.macs_percent / 100 for r in s.layers]
    return [LinesTable(title, header, cells, right, styles=styles, bars=bars, bar_after=6, bar_header="share"),
            totals]


_HEADER = ["Layer", "Type", "Output shape", "Kernel/stride", "Params", "MACs", "% MACs", "RF", "Stride"]
_RIGHT = {4, 5, 6, 7, 8}
_TRAIN_HEADER = ["Bwd input MACs", "Bwd weight MACs", "Saved"]


def _count(value: Optional[int]) -> str:
    return "" if value is None else f"{value:,}"


def _train_rows(totals, t) -> None:
    totals.add_row("Train MACs", f"{t.total_macs:,}", f"{_si(t.total_macs)}MACs per step, {_si(t.total_flops)}FLOPs")
    for label, value in (("  forward", t.forward_macs), ("  bwd input", t.backward_input_macs),
                         ("  bwd weight", t.backward_weight_macs), ("  optimizer", t.optimizer_macs)):
        totals.add_row(label, f"{value:,}", f"{_si(value)}MACs")
    if t.frozen:
        totals.add_row("Frozen", "", ", ".join(t.frozen))
    totals.add_row("Counted", "", t.note)


#: What the memory plan's parts are (they do not add up to the peak).
PARTS_NOTE = ("each part at its own largest (saved: at the end of the forward pass); they are not all live at "
              "the peak (saved tensors are freed as gradients appear), so they can sum to more than it")


def _plan_rows(totals, p) -> None:
    what = "training step" if p.mode == "train" else "inference forward pass"
    precision = p.dtype + (f" + {p.amp} autocast" if p.amp else "") + (", channels-last" if p.channels_last else "")
    opt = f", {p.optimizer}" if p.optimizer else ""
    totals.add_row("Memory plan", f"{human_bytes(p.peak_bytes, 2)}",
                   f"peak of one {what} (batch {p.batch}, {precision}{opt}; reached in {p.peak_phase})")
    for label, value in (("  weights", p.weights_bytes), ("  buffers", p.buffers_bytes), ("  input", p.input_bytes),
                         ("  gradients", p.gradients_bytes), ("  optimizer", p.optimizer_bytes),
                         ("  saved", p.saved_bytes)):
        if value or label in ("  weights", "  input"):
            totals.add_row(label, human_bytes(value, 2), "")
    totals.add_row("  parts", "", PARTS_NOTE)
    if p.saved_by_stage:
        stages = ", ".join(f"{k} {human_bytes(v, 1)}" for k, v in p.saved_by_stage.items() if k != "(network)")
        totals.add_row("  saved by stage", "", stages)
    totals.add_row("  counts", "", p.included)
    totals.add_row("  excludes", "", p.excluded)
    if verdict(p):
        totals.add_row("GPU memory", "", verdict(p))


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


def verdict(plan) -> Optional[str]:
    """``fits: 19.8 GiB of 24.0 GiB`` / ``fits: 1.4 MiB of 1.0 GiB`` (adaptive units, ``human_bytes``) or
    ``does not fit: needs 31.2 GiB; the largest batch that fits is 48``."""
    from ..limits import MAX_BATCH

    if plan.gpu_memory_bytes is None:
        return None
    if plan.fits:
        text = f"fits: {human_bytes(plan.peak_bytes, 1)} of {human_bytes(plan.gpu_memory_bytes, 1)}"
        if plan.max_batch:
            bound = " (the search's bound)" if plan.max_batch >= MAX_BATCH else ""
            text += f"; the largest batch that fits is {plan.max_batch}{bound}"
        return text
    tail = (f"the largest batch that fits is {plan.max_batch}" if plan.max_batch
            else "not even batch 1 fits")
    return f"does not fit: needs {human_bytes(plan.peak_bytes, 1)}; {tail}"
