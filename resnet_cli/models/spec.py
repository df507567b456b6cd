"""The whole architecture of a ResNet as plain data (no torch here).

One frozen :class:`ResNetSpec` describes a network completely; the builder in ``models.resnet``
reads nothing else. Named variants (``registry``) and custom spec strings (``parse``) both end
up as a ``ResNetSpec``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..errors import UsageError
from ..limits import MAX_CLASSES

BLOCKS = ("basic", "bottleneck")
STEMS = ("7x7", "deep", "tiered", "3x3")
STEM_POOLS = ("max", "conv", "none", "fixed", "same")
SHORTCUTS = ("conv", "avgpool", "pad")
ATTNS = ("none", "se", "eca")
NORMS = ("batchnorm", "groupnorm", "evonorm", "frn", "evonorm_b0")
AAS = ("none", "blur", "avgpool")
NAMINGS = ("torchvision", "timm")
CONVS = ("plain", "std")
#: Norms that carry their own activation (timm's ResNetV2 only): no ReLU of ours follows them.
SELF_ACTIVATED_NORMS = ("evonorm", "frn", "evonorm_b0")

#: Blocks per stage behind the usual depths (He et al. 2015, table 1; timm for 10, 14, 26, 200).
DEPTHS: dict[int, tuple[str, tuple[int, ...]]] = {
    10: ("basic", (1, 1, 1, 1)),
    14: ("bottleneck", (1, 1, 1, 1)),
    18: ("basic", (2, 2, 2, 2)),
    26: ("bottleneck", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
    200: ("bottleneck", (3, 24, 36, 3)),
}


@dataclass(frozen=True)
class ResNetSpec:
    """A ResNet, completely.

    Attributes:
        block: ``basic`` (two 3x3 convs, expansion 1) or ``bottleneck`` (1x1, 3x3, 1x1, expansion 4;
            the stride sits on the 3x3 conv, ResNet v1.5 as in torchvision and timm; see ``stride_in_1x1``).
        layers: blocks per stage.
        widths: planes per stage; a stage outputs ``width * expansion`` channels.
        groups: cardinality of the bottleneck's 3x3 conv (ResNeXt, Xie et al. 2017).
        width_per_group: base width; the bottleneck's inner width is
            ``floor(planes * width_per_group / 64) * groups`` (torchvision and timm rule).
        stem: ``7x7`` (one 7x7/2 conv), ``deep`` (three 3x3 convs, widths stem_width, stem_width,
            2*stem_width; timm 'c'/'s'/'d'), ``tiered`` (widths 3*stem_width//4, stem_width,
            2*stem_width; timm 't'), or ``3x3`` (one 3x3/1 conv, the CIFAR nets of He et al. 2015 §4.2).
        stem_width: output channels of a 7x7 or 3x3 stem; for deep stems, the width of the first convs.
        stem_pool: ``max`` (3x3/2 max-pool), ``conv`` (3x3/2 conv + norm + act, ResNet-RS) or ``none``;
            pre-activation nets also take ``fixed`` (zero-pad 1, then an unpadded 3x3/2 max-pool: BiT's
            approximation of TF 'SAME', timm ``stem_type='fixed'``) and ``same`` (3x3/2 max-pool with
            TF 'SAME' padding computed from the input size, pad value -inf: timm ``MaxPool2dSame``).
        shortcut: projection when a block changes stride or channels: ``conv`` (strided 1x1 conv + norm),
            ``avgpool`` (2x2/2 average pool, ceil mode, padding not counted, then 1x1 conv + norm;
            ResNet-D, He et al. 2019) or ``pad`` (option A: subsample + zero channel padding, no parameters).
        attn: channel attention after the last conv of each block: ``se`` (Hu et al. 2018) or ``eca``
            (Wang et al. 2020).
        se_ratio: SE reduction; hidden channels = ``make_divisible(channels * se_ratio, 8)`` (timm).
        norm: ``batchnorm`` or ``groupnorm`` (32 groups, as timm's ``resnet50_gn``); pre-activation nets
            also take ``evonorm`` (EvoNorm-S0, Liu et al. 2020: ``x * sigmoid(v x) / group_std(x)`` over
            32 groups, then a per-channel scale and shift; timm ``EvoNorm2dS0``, eps 1e-5) and ``frn``
            (Filter Response Normalization + TLU, Singh and Krishnan 2020: ``max(g x / rms(x) + b, tau)``
            with the mean square over H, W; timm ``FilterResponseNormTlu2d``, eps 1e-5), and
            ``evonorm_b0`` (EvoNorm-B0: ``x / max(sqrt(var_batch + eps), v x + instance_std(x))``, the
            batch variance kept as ``running_var``; timm ``EvoNorm2dB0``, eps 1e-3). All three are
            norm and activation in one: no ReLU follows them.
        aa: anti-aliased downsampling in the strided convs of blocks: ``blur`` (3x3 binomial blur pool,
            Zhang 2019) or ``avgpool`` (2x2 average pool).
        dilate: for stages 2.., replace the stage's stride by dilation (DeepLab; torchvision's
            ``replace_stride_with_dilation``).
        preact: pre-activation ordering (ResNet v2, He et al. 2016), timm's ``ResNetV2`` layout.
        zero_init_last: zero-initialise the last norm of every residual branch (Goyal et al. 2017).
        in_chans: input channels.
        num_classes: classifier outputs; 0 drops the classifier.
        naming: module names of the reference library, ``torchvision`` (one shared ``relu`` per block,
            ``avgpool``) or ``timm`` (``act1``.., ``global_pool``); state_dict keys are the same in both.
        input_size: default (C, H, W) input.
        conv: ``plain`` or ``std``: weight-standardised convolutions (Qiao et al. 2019; BiT, Kolesnikov
            et al. 2020), each conv's weight normalised to zero mean and unit variance per output
            channel before use (timm ``StdConv2d``); every conv but the classifier's. Pre-activation
            nets only.
        conv_eps: the epsilon of ``conv=std`` (timm's StdConv2d default 1e-6; BiT uses 1e-8).
        wide_factor: width multiplier of the stem and every stage (BiT's ``x1``/``x3``/``x4``, timm
            ``width_factor``, which multiplies its ``stem_chs`` and ``channels`` arguments alike): the
            network has ``widths * wide_factor`` planes and a stem of ``stem_width * wide_factor``, written
            values included; the spec keeps ``widths`` and ``stem_width`` as written. Not torchvision's
            ``wide_resnet50_2``, which is ``width_per_group=128`` (the stem stays 64 channels).
        stride_in_1x1: put a bottleneck's stride on its first 1x1 conv instead of the 3x3 (ResNet v1 as
            in He et al. 2015 and Caffe; detectron2 ``STRIDE_IN_1X1``, mmdetection ``style='caffe'``).
        conv_bias: every convolution of the stem, the blocks and the shortcuts has a bias (Keras'
            ``ResNet50``; the norms stay).
        down_kernel_size: kernel of a strided conv shortcut (timm ``down_kernel_size``: 3 for SENet-154);
            a shortcut that does not stride keeps 1x1, as in timm.
        reduce_first: the first conv of every block outputs ``inner width // reduce_first`` channels
            (timm ``block_reduce_first``: 2 for SENet-154).
        stage_blocks: block type per stage, overriding ``block`` (timm's ``test_resnet`` mixes them).
        out_channels: output channels per stage, overriding ``width * expansion`` (pruned networks).
        block_widths: inner widths of every block in order, flat: two per bottleneck (first conv's
            and 3x3 conv's outputs), one per basic block; overrides the width rule (the pruned
            ECA-ResNets of Aflalo et al. 2020, timm's ``_pruned/*.txt``). ECA kernels keep following
            the nominal width ``widths[i] * expansion``, as in timm's pruned nets.
    """

    block: str = "bottleneck"
    layers: tuple[int, ...] = (3, 4, 6, 3)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    groups: int = 1
    width_per_group: int = 64
    stem: str = "7x7"
    stem_width: int = 64
    stem_pool: str = "max"
    shortcut: str = "conv"
    attn: str = "none"
    se_ratio: float = 1 / 16
    norm: str = "batchnorm"
    aa: str = "none"
    dilate: tuple[bool, ...] = field(default=())
    preact: bool = False
    zero_init_last: bool = True
    in_chans: int = 3
    num_classes: int = 1000
    naming: str = "timm"
    input_size: tuple[int, int, int] = (3, 224, 224)
    conv: str = "plain"
    conv_eps: float = 1e-6
    wide_factor: int = 1
    stride_in_1x1: bool = False
    conv_bias: bool = False
    down_kernel_size: int = 1
    reduce_first: int = 1
    stage_blocks: tuple[str, ...] = ()
    out_channels: tuple[int, ...] = ()
    block_widths: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.dilate:
            object.__setattr__(self, "dilate", (False,) * max(len(self.layers) - 1, 0))
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "widths", tuple(self.widths))
        object.__setattr__(self, "dilate", tuple(bool(d) for d in self.dilate))
        for name in ("stage_blocks", "out_channels", "block_widths"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`UsageError` naming the first field that cannot describe a network."""
        choices = {"block": BLOCKS, "stem": STEMS, "stem_pool": STEM_POOLS, "shortcut": SHORTCUTS,
                   "attn": ATTNS, "norm": NORMS, "aa": AAS, "naming": NAMINGS, "conv": CONVS}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise UsageError(f"{key}={getattr(self, key)!r} is not allowed; use one of {', '.join(allowed)}")
        inert = inert_settings({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        if inert:
            raise UsageError(inert[0][1])
        if not self.layers or any(n < 1 for n in self.layers):
            raise UsageError(f"layers={_dashed(self.layers)} must be one or more stages of at least 1 block each")
        if len(self.widths) != len(self.layers):
            raise UsageError(f"widths={_dashed(self.widths)} must give one width per stage "
                             f"({len(self.layers)} stages in layers={_dashed(self.layers)})")
        if len(self.dilate) != len(self.layers) - 1:
            raise UsageError(f"dilate has {len(self.dilate)} entries; give one per stage after the first "
                             f"({len(self.layers) - 1})")
        positive = {"groups": self.groups, "width_per_group": self.width_per_group,
                    "stem_width": self.stem_width, "in_chans": self.in_chans, "wide_factor": self.wide_factor}
        positive.update({f"widths[{i}]": w for i, w in enumerate(self.widths)})
        for key, value in positive.items():
            if value < 1:
                raise UsageError(f"{key}={value} must be a positive integer")
        limits = {"blocks per stage": (max(self.layers), 1000), "a stage width": (max(self.stage_planes), 16384),
                  "stem_width": (self.stem_width * self.wide_factor, 16384), "in_chans": (self.in_chans, 16384),
                  "groups": (self.groups, 16384), "width_per_group": (self.width_per_group, 16384),
                  "stages": (len(self.layers), 16)}
        for what, (value, top) in limits.items():
            if value > top:
                raise UsageError(f"{what} = {value} is beyond what resnet-cli builds (at most {top})")
        if "bottleneck" in self.block_types() and min(self.bottleneck_width(w) for w in self.stage_planes) < 1:
            raise UsageError(f"width_per_group={self.width_per_group} leaves a bottleneck with no channels; "
                             "use a larger width_per_group or wider stages")
        self._validate_layout()
        if not 0 <= self.num_classes <= MAX_CLASSES:
            raise UsageError(f"num_classes={self.num_classes} is out of range: use 0 (no classifier) to {MAX_CLASSES}")
        if not 0 < self.se_ratio <= 1:
            raise UsageError(f"se_ratio={self.se_ratio} must be in (0, 1]")
        if "basic" in self.block_types() and (self.groups != 1 or self.width_per_group != 64):
            key = f"groups={self.groups}" if self.groups != 1 else f"width_per_group={self.width_per_group}"
            blocks = f"stage_blocks={_dashed(self.stage_blocks)}" if self.stage_blocks else f"block={self.block}"
            needs = "bottleneck blocks in every stage" if self.stage_blocks else "block=bottleneck"
            raise UsageError(f"{key} needs {needs}: groups and width_per_group apply to bottleneck blocks "
                             f"only, and {blocks} has basic blocks, which take groups=1 and width_per_group=64 "
                             "(timm and torchvision refuse others)")
        if self.stem == "tiered" and self.stem_width < 4:
            raise UsageError(f"stem_width={self.stem_width} must be at least 4 for a tiered stem")
        if self.preact and (self.attn != "none" or self.aa != "none" or self.stem_pool == "conv"
                            or self.shortcut == "pad"):
            raise UsageError("preact=true supports attn=none, aa=none, stem_pool=max|none|fixed|same and "
                             "shortcut=conv|avgpool only")
        if self.preact:
            changed = [k for k in _V1_ONLY if getattr(self, k) != _V1_DEFAULTS[k]]
            if changed:
                raise UsageError(f"{changed[0]} applies to post-activation networks only (preact=false)")
        self._validate_v2_layers()
        if self.norm in ("groupnorm", "evonorm"):
            bad = [c for c in self.norm_channels() if c % 32]
            if bad:
                raise UsageError(f"norm={self.norm} uses 32 groups, but a layer has {bad[0]} channels "
                                 "(not a multiple of 32); use norm=batchnorm or wider layers")
        if self.input_size[0] != self.in_chans:
            object.__setattr__(self, "input_size", (self.in_chans, *self.input_size[1:]))

    def _validate_layout(self) -> None:
        """The v1-layout keys: stride_in_1x1, conv_bias, down_kernel_size, reduce_first, stage_blocks,
        out_channels, block_widths."""
        stages = len(self.layers)
        if self.stage_blocks:
            bad = [b for b in self.stage_blocks if b not in BLOCKS]
            if bad:
                raise UsageError(f"stage_blocks has {bad[0]!r}; use {' or '.join(BLOCKS)} for each stage")
            if len(self.stage_blocks) != stages:
                raise UsageError(f"stage_blocks={_dashed(self.stage_blocks)} must give one block type per stage "
                                 f"({stages} stages in layers={_dashed(self.layers)})")
        if self.out_channels:
            if len(self.out_channels) != stages:
                raise UsageError(f"out_channels={_dashed(self.out_channels)} must give one channel count per stage "
                                 f"({stages} stages in layers={_dashed(self.layers)})")
            if min(self.out_channels) < 1 or max(self.out_channels) > 65536:
                raise UsageError(f"out_channels={_dashed(self.out_channels)} must be between 1 and 65536")
        if self.block_widths:
            need = sum(n * (2 if b == "bottleneck" else 1) for n, b in zip(self.layers, self.block_types()))
            if len(self.block_widths) != need:
                raise UsageError(f"block_widths has {len(self.block_widths)} entries; give {need}: two per "
                                 "bottleneck (first conv, 3x3 conv) and one per basic block, in order")
            if min(self.block_widths) < 1 or max(self.block_widths) > 65536:
                raise UsageError("block_widths must be between 1 and 65536")
        if not 1 <= self.down_kernel_size <= 7 or self.down_kernel_size % 2 == 0:
            raise UsageError(f"down_kernel_size={self.down_kernel_size} must be an odd kernel size from 1 to 7")
        if not 1 <= self.reduce_first <= 64:
            raise UsageError(f"reduce_first={self.reduce_first} must be an integer from 1 to 64")
        if self.stride_in_1x1 and self.aa != "none":
            raise UsageError("stride_in_1x1=true has no anti-aliased form; use aa=none")
        for stage in self.block_inner_widths():
            for widths in stage:
                if min(widths) < 1:
                    raise UsageError(f"reduce_first={self.reduce_first} leaves a block with no channels; "
                                     "use a smaller reduce_first or wider stages")
                if len(widths) == 2 and any(w % self.groups for w in widths):
                    raise UsageError(f"a bottleneck's inner widths {widths[0]}/{widths[1]} do not split into "
                                     f"groups={self.groups}")
    def _validate_v2_layers(self) -> None:
        """The keys of timm's ResNetV2 layers (BiT's conv and stem pool, EvoNorm, FRN) need preact=true."""
        if self.preact:
            pass
        elif self.conv != "plain":
            raise UsageError(f"conv={self.conv} needs preact=true (timm uses weight standardisation in its "
                             "pre-activation ResNetV2 only)")
        elif self.norm in SELF_ACTIVATED_NORMS:
            raise UsageError(f"norm={self.norm} needs preact=true (a norm with its own activation, as in "
                             "timm's ResNetV2); use batchnorm or groupnorm")
        elif self.stem_pool in ("fixed", "same"):
            raise UsageError(f"stem_pool={self.stem_pool} needs preact=true (timm's ResNetV2 stem); "
                             "use max, conv or none")
        if not (0 < self.conv_eps < 1):
            raise UsageError(f"conv_eps={self.conv_eps} must be in (0, 1)")
        if self.wide_factor > 64:
            raise UsageError(f"wide_factor = {self.wide_factor} is beyond what resnet-cli builds (at most 64)")

    # ------------------------------------------------------------------ derived
    def block_types(self) -> tuple[str, ...]:
        """Block type of each stage: ``stage_blocks`` when given, else ``block`` for all."""
        return self.stage_blocks or (self.block,) * len(self.layers)

    def block_inner_widths(self) -> list[list[tuple[int, ...]]]:
        """Per stage, per block: output channels of the convs before the last one: (first conv, 3x3)
        for a bottleneck, (first 3x3,) for a basic block. From ``block_widths`` when given, else the
        torchvision/timm rule with ``reduce_first`` (timm: ``first = width // reduce_first``)."""
        flat = iter(self.block_widths)
        out = []
        for planes, blocks, kind in zip(self.stage_planes, self.layers, self.block_types()):
            mid = self.bottleneck_width(planes) if kind == "bottleneck" else planes
            rule = (mid // self.reduce_first, mid) if kind == "bottleneck" else (planes // self.reduce_first,)
            stage = []
            for _ in range(blocks):
                stage.append(tuple(next(flat) for _ in rule) if self.block_widths else rule)
            out.append(stage)
        return out

    @property
    def stage_planes(self) -> tuple[int, ...]:
        """Planes of each stage after the width multiplier: ``widths * wide_factor``."""
        return tuple(w * self.wide_factor for w in self.widths)

    @property
    def stem_planes(self) -> int:
        """``stem_width`` after the width multiplier (the width of a deep stem's first convs)."""
        return self.stem_width * self.wide_factor

    @property
    def expansion(self) -> int:
        """Output channels per plane of a block: 1 (basic) or 4 (bottleneck)."""
        return 4 if self.block == "bottleneck" else 1

    @property
    def stem_channels(self) -> int:
        """Channels out of the stem (before the first stage)."""
        return self.stem_planes * 2 if self.stem in ("deep", "tiered") else self.stem_planes

    @property
    def stem_reduction(self) -> int:
        """Stride of the stem conv(s): 2, or 1 for the CIFAR 3x3 stem."""
        return 1 if self.stem == "3x3" else 2

    @property
    def stage_channels(self) -> tuple[int, ...]:
        """Output channels of each stage (``out_channels`` when given)."""
        if self.out_channels:
            return self.out_channels
        return tuple(w * (4 if b == "bottleneck" else 1) for w, b in zip(self.stage_planes, self.block_types()))

    def bottleneck_width(self, planes: int) -> int:
        """Inner width of a bottleneck: floor(planes * width_per_group / 64) * groups."""
        return (planes * self.width_per_group // 64) * self.groups

    def stage_strides(self) -> list[tuple[int, int, int]]:
        """Per stage: (stride, first dilation, dilation), applying ``dilate`` as torchvision/timm do."""
        out, dilation = [], 1
        for i in range(len(self.layers)):
            stride, first = (1 if i == 0 else 2), dilation
            if i > 0 and self.dilate[i - 1]:
                dilation *= stride
                stride = 1
            out.append((stride, first, dilation))
        return out

    @property
    def output_stride(self) -> int:
        """Total downsampling from input to the last stage (32 for an ImageNet ResNet)."""
        total = self.stem_reduction * (2 if self.stem_pool != "none" else 1)
        for stride, _, _ in self.stage_strides():
            total *= stride
        return total

    def norm_channels(self) -> list[int]:
        """Channel counts of the norm layers (used to check GroupNorm divisibility)."""
        chans = [self.stem_channels]
        if self.stem in ("deep", "tiered"):
            chans += [self.stem_planes if self.stem == "deep" else 3 * self.stem_planes // 4, self.stem_planes]
        for stage, out in zip(self.block_inner_widths(), self.stage_channels):
            chans += sorted({c for widths in stage for c in widths}) + [out]
        return chans

    def feature_info(self) -> list[dict]:
        """Encoder stages as timm's ``feature_info``: module name, channels and reduction of each.

        The first entry is the stem activation (timm ``act1``, torchvision ``relu``; ``stem.conv``
        for pre-activation nets, which have no stem norm), then each stage.
        """
        names = self.module_names()
        info = [dict(module=names["stem_act"], num_chs=self.stem_channels, reduction=self.stem_reduction)]
        reduction = self.stem_reduction * (2 if self.stem_pool != "none" else 1)
        for i, ((stride, _, _), chans) in enumerate(zip(self.stage_strides(), self.stage_channels)):
            reduction *= stride
            info.append(dict(module=names["stage"].format(i=i, n=i + 1), num_chs=chans, reduction=reduction))
        return info

    def module_names(self) -> dict[str, str]:
        """Module paths of the stem activation, the stem pool and a stage (``{i}`` 0-based, ``{n}`` 1-based)."""
        if self.preact:
            return {"stem_act": "stem.conv" if self.stem == "7x7" else "stem.conv3", "pool": "stem.pool",
                    "stage": "stages.{i}"}
        act = "relu" if self.naming == "torchvision" else "act1"
        return {"stem_act": act, "pool": "maxpool", "stage": "layer{n}"}

    def replace(self, **changes) -> "ResNetSpec":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_string(self) -> str:
        """The custom spec string that parses back into this spec (defaults left out)."""
        default = ResNetSpec()
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("naming", "input_size", "dilate") or value == getattr(default, f.name):
                continue
            parts.append(f"{f.name}={_format_value(value)}")
        if any(self.dilate):
            parts.append(f"dilate={'-'.join('1' if d else '0' for d in self.dilate)}")
        if self.input_size[1:] != (224, 224):
            parts.append(f"size={self.input_size[1]}x{self.input_size[2]}")
        return f"resnet({', '.join(parts)})"

    def describe_width(self) -> str:
        """Short width/groups label for tables: '64', '32x4d', '128 (wide x2)'."""
        if self.block == "bottleneck" and self.groups > 1:
            return f"{self.groups}x{self.width_per_group}d"
        if self.width_per_group != 64:
            return f"{self.width_per_group * 2} (wide x{self.width_per_group // 64})"
        if self.wide_factor != 1:
            return f"{self.stage_planes[0]} (x{self.wide_factor})"
        return str(self.widths[0])


#: Keys that only the post-activation (v1) builder reads, with their neutral values.
_V1_ONLY = ("stride_in_1x1", "conv_bias", "down_kernel_size", "reduce_first", "stage_blocks", "out_channels",
            "block_widths")
_V1_DEFAULTS = {"stride_in_1x1": False, "conv_bias": False, "down_kernel_size": 1, "reduce_first": 1,
                "stage_blocks": (), "out_channels": (), "block_widths": ()}


def inert_settings(values) -> list[tuple[str, str]]:
    """The keys of ``values`` (a mapping of :class:`ResNetSpec` field -> value) that differ from their
    default but would change nothing in the network, because they only act together with another
    setting: ``[(key, message)]``, the message naming both keys and what would make the key act.

    The conditional keys (README "Custom specs"): ``se_ratio`` (needs ``attn=se``: the SE block's
    reduction; ECA has no ratio), ``conv_eps`` (needs ``conv=std``: the weight standardisation's
    epsilon), ``stride_in_1x1`` (needs a bottleneck: basic blocks have no 1x1 conv),
    ``down_kernel_size`` (needs ``shortcut=conv``: the avgpool and pad shortcuts have no strided
    conv), ``reduce_first`` and ``width_per_group`` (need the width rule: ``block_widths`` gives every
    block's inner widths), ``aa`` (needs a stage that strides: one stage only, or every later stage
    dilated, leaves no strided block conv). A key at its default is never reported: it says what the
    network does.
    ``groups``/``width_per_group`` on basic blocks are refused by :meth:`ResNetSpec.validate` (timm's
    BasicBlock asserts cardinality 1), and the pre-activation-only and post-activation-only keys there too.
    """
    kinds = tuple(values["stage_blocks"]) or (values["block"],)
    blocks = "stage_blocks=" + _dashed(values["stage_blocks"]) if values["stage_blocks"] else f"block={values['block']}"
    explicit = "with block_widths given"
    dilate = tuple(values["dilate"])
    strides = len(values["layers"]) > 1 and not (dilate and all(dilate))  # a stage after the first strides
    rules = {
        "se_ratio": (values["attn"] == "se", "attn=se (it sets the SE block's reduction)",
                     f"with attn={values['attn']}"),
        "conv_eps": (values["conv"] == "std", "conv=std (it is the epsilon of the weight standardisation; "
                     "conv=std needs preact=true)", f"with conv={values['conv']}"),
        "stride_in_1x1": ("bottleneck" in kinds, "block=bottleneck (it moves a bottleneck's stride onto its first "
                          "1x1 conv; a basic block has no 1x1 conv)", f"with {blocks}"),
        "down_kernel_size": (values["shortcut"] == "conv", "shortcut=conv (it is the kernel of the strided conv "
                             "shortcut; the avgpool and pad shortcuts have no strided conv)",
                             f"with shortcut={values['shortcut']}"),
        "aa": (strides, "a stage that strides (it anti-aliases the blocks' strided convs; stages after the "
               "first stride unless dilated)", f"with layers={_dashed(values['layers'])}"
               + (f" and dilate={'-'.join('1' if d else '0' for d in dilate)}" if dilate else "")),
        "reduce_first": (not values["block_widths"], "the width rule, not block_widths (it divides the first "
                         "conv's width the rule gives; block_widths sets every block's inner widths)", explicit),
        "width_per_group": (not values["block_widths"] or "bottleneck" not in kinds, "the width rule, not "
                            "block_widths (it sets the bottleneck's inner width; block_widths sets every block's)",
                            explicit),
    }
    out = []
    for key, (acts, needs, now) in rules.items():
        if not acts and values[key] != FIELD_DEFAULTS[key]:
            out.append((key, f"{key}={_format_value(values[key])} needs {needs}; {now} it would be ignored"))
    return out


FIELD_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ResNetSpec) if f.default is not dataclasses.MISSING}


def _dashed(values) -> str:
    return "-".join(str(v) for v in values)


def _format_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return _dashed(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
