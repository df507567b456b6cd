"""Per-layer summary of a ResNet at any input size: shapes, parameters, MACs/FLOPs, receptive field,
cumulative stride and memory, as typed records (:class:`Summary`, :class:`LayerRecord`); and
:func:`compare` for several variants side by side (:class:`Comparison`).

How the numbers are made (nothing here needs the memory or compute of a real forward pass):

* The per-module walk is one forward pass through ``torchinfo.summary`` (rows, depth, output shapes),
  run by :func:`.trace.trace` (first-call receptive field and stride, calls) with our hooks for the
  activation bytes. It runs on the CPU on an empty batch (N = 0) with uninitialised weights:
  CPU kernels give every output shape with no compute and no activation memory, and without the
  Python meta kernels whose first use imports ``torch._dynamo`` and sympy (2-3 s here). Shapes are
  reported for the true batch N: every op of these networks treats samples independently, and every
  network resnet-cli builds takes an empty batch (tested for each variant).
* MACs come from one engine (:func:`.flops.count_macs`; fvcore traces the walk's empty-batch copy)
  and are attributed to modules by the engine itself. A row's MACs include its submodules and all
  its calls; ops a container runs in its own ``forward`` (the residual add, the SE squeeze and gate
  under ``count="all"``) get an ``(ops)`` row of their own, so the leaf rows add up to the total;
  that row also holds the parameters the container owns itself (timm's norm + activation layers,
  ``BatchNormAct2d``, keep their weights beside their ``act`` child).
* Parameters: each parameter is counted once, at the first row (in call order) that owns it, so
  shared modules and tied weights are not counted twice; rows include their submodules.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections import Counter
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch

from ..errors import RuntimeFailure, UsageError
from ..limits import MAX_BATCH, check_int
from ..models import ResNetSpec, build_model
from .flops import COUNTS, ENGINES, conv_linear_macs, count_macs, describe
from .network import check_forward, first_rf_note, inferred_output_stride, network_hw, open_network
from .trace import GLOBAL, tensors, trace

DTYPE, BYTES_PER_ELEMENT = "float32", 4  # the input; parameters and activations use their own
#: ``--dtype`` values that cast the whole network (weights, buffers, input; so its activations): the dtype
#: the memory estimate then uses. ``fp32`` and ``amp`` (autocast: fp32 weights) keep float32.
CAST_DTYPES = {"bf16": ("bfloat16", 2), "fp16": ("float16", 2)}


@dataclass(frozen=True)
class LayerRecord:
    """One row: a module (or the ``(ops)`` its container runs itself) at batch N.

    Attributes:
        name: module path (``layer1.0.conv1``); ``<container>.(ops)`` for ops run in a container's forward.
        type: class name (``Conv2d``), or the op families of an ``(ops)`` row (``add``).
        depth: 1 for children of the network, +1 per level.
        output_shape: (N, C, H, W) or (N, C) of the first call's output; None for ``(ops)`` rows.
        kernel_size, layer_stride: the module's own kernel and stride (convs and pools), else None.
        params: parameters of the module and its submodules, each shared parameter counted once.
        trainable_params: those of ``params`` with ``requires_grad``.
        macs: multiply-accumulates of all calls, submodules included (1 MAC = 2 FLOPs).
        macs_percent: ``macs`` as a percentage of the network's total.
        receptive_field: theoretical receptive field side, in input pixels, of the first call's
            output; None when global (after global pooling or for ``(ops)`` rows).
        stride: cumulative stride (input pixels between neighbouring outputs) there; None when global.
        calls: how many times the module ran in one forward pass (torchvision's shared ReLU: 2 or 3).
        is_leaf: no row below it in this listing (with ``depth``, a folded module is a leaf); the
            leaf rows' params and MACs add up to the totals.
        forward_macs, backward_input_macs, backward_weight_macs, optimizer_macs, saved_bytes: with
            ``--pass train`` only (else None): the training step's MACs of the module (submodules
            included; see :mod:`.training`) and the bytes it saves for backward (:mod:`.memory_plan`).
        receptive_field_note: why ``receptive_field`` and ``stride`` are not known here (``after
            aten::lstm in rnn``: an op outside the RF rule ran before), else None.
    """

    name: str
    type: str
    depth: int
    output_shape: Optional[tuple[int, ...]]
    kernel_size: Optional[tuple[int, ...]]
    layer_stride: Optional[tuple[int, ...]]
    params: int
    trainable_params: int
    macs: int
    macs_percent: float
    receptive_field: Optional[int]
    stride: Optional[int]
    calls: int
    is_leaf: bool
    forward_macs: Optional[int] = None
    backward_input_macs: Optional[int] = None
    backward_weight_macs: Optional[int] = None
    optimizer_macs: Optional[int] = None
    saved_bytes: Optional[int] = None
    receptive_field_note: Optional[str] = None


@dataclass(frozen=True)
class MemoryEstimate:
    """Memory of one forward pass in ``dtype``, in bytes.

    Attributes:
        input_bytes: the (N, C, H, W) input.
        param_bytes, buffer_bytes: weights; BatchNorm running statistics and other buffers.
        activation_bytes: every distinct tensor a leaf module outputs (in-place results and views
            counted once), i.e. what a forward pass holds when all of it is kept for backward.
        training_bytes: estimate for one training step with Adam: input + 4 x param_bytes (weights,
            gradients, two moment buffers) + buffers + activations. Excludes the framework's
            workspaces, temporaries and allocator overhead.
    """

    dtype: str
    input_bytes: int
    param_bytes: int
    buffer_bytes: int
    activation_bytes: int
    training_bytes: int


@dataclass(frozen=True)
class Summary:
    """Everything ``resnet-cli summary`` shows (``--format json`` is this record plus ``schema_version``).

    Attributes:
        variant: the name given (or ``custom``); spec: the spec string that rebuilds it.
        input_size: (N, C, H, W).
        total_params, trainable_params, non_trainable_params: each parameter counted once.
        macs: multiply-accumulates of one forward pass, batch N; flops: 2 x macs.
        count: ``conv-linear`` or ``all``; engine: the engine that counted.
        counted_ops, zero_ops, data_movement_ops: op families that ran, split into counted, counted
            as 0 MACs under ``count``, and data movement (0 by definition).
        macs_by_op: op family -> MACs.
        note: one line saying what was counted.
        output_stride: input pixels per pixel of the last feature map (for a module that is not a
            ResNetSpec: the largest cumulative stride traced; None when not known).
        memory: see :class:`MemoryEstimate`.
        layers: the rows, in call order (parents before children).
        mode: ``eval`` (one forward pass) or ``train`` (``--pass train``).
        train: with ``--pass train``: the training step (``analysis.train_summary.TrainingSummary``:
            its MACs and memory plan); None otherwise.
        memory_plan: with ``--pass eval`` and ``dtype``/``gpu_memory``: the inference memory plan
            (``analysis.memory_plan.MemoryPlan``); None otherwise.
        notes: what was inferred or could not be computed (the input size chosen for a module, a
            receptive field that stopped), one line each.
    """

    variant: str
    spec: str
    input_size: tuple[int, int, int, int]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    macs: int
    flops: int
    count: str
    engine: str
    counted_ops: tuple[str, ...]
    zero_ops: tuple[str, ...]
    data_movement_ops: tuple[str, ...]
    macs_by_op: dict[str, int]
    note: str
    output_stride: Optional[int]
    memory: MemoryEstimate
    layers: tuple[LayerRecord, ...]
    mode: str = "eval"
    train: Optional[object] = None
    memory_plan: Optional[object] = None
    notes: tuple[str, ...] = ()


def summarize(name_or_spec: Union[str, ResNetSpec, torch.nn.Module], input_size=None, batch: int = 1,
              depth: Optional[int] = None, count: str = "conv-linear", engine: str = "fvcore", *,
              label: Optional[str] = None, mode: str = "eval", optimizer: str = "sgd", dtype: Optional[str] = None,
              amp: Optional[str] = None, channels_last: bool = False, freeze: Optional[str] = None,
              gpu_memory: Optional[int] = None) -> Summary:
    """Summarize a variant name, spec string, :class:`ResNetSpec`, ``file.py:factory`` / ``timm:NAME``
    text (:mod:`resnet_cli.models.external`) or ``torch.nn.Module`` at (batch, C, H, W).

    Args:
        input_size: H, (H, W) or ``"HxW"``; for a module also (C, H, W) (default: what the module
            tells, else its first conv's in_channels and 224 x 224, said in ``notes``); default: the
            variant's own input size.
        batch: N >= 1. depth: keep rows down to this depth (None: all); deeper rows fold into their parent.
        count: ``conv-linear`` (torchvision's convention) or ``all`` (see :mod:`.flops`).
        engine: ``fvcore`` (traces an empty batch: any size) or ``torch`` (FlopCounterMode on the meta
            device; its first use in a process imports ``torch._dynamo``, seconds). Same numbers.
        label: the name to show (default: the name given, or ``custom`` for a spec).
        mode: ``eval`` (default: the forward pass) or ``train``: adds the training step (``train``:
            forward, backward w.r.t. input and weights, optimizer MACs, per layer too, and the memory
            plan; :mod:`.train_summary`). ``optimizer``, ``freeze`` (``"stem,layer1"``): train only.
        dtype, amp, channels_last: the memory plan's precision (``fp32``/``bf16``/``fp16``/``amp``) and
            layout; gpu_memory: bytes for the fits/max-batch verdict. With ``mode="eval"`` a ``dtype``,
            ``gpu_memory`` or ``channels_last`` adds the inference memory plan (``memory_plan``).

    Raises:
        UsageError: an unknown variant, a bad size, batch, depth, count or engine, or an input the
            network cannot take (the first failing layer and the nearest size that works).
        RuntimeFailure: a module's factory or forward pass raised (see :func:`.network.check_forward`);
            :class:`~resnet_cli.errors.ReadsValues` when a pass on meta/fake tensors (``--pass train``, the
            torch engine, the memory plan) meets a forward that reads a tensor's value.
    """
    net = open_network(name_or_spec, name=label, input_size=input_size)
    h, w = network_hw(net, input_size)
    if not isinstance(batch, int) or batch < 1:
        raise UsageError(f"batch {batch!r} must be a positive integer (1 or more)")
    check_int("batch", batch, 1, MAX_BATCH)
    if depth is not None and (not isinstance(depth, int) or depth < 0):
        raise UsageError(f"depth {depth!r} must be 0 or more (0 shows the totals only)")
    for what, value, allowed in (("count", count, COUNTS), ("flops engine", engine, ENGINES)):
        if value not in allowed:
            raise UsageError(f"{what} {value!r} is not one of: {', '.join(allowed)}")
    if mode not in ("eval", "train"):
        raise UsageError(f"pass {mode!r} is not one of: eval, train")
    if mode == "train" and count != "conv-linear":
        raise UsageError("--pass train counts convolutions and linear layers (forward and backward); "
                         "--count all applies to --pass eval")
    shape = (batch, net.in_chans, h, w)
    check_forward(net, shape)
    notes = net.notes
    output_stride = net.spec.output_stride if net.spec is not None else None
    model = net.model
    cast = CAST_DTYPES.get(dtype)  # --dtype bf16/fp16 casts the network and input: the estimate in that dtype
    if mode == "train" and freeze:  # the table's trainable / non-trainable counts are those of the step
        from .training import freeze as freeze_modules, parse_freeze

        model = copy.deepcopy(model)
        freeze_modules(model, parse_freeze(freeze))
    try:
        summary = _summarize_model(model, net.name, net.spec_string, shape, depth, count, engine, output_stride,
                                   cast)
    except RuntimeFailure as err:
        if not _fvcore_cannot_batch(net, engine, err):
            raise
        summary = _summarize_model(model, net.name, net.spec_string, shape, depth, count, "torch", output_stride,
                                   cast)
        notes += (FVCORE_FALLBACK,)
    result = dataclasses.replace(summary, notes=notes + summary.notes)
    if mode == "eval" and dtype is None and gpu_memory is None and not channels_last:
        return result
    from .train_summary import train_plan, train_summary

    rebuild = _rebuild(net)
    precision = dict(dtype=dtype or "fp32", amp=amp, channels_last=channels_last, gpu_memory=gpu_memory)
    if mode == "eval":
        plan = train_plan(rebuild, result.input_size, mode="eval", **precision)
        return dataclasses.replace(result, memory_plan=plan)
    train, fields = train_summary(net.model, rebuild, result.input_size, optimizer=optimizer,
                                  freeze=freeze, **precision)
    from .train_summary import add_own_rows

    layers = add_own_rows(tuple(dataclasses.replace(r, **fields.get(r.name, {})) for r in result.layers), fields)
    return dataclasses.replace(result, mode="train", train=train, layers=layers)


def _rebuild(net):
    """Builds ``net``'s module again (the memory plan calls it under FakeTensorMode): the spec's builder,
    or the user's factory; a module handed to the API is copied."""
    import copy

    if net.spec is not None:
        return lambda: build_model(net.spec)
    if net.source is not None and net.source.kind != "object":
        return net.source.build
    return lambda: copy.deepcopy(net.model)


@dataclass(frozen=True)
class CompareRecord:
    """One variant in :func:`compare`.

    Attributes:
        macs, flops: conv + linear MACs (torchvision's convention) at batch 1 and ``input_size``; FLOPs = 2 x MACs.
        input_size: (H, W) the MACs are for. default_input_size: the variant's own (C, H, W).
        conv_layers: convolution modules (stem, blocks, shortcut projections, attention convs).
        stage_channels: output channels of each stage. output_stride: input pixels per last-stage pixel.
    """

    variant: str
    params: int
    macs: int
    flops: int
    input_size: tuple[int, int]
    default_input_size: tuple[int, int, int]
    conv_layers: int
    stage_channels: tuple[int, ...]
    output_stride: int


@dataclass(frozen=True)
class Comparison:
    """Variants side by side; ``note`` says how the MACs were counted."""

    note: str
    variants: tuple[CompareRecord, ...]


def compare(names: Sequence[Union[str, ResNetSpec, torch.nn.Module]], input_size=None) -> Comparison:
    """Params, MACs at ``input_size`` (default: each variant's own), conv layers, stage channels,
    output stride and default input size of each variant (built on the meta device; MACs by fvcore on an
    empty batch, :func:`.flops.conv_linear_macs`). A network that is not a ResNetSpec (a module, a
    ``file.py:factory`` text) gets its stage channels and output stride from the trace (the stages of
    :func:`.stages.encoder_stages`: the last module at each cumulative stride).

    Raises:
        UsageError: no variants, an unknown variant, a bad size, or a size a variant cannot take.
    """
    if not names:
        raise UsageError("compare needs at least one variant, e.g. 'resnet-cli compare resnet18 resnet50'")
    rows = []
    for item in names:
        net = open_network(item)
        h, w = network_hw(net, input_size)
        model, shape = net.model, (1, net.in_chans, h, w)
        check_forward(net, shape)
        try:
            macs = conv_linear_macs(model, shape)
        except RuntimeFailure as err:
            if not _fvcore_cannot_batch(net, "fvcore", err):
                raise
            macs = count_macs(model, shape, "conv-linear", "torch").macs
        convs = sum(isinstance(m, torch.nn.modules.conv._ConvNd) for m in model.modules())
        if net.spec is not None:
            channels, stride = tuple(net.spec.stage_channels), net.spec.output_stride
        else:
            from .module_stages import module_stages

            stages = module_stages(model, trace(model, shape), h, w, net.in_chans)[0][1:]
            channels, stride = tuple(s.channels for s in stages), max((s.stride for s in stages), default=1)
        rows.append(CompareRecord(net.name, sum(p.numel() for p in model.parameters()), macs, 2 * macs, (h, w),
                                  tuple(net.input_size), convs, channels, stride))
    note = ("MACs: convolutions and linear layers only (torchvision's convention), batch 1, "
            "counted by fvcore; FLOPs = 2 x MACs")
    return Comparison(note, tuple(rows))


# ------------------------------------------------------------------------------------ internals
FVCORE_FALLBACK = ("MACs by the torch engine (FlopCounterMode): fvcore's empty-batch trace cannot find the batch "
                   "of this module (a tensor whose first dimension is not the batch, such as an LSTM's "
                   "(layers, N, hidden) state)")


def _fvcore_cannot_batch(net, engine: str, err: Exception) -> bool:
    """Whether fvcore failed only because a traced tensor of a user's module has no leading batch."""
    return net.spec is None and engine == "fvcore" and "reads the batch from the first dimension" in str(err)


def _summarize_model(model: torch.nn.Module, name: str, spec_string: str, shape: tuple[int, int, int, int],
                     depth: Optional[int], count: str, engine: str, output_stride: Optional[int],
                     cast: Optional[tuple[str, int]] = None) -> Summary:
    """The summary of ``model`` at ``shape`` (N, C, H, W); ``output_stride`` None: inferred from the trace.
    ``cast``: (dtype name, bytes per element) that floating-point tensors take in the memory estimate, as
    ``model.to(dtype)`` casts floating parameters and buffers only (None: as they are, float32 input)."""
    walk = _walk(model, shape, cast[1] if cast else None)
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    size = (lambda t: cast[1] if t.is_floating_point() else t.element_size()) if cast else \
        (lambda t: t.element_size())
    param_bytes = sum(p.numel() * size(p) for p in params)
    buffer_bytes = sum(b.numel() * size(b) for b in model.buffers())
    # fvcore traces the walk's empty-batch CPU copy (no second copy); torch copies to meta itself
    macs = count_macs(walk.cpu_model if engine == "fvcore" else model, shape, count, engine)
    counted, zero, moved = describe(count, macs.seen)
    layers = _layers(model, walk, macs.by_module, macs.macs, depth)
    input_bytes = math.prod(shape) * (cast[1] if cast else BYTES_PER_ELEMENT)
    memory = MemoryEstimate(cast[0] if cast else DTYPE, input_bytes, param_bytes, buffer_bytes, walk.activation_bytes,
                            input_bytes + 4 * param_bytes + buffer_bytes + walk.activation_bytes)
    if output_stride is None:
        output_stride = inferred_output_stride(walk.traced)
    rf_note = first_rf_note(walk.traced)
    return Summary(name, spec_string, shape, total, trainable, total - trainable, macs.macs, 2 * macs.macs,
                   count, macs.engine, counted, zero, moved, macs.by_op, _note(count, counted, zero, moved),
                   output_stride, memory, layers, notes=(rf_note,) if rf_note else ())


def _note(count: str, counted, zero, moved) -> str:
    how = ("torchvision's convention" if count == "conv-linear"
           else "ptflops' per-element costs, 1 op = 1 MAC; conv/linear include bias adds")
    parts = [f"MACs count {', '.join(counted) or 'nothing'} ({how})"]
    if zero:
        parts.append(f"0 MACs: {', '.join(zero)}")
    if moved:
        parts.append(f"data movement, 0: {', '.join(moved)}")
    return "; ".join(parts) + "; FLOPs = 2 x MACs"


@dataclass
class _Row:
    name: str
    depth: int
    type: str
    output_shape: Optional[tuple[int, ...]]


@dataclass
class _Walk:
    cpu_model: Optional[torch.nn.Module]  # the copy walked: on the CPU, uninitialised weights
    rows: list
    traced: dict  # name -> trace.TracedModule: first-call receptive field and stride, calls
    activation_bytes: int


def _walk(model: torch.nn.Module, shape: tuple[int, ...], float_bytes: Optional[int] = None) -> _Walk:
    """One empty-batch forward pass (:func:`.trace.trace`) driven by ``torchinfo.summary`` for the
    rows, with hooks of our own for the activation bytes at batch N."""
    import torchinfo
    from torchinfo import torchinfo as torchinfo_impl

    walk = _Walk(None, [], {}, 0)

    def run(empty: torch.nn.Module, x: torch.Tensor) -> None:
        walk.cpu_model = empty
        names = {m: n for n, m in empty.named_modules()}
        kept: dict[int, torch.Tensor] = {}  # keeps outputs alive so that their ids stay unique

        def count_bytes(module, inputs, output):  # distinct leaf outputs: in-place results and views once
            t = next(tensors((output,), {}), None)
            base = None if t is None else (t if t._base is None else t._base)
            if base is not None and id(base) not in kept:
                kept[id(base)] = base
                each = float_bytes if float_bytes and t.is_floating_point() else t.element_size()
                walk.activation_bytes += shape[0] * math.prod(t.shape[1:]) * each

        entered: dict[str, int] = {}  # first entry order: torchinfo misplaces modules shared across parents

        def enter(module, args):
            entered.setdefault(names[module], len(entered))

        leaves = [m for m in empty.modules() if next(m.children(), None) is None]
        handles = [m.register_forward_hook(count_bytes) for m in leaves]
        handles += [m.register_forward_pre_hook(enter) for m in empty.modules()]
        try:
            stats = torchinfo.summary(empty, input_data=[x], device=x.device, verbose=0, mode="eval")
        except RuntimeError as err:  # torchinfo wraps the network's own error
            raise (err.__cause__ if isinstance(err.__cause__, (RuntimeError, ValueError)) else err) from None
        finally:
            for h in handles:
                h.remove()
            torchinfo_impl.clear_cached_forward_pass()  # torchinfo keeps every summary in a global otherwise
        done = {empty}
        for info in stats.summary_list:
            if info.module in done:
                continue  # a later call of a module already listed
            done.add(info.module)
            out = tuple(info.output_size) if info.output_size else None
            out = (shape[0], *out[1:]) if out else None
            name = names[info.module]
            walk.rows.append(_Row(name, name.count(".") + 1, info.class_name, out))
        walk.rows.sort(key=lambda row: entered.get(row.name, len(entered)))
        for m, name in names.items():  # modules the forward pass never ran still own parameters
            if m not in done:
                walk.rows.append(_Row(name, name.count(".") + 1, type(m).__name__, None))

    walk.traced = trace(model, shape, run)
    # torchinfo shows the first tensor of a list output (a U-Net encoder's [input, stem, ..., deepest]);
    # the trace, whose RF and stride the row shows, reads the last: take its shape, so the three agree
    for row in walk.rows:
        if row.name in walk.traced and row.output_shape is not None:
            row.output_shape = walk.traced[row.name].output_shape
    return walk


def _pair(value) -> Optional[tuple[int, ...]]:
    if value is None:
        return None
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value), int(value))


def _parents_first(rows: list) -> list:
    """``rows`` with each container before its descendants. torchinfo lists a container that is never
    called itself (smp's ``decoder.blocks``, a ModuleList) after its children: sorted by the first position
    in its subtree, then by depth, such a row moves to just before its first child; a listing already in
    that order stays as it is."""
    first: dict[str, int] = {}
    for i, row in enumerate(rows):
        parts = row.name.split(".")
        for k in range(1, len(parts) + 1):
            first.setdefault(".".join(parts[:k]), i)
    return sorted(rows, key=lambda r: (first[r.name], r.name.count(".")))


def _layers(model, walk: _Walk, by_module: dict, total_macs: int, depth: Optional[int]) -> tuple[LayerRecord, ...]:
    modules = dict(model.named_modules())  # the walk may have run a copy, whose tied weights are untied
    own, own_trainable, assigned = Counter(), Counter(), set()
    direct, direct_trainable = Counter(), Counter()  # a container's own parameters (timm's BatchNormAct2d)
    for row in walk.rows:
        for p in modules[row.name].parameters(recurse=False):
            if id(p) not in assigned:
                assigned.add(id(p))
                direct[row.name] += p.numel()
                direct_trainable[row.name] += p.numel() * p.requires_grad
                parts = row.name.split(".")
                for i in range(1, len(parts) + 1):  # the owner and each of its ancestors
                    own[".".join(parts[:i])] += p.numel()
                    own_trainable[".".join(parts[:i])] += p.numel() * p.requires_grad
    children = {n: [f"{n}.{c}" if n else c for c, _ in m.named_children()] for n, m in modules.items()}
    records: list[LayerRecord] = []

    def percent(macs: int) -> float:
        return 100.0 * macs / total_macs if total_macs else 0.0

    def close(name: str, parent_depth: int) -> None:
        """After a container's last descendant: a row for the ops its own forward ran, if any."""
        rest = Counter(by_module.get(name, {}))
        for child in children[name]:
            rest.subtract(by_module.get(child, {}))
        rest = {f: v for f, v in rest.items() if v}
        if children[name] and (rest or direct[name]):  # its own ops, and the parameters they use
            macs = sum(rest.values())
            records.append(LayerRecord(f"{name}.(ops)" if name else "(ops)",
                                       "+".join(sorted(rest)) or "own parameters", parent_depth + 1, None, None,
                                       None, direct[name], direct_trainable[name], macs, percent(macs), None,
                                       None, walk.traced[name].calls if name in walk.traced else 1, True))

    open_rows: list[tuple[str, int]] = [("", 0)]
    for row in _parents_first(walk.rows):
        while len(open_rows) > 1 and not row.name.startswith(open_rows[-1][0] + "."):
            close(*open_rows.pop())
        m = modules[row.name]
        traced = walk.traced.get(row.name)
        rf, stride = (traced.receptive_field, traced.stride) if traced else (GLOBAL, GLOBAL)
        macs = sum(by_module.get(row.name, {}).values())
        kernel = _pair(getattr(m, "kernel_size", None))
        shape = row.output_shape or (traced.output_shape if traced else None)  # torchinfo misses some shared-module parents
        records.append(LayerRecord(row.name, row.type, row.depth, shape, kernel,
                                   _pair(getattr(m, "stride", None)) if kernel else None, own[row.name],
                                   own_trainable[row.name], macs, percent(macs), rf, stride,
                                   traced.calls if traced else 0, True,
                                   receptive_field_note=traced.rf_note if traced else None))
        open_rows.append((row.name, row.depth))
    while open_rows:
        close(*open_rows.pop())
    shown = [r for r in records if depth is None or r.depth <= depth]
    # a row is a leaf of this listing when the next row is not below it (with depth, folded rows are)
    return tuple(dataclasses.replace(r, is_leaf=i + 1 == len(shown) or not shown[i + 1].name.startswith(r.name + "."))
                 for i, r in enumerate(shown))
