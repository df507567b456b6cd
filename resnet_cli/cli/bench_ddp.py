"""``bench --mode train --nproc N``: data-parallel training steps under torchrun's machinery
(``resnet_cli.bench.distributed``); also the path taken when bench itself runs under ``torchrun``.
The options are checked here before torch is imported."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from typing import Optional

import typer

from ..errors import RuntimeFailure, UsageError
from .common import Format, emit, import_torch


class Backend(str, enum.Enum):
    nccl = "nccl"
    gloo = "gloo"


@dataclass(frozen=True)
class DdpOptions:
    """The command line's data-parallel options, as given (None: not given)."""

    nproc: Optional[int] = None
    nnodes: Optional[int] = None
    node_rank: Optional[int] = None
    master_addr: Optional[str] = None
    master_port: Optional[int] = None
    backend: Optional[str] = None
    timeout_s: Optional[float] = None
    no_baseline: bool = False

    def any_given(self) -> bool:
        return bool(self.given())

    def given(self) -> list[str]:
        """The data-parallel options given, by their flags (``--nproc`` first)."""
        flags = (("--nproc", self.nproc), ("--nnodes", self.nnodes), ("--node-rank", self.node_rank),
                 ("--master-addr", self.master_addr), ("--master-port", self.master_port),
                 ("--backend", self.backend), ("--timeout", self.timeout_s))
        return [flag for flag, value in flags if value is not None] + (["--no-baseline"] if self.no_baseline else [])


def wanted(opts: DdpOptions, mode: Optional[str]) -> bool:
    """Whether bench runs data-parallel: ``--nproc`` (or another DDP option) given, or ``--mode train``
    under torchrun (``RANK``/``WORLD_SIZE`` set; some clusters set them everywhere, so a forward-pass
    bench there stays a plain one)."""
    from ..bench.distributed import under_torchrun

    return opts.any_given() or (mode == "train" and under_torchrun())


def check(opts: DdpOptions, mode: Optional[str], device: str, batches: tuple[int, ...], max_batch: bool,
          detail: bool = False) -> tuple:
    """(device type, backend, Launch or None under torchrun) for valid options.

    Raises:
        UsageError: any option outside what a data-parallel run accepts (see the messages).
    """
    from ..bench.distributed import Launch, under_torchrun

    external = under_torchrun()
    if mode != "train":
        what = "--nproc" if opts.nproc is not None else ("/".join(opts.given()) if opts.given()
                                                         else "torchrun (RANK is set)")
        raise UsageError(f"{what} times data-parallel training steps: give --mode train"
                         + (f" (not {mode})" if mode not in (None, "eval") else ""))
    if detail:
        raise UsageError("--detail (forward/backward/optimizer split) is not measured under --nproc; drop it")
    if external and opts.nproc is not None:
        raise UsageError(f"--nproc {opts.nproc} given under torchrun (RANK={os.environ.get('RANK')}): torchrun started "
                         "the ranks already; drop --nproc (and --nnodes/--node-rank/--master-*)")
    if not external and opts.nproc is None:
        raise UsageError("data-parallel options need --nproc N (processes on this node), e.g. --nproc 2")
    if device not in ("cpu", "cuda"):
        raise UsageError(f"--device {device} with --nproc: give cpu or cuda (each rank takes cuda:LOCAL_RANK)")
    backend = opts.backend or ("nccl" if device == "cuda" else "gloo")
    if backend == "nccl" and device == "cpu":
        raise UsageError("--backend nccl needs --device cuda; on the CPU use --backend gloo")
    if len(batches) != 1 or max_batch:
        raise UsageError("--nproc measures one batch per rank: give one --batch N (no list, no --max-batch)")
    if opts.timeout_s is not None and not opts.timeout_s > 0:
        raise UsageError(f"--timeout {opts.timeout_s!r} must be a positive number of seconds")
    if external:
        return device, backend, None
    nnodes = opts.nnodes or 1
    node_rank = opts.node_rank or 0
    if node_rank >= nnodes:
        raise UsageError(f"--node-rank {node_rank} must be below --nnodes {nnodes} (nodes count from 0)")
    if nnodes > 1 and opts.master_addr is None:
        raise UsageError(f"--nnodes {nnodes} needs --master-addr HOST (the node-rank-0 host every node can reach)")
    return device, backend, Launch(nproc=opts.nproc, nnodes=nnodes, node_rank=node_rank,
                                   master_addr=opts.master_addr or "127.0.0.1", master_port=opts.master_port)


def run(opts: DdpOptions, *, mode: Optional[str], variant: str, spec, state_dict, strict: bool, device: str,
        dtype: str, amp: Optional[str], optimizer: str, channels_last: bool, compile_mode: Optional[str],
        batches: tuple[int, ...], max_batch: bool, size: tuple[int, int], warmup: int, iters: Optional[int],
        min_time_s: float, threads: Optional[int], fmt: Format, save: Optional[str], detail: bool = False) -> None:
    """Check, launch (or join torchrun), print rank 0's table or JSON, append ``--save`` lines.

    Raises:
        UsageError: see :func:`check`, or an input size the network cannot take.
        RuntimeFailure: too few GPUs, a rank that failed or hung.
        typer.Exit(130): after Ctrl-C, once what was measured is printed.
    """
    from datetime import datetime, timezone

    device_type, backend, where = check(opts, mode, device, batches, max_batch, detail)
    import_torch()
    import torch

    from ..bench.distributed import DEFAULT_TIMEOUT_S, DdpJob, launch, run_here, threads_per_rank
    from ..render import ddp as view
    from ..render.console import note

    if not torch.distributed.is_available():
        raise RuntimeFailure(f"this torch build ({torch.__version__}) has no torch.distributed, which --nproc needs")
    _check_input(spec, size)
    if device_type == "cuda" and where is not None and torch.cuda.device_count() < where.nproc:
        raise RuntimeFailure(f"--nproc {where.nproc} needs {where.nproc} GPUs on this node (one per rank); "
                             f"{torch.cuda.device_count()} visible")

    def tell(text: str) -> None:
        note(f"resnet-cli bench: {text}")

    job = DdpJob(variant=variant, spec=spec, state_dict=state_dict, strict=strict, device_type=device_type,
                 backend=backend, dtype=dtype, amp=amp, optimizer=optimizer, channels_last=channels_last,
                 compile_mode=compile_mode, batch=batches[0], size=size, warmup=warmup, iters=iters,
                 min_time_s=min_time_s, threads=threads,
                 timeout_s=opts.timeout_s if opts.timeout_s is not None else DEFAULT_TIMEOUT_S,
                 baseline=not opts.no_baseline)
    if where is None:
        report = run_here(job)
    else:
        per_rank = threads_per_rank(threads, where.nproc)
        if threads is None:
            tell(f"{where.nproc} ranks on {os.cpu_count()} logical CPUs: {per_rank} torch thread"
                 f"{'s' if per_rank != 1 else ''} per rank (--threads N to change)")
        report = launch(job, where, tell)
    if report is None:  # not rank 0: rank 0 prints
        if where is not None:
            tell("this node's ranks finished; the node running rank 0 prints the report")
        return
    emit(fmt, report, view.rows(report), view.COLUMNS, view.renderables, view.NUMERIC)
    if save is not None and not report.interrupted:
        from ..bench.save import append_line

        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for line in view.save_lines(report, stamp):
            append_line(save, line)
    for text in report.warnings:
        note(f"warning: {text}")
    if report.interrupted:
        tell("interrupted; printed what was measured so far")
        raise typer.Exit(130)


def _check_input(spec, size: tuple[int, int]) -> None:
    """A too-small input is a usage error here, before any rank starts (an empty-batch trace)."""
    import torch

    from ..analysis.trace import trace
    from ..models import build_model

    with torch.device("meta"):
        meta = build_model(spec)
    trace(meta, (1, spec.in_chans, *size))
