"""Training-step MACs: forward, backward (w.r.t. inputs and w.r.t. weights, apart) and optimizer step,
per module, counted over a real backward pass on the meta device (no memory, true batch N).

How it is counted
-----------------
* ``torch.utils.flop_counter.FlopCounterMode`` (its formulas, 2 FLOPs per MAC) sees every aten op of
  one forward pass, the cross-entropy loss and ``loss.backward()`` on meta tensors. Convolutions and
  linear layers count (torchvision's convention, as ``summary``'s default); norms, activations,
  pooling, adds and the loss count 0 in both directions.
* ``aten.convolution_backward`` computes the input gradient and the weight gradient as its
  ``output_mask`` asks; each part is counted apart and each costs the forward convolution's MACs: the
  input gradient by FlopCounterMode's formula, the weight gradient by :func:`_conv_weight_grad_macs`
  (FlopCounterMode's omits the groups: ``groups`` times too many for ResNeXt's grouped 3x3). A
  backward matrix product that reads a weight is the input gradient of a linear layer; one that reads
  none is a weight gradient when its result has the shape of a trainable matrix of the module running
  it (W or W^T), else an input (activation) gradient, such as attention's products.
* Autograd leaves out what no one needs: the input batch does not require grad, so the stem's first
  convolution computes no input gradient; a frozen module (``requires_grad=False``) computes no
  weight gradient, and below the first trainable module nothing computes an input gradient.
* Attribution: FlopCounterMode's module tracker cannot tell which module a backward op belongs to
  once a module's input needs no gradient (its backward never "ends", so later ops land on it too).
  Instead, every autograd node created in the forward pass is tagged with the modules that were
  running (a ``TorchFunctionMode``), and a pre-hook on the node makes those modules current while
  the backward engine runs it: exact for every op.
* Optimizer step: one MAC per element per arithmetic op that the step runs on a parameter-sized
  tensor (1 op on 1 element = 1 MAC, the ``--count all`` convention), counted by a dispatch mode over
  the second (steady-state) step on meta tensors; scalar bookkeeping (step counters, bias
  corrections) is not counted. Per parameter element: SGD 1 (``p -= lr g``), SGD with momentum 3
  (``buf = 0.9 buf + g``: 2; ``p -= lr buf``: 1), AdamW 8 (decay 1, first moment 1, second moment 2,
  sqrt, divide and eps 3, update 1).
"""

from __future__ import annotations

import copy
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable, Optional

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from ..errors import UsageError
from .flops import DATA_MOVEMENT, op_family

KINDS = ("forward", "backward_input", "backward_weight")
_aten = torch.ops.aten
_MATMUL = {_aten.mm, _aten.addmm, _aten.bmm, _aten.baddbmm}
_CONV = {_aten.convolution, _aten._convolution}


@dataclass(frozen=True)
class TrainMacs:
    """MACs of one training step at batch N (1 MAC = 2 FLOPs).

    Attributes:
        forward_macs, backward_input_macs, backward_weight_macs, optimizer_macs: totals.
        optimizer_macs_per_element: the optimizer's MACs per trainable parameter element.
        by_module: module path (``""`` = the network) -> {``forward``, ``backward_input``,
            ``backward_weight``, ``optimizer``: MACs}, each module including its submodules.
        frozen: the module paths whose parameters were frozen.
    """

    forward_macs: int
    backward_input_macs: int
    backward_weight_macs: int
    optimizer_macs: int
    optimizer_macs_per_element: int
    by_module: dict[str, dict[str, int]]
    frozen: tuple[str, ...]

    @property
    def total_macs(self) -> int:
        """Forward + backward + optimizer MACs of the step."""
        return self.forward_macs + self.backward_input_macs + self.backward_weight_macs + self.optimizer_macs


# ------------------------------------------------------------------------------ stages and freezing
def stage_names(model: torch.nn.Module) -> dict[str, str]:
    """Module path -> stage, for the top-level children: ResNet stages (``layer1``..) keep their name; the
    children before the first stage are the ``stem``, those after the last the ``head``. timm's ResNetV2
    keeps its stages in one ``stages`` Sequential: its children are the stages (``stages.0``.., timm's
    ``feature_info`` names). A network without such stages keeps its top-level names."""
    paths = []
    for name, child in model.named_children():
        if name == "stages" and isinstance(child, torch.nn.Sequential):
            paths += [f"stages.{c}" for c, _ in child.named_children()]
        else:
            paths.append(name)
    stages = [i for i, n in enumerate(paths) if (n.startswith("layer") and n[5:].isdigit()) or n.startswith("stages.")]
    if not stages:
        return {n: n for n in paths}
    first, last = stages[0], stages[-1]
    return {n: ("stem" if i < first else "head" if i > last else n) for i, n in enumerate(paths)}


def stage_of(name: str, stages: dict[str, str]) -> str:
    """The stage of a module path (``layer1.0.conv1`` -> ``layer1``, ``stages.2.blocks.0`` -> ``stages.2``;
    ``""`` -> ``""``)."""
    parts = name.split(".")
    for path in (".".join(parts[:2]), parts[0]):
        if path in stages:
            return stages[path]
    return parts[0]


def parse_freeze(text: Optional[str]) -> tuple[str, ...]:
    """``"stem,layer1"`` -> ``("stem", "layer1")`` (empty items rejected).

    Raises:
        UsageError: an empty item.
    """
    if text is None:
        return ()
    items = [t.strip() for t in str(text).split(",")]
    if any(not t for t in items):
        raise UsageError(f"--freeze {text!r} has an empty item; give module or stage names separated by commas, "
                         "e.g. stem,layer1")
    return tuple(dict.fromkeys(items))


def freeze(model: torch.nn.Module, names: Iterable[str]) -> tuple[str, ...]:
    """Set ``requires_grad=False`` on the parameters of each named stage (``stem``, ``layer1``, ``head``)
    or module path (``layer2.0.conv1``); returns the module paths frozen.

    Raises:
        UsageError: a name that is neither a stage nor a module of this network (the stages are listed).
    """
    stages = stage_names(model)
    modules = dict(model.named_modules())
    done: list[str] = []
    for item in names:
        if item in modules and item:
            targets = [item]
        else:
            targets = [top for top, stage in stages.items() if stage == item]
        if not targets:
            choices = ", ".join(dict.fromkeys(stages.values()))
            paths = [name for name in modules if name]
            example = next((name for name in paths if name.count(".") == 2), paths[-1] if paths else "")
            raise UsageError(f"--freeze {item!r} is not a stage or module of this network; stages: {choices} "
                             f"(or a module path such as {example})")
        for t in targets:
            for p in modules[t].parameters():
                p.requires_grad_(False)
            done.append(t)
    return tuple(dict.fromkeys(done))


def parameters_without_gradient(model: torch.nn.Module, input_shape: tuple[int, ...]) -> tuple[str, ...]:
    """Names of the trainable parameters that a training step leaves without a gradient (those of a module
    the forward pass never runs, such as the encoder stages below a shallow U-Net's depth), found by one
    forward and backward pass of a meta copy of ``model`` on a (N, C, H, W) input: no memory, no compute.
    ``DistributedDataParallel`` needs ``find_unused_parameters=True`` for a network that has any."""
    meta = copy.deepcopy(model).to("meta").train()
    out = meta(torch.empty(input_shape, device="meta"))
    outputs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor) and t.requires_grad]
    if outputs:
        sum(t.float().sum() for t in outputs).backward()  # any scalar of the outputs reaches the same weights
    return tuple(n for n, q in meta.named_parameters() if q.requires_grad and q.grad is None)


def check_trainable(model: torch.nn.Module, frozen: Iterable[str] = ()) -> None:
    """Refuse a training step with no trainable parameter (torch's optimizers refuse an empty list).

    Raises:
        UsageError: ``nothing left to train: ...`` naming what was frozen (or that there are no parameters).
    """
    params = list(model.parameters())
    if any(p.requires_grad for p in params):
        return
    if not params:
        raise UsageError("nothing left to train: this network has no parameters, so a training step has no "
                         "optimizer step; use --pass eval (or bench --mode eval)")
    frozen = tuple(frozen)
    why = (f"--freeze {','.join(frozen)} freezes every parameter" if frozen
           else "every parameter of this network has requires_grad=False")
    raise UsageError(f"nothing left to train: {why}; freeze fewer stages or modules")


# ----------------------------------------------------------------------------------- attribution
class _Owners(TorchFunctionMode):
    """Tags each autograd node made in the forward pass with the modules running at the time, and
    makes them current while backward runs the node."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.stack: list[str] = []
        self.current: tuple[str, ...] = ()
        self.in_backward = False
        self._nodes: dict[int, object] = {}  # id -> node (kept alive so ids stay unique)
        self._handles = []
        for name, m in model.named_modules():
            if name:
                self._handles.append(m.register_forward_pre_hook(self._enter(name)))
                self._handles.append(m.register_forward_hook(self._leave(name), always_call=True))

    def _enter(self, name):
        def hook(module, args):
            self.stack.append(name)
        return hook

    def _leave(self, name):
        def hook(module, args, output):
            if self.stack and self.stack[-1] == name:
                self.stack.pop()
        return hook

    def forward_owners(self) -> tuple[str, ...]:
        return tuple(self.stack)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        owners = tuple(self.stack)
        for t in tree_flatten(out)[0]:
            node = getattr(t, "grad_fn", None) if isinstance(t, torch.Tensor) else None
            if node is not None and id(node) not in self._nodes:
                self._nodes[id(node)] = node
                node.register_prehook(self._set(owners))
        return out

    def _set(self, owners):
        def prehook(grad_outputs):
            self.current = owners
        return prehook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._nodes.clear()


def _storage_key(t) -> Optional[int]:
    try:
        return t.untyped_storage()._cdata
    except (RuntimeError, NotImplementedError, AttributeError):
        return None


class _TrainCounter(FlopCounterMode):
    """FlopCounterMode whose counts are split by kind (forward / backward w.r.t. input / w.r.t. weight)
    and attributed to modules by :class:`_Owners`."""

    def __init__(self, owners: _Owners, weights: set, weight_shapes: dict):
        super().__init__(display=False)
        self.owners, self.weights, self.weight_shapes = owners, weights, weight_shapes
        self.split: dict[str, Counter] = defaultdict(Counter)

    def _add(self, kind: str, flops: int) -> None:
        names = self.owners.current if self.owners.in_backward else self.owners.forward_owners()
        # to the innermost running module and every module its path lies in, as the forward MACs and the
        # parameters are summed (a ModuleList is never called, yet holds its blocks' counts)
        parts = names[-1].split(".") if names and names[-1] else []
        for name in {"", *(".".join(parts[:i]) for i in range(1, len(parts) + 1))}:
            self.split[name][kind] += flops // 2

    def _count_flops(self, func_packet, out, args, kwargs):
        registry = self.flop_registry
        if func_packet not in registry:
            return out
        if not self.owners.in_backward:
            if func_packet in _CONV or func_packet in _MATMUL:
                self._add("forward", registry[func_packet](*args, **kwargs, out_val=out))
        elif func_packet is _aten.convolution_backward:
            grad_out, x, weight, mask = args[0], args[1], args[2], list(args[10])
            if mask[0]:
                input_part = (*args[:10], [True, False, False], *args[11:])
                self._add("backward_input", registry[func_packet](*input_part, **kwargs, out_val=out))
            if mask[1]:
                self._add("backward_weight", 2 * _conv_weight_grad_macs(grad_out, x, weight, args[7]))
        elif func_packet in _MATMUL:
            reads_weight = any(_storage_key(a) in self.weights for a in args if isinstance(a, torch.Tensor))
            owner = self.owners.current[-1] if self.owners.current else ""
            makes_weight = not reads_weight and tuple(out.shape) in self.weight_shapes.get(owner, ())
            self._add("backward_weight" if makes_weight else "backward_input",
                      registry[func_packet](*args, **kwargs, out_val=out))
        return out


def _conv_weight_grad_macs(grad_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, transposed: bool) -> int:
    """MACs of a convolution's weight gradient: each weight element is a sum over the batch and the
    positions where it was applied (the output's for a convolution, the input's for a transposed one),
    so it costs the forward MACs, groups included. Not FlopCounterMode's formula: in torch 2.13 and 2.14 it
    counts ``conv(x^T, grad_out^T)`` over every input x output channel pair, ``groups`` times the true
    count for a grouped convolution (ResNeXt's 3x3: 32x)."""
    positions = (x if transposed else grad_out).shape
    return weight.numel() * positions[0] * math.prod(positions[2:])


class _OptimizerCounter(TorchDispatchMode):
    """One MAC per output element of each arithmetic op on a tensor of one or more dimensions."""

    def __init__(self):
        super().__init__()
        self.macs = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if op_family(str(func)) not in DATA_MOVEMENT and not str(func).startswith("aten._foreach"):
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor) and t.dim() > 0:
                    self.macs += t.numel()
        return out


def count_train_macs(model: torch.nn.Module, input_shape: tuple[int, ...], optimizer: str = "sgd",
                     frozen: Iterable[str] = ()) -> TrainMacs:
    """Training-step MACs of ``model`` for a (N, C, H, W) batch (see the module docstring).

    ``model`` is not changed (a meta copy is counted; ``frozen`` stages or module paths are frozen on the
    copy, on top of parameters already frozen). ``optimizer``: ``sgd``, ``momentum`` or ``adamw``.

    Raises:
        UsageError: an unknown optimizer or frozen name, or an input the network cannot take.
        ReadsValues: the forward pass reads a tensor's value, which meta tensors do not have (exit 1).
    """
    from ..bench.train import OPTIMIZERS, check_logits
    from .trace import input_error

    if optimizer not in OPTIMIZERS:
        raise UsageError(f"optimizer {optimizer!r} is not one of: {', '.join(OPTIMIZERS)}")
    model = copy.deepcopy(model).to("meta")
    done = freeze(model, frozen)
    check_trainable(model, frozen)
    model.train()
    weights = {_storage_key(p) for p in model.parameters()}
    # a backward product that reads no weight is a weight gradient when it has the shape of a trainable
    # matrix of the module running it (a linear layer's W or W^T); else it is an activation gradient
    # (attention's q @ k^T and attn @ v)
    weight_shapes = {name: {s for p in m.parameters(recurse=False) if p.requires_grad and p.dim() == 2
                            for s in (tuple(p.shape), tuple(p.shape)[::-1])}
                     for name, m in model.named_modules()}
    owners = _Owners(model)
    counter = _TrainCounter(owners, weights, weight_shapes)
    x = torch.empty(input_shape, device="meta")
    try:
        try:
            with counter:
                with owners:
                    out = model(x)
                    check_logits(out)
                    target = torch.empty((out.shape[0], *out.shape[2:]), dtype=torch.long, device="meta")
                    loss = torch.nn.functional.cross_entropy(out.float(), target)
                owners.in_backward = True
                if loss.requires_grad:
                    loss.backward()
        except (RuntimeError, ValueError) as err:
            if "more than 1 value per channel" in str(err):
                raise UsageError(f"a training step on {'x'.join(map(str, input_shape))} fails: BatchNorm in train mode "
                                 "needs more than one value per channel, and a feature map here has one per image; "
                                 "use a larger --batch or --size") from None
            raise input_error(model, tuple(input_shape), err,
                              "summary without --pass train still counts its forward pass (fvcore traces an empty "
                              "CPU batch), and bench --mode train times the step (without the plan)") from None
    finally:
        owners.remove()
    split = {name: dict(c) for name, c in counter.split.items()}
    # torch's optimizers skip a parameter without a gradient (frozen, or in a module that never runs)
    trainable = [(n, p) for n, p in model.named_parameters() if p.grad is not None]
    per_element = _optimizer_macs_per_element(optimizer, [p for _, p in trainable])
    for name, p in trainable:
        parts = name.split(".")[:-1]
        for owner in {"", *(".".join(parts[:i]) for i in range(1, len(parts) + 1))}:
            split.setdefault(owner, {})
            split[owner]["optimizer"] = split[owner].get("optimizer", 0) + per_element * p.numel()
    total = split.setdefault("", {})
    for kind in (*KINDS, "optimizer"):
        for row in split.values():
            row.setdefault(kind, 0)
    return TrainMacs(total["forward"], total["backward_input"], total["backward_weight"], total["optimizer"],
                     per_element, split, done)


def _optimizer_macs_per_element(optimizer: str, params: list) -> int:
    """MACs per element of the optimizer's steady-state step, counted on one small meta parameter."""
    from ..bench.train import make_optimizer

    if not params:
        return 0
    p = torch.nn.Parameter(torch.empty(64, device="meta"))
    opt = make_optimizer(optimizer, [p], foreach=False)
    counts = []
    for _ in range(2):
        p.grad = torch.empty_like(p)
        counter = _OptimizerCounter()
        with counter:
            opt.step()
        counts.append(counter.macs)
    return math.ceil(counts[-1] / p.numel())
