"""Data-parallel training benchmarks: launching ranks with torchrun's own machinery, watching them,
and turning their raw timings into records. No torch at import time.

``bench --mode train --nproc N`` builds a :class:`DdpJob` and calls :func:`launch`: torchrun's own
argument parser and ``config_from_args`` (``torch.distributed.run``) turn ``--nproc``/``--nnodes``/
``--node-rank``/``--master-addr``/``--master-port`` into a ``LaunchConfig``, and ``elastic_launch``
(``torch.distributed.launcher.api``, what torchrun itself calls) starts the ranks in this process's
agent, with :func:`ddp_rank.rank_main` as the entry point instead of a script; rank 0 returns the
gathered :class:`DdpReport`. One node and no ``--master-port``: rendezvous on 127.0.0.1, port 0 (the
OS picks a free one). Under an existing ``torchrun`` (``RANK``/``WORLD_SIZE`` set), :func:`run_here`
runs this process as its rank instead.

Each rank rewrites ``local<R>.json`` in a private directory every half second (phase, a progress
counter, its raw timings so far). The ``ddp_watch.Watchdog`` thread reads them: when no rank has
progressed for ``--timeout`` seconds it names the rank(s) furthest behind and stops the run; after
Ctrl-C the same files give what was measured.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..errors import RuntimeFailure
from .ddp_records import AllReduceStats, DdpReport, RankResult
from .ddp_watch import Watchdog, read_status
from .stats import batch_warnings, count_outliers, summarize

#: ``--timeout`` default: seconds without progress on every rank before the run is declared hung
#: (a resnet50 training step on one CPU thread takes ~10-20 s; compilation of the first step more).
DEFAULT_TIMEOUT_S = 300.0
#: torchrun's default ``--master-port``.
DEFAULT_MASTER_PORT = 29500
#: Test hooks (read by the ranks): ``"R:raise"``, ``"R:hang"`` or ``"R:kill"`` makes rank R fail, hang
#: or die of SIGKILL at its third training step; ``"1"`` in the checksum variable adds a parameter checksum to every rank's record.
FAULT_ENV = "RESNET_CLI_DDP_TEST_FAULT"
CHECKSUM_ENV = "RESNET_CLI_DDP_TEST_CHECKSUM"


@dataclass(frozen=True)
class DdpJob:
    """What every rank runs: the network and one training-step setting, already validated.

    Attributes:
        variant, spec, state_dict, strict: the network (as in ``BenchConfig``).
        device_type: ``cpu`` or ``cuda`` (a rank takes ``cuda:LOCAL_RANK``); backend: ``gloo`` or ``nccl``.
        dtype, amp, optimizer, channels_last, compile_mode: the training step (``bench.train.make_train_step``).
        batch: images per step per rank; size: (H, W).
        warmup, iters, min_time_s: the runner's settings (rank 0 decides when each phase ends).
        threads: torch threads per rank, or None for ``logical CPUs // ranks on the node`` (at least 1).
        timeout_s: seconds without progress before a hang is declared (also the process groups' timeout).
        baseline: measure the same step with one process (rank 0 alone) first.
        status_dir: where ranks write their status files (None under an external torchrun).
    """

    variant: str
    spec: Any
    state_dict: Optional[dict]
    strict: bool
    device_type: str
    backend: str
    dtype: str
    amp: Optional[str]
    optimizer: str
    channels_last: bool
    compile_mode: Optional[str]
    batch: int
    size: tuple[int, int]
    warmup: int
    iters: Optional[int]
    min_time_s: float
    threads: Optional[int]
    timeout_s: float
    baseline: bool
    status_dir: Optional[str] = None


@dataclass(frozen=True)
class Launch:
    """Where the ranks run: ``nproc`` per node, ``nnodes`` nodes, this node's rank, the rendezvous host/port
    (``master_port`` None on one node: a free port on 127.0.0.1)."""

    nproc: int
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: Optional[int] = None


def under_torchrun(environ=os.environ) -> bool:
    """Whether this process was started by torchrun (or another launcher setting ``RANK`` and ``WORLD_SIZE``)."""
    return "RANK" in environ and "WORLD_SIZE" in environ


def threads_per_rank(requested: Optional[int], local_ranks: int, cpus: Optional[int] = None) -> int:
    """``--threads`` if given, else the node's logical CPUs shared evenly by its ranks (at least 1):
    2 ranks on 2 CPUs get 1 thread each, so ranks do not fight over cores."""
    if requested is not None:
        return requested
    return max(1, (cpus or os.cpu_count() or 1) // max(1, local_ranks))


def oversubscribed(local_ranks: int, threads: int, cpus: int) -> Optional[str]:
    """The warning when this node's ranks x threads exceed its logical CPUs (None when they fit), with
    the remedy that applies: fewer ``--threads`` while a rank has more than one, else fewer ranks."""
    if threads * local_ranks <= cpus:
        return None
    fix = "use fewer --threads" if threads > 1 else f"use --nproc {cpus} or fewer (each rank has 1 thread already)"
    return f"{local_ranks} ranks x {threads} threads exceed the {cpus} logical CPUs: ranks compete for cores; {fix}"


def torchrun_args(where: Launch, log_dir: str, timeout_s: float) -> list[str]:
    """torchrun's own command-line flags for ``where`` (parsed by ``torch.distributed.run.parse_args``)."""
    args = ["--nnodes", str(where.nnodes), "--nproc-per-node", str(where.nproc), "--max-restarts", "0",
            "--monitor-interval", "0.1", "--log-dir", log_dir, "--shutdown-timeout", "5",
            "--rdzv-conf", f"timeout={int(max(60, timeout_s))}"]
    if where.nnodes == 1 and where.master_port is None:
        args += ["--rdzv-backend", "c10d", "--rdzv-endpoint", "127.0.0.1:0"]
    else:
        args += ["--rdzv-backend", "static", "--node-rank", str(where.node_rank), "--master-addr",
                 where.master_addr, "--master-port", str(where.master_port or DEFAULT_MASTER_PORT)]
    return args + ["resnet-cli"]  # torchrun's positional script; replaced by the entry point below


# --- raw timings -> records (shared by the ranks and by the Ctrl-C path) ------------------------
def make_head(job: DdpJob, world_size: int, nproc_per_node: int, nnodes: int, threads: int,
              environment=None) -> DdpReport:
    """The report's settings, before any figure."""
    c = job.spec.in_chans
    return DdpReport(
        variant=job.variant, spec=job.spec.to_string(), mode="train", backend=job.backend,
        device_type=job.device_type, world_size=world_size, nnodes=nnodes, nproc_per_node=nproc_per_node,
        dtype=job.dtype, amp=job.amp, optimizer=job.optimizer, channels_last=job.channels_last,
        compile_mode=job.compile_mode, input_size=(c, *job.size), batch_per_rank=job.batch,
        global_batch=world_size * job.batch, threads_per_rank=threads, warmup=job.warmup, iters=job.iters,
        min_time_s=None if job.iters is not None else job.min_time_s, environment=environment)


def rank_result(raw: dict, complete: bool = True) -> Optional[RankResult]:
    """The record of one rank from its raw timings (the dict a rank keeps and writes to its status
    file); None when no timed step finished."""
    times = raw.get("times_ms") or []
    if not times:
        return None
    stats = summarize(times)
    comm = raw.get("allreduce_ms") or []
    allreduce = None
    if comm:
        comm_stats = summarize(comm)
        allreduce = AllReduceStats(buckets=raw.get("buckets", 0), bytes_per_step=raw.get("bytes_per_step", 0),
                                   latency_ms=comm_stats,
                                   share=comm_stats.median / stats.median if stats.median > 0 else float("nan"))
    first = raw.get("first_call_ms")
    return RankResult(
        rank=raw["rank"], local_rank=raw["local_rank"], host=raw["host"], device=raw["device"],
        world_size=raw["world_size"], batch_size=raw["batch"], iterations=len(times),
        warmup_iterations=len(raw.get("warmup_ms") or []), warmup_stable=bool(raw.get("warmup_stable")),
        first_call_ms=first if first is not None else float("nan"), latency_ms=stats,
        images_per_sec=raw["batch"] / (stats.median / 1e3) if stats.median > 0 else float("nan"),
        outliers=count_outliers(times), allreduce=allreduce, peak_memory_bytes=raw.get("peak_memory_bytes"),
        threads=raw.get("threads", 0), complete=complete, param_checksum=raw.get("checksum"))


def assemble(head: DdpReport, ranks: list[RankResult], baseline: Optional[RankResult],
             warnings: list[str], interrupted: bool = False) -> DdpReport:
    """The finished report: ranks by rank, total images/s, scaling efficiency and warnings."""
    import dataclasses

    ranks = sorted(ranks, key=lambda r: r.rank)
    total = sum(r.images_per_sec for r in ranks) if ranks else None
    eff = None
    if baseline is not None and total is not None and baseline.images_per_sec > 0 and ranks:
        eff = total / (head.world_size * baseline.images_per_sec)
    notes = list(warnings)
    for label, r in ([("one-process baseline", baseline)] if baseline else []) + [(f"rank {r.rank}", r) for r in ranks[:1]]:
        notes += [f"{label}: {t}" for t in batch_warnings(r.batch_size, r.latency_ms, r.iterations, r.outliers,
                                                           r.warmup_stable, r.warmup_iterations)]
    if ranks and len(ranks) < head.world_size:
        notes.append(f"only {len(ranks)} of {head.world_size} ranks reported (the others ran on other nodes "
                     "or had no finished timed step); the total covers those shown")
    return dataclasses.replace(head, ranks=ranks, images_per_sec=total, baseline=baseline, scaling_efficiency=eff,
                               warnings=notes, interrupted=interrupted)


def with_flops(report: DdpReport, flops_per_step: Optional[int], convention: Optional[str]) -> DdpReport:
    """The report with each rank's achieved TFLOP/s for a counted step (``flops_per_step`` per rank)."""
    import dataclasses

    if not flops_per_step:
        return report

    def rate(r: Optional[RankResult]) -> Optional[RankResult]:
        if r is None or not r.latency_ms.median > 0:
            return r
        return dataclasses.replace(r, tflops=flops_per_step / (r.latency_ms.median / 1e3) / 1e12)

    return dataclasses.replace(report, ranks=[rate(r) for r in report.ranks], baseline=rate(report.baseline),
                               flops_per_step=flops_per_step, flops_convention=convention)


def partial_report(head: DdpReport, directory: str, local_ranks: int, warning: str) -> DdpReport:
    """What was measured before Ctrl-C, from the local ranks' status files."""
    status = read_status(directory, local_ranks)
    ranks = [r for r in (rank_result(s["raw"], complete=s.get("phase") in ("gathering", "done"))
                         for s in status.values() if s.get("raw")) if r]
    first = status.get(0, {})
    baseline = rank_result(first["baseline"], complete=bool(first.get("baseline_done"))) if first.get("baseline") else None
    if ranks and len(ranks) < head.world_size:
        if ranks:
            warning += "; not every rank had finished a timed step, so no rank's figures are shown"
        ranks = []  # a total from some of the ranks would mislead
    return assemble(head, ranks, baseline, [warning], interrupted=True)


# --- launching -------------------------------------------------------------------------------------
def first_error(status: dict[int, dict]) -> Optional[str]:
    """``rank R failed: message`` for the local rank whose status recorded an error first."""
    failed = [s for s in status.values() if s.get("error_at") is not None]
    if not failed:
        return None
    s = min(failed, key=lambda s: s["error_at"])
    return f"rank {s.get('rank')} failed: {s.get('error')}"


#: Errors a rank gets because another one died (the message then names the wrong rank).
_COLLATERAL = ("connection closed by peer", "connection reset by peer", "pair closure", "broken pipe",
               "communicator was aborted")


def root_cause(status: dict[int, dict], exc) -> str:
    """The one line for a failed run: the rank whose status recorded an error first, unless that error
    only says a peer went away and torchrun saw another rank die of a signal (a crash, the kernel's
    out-of-memory killer), which is then named; failures the status files do not show come from
    torchrun's own record."""
    line = first_error(status)
    died = sorted((r, f) for r, f in exc.failures.items() if f.exitcode < 0 and f.exitcode != -signal.SIGTERM)
    if died and (line is None or any(c in line.lower() for c in _COLLATERAL)):
        rank, failure = died[0]
        name = signal.Signals(-failure.exitcode).name
        why = " (the kernel's out-of-memory killer sends SIGKILL)" if name == "SIGKILL" else ""
        return f"rank {rank} died of {name}{why}; the other ranks lost their connection to it"
    return line or _failure_line(exc)


def _failure_line(exc) -> str:
    """One line naming the first rank that failed and its error (torchrun's root-cause rule), for
    failures the status files do not show (a crash, a rank on another node)."""
    rank, failure = exc.get_first_failure()
    message = failure.message
    if isinstance(message, dict):
        message = message.get("message", "")
    message = " ".join(str(message).split())
    for prefix in ("RuntimeFailure: ", "UsageError: "):
        message = message[len(prefix):] if message.startswith(prefix) else message
    if failure.exitcode < 0 and not message.strip():
        message = f"killed by signal {-failure.exitcode}"
    return f"rank {rank} failed: {message} (exit code {failure.exitcode})"


def launch(job: DdpJob, where: Launch, note: Callable[[str], None]) -> Optional[DdpReport]:
    """Run ``job`` on ``where.nproc`` local ranks (and ``where.nnodes`` nodes) through torchrun's
    ``elastic_launch``; returns rank 0's report (None on a node without rank 0).

    Raises:
        RuntimeFailure: a rank failed (the message names it and its error) or hung past ``job.timeout_s``.
        KeyboardInterrupt: never; Ctrl-C returns the partial report with ``interrupted`` set.
    """
    import dataclasses
    import logging
    import shutil
    import tempfile

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch
    from torch.distributed.run import config_from_args, parse_args

    from .ddp_rank import rank_main

    work = tempfile.mkdtemp(prefix="resnet-cli-ddp-")
    job = dataclasses.replace(job, status_dir=work)
    threads = threads_per_rank(job.threads, where.nproc)
    saved_env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "TORCH_CPP_LOG_LEVEL", "LOGLEVEL")}
    os.environ.update(OMP_NUM_THREADS=str(threads), TORCH_CPP_LOG_LEVEL="ERROR", LOGLEVEL="ERROR")
    quiet = [logging.getLogger(n) for n in ["torch.distributed", "torch.multiprocessing"] + [
        n for n in list(logging.root.manager.loggerDict) if n.startswith(("torch.distributed.", "torch.multiprocessing."))]]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.CRITICAL)  # the agent logs every start and failure; we print one line
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    watchdog = Watchdog(work, where.nproc, job.timeout_s, note)
    try:
        config, _, _ = config_from_args(parse_args(torchrun_args(where, os.path.join(work, "logs"), job.timeout_s)))
        watchdog.start()
        try:
            results = elastic_launch(config, rank_main)(job)
        except ChildFailedError as exc:
            if watchdog.verdict:
                raise RuntimeFailure(watchdog.verdict) from None
            raise RuntimeFailure(root_cause(read_status(work, where.nproc), exc)) from None
        except (SignalException, KeyboardInterrupt) as exc:
            if watchdog.verdict:
                raise RuntimeFailure(watchdog.verdict) from None
            name = signal.Signals(exc.sigval).name if isinstance(exc, SignalException) else "SIGINT"
            head = make_head(job, where.nproc * where.nnodes, where.nproc, where.nnodes, threads)
            return partial_report(head, work, where.nproc,
                                  f"interrupted ({name}); figures from the timed steps each rank had finished")
        return results.get(0)
    finally:
        watchdog.stop()
        for s, h in handlers.items():
            signal.signal(s, h)
        for q, level in zip(quiet, levels):
            q.setLevel(level)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(work, ignore_errors=True)


def run_here(job: DdpJob) -> Optional[DdpReport]:
    """Run this process as its rank under an existing torchrun; rank 0 returns the report, other ranks None.

    Hangs end by the process groups' timeout (``job.timeout_s``) and torchrun's own handling."""
    from .ddp_rank import run_rank

    return run_rank(job)
