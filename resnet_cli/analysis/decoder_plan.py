"""The decoder plan of a U-Net: per decoder block the map it receives, its size after the
upsampling, the skip it meets, the concatenated channels, its output, parameters and MACs; then the
segmentation head and the encoder / decoder / head totals.

Everything is read from the built network (``models.unet``) by the walk every command uses: one
empty-batch pass (:func:`.trace.trace`) for the shapes and the MAC engine (:func:`.flops.count_macs`,
fvcore, conv + linear, batch 1) attributed to modules. The channels come from the modules
themselves (a block's ``conv1`` takes the concatenation), never from a second formula.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from ..errors import UsageError
from ..models.unet_spec import UNetSpec


@dataclass(frozen=True)
class DecoderBlockPlan:
    """One decoder block (``decoder.blocks.N``), deepest first.

    Attributes:
        block: N (0 = the deepest). module: ``decoder.blocks.N``.
        in_channels, in_shape: the map it receives, (N, C, H, W): the encoder's deepest map (via
            ``decoder.center``) or the previous block's output.
        upsampled: (H, W) after the upsampling (the skip's size; for the last block, the input's).
        scale_factor: (H, W) factors of that upsampling: upsampled size / received size.
        skip, skip_module, skip_channels, skip_shape: the encoder stage it meets (``layer3``,
            ``encoder.layer3``, its C and (N, C, H, W)); None, None, 0, None for the last block.
        concat_channels: channels into the block's first conv (received + skip).
        out_shape: (N, C, H, W) of the block's output.
        params: the block's parameters (attention modules included). macs: its conv + linear MACs.
    """

    block: int
    module: str
    in_channels: int
    in_shape: tuple[int, ...]
    upsampled: tuple[int, int]
    scale_factor: tuple[float, float]
    skip: Optional[str]
    skip_module: Optional[str]
    skip_channels: int
    skip_shape: Optional[tuple[int, ...]]
    concat_channels: int
    out_channels: int
    out_shape: tuple[int, ...]
    params: int
    macs: int


@dataclass(frozen=True)
class HeadPlan:
    """The segmentation head (``segmentation_head``): a 3x3 conv with bias to ``classes`` maps."""

    module: str
    in_channels: int
    out_shape: tuple[int, ...]
    params: int
    macs: int


@dataclass(frozen=True)
class DecoderTotals:
    """Parameters (each counted once) and conv + linear MACs at batch 1 of the whole U-Net and its parts.
    ``encoder_params`` includes stages deeper than ``depth`` (built, not run, as in smp)."""

    encoder_params: int
    decoder_params: int
    head_params: int
    total_params: int
    encoder_macs: int
    decoder_macs: int
    head_macs: int
    macs: int


@dataclass(frozen=True)
class DecoderPlan:
    """What :func:`decoder_plan` returns; ``spec`` is the ``unet(...)`` string of the network traced,
    ``decoder`` its decoder (``resize`` or ``upsample``), ``note`` says what was counted."""

    spec: str
    decoder: str
    blocks: tuple[DecoderBlockPlan, ...]
    head: HeadPlan
    totals: DecoderTotals
    note: str


def decoder_plan(spec: UNetSpec, size: tuple[int, int]) -> DecoderPlan:
    """The plan of ``spec`` for a (1, in_chans, H, W) input, ``size`` = (H, W).

    Raises:
        UsageError: an input the network cannot take (the ``upsample`` decoder at a size whose
            upsampled maps differ from the skips, or an input too small for the encoder).
    """
    import torch

    from ..models import build_model
    from .flops import count_macs
    from .trace import trace

    shape = (1, spec.in_chans, *size)
    with torch.device("meta"):
        model = build_model(spec)
    records = trace(model, shape)
    macs = count_macs(model, shape, "conv-linear", "fvcore").by_module
    modules = dict(model.named_modules())

    def params(name: str) -> int:
        return sum(p.numel() for p in modules[name].parameters())

    def cost(name: str) -> int:
        return sum(macs.get(name, {}).values())

    features = list(model.feature_modules)[::-1]  # deepest first: the skips of blocks 0, 1, ...
    labels = {m: ("stem" if i == 0 else f"layer{i}") for i, m in enumerate(model.feature_modules)}
    received = records["decoder.center"].output_shape
    rows = []
    for i in range(len(model.decoder.blocks)):
        name = f"decoder.blocks.{i}"
        block = modules[name]
        conv_in = records[f"{name}.conv1"].output_shape  # 3x3/1 pad 1: the size it reads
        up = tuple(conv_in[2:])
        skip_module = features[i + 1] if i + 1 < len(features) else None
        skip_shape = records[skip_module].output_shape if skip_module else None
        out = records[name].output_shape
        rows.append(DecoderBlockPlan(
            i, name, received[1], received, up, (up[0] / received[2], up[1] / received[3]),
            labels.get(skip_module), skip_module, skip_shape[1] if skip_shape else 0, skip_shape,
            block.conv1[0].in_channels, out[1], out, params(name), cost(name)))
        received = out
    head = HeadPlan("segmentation_head", model.segmentation_head[0].in_channels,
                    records["segmentation_head"].output_shape, params("segmentation_head"), cost("segmentation_head"))
    total = sum(p.numel() for p in model.parameters())
    totals = DecoderTotals(params("encoder"), params("decoder"), head.params, total, cost("encoder"),
                           cost("decoder"), head.macs, cost(""))
    note = ("MACs: convolutions and linear layers only (torchvision's convention), batch 1, counted by fvcore "
            "on the built network; FLOPs = 2 x MACs; params count each parameter once")
    return DecoderPlan(spec.to_string(), spec.decoder, tuple(rows), head, totals, note)


def unet_stages(spec: UNetSpec, size=None, *, decoder: Optional[str] = None, output_stride: Optional[int] = None,
                name: Optional[str] = None):
    """``skips`` for a U-Net: the encoder table and decoder check of :func:`.stages.encoder_stages`
    (its encoder, to ``spec.depth``) with the decoder plan, its head and totals filled in.

    ``decoder`` (default: the spec's) picks the size rule; with ``upsample`` at a size where a map
    does not match its skip, the plan is that of smp's ``resize`` decoder (said in ``plan_note``).

    Raises:
        UsageError: a bad size, output stride or decoder, or an input the encoder cannot take.
    """
    from ..models import input_hw
    from ..models.parse import dilate_for_output_stride
    from .stages import DECODERS, encoder_stages

    decoder = decoder or spec.decoder
    if decoder not in DECODERS:
        raise UsageError(f"decoder {decoder!r} is not known; use {' or '.join(DECODERS)}")
    if output_stride is not None:
        encoder = spec.encoder.replace(dilate=dilate_for_output_stride(spec.encoder, output_stride))
        spec = spec.replace(encoder=encoder, encoder_text=encoder.to_string())
    h, w = input_hw(spec, size)
    result = encoder_stages(spec.encoder, (h, w), depth=spec.depth, decoder=decoder,
                            name=name or spec.to_string())
    traced = spec.replace(decoder=decoder if result.decoder_check.ok else "resize")
    plan = decoder_plan(traced, (h, w))
    note = plan.note
    if traced.decoder != decoder:
        note = (f"the {decoder} decoder cannot run at {h}x{w} (see the verdict); the plan is that of smp's resize "
                "decoder, which interpolates to each skip's size; " + note)
    return dataclasses.replace(result, decoder_plan=plan.blocks, decoder_head=plan.head, decoder_totals=plan.totals,
                               plan_spec=plan.spec, plan_note=note)
