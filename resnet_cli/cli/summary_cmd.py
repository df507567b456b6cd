"""``resnet-cli summary`` (per-layer shapes, parameters, MACs/FLOPs, receptive field, memory) and
``resnet-cli compare`` (variants side by side)."""

from __future__ import annotations

import enum
from typing import List, Optional

import typer

from . import app
from .common import (VARIANT_HELP, Format, emit, format_option, import_torch, in_chans_option, input_size_option,
                     kwargs_option, load_network, num_classes_option, network_hw_text, size_option, strict_option,
                     weights_option)


class Count(str, enum.Enum):
    conv_linear = "conv-linear"
    all = "all"


class Engine(str, enum.Enum):
    fvcore = "fvcore"
    torch = "torch"


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
) -> None:
    """Per-layer output shape, kernel/stride, params, MACs, receptive field and cumulative stride;
    totals of params, MACs and FLOPs (FLOPs = 2 x MACs), and memory. No real forward pass is run,
    so any input size and batch answer in seconds with little memory."""
    name, spec, _state = load_network(variant, weights, strict, in_chans, num_classes, kwargs, input_size)
    hw = network_hw_text(spec, size)  # a bad --size answers before torch is imported
    from ..analysis.summary import summarize
    from ..render.console import note
    from ..render.summary import LAYER_COLUMNS, LAYER_NUMERIC, layer_rows, summary_table, totals_line

    import_torch()
    result = summarize(spec, hw, batch=batch, depth=depth, count=count.value, engine=engine.value, label=name)
    for line in result.notes:
        note(f"note: {line}")
    if fmt in (Format.csv, Format.markdown):
        note(totals_line(result))
    emit(fmt, result, layer_rows(result), LAYER_COLUMNS, summary_table, LAYER_NUMERIC)


@app.command("compare")
def compare(
    variants: List[str] = typer.Argument(..., metavar="VARIANT_OR_SPEC...", help="Two or more variants or specs."),
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
