"""How a :class:`~resnet_cli.bench.records.GridReport` looks: a settings block, one table row per case
(latency, throughput, memory, relative speed and its verdict), flat rows for CSV/Markdown with timm's
column names beside ours, and ``--save`` lines. Nothing here measures or computes a figure.
"""

from __future__ import annotations

import re
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from ..bench.grid import CUT_SHORT, NOT_RUN
from ..bench.memory import human_bytes
from .bench import _sig, mode_columns, ms, phase_columns, save_record
from .tables import keep_whole

#: CSV / Markdown columns, one row per case. ``param_count`` (exact), ``gmacs`` (per image) and the
#: ``infer_*`` columns are timm benchmark.py's names (README, "Grid columns").
#: The ``train_*`` / ``infer_*`` pair follows the single run's rule (``render.bench.mode_columns``): a train
#: case fills ``train_*``, an eval case ``infer_*``.
COLUMNS = ["case", "index", "variant", "device", "dtype", "channels_last", "mode", "optimizer", "amp", "batch_size",
           "requested_batch_size",
           "retried", "rounds", "iterations", "latency_median_ms", "latency_mean_ms", "latency_std_ms",
           "latency_p5_ms", "latency_p25_ms", "latency_p75_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms",
           "latency_iqr_ms", "latency_min_ms", "latency_max_ms", "images_per_sec", "tflops", "utilization",
           "peak_tflops", "peak_memory_bytes", "peak_reserved_bytes", "first_call_ms", "param_count", "gmacs",
           "relative", "relative_low", "relative_high", "p_value", "significant", "train_samples_per_sec",
           "train_step_time", "train_batch_size", "infer_samples_per_sec", "infer_step_time", "infer_batch_size",
           "infer_img_size", "forward_ms", "backward_ms", "optimizer_ms", "error"]
NUMERIC = [c for c in COLUMNS if c not in ("case", "variant", "device", "dtype", "channels_last", "mode", "optimizer",
                                           "amp", "retried", "significant", "error")]
_STATS = ("median", "mean", "std", "p5", "p25", "p75", "p90", "p95", "p99", "iqr", "min", "max")


def rows(report) -> list[dict]:
    """One flat dict per case; floats to 6 significant digits."""
    out = []
    for c in report.cases:
        lat = c.latency_ms
        row = {"case": c.case, "index": c.index, "variant": c.variant, "device": report.device, "dtype": c.dtype,
               "channels_last": c.channels_last, "mode": c.mode, "optimizer": c.optimizer, "amp": c.amp,
               "batch_size": c.batch_size,
               "requested_batch_size": c.requested_batch_size, "retried": c.retried, "rounds": c.rounds,
               "iterations": c.iterations}
        row.update({f"latency_{k}_ms": getattr(lat, k) if lat else None for k in _STATS})
        row.update({k: getattr(c, k) for k in ("images_per_sec", "tflops", "utilization", "peak_tflops",
                                                "peak_memory_bytes", "peak_reserved_bytes", "first_call_ms",
                                                "param_count", "gmacs", "relative", "relative_low", "relative_high",
                                                "p_value", "significant", "error")})
        row.update(mode_columns(c.mode, c.images_per_sec, lat.median if lat else None, c.batch_size))
        row.update({"infer_img_size": c.input_size[-1] if c.input_size else None, **phase_columns(c.phase_ms)})
        out.append(row)
    return [{k: _sig(v) for k, v in row.items()} for row in out]


def verdict(c, reference: str) -> str:
    """``reference``, ``faster``, ``slower``, ``no significant difference``, ``failed``, ``not run``
    (Ctrl-C came first), ``interrupted`` (in its first round) or ``-`` (no test)."""
    if c.latency_ms is None:
        if c.error == NOT_RUN:
            return "not run"
        if c.error and c.error.startswith(CUT_SHORT):
            return "interrupted"
        return "failed" if c.error else "-"
    if c.case == reference:
        return "reference"
    if c.significant is None:
        return "-"
    if not c.significant:
        return "no significant difference"
    return "faster" if c.relative > 1 else "slower"


def _relative(c) -> str:
    if c.relative is None:
        return "-"
    if c.relative_low is None:
        return f"{c.relative:.3g}"
    return f"{c.relative:.3g} ({c.relative_low:.3g}–{c.relative_high:.3g})"


def settings_table(report) -> Table:
    env = report.environment or {}
    table = Table(show_header=False, box=None, pad_edge=False, title="resnet-cli bench: a grid of cases",
                  title_justify="left", title_style="bold")
    table.add_column(style="dim")
    table.add_column()
    timing = (f"{report.iters} timed iterations per case, split over its rounds" if report.iters is not None
              else f"at least {report.min_time_s:.3g} s and 10 iterations per round")
    where = "a fresh process per case and round" if report.process == "subprocess" else "one process"
    lines = [("device", f"{env.get('device', report.device)} ({env.get('device_name', '?')})"),
             ("software", f"torch {env.get('torch_version', '?')}"),
             ("cpu", f"{env.get('cpu_model', '?')}, {env.get('cpu_count', '?')} logical CPUs, "
                     f"{env.get('threads', '?')} torch threads"
                     + (f", load average {env['load_average']:.2f}" if env.get("load_average") is not None else "")),
             ("rounds", f"{report.rounds}, cases in turn, {where}; {timing}"),
             ("relative", f"images/s over {report.reference}'s, {100 * report.confidence:.0f}% interval, Welch's "
                          "t-test on log latency (" + ("per-round medians)" if report.rounds > 1 else "iterations: one round)"))]
    train = [c for c in report.cases if c.mode == "train"]
    if train:
        lines.append(("train", f"training step with {train[0].optimizer}"))
    if any(c.amp for c in report.cases):
        lines.append(("amp", f"{report.cases[0].amp} autocast over fp32 weights, every case"))
    for key, value in lines:
        table.add_row(key, value)
    return table


def _batch(c) -> str:
    return str(c.batch_size) + (f" (of {c.requested_batch_size}, OOM)" if c.retried else "")


def cases_table(report) -> Table:
    cuda = report.device.startswith("cuda")
    table = Table(title="cases", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for name, justify in (("#", "right"), ("variant", "left"), ("dtype", "left"), ("layout", "left"),
                          ("batch", "right"), ("median ms", "right"), ("p5 … p95", "right"), ("images/s", "right"),
                          ("TFLOP/s", "right"), ("util", "right"), ("peak mem", "right"), ("relative", "right"),
                          ("vs " + f"#{next(c.index for c in report.cases if c.case == report.reference)}", "left")):
        table.add_column(name, justify=justify)
    detail = any(c.phase_ms for c in report.cases)
    if detail:
        table.add_column("fwd / bwd / opt ms", justify="right")
    for c in report.cases:
        lat = c.latency_ms
        memory = human_bytes(c.peak_reserved_bytes if cuda and c.peak_reserved_bytes else c.peak_memory_bytes)
        repeat = re.search(r"#\d+$", c.case)
        row = [str(c.index), c.variant + (repeat.group() if repeat else ""), c.dtype, "nhwc" if c.channels_last else "nchw",
               _batch(c) + ("" if c.mode == "eval" else f" {c.mode}"),
               ms(lat.median) if lat else "-", f"{ms(lat.p5)} … {ms(lat.p95)}" if lat else "-",
               f"{c.images_per_sec:,.1f}" if c.images_per_sec else "-", f"{c.tflops:.3g}" if c.tflops else "-",
               f"{100 * c.utilization:.1f}%" if c.utilization is not None else "-", memory, _relative(c), verdict(c, report.reference)]
        if detail:
            row.append(" / ".join(ms((c.phase_ms or {}).get(k)) for k in ("forward", "backward", "optimizer"))
                       if c.phase_ms else "-")
        style = "dim" if c.latency_ms is None else ("bold" if c.case == report.reference else None)
        table.add_row(*row, style=style)
    return keep_whole(table)


def renderables(report) -> list[Any]:
    out: list[Any] = [settings_table(report), cases_table(report)]
    partial = [c for c in report.cases if 0 < c.rounds < report.rounds]
    what = ("one forward pass (eval) or training step (train)" if any(c.mode != "eval" for c in report.cases)
            else "one forward pass")
    legend = (f"median and p5 … p95: latency of {what} of the whole batch, every round's iterations "
              "pooled; images/s = batch / median; util = TFLOP/s / peak GEMM; relative = images/s over the "
              "reference's, with its interval; 'no significant difference': the interval includes 1.")
    if any(c.phase_ms for c in report.cases):
        legend += (" fwd / bwd / opt (--detail): median ms of a training step's forward (with the loss), backward "
                   "and optimizer step, timed apart (the median over rounds).")
    if partial:
        legend += f" {len(partial)} case(s) have fewer than {report.rounds} rounds (interrupted or failed)."
    out.append(Text(legend, style="dim"))
    return out


def save_line(report, case, timestamp: str) -> str:
    """One ``--save`` JSON Lines record for a grid case: the single-run layout (``render.bench.save_record``)
    with ``result`` pooled over the case's rounds, plus ``case``, ``reference``, ``relative`` and
    ``significant``, and ``rounds`` / ``process`` in ``settings``. A single run's per-process result keys
    that have no pooled value (``warmup_iterations``, ``warmup_stable``, ``compile_ms``, ``outliers``,
    ``flops``) are left out (README, ``--save``)."""
    return save_record(
        timestamp=timestamp, variant=case.variant, spec=case.spec,
        settings={"device": report.device, "dtype": case.dtype, "channels_last": case.channels_last, "mode": case.mode,
                  "optimizer": case.optimizer, "amp": case.amp, "compile_mode": report.compile_mode,
                  "input_size": case.input_size, "threads": report.threads, "warmup": report.warmup,
                  "iters": report.iters, "min_time_s": report.min_time_s, "rounds": report.rounds,
                  "process": report.process},
        environment=report.environment, flops_convention=report.flops_convention,
        flops_per_image=case.flops_per_image, peak=case.peak,
        result={"batch_size": case.batch_size, "requested_batch_size": case.requested_batch_size,
                "rounds": case.rounds, "iterations": case.iterations, "first_call_ms": case.first_call_ms,
                "latency_ms": case.latency_ms, "images_per_sec": case.images_per_sec, "tflops": case.tflops,
                "utilization": case.utilization, "peak_memory_bytes": case.peak_memory_bytes,
                "peak_reserved_bytes": case.peak_reserved_bytes, "complete": case.rounds == report.rounds,
                "mode": case.mode, "phase_ms": case.phase_ms, "plan_peak_bytes": case.plan_peak_bytes,
                "step_peak_bytes": case.step_peak_bytes, "plan_error_percent": case.plan_error_percent},
        case=case.case, gmacs=case.gmacs, param_count=case.param_count, reference=report.reference,
        relative=case.relative, significant=case.significant)
