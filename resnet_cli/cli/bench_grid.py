"""``resnet-cli bench`` over a grid of cases: wiring only (``bench.grid`` runs, ``render.grid`` shows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import typer

from ..errors import RuntimeFailure
from .common import Format, emit


@dataclass(frozen=True)
class GridOptions:
    """The checked options of a grid run (see ``bench_cmd.bench``)."""

    networks: list  # (display name, spec, (H, W)) per variant
    weights: Optional[str]
    strict: bool
    device: str
    dtypes: tuple
    layouts: tuple
    batches: tuple
    compile_mode: Optional[str]
    warmup: int
    iters: Optional[int]
    min_time_s: float
    threads: Optional[int]
    peak_tflops: Optional[float]
    force: bool
    retry: bool
    rounds: int
    reference: Optional[str]
    sort: str
    same_process: bool
    modes: tuple = ("eval",)  # eval (forward passes) and/or train (training steps): one more dimension
    optimizer: str = "sgd"
    amp: Optional[str] = None
    detail: bool = False


def run_grid(opts: GridOptions, fmt: Format, save: Optional[str]) -> None:
    """Run, print and save the grid; exit 130 after Ctrl-C, 1 when a case failed (the rows are printed first)."""
    from datetime import datetime, timezone

    from ..bench import grid as g
    from ..bench.save import append_line
    from ..render import grid as view
    from ..render.console import note

    cases = g.expand([(n, s.to_string(), hw) for n, s, hw in opts.networks], opts.dtypes, opts.layouts, opts.batches,
                     opts.modes, optimizer=opts.optimizer, amp=opts.amp)
    ref = g.pick_reference(cases, opts.reference)
    round_iters, min_time_s, rounds = g.split_over_rounds(opts.iters, opts.min_time_s, opts.rounds)

    def job_for(case: g.Case, batch: int, peak: Optional[float]) -> dict:
        return {"variant": case.variant, "spec": case.spec, "weights": opts.weights, "strict": opts.strict,
                "device": opts.device, "dtype": case.dtype, "channels_last": case.channels_last,
                "compile_mode": opts.compile_mode, "batch": batch, "size": list(case.size), "warmup": opts.warmup,
                "iters": None, "min_time_s": min_time_s, "threads": opts.threads, "peak_tflops": peak,
                "force": opts.force, "retry": opts.retry, "mode": case.mode,
                "optimizer": opts.optimizer, "amp": opts.amp, "detail": opts.detail}

    def tell(text: str) -> None:
        note(f"resnet-cli bench: {text}")

    if opts.same_process:
        from .common import import_torch

        import_torch()
    run = g.run_in_process if opts.same_process else g.run_in_subprocess
    if rounds < opts.rounds:
        tell(f"--iters {opts.iters} is fewer than --rounds {opts.rounds}: {rounds} rounds of 1 timed iteration each")
    tell(f"{len(cases)} cases x {rounds} round(s), each in "
         + ("this process" if opts.same_process else "a fresh process") + "; relative speeds against "
         + cases[ref].name)
    grid = g.Grid(cases, job_for, run, rounds, progress=tell, given_peak=opts.peak_tflops, round_iters=round_iters)
    grid.run()
    result = g.report(grid, ref, device=opts.device, process="same-process" if opts.same_process else "subprocess",
                      warmup=opts.warmup, iters=opts.iters, min_time_s=None if opts.iters is not None else min_time_s,
                      threads=opts.threads, compile_mode=opts.compile_mode, sort=opts.sort)
    save_failed = None
    if save is not None:
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        try:
            for case in result.cases:
                if case.rounds:
                    append_line(save, view.save_line(result, case, stamp))
        except RuntimeFailure as exc:  # print every result anyway; exit 1 at the end
            save_failed = exc
            tell(f"{exc}; the results are printed but not saved")
    emit(fmt, result, view.rows(result), view.COLUMNS, view.renderables, view.NUMERIC)
    for text in result.warnings:
        note(f"warning: {text}")
    if result.interrupted:
        tell("interrupted; printed the cases measured so far")
        raise typer.Exit(130)
    if save_failed is not None:
        raise save_failed
    if any(c.error for c in result.cases):
        raise typer.Exit(1)
