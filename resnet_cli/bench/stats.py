"""Latency statistics, outlier detection, warm-up stability and plain-words warnings. Pure Python.

Outliers follow hyperfine (src/outlier_detection.rs): modified Z-score ``(x - median) / MAD`` with
MAD the median absolute deviation (Iglewicz and Hoaglin 1993), and a point is an outlier when
``|z| > 1.4826 * 10``, i.e. more than ten robust standard deviations from the median.
"""

from __future__ import annotations

import math
import statistics
from typing import Sequence

from .records import LatencyStats

#: hyperfine's OUTLIER_THRESHOLD: 1.4826 turns the MAD into a standard-deviation estimate; 10 of them.
OUTLIER_THRESHOLD = 1.4826 * 10.0
#: Below this many timed iterations p5/p95 are (close to) the extremes and the std is rough.
FEW_SAMPLES = 10
#: Warn when the middle 90% of iterations spans more than this fraction of the median.
WIDE_SPREAD = 0.20


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between order statistics
    (numpy's default 'linear' method). ``sorted_values`` must be sorted and non-empty."""
    if not sorted_values:
        raise ValueError("percentile of an empty sequence")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(times_ms: Sequence[float]) -> LatencyStats:
    """Median, mean, sample std (0 for one sample), p5/p95, min/max of latencies in ms.

    Raises:
        ValueError: no samples.
    """
    if not times_ms:
        raise ValueError("no timed iterations to summarise")
    s = sorted(times_ms)
    return LatencyStats(
        median=statistics.median(s), mean=statistics.fmean(s),
        std=statistics.stdev(s) if len(s) > 1 else 0.0,
        p5=percentile(s, 5), p95=percentile(s, 95), min=s[0], max=s[-1],
    )


def modified_z_scores(values: Sequence[float]) -> list[float]:
    """``(x - median) / MAD`` per value (hyperfine's definition, without the 0.6745 factor).

    When the MAD is 0 (more than half the values identical) a value equal to the median scores 0
    and any other value scores +/-inf, as in hyperfine.
    """
    if not values:
        return []
    med = statistics.median(values)
    mad = statistics.median([abs(v - med) for v in values])
    if mad == 0:
        return [0.0 if v == med else math.copysign(math.inf, v - med) for v in values]
    return [(v - med) / mad for v in values]


def count_outliers(values: Sequence[float], threshold: float = OUTLIER_THRESHOLD) -> int:
    """How many values have ``|modified Z-score| > threshold``."""
    return sum(1 for z in modified_z_scores(values) if abs(z) > threshold)


def is_stable(times: Sequence[float], window: int = 3, tolerance: float = 0.05) -> bool:
    """Whether warm-up has settled: the median of the last ``window`` iterations differs from the
    median of the ``window`` before them by at most ``tolerance`` (relative). Needs ``2 * window``
    iterations; fewer are never stable."""
    if len(times) < 2 * window:
        return False
    last = statistics.median(times[-window:])
    before = statistics.median(times[-2 * window:-window])
    return abs(last - before) <= tolerance * max(before, 1e-12)


def batch_warnings(batch: int, stats: LatencyStats, iterations: int, outliers: int,
                   warmup_stable: bool, warmup_iterations: int) -> list[str]:
    """Plain-words warnings for one measured batch, each saying what to try (as hyperfine does)."""
    out = []
    where = f"batch {batch}"
    if outliers:
        out.append(f"{where}: {outliers} of {iterations} timed iterations were statistical outliers (more than "
                   "10 robust standard deviations from the median). Other programs, CPU frequency scaling or "
                   "thermal throttling may be interfering: rerun on a quiet machine, fix the thread count "
                   "with --threads, or time longer with --min-time.")
    if iterations >= 2 and stats.median > 0 and (stats.p95 - stats.p5) / stats.median > WIDE_SPREAD:
        spread = 100 * (stats.p95 - stats.p5) / stats.median
        out.append(f"{where}: latency varies widely (p5 {stats.p5:.3g} ms to p95 {stats.p95:.3g} ms, "
                   f"{spread:.0f}% of the median). The median is the figure to quote; to narrow the spread "
                   "close other programs, use fewer --threads than cores, or raise --min-time.")
    if iterations < FEW_SAMPLES:
        out.append(f"{where}: only {iterations} timed iteration{'s' if iterations != 1 else ''}: p5/p95 "
                   f"are close to the extremes and the std is rough; use --iters {FEW_SAMPLES * 3} or "
                   "--min-time for a distribution.")
    if not warmup_stable:
        out.append(f"{where}: latency had not settled after {warmup_iterations} warm-up iterations (the "
                   "last few still differed by more than 5%), so early iterations may be slow ones: raise "
                   "--warmup.")
    return out
