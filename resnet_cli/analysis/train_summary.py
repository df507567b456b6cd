"""``summary --pass train``: the training-step record (:class:`TrainingSummary`) and its per-layer fields,
from :mod:`.training` (MACs) and :mod:`.memory_plan` (bytes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from ..errors import UsageError
from .memory_plan import MemoryPlan, plan_memory, with_budget
from .training import count_train_macs, parse_freeze

PASSES = ("eval", "train")


@dataclass(frozen=True)
class TrainingSummary:
    """One training step at batch N (``summary --pass train``; JSON key ``train``).

    Attributes:
        optimizer: ``sgd``, ``momentum`` or ``adamw``; frozen: module paths whose weights are frozen.
        forward_macs, backward_input_macs, backward_weight_macs, optimizer_macs: MACs of the step's
            parts (conv + linear for forward and backward; see :mod:`.training`); total_macs their sum;
            total_flops = 2 x total_macs.
        optimizer_macs_per_element: the optimizer's MACs per trainable parameter element.
        note: what was counted.
        memory_plan: see :class:`.memory_plan.MemoryPlan`.
    """

    optimizer: str
    frozen: tuple[str, ...]
    forward_macs: int
    backward_input_macs: int
    backward_weight_macs: int
    optimizer_macs: int
    optimizer_macs_per_element: int
    total_macs: int
    total_flops: int
    note: str
    memory_plan: Optional[MemoryPlan]


def note(optimizer: str, per_element: int) -> str:
    """The counting note of a training step."""
    return ("training step: forward + loss + backward + optimizer step; forward and backward MACs count "
            "convolutions and linear layers (FlopCounterMode over a real meta backward: gradient w.r.t. input "
            "and w.r.t. weights apart, none for the input batch or frozen weights); norms, activations, pooling, "
            f"adds and the loss 0; optimizer step ({optimizer}): {per_element} MAC(s) per trainable parameter "
            "element (1 per element per elementwise op); FLOPs = 2 x MACs")


def train_summary(meta_model: torch.nn.Module, build: Callable[[], torch.nn.Module], shape: tuple[int, int, int, int], *,
                  optimizer: str = "sgd", dtype: str = "fp32", amp: Optional[str] = None, channels_last: bool = False,
                  freeze: Optional[str] = None, gpu_memory: Optional[int] = None,
                  device_type: str = "cuda") -> tuple[TrainingSummary, dict[str, dict]]:
    """(the record, module path -> per-layer training fields) for a (N, C, H, W) input.

    ``meta_model``: the network on the meta device (MACs); ``build``: builds it again (the memory plan runs
    it under FakeTensorMode); ``freeze``: ``"stem,layer1"``; ``gpu_memory``: bytes for the verdict.

    Raises:
        UsageError: an unknown optimizer, dtype or frozen name, or an input the network cannot take.
    """
    frozen = parse_freeze(freeze)
    macs = count_train_macs(meta_model, shape, optimizer, frozen)
    plan = train_plan(build, shape, optimizer=optimizer, dtype=dtype, amp=amp, channels_last=channels_last,
                      frozen=frozen, gpu_memory=gpu_memory, device_type=device_type)
    record = TrainingSummary(optimizer, macs.frozen, macs.forward_macs, macs.backward_input_macs,
                             macs.backward_weight_macs, macs.optimizer_macs, macs.optimizer_macs_per_element,
                             macs.total_macs, 2 * macs.total_macs, note(optimizer, macs.optimizer_macs_per_element),
                             plan)
    fields = {}
    zero = {"forward": 0, "backward_input": 0, "backward_weight": 0, "optimizer": 0}
    for name, _ in meta_model.named_modules():
        row = macs.by_module.get(name, zero)
        fields[name] = {"forward_macs": row["forward"], "backward_input_macs": row["backward_input"],
                        "backward_weight_macs": row["backward_weight"], "optimizer_macs": row["optimizer"],
                        "saved_bytes": plan.saved_by_module.get(name, 0)}
    # a container's own row (``norm1.(ops)``: timm's BatchNormAct2d, whose weights and batch norm are its
    # own, not a child's) gets what the container has beyond its children, so the leaf rows add up
    for name, module in meta_model.named_modules():
        kids = [f"{name}.{c}" if name else c for c, _ in module.named_children()]
        if kids:
            fields[f"{name}.(ops)" if name else "(ops)"] = {
                key: value - sum(fields[k][key] for k in kids if k in fields)
                for key, value in fields[name].items()}
    return record, fields


def train_plan(build, shape, *, mode: str = "train", optimizer: str = "sgd", dtype: str = "fp32",
               amp: Optional[str] = None, channels_last: bool = False, frozen=(), gpu_memory: Optional[int] = None,
               device_type: str = "cuda") -> MemoryPlan:
    """:func:`.memory_plan.plan_memory` at ``shape``, with the verdict and the largest fitting batch
    (searched with the plan) when ``gpu_memory`` (bytes) is given."""
    if mode not in PASSES:
        raise UsageError(f"pass {mode!r} is not one of: {', '.join(PASSES)}")

    def replan(batch: int) -> MemoryPlan:
        return plan_memory(build, (batch, *shape[1:]), mode=mode, optimizer=optimizer, dtype=dtype, amp=amp,
                           channels_last=channels_last, device_type=device_type, frozen=frozen)

    plan = replan(shape[0])
    return with_budget(plan, gpu_memory, replan) if gpu_memory is not None else plan


def add_own_rows(layers: tuple, fields: dict[str, dict]) -> tuple:
    """``layers`` with an ``X.(ops)`` row for each shown container whose own training numbers are not 0
    but which has no such row yet (the network itself: the loss's saved logits; a block calling
    ``F.relu`` in its forward), so the leaf rows of every column add up to the step's totals. The row
    goes after the container's last shown descendant; a container folded by ``--depth`` (a leaf here)
    already holds its descendants' numbers and gets none. No rows (``--depth 0``: the totals only) stay none."""
    import dataclasses

    if not layers:
        return tuple(layers)

    from .summary import LayerRecord

    rows = list(layers)
    names = {r.name for r in rows}
    depth_of = {r.name: r.depth for r in rows}
    for key, own in fields.items():
        if not key.endswith("(ops)") or key in names or not any(own.values()):
            continue
        parent = key[:-len(".(ops)")] if key != "(ops)" else ""
        if parent and (parent not in depth_of or next(r for r in rows if r.name == parent).is_leaf):
            continue
        below = [i for i, r in enumerate(rows) if not parent or r.name == parent or r.name.startswith(parent + ".")]
        at = (below[-1] + 1) if below else len(rows)
        zero = {k: 0 for k in own}
        row = LayerRecord(key, "own ops", depth_of.get(parent, 0) + 1, None, None, None, 0, 0, 0, 0.0, None, None,
                          1, True)
        rows.insert(at, dataclasses.replace(row, **{**zero, **own}))
        names.add(key)
    return tuple(rows)
