"""Counting multiply-accumulates (MACs) with two engines. 1 MAC = 2 FLOPs.

What is counted
---------------
``count="conv-linear"`` (the default) is torchvision's convention: its published "GFLOPS" column is
GMACs (resnet50 at 224x224: 4,089,184,256). Every convolution layer (1-D and 2-D: ECA's channel conv
counts, as in the reference figures) costs ``N * C_out * H_out * W_out * (C_in / groups) * k_h * k_w``
and every linear layer ``N * in_features * out_features``. The blur pool (Zhang 2019; timm's
``BlurPool2d``) is a convolution with a fixed depthwise 3x3 filter and counts as one, 9 MACs per output
element, as fvcore and FlopCounterMode count timm's own network (timm 1.0.31's resnetblur18 at 224:
2,337,684,992). Nothing else counts: biases, norms, activations, max/average pooling, the residual add
and attention gates are 0, and :func:`describe` names each one that ran.

``count="all"`` adds every arithmetic op at the per-element costs of ptflops 0.7's PyTorch backend
(sovrasov/flops-counter.pytorch, ``ptflops/pytorch_ops.py``), where one operation on one element
counts as one MAC (so FLOPs = 2 x MACs holds for every column):

==============================================  =====================================  ==============================
op (family name)                                MACs                                   ptflops rule
==============================================  =====================================  ==============================
conv / linear bias (in ``conv`` / ``linear``)   1 per output element                   ``conv_flops_counter_hook``
BatchNorm, GroupNorm (``batch_norm``,           2 per input element (1 if not affine)  ``bn_flops_counter_hook``
``group_norm``)
ReLU, sigmoid (``relu``, ``sigmoid``)           1 per output element                   ``relu_flops_counter_hook``
max / average pool (``max_pool``,               1 per input element                    ``pool_flops_counter_hook``
``avg_pool``); global average pool and the SE
squeeze (``mean``)
residual add, attention gate (``add``, ``mul``)  1 per output element                   ``_elementwise_tensor_flops_hook``
blur pool (in ``conv``)                         9 per output element (its 3x3 filter)  ``conv_flops_counter_hook``
weight standardisation (``weight_std``, BiT's   1 per weight element, once per call      BatchNorm rule, not affine
``conv=std``)                                   (it does not depend on the batch)
pad, slice, view, flatten, transpose, clone     0 (data movement)
==============================================  =====================================  ==============================

ptflops has no sigmoid rule; we apply its activation rule. EvoNorm-S0 and FRN (``norm=evonorm|frn``)
are counted op by op: their ``mul``, ``add`` and ``sigmoid`` by the rules above, their statistics
(``var``, ``sqrt``, ``div``, ``square``, ``rsqrt``, ``maximum``) at 0, and named as such. In
``conv-linear`` a weight-standardised conv counts as the convolution it runs (``F.conv2d`` on the
standardised weight: fvcore sees ``aten::_convolution``), the standardisation 0. BatchNorm is costed as at inference
(a per-channel scale and shift), as both ptflops and fvcore (eval mode) do.

Engines
-------
``torch``: ``torch.utils.flop_counter.FlopCounterMode`` on the meta device at the true batch: no
memory, no compute, any input size. It counts 2 FLOPs per multiply-accumulate, so MACs = FLOPs / 2;
the per-element costs above are registered with it as ``custom_mapping`` formulas.

``fvcore``: ``fvcore.nn.FlopCountAnalysis``. It counts "one fused multiply-add as one flop" (its
docstring), so its "flops" are MACs and are reported as such. It traces the forward pass with
``torch.jit``, which cannot run on meta tensors; it traces an empty batch (N = 0) on the CPU instead,
where every op runs without compute or memory at any input size, and its handles read each traced
shape with the batch put back: a first dimension of size 0 is the batch and reads as N (every op of
these networks treats samples independently; an op on a tensor without the batch, such as building
the blur pool's filter, keeps its own shape and is counted once per call, as in a real pass). Its own
handles for batch_norm, group_norm and adaptive_avg_pool2d are replaced by the table above.
"""

from __future__ import annotations

import copy
import itertools
import math
import warnings
from collections import Counter
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from ..errors import RuntimeFailure, UsageError
from .trace import empty_cpu_copy, input_error

COUNTS = ("conv-linear", "all")
ENGINES = ("fvcore", "torch")
MATMUL = ("conv", "linear")

# family -> (MACs per element, counted on the op's "in"put or "out"put, index of the affine weight)
PER_ELEMENT = {
    "batch_norm": (2, "in", 1), "group_norm": (2, "in", 1),
    "relu": (1, "out", None), "sigmoid": (1, "out", None),
    "max_pool": (1, "in", None), "avg_pool": (1, "in", None), "mean": (1, "in", None),
    "add": (1, "out", None), "mul": (1, "out", None),
}
ORDER = ("conv", "linear", "bias", *PER_ELEMENT, "weight_std")
DATA_MOVEMENT = frozenset({
    "view", "reshape", "_unsafe_view", "flatten", "t", "transpose", "permute", "slice", "select", "pad",
    "clone", "copy", "contiguous", "expand", "unsqueeze", "squeeze", "empty", "detach", "alias", "to",
    "_to_copy", "cat", "stack", "size", "Int", "ScalarImplicit", "NumToTensor", "dropout", "split", "chunk",
    "narrow", "as_strided", "lift_fresh", "zeros", "ones", "full", "type_as", "expand_as", "reshape_as",
})

# aten op names (dispatcher ``aten.x.overload`` or jit ``aten::x``, in-place ``_`` removed) -> family
_FAMILY = {
    "convolution": "conv", "_convolution": "conv", "conv1d": "conv", "conv2d": "conv",
    "addmm": "linear", "mm": "linear", "linear": "linear", "matmul": "linear", "bmm": "linear", "einsum": "linear",
    "native_batch_norm": "batch_norm", "_native_batch_norm_legit_no_training": "batch_norm",
    "_native_batch_norm_legit": "batch_norm", "batch_norm": "batch_norm",
    "native_group_norm": "group_norm", "group_norm": "group_norm",
    "max_pool2d_with_indices": "max_pool", "max_pool2d": "max_pool", "max_pool1d": "max_pool",
    "avg_pool2d": "avg_pool", "avg_pool1d": "avg_pool",
    "adaptive_avg_pool2d": "mean", "_adaptive_avg_pool2d": "mean", "adaptive_avg_pool1d": "mean",
    "constant_pad_nd": "pad", "reflection_pad2d": "pad", "replication_pad2d": "pad",
}
_TORCH_OPS = {  # family -> dispatcher ops FlopCounterMode sees (on meta, after decomposition)
    "batch_norm": ("native_batch_norm", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit"),
    "group_norm": ("native_group_norm",), "relu": ("relu", "relu_"), "sigmoid": ("sigmoid", "sigmoid_"),
    "max_pool": ("max_pool2d_with_indices",), "avg_pool": ("avg_pool2d",), "mean": ("mean", "_adaptive_avg_pool2d"),
    "add": ("add", "add_"), "mul": ("mul", "mul_"),
}
_FVCORE_OPS = {  # jit op -> (family, fvcore handle name for conv/linear, input index of the bias)
    "aten::_convolution": ("conv", "conv_flop_jit", 2), "aten::linear": ("linear", "linear_flop_jit", 2),
    "aten::addmm": ("linear", "addmm_flop_jit", 0), "aten::mm": ("linear", "matmul_flop_jit", None),
    "aten::matmul": ("linear", "matmul_flop_jit", None), "aten::bmm": ("linear", "bmm_flop_jit", None),
    "aten::einsum": ("linear", "einsum_flop_jit", None),
}
_FVCORE_ELEMENTWISE = {
    "aten::batch_norm": ("batch_norm", 1), "aten::group_norm": ("group_norm", 2),
    **{f"aten::{op}": (family, None) for op, family in (
        ("relu", "relu"), ("relu_", "relu"), ("sigmoid", "sigmoid"), ("sigmoid_", "sigmoid"),
        ("max_pool2d", "max_pool"), ("avg_pool2d", "avg_pool"), ("adaptive_avg_pool2d", "mean"),
        ("mean", "mean"), ("add", "add"), ("add_", "add"), ("mul", "mul"), ("mul_", "mul"))},
}
# fvcore registers these by default; each gets a handle here so that it is counted or named, never dropped
_FVCORE_DEFAULTS = ("aten::layer_norm", "aten::instance_norm", "aten::upsample_nearest2d",
                    "aten::upsample_bilinear2d", "aten::grid_sampler")


@dataclass(frozen=True)
class MacCount:
    """The MACs of one forward pass of a (N, C, H, W) input.

    Attributes:
        engine: ``fvcore`` or ``torch``.
        count: ``conv-linear`` or ``all`` (see the module docstring).
        macs: total multiply-accumulates, batch N included.
        by_module: module path (``""`` = the network) -> {op family: MACs}, each module including
            the ops of its submodules and of all its calls.
        seen: family -> number of calls, for every op that ran (``bias`` counts conv/linear with a bias).
    """

    engine: str
    count: str
    macs: int
    by_module: dict[str, dict[str, int]]
    seen: dict[str, int]

    @property
    def by_op(self) -> dict[str, int]:
        """Op family -> MACs for the whole network."""
        return dict(self.by_module.get("", {}))


def op_family(op: str) -> str:
    """The family of an aten op: ``'aten.relu_.default'`` or ``'aten::relu_'`` -> ``'relu'``."""
    name = op.split("::")[-1]
    if name.startswith("aten."):
        name = name.split(".")[1]
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]
    return _FAMILY.get(name, name)


def describe(count: str, seen) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(counted, zero, data movement): the families of ``seen`` that ``count`` costs, those it
    counts as 0 MACs, and the data-movement ops (0 by definition), each in a stable order."""
    rank = {f: i for i, f in enumerate(ORDER)}
    counted, zero, moved = [], [], []
    for family in sorted(seen, key=lambda f: (rank.get(f, len(rank)), f)):
        if family in MATMUL or (count == "all" and (family in PER_ELEMENT or family in ("bias", "weight_std"))):
            counted.append(family)
        elif family in DATA_MOVEMENT:
            moved.append(family)
        else:
            zero.append(family)
    return tuple(counted), tuple(zero), tuple(moved)


def count_macs(model: torch.nn.Module, input_shape: tuple[int, ...], count: str = "conv-linear",
               engine: str = "torch") -> MacCount:
    """MACs of one eval-mode forward pass of ``model`` on a (N, C, H, W) input.

    ``model`` may live on any device; it is not changed. The torch engine runs a meta copy of it; fvcore
    traces it on an empty batch as it is when it is on the CPU, else an uninitialised CPU copy (an
    empty batch reads no weights). Raises:
        UsageError: an unknown ``count`` or ``engine``, or an input the network cannot take (the
            first failing layer and the nearest size that works).
    """
    _check_choice("count", count, COUNTS)
    _check_choice("flops engine", engine, ENGINES)
    input_shape = tuple(input_shape)
    try:
        if engine == "torch":
            result = _torch_count(_meta(model), input_shape, count)
        else:
            on_cpu = all(t.device.type == "cpu" for t in itertools.chain(model.parameters(), model.buffers()))
            result = _fvcore_count(model if on_cpu else empty_cpu_copy(model), input_shape, count)
        return _weight_std_family(model, result)
    except (RuntimeError, ValueError) as err:
        advice = "--flops-engine fvcore counts on an empty CPU batch instead" if engine == "torch" else None
        raise input_error(model, input_shape, err, advice) from None


def _weight_std_family(model: torch.nn.Module, result: MacCount) -> MacCount:
    """Count the standardisation of each weight-standardised conv (timm ``StdConv2d``: a batch norm
    over the conv's weight, Qiao et al. 2019) as the ``weight_std`` family: 1 MAC per weight element
    per call in ``--count all`` (the BatchNorm rule, not affine), 0 in ``conv-linear``. It is set from
    the module, not read from the trace: the empty-batch pass that fvcore traces skips the
    standardisation (it would read every weight), while the torch engine's meta pass runs it as a
    ``batch_norm``, which moves here."""
    from ..models.layers import StdConv2d

    convs = {name: m.weight.numel() for name, m in model.named_modules() if isinstance(m, StdConv2d)}
    ran = {name: n for name, n in convs.items() if result.by_module.get(name, {}).get("conv")}
    if not ran:
        return result
    by_module = {name: dict(ops) for name, ops in result.by_module.items()}
    for conv, numel in ran.items():
        traced = result.by_module[conv].get("batch_norm", 0)
        macs = numel if result.count == "all" else 0
        parts = conv.split(".")
        for owner in {"", *(".".join(parts[:i]) for i in range(1, len(parts) + 1))}:
            ops = by_module.setdefault(owner, {})
            if traced:
                ops["batch_norm"] -= traced
                if not ops["batch_norm"]:
                    del ops["batch_norm"]
            if macs:
                ops["weight_std"] = ops.get("weight_std", 0) + macs
    seen = dict(result.seen)
    if result.engine == "torch":  # its pass ran one batch_norm per standardised conv
        seen["batch_norm"] = seen.get("batch_norm", 0) - len(ran)
    seen["weight_std"] = seen.get("weight_std", 0) + len(ran)
    seen = {k: v for k, v in seen.items() if v > 0}
    return MacCount(result.engine, result.count, sum(by_module[""].values()), by_module, seen)


def conv_linear_macs(model: torch.nn.Module, input_shape: tuple[int, ...]) -> int:
    """Conv + linear MACs of one forward pass on a (N, C, H, W) input (torchvision's convention),
    counted by fvcore on an empty batch (no memory, no compute)."""
    return count_macs(model, input_shape, "conv-linear", "fvcore").macs


def _meta(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` itself if its parameters and buffers are all on the meta device, else a meta copy."""
    if all(t.is_meta for t in itertools.chain(model.parameters(), model.buffers())):
        return model
    return copy.deepcopy(model).to("meta")


def _check_choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(f"{what} {value!r} is not one of: {', '.join(allowed)}")


# ---------------------------------------------------------------------------------------- torch
class _Recorder(TorchDispatchMode):
    """Counts the families of the ops that reach the dispatcher (below FlopCounterMode)."""

    def __init__(self):
        super().__init__()
        self.seen: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        family = op_family(str(func))
        self.seen[family] += 1
        if family in MATMUL and _dispatch_bias(family, str(func), args) is not None:
            self.seen["bias"] += 1
        return func(*args, **kwargs)


def _dispatch_bias(family, name, args):
    if family == "conv":
        return args[2] if len(args) > 2 else None
    return args[0] if "addmm" in name else None


def _elementwise_formula(per: int, where: str, affine: int | None):
    def formula(*args, out_shape=None, **kwargs) -> int:
        shape = out_shape if where == "out" else next(a for a in args if isinstance(a, torch.Size))
        if not isinstance(shape, torch.Size):  # several outputs (batch_norm): the first is the result
            shape = shape[0]
        factor = 1 if affine is not None and (len(args) <= affine or args[affine] is None) else per
        return 2 * factor * math.prod(shape)  # FlopCounterMode counts FLOPs: 2 per MAC

    return formula


def _with_bias(packet, bias_index: int):
    base = flop_registry[packet]

    def formula(*args, out_shape=None, **kwargs) -> int:
        bias = 2 * math.prod(out_shape) if args[bias_index] is not None else 0
        return base(*args, out_val=out_shape, **kwargs) + bias

    return formula


def _torch_formulas(count: str) -> dict:
    if count != "all":
        return {}
    aten = torch.ops.aten
    mapping = {aten.convolution: _with_bias(aten.convolution, 2),
               aten._convolution: _with_bias(aten._convolution, 2), aten.addmm: _with_bias(aten.addmm, 0)}
    for family, ops in _TORCH_OPS.items():
        per, where, affine = PER_ELEMENT[family]
        for op in ops:
            mapping[getattr(aten, op)] = _elementwise_formula(per, where, affine)
    return mapping


def _torch_count(model: torch.nn.Module, input_shape: tuple[int, ...], count: str) -> MacCount:
    recorder = _Recorder()
    counter = FlopCounterMode(display=False, custom_mapping=_torch_formulas(count))
    x = torch.empty(input_shape, device="meta")  # made outside the modes: not an op of the network
    was_training = model.training
    model.eval()
    try:
        # the recorder is entered first, so it sits below the counter and sees the decomposed ops
        with recorder, counter, torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
    root = type(model).__name__
    by_module: dict[str, dict[str, int]] = {}
    for key, ops in counter.get_flop_counts().items():
        if key != root and not key.startswith(root + "."):
            continue  # 'Global': the same ops again
        families: Counter = Counter()
        for packet, flops in ops.items():
            families[op_family(str(packet))] += flops // 2
        by_module[key[len(root) + 1:]] = dict(families)
    by_module.setdefault("", {})
    return MacCount("torch", count, sum(by_module[""].values()), by_module, dict(recorder.seen))


# --------------------------------------------------------------------------------------- fvcore
class _Batched:
    """A traced value (``torch._C.Value``), or its type or node, seen through the empty-batch trace:
    ``sizes()`` reads a first dimension of size 0 as ``batch``, and what it hands out (``type()``,
    ``node()``, ``inputs()``: how fvcore's handles reach shapes) is seen the same way."""

    def __init__(self, traced, batch: int):
        self._traced, self._batch = traced, batch

    def __getattr__(self, name):
        return getattr(self._traced, name)

    def type(self):
        return _Batched(self._traced.type(), self._batch)

    def node(self):
        return _Batched(self._traced.node(), self._batch)

    def inputs(self):
        return [_Batched(v, self._batch) for v in self._traced.inputs()]

    def sizes(self):
        sizes = self._traced.sizes()
        if 0 in sizes[1:]:  # the batch moved (a transpose): reading it back would count it as 0
            raise RuntimeFailure(f"fvcore's count reads the batch from the first dimension, but a traced "
                                 f"tensor has shape {sizes}; count with --flops-engine torch")
        return [self._batch, *sizes[1:]] if sizes and sizes[0] == 0 else sizes


def _fvcore_handles(count: str, seen: Counter, batch: int) -> dict:
    from fvcore.nn import jit_analysis, jit_handles

    def batched(handle):
        def with_batch(inputs, outputs):
            return handle([_Batched(v, batch) for v in inputs], [_Batched(v, batch) for v in outputs])

        return with_batch

    def matmul_handle(family, base, bias_index):
        def handle(inputs, outputs):
            seen[family] += 1
            macs = base(inputs, outputs)
            macs = sum(macs.values()) if isinstance(macs, Counter) else macs
            if bias_index is not None and jit_handles.get_shape(inputs[bias_index]) is not None:
                seen["bias"] += 1
                if count == "all":
                    macs += math.prod(jit_handles.get_shape(outputs[0]))
            return Counter({family: int(macs)})

        return handle

    def elementwise_handle(family, affine):
        per, where, _ = PER_ELEMENT[family]

        def handle(inputs, outputs):
            shape = jit_handles.get_shape(inputs[0] if where == "in" else outputs[0])
            if shape is None:  # arithmetic on Python numbers (traced shapes), not on tensors
                return Counter()
            seen[family] += 1
            factor = 1 if affine is not None and jit_handles.get_shape(inputs[affine]) is None else per
            return Counter({family: factor * math.prod(shape) if count == "all" else 0})

        return handle

    def named_zero(op):
        def handle(inputs, outputs):
            if any(jit_handles.get_shape(v) is not None for v in itertools.chain(inputs, outputs)):
                seen[op_family(op)] += 1  # only ops on tensors, not the tracer's shape arithmetic
            return Counter()

        return handle

    handles = {op: matmul_handle(family, getattr(jit_handles, base), bias)
               for op, (family, base, bias) in _FVCORE_OPS.items()}
    handles.update({op: elementwise_handle(family, affine) for op, (family, affine) in _FVCORE_ELEMENTWISE.items()})
    # fvcore drops the ops of its private ignore list (views, flatten, relu, ...) without a word:
    # a handle for each makes it named in the note (relu keeps the handle above)
    ignored = getattr(jit_analysis, "_IGNORED_OPS", set())
    zero_ops = set(_FVCORE_DEFAULTS) | {f"aten::{op}" for op in DATA_MOVEMENT} | set(ignored)
    handles.update({op: named_zero(op) for op in zero_ops if op not in handles})
    return {op: batched(handle) for op, handle in handles.items()}


def _fvcore_count(model: torch.nn.Module, input_shape: tuple[int, ...], count: str) -> MacCount:
    """fvcore's count on an empty batch of ``model`` (on the CPU), read at batch ``input_shape[0]``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fvcore's import calls the deprecated torch.jit.script
        from fvcore.nn import FlopCountAnalysis

    seen: Counter = Counter()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit's deprecation and tracer warnings
            analysis = FlopCountAnalysis(model, torch.zeros((0, *input_shape[1:]), device="cpu"))
            analysis.set_op_handle(**_fvcore_handles(count, seen, input_shape[0]))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
            per_module = analysis.by_module_and_operator()
            for op, calls in analysis.unsupported_ops().items():
                seen[op_family(op)] += calls
    finally:
        model.train(was_training)
    by_module = {name: {family: int(macs) for family, macs in ops.items()} for name, ops in per_module.items()}
    by_module.setdefault("", {})
    return MacCount("fvcore", count, sum(by_module[""].values()), by_module, dict(seen))
