"""A grid of bench cases: every variant x dtype x layout x batch, measured in alternating rounds,
pooled, and compared with a reference case. No torch here: each run goes through
:mod:`bench.worker` (the single-case runner), in a fresh interpreter or in this process.

Order of work: round 1 runs every case once (case 1, 2, ..., N), round 2 runs them again in the same
order, and so on, so a machine that drifts (thermal throttling, a neighbour's job) touches every case
alike. Within a case the rounds' timed iterations are pooled for the statistics; the significance
test compares the rounds' medians (one value per fresh process) when there are two rounds or more,
because iterations of one process share its allocator state, caches and placement and understate
the run-to-run spread.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from ..errors import ResnetCliError, UsageError
from .memory import plan_error_percent
from .records import FLOPS_CONVENTION, CaseResult, GridReport, Peak
from .stats import (CONFIDENCE, batch_warnings, count_outliers, relative_throughput, summarize,
                    utilization_warning)

SORTS = ("run", "throughput", "latency", "name")
#: The ``error`` of a case that Ctrl-C stopped before its first run started.
NOT_RUN = "interrupted before it ran"
#: The start of the ``error`` of a case that Ctrl-C stopped in the middle of a round.
CUT_SHORT = "interrupted during its round"


@dataclass(frozen=True)
class Case:
    """One cell of the grid. ``variant``: display name; ``spec``: the spec string the run resolves;
    ``size``: input (H, W); ``mode``: what one iteration times (``eval``: a forward pass; another mode,
    such as a training step, is one more dimension of the same grid); ``repeat``: 2, 3, ... for the
    second, third ... copy of the same case."""

    variant: str
    spec: str
    dtype: str
    batch: int
    channels_last: bool
    size: tuple[int, int]
    repeat: int = 1
    mode: str = "eval"
    optimizer: Optional[str] = None  # a train case's optimizer (None in eval); not part of the name
    amp: Optional[str] = None  # --amp's autocast dtype, every case alike (not part of the name)

    @property
    def name(self) -> str:
        """``VARIANT/DTYPE/bBATCH/LAYOUT``, e.g. ``resnet50/bf16/b64/nhwc`` (``--reference`` takes it), plus
        ``#2`` for a second copy of the same case (a variant given twice: an A/A test of the noise)."""
        name = f"{self.variant}/{self.dtype}/b{self.batch}/{'nhwc' if self.channels_last else 'nchw'}"
        name += "" if self.mode == "eval" else f"/{self.mode}"
        return name + (f"#{self.repeat}" if self.repeat > 1 else "")


def expand(networks: Sequence[tuple[str, str, tuple[int, int]]], dtypes: Sequence[str], layouts: Sequence[bool],
           batches: Sequence[int], modes: Sequence[str] = ("eval",), optimizer: str = "sgd",
           amp: Optional[str] = None) -> list[Case]:
    """Every combination, variants outermost, then dtypes, layouts, modes, and batches innermost.
    ``networks``: (display name, spec string, (H, W)) per variant; a variant given twice gives each of
    its cases twice. ``optimizer`` (train cases) and ``amp`` are settings of the whole grid."""
    cases: list[Case] = []
    for v, s, hw in networks:
        for d in dtypes:
            for cl in layouts:
                for m in modes:
                    for b in batches:
                        case = Case(v, s, d, b, cl, hw, mode=m, optimizer=optimizer if m == "train" else None,
                                    amp=amp)
                        cases.append(dataclasses.replace(case, repeat=1 + sum(c.name == case.name for c in cases
                                                                              if c.repeat == 1)))
    return cases


def pick_reference(cases: Sequence[Case], text: Optional[str]) -> int:
    """The index of ``--reference``: a case number (1-based) or a case name; the first case when None.

    Raises:
        UsageError: neither a number in range nor a case's name (the message lists the names).
    """
    if text is None:
        return 0
    text = text.strip()
    if text.isdigit() and 1 <= int(text) <= len(cases):
        return int(text) - 1
    for i, case in enumerate(cases):
        if case.name == text:
            return i
    shown = ", ".join(c.name for c in cases[:8]) + (", ..." if len(cases) > 8 else "")
    raise UsageError(f"--reference {text!r} is not a case of this grid; give a case number 1..{len(cases)} or "
                     f"a name: {shown}")


# --- running one case --------------------------------------------------------------------------------
def run_in_process(job: dict) -> dict:
    """The worker's answer, computed here (Ctrl-C propagates)."""
    from .worker import execute

    try:
        return {"ok": True, "run": execute(job)}
    except ResnetCliError as exc:
        return {"ok": False, "error": str(exc).replace("\n", " "), "exit_code": exc.exit_code}
    except Exception as exc:  # noqa: BLE001  (one case's bug must not lose the other rows)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return {"ok": False, "error": f"internal error: {type(exc).__name__}: {first}", "exit_code": 1}


def worker_command() -> list[str]:
    """The child's command line (a fresh interpreter running :mod:`bench.worker`)."""
    return [sys.executable, "-m", "resnet_cli.bench.worker"]


def run_in_subprocess(job: dict, command: Optional[list[str]] = None) -> dict:
    """The worker's answer from a fresh interpreter that imports this same copy of resnet_cli.

    Raises:
        KeyboardInterrupt: Ctrl-C here or in the child (the child is killed and reaped first).
    """
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""))
    done = subprocess.run(command or worker_command(), input=json.dumps(job), capture_output=True, text=True, env=env)
    if done.returncode == 130 or done.returncode == -2:
        raise KeyboardInterrupt
    lines = done.stdout.strip().splitlines()
    try:
        reply = json.loads(lines[-1])
        if isinstance(reply, dict) and "ok" in reply:
            return reply
    except (IndexError, ValueError):
        pass
    tail = done.stderr.strip().splitlines()
    why = f": {tail[-1].strip()}" if tail else ""
    return {"ok": False, "error": f"the case's process exited with status {done.returncode} without a result{why}",
            "exit_code": 1}


# --- the schedule --------------------------------------------------------------------------------------
def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


class Grid:
    """Runs ``cases`` for ``rounds`` rounds through ``run(job) -> answer`` (see :mod:`bench.worker`).

    ``job_for(case, batch, peak_tflops)`` builds a case's job; a measured peak GEMM rate is handed to
    the later runs of the same dtype instead of measuring it again. ``round_iters``: the timed
    iterations of each round (``split_over_rounds``), set in each job's ``iters``. ``progress(text)`` gets one line
    before each run (which case of how many, which round, the time left).
    """

    def __init__(self, cases: Sequence[Case], job_for: Callable[[Case, int, Optional[float]], dict],
                 run: Callable[[dict], dict], rounds: int, progress: Callable[[str], None] = lambda text: None,
                 clock: Callable[[], float] = time.monotonic, given_peak: Optional[float] = None,
                 round_iters: Optional[Sequence[int]] = None):
        self.cases, self.job_for, self.run_job, self.rounds = list(cases), job_for, run, rounds
        self.round_iters = list(round_iters) if round_iters is not None else None  # the job's iters per round
        self.progress, self.clock, self.given_peak = progress, clock, given_peak
        self.runs: list[list[dict]] = [[] for _ in self.cases]
        self.errors: list[Optional[str]] = [None] * len(self.cases)
        self.batch = [c.batch for c in self.cases]
        self.peaks: dict[str, dict] = {}  # per dtype: the best peak measured on a quiet machine
        self.busy_peaks: dict[str, dict] = {}  # per dtype: the best of those measured busy
        self.interrupted = False

    def _left(self, done: int, spent: float) -> str:
        remaining = sum(self.rounds - len(r) for r, e in zip(self.runs, self.errors) if e is None)  # this one too
        if done == 0:
            return "time left unknown until the first run ends"
        return f"about {_duration(spent / done * max(remaining, 0))} left"

    def run(self) -> None:
        """Every round of every case; stops at Ctrl-C (``interrupted``) keeping the finished runs."""
        total, done, spent, current = len(self.cases), 0, 0.0, None
        try:
            for r in range(self.rounds):
                for i, case in enumerate(self.cases):
                    if self.errors[i] is not None:
                        continue
                    current = i
                    round_text = f", round {r + 1} of {self.rounds}" if self.rounds > 1 else ""
                    self.progress(f"case {i + 1} of {total}{round_text}: {case.name}; {self._left(done, spent)}")
                    t0 = self.clock()
                    peak = self.given_peak or (self.peaks.get(case.dtype) or {}).get("tflops")
                    job = self.job_for(case, self.batch[i], peak)
                    if self.round_iters is not None:
                        job = dict(job, iters=self.round_iters[r])
                    reply = self.run_job(job)
                    spent, done = spent + self.clock() - t0, done + 1
                    if not reply.get("ok"):
                        self.errors[i] = reply.get("error") or "failed"
                        continue
                    self._keep(i, case, reply["run"])
            current = None
        except KeyboardInterrupt:
            self.interrupted = True
            self._name_interrupted(current)

    def _name_interrupted(self, current: Optional[int]) -> None:
        """After Ctrl-C, each case with rounds left (and no error of its own) says why in ``errors``:
        :data:`NOT_RUN` for one that never started, else when it was cut short."""
        for i, runs in enumerate(self.runs):
            if self.errors[i] is not None or len(runs) >= self.rounds:
                continue
            if i == current:
                self.errors[i] = f"{CUT_SHORT} {len(runs) + 1} of {self.rounds}"
            elif not runs:
                self.errors[i] = NOT_RUN
            else:
                self.errors[i] = f"interrupted after {len(runs)} of {self.rounds} rounds"

    def _keep(self, i: int, case: Case, run: dict) -> None:
        report = run["report"]
        result = report["results"][0]
        self.batch[i] = result["batch_size"]  # after an OOM retry the later rounds start at the batch that ran
        peak = report.get("peak")
        if peak and peak.get("source") == "measured":
            kept = self.busy_peaks if peak.get("busy") else self.peaks
            best = kept.get(case.dtype)
            if best is None or peak["tflops"] > best["tflops"]:
                kept[case.dtype] = peak
        self.runs[i].append(run)


# --- pooling and comparing -----------------------------------------------------------------------------
def _shape_of(text: str) -> str:
    """A warning with its figures blanked (the same warning from several runs differs only there); a
    leading case name (``resnet18/fp32/b4/nchw: ...``) is kept whole, it tells cases apart."""
    head, sep, rest = text.partition(": ")
    if sep and "/" in head and " " not in head.split("/", 1)[1]:
        return head + sep + re.sub(r"\d+(\.\d+)?", "#", rest)
    return re.sub(r"\d+(\.\d+)?", "#", text)


def add_unique(out: list[str], texts: Sequence[str]) -> list[str]:
    """``out`` plus the ``texts`` whose shape (figures blanked) it does not hold yet."""
    seen = {_shape_of(t) for t in out}
    for text in texts:
        if _shape_of(text) not in seen:
            out.append(text)
            seen.add(_shape_of(text))
    return out


def _case_warnings(case: Case, runs: list[dict], stats, utilization: Optional[float] = None,
                   peak_source: str = "measured") -> list[str]:
    """The runs' machine-wide warnings once each, and the batch warnings of the pooled iterations
    (utilisation above 100% of the peak the case divides by among them, worded as a single run's)."""
    out: list[str] = []
    for run in runs:
        add_unique(out, [t for t in run["report"]["warnings"] if not t.startswith("batch ")])
    results = [r["report"]["results"][0] for r in runs]
    times = [t for r in runs for t in r["times_ms"]]
    batch = results[-1]["batch_size"]
    texts = batch_warnings(batch, stats, len(times), count_outliers(times), all(r["warmup_stable"] for r in results),
                           min(r["warmup_iterations"] for r in results))
    over = utilization_warning(batch, utilization, peak_source)
    for text in texts + ([over] if over else []):
        out.append(f"{case.name}: {text.split(': ', 1)[1]}")
    return out


def pool(case: Case, index: int, runs: list[dict], error: Optional[str], peak: Optional[dict],
         given_peak: Optional[float]) -> CaseResult:
    """A case's record from its finished runs (figures None when no run finished)."""
    if not runs:
        none = dict.fromkeys(("latency_ms", "images_per_sec", "tflops", "utilization", "peak_tflops",
                              "peak_memory_bytes", "peak_reserved_bytes", "first_call_ms", "flops_per_image", "gmacs",
                              "param_count"))
        return CaseResult(case=case.name, index=index, variant=case.variant, spec=case.spec, dtype=case.dtype,
                          batch_size=case.batch, requested_batch_size=case.batch, channels_last=case.channels_last,
                          retried=False, rounds=0, iterations=0, round_medians_ms=[], error=error, mode=case.mode,
                          optimizer=case.optimizer, amp=case.amp, **none)
    reports = [r["report"] for r in runs]
    results = [rep["results"][0] for rep in reports]
    times = [t for r in runs for t in r["times_ms"]]
    stats = summarize(times)
    batch, flops_per_image = results[-1]["batch_size"], reports[0]["flops_per_image"]
    tflops = results[-1]["flops"] / (stats.median / 1e3) / 1e12  # a training step's FLOPs in train mode
    peaks = [rep["peak"] for rep in reports if rep.get("peak")]
    if given_peak:
        chosen = Peak(tflops=given_peak, source="--peak-tflops")
    else:
        best = peak or (max(peaks, key=lambda p: p["tflops"]) if peaks else None)
        chosen = Peak(**best) if best else None
    peak_tflops = chosen.tflops if chosen else None
    memory = [r["peak_memory_bytes"] for r in results if r["peak_memory_bytes"] is not None]
    reserved = [r["peak_reserved_bytes"] for r in results if r["peak_reserved_bytes"] is not None]
    first = [r["first_call_ms"] for r in results if r["first_call_ms"] is not None]
    steps = [r["step_peak_bytes"] for r in results if r.get("step_peak_bytes") is not None]
    plan, step = results[-1].get("plan_peak_bytes"), max(steps) if steps else None
    return CaseResult(
        case=case.name, index=index, variant=case.variant, spec=reports[0]["spec"], dtype=case.dtype,
        batch_size=batch, requested_batch_size=case.batch, channels_last=case.channels_last,
        retried=batch != case.batch, rounds=len(runs), iterations=len(times), latency_ms=stats,
        round_medians_ms=[statistics.median(r["times_ms"]) for r in runs],
        images_per_sec=batch / (stats.median / 1e3), tflops=tflops,
        utilization=tflops / peak_tflops if peak_tflops else None, peak_tflops=peak_tflops,
        peak_memory_bytes=max(memory) if memory else None, peak_reserved_bytes=max(reserved) if reserved else None,
        first_call_ms=statistics.median(first) if first else None, flops_per_image=flops_per_image,
        gmacs=flops_per_image / 2 / 1e9, param_count=reports[0].get("param_count"), error=error,
        warnings=_case_warnings(case, runs, stats, tflops / peak_tflops if peak_tflops else None,
                                "--peak-tflops" if given_peak else "measured"),
        input_size=tuple(reports[0]["input_size"]), mode=case.mode, optimizer=case.optimizer, amp=case.amp,
        phase_ms=_pooled_phases(results), peak=chosen, plan_peak_bytes=plan, step_peak_bytes=step,
        plan_error_percent=plan_error_percent(plan, step))


def _pooled_phases(results: list[dict]) -> Optional[dict[str, float]]:
    """Per phase (forward, backward, optimizer), the median of the rounds' medians; None without ``--detail``."""
    phases = [r["phase_ms"] for r in results if r.get("phase_ms")]
    if not phases:
        return None
    return {k: statistics.median(p[k] for p in phases if p.get(k) is not None)
            for k in phases[0] if any(p.get(k) is not None for p in phases)}


def compare(cases: list[CaseResult], runs: list[list[dict]], ref: int, confidence: float = CONFIDENCE) -> list[CaseResult]:
    """Each case's relative throughput against ``cases[ref]`` (see ``stats.relative_throughput``)."""
    base = cases[ref]
    if base.latency_ms is None:
        return cases
    out = []
    for i, c in enumerate(cases):
        if i == ref or c.latency_ms is None:
            out.append(dataclasses.replace(c, relative=1.0 if i == ref else None))
            continue
        by_rounds = len(runs[i]) >= 2 and len(runs[ref]) >= 2
        x = c.round_medians_ms if by_rounds else [t for r in runs[i] for t in r["times_ms"]]
        y = base.round_medians_ms if by_rounds else [t for r in runs[ref] for t in r["times_ms"]]
        if len(x) < 2 or len(y) < 2:
            out.append(dataclasses.replace(c, relative=(c.images_per_sec or 0) / base.images_per_sec))
            continue
        rel, low, high, p = relative_throughput(x, y, c.batch_size, base.batch_size, c.latency_ms.median,
                                                base.latency_ms.median, confidence)
        out.append(dataclasses.replace(c, relative=rel, relative_low=low, relative_high=high, p_value=p,
                                       significant=not (low <= 1.0 <= high),
                                       test="rounds" if by_rounds else "iterations"))
    return out


def order(cases: list[CaseResult], sort: str) -> list[CaseResult]:
    """Rows in ``sort`` order: ``run`` (as run), ``throughput`` (most images/s first), ``latency``
    (lowest median first) or ``name``; cases without figures last."""
    if sort == "throughput":
        return sorted(cases, key=lambda c: (c.images_per_sec is None, -(c.images_per_sec or 0)))
    if sort == "latency":
        return sorted(cases, key=lambda c: (c.latency_ms is None, c.latency_ms.median if c.latency_ms else 0))
    if sort == "name":
        return sorted(cases, key=lambda c: c.case)
    return list(cases)


def report(grid: Grid, ref: int, *, device: str, process: str, warmup: int, iters: Optional[int],
           min_time_s: Optional[float], threads: Optional[int], compile_mode: Optional[str], sort: str) -> GridReport:
    """The grid's record: pooled cases, relative speeds, warnings."""
    # one peak per dtype for every case (the best measured; a busy probe only reads low), so utilisations compare
    pooled = [pool(c, i + 1, grid.runs[i], grid.errors[i], grid.peaks.get(c.dtype) or grid.busy_peaks.get(c.dtype),
                   grid.given_peak)
              for i, c in enumerate(grid.cases)]
    compared = compare(pooled, grid.runs, ref)
    warnings: list[str] = []
    for c in compared:
        add_unique(warnings, c.warnings)
        if c.error:
            warnings.append(f"{c.case}: {c.error}" + (f" (its {c.rounds} finished round(s) are kept)" if c.rounds else ""))
        if c.retried:
            warnings.append(f"{c.case}: batch {c.requested_batch_size} ran out of memory; batch {c.batch_size} was "
                            "measured instead (--no-retry fails instead)")
    base = compared[ref]
    if base.latency_ms is None:
        warnings.append(f"the reference case {base.case} has no measurement, so relative speeds are left empty; "
                        "choose another with --reference")
    elif grid.rounds < 2 and len(compared) > 1:
        warnings.append("one round: the significance test sees only the iterations of one process per case, not "
                        "the run-to-run spread; use --rounds 3 for a test across fresh processes")
    env = next((runs[0]["report"]["environment"] for runs in grid.runs if runs), None)
    return GridReport(device=device, process=process, rounds=grid.rounds, warmup=warmup, iters=iters,
                      min_time_s=min_time_s, threads=threads, compile_mode=compile_mode, reference=base.case,
                      confidence=CONFIDENCE, sort=sort, flops_convention=FLOPS_CONVENTION, environment=env,
                      cases=order(compared, sort), warnings=warnings, interrupted=grid.interrupted)


def split_over_rounds(iters: Optional[int], min_time_s: float, rounds: int) -> tuple[Optional[list[int]], float, int]:
    """(timed iterations of each round, seconds of one round, rounds): ``--iters N`` and ``--min-time S``
    are a case's totals. N is split exactly: rounds get ``N // R`` or one more, the larger shares
    first (10 over 3 rounds: 4, 3, 3); with N below R the grid runs N rounds of one iteration. S is
    divided evenly (each round still times at least ``runner.MIN_ITERS`` iterations when timed by
    duration)."""
    if iters is None:
        return None, min_time_s / rounds, rounds
    used = min(rounds, iters)
    return [iters // used + (1 if r < iters % used else 0) for r in range(used)], min_time_s / used, used
