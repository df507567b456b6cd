"""Encoder stages of a ResNet and the U-Net skip-connection check.

:func:`encoder_stages` gives one :class:`StageRecord` per encoder stage (input, stem activation,
stem pool, layer1..N), the module to hook for it (torchvision / timm names), its shape, cumulative
stride and receptive field, all from one empty-batch forward pass (``analysis.trace``), and a
:class:`DecoderCheck`: whether a U-Net decoder fits the maps at this input size, and if not, the
nearest input sizes that do, with the padding or crop that reaches them.

The decoder (the classic U-Net, Ronneberger et al. 2015) starts at the deepest used stage and, for
every shallower stage, upsamples its map by the ratio of the two stages' strides (x2 between
ImageNet stages, x1 where dilation or a stride-1 stem keeps the resolution) and concatenates the
skip; its last step does the same against the input, because a segmentation output must have the
input's size. ``upsample`` (``interpolate(scale_factor=2)`` or a stride-2 transposed conv) needs the
two sizes to be equal; ``resize`` (interpolate to the skip's size, as newer segmentation libraries
do) always runs, and is exact only when every resize factor is a whole number.

For a network that is not a ResNetSpec (the user's module) the stages come from
:mod:`.module_stages` (its own ``feature_info``, or found by stride); the notes say which were chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Union

from ..errors import UsageError
from ..models import ResNetSpec, input_hw, resolve
from ..models.external import ModuleSource, is_source
from ..models.parse import dilate_for_output_stride

DECODERS = ("upsample", "resize")
SEARCH_PX = 512  # how far from the requested size the nearest valid sizes are searched, per side


@dataclass(frozen=True)
class StageRecord:
    """One encoder stage's output.

    Attributes:
        name: ``input``, ``stem`` (stem activation), ``pool`` (after the stem pool), ``layer1``..``layerN``
            (the same names for every layout; ``module`` is the layout's own path).
        module: module path to hook for this map (``relu`` / ``act1`` / ``stem.conv``, ``layer1`` /
            ``stages.0``); ``""`` for the input.
        channels, height, width: the map is (N, channels, height, width).
        stride: cumulative stride, input pixels between neighbouring outputs.
        receptive_field: theoretical receptive field side in input pixels (None when not known).
    """

    name: str
    module: str
    channels: int
    height: int
    width: int
    stride: int
    receptive_field: Optional[int]


@dataclass(frozen=True)
class SkipCheck:
    """One decoder step: the deeper stage's map brought to the skip's resolution.

    Attributes:
        skip: the stage whose map is concatenated (``input``: the decoder's output against the input).
        module: that stage's module path.
        deeper: the stage whose map is upsampled.
        deeper_size: (H, W) of the deeper map.
        factor: nominal upsampling factor, deeper stride / skip stride.
        upsampled: (H, W) of ``factor`` x the deeper map.
        skip_size: (H, W) of the skip.
        scale_factor: (H, W) factors a resize decoder interpolates by: skip size / deeper size.
        ok: upsample decoder: ``upsampled == skip_size``; resize decoder: both factors are whole numbers.
    """

    skip: str
    module: str
    deeper: str
    deeper_size: tuple[int, int]
    factor: int
    upsampled: tuple[int, int]
    skip_size: tuple[int, int]
    scale_factor: tuple[float, float]
    ok: bool


@dataclass(frozen=True)
class Sides:
    """Pixels added (padding) or removed (crop) at each border; the odd pixel goes bottom / right."""

    top: int
    bottom: int
    left: int
    right: int


@dataclass(frozen=True)
class SizeSuggestion:
    """Nearest input sizes (H, W) at or below and at or above the requested one where the check
    passes, each side on its own; None where there is none within ``SEARCH_PX`` pixels."""

    below: Optional[tuple[int, int]]
    above: Optional[tuple[int, int]]


@dataclass(frozen=True)
class DecoderCheck:
    """The U-Net decoder check, deepest step first.

    Attributes:
        decoder: ``upsample`` or ``resize``.
        depth: encoder stages the decoder uses (1 = stem only .. 1 + number of stages).
        ok: every step ok.
        checks: every step, deepest first; ``mismatches``: the steps that are not ok.
        suggested_sizes: None when ``ok``.
        padding: reaches ``suggested_sizes.above`` (zero-pad the input); None when ok or no size above.
        crop: reaches ``suggested_sizes.below`` (centre crop); None when ok or no size below.
        verdict: one line for people.
    """

    decoder: str
    depth: int
    ok: bool
    checks: tuple[SkipCheck, ...]
    mismatches: tuple[SkipCheck, ...]
    suggested_sizes: Optional[SizeSuggestion]
    padding: Optional[Sides]
    crop: Optional[Sides]
    verdict: str


@dataclass(frozen=True)
class EncoderStages:
    """What :func:`encoder_stages` returns: ``input_size`` is (H, W) in pixels.

    The ``decoder_*`` and ``plan_*`` fields are filled for a U-Net (``skips --decoder-channels`` or a
    ``unet(...)`` spec) by :func:`.decoder_plan.unet_stages`, else None: ``decoder_plan`` one row per
    decoder block, deepest first; ``decoder_head`` the segmentation head; ``decoder_totals`` params and
    conv + linear MACs (batch 1); ``plan_spec`` the ``unet(...)`` string of the network traced. ``notes``: how the stages were
    found when the network is not a ResNetSpec (:mod:`.module_stages`), and anything else inferred.
    """

    variant: str
    input_size: tuple[int, int]
    in_chans: int
    output_stride: int
    stages: tuple[StageRecord, ...]
    decoder_check: DecoderCheck
    decoder_plan: Optional[tuple] = None
    decoder_head: Optional[object] = None
    decoder_totals: Optional[object] = None
    plan_spec: Optional[str] = None
    plan_note: Optional[str] = None
    notes: tuple[str, ...] = ()


def encoder_stages(variant: Union[str, ResNetSpec], size: Union[int, str, tuple[int, int], None] = None, *,
                   in_chans: Optional[int] = None, output_stride: Optional[int] = None,
                   depth: Optional[int] = None, decoder: str = "upsample",
                   name: Optional[str] = None) -> EncoderStages:
    """The encoder stages of a network for a (1, C, H, W) input, and the U-Net decoder check.

    Args:
        variant: a variant name, spec string or :class:`ResNetSpec`; or a ``file.py:factory`` /
            ``timm:NAME`` text, ``ModuleSource`` or ``torch.nn.Module``, whose stages are inferred
            (see the module docstring; ``size`` may then be (C, H, W)).
        size: H, (H, W) or ``"HxW"`` in pixels; default the variant's input size.
        in_chans: input channels (overrides the variant's).
        output_stride: 32, 16 or 8 (only values the network can reach); the later stages replace
            their stride by dilation (DeepLab; timm ``output_stride``). Default: the network's own.
        depth: encoder stages the decoder uses, as segmentation_models_pytorch's ``encoder_depth``:
            1 = stem activation only, 2 = down to layer1, ..., 1 + N = down to layerN (default).
            The encoder stops there: deeper stages are not listed.
        decoder: ``upsample`` (scale by the stride ratio, then concatenate) or ``resize``.
        name: display name when ``variant`` is a spec.

    Raises:
        UsageError: unknown variant, bad size / output stride / depth / decoder, or an input on which
            the network's own forward pass fails (the message names the layer and the nearest size
            that works).
        RuntimeFailure: a module's factory or forward pass raised.
    """
    if isinstance(variant, ModuleSource) or is_source(variant) or hasattr(variant, "named_modules"):
        from .module_stages import module_encoder_stages

        return module_encoder_stages(variant, size, in_chans, output_stride, depth, decoder, name)
    if isinstance(variant, ResNetSpec):
        display, spec = variant.to_string(), variant.replace(in_chans=in_chans) if in_chans else variant
    else:
        display, spec = resolve(variant, in_chans=in_chans)
    display = name or display
    if output_stride is not None:
        spec = spec.replace(dilate=dilate_for_output_stride(spec, output_stride))
    h, w = input_hw(spec, size)
    depth = _depth(spec, depth, display)
    if decoder not in DECODERS:
        raise UsageError(f"decoder {decoder!r} is not known; use {' or '.join(DECODERS)}")
    import torch  # after the checks above: a usage error answers without it

    from ..models import build_model
    from .trace import trace

    with torch.device("meta"):
        model = build_model(spec)
    records = trace(model, (1, spec.in_chans, h, w))
    stages = _stage_rows(spec, records, depth, h, w)
    levels = [s for s in stages if s.name != "pool"]
    checks = _checks(levels, [(s.height, s.width) for s in levels], decoder)
    result = _decoder_check(checks, levels, decoder, depth, lambda: _Probe(spec, model, levels, decoder))
    return EncoderStages(display, (h, w), spec.in_chans, spec.output_stride, tuple(stages), result)


def _depth(spec: ResNetSpec, depth: Optional[int], display: str) -> int:
    deepest = 1 + len(spec.layers)
    if depth is None:
        return deepest
    if not 1 <= depth <= deepest:
        raise UsageError(f"depth {depth} is not possible for {display}: use 1 (stem only) to {deepest} "
                         f"(down to layer{len(spec.layers)})")
    return depth


def _stage_rows(spec: ResNetSpec, records, depth: int, h: int, w: int) -> list[StageRecord]:
    names = spec.module_names()
    wanted = [("stem", names["stem_act"])]
    if spec.stem_pool != "none" and depth >= 2:
        wanted.append(("pool", names["pool"]))
    wanted += [(f"layer{n}", names["stage"].format(i=n - 1, n=n)) for n in range(1, depth)]
    rows = [StageRecord("input", "", spec.in_chans, h, w, 1, 1)]
    for label, module in wanted:
        r = records[module]
        _, c, mh, mw = r.output_shape
        rows.append(StageRecord(label, module, c, mh, mw, r.stride, r.receptive_field))
    return rows


def _step_ok(deeper: int, skip: int, factor: int, decoder: str) -> bool:
    """One side of one decoder step: upsampling by ``factor`` must give the skip's side exactly;
    resizing is exact when the skip's side is a whole multiple of the deeper side."""
    return deeper * factor == skip if decoder == "upsample" else skip % deeper == 0


def _checks(levels: list[StageRecord], sizes: list[tuple[int, int]], decoder: str) -> list[SkipCheck]:
    """Decoder steps, deepest first, for the level maps of ``sizes`` (same order as ``levels``)."""
    out = []
    for i in range(len(levels) - 1, 0, -1):
        deep, skip = levels[i], levels[i - 1]
        (dh, dw), (sh, sw) = sizes[i], sizes[i - 1]
        factor = deep.stride // skip.stride
        ok = _step_ok(dh, sh, factor, decoder) and _step_ok(dw, sw, factor, decoder)
        out.append(SkipCheck(skip.name, skip.module, deep.name, (dh, dw), factor, (dh * factor, dw * factor),
                             (sh, sw), (sh / dh, sw / dw), ok))
    return out


class _Probe:
    """Which input sides pass the decoder check, by empty-batch forward passes at other sizes.

    H and W never mix in these networks (every op works on each spatial axis on its own), so one
    pass at (h, w) answers for side h as H and side w as W at once; and as kernels, strides and
    paddings are square, a side that passes as H passes as W. The search runs the same spec cut to
    one block per stage: the later blocks of a stage are stride-1 convolutions padded by their
    dilation (torchvision, timm), so they keep the size and the cut network has the same shape
    arithmetic at a fraction of the cost. That is checked at the requested size, and the sizes
    found are confirmed on the full network; if either ever disagrees, the full network is searched.
    """

    def __init__(self, spec: Optional[ResNetSpec], full, levels: list[StageRecord], decoder: str):
        import torch
        from ..models import build_model
        from .trace import empty_cpu_copy

        self.levels, self.decoder, self.full = levels, decoder, empty_cpu_copy(full).eval()
        self.modules = [s.module for s in levels[1:]]
        self._flags: dict[tuple[int, int], tuple[bool, bool]] = {}
        if spec is None:  # not a ResNet: no cut network to stand in for it
            self.model = self.full
            return
        with torch.device("meta"):
            cut = empty_cpu_copy(build_model(spec.replace(layers=(1,) * len(spec.layers)))).eval()
        same = self.sizes(cut, levels[0].height, levels[0].width) == [(s.height, s.width) for s in levels]
        self.model = cut if same else self.full
        self._flags: dict[tuple[int, int], tuple[bool, bool]] = {}

    def sizes(self, model, h: int, w: int) -> Optional[list[tuple[int, int]]]:
        """(H, W) of every level at input (h, w); None when the forward pass fails."""
        import torch

        out: dict[str, tuple[int, int]] = {}
        named = dict(model.named_modules())

        def hook(module, args, output):  # the first call counts (torchvision's stem relu is shared)
            out.setdefault(names[module], tuple(output.shape[-2:]))

        names = {named[m]: m for m in self.modules}
        handles = [named[m].register_forward_hook(hook) for m in self.modules]
        try:
            with torch.no_grad():
                model(torch.empty((0, self.levels[0].channels, h, w), device="cpu"))
        except (RuntimeError, ValueError):
            return None
        finally:
            for handle in handles:
                handle.remove()
        return [(h, w)] + [out[m] for m in self.modules]

    def passes(self, model, h: int, w: int) -> bool:
        sizes = self.sizes(model, h, w)
        return sizes is not None and all(c.ok for c in _checks(self.levels, sizes, self.decoder))

    def flags(self, h: int, w: int) -> tuple[bool, bool]:
        """(side h passes as H, side w passes as W)."""
        if (h, w) not in self._flags:
            sizes = self.sizes(self.model, h, w)
            if sizes is None:  # one side breaks the forward pass: ask for each side alone
                self._flags[(h, w)] = (self.flags(h, h)[0], self.flags(w, w)[1]) if h != w else (False, False)
            else:
                steps = [(i, i - 1, self.levels[i].stride // self.levels[i - 1].stride)
                         for i in range(len(self.levels) - 1, 0, -1)]
                self._flags[(h, w)] = tuple(all(_step_ok(sizes[i][axis], sizes[j][axis], f, self.decoder)
                                                for i, j, f in steps) for axis in (0, 1))
        return self._flags[(h, w)]

    def scan(self, h: int, w: int, step: int) -> Optional[tuple[int, int]]:
        """Nearest (H, W) at or beyond (h, w) in direction ``step`` (-1 or +1), each side on its own;
        None when a side finds none within ``SEARCH_PX``."""
        start, found, done = (h, w), [None, None], [False, False]
        for d in range(SEARCH_PX + 1):
            cand = []
            for axis in (0, 1):
                side = start[axis] + step * d
                done[axis] = done[axis] or side < 1
                cand.append(found[axis] or (start[axis] if done[axis] else side))
            if all(done):
                break
            for axis, ok in enumerate(self.flags(*cand)):
                if ok and not done[axis]:
                    found[axis], done[axis] = cand[axis], True
        return tuple(found) if None not in found else None

    def nearest(self, h: int, w: int) -> SizeSuggestion:
        """The nearest passing sizes below and above (h, w), confirmed on the full network."""
        below, above = self.scan(h, w, -1), self.scan(h, w, +1)
        confirmed = all(self.passes(self.full, *size) for size in (below, above) if size)
        if not confirmed and self.model is not self.full:
            self.model, self._flags = self.full, {}
            return self.nearest(h, w)
        return SizeSuggestion(below, above)


def _sides(total_h: int, total_w: int) -> Sides:
    return Sides(total_h // 2, total_h - total_h // 2, total_w // 2, total_w - total_w // 2)


def _decoder_check(checks: list[SkipCheck], levels: list[StageRecord], decoder: str, depth: int,
                   probe: Callable[[], _Probe]) -> DecoderCheck:
    mismatches = tuple(c for c in checks if not c.ok)
    if not mismatches:
        what = "skip matches its upsampled map" if decoder == "upsample" else "resize factor is a whole number"
        verdict = f"OK: every {what} ({len(checks)} decoder step{'s' if len(checks) != 1 else ''})"
        return DecoderCheck(decoder, depth, True, tuple(checks), (), None, None, None, verdict)
    h, w = levels[0].height, levels[0].width
    suggestion = probe().nearest(h, w)
    below, above = suggestion.below, suggestion.above
    padding = _sides(above[0] - h, above[1] - w) if above else None
    crop = _sides(h - below[0], w - below[1]) if below else None
    verdict = _verdict(mismatches[0], len(mismatches), decoder, below, above, padding, crop)
    return DecoderCheck(decoder, depth, False, tuple(checks), mismatches, suggestion, padding, crop, verdict)


def _hw(size) -> str:
    return f"{size[0]}x{size[1]}"


def _verdict(first: SkipCheck, count: int, decoder: str, below, above, padding, crop) -> str:
    if decoder == "upsample":
        text = (f"MISMATCH at {first.skip}: {first.deeper} {_hw(first.deeper_size)} upsampled x{first.factor} "
                f"is {_hw(first.upsampled)} but {first.skip} is {_hw(first.skip_size)}")
    else:
        (sh, sw), (dh, dw) = first.skip_size, first.deeper_size
        text = (f"NON-INTEGER RESIZE at {first.skip}: the decoder resizes {first.deeper} {_hw(first.deeper_size)} "
                f"to {_hw(first.skip_size)}, factors {sh}/{dh} = {sh / dh:.4g} (H) and {sw}/{dw} = {sw / dw:.4g} (W)")
    if count > 1:
        text += f" ({count - 1} more step{'s fail' if count > 2 else ' fails'})"
    hints = [f"{_hw(size)} ({verb} top {px.top}, bottom {px.bottom}, left {px.left}, right {px.right})"
             for size, verb, px in ((below, "crop", crop), (above, "pad", padding)) if size]
    if hints:
        what = "valid sizes" if decoder == "upsample" else "sizes with whole factors"
        text += f"; nearest {what}: " + " or ".join(hints)
    else:
        text += f"; no valid size within {SEARCH_PX} px"
    return text
