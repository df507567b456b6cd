"""How a :class:`~resnet_cli.bench.records.BenchReport` looks: the environment block, one table row
per batch, a bar chart of images/s for sweeps, flat rows for CSV/Markdown, and ``--save`` lines.
Nothing here measures or computes a figure; it only formats the report's numbers.
"""

from __future__ import annotations

from typing import Any, Optional

from rich import box
from rich.table import Table
from rich.text import Text

from ..bench.memory import human_bytes
from . import export
from .tables import keep_whole

#: CSV / Markdown columns, one row per batch size.
COLUMNS = ["variant", "device", "dtype", "channels_last", "compile_mode", "input_size", "threads", "batch_size",
           "requested_batch_size", "iterations", "latency_median_ms", "latency_mean_ms", "latency_std_ms",
           "latency_p5_ms", "latency_p95_ms", "latency_min_ms", "latency_max_ms", "images_per_sec", "tflops",
           "utilization", "peak_tflops", "peak_memory_bytes", "peak_reserved_bytes", "first_call_ms",
           "compile_ms", "outliers", "complete",
           # training steps (--mode train/both); the train_*/infer_* names are timm benchmark.py's
           "mode", "optimizer", "amp", "train_samples_per_sec", "train_step_time", "train_batch_size",
           "infer_samples_per_sec", "infer_step_time", "infer_batch_size", "param_count", "forward_ms",
           "backward_ms", "optimizer_ms", "plan_peak_bytes", "step_peak_bytes", "plan_error_percent",
           # the rest of the statistics, and GMACs of one image and the image side (timm's gmacs, img_size)
           "latency_p25_ms", "latency_p75_ms", "latency_p90_ms", "latency_p99_ms", "latency_iqr_ms", "gmacs",
           "infer_img_size"]
NUMERIC = [c for c in COLUMNS if c not in ("variant", "device", "dtype", "channels_last", "compile_mode",
                                           "input_size", "complete", "mode", "optimizer", "amp")]
_BAR_WIDTH = 40
_EIGHTHS = " ▏▎▍▌▋▊▉█"


def _sig(value: Any) -> Any:
    """Floats to 6 significant digits (far finer than any timing's repeatability)."""
    return float(f"{value:.6g}") if isinstance(value, float) and value == value else value


def rows(report) -> list[dict]:
    """One flat dict per result (CSV and Markdown); floats to 6 significant digits."""
    out = []
    for r in report.results:
        lat = r.latency_ms
        out.append({
            "variant": report.variant, "device": report.device, "dtype": report.dtype,
            "channels_last": report.channels_last, "compile_mode": report.compile_mode or "",
            "input_size": report.input_size, "threads": report.threads, "batch_size": r.batch_size,
            "requested_batch_size": r.requested_batch_size, "iterations": r.iterations,
            "latency_median_ms": lat.median, "latency_mean_ms": lat.mean, "latency_std_ms": lat.std,
            "latency_p5_ms": lat.p5, "latency_p95_ms": lat.p95, "latency_min_ms": lat.min,
            "latency_max_ms": lat.max, "images_per_sec": r.images_per_sec, "tflops": r.tflops,
            "utilization": r.utilization, "peak_tflops": report.peak.tflops if report.peak else None,
            "peak_memory_bytes": r.peak_memory_bytes, "peak_reserved_bytes": r.peak_reserved_bytes,
            "first_call_ms": r.first_call_ms, "compile_ms": r.compile_ms, "outliers": r.outliers,
            "complete": r.complete, **_train_columns(report, r),
            "latency_p25_ms": lat.p25, "latency_p75_ms": lat.p75, "latency_p90_ms": lat.p90,
            "latency_p99_ms": lat.p99, "latency_iqr_ms": lat.iqr, "gmacs": report.flops_per_image / 2 / 1e9,
            "infer_img_size": report.input_size[-1],
        })
    return [{k: _sig(v) for k, v in row.items()} for row in out]


def _train_columns(report, r) -> dict:
    """The training-step columns of one result (timm's names for throughput, step time and batch)."""
    train = r.mode == "train"
    return {"mode": r.mode, "optimizer": report.optimizer if train else None, "amp": report.amp,
            **mode_columns(r.mode, r.images_per_sec, r.latency_ms.median, r.batch_size),
            "param_count": report.param_count, **phase_columns(r.phase_ms), "plan_peak_bytes": r.plan_peak_bytes,
            "step_peak_bytes": r.step_peak_bytes, "plan_error_percent": r.plan_error_percent}


def mode_columns(mode: str, images_per_sec, step_time_ms, batch_size) -> dict:
    """timm benchmark.py's throughput columns of one row: ``train_*`` filled for a training step (mode
    ``train``), ``infer_*`` for a forward pass, the other three empty (the single run's and the grid's
    CSV share this rule)."""
    prefix, other = ("train", "infer") if mode == "train" else ("infer", "train")
    return {f"{prefix}_samples_per_sec": images_per_sec, f"{prefix}_step_time": step_time_ms,
            f"{prefix}_batch_size": batch_size, f"{other}_samples_per_sec": None, f"{other}_step_time": None,
            f"{other}_batch_size": None}


def phase_columns(phase_ms) -> dict:
    """``forward_ms``, ``backward_ms``, ``optimizer_ms`` of a training step timed with ``--detail`` (else None)."""
    phases = phase_ms or {}
    return {f"{k}_ms": phases.get(k) for k in ("forward", "backward", "optimizer")}


def ms(value: Optional[float]) -> str:
    """Milliseconds with about four significant digits."""
    if value is None or value != value:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.2f}" if value < 100 else f"{value:.1f}"


def environment_table(report) -> Table:
    env = report.environment
    table = Table(show_header=False, box=None, pad_edge=False, title=f"resnet-cli bench: {report.variant}",
                  title_justify="left", title_style="bold")
    table.add_column(style="dim")
    table.add_column()
    versions = f"torch {env.torch_version}"
    if env.cuda_version:
        versions += f", CUDA {env.cuda_version}, cuDNN {env.cudnn_version}"
    memory = f"{env.memory_format}" + (f", TF32 convs {'on' if env.tf32 else 'off'}" if env.tf32 is not None else "")
    compiled = f"torch.compile (mode {report.compile_mode})" if report.compile_mode else "eager"
    c, h, w = report.input_size
    peak = "-" if report.peak is None else (
        f"{report.peak.tflops:.3g} TFLOP/s ({report.peak.source}"
        + (f", {report.peak.gemm_size}x{report.peak.gemm_size} GEMM in {report.dtype})" if report.peak.gemm_size else ")"))
    for key, value in [
        ("device", f"{env.device} ({env.device_name})"), ("software", versions),
        ("cpu", f"{env.cpu_model}, {env.cpu_count} logical CPUs, {env.threads} torch threads"
                + (f", load average {env.load_average:.2f}" if env.load_average is not None else "")),
        ("dtype", f"{env.dtype}" + (f" + {report.amp} autocast" if report.amp else "") + f", {memory}, {compiled}"),
        ("input", f"N x {c} x {h} x {w}"),
        ("FLOPs", f"{report.flops_per_image / 1e9:.4g} GFLOPs per image, {report.flops_convention}"),
        ("peak", peak),
    ]:
        table.add_row(key, value)
    if report.train_flops_convention:
        table.add_row("train FLOPs", report.train_flops_convention)
    return table


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in columns:
        table.add_column(name, justify="right")
    return table


def _batch(r) -> str:
    return str(r.batch_size) + ("" if r.batch_size == r.requested_batch_size else f" (of {r.requested_batch_size})")


def _batch_mode(report, r) -> str:
    return _batch(r) + (f" {r.mode}" if report.mode != "eval" else "")


def latency_table(report) -> Table:
    """Latency of one forward pass (or training step) of the whole batch, in ms."""
    what = {"eval": "forward pass", "train": "training step"}.get(report.mode, "forward pass / training step")
    table = _table(f"latency per {what} (ms)", ["batch", "median", "mean ± std", "p5 … p95", "min … max", "iters"])
    for r in report.results:
        lat = r.latency_ms
        iters = str(r.iterations) + ("" if r.complete else " (cut)") + (f", {r.outliers} outl." if r.outliers else "")
        table.add_row(_batch_mode(report, r), ms(lat.median), f"{ms(lat.mean)} ± {ms(lat.std)}",
                      f"{ms(lat.p5)} … {ms(lat.p95)}", f"{ms(lat.min)} … {ms(lat.max)}", iters)
    return keep_whole(table)


def throughput_table(report) -> Table:
    """images/s, achieved TFLOP/s, utilisation, peak memory and the first call (compile) per batch."""
    cuda = any(r.peak_reserved_bytes is not None for r in report.results)
    first = "compile + 1st call ms" if report.compile_mode else "1st call ms"
    table = _table("throughput", ["batch", "images/s", "TFLOP/s", "util", "peak mem" + (" / reserved" if cuda else ""),
                                  first])
    for r in report.results:
        util = "-" if r.utilization is None else f"{100 * r.utilization:.1f}%"
        memory = human_bytes(r.peak_memory_bytes) + (
            f" / {human_bytes(r.peak_reserved_bytes)}" if r.peak_reserved_bytes is not None else "")
        table.add_row(_batch_mode(report, r), f"{r.images_per_sec:,.1f}",
                      "-" if r.tflops != r.tflops else f"{r.tflops:.3g}", util, memory,
                      ms(r.first_call_ms))
    return keep_whole(table)


def train_table(report) -> Optional[Table]:
    """Training steps: the forward / backward / optimizer split (``--detail``) and the memory plan's peak
    beside the measured peak of a step."""
    train = [r for r in report.results if r.mode == "train"]
    if not train:
        return None
    detail = any(r.phase_ms for r in train)
    cuda = report.device.startswith("cuda")
    columns = ["batch"] + (["forward ms", "backward ms", "optimizer ms"] if detail else [])
    columns += ["plan peak", "measured peak" + (" (max allocated)" if cuda else " (profiler)"), "plan error"]
    table = _table(f"training step ({report.optimizer}" + (f", {report.amp} autocast" if report.amp else "") + ")",
                   columns)
    for r in train:
        row = [_batch(r)]
        if detail:
            row += [ms((r.phase_ms or {}).get(k)) for k in ("forward", "backward", "optimizer")]
        error = "-" if r.plan_error_percent is None else f"{r.plan_error_percent:+.1f}%"
        row += [human_bytes(r.plan_peak_bytes, 2), human_bytes(r.step_peak_bytes, 2), error]
        table.add_row(*row)
    return keep_whole(table)


def bar(value: float, largest: float, width: int = _BAR_WIDTH) -> str:
    """A horizontal bar of ``value / largest`` of ``width`` cells, in eighth-cell steps."""
    if largest <= 0 or value != value:
        return ""
    eighths = round(max(0.0, min(1.0, value / largest)) * width * 8)
    return "█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")


def bar_chart(report) -> Text:
    """images/s per batch size as terminal bars (for sweeps)."""
    largest = max(r.images_per_sec for r in report.results)
    label = max(len(str(r.batch_size)) for r in report.results)
    text = Text("images/s by batch size\n", style="bold")
    for r in report.results:
        text.append(f"{r.batch_size:>{label}} │")
        text.append(f"{bar(r.images_per_sec, largest):<{_BAR_WIDTH}}", style="cyan")
        text.append(f" {r.images_per_sec:,.1f}\n")
    return text


def renderables(report) -> list[Any]:
    """What the table format prints: environment, results, a bar chart for sweeps, and the legend."""
    out: list[Any] = [environment_table(report)]
    if not report.results:
        out.append(Text("no batch finished a timed iteration", style="yellow"))
        return out
    out += [latency_table(report), throughput_table(report)]
    train = train_table(report)
    if train is not None:
        out.append(train)
    if len(report.results) > 1 and report.mode != "both":
        out.append(bar_chart(report))
    mem = ("CUDA max allocated / reserved over the timed iterations" if report.device.startswith("cuda")
           else "rise of the process's peak RSS from the batch's first call on (weights and input excluded)")
    unit = {"eval": "one forward pass", "train": "one training step"}.get(report.mode,
                                                                        "one forward pass (eval) or training step (train)")
    out.append(Text(f"latency: {unit} of the whole batch, after warm-up; images/s = batch / median; "
                    f"util = TFLOP/s / peak; peak mem = {mem}.", style="dim"))
    if train is not None:
        step_mem = ("torch.cuda.max_memory_allocated" if report.device.startswith("cuda")
                    else "live tensor bytes at the peak of one extra step (torch.profiler memory events)")
        out.append(Text("train: one step = zero_grad, forward, loss, backward, optimizer step; TFLOP/s from the "
                        "counted training FLOPs (forward + backward + optimizer); plan = the memory plan of "
                        f"'summary --pass train' (fake tensors); measured = {step_mem}.", style="dim"))
    return out


def save_record(*, timestamp: str, variant: str, spec: str, settings: dict, environment, flops_convention: str,
                flops_per_image, peak, result, **extra) -> str:
    """A ``--save`` JSON Lines record in the one layout every single-run and grid line shares:
    schema_version, timestamp, variant, spec, settings, environment, flops_convention, flops_per_image,
    peak, result, then ``extra`` (a grid case's ``case``, ``reference``, ...). Strict JSON, one line."""
    record = {"schema_version": export.SCHEMA_VERSION, "timestamp": timestamp, "variant": variant, "spec": spec,
              "settings": settings, "environment": environment, "flops_convention": flops_convention,
              "flops_per_image": flops_per_image, "peak": peak, "result": result, **extra}
    return export.strict_dumps(export.as_plain(record), separators=(",", ":"))


def save_line(report, result, timestamp: str) -> str:
    """One ``--save`` JSON Lines record: variant, settings, environment, figures and timestamp."""
    return save_record(
        timestamp=timestamp, variant=report.variant, spec=report.spec,
        settings={"device": report.device, "dtype": report.dtype, "channels_last": report.channels_last,
                  "mode": report.mode, "optimizer": report.optimizer, "amp": report.amp,
                  "compile_mode": report.compile_mode, "input_size": report.input_size,
                  "threads": report.threads, "warmup": report.warmup, "iters": report.iters,
                  "min_time_s": report.min_time_s},
        environment=report.environment, flops_convention=report.flops_convention,
        flops_per_image=report.flops_per_image, peak=report.peak, result=result)
