"""The ResNet builder: one network class per block ordering, driven only by a :class:`ResNetSpec`.

``ResNet`` is the post-activation network of He et al. 2015 with the torchvision/timm layout
(``conv1``, ``bn1``, ``maxpool``, ``layer1``.., ``fc``); ``PreActResNet`` is the pre-activation
network of He et al. 2016 with timm's ``ResNetV2`` layout (``stem``, ``stages.i.blocks.j``,
``norm``, ``head.fc``). :func:`build` picks one.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .layers import (anti_alias, attention, conv_layer, deep_stem_convs, deep_stem_widths, norm_act_layer,
                     norm_layer, shortcut, v2_stem_pool, AvgPool2dSame, EvoNorm2dB0, EvoNorm2dS0,
                     FilterResponseNormTlu2d)
from .spec import ResNetSpec


class _Block(nn.Module):
    """Basic (3x3, 3x3) or bottleneck (1x1, 3x3, 1x1) residual block, post-activation.

    The stride sits on the 3x3 conv (ResNet v1.5), or on the first 1x1 with ``stride_in_1x1`` (v1);
    with anti-aliasing the conv keeps stride 1 and the blur/avg pool after its activation does the
    downsampling (timm). Attention (``se``) follows the last norm, before the residual add.
    ``kind`` is the stage's block type, ``inner`` the widths of the convs before the last
    (:meth:`ResNetSpec.block_inner_widths`), ``out_ch`` the block's output channels.
    Shapes: (N, C_in, H, W) -> (N, C_out, H / stride, W / stride).
    """

    def __init__(self, spec: ResNetSpec, in_ch: int, planes: int, stride: int, first_dilation: int,
                 dilation: int, downsample: nn.Module | None, kind: str | None = None,
                 inner: tuple[int, ...] | None = None, out_ch: int | None = None):
        super().__init__()
        kind = kind or spec.block
        expansion = 4 if kind == "bottleneck" else 1
        out_ch = out_ch or planes * expansion
        use_aa = spec.aa != "none" and (stride == 2 or first_dilation != dilation)
        conv_stride = 1 if use_aa else stride
        bias = spec.conv_bias
        if kind == "basic":
            (mid,) = inner or (planes,)
            convs = [nn.Conv2d(in_ch, mid, 3, conv_stride, first_dilation, first_dilation, bias=bias),
                     nn.Conv2d(mid, out_ch, 3, 1, dilation, dilation, bias=bias)]
            chans, aa_after = [mid, out_ch], 0
        else:
            first, mid = inner or (spec.bottleneck_width(planes), spec.bottleneck_width(planes))
            s1, s3 = (conv_stride, 1) if spec.stride_in_1x1 else (1, conv_stride)
            convs = [nn.Conv2d(in_ch, first, 1, s1, bias=bias),
                     nn.Conv2d(first, mid, 3, s3, first_dilation, first_dilation, spec.groups, bias=bias),
                     nn.Conv2d(mid, out_ch, 1, bias=bias)]
            chans, aa_after = [first, mid, out_ch], 1
        self.n = len(convs)
        shared_relu = spec.naming == "torchvision"
        for i, (conv, c) in enumerate(zip(convs, chans), start=1):
            setattr(self, f"conv{i}", conv)
            setattr(self, f"bn{i}", norm_layer(spec.norm, c))
            if not shared_relu and i - 1 == aa_after:
                self.drop_block = nn.Identity()  # timm's placeholders (DropBlock off, no anti-aliasing): same module names
            if shared_relu and i == (1 if kind == "basic" else self.n):  # where torchvision registers it
                self.relu = nn.ReLU(inplace=True)
            if not shared_relu and i < self.n:
                setattr(self, f"act{i}", nn.ReLU(inplace=True))
            if i - 1 == aa_after and (use_aa or not shared_relu):
                self.aa = anti_alias(spec.aa, mid, stride) if use_aa else nn.Identity()
        # ECA's kernel follows the nominal width (timm's pruned nets keep the unpruned kernels)
        self.se = attention(spec.attn, planes * expansion if spec.attn == "eca" else out_ch, spec.se_ratio)
        if not shared_relu:
            setattr(self, f"act{self.n}", nn.ReLU(inplace=True))
        self.downsample = downsample

    def _act(self, i: int) -> nn.Module:
        return self.relu if hasattr(self, "relu") else getattr(self, f"act{i}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        for i in range(1, self.n + 1):
            x = getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x))
            if i < self.n:
                x = self._act(i)(x)
                if i == self.n - 1 and hasattr(self, "aa"):
                    x = self.aa(x)
        if self.se is not None:
            x = self.se(x)
        x += identity  # in place, as torchvision and timm do (and out-of-place add on meta imports torch._dynamo)
        return self._act(self.n)(x)


class _PreActBlock(nn.Module):
    """Pre-activation block (He et al. 2016, fig. 4e) as timm's ``PreActBasic``/``PreActBottleneck``:
    norm+ReLU first; the shortcut projection (a conv, no norm) reads the pre-activated input.
    Shapes: (N, C_in, H, W) -> (N, C_out, H / stride, W / stride).
    """

    def __init__(self, spec: ResNetSpec, in_ch: int, planes: int, stride: int, first_dilation: int,
                 dilation: int, project: bool):
        super().__init__()
        out_ch = planes * spec.expansion
        if project:
            down = DownsampleAvg if spec.shortcut == "avgpool" else DownsampleConv
            self.downsample = down(spec, in_ch, out_ch, stride, dilation)
        else:
            self.downsample = None
        conv2d = conv_layer(spec)
        if spec.block == "basic":
            mid = planes
            convs = [conv2d(in_ch, mid, 3, stride, first_dilation, first_dilation, bias=False),
                     conv2d(mid, out_ch, 3, 1, dilation, dilation, bias=False)]
            chans = [in_ch, mid]
        else:
            mid = spec.bottleneck_width(planes)
            convs = [conv2d(in_ch, mid, 1, bias=False),
                     conv2d(mid, mid, 3, stride, first_dilation, first_dilation, spec.groups, bias=False),
                     conv2d(mid, out_ch, 1, bias=False)]
            chans = [in_ch, mid, mid]
        self.n = len(convs)
        for i, (conv, c) in enumerate(zip(convs, chans), start=1):
            setattr(self, f"norm{i}", norm_act_layer(spec.norm, c))
            setattr(self, f"conv{i}", conv)
        self.drop_path = nn.Identity()  # timm's stochastic depth, off (rate 0) at inference

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_preact = self.norm1(x)
        shortcut_out = x if self.downsample is None else self.downsample(x_preact)
        x = self.conv1(x_preact)
        for i in range(2, self.n + 1):
            x = getattr(self, f"conv{i}")(getattr(self, f"norm{i}")(x))
        x = self.drop_path(x)
        x += shortcut_out  # in place: same values as timm's x + shortcut, without the meta-device slow path
        return x


class BasicBlock(_Block):
    """Two 3x3 convs (He et al. 2015, fig. 2); the name torchvision and timm use."""


class Bottleneck(_Block):
    """1x1, 3x3, 1x1 convs, expansion 4 (He et al. 2015, fig. 5; stride on the 3x3: ResNet v1.5)."""


class PreActBasic(_PreActBlock):
    """Pre-activation basic block (timm ``PreActBasic``)."""


class PreActBottleneck(_PreActBlock):
    """Pre-activation bottleneck (timm ``PreActBottleneck``)."""


class _PreActDownsample(nn.Module):
    """timm ``DownsampleConv`` / ``DownsampleAvg`` with ``preact=True``: [pool], 1x1 conv, and an
    identity ``norm`` (the block's next norm follows)."""

    def __init__(self, spec: ResNetSpec, in_ch: int, out_ch: int, stride: int, dilation: int):
        super().__init__()
        if spec.shortcut == "avgpool":
            if stride > 1 or dilation > 1:
                self.pool = (AvgPool2dSame() if dilation > 1
                             else nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False))
            else:
                self.pool = nn.Identity()
            stride = 1
        self.conv = conv_layer(spec)(in_ch, out_ch, 1, stride=stride, bias=False)
        self.norm = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(self.pool(x) if hasattr(self, "pool") else x))


class DownsampleConv(_PreActDownsample):
    """timm ``DownsampleConv`` (preact): strided 1x1 conv, identity norm."""


class DownsampleAvg(_PreActDownsample):
    """timm ``DownsampleAvg`` (preact): 2x2 average pool (ResNet-D), 1x1 conv, identity norm."""


class ResNet(nn.Module):
    """Post-activation ResNet (He et al. 2015) in the torchvision/timm layout.

    Input (N, in_chans, H, W); output (N, num_classes) logits, or (N, C) pooled features when
    ``num_classes == 0``. ``self.spec`` and ``self.feature_info`` describe the network.
    """

    def __init__(self, spec: ResNetSpec):
        super().__init__()
        self.spec = spec
        self.feature_info = spec.feature_info()
        stem_ch = spec.stem_channels
        bias = spec.conv_bias
        if spec.stem in ("deep", "tiered"):
            w0, w1 = deep_stem_widths(spec)
            self.conv1 = nn.Sequential(
                nn.Conv2d(spec.in_chans, w0, 3, 2, 1, bias=bias), norm_layer(spec.norm, w0), nn.ReLU(inplace=True),
                nn.Conv2d(w0, w1, 3, 1, 1, bias=bias), norm_layer(spec.norm, w1), nn.ReLU(inplace=True),
                nn.Conv2d(w1, stem_ch, 3, 1, 1, bias=bias))
        elif spec.stem == "3x3":
            self.conv1 = nn.Conv2d(spec.in_chans, stem_ch, 3, 1, 1, bias=bias)
        else:
            self.conv1 = nn.Conv2d(spec.in_chans, stem_ch, 7, 2, 3, bias=bias)
        self.bn1 = norm_layer(spec.norm, stem_ch)
        act = "relu" if spec.naming == "torchvision" else "act1"
        setattr(self, act, nn.ReLU(inplace=True))
        self._stem_act = act
        self.maxpool = _stem_pool(spec, stem_ch)
        in_ch = stem_ch
        for i, (planes, blocks, (stride, first_dil, dil), kind, out_ch, inner) in enumerate(
                zip(spec.stage_planes, spec.layers, spec.stage_strides(), spec.block_types(), spec.stage_channels,
                    spec.block_inner_widths()), start=1):
            layer = []
            for b in range(blocks):
                down = shortcut(spec, in_ch, out_ch, stride, dil, first_dilation=first_dil) if b == 0 else None
                block = BasicBlock if kind == "basic" else Bottleneck
                layer.append(block(spec, in_ch, planes, stride if b == 0 else 1,
                                    first_dil if b == 0 else dil, dil, down, kind=kind, inner=inner[b], out_ch=out_ch))
                in_ch = out_ch
            setattr(self, f"layer{i}", nn.Sequential(*layer))
        self.num_features = in_ch
        pool = nn.AdaptiveAvgPool2d((1, 1))
        if spec.naming == "torchvision":
            self.avgpool = pool
        else:
            self.global_pool = nn.Sequential(OrderedDict(pool=pool, flatten=nn.Flatten(1)))
        self.fc = nn.Linear(in_ch, spec.num_classes) if spec.num_classes else nn.Identity()
        _init_weights(self, spec.zero_init_last, last_norms=tuple(f"bn{n}" for n in (2, 3)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_chans, H, W) -> last stage's (N, C, H / 32, W / 32) feature map."""
        x = self.maxpool(getattr(self, self._stem_act)(self.bn1(self.conv1(x))))
        for i in range(1, len(self.spec.layers) + 1):
            x = getattr(self, f"layer{i}")(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)
        x = torch.flatten(self.avgpool(x), 1) if hasattr(self, "avgpool") else self.global_pool(x)
        return self.fc(x)


def _stem_pool(spec: ResNetSpec, channels: int) -> nn.Module:
    """timm's stem pool: max-pool; ResNet-RS's strided conv; or, with anti-aliasing, max-pool stride 1
    + blur pool, or a 2x2 average pool in place of the max-pool."""
    if spec.stem_pool == "none":
        return nn.Identity()
    if spec.stem_pool == "conv":
        layers = [nn.Conv2d(channels, channels, 3, 1 if spec.aa != "none" else 2, 1, bias=spec.conv_bias)]
        if spec.aa != "none":
            layers.append(anti_alias(spec.aa, channels, 2))
        return nn.Sequential(*layers, norm_layer(spec.norm, channels), nn.ReLU(inplace=True))
    if spec.aa == "avgpool":
        return nn.AvgPool2d(2)
    if spec.aa == "blur":
        return nn.Sequential(nn.MaxPool2d(3, 1, 1), anti_alias("blur", channels, 2))
    return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)


class ResNetStage(nn.Module):
    """A stage of the pre-activation network: ``blocks`` run in order (timm ``ResNetStage``)."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class SelectAdaptivePool2d(nn.Module):
    """timm ``SelectAdaptivePool2d(pool_type='avg', flatten=False)``: ``pool`` (global average) and an
    identity ``flatten``. Shapes: (N, C, H, W) -> (N, C, 1, 1)."""

    def __init__(self):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(self.pool(x))


class ClassifierHead(nn.Module):
    """timm ``ClassifierHead(use_conv=True)`` as ResNetV2 builds it: ``global_pool``, ``drop``
    (dropout, rate 0), ``fc`` (1x1 conv with bias; identity without classes), ``flatten``.
    Shapes: (N, C, H, W) -> (N, num_classes), or (N, C) without classes."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.global_pool = SelectAdaptivePool2d()
        self.drop = nn.Dropout(0.0)
        self.fc = nn.Conv2d(channels, num_classes, 1, bias=True) if num_classes else nn.Identity()
        self.flatten = nn.Flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(self.fc(self.drop(self.global_pool(x))))


class PreActResNet(nn.Module):
    """Pre-activation ResNet (He et al. 2016) in timm's ``ResNetV2`` layout: ``stem`` (conv, no norm,
    max-pool), ``stages.i.blocks.j``, a final ``norm`` (norm + ReLU) and ``head`` (pool, 1x1 conv fc).
    With ``conv=std``, ``norm=groupnorm`` and ``stem_pool=fixed`` it is BiT (Kolesnikov et al. 2020).

    Input (N, in_chans, H, W); output (N, num_classes) logits.
    """

    def __init__(self, spec: ResNetSpec):
        super().__init__()
        self.spec = spec
        self.feature_info = spec.feature_info()
        stem_ch = spec.stem_channels
        conv2d = conv_layer(spec)
        if spec.stem in ("deep", "tiered"):
            stem = deep_stem_convs(spec, lambda c: norm_act_layer(spec.norm, c), last_norm=False, conv=conv2d)
        else:
            k, s = (3, 1) if spec.stem == "3x3" else (7, 2)
            stem = OrderedDict(conv=conv2d(spec.in_chans, stem_ch, k, s, k // 2, bias=False))
        stem.update(v2_stem_pool(spec.stem_pool))
        self.stem = nn.Sequential(stem)
        self.stages = nn.Sequential()
        in_ch = stem_ch
        for i, (planes, blocks, (stride, _, dil)) in enumerate(
                zip(spec.stage_planes, spec.layers, spec.stage_strides())):
            out_ch = planes * spec.expansion
            first_dil = 1 if dil in (1, 2) else 2  # timm ResNetStage's rule
            stage = ResNetStage()
            for b in range(blocks):
                s = stride if b == 0 else 1
                project = b == 0 and (spec.block == "bottleneck" or s != 1 or first_dil != dil or in_ch != out_ch)
                block = PreActBasic if spec.block == "basic" else PreActBottleneck
                stage.blocks.add_module(str(b), block(spec, in_ch, planes, s, first_dil, dil, project))
                in_ch, first_dil = out_ch, dil
            self.stages.add_module(str(i), stage)
        self.num_features = in_ch
        self.norm = norm_act_layer(spec.norm, in_ch)
        self.head = ClassifierHead(in_ch, spec.num_classes)
        _init_weights(self, spec.zero_init_last, last_norms=())

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_chans, H, W) -> pre-activated last stage (N, C, H / 32, W / 32)."""
        return self.norm(self.stages(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def _init_weights(model: nn.Module, zero_init_last: bool, last_norms: tuple[str, ...]) -> None:
    """Kaiming-normal (fan_out, ReLU) convs, unit norms, zero biases (torchvision and timm); with
    ``zero_init_last`` the last norm of each residual branch starts at zero (Goyal et al. 2017).
    Skipped on the meta device, where there are no values to set (and random init is slow)."""
    if any(p.is_meta for p in model.parameters()):
        return
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, EvoNorm2dS0, EvoNorm2dB0, FilterResponseNormTlu2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_last:
        for m in model.modules():
            if isinstance(m, _Block):
                nn.init.zeros_(getattr(m, f"bn{m.n}").weight)
            elif isinstance(m, _PreActBlock):
                nn.init.zeros_(getattr(m, f"conv{m.n}").weight)


def build(spec: ResNetSpec) -> nn.Module:
    """The network of ``spec``: :class:`PreActResNet` when ``spec.preact``, else :class:`ResNet`."""
    return PreActResNet(spec) if spec.preact else ResNet(spec)


__all__ = ["ResNet", "PreActResNet", "BasicBlock", "Bottleneck", "PreActBasic", "PreActBottleneck", "build"]
