"""What a data-parallel benchmark (``bench --mode train --nproc N``) produces. No torch here.

JSON output is ``dataclasses.asdict`` of :class:`DdpReport` plus ``schema_version``; the README's
"More than one GPU" section documents the keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .records import Environment, LatencyStats

#: What the all-reduce figures measure (printed under the table and kept in the JSON).
ALLREDUCE_CONVENTION = (
    "gradient all-reduce, measured by DDP's communication hook: per step, the time during which at least one "
    "gradient bucket's all-reduce was in flight (hook call to completion; CUDA: events on the stream, CPU: "
    "perf_counter); it overlaps the backward pass, so its share of the step is an upper bound of what "
    "communication adds; DDP's buffer broadcast (BatchNorm statistics) is not in it")


@dataclass(frozen=True)
class AllReduceStats:
    """The gradient all-reduce of one rank over its timed steps.

    Attributes:
        buckets: gradient buckets all-reduced per step (DDP's ``bucket_cap_mb`` grouping).
        bytes_per_step: bytes of gradient all-reduced per step (the buckets' buffers).
        latency_ms: per step, milliseconds during which at least one bucket's all-reduce was in flight.
        share: median of ``latency_ms`` / median step latency (a fraction; may overlap compute).
    """

    buckets: int
    bytes_per_step: int
    latency_ms: LatencyStats
    share: float


@dataclass(frozen=True)
class RankResult:
    """One rank's timed training steps.

    Attributes:
        rank: global rank; local_rank: rank on its node; host: the node's host name; device: the torch
            device the rank ran on (``cpu``, ``cuda:LOCAL_RANK``); world_size: ranks in its group
            (1 for the one-process baseline).
        batch_size: images per step on this rank (the global batch is ``world_size`` times it).
        iterations, warmup_iterations, warmup_stable, first_call_ms: as in ``BenchResult``.
        latency_ms: per-step latency (zero_grad, forward, loss, backward with its all-reduce, optimizer step).
        images_per_sec: ``batch_size / median step latency``.
        outliers: steps whose modified Z-score exceeds hyperfine's threshold.
        allreduce: see :class:`AllReduceStats`; None when no timed step called the hook.
        peak_memory_bytes: CUDA ``max_memory_allocated`` over the timed steps, CPU peak-RSS rise (None if unknown).
        threads: ``torch.get_num_threads()`` in this rank.
        complete: False when Ctrl-C cut the run short (figures from the steps that finished).
        tflops: ``flops_per_step / median step latency / 1e12`` (None when the step's FLOPs are not counted).
        param_checksum: only under the test hook ``RESNET_CLI_DDP_TEST_CHECKSUM=1``: SHA-256 of the
            parameters' bytes after the last step (identical on every rank when gradients were all-reduced).
    """

    rank: int
    local_rank: int
    host: str
    device: str
    world_size: int
    batch_size: int
    iterations: int
    warmup_iterations: int
    warmup_stable: bool
    first_call_ms: float
    latency_ms: LatencyStats
    images_per_sec: float
    outliers: int
    allreduce: Optional[AllReduceStats]
    peak_memory_bytes: Optional[int]
    threads: int
    complete: bool = True
    tflops: Optional[float] = None
    param_checksum: Optional[str] = None


@dataclass(frozen=True)
class DdpReport:
    """A whole data-parallel run (printed by rank 0).

    Attributes:
        variant, spec: the network; mode: ``train``.
        backend: ``gloo`` or ``nccl``; device_type: ``cpu`` or ``cuda`` (one GPU per rank, LOCAL_RANK).
        world_size: ranks; nnodes: nodes; nproc_per_node: ranks per node.
        dtype, amp, optimizer, channels_last, compile_mode: the training step's settings.
        input_size: (C, H, W); batch_per_rank: images per step per rank; global_batch: ``world_size * batch_per_rank``.
        threads_per_rank: torch threads in each rank; warmup, iters, min_time_s: as in ``BenchReport``.
        environment: rank 0's (see ``Environment``).
        ranks: one :class:`RankResult` per rank, by rank.
        images_per_sec: total, the sum of the ranks' images/s.
        baseline: the same run with one process (rank 0 alone, same batch per rank and threads), or None
            (``--no-baseline``, or interrupted before it finished).
        scaling_efficiency: ``images_per_sec / (world_size * baseline.images_per_sec)``; None without baseline.
        flops_per_step: FLOPs of one rank's training step (``flops_convention``), None if not counted.
        allreduce_convention: what the all-reduce figures measure.
        warnings: plain-words warnings (also on stderr); interrupted: Ctrl-C cut the run short.
    """

    variant: str
    spec: str
    mode: str
    backend: str
    device_type: str
    world_size: int
    nnodes: int
    nproc_per_node: int
    dtype: str
    amp: Optional[str]
    optimizer: str
    channels_last: bool
    compile_mode: Optional[str]
    input_size: tuple[int, int, int]
    batch_per_rank: int
    global_batch: int
    threads_per_rank: int
    warmup: int
    iters: Optional[int]
    min_time_s: Optional[float]
    environment: Optional[Environment]
    ranks: list[RankResult] = field(default_factory=list)
    images_per_sec: Optional[float] = None
    baseline: Optional[RankResult] = None
    scaling_efficiency: Optional[float] = None
    flops_per_step: Optional[int] = None
    flops_convention: Optional[str] = None
    allreduce_convention: str = ALLREDUCE_CONVENTION
    warnings: list[str] = field(default_factory=list)
    interrupted: bool = False
