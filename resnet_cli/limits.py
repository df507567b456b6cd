"""The ranges resnet-cli accepts for numbers, and the checks that name the value and the range.

A number outside these ranges is a usage error (exit 2) before anything is built: a non-finite
float (``nan``, ``inf``) would make a loop never end or a JSON field ``Infinity``; an integer too
large for the machine would overflow torch's 64-bit sizes ("Overflow when unpacking long long")
deep inside a trace. No torch here.
"""

from __future__ import annotations

import math

from .errors import UsageError

#: Largest batch N (summaries are shape arithmetic, so any N up to this answers; 2**31 - 1 keeps
#: N x C x H x W within torch's int64 sizes for every input this tool accepts).
MAX_BATCH = 2 ** 31 - 1
#: Largest input side H or W in pixels.
MAX_SIDE = 65536
#: Largest classifier width (num_classes): 2**31 - 1, torch's int32 index range for class labels.
MAX_CLASSES = 2 ** 31 - 1
#: --min-time: at most an hour of timing per batch.
MAX_MIN_TIME_S = 3600.0
#: --iters and --warmup: at most a million iterations.
MAX_ITERS = 1_000_000
#: --peak-tflops: from 1 GFLOP/s to 1 EFLOP/s (a smaller figure is a typo for another unit, and a
#: subnormal one such as 1e-320 would make the utilisation overflow to infinity).
PEAK_TFLOPS_RANGE = (1e-3, 1e6)
#: --gpu-memory: at most 1 PiB (1024 TiB), thousands of times any one GPU's memory; a larger figure is a
#: typo, and the plan's batch search would only report its own bound.
MAX_GPU_MEMORY_BYTES = 2 ** 50


def check_float(option: str, value: float | None, low: float, high: float, unit: str = "",
                low_open: bool = False) -> float | None:
    """``value`` if it is a finite number in [low, high] (``(low, high]`` with ``low_open``); None passes.

    Raises:
        UsageError: names the option, the value (repr: ``nan``, ``inf``) and the accepted range.
    """
    if value is None:
        return None
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
          and (low < value if low_open else low <= value) and value <= high)
    if not ok:
        left = "(" if low_open else "["
        raise UsageError(f"{option} {value!r} is out of range: give a finite number in {left}{_num(low)}, {_num(high)}]"
                         f"{' ' + unit if unit else ''}")
    return float(value)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else repr(x)


def check_int(what: str, value: int, low: int, high: int) -> int:
    """``value`` if it is an integer in [low, high].

    Raises:
        UsageError: names the value and the accepted range.
    """
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise UsageError(f"{what} {value!r} is out of range: give an integer from {low} to {high}")
    return value
