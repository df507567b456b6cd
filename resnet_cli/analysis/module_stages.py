"""Encoder stages of a network that is not a ResNetSpec (the user's own module): the modules its own
``feature_info`` names (timm), or found from the trace by where the cumulative stride changes, as
timm's ``feature_info`` describes them; then the same U-Net decoder check as :mod:`.stages`."""

from __future__ import annotations

import dataclasses

from ..errors import UsageError
from .stages import DECODERS, EncoderStages, StageRecord, _checks, _decoder_check, _Probe


def module_encoder_stages(variant, size, in_chans, output_stride, depth, decoder, name) -> EncoderStages:
    """:func:`.stages.encoder_stages` for a network that is not a ResNetSpec (same arguments and errors)."""
    if in_chans is not None or output_stride is not None:
        flag = "--in-chans" if in_chans is not None else "--output-stride"
        raise UsageError(f"{flag} applies to the built-in ResNets; for your own module pass the factory's own "
                         "argument with --kwargs (timm: 'output_stride=16', 'in_chans=1')")
    if decoder not in DECODERS:
        raise UsageError(f"decoder {decoder!r} is not known; use {' or '.join(DECODERS)}")
    from .network import check_forward, network_hw, open_network
    from .trace import trace

    net = open_network(variant, name=name, input_size=size)
    h, w = network_hw(net, size)
    shape = (1, net.in_chans, h, w)
    check_forward(net, shape)
    stages, how = module_stages(net.model, trace(net.model, shape), h, w, net.in_chans)
    if len(stages) < 2:
        raise UsageError(f"{net.name} has no module whose output is a strided (N, C, H, W) map at {h}x{w}: "
                         "no encoder stages to check")
    deepest = len(stages) - 1
    if depth is None:
        depth = deepest
    elif not 1 <= depth <= deepest:
        raise UsageError(f"depth {depth} is not possible for {net.name}: use 1 to {deepest} "
                         f"(its {deepest} stages)")
    stages = stages[:depth + 1]
    chosen = ", ".join(f"{s.name} = {s.module} (stride {s.stride})" for s in stages[1:])
    notes = net.notes + (f"{how}: {chosen}",)
    checks = _checks(stages, [(s.height, s.width) for s in stages], decoder)
    result = _decoder_check(checks, stages, decoder, depth, lambda: _Probe(None, net.model, stages, decoder))
    return EncoderStages(net.name, (h, w), net.in_chans, stages[-1].stride, tuple(stages), result, notes=notes)


def module_stages(model, records, h: int, w: int, in_chans: int) -> tuple[list[StageRecord], str]:
    """(stages, how they were found) for a module that is not a ResNetSpec: the modules its own
    ``feature_info`` names (timm models carry one: a list of dicts, or ``FeatureInfo`` for
    ``features_only``), when each of them ran with an (N, C, H, W) output; else :func:`inferred_stages`."""
    from .trace import shape_stride

    info = getattr(model, "feature_info", None)
    dicts = info.get_dicts() if hasattr(info, "get_dicts") else info
    if isinstance(dicts, list) and dicts and all(isinstance(d, dict) and d.get("module") for d in dicts):
        rows = [StageRecord("input", "", in_chans, h, w, 1, 1)]
        for i, d in enumerate(dicts, 1):
            r = records.get(d["module"])
            if r is None or len(r.output_shape) != 4:
                break
            _, c, mh, mw = r.output_shape
            stride = r.stride if r.stride is not None else shape_stride((h, w), (mh, mw))
            rows.append(StageRecord(f"stage{i}", d["module"], c, mh, mw, stride or d.get("reduction", 1),
                                    r.receptive_field))
        else:
            return rows, "stages from the module's own feature_info (timm)"
    return (inferred_stages(records, h, w, in_chans),
            "stages inferred from the trace, the last module at each cumulative stride (timm's feature_info rule)")


def inferred_stages(records, h: int, w: int, in_chans: int) -> list[StageRecord]:
    """``input`` and one :class:`StageRecord` per cumulative stride, from a :func:`.trace.trace` of a
    (1, C, H, W) input, named ``stage1``.. by rising stride.

    Each stage is the last module to finish with an (N, C, H, W) output at that stride, as timm's
    ``feature_info`` names the end of each stage (``layer1``; ``blocks.0``), except: a module inside
    a module that makes the step to the next stride (``layer2.0.conv1``, the 1x1 conv of the block
    that halves the map, still at stride 4) belongs to that step, not to the stage; an ``Identity``
    passes its input on and names nothing, nor does a container of several stages (ConvNeXt's
    ``stages``, whose input is more than one stride step below its output); a module at a smaller stride than one already reached (a
    decoder's) starts nothing. The stride is the traced one; where the RF rule stopped, it is read
    from the sides (:func:`.trace.shape_stride`), so a network that reshapes inside its blocks still
    shows its stages. After the last stage a head conv at the same stride (EfficientNet's conv_head)
    is the last module there and is chosen, where timm names the last block."""
    from .trace import shape_stride

    spatial = {}
    for r in records.values():
        if r.name and len(r.output_shape) == 4 and (r.stride is not None or r.rf_note):
            stride = r.stride if r.stride is not None else shape_stride((h, w), r.output_shape[2:])
            if stride is not None:
                spatial[r.name] = (r, stride)
    ordered = sorted({1} | {s for _, s in spatial.values()})  # 1: the input itself
    following = dict(zip(ordered, ordered[1:]))
    # modules that step from one stride to the next: their insides belong to the step
    steps = {name for name, (r, s) in spatial.items()
             if r.input_stride is not None and following.get(r.input_stride) == s}
    best: dict[int, StageRecord] = {}
    deepest = 1
    for name, (r, stride) in spatial.items():
        if stride < deepest or r.type == "Identity":
            continue
        if r.input_stride is not None and r.input_stride < stride and following.get(r.input_stride) != stride:
            continue  # a container of several stages (ConvNeXt's ``stages``): its last stage names the map
        deepest = stride
        parts = name.split(".")
        inside = any(".".join(parts[:i]) in steps and spatial[".".join(parts[:i])][0].input_stride == stride
                     for i in range(1, len(parts)))
        if not inside:
            _, c, mh, mw = r.output_shape
            best[stride] = StageRecord("", name, c, mh, mw, stride, r.receptive_field)
    rows = [StageRecord("input", "", in_chans, h, w, 1, 1)]
    return rows + [dataclasses.replace(best[s], name=f"stage{i}") for i, s in enumerate(sorted(best), 1)]
