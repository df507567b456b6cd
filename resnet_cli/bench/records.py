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

    ``std`` is the sample standard deviation (n - 1; 0 for one sample); ``p5`` and ``p95`` are linear
    interpolations between order statistics (numpy's default 'linear' method).
    """

    median: float
    mean: float
    std: float
    p5: float
    p95: float
    min: float
    max: float


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
        flops: counted FLOPs of one forward pass of the whole batch (see ``FLOPS_CONVENTION``).
        tflops: achieved rate, ``flops / median latency / 1e12``.
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
    flops: int
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
    """

    tflops: float
    source: str
    gemm_size: Optional[int] = None


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
        peak: see :class:`Peak`; None when it could not be measured.
        environment: see :class:`Environment`.
        results: one per batch size, in the order run.
        warnings: plain-words warnings (also printed on stderr).
        interrupted: True when Ctrl-C cut the run short.
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
