"""Identifying the ResNet of a state_dict from its key names and tensor shapes alone.

:func:`derive_spec` reads the spec; :func:`matching_variants` compares it with every registry variant on
what a state_dict can show (:func:`layout_signature`). Each quantity is a majority vote over every
tensor that shows it, so one corrupt tensor is reported as a shape mismatch instead of changing the
answer. Fields with no parameters (anti-aliasing, the place of a bottleneck's stride, dilation, max-pool
or no pool, the pool of a pre-activation shortcut) cannot be read: variants differing only there are
reported together.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Optional

from ...errors import UsageError
from ...models import VARIANTS, ResNetSpec, resolve

BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
_V1 = re.compile(r"layer(\d+)\.(\d+)\.(.+)")
_V2 = re.compile(r"stages\.(\d+)\.blocks\.(\d+)\.(.+)")


class NotAResNet(ValueError):
    """The keys and shapes describe no network that resnet-cli builds (the message says why)."""


@dataclass(frozen=True)
class Identification:
    """What a state_dict holds. ``spec`` is the reference network (the preferred match, or the derived
    custom spec); ``matches`` the registry names with that state_dict layout; ``variant`` the VARIANT
    text that builds ``spec``; ``reason`` says why nothing was identified (then ``spec`` is None)."""

    spec: Optional[ResNetSpec]
    matches: tuple[str, ...]
    variant: Optional[str]
    undetermined: tuple[str, ...]
    reason: Optional[str] = None


def _vote(values) -> Optional[int]:
    counted = Counter(v for v in values if v is not None)
    return counted.most_common(1)[0][0] if counted else None


def _dim(block: dict, name: str, axis: int) -> Optional[int]:
    shape = block.get(name)
    return shape[axis] if shape is not None and len(shape) > axis else None


def _stages(shapes: dict, preact: bool) -> list[list[dict]]:
    """Per stage, per block: {key after the block prefix: shape}; absent blocks are empty dicts."""
    found: dict[int, dict[int, dict]] = {}
    for key, shape in shapes.items():
        m = (_V2 if preact else _V1).fullmatch(key)
        if m:
            found.setdefault(int(m[1]), {}).setdefault(int(m[2]), {})[m[3]] = shape
    first = 0 if preact else 1
    if sorted(found) != list(range(first, first + len(found))):
        names = ", ".join(("stages." if preact else "layer") + str(i) for i in sorted(found))
        raise NotAResNet(f"stages {names} are not numbered from {first} without gaps")
    return [[found[s].get(b, {}) for b in range(max(found[s]) + 1)] for s in sorted(found)]


def _stem(shapes: dict, preact: bool) -> tuple[str, int, int, Optional[int]]:
    """(stem, stem_width, in_chans, stem output channels)."""
    single = "stem.conv.weight" if preact else "conv1.weight"
    deep = (("stem.conv1.weight", "stem.conv2.weight", "stem.conv3.weight") if preact
            else ("conv1.0.weight", "conv1.3.weight", "conv1.6.weight"))
    if all(len(shapes.get(k, ())) == 4 for k in deep):
        (w0, cin, _, _), (w1, _, _, _), (out, _, _, _) = (shapes[k] for k in deep)
        if w0 == w1:
            stem = "deep"
        elif w0 == 3 * (w1 // 4):
            stem = "tiered"
        else:
            raise NotAResNet(f"a deep stem of widths {w0}/{w1}/{out} is neither deep (w/w/2w) nor tiered (3w/4, w, 2w)")
        if out != 2 * w1:
            raise NotAResNet(f"a deep stem of widths {w0}/{w1}/{out} does not end at twice its width")
        return stem, w1, cin, out
    shape = shapes.get(single, ())
    if len(shape) == 4 and shape[-1] in (3, 7):
        return ("7x7" if shape[-1] == 7 else "3x3"), shape[0], shape[1], shape[0]
    raise NotAResNet(f"no stem convolution ({', '.join((single,) + deep)}) of a known shape")


def _stage_widths(stage: list[dict], stage_index: int, preact: bool, bottleneck: bool,
                  next_norm: Optional[int]) -> tuple[int, Optional[int], Optional[int]]:
    """(output channels, bottleneck inner width, groups) of one stage, each by majority vote."""
    last, norm = ("conv3", "bn3") if bottleneck else ("conv2", "bn2")
    down = ("downsample.conv.weight",) if preact else ("downsample.0.weight", "downsample.1.weight")
    out_votes = [next_norm]
    for b, block in enumerate(stage):
        out_votes += [_dim(block, f"{last}.weight", 0), _dim(block, f"{norm}.weight", 0)]
        if b > 0:
            out_votes += [_dim(block, "conv1.weight", 1), _dim(block, "norm1.weight", 0)]
        out_votes += [_dim(block, k, 0) for k in down if len(block.get(k, ())) == 4]
        if not bottleneck:
            out_votes += [_dim(block, "conv1.weight", 0), _dim(block, "bn1.weight", 0), _dim(block, "norm2.weight", 0)]
    out = _vote(out_votes)
    if out is None:
        raise NotAResNet(f"stage {stage_index + 1} has no convolution that shows its width")
    if not bottleneck:
        return out, None, None
    mid = _vote(v for block in stage for v in (
        _dim(block, "conv1.weight", 0), _dim(block, "conv2.weight", 0), _dim(block, "conv3.weight", 1),
        _dim(block, "bn1.weight", 0), _dim(block, "bn2.weight", 0), _dim(block, "norm2.weight", 0),
        _dim(block, "norm3.weight", 0)))
    groups = _vote(mid // c for c in (_dim(block, "conv2.weight", 1) for block in stage)
                   if mid and c and mid % c == 0)
    return out, mid, groups


def _classes(shapes: dict, preact: bool) -> int:
    name = "head.fc" if preact else "fc"
    return _vote([_dim(shapes, f"{name}.weight", 0), _dim(shapes, f"{name}.bias", 0)]) or 0


def _layout(shapes: dict) -> bool:
    """True for the pre-activation layout (``stages.i.blocks.j``), False for v1 (``layerN.j``)."""
    v1 = sum(bool(_V1.fullmatch(k)) for k in shapes)
    v2 = sum(bool(_V2.fullmatch(k)) for k in shapes)
    if not v1 and not v2:
        raise NotAResNet("no stage keys (layer1.0.* or stages.0.blocks.0.*)")
    return v2 > v1


def derive_spec(shapes: dict[str, tuple[int, ...]]) -> tuple[ResNetSpec, tuple[str, ...]]:
    """The spec a state_dict ({key: shape}, prefix stripped) describes, and the fields it cannot tell.

    Block type from ``conv3`` keys (bottleneck); blocks per stage from the block indices; widths from
    conv/norm shapes; cardinality from the 3x3 conv (``in_channels / groups = weight.shape[1]``);
    width per group as the value that reproduces every stage's inner width (torchvision/timm rule
    ``floor(planes * width_per_group / 64) * groups``); stem from ``conv1`` (7x7 or 3x3) or the deep
    stem's three widths; ``maxpool.0`` is ResNet-RS's conv stem pool; shortcut from the downsample
    indices (``0`` conv: plain, ``1`` conv after a pool: avgpool, none where channels change: option-A
    pad); ``se.fc1`` (SE, ratio from its width) or ``se.conv`` (ECA); BatchNorm when running
    statistics are present, EvoNorm-S0 / -B0 / FRN from their ``v`` / ``tau`` tensors, else GroupNorm;
    ``in_chans`` from the stem; classes from ``fc``/``head.fc``. Widths are read as they are
    (``wide_factor=1``); a width multiplier shows only in the widths it produces.
    For the ``layerN.j`` layout also (:func:`_derive_v1`) the block type per stage, each block's inner
    widths (``reduce_first``, or explicit ``out_channels``/``block_widths`` when no width rule fits),
    ``conv_bias`` and ``down_kernel_size``.

    Raises:
        NotAResNet: the keys are not a ResNet that resnet-cli builds (the message says why).
    """
    from ...models.layers import make_divisible

    preact = _layout(shapes)
    stages = _stages(shapes, preact)
    if not preact:
        return _derive_v1(shapes, stages, make_divisible)
    blocks = [b for stage in stages for b in stage]
    bottleneck = 2 * sum("conv3.weight" in b or "bn3.weight" in b or "norm3.weight" in b for b in blocks) > len(blocks)
    stem, stem_width, in_chans, _ = _stem(shapes, preact)
    outs, mids, groups = [], [], []
    for i, stage in enumerate(stages):
        next_norm = (_dim(shapes, "norm.weight", 0) if i == len(stages) - 1 else None) if preact else None
        out, mid, g = _stage_widths(stage, i, preact, bottleneck, next_norm)
        outs.append(out)
        mids.append(mid)
        groups.append(g)
    undetermined = ["aa", "dilate", "input_size"]
    fields: dict[str, Any] = dict(block="bottleneck" if bottleneck else "basic", layers=tuple(map(len, stages)),
                                  preact=preact, stem=stem, stem_width=stem_width, in_chans=in_chans,
                                  num_classes=_classes(shapes, preact), naming="timm")
    if bottleneck:
        bad = [c for c in outs if c % 4]
        if bad:
            raise NotAResNet(f"a bottleneck stage outputs {bad[0]} channels, not a multiple of 4")
        fields["widths"] = tuple(c // 4 for c in outs)
        fields["groups"] = g0 = _vote(groups) or 1
        fields["width_per_group"], exact = _width_per_group(fields["widths"], mids, g0)
        if not exact:
            undetermined.append("width_per_group")
    else:
        fields["widths"] = tuple(outs)
    if not preact and "maxpool.0.weight" in shapes:
        fields["stem_pool"] = "conv"
    else:
        fields["stem_pool"] = "none" if stem == "3x3" else "max"
        undetermined.append("stem_pool (max or none)")
    fields["shortcut"] = _shortcut(stages, preact, stem)
    if preact:
        undetermined.append("shortcut (conv or avgpool)")
    fields.update(_attention(stages, outs, make_divisible))
    fields["norm"] = _norm_kind(shapes)
    if preact:
        undetermined.extend(_v2_undetermined())
    try:
        return ResNetSpec(**fields), tuple(undetermined)
    except UsageError as exc:
        raise NotAResNet(str(exc)) from None


def _is_bottleneck(block: dict) -> bool:
    return "conv3.weight" in block or "bn3.weight" in block


def _derive_v1(shapes: dict, stages: list[list[dict]], make_divisible) -> tuple[ResNetSpec, tuple[str, ...]]:
    """:func:`derive_spec` for the post-activation layout (``layerN.j``): the block type of each stage,
    each block's inner widths (so per-block ``block_widths`` of pruned nets, ``reduce_first``), conv
    biases, the shortcut's kernel, and the rule (widths, groups, width per group) where it fits."""
    kinds = ["bottleneck" if 2 * sum(map(_is_bottleneck, stage)) > len(stage) else "basic" for stage in stages]
    stem, stem_width, in_chans, _ = _stem(shapes, False)
    outs = [_stage_widths(stage, i, False, kind == "bottleneck", None)[0]
            for i, (stage, kind) in enumerate(zip(stages, kinds))]
    groups = _vote(first // c for stage, kind in zip(stages, kinds) if kind == "bottleneck" for b in stage
                   for first in [_vote([_dim(b, "conv1.weight", 0), _dim(b, "bn1.weight", 0)])]
                   for c in [_dim(b, "conv2.weight", 1)] if first and c and first % c == 0) or 1
    inner = []  # per stage, per block: (first, mid) or (first,)
    for stage, kind, out in zip(stages, kinds, outs):
        rows = []
        for b in stage:
            if kind == "bottleneck":
                first = _vote([_dim(b, "conv1.weight", 0), _dim(b, "bn1.weight", 0),
                               (_dim(b, "conv2.weight", 1) or 0) * groups or None])
                mid = _vote([_dim(b, "conv2.weight", 0), _dim(b, "bn2.weight", 0), _dim(b, "conv3.weight", 1)])
                rows.append((first, mid))
            else:
                rows.append((_vote([_dim(b, "conv1.weight", 0), _dim(b, "bn1.weight", 0),
                                    _dim(b, "conv2.weight", 1)]) or out,))
        if any(w is None for row in rows for w in row):
            raise NotAResNet(f"a block of stage {len(inner) + 1} has no convolution that shows its width")
        inner.append(rows)
    fields: dict[str, Any] = dict(block=kinds[0], stage_blocks=tuple(kinds) if len(set(kinds)) > 1 else (),
                                  layers=tuple(map(len, stages)), stem=stem, stem_width=stem_width,
                                  in_chans=in_chans, num_classes=_classes(shapes, False), naming="timm",
                                  groups=groups)
    undetermined = ["aa", "dilate", "input_size"]
    if "bottleneck" in kinds:
        undetermined.append("stride_in_1x1")
    # reduce_first: the first conv's width as a fraction of the 3x3's (bottleneck) or of the output (basic)
    pairs = [(row[0], row[-1] if kind == "bottleneck" else out)
             for stage, kind, out in zip(inner, kinds, outs) for row in stage]
    reduce = _vote(full // first for first, full in pairs if first and full % first == 0)
    fields["reduce_first"] = reduce if reduce and all(first == full // reduce for first, full in pairs) else 1
    regular = _regular_widths(kinds, outs, inner, groups, fields["reduce_first"])
    if regular is None:  # no width rule gives these widths: a pruned net, every width explicit
        fields.update(widths=_nominal_widths(stages, kinds, outs), out_channels=tuple(outs),
                      block_widths=tuple(w for stage in inner for row in stage for w in row), reduce_first=1)
    else:
        fields["widths"], fields["width_per_group"], exact = regular
        if not exact:
            undetermined.append("width_per_group")
    if "maxpool.0.weight" in shapes:
        fields["stem_pool"] = "conv"
    else:
        fields["stem_pool"] = "none" if stem == "3x3" else "max"
        undetermined.append("stem_pool (max or none)")
    fields["shortcut"] = _shortcut(stages, False, stem)
    kernels = [len(s[0]["downsample.0.weight"]) == 4 and s[0]["downsample.0.weight"][-1]
               for i, s in enumerate(stages) if i and s and "downsample.0.weight" in s[0]]
    fields["down_kernel_size"] = (_vote(k for k in kernels if k) or 1) if fields["shortcut"] == "conv" else 1
    fields["conv_bias"] = any(k.endswith(("conv1.bias", "conv2.bias", "conv3.bias")) for k in shapes
                              if _V1.fullmatch(k))
    fields.update(_attention(stages, outs, make_divisible))
    fields["norm"] = _norm_kind(shapes)
    try:
        return ResNetSpec(**fields), tuple(undetermined)
    except UsageError as exc:
        raise NotAResNet(str(exc)) from None


def _nominal_widths(stages: list[list[dict]], kinds: list[str], outs: list[int]) -> tuple[int, ...]:
    """The nominal ``widths`` of a net with explicit widths: they only set the ECA kernels (timm's
    pruned nets keep the unpruned ones), so per stage the first of out / expansion, the usual
    64 x 2^i, or a power of two whose ECA kernel is the checkpoint's (any of them when there is no ECA)."""
    from ...models.layers import eca_kernel_size

    widths = []
    for i, (stage, kind, out) in enumerate(zip(stages, kinds, outs)):
        expansion = 4 if kind == "bottleneck" else 1
        kernel = _vote(_dim(b, "se.conv.weight", 2) for b in stage)
        candidates = ([out // expansion] if out % expansion == 0 else []) + [64 * 2 ** i] + [2 ** j for j in range(15)]
        widths.append(next((w for w in candidates if kernel is None or eca_kernel_size(w * expansion) == kernel),
                           candidates[0]))
    return tuple(widths)


def _regular_widths(kinds, outs, inner, groups, reduce_first):
    """(widths, width_per_group, exact) when the torchvision/timm rule gives every block's widths, else None."""
    if any(kind == "bottleneck" and out % 4 for kind, out in zip(kinds, outs)):
        return None
    widths = tuple(out // 4 if kind == "bottleneck" else out for kind, out in zip(kinds, outs))
    for kind, w, stage in zip(kinds, widths, inner):
        if any(row != stage[0] for row in stage) or (kind == "basic" and stage[0] != (w // reduce_first,)):
            return None
        if kind == "bottleneck" and stage[0][0] != stage[0][1] // reduce_first:
            return None
    bottle = [(w, stage[0][1]) for kind, w, stage in zip(kinds, widths, inner) if kind == "bottleneck"]
    wpg, exact = 64, True
    if bottle:
        try:
            wpg, exact = _width_per_group(tuple(w for w, _ in bottle), [m for _, m in bottle], groups)
        except NotAResNet:
            return None
    return widths, wpg, exact
def _norm_kind(shapes: dict) -> str:
    """The norm layer of a state_dict, from the tensors each norm module holds, by majority over the
    modules: BatchNorm (``running_mean``), EvoNorm-B0 (``v`` and ``running_var``; timm ``EvoNorm2dB0``),
    EvoNorm-S0 (``v`` only; timm ``EvoNorm2dS0``), FRN (``tau``; timm ``FilterResponseNormTlu2d``), else
    GroupNorm (``weight`` and ``bias`` only)."""
    held: dict[str, set] = {}
    for key in shapes:
        module, _, leaf = key.rpartition(".")
        held.setdefault(module, set()).add(leaf)
    votes = Counter()
    for leaves in held.values():
        if "running_mean" in leaves:
            votes["batchnorm"] += 1
        elif "v" in leaves:
            votes["evonorm_b0" if "running_var" in leaves else "evonorm"] += 1
        elif "tau" in leaves:
            votes["frn"] += 1
    return votes.most_common(1)[0][0] if votes else "groupnorm"


def _v2_undetermined() -> tuple[str, ...]:
    """What a pre-activation (timm ResNetV2) state_dict cannot show beyond the v1 fields: weight
    standardisation has no parameters of its own (BiT's StdConv2d keys are a Conv2d's), nor has the
    zero padding of BiT's stem pool."""
    return ("conv (plain or std)", "stem pool padding (max, fixed or same)")


def _width_per_group(planes: tuple[int, ...], mids: list, groups: int) -> tuple[int, bool]:
    """The width per group that gives every inner width (64 when it does), and whether it is the only one."""
    lo, hi = 1, 16384
    for p, mid in zip(planes, mids):
        if mid is None or mid % groups:
            raise NotAResNet(f"a bottleneck inner width of {mid} does not split into {groups} groups")
        g = mid // groups
        lo, hi = max(lo, -(-64 * g // p)), min(hi, -(-64 * (g + 1) // p) - 1)
    if lo > hi:
        raise NotAResNet(f"bottleneck inner widths {'/'.join(map(str, mids))} follow no width per group "
                         f"for stage widths {'/'.join(map(str, planes))}")
    return (64 if lo <= 64 <= hi else lo), lo == hi


def _shortcut(stages: list[list[dict]], preact: bool, stem: str) -> str:
    votes = Counter()
    for stage in stages:
        keys = [k for k in stage[0] if k.startswith("downsample.")] if stage else []
        for k in keys:
            ndim = len(stage[0][k])
            if preact or (k.startswith("downsample.0.") and ndim == 4) or (k.startswith("downsample.1.") and ndim == 1):
                votes["conv"] += 1
            elif k.startswith(("downsample.1.", "downsample.2.")):
                votes["avgpool"] += 1
    if preact:  # the pool of timm's DownsampleAvg has no parameters: follow timm's d/t variants
        return "avgpool" if stem in ("deep", "tiered") else "conv"
    if not votes:
        return "pad"
    return votes.most_common(1)[0][0]



def _attention(stages, outs, make_divisible) -> dict:
    """``attn`` (and ``se_ratio`` for SE) from the blocks' keys: SE's two 1x1 convs or ECA's 1-D conv."""
    blocks = [b for stage in stages for b in stage]
    se = sum("se.fc1.weight" in b for b in blocks)
    eca = sum("se.conv.weight" in b for b in blocks)
    attn = "se" if se and se >= eca else "eca" if eca else "none"
    if attn != "se":
        return {"attn": attn}
    hidden = [_vote(v for b in stage for v in (_dim(b, "se.fc1.weight", 0), _dim(b, "se.fc2.weight", 1)))
              for stage in stages]
    return {"attn": attn, "se_ratio": _se_ratio(outs, hidden, make_divisible)}

def _se_ratio(channels: list[int], hidden: list, make_divisible) -> float:
    """The SE reduction ratio that gives every hidden width (1/16 and 1/4 preferred, as timm's)."""
    candidates = [1 / 16, 1 / 4, 1 / 8, 1 / 2, 1 / 32] + [h / c for c, h in zip(channels, hidden) if h]
    for r in candidates:
        if 0 < r <= 1 and all(h is None or make_divisible(c * r, 8, round_limit=0.0) == h
                              for c, h in zip(channels, hidden)):
            return r
    raise NotAResNet(f"SE widths {'/'.join(map(str, hidden))} follow no reduction ratio")


# ------------------------------------------------------------------------------------------- matching
def layout_signature(spec: ResNetSpec) -> tuple:
    """Everything about ``spec`` that its state_dict keys and shapes show, and nothing else.

    Left out, because no parameter depends on them: ``aa``, ``dilate``, ``zero_init_last``, ``naming``,
    ``input_size``, ``stride_in_1x1``, max-pool vs no stem pool (and its padding: ``fixed``, ``same``),
    the pool of a pre-activation shortcut, weight standardisation (``conv``, ``conv_eps``), and
    ``se_ratio`` / ``width_per_group`` / ``wide_factor`` / ``reduce_first`` / ``widths`` beyond the widths
    (and ECA kernels) they produce.
    """
    from ...models.layers import deep_stem_widths, eca_kernel_size, make_divisible

    s = spec
    stem = (*deep_stem_widths(s), s.stem_channels) if s.stem in ("deep", "tiered") else (s.stem_planes,)
    inner = tuple(row for stage in s.block_inner_widths() for row in stage)
    se = tuple(make_divisible(c * s.se_ratio, 8, round_limit=0.0) for c in s.stage_channels) if s.attn == "se" else ()
    eca = tuple(eca_kernel_size(w * (4 if b == "bottleneck" else 1))
                for w, b in zip(s.stage_planes, s.block_types())) if s.attn == "eca" else ()
    shortcut = None if s.preact else s.shortcut
    down = s.down_kernel_size if s.shortcut == "conv" and len(s.layers) > 1 else 1
    return (s.preact, s.block_types(), s.layers, s.stage_channels, inner,
            s.groups if "bottleneck" in s.block_types() else 1, s.stem, stem, s.stem_pool == "conv", shortcut,
            s.attn, se, eca, s.norm, s.in_chans, s.num_classes, s.conv_bias, down)


def matching_variants(spec: ResNetSpec) -> tuple[str, ...]:
    """Registry names (registry order) whose network, with ``spec``'s in_chans and num_classes, has
    the state_dict layout of ``spec``."""
    target = layout_signature(spec)
    names = []
    for name, v in VARIANTS.items():
        other = v.spec
        if (other.in_chans, other.num_classes) != (spec.in_chans, spec.num_classes):
            try:
                other = other.replace(in_chans=spec.in_chans, num_classes=spec.num_classes)
            except UsageError:
                continue
        if layout_signature(other) == target:
            names.append(name)
    return tuple(names)


def _variant_text(name: str, spec: ResNetSpec) -> str:
    """The VARIANT text that builds ``spec`` from registry ``name``: 'resnet50(in_chans=1, num_classes=10)'."""
    base = VARIANTS[name].spec
    over = [f"{k}={getattr(spec, k)}" for k in ("in_chans", "num_classes") if getattr(spec, k) != getattr(base, k)]
    return f"{name}({', '.join(over)})" if over else name


def identify(shapes: dict[str, tuple[int, ...]]) -> Identification:
    """Identify the network of a state_dict ({key: shape}, prefix stripped). Builds nothing.

    The preferred match is the first in registry order without anti-aliasing (the plain network).
    """
    empty = [k for k, s in shapes.items() if len(s) and 0 in tuple(s)]
    if empty:  # a zero-width layer (crafted or truncated) describes no network, and widths divide
        shape = "x".join(map(str, shapes[empty[0]]))
        more = f" and {len(empty) - 1} more" if len(empty) > 1 else ""
        return Identification(None, (), None, (), f"tensor {empty[0]!r} has a zero-width shape {shape}{more}: "
                              "no layer of a ResNet is empty")
    try:
        derived, undetermined = derive_spec(shapes)
    except NotAResNet as exc:
        return Identification(None, (), None, (), str(exc))
    matches = matching_variants(derived)
    if not matches:
        return Identification(derived, (), derived.to_string(), undetermined)
    plain = [n for n in matches if VARIANTS[n].spec.aa == "none"]
    first = (plain or list(matches))[0]
    text = _variant_text(first, derived)
    return Identification(resolve(text)[1], matches, text, undetermined)
