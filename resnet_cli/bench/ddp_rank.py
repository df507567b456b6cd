"""Inside one rank of ``bench --mode train --nproc N``: process groups, the DDP-wrapped model, the
timed training steps (``runner.measure`` over ``train.make_train_step``), the all-reduce timing and
the gather at rank 0.

Order of work in every rank: pick the device (``cuda:LOCAL_RANK`` or the CPU), set the threads,
``init_process_group`` (NCCL binds its device eagerly), a gloo group for control messages (the
runner's decisions, the barrier, the gather); with the baseline, rank 0 first times the same step
alone under DDP over a one-rank group while the others wait at the barrier; then every rank builds
the model with the same seed, wraps it in ``DistributedDataParallel``, registers the timing
all-reduce hook, makes its own random input (seeded by rank, so gradients differ and only the
all-reduce keeps the weights equal) and runs the runner with rank 0 deciding when warm-up and the
timed loop end; finally ``gather_object`` brings every rank's raw timings to rank 0.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import threading
import time
from datetime import timedelta
from typing import Optional

import torch
import torch.distributed as dist
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.distributed.elastic.multiprocessing.errors import record
from torch.nn.parallel import DistributedDataParallel

from ..analysis.training import parameters_without_gradient
from ..models import build_model
from .ddp_records import DdpReport
from .ddp_watch import STATUS_INTERVAL_S
from .device import TORCH_DTYPES, MemoryProbe, environment, free_memory, load_average
from .distributed import CHECKSUM_ENV, FAULT_ENV, DdpJob, assemble, make_head, oversubscribed, rank_result, \
    threads_per_rank, with_flops
from .records import TRAIN_FLOPS_CONVENTION
from .runner import make_timer, measure
from .train import make_train_step

#: The control group waits while rank 0 runs the baseline alone; hangs are the watchdog's business.
_CONTROL_TIMEOUT = timedelta(hours=24)


class Status:
    """This rank's progress for the launcher's watchdog: ``local<R>.json`` in ``directory``, rewritten
    atomically every :data:`STATUS_INTERVAL_S` by a daemon thread and at each phase change. ``beats``
    counts the same events on every rank (step starts and ends, all-reduce hook calls)."""

    def __init__(self, directory: Optional[str], local_rank: int, rank: int):
        self.path = os.path.join(directory, f"local{local_rank}.json") if directory else None
        self.data = {"rank": rank, "pid": os.getpid(), "phase": "starting", "waiting": False, "beats": 0,
                     "progress_at": time.time(), "raw": None, "baseline": None}
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the thread and phase changes both write
        self._count = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="resnet-cli-status")

    def start(self) -> None:
        if self.path:
            self.write()
            self._thread.start()

    def beat(self) -> None:
        with self._count:  # the hook may beat from autograd's device thread
            self.data["beats"] += 1
            self.data["progress_at"] = time.time()

    def phase(self, name: str, waiting: bool = False) -> None:
        self.data.update(phase=name, waiting=waiting)
        self.beat()
        self.write()

    def write(self) -> None:
        if not self.path:
            return
        try:
            text = json.dumps(self.data)
        except (RuntimeError, ValueError):  # a list grew under us: the next tick writes it
            return
        tmp = f"{self.path}.tmp"
        with self._lock:
            try:
                with open(tmp, "w", encoding="utf-8") as fh:
                    fh.write(text)
                os.replace(tmp, self.path)
            except OSError:  # the launcher removed the directory (run over): nothing to report to
                pass

    def _loop(self) -> None:
        while not self._stop.wait(STATUS_INTERVAL_S):
            self.write()

    def stop(self) -> None:
        self._stop.set()


class AllReduceTimer:
    """State of the timing communication hook: when each bucket's all-reduce was launched (hook call)
    and completed (its future's callback). CPU: ``perf_counter``; CUDA: events on the current stream
    (in the callback the stream waits for the collective, so the event marks its end on the device)."""

    def __init__(self, group, device: torch.device, status: Status):
        self.group, self.cuda, self.status = group, device.type == "cuda", status
        self.lock = threading.Lock()
        self.done: list[tuple] = []

    def stamp(self):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def flush(self) -> Optional[tuple[float, int, int]]:
        """(ms during which at least one all-reduce was in flight, buckets, bytes) since the last flush."""
        with self.lock:
            done, self.done = self.done, []
        if not done:
            return None
        if self.cuda:
            ref = done[0][0]
            for _, end, _ in done:
                end.synchronize()
            spans = sorted((ref.elapsed_time(s) if s is not ref else 0.0, ref.elapsed_time(e)) for s, e, _ in done)
        else:
            spans = sorted((s * 1e3, e * 1e3) for s, e, _ in done)
        total, (lo, hi) = 0.0, spans[0]
        for s, e in spans[1:]:
            if s > hi:
                total, lo, hi = total + hi - lo, s, e
            else:
                hi = max(hi, e)
        return total + hi - lo, len(done), sum(n for _, _, n in done)


def timed_allreduce(state: AllReduceTimer, bucket):  # DDP checks the annotations: none given
    """DDP's default all-reduce hook (``default_hooks.allreduce_hook``: divide by the group size, sum),
    with a time stamp at launch and at completion."""
    start = state.stamp()
    state.status.beat()
    buffer = bucket.buffer()
    nbytes = buffer.numel() * buffer.element_size()
    fut = default_hooks.allreduce_hook(state.group, bucket)

    def finished(f):
        end = state.stamp()
        with state.lock:
            state.done.append((start, end, nbytes))
        return f.value()

    return fut.then(finished)


def _build(job: DdpJob, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)  # the same initial weights everywhere (DDP also broadcasts rank 0's)
    model = build_model(job.spec)
    if job.state_dict is not None:
        model.load_state_dict(job.state_dict, strict=job.strict)
    storage = "fp32" if job.amp else job.dtype
    model = model.to(device=device, dtype=TORCH_DTYPES.get(storage, torch.float32))
    if job.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _fault(rank: int):
    """The test hook: the fault's kind when ``RESNET_CLI_DDP_TEST_FAULT=R:raise|hang|kill`` names this rank."""
    text = os.environ.get(FAULT_ENV, "")
    target, _, kind = text.partition(":")
    return kind if target.strip() == str(rank) and kind in ("raise", "hang", "kill") else None


def checksum(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter's bytes, in ``named_parameters`` order."""
    digest = hashlib.sha256()
    for _, p in model.named_parameters():
        digest.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _broadcaster(group):
    def decide(stop: bool) -> bool:
        flag = torch.tensor([1 if stop else 0], dtype=torch.int32)
        dist.broadcast(flag, src=0, group=group)
        return bool(flag.item())
    return decide


def _measure(job: DdpJob, device: torch.device, group, world: int, rank: int, local: int, status: Status,
             decide, fault: Optional[str]) -> dict:
    """Time the training step under DDP over ``group`` (None: every rank); returns the raw timings
    (also kept in ``status.data`` as they come: under ``baseline`` for a one-rank group, else ``raw``)."""
    h, w = job.size
    with torch.device("meta"):
        unused = parameters_without_gradient(build_model(job.spec), (job.batch, job.spec.in_chans, h, w))
    model = _build(job, device)
    status.beat()
    # DDP refuses a parameter that gets no gradient unless told to look for them (a walk of the autograd
    # graph every step, which a user's DDP of this network pays too)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                  process_group=group, find_unused_parameters=bool(unused))
    status.beat()
    comm = AllReduceTimer(group, device, status)
    ddp.register_comm_hook(comm, timed_allreduce)
    torch.manual_seed(1000 + rank)  # each rank its own batch
    # in a list that is emptied at the end, which frees the step (the timed closure below holds the list)
    steps = [make_train_step(ddp, job.optimizer, (job.batch, job.spec.in_chans, h, w), dtype=job.dtype, amp=job.amp,
                             channels_last=job.channels_last, compile_mode=job.compile_mode, device=device)]
    status.beat()
    raw = {"rank": rank, "local_rank": local, "host": socket.gethostname(), "device": str(device),
           "world_size": world, "batch": job.batch, "first_call_ms": None, "warmup_ms": [], "warmup_stable": False,
           "times_ms": [], "allreduce_ms": [], "buckets": 0, "bytes_per_step": 0, "peak_memory_bytes": None,
           "threads": torch.get_num_threads(), "checksum": None, "unused_parameters": len(unused)}
    status.data["baseline" if world == 1 and group is not None else "raw"] = raw
    timer, calls, last = make_timer(device), [0], [0.0]

    def one_step() -> None:
        calls[0] += 1
        if fault and calls[0] == 3:
            if fault == "raise":
                raise RuntimeError(f"injected test failure in rank {rank} ({FAULT_ENV})")
            if fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            while True:
                time.sleep(1.0)
        status.beat()
        steps[0]()

    def timed(fn) -> float:
        last[0] = timer(fn)
        if raw["first_call_ms"] is None:
            raw["first_call_ms"] = last[0]
        return last[0]

    def progress(phase: str, done: int, total, elapsed_s: float) -> None:
        spent = comm.flush()
        if phase == "timed":
            raw["times_ms"].append(last[0])
            if spent is not None:
                raw["allreduce_ms"].append(spent[0])
                raw["buckets"], raw["bytes_per_step"] = spent[1], spent[2]
        else:
            raw["warmup_ms"].append(last[0])
        status.beat()

    probe = MemoryProbe(device)
    probe.begin()
    m = measure(one_step, timed, warmup=job.warmup, iters=job.iters, min_time_s=job.min_time_s,
                before_timed=probe.start_timed, progress=progress, decide=decide)
    raw["warmup_stable"] = m.warmup_stable
    raw["peak_memory_bytes"] = probe.stop()[0]
    if os.environ.get(CHECKSUM_ENV) == "1":
        raw["checksum"] = checksum(model)
    steps.clear()
    del ddp, model
    free_memory(device)
    return raw


@record
def rank_main(job: DdpJob) -> Optional[DdpReport]:
    """The entry point torchrun's agent starts in every rank (``@record``: an exception reaches the
    launcher as this rank's error message)."""
    return run_rank(job)


def run_rank(job: DdpJob) -> Optional[DdpReport]:
    """Run this process as its rank (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``,
    ``MASTER_ADDR``/``MASTER_PORT`` from the launcher). Rank 0 returns the report, the others None.

    Raises:
        RuntimeFailure: no GPU for this rank's LOCAL_RANK.
        KeyboardInterrupt: Ctrl-C (launched ranks exit at once; the launcher reads their status).
    """
    import torch._dynamo  # noqa: F401  (DDP's constructor imports it: seconds, paid before the status file starts)

    env = os.environ
    rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
    local, local_world = int(env.get("LOCAL_RANK", 0)), int(env.get("LOCAL_WORLD_SIZE", 1))
    status = Status(job.status_dir, local, rank)
    status.start()
    threads_were = torch.get_num_threads()
    try:
        return _run(job, rank, world, local, local_world, status)
    except KeyboardInterrupt:
        status.phase("interrupted")
        if job.status_dir:
            os._exit(130)  # the launcher reports from the status files; collectives may be half done
        if rank != 0:
            raise
        return _own_partial(job, world, local_world, status)  # under torchrun: rank 0 shows its own steps
    except Exception as exc:
        # First thing: the time and message, so the launcher names the rank that failed first (the
        # others fail after it, on closed connections, and their error files carry whole seconds).
        status.data.update(error=error_line(exc), error_at=time.time())
        status.phase("failed")
        raise
    finally:
        status.stop()
        torch.set_num_threads(threads_were)  # under an external torchrun this is the caller's process


def step_flops(job: DdpJob) -> int:
    """FLOPs of one rank's training step: 2 x ``count_train_macs`` on a meta copy, the count
    ``bench --mode train`` uses (counted in rank 0 after the run, which has paid for its imports)."""
    from ..analysis.training import count_train_macs

    with torch.device("meta"):
        meta = build_model(job.spec)
    h, w = job.size
    return 2 * count_train_macs(meta, (job.batch, job.spec.in_chans, h, w), job.optimizer).total_macs


def _own_partial(job: DdpJob, world: int, local_world: int, status: Status) -> DdpReport:
    """Rank 0's figures after Ctrl-C under an external torchrun (the other ranks cannot be gathered)."""
    threads = torch.get_num_threads()
    head = make_head(job, world, local_world, max(1, world // local_world), threads)
    mine = rank_result(status.data["raw"], complete=False) if status.data.get("raw") else None
    base = status.data.get("baseline")
    warning = ("interrupted (SIGINT); under torchrun the other ranks' figures cannot be gathered after Ctrl-C, so "
               "only rank 0's finished steps are shown")
    report = assemble(head, [mine] if mine else [], rank_result(base, complete=bool(status.data.get("baseline_done")))
                      if base else None, [warning], interrupted=True)
    return report


def error_line(exc: BaseException) -> str:
    """One line for an exception: our errors' own message, others' type and first line."""
    from ..errors import ResnetCliError

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, ResnetCliError) else f"{type(exc).__name__}: {text}"


def _device(job: DdpJob, local: int) -> torch.device:
    from ..errors import RuntimeFailure

    if job.device_type != "cuda":
        return torch.device("cpu")
    if not torch.cuda.is_available() or local >= torch.cuda.device_count():
        raise RuntimeFailure(f"local rank {local} needs cuda:{local}, but {torch.cuda.device_count()} GPU(s) "
                             "are visible; use --nproc at most the GPUs per node")
    device = torch.device("cuda", local)
    torch.cuda.set_device(device)
    torch.backends.cudnn.benchmark = True  # autotuning happens in the (excluded) first call
    return device


def _run(job: DdpJob, rank: int, world: int, local: int, local_world: int, status: Status) -> Optional[DdpReport]:
    load = load_average()
    device = _device(job, local)
    threads = threads_per_rank(job.threads, local_world)
    torch.set_num_threads(threads)
    kwargs = {"device_id": device} if job.backend == "nccl" else {}
    # Launched by us, the watchdog names a hung rank after timeout_s; the collectives' own timeout
    # comes later, so that it does not fire first in a rank that only waits.
    timeout = job.timeout_s + (max(10.0, job.timeout_s) if job.status_dir else 0.0)
    dist.init_process_group(backend=job.backend, timeout=timedelta(seconds=timeout), **kwargs)
    ok = False
    try:
        control = dist.new_group(backend="gloo", timeout=_CONTROL_TIMEOUT)
        with_baseline = job.baseline and world > 1
        alone = dist.new_group([0], backend=job.backend) if with_baseline else None
        baseline = None
        if with_baseline:
            if rank == 0:
                status.phase("one-process baseline")
                baseline = _measure(job, device, alone, 1, rank, local, status, bool, None)
                status.data["baseline_done"] = True
            else:
                status.phase("waiting for rank 0's one-process baseline", waiting=True)
            dist.barrier(group=control)
        status.phase(f"{world} ranks: training steps")
        raw = _measure(job, device, None, world, rank, local, status, _broadcaster(control), _fault(rank))
        status.phase("gathering", waiting=True)
        gathered = [None] * world if rank == 0 else None
        dist.gather_object(raw, gathered, dst=0, group=control)
        status.phase("done")
        if rank != 0:
            return None
        head = make_head(job, world, local_world, max(1, world // local_world), threads,
                         environment(device, "fp32" if job.amp else job.dtype, job.channels_last, load))
        ranks = [r for r in (rank_result(g) for g in gathered) if r is not None]
        warnings, cpus = [], os.cpu_count() or 1
        if load is not None and load > cpus:
            warnings.append(f"the machine was busy when the run started (1-minute load average {load:.1f} on {cpus} "
                            "logical CPUs): other processes compete with the ranks for the cores, so the figures are "
                            "slow and noisy and the scaling efficiency unreliable; rerun on a quiet machine")
        crowded = oversubscribed(local_world, threads, cpus) if device.type == "cpu" else None
        if crowded:
            warnings.append(crowded)
        if raw["unused_parameters"]:
            warnings.append(f"{raw['unused_parameters']} parameter tensors get no gradient (modules the forward "
                            "pass never runs): DDP runs with find_unused_parameters=True, which walks the autograd "
                            "graph every step, as any DDP training of this network must")
        ok = True
        report = assemble(head, ranks, rank_result(baseline) if baseline else None, warnings)
        return with_flops(report, step_flops(job), TRAIN_FLOPS_CONVENTION)
    finally:
        if ok or rank != 0 and status.data["phase"] == "done":
            dist.destroy_process_group()  # after a failure the process ends anyway: tearing down could block
