"""Layout of ``resnet-cli skips``: the encoder stage table, with each skip's decoder step, and the
verdict line. Formats the records of ``analysis.stages``; computes nothing."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from .tables import keep_whole

#: One row per stage in CSV / Markdown; ``skip_check`` is the decoder step that meets this stage.
COLUMNS = ["name", "module", "channels", "height", "width", "stride", "receptive_field", "skip_check"]
NUMERIC = ["channels", "height", "width", "stride", "receptive_field"]


def _hw(size) -> str:
    return f"{size[0]}x{size[1]}"


def _step(check, decoder: str) -> str:
    if decoder == "upsample":
        return f"{check.deeper} x{check.factor} = {_hw(check.upsampled)}: {'ok' if check.ok else 'MISMATCH'}"
    fh, fw = check.scale_factor
    return f"{check.deeper} resized by {fh:.4g} (H) and {fw:.4g} (W): {'ok' if check.ok else 'non-integer'}"


def stage_rows(result) -> list[dict]:
    """Flat rows (one per stage) of an ``EncoderStages`` record for CSV and Markdown."""
    dc = result.decoder_check
    steps = {c.skip: _step(c, dc.decoder) for c in dc.checks}
    return [{"name": s.name, "module": s.module, "channels": s.channels, "height": s.height, "width": s.width,
             "stride": s.stride, "receptive_field": s.receptive_field, "skip_check": steps.get(s.name, "")}
            for s in result.stages]


def stages_tables(result) -> list:
    """The rich table of stages and the verdict line."""
    h, w = result.input_size
    dc = result.decoder_check
    table = Table(title=f"{result.variant}: encoder stages at {h}x{w}, output stride {result.output_stride}, "
                        f"{dc.decoder} decoder, depth {dc.depth}", title_justify="left", header_style="bold")
    for col, right in (("stage", False), ("module", False), ("channels", True), ("H x W", True),
                       ("stride", True), ("RF", True), ("decoder step into this stage", False)):
        table.add_column(col, justify="right" if right else "left")
    for row in stage_rows(result):
        table.add_row(row["name"], row["module"], str(row["channels"]), f"{row['height']}x{row['width']}",
                      str(row["stride"]), "n/a" if row["receptive_field"] is None else str(row["receptive_field"]),
                      row["skip_check"],
                      style=None if "MISMATCH" not in row["skip_check"] and "non-integer" not in row["skip_check"]
                      else "red")
    # The verdict is one line in JSON; here each '; '-separated part gets its own line.
    head, *rest = dc.verdict.split("; ")
    return [keep_whole(table, longest=40), Text(head, style="green" if dc.ok else "bold red"), *(Text("  " + part) for part in rest)]


def _chw(shape) -> str:
    return "x".join(map(str, shape[1:]))


def _factor(f: float) -> str:
    return f"{f:g}" if f == int(f) else f"{f:.4g}"


def plan_tables(result) -> list:
    """The decoder plan of a U-Net (``result.decoder_plan``): one row per block, the head, the totals."""
    from rich.table import Table

    h, w = result.input_size
    table = Table(title=f"decoder plan at {h}x{w}: {result.plan_spec}", title_justify="left", header_style="bold")
    for col, right in (("block", False), ("receives CxHxW", True), ("upsampled (factor)", True),
                       ("skip", False), ("skip CxHxW", True), ("concat C", True), ("output CxHxW", True),
                       ("params", True), ("MACs", True)):
        table.add_column(col, justify="right" if right else "left")
    for r in result.decoder_plan:
        fh, fw = r.scale_factor
        factor = f"x{_factor(fh)}" if fh == fw else f"x{_factor(fh)}, x{_factor(fw)}"
        table.add_row(r.module, _chw(r.in_shape), f"{_hw(r.upsampled)} ({factor})",
                      r.skip_module or "none", _chw(r.skip_shape) if r.skip_shape else "-", str(r.concat_channels),
                      _chw(r.out_shape), f"{r.params:,}", f"{r.macs:,}")
    head, t = result.decoder_head, result.decoder_totals
    table.add_row(head.module, "", "", "", "", str(head.in_channels), _chw(head.out_shape), f"{head.params:,}",
                  f"{head.macs:,}", style="dim")
    totals = Table(box=None, show_header=True, header_style="bold", title_justify="left")
    for col in ("", "params", "MACs"):
        totals.add_column(col, justify="right" if col else "left")
    for label, p, m in (("encoder", t.encoder_params, t.encoder_macs), ("decoder", t.decoder_params, t.decoder_macs),
                        ("head", t.head_params, t.head_macs), ("total", t.total_params, t.macs)):
        totals.add_row(label, f"{p:,}", f"{m:,}", style="bold" if label == "total" else None)
    return [keep_whole(table, longest=40), totals, Text(result.plan_note, style="dim")]


def skips_tables(result) -> list:
    """The encoder table and verdict, then the decoder plan when there is one."""
    parts = stages_tables(result)
    return parts + plan_tables(result) if result.decoder_plan is not None else parts


def plan_line(result) -> str:
    """The U-Net totals in one line (stderr companion of CSV and Markdown output)."""
    t = result.decoder_totals
    return (f"U-Net {result.plan_spec}: {t.total_params:,} params (encoder {t.encoder_params:,}, decoder "
            f"{t.decoder_params:,}, head {t.head_params:,}), {t.macs:,} MACs (conv + linear, batch 1); "
            "--format json has the decoder plan")
