"""The settings of one ``resnet-cli bench`` run and the parsing of its text options. No torch here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import UsageError
from ..limits import MAX_BATCH, MAX_ITERS, MAX_MIN_TIME_S, PEAK_TFLOPS_RANGE, check_float, check_int

#: ``--dtype`` choices and the torch dtype names they stand for.
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
#: ``--mode`` choices.
MODES = ("eval", "train", "both")
#: ``--compile-mode`` choices (``torch.compile``'s modes).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: The largest batch ``--max-batch`` tries.
MAX_BATCH_CEILING = 4096
DEFAULT_BATCH = 32
DEFAULT_MIN_TIME_S = 2.0
DEFAULT_WARMUP = 5

_DEVICE = re.compile(r"^(cpu|mps|cuda)(?::(\d+))?$")


@dataclass(frozen=True)
class BenchConfig:
    """Everything a bench run needs, already validated.

    Attributes:
        variant: display name; spec: the ``ResNetSpec``; state_dict: weights to load or None; strict:
            ``load_state_dict(strict=...)``.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; dtype: a key of :data:`DTYPES`.
        channels_last: NHWC memory format for weights and input; compile_mode: ``torch.compile`` mode or
            None for eager.
        batches: batch sizes in the order to run; max_batch: search the largest batch that fits instead.
        size: input (H, W); in_chans comes from the spec.
        warmup: minimum warm-up iterations after the first call (warm-up then runs on until stable).
        iters: exact timed iterations, or None to time for ``min_time_s`` (at least 10 iterations).
        threads: ``torch.set_num_threads`` value, or None for torch's default.
        peak_tflops: the peak to divide by, or None to measure it.
        force: run on CPU even when the activation estimate exceeds the available RAM.
        retry: halve the batch after an out-of-memory failure (False: ``--no-retry``, fail instead).
        mode: ``eval`` (forward passes under ``inference_mode``), ``train`` (whole training steps,
            :mod:`.train`) or ``both`` (each batch in both modes, eval first).
        optimizer: ``sgd``, ``momentum`` or ``adamw`` (train); amp: ``bf16`` / ``fp16`` autocast over
            fp32 weights (fp16 with a gradient scaler in train), or None.
        detail: time the forward / backward / optimizer phases of each training step apart.
        model: the ``nn.Module`` to time when it is not built from ``spec`` (the user's own, then
            ``spec`` is its ``ModuleSource`` with the input size); copied before it is moved or cast.
    """

    variant: str
    spec: Any
    state_dict: Optional[dict]
    strict: bool
    device: str
    dtype: str
    channels_last: bool
    compile_mode: Optional[str]
    batches: tuple[int, ...]
    max_batch: bool
    size: tuple[int, int]
    warmup: int
    iters: Optional[int]
    min_time_s: float
    threads: Optional[int]
    peak_tflops: Optional[float]
    force: bool
    retry: bool = True
    mode: str = "eval"
    optimizer: str = "sgd"
    amp: Optional[str] = None
    detail: bool = False
    model: Any = None

    @property
    def modes(self) -> tuple[str, ...]:
        """The modes each batch runs in, in order."""
        return ("eval", "train") if self.mode == "both" else (self.mode,)


def parse_batches(text: str) -> tuple[int, ...]:
    """``"64"`` or ``"1,8,32"`` -> batch sizes in the given order.

    Raises:
        UsageError: an empty item (``1,,2``), a non-integer (``abc``), a value below 1 (``0``, ``-1``) or above
            ``MAX_BATCH``, or a batch size given twice (``1,1``: it would be measured twice under one label).
    """
    items = [t.strip() for t in str(text).split(",")]
    out: list[int] = []
    for item in items:
        if not item:
            raise UsageError(f"--batch {text!r} has an empty item; give positive integers separated by "
                             "commas, e.g. 64 or 1,8,32")
        try:
            value = int(item, 10)
        except ValueError:
            raise UsageError(f"--batch item {item!r} is not an integer; give positive integers separated by "
                             "commas, e.g. 64 or 1,8,32") from None
        if value < 1:
            raise UsageError(f"--batch item {item!r} must be 1 or more; e.g. --batch 64 or --batch 1,8,32")
        if value > MAX_BATCH:
            raise UsageError(f"--batch item {item!r} is out of range: give batch sizes from 1 to {MAX_BATCH}")
        if value in out:
            raise UsageError(f"--batch {text!r} gives batch size {value} twice; give each batch size once, "
                             "e.g. 1,8,32")
        out.append(value)
    return tuple(out)


def parse_device(text: str) -> str:
    """Normalise ``--device``: ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (case-insensitive).

    Raises:
        UsageError: anything else.
    """
    value = str(text).strip().lower()
    match = _DEVICE.match(value)
    if not match or (match.group(2) is not None and match.group(1) != "cuda"):
        raise UsageError(f"--device {text!r} is not a device; use cpu, cuda, cuda:N (N = GPU index) or mps")
    return value


def check_bench_numbers(min_time: Optional[float] = None, peak_tflops: Optional[float] = None,
                        iters: Optional[int] = None, warmup: Optional[int] = None) -> None:
    """The numeric options of a bench run (None: not given). ``nan`` and ``inf`` are refused: timing
    "at least nan s" never ends, and a peak of ``inf`` or ``1e-320`` TFLOP/s makes the utilisation 0
    or infinite.

    Raises:
        UsageError: names the option, the value and the accepted range.
    """
    check_float("--min-time", min_time, 0.0, MAX_MIN_TIME_S, "seconds")
    check_float("--peak-tflops", peak_tflops, *PEAK_TFLOPS_RANGE, "TFLOP/s")
    if iters is not None:
        check_int("--iters", iters, 1, MAX_ITERS)
    if warmup is not None:
        check_int("--warmup", warmup, 0, MAX_ITERS)


def parse_dtypes(text: str) -> tuple[str, ...]:
    """``"fp32"`` or ``"fp32,bf16"`` (case-insensitive) -> dtype keys in the given order, duplicates dropped.

    Raises:
        UsageError: an empty item or a name that is not one of :data:`DTYPES`.
    """
    out: list[str] = []
    for item in (t.strip().lower() for t in str(text).split(",")):
        if item not in DTYPES:
            shown = repr(item) if item else "an empty item"
            raise UsageError(f"--dtype {shown} is not a dtype; give fp32, fp16 or bf16, or a comma list such as "
                             "fp32,bf16")
        if item not in out:
            out.append(item)
    return tuple(out)


#: ``--channels-last`` values and the layouts (channels_last flags) they stand for.
LAYOUTS = {"on": (True,), "off": (False,), "both": (False, True)}


def parse_layouts(text: str | None) -> tuple[bool, ...]:
    """``--channels-last``: absent or ``off`` -> NCHW; ``on`` (or the bare flag) -> NHWC; ``both`` -> each.

    Raises:
        UsageError: any other value.
    """
    value = "off" if text is None else str(text).strip().lower()
    if value not in LAYOUTS:
        raise UsageError(f"--channels-last {text!r} is not one of on, off, both (--channels-last alone means on)")
    return LAYOUTS[value]
