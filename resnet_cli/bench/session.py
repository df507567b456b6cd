"""One ``resnet-cli bench`` run: the model, the peak, every batch size, and the report.

A batch is measured in each mode of ``--mode`` (one case = one callable handed to the runner): ``eval``
times ``model(x)`` under ``torch.inference_mode()``; ``train`` times a whole training step
(:func:`.train.make_train_step`), with the memory plan's peak beside the measured one.

Order of work: check the device; trace the network on meta (FLOPs, activation estimate; no memory);
refuse an impossible CPU run; build the model on the device in the dtype and memory format; one
untimed forward at batch 1 (library start-up); measure the peak GEMM; then per batch: input, optional ``torch.compile``, :func:`runner.measure` under
``torch.inference_mode()``, memory probe, record. Ctrl-C returns what finished (``interrupted``).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from ..errors import ReadsValues, RuntimeFailure
from .config import MAX_BATCH_CEILING, BenchConfig
from .device import TORCH_DTYPES, MemoryProbe, available_ram_bytes, check_device, cpu_dtype_warning, environment, \
    free_memory, is_oom, load_average, measure_peak, synchronize
from .memory import OomRetry, estimate_memory, human_bytes, largest_fitting, largest_fitting_near, \
    plan_error_percent, refuse_if_too_big
from .records import FLOPS_CONVENTION, TRAIN_FLOPS_CONVENTION, BenchReport, BenchResult, Peak
from .runner import Interrupted, Measurement, make_timer, measure
from .stats import batch_warnings, count_outliers, summarize, utilization_warning


def _nothing(*args) -> None:
    return None


#: ``--max-batch`` on the CPU sizes the batch to at most this share of the available RAM.
CPU_MAX_BATCH_RAM_FRACTION = 0.5
#: ``--max-batch`` on the CPU: the found batch is timed for at least this many iterations (not
#: runner.MIN_ITERS: one forward pass of a batch that fills the RAM takes seconds), and warm-up stops
#: at ``--min-time``, so the whole measurement stays near the announced estimate.
CPU_MAX_BATCH_MIN_ITERS = 3


@dataclass
class Hooks:
    """How a run talks to its caller (the CLI): all optional.

    note(text): a line for stderr. progress(batch, phase, done, total, elapsed_s): see ``runner.Progress``.
    on_result(report, result): after each complete batch (``--save`` appends there).
    on_measurement(result, measurement): the raw times behind each complete batch (the grid pools them).
    """

    note: Callable[[str], None] = _nothing
    progress: Callable[[int, str, int, Optional[int], float], None] = _nothing
    on_result: Callable[[BenchReport, BenchResult], None] = _nothing
    on_measurement: Callable[[BenchResult, Measurement], None] = _nothing


def make_result(requested: int, batch: int, m: Measurement, memory: tuple[Optional[int], Optional[int]],
                flops_per_image, peak: Optional[Peak], compiled: bool, complete: bool = True) -> BenchResult:
    """The record of one batch from its raw times (``m.times_ms`` must not be empty). ``flops_per_image``:
    FLOPs of one image, or a callable ``batch -> FLOPs of the whole batch`` (a training step)."""
    stats = summarize(m.times_ms)
    median_s = stats.median / 1e3
    flops = flops_per_image(batch) if callable(flops_per_image) else flops_per_image * batch
    tflops = flops / median_s / 1e12 if median_s > 0 and flops is not None else math.nan
    return BenchResult(
        batch_size=batch, requested_batch_size=requested, iterations=len(m.times_ms),
        warmup_iterations=len(m.warmup_ms), warmup_stable=m.warmup_stable,
        first_call_ms=m.first_call_ms if m.first_call_ms is not None else math.nan,
        compile_ms=m.first_call_ms if compiled else None, latency_ms=stats,
        images_per_sec=batch / median_s if median_s > 0 else math.nan, flops=flops, tflops=tflops,
        utilization=tflops / peak.tflops if peak is not None and peak.tflops > 0 and flops is not None else None,
        peak_memory_bytes=memory[0], peak_reserved_bytes=memory[1], outliers=count_outliers(m.times_ms),
        complete=complete,
    )


class _Partial(BaseException):
    """Carries an interrupted batch's raw data out of :class:`OomRetry` (a BaseException, as
    KeyboardInterrupt is, so no ``except Exception`` swallows it)."""

    def __init__(self, batch: int, measurement: Measurement, memory):
        super().__init__()
        self.batch, self.measurement, self.memory = batch, measurement, memory


class Session:
    """Runs a :class:`BenchConfig` (see the module docstring)."""

    def __init__(self, cfg: BenchConfig, hooks: Optional[Hooks] = None):
        self.cfg = cfg
        self.hooks = hooks or Hooks()
        self.warnings: list[str] = []
        self._no_plan: Optional[str] = None  # why the memory plan cannot replay the training step

    def _warn(self, text: str) -> None:
        self.warnings.append(text)

    # --- before any real memory is used -------------------------------------------------------
    def _plan(self, device: torch.device):
        from ..analysis.flops import conv_linear_macs
        from ..analysis.trace import trace
        from ..models import build_model

        cfg, (h, w) = self.cfg, self.cfg.size
        shape = (1, cfg.spec.in_chans, h, w)
        if cfg.model is not None:
            meta = cfg.model  # the user's module: traced and counted on empty-batch copies, never changed
        else:
            with torch.device("meta"):
                meta = build_model(cfg.spec)
        traced = trace(meta, shape)  # UsageError for a too-small input, before anything is allocated
        self.flops_per_image = 2 * conv_linear_macs(meta, shape)
        numels = [math.prod(t.output_shape) for t in traced.values()]
        self.param_count = sum(t.numel() for t in meta.parameters())
        count = self.param_count + sum(t.numel() for t in meta.buffers())
        size = TORCH_DTYPES[cfg.dtype].itemsize
        self.estimate = lambda b: estimate_memory(numels, math.prod(shape), count, b, size)
        self._meta, self._plans, self._train_flops = meta, {}, {}
        self._device_type = device.type

    def _train_plan(self, batch: int, needed: bool = False):
        """The memory plan of one training step at ``batch`` (fake tensors; cached). None for a step that
        reads a tensor's value, which fake tensors cannot replay: the step is then measured without a
        plan (a warning says so); ``needed`` (the --max-batch search) raises instead.

        Raises:
            RuntimeFailure: the step fails; ``needed`` and a step the plan cannot replay.
        """
        if self._no_plan is not None:
            if needed:
                raise RuntimeFailure(f"--max-batch --mode train searches with the memory plan, which cannot "
                                     f"replay this step ({self._no_plan}); give --batch N to measure it")
            return None
        if batch not in self._plans:
            from ..analysis.memory_plan import plan_memory
            from ..models import build_model

            cfg = self.cfg
            build = (lambda: build_model(cfg.spec)) if cfg.model is None or cfg.spec.kind != "object" else \
                (lambda: copy.deepcopy(cfg.model))  # the user's factory runs again; a module object is copied
            try:
                self._plans[batch] = plan_memory(build, (batch, cfg.spec.in_chans, *cfg.size),
                                                 optimizer=cfg.optimizer, dtype=cfg.dtype, amp=cfg.amp,
                                                 channels_last=cfg.channels_last, device_type=self._device_type)
            except ReadsValues:
                self._no_plan = "it reads a tensor's value, which the plan's fake tensors do not have"
                self._warn(f"the memory plan cannot replay this training step: {self._no_plan}; the step is "
                           "measured without it (no plan peak or plan error; the RAM check uses the forward "
                           "pass's estimate)")
                return self._train_plan(batch, needed)
        return self._plans[batch]

    def _step_flops(self, batch: int) -> int:
        """FLOPs of one training step at ``batch`` (2 x the counted training MACs; cached)."""
        if batch not in self._train_flops:
            from ..analysis.training import count_train_macs

            shape = (batch, self.cfg.spec.in_chans, *self.cfg.size)
            try:
                self._train_flops[batch] = 2 * count_train_macs(self._meta, shape, self.cfg.optimizer).total_macs
            except ReadsValues:  # counted on meta tensors: a step that reads a value has no count
                if not self._train_flops:
                    self._warn("the training FLOPs are counted on meta tensors, which this step's reading of a "
                               "tensor's value defeats: its FLOPs, TFLOP/s and utilisation are left empty")
                self._train_flops[batch] = None
        return self._train_flops[batch]

    def _need(self, batch: int) -> int:
        """Bytes a batch needs on the CPU: the inference estimate, or the training plan's peak."""
        need = self.estimate(batch).total_bytes if "eval" in self.cfg.modes else 0
        if "train" not in self.cfg.modes:
            return need
        plan = self._train_plan(batch)
        return max(need, plan.peak_bytes if plan is not None else self.estimate(batch).total_bytes)

    def _cpu_batches(self) -> tuple[int, ...]:
        cfg, room = self.cfg, available_ram_bytes()
        if cfg.max_batch and "train" in cfg.modes and room is not None:
            from ..analysis.memory_plan import with_budget  # the plan's own search (a step may not run at batch 1)

            share = int(room * CPU_MAX_BATCH_RAM_FRACTION)  # the same headroom as for inference below
            best = with_budget(self._train_plan(8, needed=True), share, self._train_plan, MAX_BATCH_CEILING).max_batch
            if not best:
                raise RuntimeFailure("not even batch 1 of a training step fits in the RAM available; use a smaller "
                                     "--size or another device")
            self.hooks.note(f"--max-batch on the CPU: sized to {CPU_MAX_BATCH_RAM_FRACTION:.0%} of the "
                            f"{human_bytes(room)} of RAM available (headroom for other programs and the plan's "
                            f"error): a training step of batch {best} needs about "
                            f"{human_bytes(self._train_plan(best).peak_bytes)} (the memory plan's peak)")
            return (best,)
        if cfg.max_batch:
            # Headroom: the batch's estimate must fit in CPU_MAX_BATCH_RAM_FRACTION of the available RAM,
            # leaving the rest to other programs, the allocator and the estimate's own error.
            share = None if room is None else int(room * CPU_MAX_BATCH_RAM_FRACTION)
            fits = (lambda b: share is None or self.estimate(b).total_bytes <= share)
            batch = largest_fitting(fits, MAX_BATCH_CEILING)
            if share is not None:
                self.hooks.note(f"--max-batch on the CPU: sized to {CPU_MAX_BATCH_RAM_FRACTION:.0%} of the "
                                f"{human_bytes(room)} of RAM available (headroom for other programs and the "
                                f"estimate's error): batch {batch} needs about "
                                f"{human_bytes(self.estimate(batch).total_bytes)}")
            return (batch,)
        for b in cfg.batches:
            if cfg.force:
                if room is not None and self._need(b) > room:
                    self._warn(f"batch {b}: estimated memory {human_bytes(self._need(b))} exceeds "
                               f"the {human_bytes(room)} of RAM available; running anyway (--force)")
            else:
                refuse_if_too_big(dataclasses.replace(self.estimate(b), total_bytes=self._need(b)), room, b, cfg.size)
        return cfg.batches

    # --- on the device --------------------------------------------------------------------------
    def _build(self, device: torch.device) -> torch.nn.Module:
        from ..models import build_model

        cfg = self.cfg
        model = build_model(cfg.spec) if cfg.model is None else copy.deepcopy(cfg.model)
        if cfg.state_dict is not None:
            model.load_state_dict(cfg.state_dict, strict=cfg.strict)
        model = model.to(device=device, dtype=TORCH_DTYPES[cfg.dtype])
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model.eval()

    def _input(self, batch: int, device: torch.device) -> torch.Tensor:
        h, w = self.cfg.size
        x = torch.randn(batch, self.cfg.spec.in_chans, h, w, device=device, dtype=TORCH_DTYPES[self.cfg.dtype])
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x

    def _fits(self, model, device) -> Callable[[int], bool]:
        def fits(batch: int) -> bool:
            ok = True
            try:
                if "train" in self.cfg.modes:
                    self._train_step(model, device, batch)()
                    model.zero_grad(set_to_none=True)
                else:
                    with torch.inference_mode():
                        model(self._input(batch, device))
                synchronize(device)
            except Exception as exc:  # noqa: BLE001
                if not is_oom(exc):
                    raise
                ok = False
            free_memory(device)
            return ok
        return fits

    def _device_max_batch(self, model, device: torch.device, free_bytes: Optional[int] = None) -> int:
        """``--max-batch`` on a GPU: the largest batch whose forward pass (eval) or training step runs,
        found by running it. Training starts the search at the memory plan's answer for ``free_bytes``
        (default: the device's free memory after emptying the cache, plus what this process's tensors,
        the weights, hold, as the plan counts those; at most ``set_per_process_memory_fraction``'s cap),
        so a few steps near the answer run instead of doubling from batch 1, where BatchNorm refuses a
        1x1 map in training.

        Raises:
            RuntimeFailure: not even batch 1 fits.
        """
        fits = self._fits(model, device)
        if "train" not in self.cfg.modes or (free_bytes is None and device.type != "cuda"):
            return largest_fitting(fits, MAX_BATCH_CEILING)
        from ..analysis.memory_plan import with_budget

        if free_bytes is None:
            free_memory(device)
            free, total = torch.cuda.mem_get_info(device)
            cap = getattr(torch.cuda, "get_per_process_memory_fraction", lambda d: 1.0)(device) * total
            free_bytes = int(min(free + torch.cuda.memory_allocated(device), cap))
        guess = with_budget(self._train_plan(8, needed=True), free_bytes, self._train_plan, MAX_BATCH_CEILING).max_batch
        best = largest_fitting_near(fits, max(1, guess), MAX_BATCH_CEILING)
        if not best:
            raise RuntimeFailure("not even batch 1 of a training step fits in device memory; use a smaller --size, "
                                 "--amp bf16 or another device")
        return best

    def _limits(self, device) -> dict:
        """The runner's warm-up settings: bounded on the CPU with --max-batch (a large batch's pass is slow)."""
        cfg = self.cfg
        if cfg.max_batch and device.type == "cpu":
            return dict(min_iters=CPU_MAX_BATCH_MIN_ITERS, warmup_cap_s=cfg.min_time_s, warmup=min(cfg.warmup, 1))
        return dict(warmup=cfg.warmup)

    def _train_step(self, model, device, batch: int, compile_mode: Optional[str] = None):
        from .train import make_train_step

        cfg = self.cfg
        return make_train_step(model, cfg.optimizer, (batch, cfg.spec.in_chans, *cfg.size), dtype=cfg.dtype,
                               amp=cfg.amp, channels_last=cfg.channels_last, compile_mode=compile_mode, device=device)

    def _measure_train(self, model, device, batch: int):
        """One batch in train mode: (measurement, memory, {phase_ms, plan_peak_bytes, step_peak_bytes})."""
        from .train import SplitTimer, cpu_step_peak, phase_medians

        cfg = self.cfg
        plan = self._train_plan(batch)
        if cfg.compile_mode is not None:
            torch._dynamo.reset()
            self.hooks.note(f"batch {batch}: compiling the training step with torch.compile (mode {cfg.compile_mode});"
                            " the first call includes it; the memory plan is the eager step's")
        step = self._train_step(model, device, batch, cfg.compile_mode)
        timer = SplitTimer(device) if cfg.detail else make_timer(device)
        probe = MemoryProbe(device)
        probe.begin()

        def progress(phase, done, total, elapsed):
            self.hooks.progress(batch, phase, done, total, elapsed)

        try:
            m = measure(step, timer, iters=cfg.iters, min_time_s=cfg.min_time_s, before_timed=probe.start_timed,
                        progress=progress, **self._limits(device))
        except Interrupted as stop:
            raise _Partial(batch, stop.measurement, probe.stop() if stop.measurement.times_ms else (None, None)) from None
        memory = probe.stop()
        measured = memory[0] if device.type == "cuda" else (cpu_step_peak(step) if device.type == "cpu" else None)
        planned = plan.peak_bytes if plan is not None else None
        extra = {"phase_ms": phase_medians(timer.splits[-len(m.times_ms):]) if cfg.detail else None,
                 "plan_peak_bytes": planned, "step_peak_bytes": measured,
                 "plan_error_percent": plan_error_percent(planned, measured)}
        model.zero_grad(set_to_none=True)
        model.eval()
        return m, memory, extra

    def _measure_batch(self, model, device, batch: int, mode: str = "eval"):
        cfg = self.cfg
        if mode == "train":
            return self._measure_train(model, device, batch)
        x = self._input(batch, device)
        fn = model
        if cfg.compile_mode is not None:
            torch._dynamo.reset()  # a fresh compilation per batch: its cost lands in this batch's first call
            fn = torch.compile(model, mode=None if cfg.compile_mode == "default" else cfg.compile_mode,
                               dynamic=False)
            self.hooks.note(f"batch {batch}: compiling with torch.compile (mode {cfg.compile_mode}); "
                            "the first call includes it")
        probe = MemoryProbe(device)
        probe.begin()

        def progress(phase, done, total, elapsed):
            self.hooks.progress(batch, phase, done, total, elapsed)

        limits = self._limits(device)
        autocast = (torch.autocast(device.type, dtype=TORCH_DTYPES[cfg.amp]) if cfg.amp is not None
                    else contextlib.nullcontext())
        try:
            with torch.inference_mode(), autocast:
                m = measure(lambda: fn(x), make_timer(device), iters=cfg.iters,
                            min_time_s=cfg.min_time_s, before_timed=probe.start_timed, progress=progress, **limits)
        except Interrupted as stop:
            raise _Partial(batch, stop.measurement, probe.stop() if stop.measurement.times_ms else (None, None)) from None
        return m, probe.stop(), {}

    def run(self) -> BenchReport:
        """Measure every batch; returns the report (``interrupted`` set after Ctrl-C).

        Raises:
            RuntimeFailure: device not available, CPU memory estimate too large (without --force),
                out of memory at batch 1.
            UsageError: the input size does not fit the network.
        """
        cfg = self.cfg
        device = check_device(cfg.device)
        self.load = load_average()
        self._check_load(device, cfg.threads or torch.get_num_threads())
        if device.type == "cpu":
            for option, value in (("--dtype", cfg.dtype), ("--amp", cfg.amp)):
                slow = cpu_dtype_warning(value, option=option) if value else None
                if slow:
                    self._warn(slow)
        self._plan(device)
        batches = self._cpu_batches() if device.type == "cpu" else cfg.batches
        threads_were, benchmark_was = torch.get_num_threads(), torch.backends.cudnn.benchmark
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        if device.type == "cuda":
            torch.cuda.set_device(device)
            torch.backends.cudnn.benchmark = True  # autotuning happens in the (excluded) first call
        try:
            return self._run_on(device, batches)
        finally:  # leave the process as it was (the CLI exits anyway; library callers do not)
            torch.set_num_threads(threads_were)
            torch.backends.cudnn.benchmark = benchmark_was

    def _prime(self, model, device: torch.device) -> None:
        """One untimed forward at batch 1: device libraries (CUDA context, cuBLAS/cuDNN handles, oneDNN
        and thread pools) start here, so no batch's first call or memory figure carries that one-time cost."""
        failed = False
        try:
            with torch.inference_mode():
                model(self._input(1, device))
            synchronize(device)
        except Exception as exc:  # noqa: BLE001
            if not is_oom(exc):
                raise
            failed = True
        if failed:
            free_memory(device)
            raise RuntimeFailure("out of device memory at batch 1; use a smaller --size, --dtype bf16 or "
                                 "another device")

    def _run_on(self, device: torch.device, batches) -> BenchReport:
        cfg = self.cfg
        model = self._build(device)
        self._prime(model, device)
        if cfg.max_batch and device.type != "cpu":
            batches = (self._device_max_batch(model, device),)
        if cfg.max_batch:
            bound = " (the search's bound)" if batches[0] >= MAX_BATCH_CEILING else ""
            self.hooks.note(f"--max-batch: the largest batch that fits is {batches[0]}{bound}")
            if device.type == "cpu":
                self._announce(model, device, batches[0])
        peak = Peak(cfg.peak_tflops, "--peak-tflops") if cfg.peak_tflops else self._peak(device)
        report = BenchReport(
            variant=cfg.variant, spec=cfg.spec.to_string(), device=str(device), dtype=cfg.dtype,
            channels_last=cfg.channels_last, compile_mode=cfg.compile_mode,
            input_size=(cfg.spec.in_chans, *cfg.size), threads=torch.get_num_threads(), warmup=cfg.warmup,
            iters=cfg.iters, min_time_s=None if cfg.iters is not None else cfg.min_time_s,
            flops_convention=FLOPS_CONVENTION, flops_per_image=self.flops_per_image, peak=peak,
            environment=environment(device, cfg.dtype, cfg.channels_last, self.load), mode=cfg.mode,
            optimizer=cfg.optimizer if "train" in cfg.modes else None, amp=cfg.amp,
            param_count=self.param_count,
            train_flops_convention=TRAIN_FLOPS_CONVENTION if "train" in cfg.modes else None)
        results: list[BenchResult] = []
        retry = OomRetry(is_oom, lambda: free_memory(device), self._oom_note, retry=cfg.retry)
        interrupted, current = False, cfg.modes[0]
        try:
            for requested, mode in ((b, mode) for b in batches for mode in cfg.modes):
                current = mode
                batch, (m, mem, extra) = retry.run(requested, lambda b: self._measure_batch(model, device, b, mode))
                result = make_result(requested, batch, m, mem, self._flops_of(mode), peak, cfg.compile_mode is not None)
                result = dataclasses.replace(result, mode=mode, **extra)
                if batch != requested:
                    self._warn(f"batch {requested} ran out of {device.type.upper()} memory; measured batch {batch} "
                               "instead")
                self._check(result, peak)
                results.append(result)
                self.hooks.on_measurement(result, m)
                self.hooks.on_result(report, result)
        except _Partial as part:
            interrupted = True
            if part.measurement.times_ms:
                part_result = make_result(part.batch, part.batch, part.measurement, part.memory,
                                          self._flops_of(current), peak, cfg.compile_mode is not None, complete=False)
                results.append(dataclasses.replace(part_result, mode=current))
            self._warn(f"interrupted during batch {part.batch}: "
                       + (f"its figures come from the {len(part.measurement.times_ms)} iterations that finished"
                          if part.measurement.times_ms else "it has no finished timed iteration"))
        except KeyboardInterrupt:
            interrupted = True
            self._warn("interrupted while preparing a batch; the batches above are complete")
        return dataclasses.replace(report, results=results, warnings=list(self.warnings), interrupted=interrupted)

    def _flops_of(self, mode: str):
        """FLOPs per image for :func:`make_result`: the forward pass (eval), or a per-batch callable
        for a training step, whose optimizer FLOPs do not scale with the batch."""
        return self.flops_per_image if mode == "eval" else self._step_flops

    def _announce(self, model, device: torch.device, batch: int) -> None:
        """Say how long measuring ``batch`` will take: a forward pass at an eighth of it (8 at least), scaled by the
        batch (CPU time grows about linearly with it), times the passes the bounded loop makes."""
        import time

        probe = min(batch, max(8, batch // 8))  # large enough to see the batch's memory traffic, 1/8 of its cost
        x = self._input(probe, device)
        times = []
        with torch.inference_mode():
            for _ in range(2):  # the faster of two: the first may still pay for library start-up
                t0 = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - t0)
        cfg = self.cfg
        # a training step: forward + backward, the backward about twice the forward's MACs (the training MACs rule)
        train = "train" in cfg.modes
        one = min(times) * batch / probe * (3 if train else 1)
        if cfg.iters is not None:
            timed, what = cfg.iters * one, f"{cfg.iters} timed iterations"
        else:
            timed = max(cfg.min_time_s, CPU_MAX_BATCH_MIN_ITERS * one)
            what = f"at least {CPU_MAX_BATCH_MIN_ITERS} timed iterations and {cfg.min_time_s:g} s (--min-time)"
        warm = min(cfg.warmup, 1) * one
        total = one + max(warm, 0) + timed
        what_one = ("one training step" if train else "one forward pass") + f" of batch {batch}"
        scaled = f"3 forward passes, scaled from one at batch {probe}" if train else f"scaled from batch {probe}"
        self.hooks.note(f"--max-batch: {what_one} takes about {one:.1f} s ({scaled}); measuring it takes about "
                        f"{total:.0f} s: first call, warm-up up to "
                        f"{cfg.min_time_s:g} s, {what}")

    def _check_load(self, device: torch.device, threads: int) -> None:
        """Warn when other processes compete for the cores (read before any work of ours)."""
        cpus = os.cpu_count() or 1
        if self.load is None:
            return
        if self.load > cpus:
            self._warn(f"the machine was busy when the run started (1-minute load average {self.load:.1f} on "
                       f"{cpus} logical CPUs): other processes compete for the cores, which makes the figures "
                       "slow and noisy, most of all with several --threads; rerun on a quiet machine or with "
                       "--threads 1")
        elif device.type == "cpu" and threads >= cpus and self.load >= 1.0:
            self._warn(f"torch uses all {cpus} logical CPUs ({threads} threads) while other processes kept about "
                       f"{self.load:.1f} of them busy (1-minute load average): threads then wait for each other "
                       f"and latency can grow many times over; try --threads {max(1, cpus - math.ceil(self.load))}")

    def _peak(self, device: torch.device) -> Optional[Peak]:
        try:
            peak = measure_peak(device, self.cfg.dtype)
        except RuntimeError as exc:  # e.g. a dtype without a matmul kernel on this device
            self._warn(f"could not measure the peak GEMM rate ({str(exc).splitlines()[0]}); utilisation is "
                       "left empty: give --peak-tflops X")
            return None
        if peak.busy:
            self._warn(f"the machine was too busy to measure the peak GEMM rate: other processes held the cores "
                       f"during the {peak.gemm_size}x{peak.gemm_size} probe, which reached only "
                       f"{peak.tflops:.3g} TFLOP/s, so the utilisation figures are overstated: rerun on a quiet "
                       "machine or give the device's rate with --peak-tflops X")
        return peak

    def _oom_note(self, failed: int, nxt: int) -> None:
        self.hooks.note(f"batch {failed} does not fit in device memory; retrying with batch {nxt}")

    def _check(self, r: BenchResult, peak: Optional[Peak] = None) -> None:
        for text in batch_warnings(r.batch_size, r.latency_ms, r.iterations, r.outliers, r.warmup_stable,
                                   r.warmup_iterations):
            self._warn(text)
        over = utilization_warning(r.batch_size, r.utilization, peak.source if peak else "measured")
        if over:
            self._warn(over)
