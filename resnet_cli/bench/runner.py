"""The timed loop: first call, warm-up until stable, timed iterations.

Each iteration is timed on its own so the distribution (median, p5/p95, outliers) is real:
- CPU: ``time.perf_counter`` around the call (the call returns when the work is done);
- CUDA: a pair of CUDA events recorded on the current stream around the call, then
  ``end.synchronize()``, so the figure is the device-side time from the first kernel's queueing to
  the last kernel's end (launch gaps included, host-side synchronisation excluded);
- MPS: ``torch.mps.synchronize()`` before and after a ``perf_counter`` pair.

The first call (which includes ``torch.compile`` code generation, cuDNN autotuning with
``cudnn.benchmark`` and allocator growth) is timed and kept apart. Warm-up iterations follow: at
least ``warmup`` of them, then on until the median of the last 3 stays within 5% of the median of
the 3 before (``stats.is_stable``), or until warm-up has run ``WARMUP_CAP_S`` seconds or
``warmup + WARMUP_CAP_ITERS`` iterations (then ``warmup_stable`` is False).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .stats import is_stable

WARMUP_CAP_S = 10.0
WARMUP_CAP_ITERS = 50
#: Timed iterations at least, when timing for ``--min-time`` (hyperfine's minimum number of runs).
MIN_ITERS = 10

Step = Callable[[], Any]
#: ``progress(phase, done, total, elapsed_s)``: phase ``"warm-up"`` or ``"timed"``; total is the number
#: of iterations (``--iters``) or None when timing for a duration.
Progress = Callable[[str, int, Optional[int], float], None]


class CpuTimer:
    """Milliseconds of one call by ``time.perf_counter``."""

    def __call__(self, step: Step) -> float:
        t0 = time.perf_counter()
        step()
        return (time.perf_counter() - t0) * 1e3


class SyncTimer:
    """Milliseconds of one call by ``time.perf_counter`` between two device synchronisations (MPS)."""

    def __init__(self, sync: Callable[[], None]):
        self.sync = sync

    def __call__(self, step: Step) -> float:
        self.sync()
        t0 = time.perf_counter()
        step()
        self.sync()
        return (time.perf_counter() - t0) * 1e3


class CudaEventTimer:
    """Milliseconds of one call between two CUDA events on the current stream (synchronised)."""

    def __init__(self):
        import torch

        self.torch = torch

    def __call__(self, step: Step) -> float:
        start = self.torch.cuda.Event(enable_timing=True)
        end = self.torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)


def make_timer(device) -> Callable[[Step], float]:
    """The right per-iteration timer for a ``torch.device``."""
    if device.type == "cuda":
        return CudaEventTimer()
    if device.type == "mps":
        import torch

        return SyncTimer(torch.mps.synchronize)
    return CpuTimer()


@dataclass
class Measurement:
    """Raw times of one batch, in ms (filled as the run goes, so an interrupt keeps what finished)."""

    first_call_ms: Optional[float] = None
    warmup_ms: list[float] = field(default_factory=list)
    warmup_stable: bool = False
    times_ms: list[float] = field(default_factory=list)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`measure`; ``measurement`` holds the iterations that finished."""

    def __init__(self, measurement: Measurement):
        super().__init__()
        self.measurement = measurement


def _no_progress(phase: str, done: int, total: Optional[int], elapsed_s: float) -> None:
    return None


def measure(step: Step, timer: Callable[[Step], float], *, warmup: int = 5, iters: Optional[int] = None,
            min_time_s: float = 2.0, before_timed: Callable[[], None] = lambda: None,
            progress: Progress = _no_progress, clock: Callable[[], float] = time.perf_counter,
            min_iters: int = MIN_ITERS, warmup_cap_s: float = WARMUP_CAP_S,
            decide: Callable[[bool], bool] = bool) -> Measurement:
    """Time ``step``: one first call, warm-up until stable, then ``iters`` iterations or, without
    ``iters``, at least ``min_iters`` (:data:`MIN_ITERS`) iterations and ``min_time_s`` seconds.
    Warm-up stops after ``warmup_cap_s`` seconds (:data:`WARMUP_CAP_S`) at the latest.

    ``timer(step)`` returns the milliseconds of one call; ``before_timed`` runs between warm-up and
    the timed loop (memory probes start there); ``clock`` gives wall seconds for the caps.
    ``decide(stop)`` turns this process's wish to end warm-up or the timed loop into the decision
    taken (default: as wished); data-parallel ranks pass one that broadcasts rank 0's, so every
    rank runs the same number of steps (DDP pairs each step's all-reduce across ranks).

    Raises:
        Interrupted: on Ctrl-C, carrying the partial :class:`Measurement`.
    """
    m = Measurement()
    try:
        m.first_call_ms = timer(step)
        t0 = clock()
        while True:
            m.warmup_ms.append(timer(step))
            n = len(m.warmup_ms)
            progress("warm-up", n, None, clock() - t0)
            if n < warmup:
                continue
            stable = is_stable(m.warmup_ms)
            if decide(stable or n >= warmup + WARMUP_CAP_ITERS or clock() - t0 >= warmup_cap_s):
                m.warmup_stable = stable
                break
        before_timed()
        t0 = clock()
        while True:
            m.times_ms.append(timer(step))
            n = len(m.times_ms)
            elapsed = clock() - t0
            progress("timed", n, iters, elapsed)
            if decide(n >= iters if iters is not None else (n >= min_iters and elapsed >= min_time_s)):
                break
    except KeyboardInterrupt as exc:
        if isinstance(exc, Interrupted):
            raise
        raise Interrupted(m) from None
    return m
