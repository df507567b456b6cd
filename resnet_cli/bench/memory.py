"""Memory policy: the activation estimate behind the CPU refusal, the out-of-memory retry, and the
``--max-batch`` search. The policies are pure (runners and probes are injected), so they are tested
without a GPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, TypeVar

from ..errors import RuntimeFailure, UsageError

R = TypeVar("R")

#: Tensors of the widest activation that can be alive at once in an inference forward pass: a
#: residual block's input (held for the shortcut), the conv output, the norm/activation output and
#: the sum. Nothing is kept for backward under ``inference_mode``.
LIVE_TENSORS = 4


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak memory of an inference forward pass, in bytes (an estimate, not a measurement).

    ``total = parameters + batch * (input + LIVE_TENSORS * widest activation)``, where the widest
    activation is the largest module output of one image in the meta trace.
    """

    parameters_bytes: int
    input_bytes: int
    widest_activation_bytes: int
    total_bytes: int


def estimate_memory(output_numels: Iterable[int], input_numel: int, parameters: int, batch: int,
                    element_size: int) -> MemoryEstimate:
    """The estimate for ``batch`` images from per-image element counts (module outputs and input, batch 1)
    and the parameter count, for elements of ``element_size`` bytes."""
    widest = max(output_numels, default=0) * element_size
    inp = input_numel * element_size
    params = parameters * element_size
    return MemoryEstimate(params, batch * inp, batch * widest, params + batch * (inp + LIVE_TENSORS * widest))


def human_bytes(n: Optional[float], digits: int = 1) -> str:
    """``1.5 GiB`` style (binary units, ``digits`` decimals); ``-`` for None."""
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.{digits}f} {unit}"
        n /= 1024
    return f"{n:.{digits}f} PiB"


_UNITS = {"b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024 ** 2, "mb": 1024 ** 2, "mib": 1024 ** 2,
          "g": 1024 ** 3, "gb": 1024 ** 3, "gib": 1024 ** 3, "t": 1024 ** 4, "tb": 1024 ** 4, "tib": 1024 ** 4}


def plan_error_percent(planned: Optional[int], measured: Optional[int]) -> Optional[float]:
    """The memory plan's error against a measured peak, in % of the measurement (None without both)."""
    return 100.0 * (planned - measured) / measured if planned and measured else None


def parse_memory(text: str) -> int:
    """``24GiB``, ``24 GB``, ``80G``, ``512MiB`` -> bytes; a bare number is GiB. Every unit is binary: a GPU
    sold as "24 GB" has 24 GiB (24,576 MiB in ``nvidia-smi``).

    Raises:
        UsageError: anything else, a size that is not positive, or one above ``limits.MAX_GPU_MEMORY_BYTES``.
    """
    from ..limits import MAX_GPU_MEMORY_BYTES

    match = re.fullmatch(r"\s*([-+]?)\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(3).lower() if match else None
    if not match or (unit and unit not in _UNITS):
        raise UsageError(f"--gpu-memory {text!r} is not a memory size; give e.g. 24GiB, 24GB, 16000MiB or 80 "
                         "(GiB)")
    value = float(match.group(2)) * (_UNITS[unit] if unit else 1024 ** 3)
    if match.group(1) == "-" or value < 1:
        raise UsageError(f"--gpu-memory {text!r} must be positive, e.g. 24GiB")
    if value > MAX_GPU_MEMORY_BYTES:
        raise UsageError(f"--gpu-memory {text!r} is out of range: at most {MAX_GPU_MEMORY_BYTES // 1024 ** 4} TiB "
                         "(1 PiB), e.g. 24GiB")
    return int(value)


def refuse_if_too_big(estimate: MemoryEstimate, available: Optional[int], batch: int, size: tuple[int, int]) -> None:
    """Raise when the estimate exceeds the available RAM (no check when it is unknown).

    Raises:
        RuntimeFailure: names the batch, size, estimate and RAM, and the ways out.
    """
    if available is None or estimate.total_bytes <= available:
        return
    raise RuntimeFailure(
        f"batch {batch} at {size[0]}x{size[1]} needs about {human_bytes(estimate.total_bytes)} "
        f"(estimated activations and weights), more than the {human_bytes(available)} of RAM available; "
        "use a smaller --batch or --size, or --force to try anyway")


class OomRetry:
    """Run a measurement at a batch size, halving the batch after each out-of-memory failure.

    Remembers the smallest batch that ran out of memory, so later (larger) batches of a sweep start
    below it instead of failing again.

    Args:
        is_oom: whether an exception is an out-of-memory failure (others propagate).
        free: releases memory after a failure (called after the exception is dropped).
        on_retry: ``on_retry(failed_batch, next_batch)`` to tell the user.
        retry: False fails at the first out-of-memory instead (``--no-retry``: a smaller batch measured
            in its place would read as a regression, timm #1226).
    """

    def __init__(self, is_oom: Callable[[BaseException], bool], free: Callable[[], None],
                 on_retry: Callable[[int, int], None] = lambda failed, nxt: None, retry: bool = True):
        self.is_oom, self.free, self.on_retry, self.retry = is_oom, free, on_retry, retry
        self.smallest_failed: Optional[int] = None

    def start_batch(self, batch: int) -> int:
        """``batch``, halved until it is below the smallest batch known to fail."""
        while self.smallest_failed is not None and batch >= self.smallest_failed and batch > 1:
            batch //= 2
        return batch

    def run(self, batch: int, attempt: Callable[[int], R]) -> tuple[int, R]:
        """(the batch that ran, ``attempt(batch)``'s result).

        Raises:
            RuntimeFailure: even batch 1 runs out of memory; any out-of-memory with ``retry`` False.
        """
        current = self.start_batch(batch)
        if current != batch:
            self.on_retry(batch, current)
        while True:
            failed = False
            try:
                return current, attempt(current)
            except Exception as exc:  # noqa: BLE001  (only OOM is handled; the rest re-raised)
                if not self.is_oom(exc):
                    raise
                failed = True
            if failed:  # outside the except block, so the traceback's tensors are already released
                self.free()
                self.smallest_failed = current if self.smallest_failed is None else min(self.smallest_failed,
                                                                                        current)
                if not self.retry:
                    raise RuntimeFailure(f"batch {current} ran out of device memory and --no-retry is set; "
                                         "give a smaller --batch, or drop --no-retry to halve it until it fits")
                if current == 1:
                    raise RuntimeFailure("out of device memory even at batch 1; use a smaller --size, "
                                         "--dtype bf16 or another device")
                self.on_retry(current, current // 2)
                current //= 2


def largest_fitting(fits: Callable[[int], bool], ceiling: int) -> int:
    """The largest batch in 1..``ceiling`` for which ``fits(batch)`` holds, assuming fitting is monotone:
    doubling from 1 until a failure or the ceiling, then bisection between the last fit and the first
    failure (``ceil(log2)`` extra probes at most; :func:`largest_fitting_near` from 1).

    Raises:
        RuntimeFailure: not even batch 1 fits.
    """
    best = largest_fitting_near(fits, 1, ceiling)
    if best == 0:
        raise RuntimeFailure("not even batch 1 fits in memory; use a smaller --size, --dtype bf16 or another device")
    return best


def largest_fitting_near(fits: Callable[[int], bool], guess: int, ceiling: int) -> int:
    """The largest batch in 1..``ceiling`` with ``fits(batch)`` (monotone), starting from ``guess``:
    gallop away from it (steps 1, 2, 4, ...) to a fit/no-fit bracket, then bisect; 0 when even batch 1
    does not fit."""
    if fits(guess):
        lo, hi, step = guess, None, 1
        while hi is None:
            if lo == ceiling:
                return lo
            nxt = min(lo + step, ceiling)
            if fits(nxt):
                lo, step = nxt, step * 2
            else:
                hi = nxt
    else:
        lo, hi, step = None, guess, 1
        while lo is None:
            if hi == 1:
                return 0
            nxt = max(hi - step, 1)
            if fits(nxt):
                lo = nxt
            else:
                hi, step = nxt, step * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo
