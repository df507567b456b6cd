"""``resnet-cli bench``: forward-pass latency, throughput, achieved TFLOP/s, utilisation and memory."""

from __future__ import annotations

import enum
import os
import sys
from contextlib import nullcontext
from typing import List, Optional

import typer

from ..errors import RuntimeFailure, UsageError
from . import app, bench_ddp
from .bench_ddp import Backend
from .common import (VARIANT_HELP, Amp, Format, Optimizer, emit, format_option, import_torch, in_chans_option,
                     input_size_option,
                     kwargs_option, load_network, num_classes_option, size_option, strict_option, weights_option)


class Dtype(str, enum.Enum):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


class Mode(str, enum.Enum):
    eval = "eval"
    train = "train"
    both = "both"


class CompileMode(str, enum.Enum):
    default = "default"
    reduce_overhead = "reduce-overhead"
    max_autotune = "max-autotune"
    max_autotune_no_cudagraphs = "max-autotune-no-cudagraphs"


class _Reporter:
    """Progress on stderr: a rich bar on a terminal (table/markdown), else one note per batch."""

    def __init__(self, note, show_bar: bool, iters: Optional[int], min_time_s: float, min_iters: int = 10):
        from ..render.console import stderr

        self.note, self.iters, self.min_time_s, self.min_iters = note, iters, min_time_s, max(min_iters, 1)
        self.bar = None
        self.task = None
        self.key = None
        if show_bar:
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            # A slow refresh: the bar's thread must not compete with the timed forward passes.
            self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                TimeElapsedColumn(), console=stderr(), transient=True, refresh_per_second=2)

    def context(self):
        return self.bar if self.bar is not None else nullcontext()

    def progress(self, batch: int, phase: str, done: int, total: Optional[int], elapsed_s: float) -> None:
        if self.bar is None:
            if phase == "timed" and done == 1:
                what = f"{self.iters} iterations" if self.iters else f"at least {self.min_time_s:g} s"
                self.note(f"batch {batch}: warmed up, timing {what}")
            return
        if self.key != (batch, phase):
            if self.task is not None:
                self.bar.remove_task(self.task)
            self.task, self.key = self.bar.add_task(f"batch {batch}: {phase}", total=None), (batch, phase)
        if phase == "timed":
            if total:
                self.bar.update(self.task, total=total, completed=done,
                                description=f"batch {batch}: timed, {done} of {total} iterations")
                return
            # Timing ends when both --min-time and the minimum count are reached: the bar shows the
            # slower of the two, so it never sits at 100% (clock stopped) while iterations still run.
            left = max(self.min_iters - done, 0)
            share = min(elapsed_s / self.min_time_s if self.min_time_s > 0 else 1.0, done / self.min_iters)
            more = f", {left} more to reach the minimum of {self.min_iters}" if left and elapsed_s >= self.min_time_s else ""
            self.bar.update(self.task, total=1000, completed=min(int(1000 * share), 999),
                            description=f"batch {batch}: timed, {done} iterations{more}")
        else:
            self.bar.update(self.task, description=f"batch {batch}: warm-up, {done} iterations")


@app.command("bench")
def bench(
    variants: Optional[List[str]] = typer.Argument(None, metavar="VARIANT_OR_SPEC...", help=VARIANT_HELP + " Several "
                                                  "variants (and comma lists in --dtype) make a grid of cases."),
    device: str = typer.Option("cpu", "--device", "-d", help="cpu, cuda, cuda:N or mps."),
    batch: Optional[str] = typer.Option(None, "--batch", "-b",
                                        help="Batch size, or a comma list for a sweep: 64 or 1,8,32,64 [default: 32]."),
    size: Optional[str] = size_option(),
    dtype: str = typer.Option("fp32", "--dtype", help="fp32, fp16 or bf16, or a comma list for a grid: fp32,bf16 "
                              "(weights and input cast to it; not autocast)."),
    channels_last: Optional[str] = typer.Option(None, "--channels-last", metavar="[on|off|both]",
                                                help="NHWC memory format for weights and input; 'both' runs each "
                                                "layout as a case of a grid."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the model (compile time reported apart)."),
    compile_mode: Optional[CompileMode] = typer.Option(None, "--compile-mode", case_sensitive=False,
                                                       help="torch.compile mode (implies --compile)."),
    warmup: int = typer.Option(5, "--warmup", min=0, help="Warm-up iterations at least; warm-up then runs on "
                               "until latency settles (within 5%), capped at 10 s."),
    iters: Optional[int] = typer.Option(None, "--iters", min=1, help="Timed iterations (exactly)."),
    min_time: Optional[float] = typer.Option(None, "--min-time", min=0.0, help="Time for at least S seconds and "
                                             "10 iterations [default: 2]."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, max=os.cpu_count(),
                                          help="torch.set_num_threads(N) (CPU threads, at most the logical CPUs)."),
    peak_tflops: Optional[float] = typer.Option(None, "--peak-tflops", help="The device's peak in TFLOP/s for "
                                                "utilisation, instead of measuring a GEMM."),
    max_batch: bool = typer.Option(False, "--max-batch", help="Search the largest batch that fits (up to 4096) "
                                   "and measure it."),
    force: bool = typer.Option(False, "--force", help="Run on CPU even when the memory estimate exceeds the RAM."),
    save: Optional[str] = typer.Option(None, "--save", metavar="FILE",
                                       help="Append one JSON line per measured batch to FILE."),
    in_chans: Optional[int] = in_chans_option(),
    num_classes: Optional[int] = num_classes_option(),
    weights: Optional[str] = weights_option(),
    strict: bool = strict_option(),
    grid: bool = typer.Option(False, "--grid", help="The grid table even for one variant in one setting (each "
                              "batch of --batch a case)."),
    rounds: Optional[int] = typer.Option(None, "--rounds", min=1, help="Grid: rounds of all cases in turn; "
                                         "--iters/--min-time are split over them [default: 3]."),
    reference: Optional[str] = typer.Option(None, "--reference", metavar="CASE", help="Grid: the case relative "
                                            "speeds divide by, a number or a name such as resnet50/fp32/b64/nchw "
                                            "[default: the first]."),
    sort: Optional[str] = typer.Option(None, "--sort", help="Grid rows: throughput, latency or name [default: as run]."),
    same_process: bool = typer.Option(False, "--same-process", help="Grid: run every case in this process "
                                      "instead of a fresh one per case and round."),
    no_retry: bool = typer.Option(False, "--no-retry", help="Fail on out-of-memory instead of halving the batch."),
    nproc: Optional[int] = typer.Option(None, "--nproc", min=1, help="--mode train: data-parallel processes on "
                                        "this node, launched by torchrun's machinery (one GPU each on CUDA)."),
    nnodes: Optional[int] = typer.Option(None, "--nnodes", min=1, help="--nproc: nodes taking part [default: 1]."),
    node_rank: Optional[int] = typer.Option(None, "--node-rank", min=0, help="--nproc: this node's rank [default: 0]."),
    master_addr: Optional[str] = typer.Option(None, "--master-addr", metavar="HOST", help="--nproc: the rank-0 "
                                              "node's address [default: 127.0.0.1]."),
    master_port: Optional[int] = typer.Option(None, "--master-port", min=1, max=65535, help="--nproc: its port "
                                              "[default: a free one on one node, 29500 on several]."),
    backend: Optional[Backend] = typer.Option(None, "--backend", case_sensitive=False, help="--nproc: nccl or "
                                              "gloo [default: nccl on cuda, gloo on cpu]."),
    timeout: Optional[float] = typer.Option(None, "--timeout", metavar="S", help="--nproc: end the run when no "
                                            "rank progresses for S seconds [default: 300]."),
    no_baseline: bool = typer.Option(False, "--no-baseline", help="--nproc: skip the one-process run (no "
                                     "scaling efficiency)."),
    fmt: Format = format_option(),
    run_mode: Mode = typer.Option(Mode.eval, "--mode", case_sensitive=False,
                              help="eval: forward passes (inference). train: whole training steps (forward, loss, "
                                   "backward, optimizer step). both: each batch in both."),
    optimizer: Optional[Optimizer] = typer.Option(None, "--optimizer", case_sensitive=False,
                                                  help="Training step optimizer: sgd, momentum or adamw "
                                                       "[default: sgd]."),
    amp: Optional[Amp] = typer.Option(None, "--amp", case_sensitive=False,
                                      help="Autocast to bf16 or fp16 over fp32 weights (fp16 training adds a "
                                           "gradient scaler)."),
    detail: bool = typer.Option(False, "--detail", help="Train: time forward, backward and optimizer apart."),
    kwargs: Optional[str] = kwargs_option(),
    input_size: Optional[str] = input_size_option(),
) -> None:
    """Time forward passes or training steps: latency distribution, images/s, TFLOP/s, utilisation and
    peak memory per batch; with several variants, dtypes or layouts, a grid of cases with relative speeds."""
    from ..bench.config import (DEFAULT_BATCH, DEFAULT_MIN_TIME_S, BenchConfig, check_bench_numbers, parse_batches,
                                parse_device, parse_dtypes, parse_layouts)
    from ..models import input_hw

    if iters is not None and min_time is not None:
        raise UsageError("--iters and --min-time both given; use one (--iters N for a fixed count)")
    if max_batch and batch is not None:
        raise UsageError("--batch and --max-batch both given; --max-batch finds the batch itself")
    check_bench_numbers(min_time=min_time, peak_tflops=peak_tflops, iters=iters, warmup=warmup)
    if run_mode == Mode.eval and (optimizer is not None or detail):
        raise UsageError(f"{'--optimizer' if optimizer is not None else '--detail'} applies to training steps; add "
                         "--mode train or --mode both")
    dtypes, layouts = parse_dtypes(dtype), parse_layouts(channels_last)
    if amp is not None and dtypes != ("fp32",):
        raise UsageError(f"--amp {amp.value} autocasts fp32 weights; it cannot be combined with --dtype "
                         f"{','.join(dtypes)} (leave --dtype at fp32)")
    batches = parse_batches(batch) if batch is not None else (DEFAULT_BATCH,)
    device_name = parse_device(device)
    variants = list(variants or [None])
    if sort is not None and sort.strip().lower() not in ("throughput", "latency", "name"):
        raise UsageError(f"--sort {sort!r} is not one of throughput, latency, name")
    is_grid = (len(variants) > 1 or len(dtypes) > 1 or len(layouts) > 1 or grid or rounds is not None
               or reference is not None or sort is not None or same_process)
    if is_grid and max_batch:
        raise UsageError("--max-batch measures one case; give --batch sizes for a grid")
    if weights is not None and len(variants) > 1:
        raise UsageError("--weights loads one network; give one VARIANT with --weights, or several without it")
    if save is not None:
        from ..bench.save import check_appendable

        check_appendable(save)
    ddp = bench_ddp.DdpOptions(nproc=nproc, nnodes=nnodes, node_rank=node_rank, master_addr=master_addr,
                               master_port=master_port, backend=backend.value if backend else None,
                               timeout_s=timeout, no_baseline=no_baseline)
    if bench_ddp.wanted(ddp, run_mode.value):
        if is_grid:
            raise UsageError("--nproc measures one case; give one variant in one --dtype and layout with --nproc")
        bench_ddp.check(ddp, run_mode.value, device_name, batches, max_batch, detail)  # before the network loads
    mode = compile_mode.value if compile_mode is not None else ("default" if compile_ else None)
    min_time_s = DEFAULT_MIN_TIME_S if min_time is None else min_time
    from ..models.external import ModuleSource

    if is_grid:
        from .bench_grid import GridOptions, run_grid

        networks = [load_network(v, weights, strict, in_chans, num_classes, kwargs, input_size) for v in variants]
        if any(isinstance(s, ModuleSource) for _, s, _ in networks):
            raise UsageError("a grid takes built-in variants and specs; your own module (FILE.py:factory, timm:NAME, "
                             "torchvision:NAME) is benchmarked one setting at a time")
        run_grid(GridOptions(networks=[(n, s, input_hw(s, size)) for n, s, _ in networks], weights=weights,
                             strict=strict, device=device_name, dtypes=dtypes, layouts=layouts, batches=batches,
                             compile_mode=mode, warmup=warmup, iters=iters, min_time_s=min_time_s, threads=threads,
                             peak_tflops=peak_tflops, force=force, retry=not no_retry, rounds=rounds or 3,
                             reference=reference, sort=(sort or "run").strip().lower(), same_process=same_process,
                             modes=("eval", "train") if run_mode == Mode.both else (run_mode.value,),
                             optimizer=(optimizer or Optimizer.sgd).value, amp=amp.value if amp else None,
                             detail=detail),
                 fmt, save)
        return
    name, spec, state_dict = load_network(variants[0], weights, strict, in_chans, num_classes, kwargs, input_size)
    if bench_ddp.wanted(ddp, run_mode.value):
        if isinstance(spec, ModuleSource):
            raise UsageError("--nproc takes a built-in variant or spec; your own module (FILE.py:factory, "
                             "timm:NAME, torchvision:NAME) runs on one process only")
        bench_ddp.run(ddp, mode=run_mode.value, variant=name, spec=spec, state_dict=state_dict, strict=strict,
                      device=device_name, dtype=dtypes[0], amp=amp.value if amp else None,
                      optimizer=(optimizer or Optimizer.sgd).value, channels_last=layouts[0],
                      compile_mode=mode, batches=batches, max_batch=max_batch, size=input_hw(spec, size),
                      warmup=warmup, iters=iters, min_time_s=min_time_s, threads=threads, fmt=fmt, save=save)
        return
    settings = dict(state_dict=state_dict, strict=strict, device=device_name, dtype=dtypes[0],
                    channels_last=layouts[0], compile_mode=mode, batches=batches, max_batch=max_batch,
                    warmup=warmup, iters=iters, min_time_s=min_time_s, threads=threads, peak_tflops=peak_tflops,
                    force=force, retry=not no_retry, mode=run_mode.value, optimizer=(optimizer or Optimizer.sgd).value,
                    amp=amp.value if amp else None, detail=detail)
    if isinstance(spec, ModuleSource):  # your own network: built once here, after the checks above
        from ..bench.api import network_config
        from ..models import parse_size
        from ..render.console import note

        hw = parse_size(size) if size is not None else None
        import_torch()
        cfg, notes = network_config(spec, hw, name=name, **settings)
        for line in notes:
            note(f"note: {line}")
    else:
        cfg = BenchConfig(variant=name, spec=spec, size=input_hw(spec, size), **settings)
    _run(cfg, fmt, save)


def _run(cfg, fmt: Format, save: Optional[str]) -> None:
    from datetime import datetime, timezone

    from ..bench.save import append_line
    from ..bench.session import Hooks, Session
    from ..render import bench as view
    from ..render.console import note

    import_torch()

    def tell(text: str) -> None:
        note(f"resnet-cli bench: {text}")

    save_failed: list[RuntimeFailure] = []

    def on_result(report, result) -> None:
        if save is not None and not save_failed:
            stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
            try:
                append_line(save, view.save_line(report, result, stamp))
            except RuntimeFailure as exc:  # keep measuring and print every result; exit 1 at the end
                save_failed.append(exc)
                tell(f"{exc}; the results are printed but no longer saved")

    from ..bench.runner import MIN_ITERS
    from ..bench.session import CPU_MAX_BATCH_MIN_ITERS

    min_iters = CPU_MAX_BATCH_MIN_ITERS if cfg.max_batch and cfg.device == "cpu" else MIN_ITERS
    reporter = _Reporter(tell, sys.stderr.isatty() and fmt in (Format.table, Format.markdown), cfg.iters,
                         cfg.min_time_s, min_iters)
    with reporter.context():
        report = Session(cfg, Hooks(note=tell, progress=reporter.progress, on_result=on_result)).run()
    emit(fmt, report, view.rows(report), view.COLUMNS, view.renderables, view.NUMERIC)
    for text in report.warnings:
        note(f"warning: {text}")
    if report.interrupted:
        tell("interrupted; printed what was measured so far")
        raise typer.Exit(130)
    if save_failed:
        raise save_failed[0]
