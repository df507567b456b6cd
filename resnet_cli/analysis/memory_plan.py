"""The memory plan of one training step (or one inference forward pass): weights, gradients,
optimizer state, tensors saved for backward, and the peak, with a verdict against a GPU's memory.

How it is made: the step runs for real, as ``bench --mode train`` runs it (:mod:`..bench.train`:
zero_grad, forward + loss, backward, optimizer step), but on fake tensors
(``torch._subclasses.fake_tensor.FakeTensorMode``: every tensor has its true shape, dtype, strides and
storage size, and no data), under ``torch.distributed._tools.mem_tracker.MemTracker``, torch's own
accounting of live storages: it adds a storage when an op creates it and drops it when autograd or
Python frees it (weak references), so the peak is the largest sum of live storages at any op, as the
caching allocator's ``max_memory_allocated`` counts them (with CUDA's 512-byte rounding when the plan
runs on fake CUDA tensors, i.e. when this torch has CUDA). Chosen over a saved-tensor count because
the peak of a step is not "weights + everything saved": it falls inside backward (saved tensors being
freed while gradients appear) or in the optimizer step (its temporaries), and only a replay of the
step's allocations and frees sees where. Saved-tensor hooks are used alongside, for the breakdown of
what the forward pass keeps for backward, per module.

Two steps run: the first (untracked) creates the optimizer state of the parameters that get a gradient;
the second, tracked, is the steady state that bench times (grads of the previous step freed by
``zero_grad(set_to_none=True)``). A parameter that gets no gradient (an unused module) has neither a
gradient nor optimizer state, as in torch. The optimizer uses torch's multi-tensor (foreach)
implementation when planning for CUDA, as torch does there by default.

Included: parameters, buffers, the input batch and targets, gradients, optimizer state, every tensor
an op allocates (activations, saved tensors, autograd temporaries, autocast's low-precision weight
copies, the optimizer's temporaries). Excluded: the CUDA context and library handles (cuBLAS, cuDNN:
typically 0.3-1 GiB, outside ``max_memory_allocated``), cuDNN / oneDNN workspaces allocated inside a
kernel, and the caching allocator's fragmentation and reserve (``max_memory_reserved`` exceeds
``max_memory_allocated``).
"""

from __future__ import annotations

import math
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

import torch

from ..bench.memory import largest_fitting_near
from ..errors import ReadsValues, RuntimeFailure, UsageError, first_line
from .training import _Owners, _storage_key, check_trainable, freeze, stage_names, stage_of

CUDA_BLOCK = 512  # the caching allocator rounds every allocation up to 512 bytes
INCLUDED = ("parameters, buffers, input, gradients, optimizer state, activations and tensors saved for "
            "backward, autograd and optimizer temporaries")
INCLUDED_EVAL = "parameters, buffers, input, the activations and temporaries alive at once (no autograd)"
EXCLUDED = ("CUDA context and library handles, cuDNN/oneDNN workspaces inside kernels, allocator "
            "fragmentation and reserve")


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes of one step at batch N (``mode`` ``train``: a whole training step; ``eval``: one forward
    pass without autograd).

    Attributes:
        mode, batch, dtype (``fp32`` / ``bf16`` / ``fp16`` storage), amp (autocast dtype or None),
            optimizer (None for eval), channels_last.
        device_type: the allocator rules planned for (``cuda``: foreach optimizer, 512-byte blocks
            when this torch can fake CUDA tensors; ``cpu``).
        weights_bytes: parameters; buffers_bytes: BatchNorm statistics and other buffers;
            input_bytes: the input batch.
        gradients_bytes: a gradient per trainable parameter (0 for eval).
        optimizer_bytes: optimizer state (momentum buffer; AdamW's two moments and step counters).
        saved_bytes: distinct tensors the forward pass saves for backward (weights, buffers and the
            input excluded: they are counted above), at the end of the forward pass.
        saved_by_stage: stage -> saved bytes; saved_by_module: module path -> saved bytes, each module
            including its submodules (a tensor saved by several modules counts at the first).
        peak_bytes: the largest total of live tensors during the (second) step. The parts above are
            each at its own largest, not what is live at the peak (saved tensors are freed while
            gradients appear), so they can sum to more than ``peak_bytes``.
        peak_phase: ``forward``, ``backward`` or ``optimizer``: where that peak is reached.
        gpu_memory_bytes, fits, max_batch: with a memory budget: whether ``peak_bytes`` fits and the
            largest batch whose plan fits (searched by the plan itself; 0 when not even batch 1 fits).
        included, excluded: what the plan counts and what it leaves out.
    """

    mode: str
    batch: int
    dtype: str
    amp: Optional[str]
    optimizer: Optional[str]
    channels_last: bool
    device_type: str
    weights_bytes: int
    buffers_bytes: int
    input_bytes: int
    gradients_bytes: int
    optimizer_bytes: int
    saved_bytes: int
    peak_bytes: int
    peak_phase: str
    saved_by_stage: dict[str, int] = field(default_factory=dict)
    saved_by_module: dict[str, int] = field(default_factory=dict)
    gpu_memory_bytes: Optional[int] = None
    fits: Optional[bool] = None
    max_batch: Optional[int] = None
    included: str = INCLUDED
    excluded: str = EXCLUDED


def _fake_device(device_type: str) -> str:
    return "cuda" if device_type == "cuda" and torch.cuda.is_available() else "cpu"


def _nbytes(t: torch.Tensor, device_type: str) -> int:
    """Storage bytes, rounded as MemTracker rounds them (CUDA blocks only for tensors on CUDA)."""
    n = t.untyped_storage().nbytes()
    return math.ceil(n / CUDA_BLOCK) * CUDA_BLOCK if t.device.type == "cuda" else n


class _Saved:
    """Saved-tensor hooks: each distinct storage saved for backward, attributed to the innermost module
    running when it was saved (the first saver)."""

    def __init__(self, owners: _Owners, exclude: set, device_type: str):
        self.owners, self.exclude, self.device_type = owners, exclude, device_type
        self.by_module: dict[str, int] = {}
        self.keys: set = set()

    def pack(self, t):
        key = _storage_key(t)
        if isinstance(t, torch.Tensor) and key not in self.exclude and key not in self.keys:
            self.keys.add(key)
            owner = self.owners.stack[-1] if self.owners.stack else ""
            self.by_module[owner] = self.by_module.get(owner, 0) + _nbytes(t, self.device_type)
        return t

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)


def plan_memory(build: Callable[[], torch.nn.Module], input_shape: tuple[int, int, int, int], *,
                mode: str = "train", optimizer: str = "sgd", dtype: str = "fp32", amp: Optional[str] = None,
                channels_last: bool = False, device_type: str = "cuda", frozen: Iterable[str] = ()) -> MemoryPlan:
    """Plan one step of the network ``build()`` returns (called under ``FakeTensorMode``: no memory) for a
    (N, C, H, W) input. ``dtype`` / ``amp`` as :func:`..bench.train.parse_precision`; ``frozen``: stages
    or module paths to freeze (:func:`.training.freeze`); ``device_type``: ``cuda`` or ``cpu`` rules.

    Raises:
        UsageError: an unknown mode, optimizer, dtype or frozen name.
        RuntimeFailure: this torch has no ``torch.distributed`` (MemTracker lives there).
    """
    from ..bench.train import OPTIMIZERS, parse_precision

    try:
        from torch.distributed._tools.mem_tracker import MemTracker  # noqa: F401
    except ImportError as exc:  # pragma: no cover - torch built without distributed
        raise RuntimeFailure(f"the memory plan needs torch.distributed (MemTracker), missing here: {exc}") from None
    if mode not in ("train", "eval"):
        raise UsageError(f"pass {mode!r} is not one of: train, eval")
    if mode == "train" and optimizer not in OPTIMIZERS:
        raise UsageError(f"optimizer {optimizer!r} is not one of: {', '.join(OPTIMIZERS)}")
    try:
        dtype, amp = parse_precision(dtype, amp)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        return _plan(build, tuple(input_shape), mode, optimizer, dtype, amp, channels_last, device_type, frozen)
    except (RuntimeError, ValueError) as err:  # e.g. BatchNorm refusing one value per channel at batch 1
        first = first_line(err)
        at = f"input {'x'.join(map(str, input_shape))}"
        if _fake_tensor_limit(err):  # the message is a bare op name such as aten._local_scalar_dense.default
            raise ReadsValues(f"the memory plan cannot replay this {mode} step at {at}: the step reads a "
                                 f"tensor's value ({type(err).__name__} in {first}), which the plan's fake tensors "
                                 "do not have; " + _VALUE_ADVICE[mode]) from None
        raise RuntimeFailure(f"the {mode} step cannot run at {at}: {first}") from None


_VALUE_ADVICE = {  # what still works when the plan cannot replay a step (summary and bench both plan)
    "train": "bench --mode train still times the step (without the plan), summary without --pass train "
             "counts the forward pass",
    "eval": "summary without --gpu-memory/--dtype/--channels-last (no plan) still counts it, and bench times it",
}


def _fake_tensor_limit(err: BaseException) -> bool:
    """An error of FakeTensorMode itself: a data-dependent value or shape (:func:`.trace.reads_values`), or
    an op without a fake kernel."""
    from torch._subclasses import fake_tensor

    from .trace import reads_values

    unsupported = getattr(fake_tensor, "UnsupportedOperatorException", ())
    return reads_values(err) or isinstance(err, unsupported) or str(err).strip().startswith(("aten.", "prims."))


class _PlanScaler:
    """The fp16 AMP ``torch.amp.GradScaler`` as the plan replays it: the same tensors and kernels (a
    one-element fp32 scale and int32 growth tracker made on first use, ``loss * scale``, the in-place
    ``_amp_foreach_non_finite_check_and_unscale_`` of every gradient with its one-element ``found_inf``
    and ``inv_scale``, ``_amp_update_scale_``), but without GradScaler's data-dependent check
    (``found_inf.item()``, which fake tensors cannot answer): the optimizer step always runs, as it does
    on every step without an overflow, which is the larger case. The scaler's own memory is a few
    bytes (a 512-byte block each on CUDA), counted in the peak."""

    def __init__(self, device: str):
        self.device = device
        self._scale = self._growth = None

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        if self._scale is None:
            self._scale = torch.full((), 2.0 ** 16, dtype=torch.float32, device=self.device)
            self._growth = torch.zeros((), dtype=torch.int32, device=self.device)
        return loss * self._scale.to(loss.dtype)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        found_inf = torch.zeros(1, dtype=torch.float32, device=self.device)
        inv_scale = self._scale.double().reciprocal().float()
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        torch._amp_foreach_non_finite_check_and_unscale_(grads, found_inf, inv_scale)
        self._found_inf = found_inf
        optimizer.step()

    def update(self) -> None:
        torch._amp_update_scale_(self._scale, self._growth, self._found_inf, 2.0, 0.5, 2000)
        self._found_inf = None


def _plan(build, input_shape, mode, optimizer, dtype, amp, channels_last, device_type, frozen) -> MemoryPlan:
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker

    from ..bench.train import _TORCH, make_train_step

    fake_dev = _fake_device(device_type)
    batch = input_shape[0]
    with FakeTensorMode():
        model = _convert(build(), fake_dev, _TORCH[dtype], channels_last)
        freeze(model, frozen)
        if mode == "train":
            check_trainable(model, frozen)
        params, buffers = list(model.parameters()), list(model.buffers())
        exclude = {_storage_key(t) for t in params + buffers}
        owners = _Owners(model)
        saved = _Saved(owners, exclude, device_type)
        tracker = _tracker_class(MemTracker)()
        try:
            if mode == "train":
                step = make_train_step(model, optimizer, input_shape, dtype=dtype, amp=amp, channels_last=channels_last,
                                       foreach=device_type == "cuda", device=fake_dev)
                if step.scaler is not None:
                    step.scaler = _PlanScaler(fake_dev)
                exclude.add(_storage_key(step.input))
                # the first step, untracked, creates the optimizer state of the parameters that get a gradient
                # (torch's optimizers skip the others: a U-Net of depth 3 never runs its encoder's layer3/4)
                step()
                step.optimizer.zero_grad(set_to_none=True)
                step.loss = None
                tracker.track_external(model, step.optimizer, step.input)
                with tracker:  # the second step: the steady state that bench times
                    peak_phase, peak = _run_phases(tracker, step.phases, saved)
                inp = step.input
                grads = sum(_nbytes(p, device_type) for p in params if p.grad is not None)
                opt_bytes = sum(_nbytes(v, device_type) for state in step.optimizer.state.values()
                                for v in state.values() if isinstance(v, torch.Tensor))
            else:
                model.eval()
                inp = torch.empty(input_shape, device=fake_dev, dtype=_TORCH[dtype])
                if channels_last:
                    inp = inp.contiguous(memory_format=torch.channels_last)
                tracker.track_external(model, inp)

                def forward():
                    with torch.no_grad(), (torch.autocast(fake_dev, dtype=_TORCH[amp]) if amp else nullcontext()):
                        model(inp)
                with tracker:
                    peak_phase, peak = _run_phases(tracker, (("forward", forward),), None)
                grads = opt_bytes = 0
        finally:
            owners.remove()
        weights = sum(_nbytes(p, device_type) for p in params)
        buffer_bytes = sum(_nbytes(b, device_type) for b in buffers)
        input_bytes = _nbytes(inp, device_type)
    stages = stage_names(model)
    by_stage: Counter = Counter()
    by_module: Counter = Counter()
    for name, n in saved.by_module.items():
        by_stage[stage_of(name, stages) if name else "(network)"] += n
        parts = name.split(".") if name else []
        for owner in {"", *(".".join(parts[:i]) for i in range(1, len(parts) + 1))}:
            by_module[owner] += n
    return MemoryPlan(mode, batch, dtype, amp, optimizer if mode == "train" else None, channels_last, device_type,
                      weights, buffer_bytes, input_bytes, grads, opt_bytes, by_module.get("", 0), peak, peak_phase,
                      dict(by_stage), dict(by_module), included=INCLUDED if mode == "train" else INCLUDED_EVAL)


def _tracker_class(base):
    """MemTracker, keeping only the network's peak: its per-module peaks cost O(modules) per op (about
    60% of a plan's time for resnet50), and the plan does not use them; and taking frozen parameters
    (it would register a gradient hook on them, which torch refuses)."""
    from copy import deepcopy

    class NoHook:
        def remove(self) -> None:
            return None

    class TotalTracker(base):
        def _track_module_params_and_buffers(self, module, install_grad_hooks: bool = True):
            # MemTracker registers a gradient hook on every parameter, which torch refuses for frozen ones
            for p in module.parameters():
                if not p.requires_grad and self._param_to_grad_hook_handles.get(p, None) is None:
                    self._param_to_grad_hook_handles[p] = (NoHook(), NoHook())
            return super()._track_module_params_and_buffers(module, install_grad_hooks)

        def _update_peak_stats(self, peak_state) -> None:
            for dev, snap in self._curr_mem_snap.items():
                if self._peak_mem.get(dev, 0) < snap["Total"]:
                    self._peak_mem[dev] = snap["Total"]
                    self._peak_mem_snap[dev] = deepcopy(snap)

    return TotalTracker


def _convert(model: torch.nn.Module, device: str, dtype: torch.dtype, channels_last: bool) -> torch.nn.Module:
    """``model.to(device, dtype)`` (+ channels-last for 4-D weights) by replacing each tensor:
    ``Module.to`` cannot swap fake parameters in place."""
    def cast(t: torch.Tensor) -> torch.Tensor:
        t = t.detach().to(device=device, dtype=dtype if t.is_floating_point() else t.dtype)
        return t.contiguous(memory_format=torch.channels_last) if channels_last and t.dim() == 4 else t

    for mod in model.modules():
        for key, p in list(mod._parameters.items()):
            if p is not None:
                mod._parameters[key] = torch.nn.Parameter(cast(p), p.requires_grad)
        for key, b in list(mod._buffers.items()):
            if b is not None:
                mod._buffers[key] = cast(b)
    return model


def _run_phases(tracker, phases, saved: Optional[_Saved]) -> tuple[str, int]:
    """Run each phase; the peak (bytes) and the phase where it was last raised."""
    def peak_now() -> int:
        return sum(snap["Total"] for snap in tracker.get_tracker_snapshot("peak").values())

    best, where = peak_now(), phases[0][0]
    for name, fn in phases:
        with (saved.hooks() if saved is not None and name == "forward" else nullcontext()):
            fn()
        now = peak_now()
        if now > best:
            best, where = now, name
    return where, best


def with_budget(plan: MemoryPlan, budget: int, replan: Callable[[int], MemoryPlan],
                ceiling: Optional[int] = None) -> MemoryPlan:
    """``plan`` with ``fits`` and ``max_batch`` against ``budget`` bytes; ``replan(batch)`` plans another
    batch. The largest batch that fits is searched with real plans: a second plan at another batch
    gives a first guess (peaks grow about linearly with the batch), then plans at the guess and beside
    it, galloping (steps 1, 2, 4, ...: no low cap) and bisecting until a batch that fits sits next to one
    that does not (3-5 plans when the guess is right; the answer never rests on the guess). The search
    stops at ``ceiling`` (default :data:`..limits.MAX_BATCH`); ``max_batch == ceiling`` then means "at
    least this many". A batch that fits is never reported above its own ``max_batch``."""
    import dataclasses

    from ..limits import MAX_BATCH

    ceiling = MAX_BATCH if ceiling is None else ceiling
    known = {plan.batch: plan.peak_bytes}

    def peak(batch: int) -> float:
        if batch not in known:
            try:
                known[batch] = replan(batch).peak_bytes
            except RuntimeFailure:  # the step cannot run there (BatchNorm at batch 1 on a 1x1 map): no fit
                known[batch] = math.inf
        return known[batch]

    other = plan.batch * 2 if plan.batch * 2 <= ceiling else max(1, plan.batch // 2)
    b0, b1 = sorted((plan.batch, other))
    slope = (peak(b1) - peak(b0)) / (b1 - b0) if b1 != b0 else 0
    guess = b0 + (budget - peak(b0)) // slope if 0 < slope < math.inf else ceiling
    guess = int(min(max(guess, 1), ceiling))
    fits = plan.peak_bytes <= budget
    best = largest_fitting_near(lambda b: peak(b) <= budget, guess, ceiling)
    if fits:
        best = max(best, min(plan.batch, ceiling))
    return dataclasses.replace(plan, gpu_memory_bytes=budget, fits=fits, max_batch=best)
