"""``resnet-cli summary`` (per-layer shapes, parameters, MACs/FLOPs, receptive field, memory) and
``resnet-cli compare`` (variants side by side)."""

from __future__ import annotations

import enum
from typing import List, Optional

import typer

from ..errors import UsageError
from . import app
from .common import (VARIANT_HELP, Amp, Format, Optimizer, emit, format_option, import_torch, in_chans_option,
                     input_size_option,
                     kwargs_option, load_network, num_classes_option, network_hw_text, size_option, strict_option,
                     weights_option)


class Count(str, enum.Enum):
    conv_linear = "conv-linear"
    all = "all"


class Engine(str, enum.Enum):
    fvcore = "fvcore"
    torch = "torch"


class Pass(str, enum.Enum):
    eval = "eval"
    train = "train"


class PlanDtype(str, enum.Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"
    amp = "amp"


@app.command("summary")
def summary(
    variant: Optional[str] = typer.Argument(None, metavar="VARIANT_OR_SPEC", help=VARIANT_HELP, show_default=False),
    size: Optional[str] = size_option(),
    batch: int = typer.Option(1, "--batch", "-b", min=1, help="Batch size N (shapes, MACs and memory scale with it)."),
    depth: Optional[int] = typer.Option(None, "--depth", min=0, help="Show rows down to this depth (1 = stem "
                                        "parts and stages); deeper rows fold into their parent. Default: all."),
    count: Count = typer.Option(Count.conv_linear, "--count", case_sensitive=False,
                                help="conv-linear: convolutions and linear layers only (torchvision's convention). "
                                     "all: also norms, activations, pooling, adds, gates (per-element costs, README)."),
    engine: Engine = typer.Option(Engine.fvcore, "--flops-engine", case_sensitive=False,
                                  help="fvcore (FlopCountAnalysis, tracing an empty batch) or torch (FlopCounterMode "
                                       "on the meta device; about 2 s slower to start). Same numbers."),
    fmt: Format = format_option(),
    in_chans: Optional[int] = in_chans_option(),
    num_classes: Optional[int] = num_classes_option(),
    weights: Optional[str] = weights_option(),
    strict: bool = strict_option(),
    kwargs: Optional[str] = kwargs_option(),
    input_size: Optional[str] = input_size_option(),
    pass_: Pass = typer.Option(Pass.eval, "--pass", case_sensitive=False,
                               help="eval: one forward pass. train: a training step: forward, backward (w.r.t. "
                                    "input and weights) and optimizer MACs per layer, and its memory plan."),
    optimizer: Optional[Optimizer] = typer.Option(None, "--optimizer", case_sensitive=False,
                                                  help="sgd, momentum or adamw (--pass train) [default: sgd]."),
    dtype: Optional[PlanDtype] = typer.Option(None, "--dtype", case_sensitive=False,
                                              help="Memory plan precision: fp32, bf16, fp16 (weights and input) or "
                                                   "amp (fp32 weights, bf16 autocast) [default: fp32]."),
    amp: Optional[Amp] = typer.Option(None, "--amp", case_sensitive=False,
                                      help="Autocast dtype for the plan: bf16 or fp16 (fp32 weights)."),
    channels_last: bool = typer.Option(False, "--channels-last", help="Plan the NHWC memory format."),
    gpu_memory: Optional[str] = typer.Option(None, "--gpu-memory", metavar="SIZE",
                                             help="GPU memory (24GiB, 24GB, 80): say whether the step fits and "
                                                  "the largest batch that does."),
    freeze: Optional[str] = typer.Option(None, "--freeze", metavar="NAMES",
                                         help="--pass train: stages or modules whose weights are frozen, e.g. "
                                              "stem,layer1."),
) -> None:
    """Per-layer output shape, kernel/stride, params, MACs, receptive field and cumulative stride;
    totals of params, MACs and FLOPs (FLOPs = 2 x MACs), and memory. No real forward pass is run,
    so any input size and batch answer in seconds with little memory. --pass train adds the training
    step (backward and optimizer MACs, a memory plan from a fake step; --gpu-memory for a verdict)."""
    name, spec, _state = load_network(variant, weights, strict, in_chans, num_classes, kwargs, input_size)
    hw = network_hw_text(spec, size)  # a bad --size answers before torch is imported
    budget, train = _check_train_options(pass_, optimizer, dtype, amp, gpu_memory, freeze)
    from ..analysis.summary import summarize
    from ..render.console import note
    from ..render.summary import LAYER_NUMERIC, layer_columns, layer_rows, summary_table, totals_line

    import_torch()
    result = summarize(spec, hw, batch=batch, depth=depth, count=count.value, engine=engine.value, label=name,
                       mode=pass_.value, optimizer=(optimizer or Optimizer.sgd).value,
                       dtype="amp" if amp is not None and dtype is None else (dtype.value if dtype else None),
                       amp=amp.value if amp else None, channels_last=channels_last, freeze=freeze,
                       gpu_memory=budget)
    for line in result.notes:
        note(f"note: {line}")
    if fmt in (Format.csv, Format.markdown):
        note(totals_line(result))
    emit(fmt, result, layer_rows(result), layer_columns(result), summary_table, LAYER_NUMERIC)


def _check_train_options(pass_, optimizer, dtype, amp, gpu_memory, freeze):
    """(budget in bytes or None, train?) with usage errors before torch is imported."""
    train = pass_ == Pass.train
    if not train:
        for flag, value in (("--optimizer", optimizer), ("--freeze", freeze)):
            if value is not None:
                raise UsageError(f"{flag} applies to a training step; add --pass train")
    if amp is not None and dtype not in (None, PlanDtype.fp32, PlanDtype.amp):
        raise UsageError(f"--amp {amp.value} autocasts fp32 weights; it cannot be combined with --dtype "
                         f"{dtype.value} (use --dtype fp32 or leave it out)")
    if gpu_memory is None:
        return None, train
    from ..bench.memory import parse_memory

    return parse_memory(gpu_memory), train


@app.command("compare")
def compare(
    variants: List[str] = typer.Argument(..., metavar="VARIANT_OR_SPEC...",
                                         help="One or more variants or specs, one row each."),
    size: Optional[str] = size_option("Input size H or HxW for the MACs column (default: each variant's own)."),
    fmt: Format = format_option(),
    kwargs: Optional[str] = typer.Option(None, "--kwargs", metavar="KEY=VALUE,...",
                                         help="Keyword arguments for every file.py:factory / timm:NAME in the list."),
    input_size: Optional[str] = input_size_option(),
) -> None:
    """Variants side by side: params, MACs at a size, conv layers, stage channels, output stride and
    default input size."""
    from ..models import parse_size
    from ..models.external import is_source

    hw = parse_size(size) if size is not None else None
    if (kwargs is not None or input_size is not None) and not any(is_source(v) for v in variants):
        load_network(variants[0], kwargs=kwargs, input_size=input_size)  # the usage error for --kwargs alone
    # an unknown name or a bad size answers before torch is imported; your own networks carry --kwargs
    checked = [load_network(v, kwargs=kwargs if is_source(v) else None,
                            input_size=input_size if is_source(v) else None)[1] for v in variants]
    variants = [spec if is_source(v) else v for v, spec in zip(variants, checked)]
    from ..analysis.summary import compare as compare_variants
    from ..render.summary import COMPARE_COLUMNS, COMPARE_NUMERIC, compare_rows, compare_table

    import_torch()
    result = compare_variants(variants, hw)
    emit(fmt, result, compare_rows(result), COMPARE_COLUMNS, compare_table, COMPARE_NUMERIC)
