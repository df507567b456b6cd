"""How a :class:`~resnet_cli.bench.ddp_records.DdpReport` looks: a settings block, one row per rank
(and the one-process baseline), the totals with the scaling efficiency, flat rows for CSV/Markdown
and ``--save`` lines. Nothing here measures or computes a figure beyond formatting (the efficiency
and totals come from the report).
"""

from __future__ import annotations

import json
from typing import Any, Optional

from rich import box
from rich.table import Table
from rich.text import Text

from ..bench.memory import human_bytes
from . import export
from .bench import ms
from .tables import keep_whole

#: CSV / Markdown columns: one row per rank, plus ``baseline`` (rank column "1 process").
COLUMNS = ["variant", "mode", "backend", "world_size", "rank", "host", "device", "batch_size", "threads", "iterations",
           "latency_median_ms", "latency_mean_ms", "latency_std_ms", "latency_p5_ms", "latency_p95_ms",
           "latency_min_ms", "latency_max_ms", "images_per_sec", "tflops", "allreduce_median_ms", "allreduce_share",
           "allreduce_buckets", "allreduce_bytes_per_step", "peak_memory_bytes", "first_call_ms", "outliers",
           "complete", "total_images_per_sec", "scaling_efficiency"]
NUMERIC = [c for c in COLUMNS if c not in ("variant", "mode", "backend", "rank", "host", "device", "complete")]


def _sig(value: Any) -> Any:
    return float(f"{value:.6g}") if isinstance(value, float) and value == value else value


def _row(report, r, label: str) -> dict:
    lat, comm = r.latency_ms, r.allreduce
    row = {"variant": report.variant, "mode": report.mode, "backend": report.backend, "world_size": r.world_size,
           "rank": label, "host": r.host, "device": r.device, "batch_size": r.batch_size, "threads": r.threads,
           "iterations": r.iterations, "latency_median_ms": lat.median, "latency_mean_ms": lat.mean,
           "latency_std_ms": lat.std, "latency_p5_ms": lat.p5, "latency_p95_ms": lat.p95, "latency_min_ms": lat.min,
           "latency_max_ms": lat.max, "images_per_sec": r.images_per_sec, "tflops": r.tflops,
           "allreduce_median_ms": comm.latency_ms.median if comm else None,
           "allreduce_share": comm.share if comm else None, "allreduce_buckets": comm.buckets if comm else None,
           "allreduce_bytes_per_step": comm.bytes_per_step if comm else None,
           "peak_memory_bytes": r.peak_memory_bytes, "first_call_ms": r.first_call_ms, "outliers": r.outliers,
           "complete": r.complete, "total_images_per_sec": None, "scaling_efficiency": None}
    return row


def rows(report) -> list[dict]:
    """One flat dict per rank (the first carries the totals), then the baseline; floats to 6 digits."""
    out = [_row(report, r, str(r.rank)) for r in report.ranks]
    if out:
        out[0].update(total_images_per_sec=report.images_per_sec, scaling_efficiency=report.scaling_efficiency)
    if report.baseline is not None:
        out.append(_row(report, report.baseline, "1 process"))
    return [{k: _sig(v) for k, v in row.items()} for row in out]


def settings_table(report) -> Table:
    env = report.environment
    table = Table(show_header=False, box=None, pad_edge=False, title_justify="left", title_style="bold",
                  title=f"resnet-cli bench --mode train: {report.variant} on {report.world_size} rank"
                        f"{'s' if report.world_size != 1 else ''}")
    table.add_column(style="dim")
    table.add_column()
    c, h, w = report.input_size
    precision = report.dtype + (f", autocast {report.amp}" if report.amp else "")
    ranks = (f"{report.world_size} = {report.nnodes} node{'s' if report.nnodes != 1 else ''} x "
             f"{report.nproc_per_node} process{'es' if report.nproc_per_node != 1 else ''} "
             f"({'one GPU each, cuda:LOCAL_RANK' if report.device_type == 'cuda' else 'CPU'}), DDP over "
             f"{report.backend}")
    items = [("ranks", ranks),
             ("step", f"zero_grad, forward + cross-entropy, backward (gradient all-reduce), {report.optimizer} step; "
                      f"{precision}, {'channels_last' if report.channels_last else 'contiguous'}, "
                      + (f"torch.compile ({report.compile_mode})" if report.compile_mode else "eager")),
             ("batch", f"{report.batch_per_rank} per rank, {report.global_batch} global, input N x {c} x {h} x {w}"),
             ("threads", f"{report.threads_per_rank} torch thread{'s' if report.threads_per_rank != 1 else ''} per rank"
                         + (f" ({env.cpu_count} logical CPUs, {env.cpu_model})" if env else ""))]
    if env is not None:
        versions = f"torch {env.torch_version}" + (f", CUDA {env.cuda_version}" if env.cuda_version else "")
        items.insert(1, ("device", f"rank 0: {env.device} ({env.device_name}); {versions}"))
    for key, value in items:
        table.add_row(key, value)
    return table


def _share(value: Optional[float]) -> str:
    return "-" if value is None or value != value else f"{100 * value:.1f}%"


def ranks_table(report) -> Table:
    """Per rank: images/s, step latency, the all-reduce's time and share, memory, iterations."""
    table = Table(title="training step per rank (ms)", title_justify="left", header_style="bold",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ["rank", "host", "device", "images/s", "TFLOP/s", "median", "mean ± std", "p5 … p95", "all-reduce",
                 "share", "peak mem", "iters"]:
        table.add_column(name, justify="right")
    entries = [(str(r.rank), r) for r in report.ranks]
    if report.baseline is not None:
        entries.append(("1 process", report.baseline))
    for label, r in entries:
        lat, comm = r.latency_ms, r.allreduce
        iters = str(r.iterations) + ("" if r.complete else " (cut)") + (f", {r.outliers} outl." if r.outliers else "")
        table.add_row(label, r.host, r.device, f"{r.images_per_sec:,.1f}",
                      "-" if r.tflops is None else f"{r.tflops:.3g}", ms(lat.median),
                      f"{ms(lat.mean)} ± {ms(lat.std)}", f"{ms(lat.p5)} … {ms(lat.p95)}",
                      ms(comm.latency_ms.median) if comm else "-", _share(comm.share if comm else None),
                      human_bytes(r.peak_memory_bytes), iters)
    return keep_whole(table)


def totals(report) -> Text:
    text = Text()
    if report.images_per_sec is not None:
        text.append(f"total: {report.images_per_sec:,.1f} images/s on {report.world_size} ranks", style="bold")
    else:
        text.append(f"no figures for the {report.world_size}-rank run (interrupted before every rank finished a "
                    "timed step)", style="yellow")
    if report.baseline is not None and report.baseline.complete is False:
        text.append(f"; one process (cut short): {report.baseline.images_per_sec:,.1f} images/s")
    elif report.baseline is not None and report.scaling_efficiency is not None:
        text.append(f"; one process: {report.baseline.images_per_sec:,.1f} images/s; scaling efficiency "
                    f"{100 * report.scaling_efficiency:.1f}% (total / ({report.world_size} x one process))")
    elif report.baseline is None:
        text.append("; no one-process baseline (--no-baseline or interrupted), so no scaling efficiency")
    return text


def renderables(report) -> list[Any]:
    out: list[Any] = [settings_table(report)]
    if not report.ranks and report.baseline is None:
        out.append(Text("no rank finished a timed training step", style="yellow"))
        return out
    out += [ranks_table(report), totals(report)]
    comm = next((r.allreduce for r in report.ranks if r.allreduce), None)
    size = f" ({comm.buckets} buckets, {human_bytes(comm.bytes_per_step)} per step)" if comm else ""
    flops = ("" if report.flops_per_step is None else
             f"TFLOP/s = {report.flops_per_step / 1e9:.4g} GFLOPs per rank's step / median ({report.flops_convention}). ")
    out.append(Text(f"step latency: one whole training step after warm-up, rank 0 deciding when phases end; "
                    f"images/s = batch per rank / median; total = sum over ranks. {flops}all-reduce{size}: "
                    f"{report.allreduce_convention}.", style="dim"))
    return out


def save_lines(report, timestamp: str) -> list[str]:
    """``--save`` JSON Lines, one per rank count (the baseline's world size 1, then the run's), in
    bench's single-run layout (``result`` with the total images/s and rank 0's latency) plus
    ``mode``, ``world_size``, ``scaling_efficiency`` and the per-rank records under ``ranks``."""
    out = []
    runs = ([(1, [report.baseline], report.baseline.images_per_sec, None)] if report.baseline else [])
    if report.ranks:
        runs.append((report.world_size, report.ranks, report.images_per_sec, report.scaling_efficiency))
    for world, ranks, total, eff in runs:
        first = ranks[0]
        record = {
            "schema_version": export.SCHEMA_VERSION, "timestamp": timestamp, "variant": report.variant,
            "spec": report.spec, "mode": report.mode, "world_size": world,
            "settings": {"device": report.device_type, "dtype": report.dtype, "amp": report.amp,
                         "optimizer": report.optimizer, "channels_last": report.channels_last,
                         "compile_mode": report.compile_mode, "input_size": report.input_size,
                         "threads": report.threads_per_rank, "warmup": report.warmup, "iters": report.iters,
                         "min_time_s": report.min_time_s, "backend": report.backend,
                         "nnodes": report.nnodes if world > 1 else 1,
                         "nproc_per_node": report.nproc_per_node if world > 1 else 1},
            "environment": report.environment, "flops_convention": report.flops_convention,
            "flops_per_step": report.flops_per_step, "peak": None,
            "result": {"batch_size": first.batch_size * world, "batch_per_rank": first.batch_size,
                       "iterations": first.iterations, "latency_ms": first.latency_ms, "images_per_sec": total,
                       "tflops": first.tflops,
                       "allreduce": first.allreduce, "peak_memory_bytes": first.peak_memory_bytes,
                       "complete": all(r.complete for r in ranks)},
            "scaling_efficiency": eff, "ranks": ranks,
        }
        out.append(json.dumps(export.as_plain(record), separators=(",", ":")))
    return out
