"""One forward pass of an empty batch that records, for every module, its output shape, receptive
field and cumulative stride; and the one-line errors for inputs a network cannot take.

Receptive field (RF) here is the theoretical one (Araujo et al. 2019, "Computing Receptive Fields
of Convolutional Neural Networks", eq. 1-2): the side, in input pixels, of the input region that can
affect one output element. A k x k op with dilation d and stride s maps ``(rf, jump)`` to
``(rf + (k - 1) * d * jump, jump * s)``; padding does not enter. Where branches meet (the residual
add) the larger RF wins. Global pooling makes the RF the whole input (``None``). Channel
attention (SE, ECA) multiplies a feature map by a globally pooled gate; the gate re-weights channels
and is not counted as spatial context, so the RF of ``x * gate`` is the RF of ``x``.

The rule holds for networks built from convolutions, pools and per-position ops: element-wise ops,
norms, and linear layers, which act on the last axis only (taken to be channels, as in ConvNeXt's
channels-last MLP and a ViT's per-token layers); views, permutes and transposes only move elements and
pass, and a mean, sum, max, variance or standard deviation over the last axes is a global statistic
(EvoNorm's group std of a reshaped map). An op that mixes positions in another way (matmul or
attention, an LSTM or GRU, fold/unfold, pixel shuffle) stops it: from there on the RF is not known
(:class:`Stopped`, "n/a after aten::lstm in rnn.lstm") rather than guessed.

Nearest upsampling by a whole factor f (a U-Net decoder) keeps the RF and divides the cumulative
stride by f (each output copies one input; a k x k conv after it spans (k - 1) / f input steps);
where the factor is not whole, or the stride does not divide by it, the RF is not defined
(``UNDEFINED`` on the tensor, None in the records) from there on.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from ..errors import ReadsValues, ResnetCliError, RuntimeFailure, UsageError, first_line

GLOBAL = None  # receptive field of a globally pooled tensor: the whole input
UNDEFINED = ("undefined", "undefined")  # tag of a tensor whose RF and stride have no value (a fractional resize)


@dataclass(frozen=True)
class Stopped:
    """The receptive field after an op the rule does not cover: ``reason`` is ``after aten::OP in MODULE``."""

    reason: str


@dataclass(frozen=True)
class TracedModule:
    """What one module produced in the traced forward pass.

    Attributes:
        name: module path (``layer1.0.conv1``); ``""`` is the whole model.
        type: class name.
        output_shape: (N, C, H, W) or (N, C) of the first tensor output.
        receptive_field: RF side in input pixels at this output; None when global (after pooling).
        stride: cumulative stride (input pixels between neighbouring outputs); None when global.
        calls: how many times the module ran; shape, RF and stride are those of the first call.
        rf_note: why the RF and stride are not known there (``after aten::lstm in rnn``), else None.
        input_stride: cumulative stride of the first call's first tensor input (where the RF rule
            stopped: read from its sides, see :func:`shape_stride`); None when global or not known.
    """

    name: str
    type: str
    output_shape: tuple[int, ...]
    receptive_field: int | None
    stride: int | None
    calls: int
    rf_note: Optional[str] = None
    input_stride: Optional[int] = None


def _pair(v) -> int:
    return max(v) if isinstance(v, (tuple, list)) else int(v)


def _arg(args, kwargs, index: int, name: str, default):
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


_WINDOW_OPS = {F.max_pool2d, F.avg_pool2d, torch.max_pool2d, torch._C._nn.avg_pool2d}
_GLOBAL_OPS = {F.adaptive_avg_pool2d, F.adaptive_max_pool2d, torch.adaptive_avg_pool1d}


# Ops that mix positions other than through a window (on a map that is not globally pooled) and
# reshapes that may move H or W: the RF rule stops there (torch function names).
_MIXING = {"matmul", "__matmul__", "__rmatmul__", "bmm", "mm", "einsum", "baddbmm", "addmm",
           "lstm", "gru", "rnn_tanh", "rnn_relu", "scaled_dot_product_attention", "multi_head_attention_forward",
           "unfold", "fold", "pixel_shuffle", "pixel_unshuffle", "fft_fft2", "fft_rfft2"}


class RFMode(TorchFunctionMode):
    """Tags each tensor produced by a torch function with ``_rf`` = (receptive field, cumulative
    stride), from the ``_rf`` of its tensor inputs; tag the network's input with (1, 1) first.
    ``where`` is the stack of running module names (kept by :func:`trace`), for the reason of a stop."""

    def __init__(self):
        super().__init__()
        self.where: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not isinstance(out, (torch.Tensor, tuple, list)):
            return out  # size(), numel(), flags: most calls in a torchinfo walk, nothing to tag
        ins = [t for t in tensors(args, kwargs) if hasattr(t, "_rf")]
        if not ins:
            return out
        if any(t._rf is UNDEFINED for t in ins):
            for t in tensors((out,), {}):
                t._rf = UNDEFINED
            return out
        stopped = next((t._rf for t in ins if isinstance(t._rf[0], Stopped)), None)
        if (func is F.interpolate and not stopped and ins[0]._rf[0] is not GLOBAL
                and isinstance(out, torch.Tensor)):
            for t in tensors((out,), {}):
                t._rf = self._resize(ins[0], out)
            return out
        spatial = [t._rf for t in ins if t._rf[0] is not GLOBAL]
        if stopped:
            rf = stopped
        elif not spatial:
            rf = (GLOBAL, GLOBAL)
        else:
            rf = (max(r for r, _ in spatial), max(j for _, j in spatial))
            rf = self._stop(func, args, out) or self._step(func, args, kwargs, rf)
        for t in tensors((out,), {}):
            t._rf = rf
        return out

    def _stop(self, func, args, out):
        """(Stopped, None) when ``func`` is outside the RF rule on a spatial map, else None."""
        name = getattr(func, "__name__", "")
        if name not in _MIXING:
            return None
        where = self.where[-1] if self.where and self.where[-1] else "the network's own forward"
        return Stopped(f"after aten::{name.strip('_')} in {where}"), None

    @staticmethod
    def _resize(x: torch.Tensor, out: torch.Tensor):
        """(RF, stride) after resizing ``x`` to ``out``'s spatial size: see the module docstring."""
        r, j = x._rf
        factors = {o // i if i and o % i == 0 else 0 for i, o in zip(x.shape[2:], out.shape[2:])}
        if len(factors) != 1 or 0 in factors or j % next(iter(factors)):
            return UNDEFINED
        return r, j // next(iter(factors))

    @staticmethod
    def _step(func, args, kwargs, rf):
        r, j = rf
        if func in (torch.conv2d, F.conv2d, torch.conv1d, F.conv1d):
            weight = _arg(args, kwargs, 1, "weight", None)
            if func in (torch.conv1d, F.conv1d):
                return rf  # ECA's channel conv: no spatial extent
            k = max(weight.shape[-2:])
            s, d = _pair(_arg(args, kwargs, 3, "stride", 1)), _pair(_arg(args, kwargs, 5, "dilation", 1))
            return r + (k - 1) * d * j, j * s
        if func in _WINDOW_OPS:
            k = _pair(_arg(args, kwargs, 1, "kernel_size", 1))
            s = _arg(args, kwargs, 2, "stride", None)
            s = k if s in (None, [], ()) else _pair(s)
            d = _pair(_arg(args, kwargs, 4, "dilation", 1)) if func in (F.max_pool2d, torch.max_pool2d) else 1
            return r + (k - 1) * d * j, j * s
        if func in _GLOBAL_OPS:
            out_size = _arg(args, kwargs, 1, "output_size", 1)
            return (GLOBAL, GLOBAL) if _pair(out_size) == 1 else rf
        if func in (torch.Tensor.mean, torch.mean, torch.Tensor.amax, torch.amax, torch.Tensor.sum, torch.sum,
                    torch.Tensor.var, torch.var, torch.Tensor.std, torch.std, torch.var_mean, torch.std_mean):
            dims = _arg(args, kwargs, 1, "dim", None)
            dims = (dims,) if isinstance(dims, int) else tuple(dims or ())
            return (GLOBAL, GLOBAL) if any(d in (2, 3, -1, -2) for d in dims) else rf
        if func is torch.Tensor.__getitem__:
            index = args[1] if len(args) > 1 else ()
            steps = [i.step for i in (index if isinstance(index, tuple) else (index,))
                     if isinstance(i, slice) and i.step not in (None, 1)]
            return (r, j * max(steps)) if steps else rf
        return rf


def shape_stride(size, out) -> Optional[int]:
    """Input pixels per output pixel from the sides alone, for a (H, W) input and an (N, C, H', W')
    map's (H', W'): the power of two nearest to H / H', when the width agrees (an NHWC or other layout
    does not); None otherwise."""
    import math

    (h, w), (mh, mw) = tuple(size), tuple(out)
    if mh < 1 or mw < 1:
        return None
    sh, sw = (2 ** round(math.log2(max(side / o, 1))) for side, o in ((h, mh), (w, mw)))
    return sh if sh == sw else None


def tensors(args, kwargs):
    """Every tensor in ``args`` and ``kwargs``, nested lists and tuples included (the last first)."""
    stack = list(args) + list(kwargs.values())
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            yield item
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def batched_tensor(value) -> Optional[torch.Tensor]:
    """The tensor of a module's output (or inputs) whose RF and shape a row shows: the last one whose
    first dimension is the empty batch (a U-Net encoder's deepest map; an LSTM's output, not its
    (layers, N, hidden) states), else the last tensor; None when there is none."""
    found = list(tensors((value,), {}))
    return next((t for t in found if t.dim() and t.shape[0] == 0), found[0] if found else None)


def empty_cpu_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` on the CPU whose weights take no memory, for empty-batch (N = 0) passes
    that read no weight element. Shared parameters stay shared; ``model`` is not changed.

    * Linear layers' parameters (and any tensor the allocator cannot even reserve) are one zero
      element expanded to the full shape (a zero-stride view, ``Tensor.expand``): the classifier of
      ``resnet18(num_classes=1000000000)`` takes 4 bytes, not the 2 TB an empty tensor would ask
      for. A matrix product with an empty batch never copies it.
    * Other tensors are uninitialised (``torch.empty``): address space only, no resident memory
      until an op writes them. Convolution kernels copy a non-contiguous weight to a contiguous one
      on every call (four times slower traces), so they keep real, if untouched, storage.
    """
    # Module.to_empty would call empty_like on meta tensors, a Python reference whose first use
    # imports sympy (seconds); torch.zeros/torch.empty straight on the CPU do not.
    copied = copy.deepcopy(model)
    made: dict[int, torch.Tensor] = {}

    def zero_stride(t):
        return torch.zeros((), dtype=t.dtype, device="cpu").expand(t.shape)

    def empty(t):
        try:
            return torch.empty(t.shape, dtype=t.dtype, device="cpu")
        except RuntimeError:  # more than the machine can reserve ("DefaultCPUAllocator: can't allocate")
            return zero_stride(t)

    for module in copied.modules():
        linear = isinstance(module, torch.nn.Linear)
        for key, p in module._parameters.items():
            if p is not None:
                if id(p) not in made:
                    made[id(p)] = torch.nn.Parameter(zero_stride(p) if linear else empty(p),
                                                     requires_grad=p.requires_grad)
                module._parameters[key] = made[id(p)]
        for key, b in module._buffers.items():
            if b is not None:
                module._buffers[key] = empty(b)
    return copied


def trace(model: torch.nn.Module, input_shape: tuple[int, ...],
          run: Optional[Callable[[torch.nn.Module, torch.Tensor], object]] = None) -> dict[str, TracedModule]:
    """Record every module's output shape, receptive field and cumulative stride for a (N, C, H, W)
    input, in call order, from one forward pass of an empty batch (N = 0) through a CPU copy of
    ``model`` that allocates no weights (:func:`empty_cpu_copy`): no compute and no memory at any size. Shapes are reported for batch N
    (every op of these networks treats samples independently). ``model`` is not changed.

    ``run(copy, x)`` makes the forward pass (default ``copy(x)``); the summary's walk passes one that
    runs it through torchinfo and adds hooks of its own to ``copy``.

    Raises:
        UsageError: the input is too small for some layer (names the first one and the nearest
            size that works) or its channels disagree with the first conv.
    """
    records: dict[str, TracedModule] = {}
    empty = empty_cpu_copy(model).eval()
    names = {m: n for n, m in empty.named_modules()}

    def hook(module, inputs, output):
        first = batched_tensor(output)
        if first is None:
            return
        r, j = getattr(first, "_rf", (GLOBAL, GLOBAL))
        note = r.reason if isinstance(r, Stopped) else None
        if note or (r, j) == UNDEFINED:
            r = j = None
        name = names[module]
        if name in records:  # a module run twice (torchvision's shared relu): keep the first call, as torchvision hooks report
            records[name] = dataclasses.replace(records[name], calls=records[name].calls + 1)
        else:
            shape = (input_shape[0], *first.shape[1:]) if first.dim() else tuple(first.shape)
            records[name] = TracedModule(name, type(module).__name__, shape, r, j, 1, note, entry_strides.get(name))

    mode = RFMode()
    entry_strides: dict[str, Optional[int]] = {}

    def enter(module, args):
        mode.where.append(names[module])
        first = batched_tensor(args)
        if names[module] not in entry_strides and first is not None:
            rf, jump = getattr(first, "_rf", (GLOBAL, GLOBAL))
            if isinstance(rf, Stopped):
                jump = shape_stride(input_shape[2:], first.shape[2:]) if first.dim() == 4 else None
            entry_strides[names[module]] = jump

    def leave(module, args, output):
        if mode.where:
            mode.where.pop()

    handles = [m.register_forward_hook(hook) for m in empty.modules()]
    handles += [m.register_forward_pre_hook(enter) for m in empty.modules()]
    handles += [m.register_forward_hook(leave) for m in empty.modules()]
    try:
        x = torch.empty((0, *input_shape[1:]), device="cpu")
        x._rf = (1, 1)
        with mode, torch.no_grad():
            (run or (lambda m, t: m(t)))(empty, x)
    except (RuntimeError, ValueError) as err:
        raise input_error(model, input_shape, err) from None
    finally:
        for h in handles:
            h.remove()
    return records


def reads_values(err: BaseException) -> bool:
    """Whether ``err`` says the forward pass read a tensor's value (``if y.sum() > 0``, ``.item()``,
    ``.tolist()``), which a meta tensor or FakeTensorMode cannot answer: they carry shapes, not values."""
    try:
        from torch._subclasses import fake_tensor

        kinds = tuple(getattr(fake_tensor, n) for n in ("DataDependentOutputException", "DynamicOutputShapeException")
                      if hasattr(fake_tensor, n))
    except ImportError:  # pragma: no cover
        kinds = ()
    text = str(err)
    return isinstance(err, kinds) or "on meta tensors" in text or "_local_scalar_dense" in text \
        or "data-dependent" in text.lower()


def value_error(err: BaseException, where: str, advice: str) -> ReadsValues:
    """The one-line error for a forward pass that reads a tensor's value during an analysis on meta or
    fake tensors (exit 1: no input size is to blame); ``where``: what ran (``the training MACs``),
    ``advice``: what works instead."""
    return ReadsValues(f"the forward pass reads a tensor's value ({first_line(err)}), and {where} runs on "
                       f"meta/fake tensors, which have shapes but no values; this is not about the input size: "
                       f"{advice}")


def input_error(model: torch.nn.Module, input_shape: tuple[int, ...], err: Exception,
                advice: Optional[str] = None) -> ResnetCliError:
    """Turn a failed forward pass into a one-line error: the first failing layer, what failed there
    (an empty output, or a residual add whose branch and shortcut shapes differ, with both shapes),
    and the nearest (H, W) that works (:func:`nearest_working_size`).

    A forward pass that reads a tensor's value (:func:`reads_values`) is no size problem: that is a
    :class:`RuntimeFailure` (exit 1) naming ``advice`` (what works instead; a default if None), and so is
    a failure at a size the empty-batch probe finds working."""
    if reads_values(err):
        return value_error(err, "this analysis", advice or "a forward pass on real tensors (bench) still runs it")
    n, c, h, w = input_shape
    model = empty_cpu_copy(model).eval()  # the probes below run empty batches, as trace() does
    expected = getattr(getattr(model, "spec", None), "in_chans", c)
    if c != expected:
        return UsageError(f"input has {c} channels but the network's first conv takes {expected}; "
                          f"use --in-chans {c} or an input with {expected} channels")
    failing, op, shapes = _first_failing_module(model, input_shape)
    nearest = nearest_working_size(model, input_shape)
    if nearest == (h, w):  # the size works on an empty CPU batch: what failed is not the size
        return RuntimeFailure(f"the forward pass fails at input {h}x{w} in this analysis, though an empty CPU "
                              f"batch of that size runs, so the size is not the cause: {first_line(err)}"
                              + (f"; {advice}" if advice else ""))
    hint = f"; the nearest size that works is {nearest[0]}x{nearest[1]}" if nearest else ""
    where = f"layer '{failing}'" if failing else "the forward pass"
    if op in _ADD_OPS and len(shapes) == 2 and shapes[0] != shapes[1]:
        a, b = ("x".join(map(str, s[1:])) for s in shapes)  # C x H x W: the batch plays no part
        block = type(dict(model.named_modules()).get(failing)).__name__ if failing else ""
        if block in _RESIDUAL_BLOCKS:  # our blocks compute ``branch + shortcut`` in that order
            what = f"the residual branch gives {a} but the shortcut gives {b} (C x H x W)"
        else:
            what = f"an add gets {a} and {b} (C x H x W)"
        return UsageError(f"input {h}x{w} does not fit this network: in block '{failing}' {what}, "
                          f"so the residual add fails{hint}")
    message = str(err).splitlines()[0] if str(err) else type(err).__name__
    if "should be less than the corresponding" in message:  # reflect padding (the blur pool's)
        return UsageError(f"input {h}x{w} is too small: {where} needs a larger input for its reflect padding{hint}")
    if any(k in message for k in ("too small", "non-positive", "empty")):
        return UsageError(f"input {h}x{w} is too small: {where} would produce an empty output{hint}")
    return UsageError(f"input {h}x{w} fails in {where}: {message}{hint}")


_ADD_OPS = ("__add__", "__radd__", "__iadd__", "add", "add_")
_RESIDUAL_BLOCKS = ("BasicBlock", "Bottleneck", "PreActBasic", "PreActBottleneck")
def _runs(model, shape) -> bool:
    """Whether ``model`` (on the CPU) takes an empty batch of (C, H, W) = ``shape[1:]``."""
    try:
        with torch.no_grad():
            model(torch.empty((0, *shape[1:]), device="cpu"))
        return True
    except (RuntimeError, ValueError):
        return False


class _FailWatch(TorchFunctionMode):
    """Remembers the first torch function that raised, and the shapes of its tensor arguments."""

    def __init__(self):
        super().__init__()
        self.op: str | None = None
        self.shapes: list[tuple[int, ...]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        try:
            return func(*args, **(kwargs or {}))
        except (RuntimeError, ValueError):
            if self.op is None:
                self.op = getattr(func, "__name__", str(func))
                self.shapes = [tuple(a.shape) for a in args if isinstance(a, torch.Tensor)]
            raise


def _first_failing_module(model, input_shape) -> tuple[str | None, str | None, list[tuple[int, ...]]]:
    """(deepest module that started but never finished, name of the torch op that raised, shapes of
    that op's tensor arguments in call order)."""
    names = {m: n for n, m in model.named_modules()}
    done: set[str] = set()
    entered: list[str] = []

    def pre(module, args):
        entered.append(names[module])

    def post(module, args, out):
        done.add(names[module])

    handles = [m.register_forward_pre_hook(pre) for m in model.modules()]
    handles += [m.register_forward_hook(post) for m in model.modules()]
    watch = _FailWatch()
    try:
        with watch:
            _runs(model, input_shape)
    finally:
        for h in handles:
            h.remove()
    failed = [n for n in entered if n not in done and n]
    failing = max(failed, key=lambda n: n.count(".")) if failed else None
    return failing, watch.op, watch.shapes


def nearest_working_size(model, input_shape, max_distance: int = 64) -> tuple[int, int] | None:
    """The (H, W) nearest to ``input_shape``'s for which an empty-batch forward pass of ``model`` (on
    the CPU) succeeds, each side searched on its own (a tie goes to the larger size: padding keeps
    every pixel); None if no side within ``max_distance`` pixels works.

    Sides are probed with square inputs (s, s): our networks use square kernels, strides and
    paddings, so a side length that works for H works for W. A module that is not ours (no ``spec``)
    may treat H and W differently: H is first probed with W as given, then W with that H.
    """
    n, c, h, w = input_shape
    works: dict[tuple[int, int], bool] = {}

    def ok(sh: int, sw: int) -> bool:
        if (sh, sw) not in works:
            works[(sh, sw)] = _runs(model, (1, c, sh, sw))
        return works[(sh, sw)]

    def nearest(side: int, probe) -> int | None:
        for d in range(max_distance + 1):
            for s in (side + d, side - d):
                if s >= 1 and probe(s):
                    return s
        return None

    best_h = best_w = None
    if getattr(model, "spec", None) is None:
        best_h = nearest(h, lambda s: ok(s, w))
        best_w = nearest(w, lambda s: ok(best_h or h, s))
    best_h = best_h or nearest(h, lambda s: ok(s, s))
    best_w = best_w or nearest(w, lambda s: ok(s, s))
    if best_h is None or best_w is None or not ok(best_h, best_w):
        return None
    return best_h, best_w
