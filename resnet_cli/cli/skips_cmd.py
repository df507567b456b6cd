"""``resnet-cli skips``: encoder feature maps and the U-Net skip-connection check."""

from __future__ import annotations

import enum
from typing import Optional

import typer

from . import app
from .common import (VARIANT_HELP, Format, emit, format_option, in_chans_option, input_size_option, kwargs_option,
                     load_network, size_option, strict_option, weights_option)


class Decoder(str, enum.Enum):
    """How the decoder brings a deeper map to the skip's size."""

    upsample = "upsample"
    resize = "resize"


@app.command("skips")
def skips(
    variant: Optional[str] = typer.Argument(None, metavar="VARIANT_OR_SPEC", help=VARIANT_HELP,
                                            show_default=False),
    size: Optional[str] = size_option("Input size H or HxW in pixels (default: the variant's input size)."),
    in_chans: Optional[int] = in_chans_option(),
    output_stride: Optional[int] = typer.Option(
        None, "--output-stride", help="32, 16 or 8: the last stages dilate instead of striding (DeepLab); "
        "works for basic blocks too. Default: the network's own."),
    depth: Optional[int] = typer.Option(
        None, "--depth", help="Encoder stages the decoder uses, as segmentation_models_pytorch's encoder_depth: "
        "1 = stem only .. 5 = down to layer4 (default: all)."),
    decoder: Decoder = typer.Option(
        Decoder.upsample, "--decoder", case_sensitive=False,
        help="upsample: scale the deeper map x2 (the stride ratio), then concatenate (classic U-Net); "
        "resize: interpolate to the skip's size, reports the non-integer scale factors."),
    fmt: Format = format_option(),
    weights: Optional[str] = weights_option(),
    strict: bool = strict_option(),
    kwargs: Optional[str] = kwargs_option(),
    input_size: Optional[str] = input_size_option(),
) -> None:
    """Encoder feature maps (module to hook, channels, HxW, stride, receptive field) and whether a U-Net
    decoder's upsampled maps match the skips; if not, the nearest valid sizes and the padding / crop."""
    from ..analysis.stages import encoder_stages
    from ..render.console import note
    from ..render.stages import COLUMNS, NUMERIC, stage_rows, stages_tables

    name, spec, _ = load_network(variant, weights, strict, in_chans, kwargs=kwargs, input_size=input_size)
    result = encoder_stages(spec, size, output_stride=output_stride, depth=depth,
                            decoder=decoder.value, name=name)
    for line in result.notes:
        note(f"note: {line}")
    emit(fmt, result, stage_rows(result), COLUMNS, stages_tables, NUMERIC)
    if fmt in (Format.csv, Format.markdown):
        note(result.decoder_check.verdict)
