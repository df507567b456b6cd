"""One training step as a callable for the timing runner (``bench --mode train``; DDP ranks reuse it).

A step is what timm's ``benchmark.py`` times in train mode: ``zero_grad(set_to_none=True)``, forward
under autocast (AMP) or in the weights' dtype, cross-entropy loss against fixed random targets,
backward (through a ``GradScaler`` for fp16 AMP), optimizer step. :class:`TrainStep` is one
zero-argument callable (``runner.measure(step, timer)``) and also exposes its three phases, which
:class:`SplitTimer` times inside the same loop for ``--detail``.

No torch at import time of the package: this module is imported by the commands that need it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Callable, Optional, Sequence

import torch

#: ``--optimizer`` choices.
OPTIMIZERS = ("sgd", "momentum", "adamw")
#: Storage dtypes of weights and input (``--dtype``) and autocast dtypes (``--amp``).
TRAIN_DTYPES = ("fp32", "bf16", "fp16")
AMP_DTYPES = ("bf16", "fp16")
_TORCH = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
#: Learning rates: any positive value costs the same; these are the usual ImageNet ones.
LEARNING_RATES = {"sgd": 0.1, "momentum": 0.1, "adamw": 1e-3}
#: Phase names of a step, in order (the ``--detail`` split).
PHASES = ("forward", "backward", "optimizer")


def parse_precision(dtype: str, amp: Optional[str] = None) -> tuple[str, Optional[str]]:
    """``(storage dtype, autocast dtype or None)`` from ``--dtype`` / ``--amp``.

    ``--dtype amp`` means ``--dtype fp32 --amp bf16`` (fp32 weights and optimizer state, bf16
    autocast); ``--amp fp16`` adds a gradient scaler. ``--amp`` requires fp32 storage (autocast of
    already-low-precision weights is meaningless).

    Raises:
        ValueError: an unknown name, or ``--amp`` with a low-precision ``--dtype`` (the CLI turns it
            into a UsageError).
    """
    dtype = str(dtype).lower()
    if dtype == "amp":
        dtype, amp = "fp32", amp or "bf16"
    if dtype not in TRAIN_DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of fp32, bf16, fp16, amp")
    if amp is not None:
        amp = str(amp).lower()
        if amp not in AMP_DTYPES:
            raise ValueError(f"amp {amp!r} is not one of bf16, fp16")
        if dtype != "fp32":
            raise ValueError(f"amp {amp} needs fp32 weights (dtype fp32), not {dtype}")
    return dtype, amp


def make_optimizer(name: str, params, foreach: Optional[bool] = None) -> torch.optim.Optimizer:
    """``sgd`` (plain SGD), ``momentum`` (SGD, momentum 0.9) or ``adamw`` (AdamW, torch defaults) over
    ``params``, at :data:`LEARNING_RATES`. ``foreach``: torch's multi-tensor implementation (None:
    torch's default, i.e. foreach on CUDA, a per-tensor loop elsewhere); it changes the temporary
    memory of the step, so the memory plan passes the value the real device would use.

    Raises:
        ValueError: an unknown name.
    """
    if name == "sgd":
        return torch.optim.SGD(params, lr=LEARNING_RATES[name], foreach=foreach)
    if name == "momentum":
        return torch.optim.SGD(params, lr=LEARNING_RATES[name], momentum=0.9, foreach=foreach)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=LEARNING_RATES[name], foreach=foreach)
    raise ValueError(f"optimizer {name!r} is not one of {', '.join(OPTIMIZERS)}")


def check_logits(out) -> None:
    """The training step's loss is cross-entropy over class logits: ``out`` must be a tensor of shape
    (N, classes) or (N, classes, H, W) (segmentation).

    Raises:
        UsageError: any other output (a dict, a tuple, a scalar, a 1-D tensor), named.
    """
    from ..errors import UsageError

    if isinstance(out, torch.Tensor) and out.dim() >= 2 and out.is_floating_point():
        return
    what = (f"a tensor of shape {tuple(out.shape)} ({str(out.dtype).replace('torch.', '')})"
            if isinstance(out, torch.Tensor) else f"a {type(out).__name__}")
    raise UsageError(f"the training step needs (N, classes) logits (or (N, classes, H, W)) for its cross-entropy "
                     f"loss, and this network returns {what}; train it with your own loop, or wrap it to return "
                     "the logits")


def _target_for(out: torch.Tensor) -> torch.Tensor:
    """Random class indices for a logits tensor: (N, K) -> (N,), (N, K, H, W) -> (N, H, W) (segmentation)."""
    shape = (out.shape[0], *out.shape[2:])
    gen = torch.Generator(device="cpu").manual_seed(0)
    target = torch.randint(0, max(1, out.shape[1]), shape, generator=gen)
    return target.to(out.device)


class TrainStep:
    """One training step over a fixed input batch: ``step()`` runs forward + loss, backward and the
    optimizer step; ``step.phases`` are the same three as separate callables, to be called in order.

    Built by :func:`make_train_step`. Attributes: ``model`` (as given), ``forward_fn`` (the model or its
    ``torch.compile`` wrapper), ``optimizer``, ``scaler`` (a ``torch.amp.GradScaler`` for fp16 AMP, else
    None), ``input`` (N, C, H, W), ``target`` (made on the first call from the output's shape),
    ``loss`` (the last loss tensor, detached after backward), ``dtype`` / ``amp`` / ``channels_last`` /
    ``optimizer_name`` (the settings), ``device``.
    """

    def __init__(self, model: torch.nn.Module, forward_fn: Callable, optimizer: torch.optim.Optimizer,
                 scaler, x: torch.Tensor, dtype: str, amp: Optional[str], channels_last: bool,
                 optimizer_name: str):
        self.model, self.forward_fn, self.optimizer, self.scaler, self.input = model, forward_fn, optimizer, scaler, x
        self.dtype, self.amp, self.channels_last, self.optimizer_name = dtype, amp, channels_last, optimizer_name
        self.device = x.device
        self.target: Optional[torch.Tensor] = None
        self.loss: Optional[torch.Tensor] = None
        self.phases: tuple[tuple[str, Callable[[], None]], ...] = (
            ("forward", self.forward), ("backward", self.backward), ("optimizer", self.optimizer_step))

    def forward(self) -> None:
        """``zero_grad(set_to_none=True)``, then forward and cross-entropy loss (autocast under AMP)."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.amp is not None:
            with torch.autocast(device_type=self.device.type, dtype=_TORCH[self.amp]):
                out = self.forward_fn(self.input)
        else:
            out = self.forward_fn(self.input)
        if self.target is None:
            check_logits(out)
            self.target = _target_for(out)
        # Loss in fp32 (autocast also runs cross_entropy in fp32): the logits' cast is part of the step.
        self.loss = torch.nn.functional.cross_entropy(out.float(), self.target)

    def backward(self) -> None:
        """``loss.backward()`` (scaled by the ``GradScaler`` for fp16 AMP)."""
        loss = self.loss
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        self.loss = loss.detach()

    def optimizer_step(self) -> None:
        """``optimizer.step()`` (``scaler.step`` + ``scaler.update`` for fp16 AMP)."""
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()

    def __call__(self) -> None:
        self.forward()
        self.backward()
        self.optimizer_step()


def make_train_step(model: torch.nn.Module, optimizer: str, input_shape: Sequence[int], *, dtype: str = "fp32",
                    amp: Optional[str] = None, channels_last: bool = False, compile_mode: Optional[str] = None,
                    foreach: Optional[bool] = None, device: Optional[Any] = None) -> TrainStep:
    """The training-step callable for a built model.

    Args:
        model: the network (or a wrapper such as DDP), already on its device, its weights already in
            the storage ``dtype`` (fp32 under AMP) and memory format; it is put in ``train()`` mode and
            otherwise left as given.
        optimizer: ``sgd``, ``momentum`` or ``adamw`` (see :func:`make_optimizer`), over the
            parameters that require grad (frozen ones are skipped).
        input_shape: (N, C, H, W) of the input batch; a ``randn`` batch of this shape is made once,
            on ``device``, in ``dtype``, channels-last when asked.
        dtype: ``fp32``, ``bf16`` or ``fp16`` (the input's dtype; must match the weights), or ``amp``
            (= fp32 with ``amp="bf16"``); see :func:`parse_precision`.
        amp: ``bf16`` or ``fp16`` for ``torch.autocast`` over the forward pass (fp16 adds a
            ``torch.amp.GradScaler``); None for none.
        channels_last: the input in NHWC memory format.
        compile_mode: ``torch.compile`` mode for the model's forward (AOTAutograd compiles its
            backward); None for eager. Compilation happens on the first call.
        foreach: passed to the optimizer (None: torch's default for the device).
        device: where the input goes; default: the device of the model's first parameter (CPU for a
            model without parameters).

    Returns:
        A :class:`TrainStep`: ``step()`` runs one step (returns nothing; CUDA work may still be queued,
        the runner's timer synchronises); ``step.phases`` = (("forward", f), ("backward", b),
        ("optimizer", o)).

    Raises:
        ValueError: an unknown optimizer or dtype, or ``amp`` with a low-precision ``dtype``.
        UsageError: no trainable parameter (``nothing left to train: ...``).
    """
    dtype, amp = parse_precision(dtype, amp)
    if device is None:
        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    model.train()
    from ..analysis.training import check_trainable

    check_trainable(model)  # torch's optimizers refuse an empty parameter list
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(optimizer, params, foreach=foreach)
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    x = torch.randn(*input_shape, device=device, dtype=_TORCH[dtype])
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    forward_fn = model
    if compile_mode is not None:
        forward_fn = torch.compile(model, mode=None if compile_mode == "default" else compile_mode, dynamic=False)
    return TrainStep(model, forward_fn, opt, scaler, x, dtype, amp, channels_last, optimizer)


class SplitTimer:
    """A runner timer (``timer(step) -> ms``) that times a :class:`TrainStep` phase by phase.

    Each call runs ``step.phases`` in order with a mark between phases (CUDA: events on the current
    stream, one synchronisation at the end, as timm's benchmark does; MPS: synchronisations; CPU:
    ``perf_counter``), returns the whole step's milliseconds (the sum of the phases) and appends
    ``{"forward": ms, "backward": ms, "optimizer": ms}`` to ``splits``. The runner's statistics then
    use the same iterations as the split: take the last ``len(measurement.times_ms)`` of ``splits``.
    """

    def __init__(self, device: Any):
        import time

        self.device = torch.device(device)
        self.splits: list[dict[str, float]] = []
        self._clock = time.perf_counter

    def __call__(self, step: TrainStep) -> float:
        if self.device.type == "cuda":
            marks = [torch.cuda.Event(enable_timing=True) for _ in range(len(step.phases) + 1)]
            marks[0].record()
            for (_, fn), mark in zip(step.phases, marks[1:]):
                fn()
                mark.record()
            marks[-1].synchronize()
            times = [a.elapsed_time(b) for a, b in zip(marks, marks[1:])]
        else:
            sync = torch.mps.synchronize if self.device.type == "mps" else (lambda: None)
            sync()
            stamps = [self._clock()]
            for _, fn in step.phases:
                fn()
                sync()
                stamps.append(self._clock())
            times = [(b - a) * 1e3 for a, b in zip(stamps, stamps[1:])]
        self.splits.append({name: ms for (name, _), ms in zip(step.phases, times)})
        return sum(times)


def phase_medians(splits: list[dict[str, float]]) -> dict[str, float]:
    """Median milliseconds of each phase over ``splits`` (:attr:`SplitTimer.splits` of the timed iterations)."""
    import statistics

    if not splits:
        return {}
    return {name: statistics.median(s[name] for s in splits) for name in splits[0]}


def _live_bytes(step: TrainStep) -> int:
    """Bytes of the distinct storages alive between two steps (weights, buffers, optimizer state, input,
    targets, the last loss); gradients must already be freed."""
    seen: dict[int, int] = {}
    tensors = [*step.model.parameters(), *step.model.buffers(), step.input, step.target, step.loss]
    tensors += [v for state in step.optimizer.state.values() for v in state.values() if isinstance(v, torch.Tensor)]
    for t in tensors:
        if isinstance(t, torch.Tensor):
            st = t.untyped_storage()
            seen[st.data_ptr() or id(st)] = st.nbytes()
    return sum(seen.values())


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 to the null device: the profiler's C++ side (kineto) logs its start and stop
    there, which would land among the command's notes."""
    sys.stderr.flush()
    try:
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def cpu_step_peak(step: TrainStep) -> int:
    """Peak bytes of live CPU tensors during one more (untimed) step, measured by ``torch.profiler``
    memory events over real tensors: the tensors alive before the step (weights, buffers, optimizer
    state, input) plus the largest running sum of the step's allocations minus its frees. Gradients
    are freed first (``zero_grad(set_to_none=True)``, as the step itself does), because the profiler
    never sees the free of a block allocated before it started. Counts every allocation the CPU
    allocator serves, oneDNN's scratch buffers included; the resident set size (RSS) is larger
    (allocator caches, libraries)."""
    from torch.profiler import ProfilerActivity, profile

    step.optimizer.zero_grad(set_to_none=True)
    step.loss = None  # freed before the profiler starts (it could not see the free)
    base = _live_bytes(step)
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
              and e.device_type() == torch.autograd.DeviceType.CPU]
    events.sort(key=lambda e: e.start_ns())
    now = peak = 0
    for e in events:
        now += e.nbytes()
        peak = max(peak, now)
    return base + peak
