"""What a benchmark produces, as plain frozen records (units in the field names). No torch here.

JSON output is ``dataclasses.asdict`` of :class:`BenchReport` plus ``schema_version``; the README's
bench section documents every key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

FLOPS_CONVENTION = "conv+linear FLOPs (2 per MAC; biases, norms, activations, pooling and adds count 0)"
TRAIN_FLOPS_CONVENTION = ("training step FLOPs (2 per MAC): conv+linear forward, backward w.r.t. input and "
                          "w.r.t. weights, counted over a real backward; optimizer elementwise ops 1 MAC each")


@dataclass(frozen=True)
class LatencyStats:
    """Distribution of per-iteration forward latencies of one batch, in milliseconds.

    ``std`` is the sample standard deviation (n - 1; 0 for one sample); the percentiles ``p5`` ..
    ``p99`` are linear interpolations between order statistics (numpy's default 'linear' method);
    ``iqr`` is the interquartile range ``p75 - p25``.
    """

    median: float
    mean: float
    std: float
    p5: float
    p95: float
    min: float
    max: float
    p25: float = float("nan")
    p75: float = float("nan")
    p90: float = float("nan")
    p99: float = float("nan")
    iqr: float = float("nan")


@dataclass(frozen=True)
class BenchResult:
    """One batch size, measured.

    Attributes:
        batch_size: the batch actually measured (smaller than ``requested_batch_size`` after an
            out-of-memory retry).
        requested_batch_size: the batch asked for (or found by ``--max-batch``).
        iterations: timed iterations (warm-up and the first call excluded).
        warmup_iterations: warm-up iterations run after the first call.
        warmup_stable: whether warm-up ended because latency settled (False: it hit its cap).
        first_call_ms: the first forward call (includes compilation, cuDNN autotuning, allocator warm-up).
        compile_ms: with ``--compile``, the time of that first call (graph capture + code generation +
            first run); None without ``--compile``.
        latency_ms: per-iteration latency statistics.
        images_per_sec: ``batch_size / median latency``.
        flops: counted FLOPs of one forward pass of the whole batch (see ``FLOPS_CONVENTION``); None for
            a training step that reads a tensor's value (counted on meta tensors, which have none).
        tflops: achieved rate, ``flops / median latency / 1e12`` (NaN without ``flops``).
        utilization: ``tflops / peak_tflops`` of the report (fraction of this device's dense-matmul rate).
        peak_memory_bytes: CUDA: ``torch.cuda.max_memory_allocated`` during the timed run; CPU: the
            increase of the process's peak resident set size (None where it cannot be read).
        peak_reserved_bytes: CUDA: ``torch.cuda.max_memory_reserved`` (held by the caching allocator);
            None elsewhere.
        outliers: iterations whose modified Z-score exceeds hyperfine's threshold.
        complete: False for a batch cut short by Ctrl-C (figures from the iterations that finished).
        mode: ``eval`` (one forward pass per iteration) or ``train`` (one training step: forward, loss,
            backward, optimizer step; ``flops`` then counts the whole step, see ``TRAIN_FLOPS_CONVENTION``).
        phase_ms: train with ``--detail``: median ms of ``forward`` (with the loss), ``backward`` and
            ``optimizer`` over the timed iterations; None otherwise.
        plan_peak_bytes: train: the memory plan's peak of one step (``analysis.memory_plan``).
        step_peak_bytes: train: the measured peak of one step: CUDA ``max_memory_allocated`` over the
            timed iterations; CPU: live tensor bytes at the peak of one extra step by ``torch.profiler``
            memory events (``bench.train.cpu_step_peak``).
        plan_error_percent: ``100 * (plan_peak_bytes - step_peak_bytes) / step_peak_bytes``.
    """

    batch_size: int
    requested_batch_size: int
    iterations: int
    warmup_iterations: int
    warmup_stable: bool
    first_call_ms: float
    compile_ms: Optional[float]
    latency_ms: LatencyStats
    images_per_sec: float
    flops: Optional[int]
    tflops: float
    utilization: Optional[float]
    peak_memory_bytes: Optional[int]
    peak_reserved_bytes: Optional[int]
    outliers: int
    complete: bool = True
    mode: str = "eval"
    phase_ms: Optional[dict[str, float]] = None
    plan_peak_bytes: Optional[int] = None
    step_peak_bytes: Optional[int] = None
    plan_error_percent: Optional[float] = None


@dataclass(frozen=True)
class Environment:
    """Where the numbers were measured.

    Attributes:
        device: the torch device string (``cpu``, ``cuda:0``).
        device_name: GPU name, or the CPU model for ``cpu``.
        torch_version, cuda_version, cudnn_version: versions (None where not applicable).
        cpu_model: CPU model name (``/proc/cpuinfo`` or ``platform.processor()``).
        cpu_count: logical CPUs visible to the process.
        threads: ``torch.get_num_threads()`` during the run (intra-op threads on CPU).
        dtype: ``float32``, ``float16`` or ``bfloat16`` (weights and input both cast).
        memory_format: ``channels_last`` or ``contiguous``.
        tf32: CUDA only: whether convolutions may use TF32 (``torch.backends.cudnn.allow_tf32``);
            the peak GEMM is measured in the same math mode.
        total_memory_bytes: GPU memory, or the machine's RAM for ``cpu``.
        python_version, platform: interpreter and OS.
        load_average: the 1-minute load average when the run started (None where the OS has none);
            above ``cpu_count`` other processes were competing for the cores.
    """

    device: str
    device_name: str
    torch_version: str
    cuda_version: Optional[str]
    cudnn_version: Optional[int]
    cpu_model: str
    cpu_count: int
    threads: int
    dtype: str
    memory_format: str
    tf32: Optional[bool]
    total_memory_bytes: Optional[int]
    python_version: str
    platform: str
    load_average: Optional[float] = None


@dataclass(frozen=True)
class Peak:
    """The dense-matmul rate the utilisation is relative to.

    Attributes:
        tflops: TFLOP/s (1e12 FLOP/s; an n x n x n GEMM is 2 n^3 FLOPs).
        source: ``measured`` (a square GEMM timed on the spot) or ``--peak-tflops`` (given by the user).
        gemm_size: n of the measured GEMM (None when given).
        busy: True when other processes held the CPU cores during the probe (its threads got well under
            their share of CPU time), so the rate is too low to divide by.
    """

    tflops: float
    source: str
    gemm_size: Optional[int] = None
    busy: bool = False


@dataclass(frozen=True)
class BenchReport:
    """A whole ``resnet-cli bench`` run.

    Attributes:
        variant: display name; ``spec``: the full spec string.
        device, dtype, channels_last, compile_mode (None: eager), input_size (C, H, W), threads.
        warmup: minimum warm-up iterations; iters: timed iterations asked for (None: timed for
            ``min_time_s`` seconds and at least 10 iterations).
        flops_convention: what ``flops`` / ``tflops`` count; flops_per_image: FLOPs of one image's forward
            pass (train results count the whole step: ``TRAIN_FLOPS_CONVENTION``).
        mode, optimizer, amp: the run's ``--mode``, ``--optimizer`` (train) and ``--amp`` (None: none).
        param_count: parameters of the network (exact; timm's benchmark.py reports millions).
        train_flops_convention: with train results: what their ``flops`` count (``TRAIN_FLOPS_CONVENTION``).
        peak: see :class:`Peak`; None when it could not be measured.
        environment: see :class:`Environment`.
        results: one per batch size, in the order run.
        warnings: plain-words warnings (also printed on stderr).
        interrupted: True when Ctrl-C cut the run short.
        param_count: parameters of the network, exact (``numel`` summed; buffers excluded; timm's
            benchmark.py writes millions).
    """

    variant: str
    spec: str
    device: str
    dtype: str
    channels_last: bool
    compile_mode: Optional[str]
    input_size: tuple[int, int, int]
    threads: int
    warmup: int
    iters: Optional[int]
    min_time_s: Optional[float]
    flops_convention: str
    flops_per_image: int
    peak: Optional[Peak]
    environment: Environment
    results: list[BenchResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    interrupted: bool = False
    mode: str = "eval"
    optimizer: Optional[str] = None
    amp: Optional[str] = None
    param_count: Optional[int] = None
    train_flops_convention: Optional[str] = None


@dataclass(frozen=True)
class CaseResult:
    """One case of a grid (a variant in one dtype, layout and batch), its rounds pooled.

    Attributes:
        case: the case's name, ``VARIANT/DTYPE/bBATCH/LAYOUT`` (layout ``nchw`` or ``nhwc``), e.g.
            ``resnet50/bf16/b64/nhwc``; index: its place in the grid (1-based, the order run).
        variant, spec, dtype, batch_size (measured), requested_batch_size, channels_last: the settings.
        retried: True when an out-of-memory retry measured a smaller batch than asked.
        rounds: rounds that finished (of the grid's ``rounds``); iterations: timed iterations pooled.
        latency_ms: statistics of every timed iteration of every round; round_medians_ms: each round's
            median (what the significance test compares when there are two rounds or more).
        images_per_sec: ``batch_size / pooled median``; tflops: achieved TFLOP/s at that median;
            utilization: ``tflops / peak_tflops``; peak_tflops: the best peak GEMM measured for the dtype.
        peak_memory_bytes, peak_reserved_bytes: the largest over the rounds (see ``BenchResult``).
        first_call_ms: median over rounds of the first forward call.
        flops_per_image: conv+linear FLOPs of one image; gmacs: ``flops_per_image / 2 / 1e9``, GMACs of
            one image (timm's ``infer_gmacs``); param_count: parameters, exact (timm writes millions).
        relative: this case's images/s over the reference's (None for the reference itself or without
            a measurement); relative_low, relative_high: its interval at the grid's ``confidence``;
            p_value: Welch's t-test of equal throughput; significant: whether the interval excludes 1
            (None for the reference); test: ``rounds`` (per-round medians) or ``iterations``.
        error: why the case has no (or fewer) rounds: a crash, an out-of-memory with ``--no-retry``.
        warnings: this case's plain-words warnings.
        input_size: (C, H, W) of one image.
        mode: ``eval`` (one iteration = a forward pass) or ``train`` (a training step; ``tflops`` then
            counts the whole step's FLOPs).
        optimizer: a train case's optimizer (``sgd``, ``momentum``, ``adamw``; None in eval); amp: the
            autocast dtype (``bf16``, ``fp16``; None: none), as in ``BenchReport``.
        phase_ms: a train case with ``--detail``: median ms of ``forward`` (with the loss), ``backward``
            and ``optimizer``, the median over its rounds of each round's median; else None.
        peak: the peak GEMM rate ``peak_tflops`` comes from (see :class:`Peak`; None without one).
        plan_peak_bytes: train: the memory plan's peak of one step (the same every round);
            step_peak_bytes: the largest measured step peak over the rounds (see ``BenchResult``);
            plan_error_percent: ``100 * (plan_peak_bytes - step_peak_bytes) / step_peak_bytes``.
    """

    case: str
    index: int
    variant: str
    spec: str
    dtype: str
    batch_size: int
    requested_batch_size: int
    channels_last: bool
    retried: bool
    rounds: int
    iterations: int
    latency_ms: Optional[LatencyStats]
    round_medians_ms: list[float]
    images_per_sec: Optional[float]
    tflops: Optional[float]
    utilization: Optional[float]
    peak_tflops: Optional[float]
    peak_memory_bytes: Optional[int]
    peak_reserved_bytes: Optional[int]
    first_call_ms: Optional[float]
    flops_per_image: Optional[int]
    gmacs: Optional[float]
    param_count: Optional[int]
    relative: Optional[float] = None
    relative_low: Optional[float] = None
    relative_high: Optional[float] = None
    p_value: Optional[float] = None
    significant: Optional[bool] = None
    test: Optional[str] = None
    error: Optional[str] = None
    warnings: list[str] = field(default_factory=list)
    input_size: Optional[tuple[int, int, int]] = None
    mode: str = "eval"
    optimizer: Optional[str] = None
    amp: Optional[str] = None
    phase_ms: Optional[dict[str, float]] = None
    peak: Optional[Peak] = None
    plan_peak_bytes: Optional[int] = None
    step_peak_bytes: Optional[int] = None
    plan_error_percent: Optional[float] = None


@dataclass(frozen=True)
class GridReport:
    """A ``resnet-cli bench`` run over several cases.

    Attributes:
        device: the device asked for; process: ``subprocess`` (a fresh interpreter per case and round)
            or ``same-process``; rounds: rounds run (as asked, or ``--iters`` when that is fewer; cases
            alternate within each round).
        warmup: of one round; iters: a case's timed iterations in all (``--iters``, split exactly over
            the rounds: ``grid.split_over_rounds``); min_time_s: of one round (``--min-time`` divided over
            the rounds); threads, compile_mode: as in ``BenchReport``.
        reference: the case the relative speeds divide by; confidence: of the intervals (0.99).
        sort: the row order (``run``, ``throughput``, ``latency`` or ``name``).
        flops_convention: what ``flops_per_image`` and ``tflops`` count.
        environment: the first finished run's environment block (see ``Environment``), None if none ran.
        cases: one per case, in ``sort`` order.
        warnings: plain-words warnings (also on stderr); interrupted: Ctrl-C cut the grid short.
    """

    device: str
    process: str
    rounds: int
    warmup: int
    iters: Optional[int]
    min_time_s: Optional[float]
    threads: Optional[int]
    compile_mode: Optional[str]
    reference: str
    confidence: float
    sort: str
    flops_convention: str
    environment: Optional[dict]
    cases: list[CaseResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    interrupted: bool = False
