"""Latency statistics, outlier detection, warm-up stability and plain-words warnings. Pure Python.

Outliers follow hyperfine (src/outlier_detection.rs): modified Z-score ``(x - median) / MAD`` with
MAD the median absolute deviation (Iglewicz and Hoaglin 1993), and a point is an outlier when
``|z| > 1.4826 * 10``, i.e. more than ten robust standard deviations from the median.
"""

from __future__ import annotations

import math
import statistics
from typing import Optional, Sequence

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
    """Median, mean, sample std (0 for one sample), p5/p25/p75/p90/p95/p99, the interquartile range
    and min/max of latencies in ms.

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
        p25=percentile(s, 25), p75=percentile(s, 75), p90=percentile(s, 90), p99=percentile(s, 99),
        iqr=percentile(s, 75) - percentile(s, 25),
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


def utilization_warning(batch: int, utilization: Optional[float], peak_source: str) -> Optional[str]:
    """The warning for a utilisation above 100% (None at or below it), worded by where the peak came
    from: ``measured`` (the GEMM probe was slow) or ``--peak-tflops`` (the rate the user gave is below
    what the device reaches). Single runs and grid cases both call this."""
    if utilization is None or utilization <= 1.0:
        return None
    if peak_source == "measured":
        return (f"batch {batch}: the achieved rate exceeds the measured GEMM peak ({100 * utilization:.0f}%): the "
                "peak GEMM was slow (busy machine, or a size too small for this device); give the device's known "
                "rate with --peak-tflops X")
    return (f"batch {batch}: the achieved rate exceeds the peak given with --peak-tflops ({100 * utilization:.0f}%): "
            "that rate is below what this device reaches in this dtype; give its dense-matmul peak from the "
            "datasheet, or leave --peak-tflops out to measure a GEMM")


# --- Is a difference in speed more than noise? ------------------------------------------------------
#: Confidence of the relative-speed intervals; a difference is significant when the interval excludes 1
#: (Welch's t-test at alpha = 1 - CONFIDENCE). 99% rather than 95%: a grid makes many comparisons
#: against one reference, and one false "faster" per twenty identical cases would be too many.
CONFIDENCE = 0.99


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes 6.4)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def beta_inc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom (``df`` may be fractional, as
    Welch's is): ``I_{df / (df + t^2)}(df / 2, 1 / 2)``."""
    if not math.isfinite(t):
        return 0.0
    return beta_inc(df / 2.0, 0.5, df / (df + t * t))


def t_critical(confidence: float, df: float) -> float:
    """The t with ``P(|T| >= t) = 1 - confidence`` (bisection on :func:`t_two_sided_p`)."""
    alpha = 1.0 - confidence
    lo, hi = 0.0, 1.0
    while t_two_sided_p(hi, df) > alpha:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_two_sided_p(mid, df) > alpha:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def welch(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, float]:
    """(mean(x) - mean(y), its standard error, Welch-Satterthwaite degrees of freedom) for two samples
    of at least two values each (Welch 1947). The error is 0 when neither sample varies.

    Raises:
        ValueError: a sample with fewer than two values.
    """
    if len(x) < 2 or len(y) < 2:
        raise ValueError("Welch's t-test needs at least two values in each sample")
    vx, vy = statistics.variance(x) / len(x), statistics.variance(y) / len(y)
    diff = statistics.fmean(x) - statistics.fmean(y)
    se = math.sqrt(vx + vy)
    if se == 0.0:
        return diff, 0.0, float(len(x) + len(y) - 2)
    df = (vx + vy) ** 2 / (vx * vx / (len(x) - 1) + vy * vy / (len(y) - 1))
    return diff, se, df


def relative_throughput(case_ms: Sequence[float], ref_ms: Sequence[float], case_batch: int, ref_batch: int,
                        case_median_ms: float, ref_median_ms: float,
                        confidence: float = CONFIDENCE) -> tuple[float, float, float, float]:
    """How many times the reference's images/s a case reaches, with an interval and a p-value:
    (relative, low, high, p).

    ``relative = (case_batch / case_median) / (ref_batch / ref_median)``. The test is Welch's t-test on
    log latencies (``case_ms`` and ``ref_ms``: one value per round, or per iteration with one round),
    against the null hypothesis of equal throughput (latency ratio = batch ratio); the interval is
    ``relative * exp(+/- t_crit * se)`` at ``confidence``. Logs make the test about ratios, which is
    what "x times faster" means, and tame the long right tail of latencies.
    """
    relative = (case_batch / case_median_ms) / (ref_batch / ref_median_ms)
    diff, se, df = welch([math.log(v) for v in case_ms], [math.log(v) for v in ref_ms])
    shift = diff - math.log(case_batch / ref_batch)  # 0 under equal throughput
    if se == 0.0:
        return relative, relative, relative, 1.0 if shift == 0.0 else 0.0
    width = t_critical(confidence, df) * se
    return relative, relative * math.exp(-width), relative * math.exp(width), t_two_sided_p(shift / se, df)
