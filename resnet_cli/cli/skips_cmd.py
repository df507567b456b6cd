"""``resnet-cli skips``: encoder feature maps, the U-Net skip-connection check and the decoder plan."""

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


class Attention(str, enum.Enum):
    """Attention in the decoder blocks (smp's decoder_attention_type)."""

    none = "none"
    scse = "scse"


@app.command("skips")
def skips(
    variant: Optional[str] = typer.Argument(None, metavar="VARIANT_OR_SPEC", help=VARIANT_HELP + " A U-Net "
                                            "spec 'unet(encoder=resnet34, ...)' shows its decoder plan.",
                                            show_default=False),
    size: Optional[str] = size_option("Input size H or HxW in pixels (default: the variant's input size)."),
    in_chans: Optional[int] = in_chans_option(),
    output_stride: Optional[int] = typer.Option(
        None, "--output-stride", help="32, 16 or 8: the last stages dilate instead of striding (DeepLab); "
        "works for basic blocks too. Default: the network's own."),
    depth: Optional[int] = typer.Option(
        None, "--depth", help="Encoder stages the decoder uses, as segmentation_models_pytorch's encoder_depth: "
        "1 = stem only .. 5 = down to layer4 (default: all; for the decoder plan: the number of --decoder-channels, "
        "else min(5, all))."),
    decoder: Optional[Decoder] = typer.Option(
        None, "--decoder", case_sensitive=False, show_default=False,
        help="upsample (default for a ResNet): scale the deeper map x2 (the stride ratio), then concatenate "
        "(classic U-Net); resize (smp 0.6; default for a unet(...) spec): interpolate to the skip's size, "
        "reports the non-integer scale factors."),
    decoder_channels: Optional[str] = typer.Option(
        None, "--decoder-channels", metavar="C1,C2,...", help="Decoder block channels, deepest first, one per "
        "--depth: adds the decoder plan (concatenated channels, shapes, params, MACs of each block). "
        "Default with --attention/--classes: smp's 256,128,64,32,16 (the first --depth of them); "
        "without --depth their count sets the depth."),
    attention: Optional[Attention] = typer.Option(
        None, "--attention", case_sensitive=False, show_default=False,
        help="none or scse (smp's decoder_attention_type; SCSE squeezes by 16). Implies the decoder plan."),
    classes: Optional[int] = typer.Option(None, "--classes", min=1, help="Segmentation head outputs "
                                          "(default 1). Implies the decoder plan."),
    fmt: Format = format_option(),
    weights: Optional[str] = weights_option(),
    strict: bool = strict_option(),
    kwargs: Optional[str] = kwargs_option(),
    input_size: Optional[str] = input_size_option(),
) -> None:
    """Encoder feature maps (module to hook, channels, HxW, stride, receptive field) and whether a U-Net
    decoder's upsampled maps match the skips; if not, the nearest valid sizes and the padding / crop.
    With --decoder-channels (or a unet(...) spec): the decoder plan and the U-Net's params and MACs."""
    from ..models import UNetSpec
    from ..render.console import note

    name, spec, _ = load_network(variant, weights, strict, in_chans, kwargs=kwargs, input_size=input_size)
    if isinstance(spec, UNetSpec) or decoder_channels is not None or attention is not None or classes is not None:
        spec = _unet(name, spec, decoder_channels, depth, attention, classes)
        from ..analysis.decoder_plan import unet_stages
        from ..render.stages import COLUMNS, NUMERIC, plan_line, skips_tables, stage_rows

        result = unet_stages(spec, size, decoder=decoder.value if decoder else None, output_stride=output_stride,
                             name=name)
        emit(fmt, result, stage_rows(result), COLUMNS, skips_tables, NUMERIC)
        if fmt in (Format.csv, Format.markdown):
            note(result.decoder_check.verdict)
            note(plan_line(result))
        return
    from ..analysis.stages import encoder_stages
    from ..render.stages import COLUMNS, NUMERIC, stage_rows, stages_tables

    result = encoder_stages(spec, size, output_stride=output_stride, depth=depth,
                            decoder=decoder.value if decoder else "upsample", name=name)
    for line in result.notes:
        note(f"note: {line}")
    emit(fmt, result, stage_rows(result), COLUMNS, stages_tables, NUMERIC)
    if fmt in (Format.csv, Format.markdown):
        note(result.decoder_check.verdict)


def _unet(name: str, spec, channels: Optional[str], depth: Optional[int], attention, classes: Optional[int]):
    """The U-Net the options describe: ``spec`` itself (a UNetSpec, options applied) or one on ``spec`` as
    the encoder (smp's defaults for what is not given)."""
    from ..errors import UsageError
    from ..models import UNetSpec
    from ..models.unet_spec import DEFAULT_DECODER_CHANNELS, encoder_spec, parse_channels

    base = spec if isinstance(spec, UNetSpec) else UNetSpec(encoder=encoder_spec(spec), encoder_text=name,
                                                             decoder="upsample", input_size=spec.input_size)
    wanted = parse_channels(channels) if channels is not None else None
    deepest = base.max_depth
    if depth is not None and not 1 <= depth <= deepest:
        raise UsageError(f"--depth {depth} is not possible for {base.encoder_text}: use 1 (stem only) to {deepest} "
                         f"(down to layer{deepest - 1})")
    if depth is not None:
        target = depth
    elif wanted is not None:  # channels without --depth: their count, as the unet(...) spec's rule
        target = len(wanted)
    else:
        target = base.depth  # the spec's own, or min(5, what the encoder reaches)
    if wanted is None:
        if isinstance(spec, UNetSpec) and len(base.decoder_channels) >= target:
            wanted = base.decoder_channels[:target]
        else:
            wanted = DEFAULT_DECODER_CHANNELS[:target]
    if len(wanted) > deepest:
        fits = (f"1 to {deepest} channels with a matching --depth" if deepest > 1 else "1 channel")
        raise UsageError(f"--decoder-channels {','.join(map(str, wanted))} gives {len(wanted)} decoder blocks but "
                         f"{base.encoder_text} has room for {fits}")
    if len(wanted) != target:
        raise UsageError(f"--decoder-channels {','.join(map(str, wanted))} gives {len(wanted)} decoder block"
                         f"{'s' if len(wanted) != 1 else ''} but --depth is {target}: give {target} "
                         f"channels, or --depth {len(wanted)}")
    changes = {"decoder_channels": wanted, "depth": target}
    if attention is not None:
        changes["attention"] = attention.value
    if classes is not None:
        changes["classes"] = classes
    return base.replace(**changes)
