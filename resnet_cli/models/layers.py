"""Small building blocks shared by the ResNet builders: norms, attention, anti-aliasing, shortcuts.

Each follows the reference implementation it names, so that parameters, state_dict keys and the
forward computation are the same.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


def norm_layer(kind: str, channels: int) -> nn.Module:
    """BatchNorm2d, or GroupNorm with 32 groups (timm's ``'groupnorm'``, eps 1e-5)."""
    if kind == "groupnorm":
        return nn.GroupNorm(32, channels)
    return nn.BatchNorm2d(channels)


class BatchNormAct2d(nn.BatchNorm2d):
    """BatchNorm followed by ReLU, holding the norm's parameters directly (timm ``BatchNormAct2d``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(super().forward(x))


class GroupNormAct(nn.GroupNorm):
    """GroupNorm (32 groups) followed by ReLU (timm ``GroupNormAct``)."""

    def __init__(self, channels: int):
        super().__init__(32, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(super().forward(x))


def norm_act_layer(kind: str, channels: int) -> nn.Module:
    """Norm + ReLU as one module, for the pre-activation network."""
    return GroupNormAct(channels) if kind == "groupnorm" else BatchNormAct2d(channels)


def make_divisible(value: float, divisor: int = 8, round_limit: float = 0.9) -> int:
    """Round a channel count to a multiple of ``divisor`` (timm ``make_divisible``): the nearest
    multiple, at least ``divisor``, bumped up one step if rounding lost more than ``1 - round_limit``."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < round_limit * value:
        new += divisor
    return new


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018) as timm's ``SEModule``: global mean, 1x1 conv to
    ``make_divisible(channels * ratio, 8, round_limit=0)`` channels, ReLU, 1x1 conv back, sigmoid gate.

    Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels: int, ratio: float = 1 / 16):
        super().__init__()
        hidden = make_divisible(channels * ratio, 8, round_limit=0.0)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=True)
        self.bn = nn.Identity()  # timm's slot for an optional norm: same module names
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(self.act(self.bn(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * self.gate(scale)


def eca_kernel_size(channels: int) -> int:
    """ECA's 1-D kernel for ``channels`` (Wang et al. 2020, eq. 12 with gamma 2, b 1; at least 3)."""
    t = int(abs(math.log(channels, 2) + 1) / 2)
    return max(t if t % 2 else t + 1, 3)


class EfficientChannelAttention(nn.Module):
    """ECA (Wang et al. 2020, eq. 12) as timm's ``EcaModule``: a 1-D conv across channels of the global
    mean, kernel ``k = t if t odd else t + 1`` with ``t = int(|log2(C) + 1| / 2)``, at least 3.

    Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels: int):
        super().__init__()
        k = eca_kernel_size(channels)
        self.conv = nn.Conv1d(1, 1, kernel_size=k, padding=(k - 1) // 2, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.mean((2, 3)).view(x.shape[0], 1, x.shape[1]))  # explicit C: works for an empty batch
        return x * self.gate(y).view(x.shape[0], x.shape[1], 1, 1)


def attention(kind: str, channels: int, se_ratio: float) -> nn.Module | None:
    """The block's channel attention module, or None."""
    if kind == "se":
        return SqueezeExcite(channels, se_ratio)
    if kind == "eca":
        return EfficientChannelAttention(channels)
    return None


_BLUR_3X3 = [[[[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]]]]  # exact in binary


class BlurPool2d(nn.Module):
    """Anti-aliased downsampling (Zhang 2019) as timm's ``BlurPool2d``: reflect-pad 1, then a fixed
    3x3 binomial filter ([1, 2, 1] outer [1, 2, 1] / 16) applied depthwise with the stride.
    The filter is fixed, so the state_dict has no entry for it (timm's buffer is non-persistent).

    Shapes: (N, C, H, W) -> (N, C, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, channels: int, stride: int = 2):
        super().__init__()
        self.channels, self.stride = channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The filter is made here rather than kept as a buffer so that a model built on the meta
        # device and materialised with to_empty() still blurs with the right weights.
        weight = torch.tensor(_BLUR_3X3, dtype=x.dtype, device=x.device).expand(self.channels, 1, 3, 3)
        return F.conv2d(F.pad(x, [1, 1, 1, 1], mode="reflect"), weight, stride=self.stride, groups=self.channels)


def anti_alias(kind: str, channels: int, stride: int) -> nn.Module:
    """timm ``create_aa``: a blur pool, or an average pool of kernel ``stride``."""
    if kind == "blur":
        return BlurPool2d(channels, stride)
    return nn.AvgPool2d(stride)


class AvgPool2dSame(nn.AvgPool2d):
    """2x2 stride-1 average pool with 'same' zero padding (one column right, one row below), timm's
    ``AvgPool2dSame``, used by average-pool shortcuts in dilated stages."""

    def __init__(self):
        super().__init__(2, 1, ceil_mode=True, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(x, [0, 1, 0, 1]), 2, 1, 0, True, False)


class PadShortcut(nn.Module):
    """Option-A shortcut (He et al. 2015, section 3.3): subsample by the stride and pad the new
    channels with zeros, half before and half after; no parameters.

    Shapes: (N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.extra, self.stride = out_channels - in_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        before = self.extra // 2
        return F.pad(x, (0, 0, 0, 0, before, self.extra - before))


def shortcut(spec, in_ch: int, out_ch: int, stride: int, dilation: int,
             first_dilation: int = 1) -> nn.Module | None:
    """The projection shortcut of a v1 block (None when stride and channels stay), keyed like
    torchvision/timm: ``0`` conv, ``1`` norm; average-pool form ``0`` pool, ``1`` conv, ``2`` norm.

    A conv shortcut that strides or dilates uses ``spec.down_kernel_size`` (timm ``downsample_conv``:
    dilation ``first_dilation``, padding ``((stride - 1) + dilation * (k - 1)) // 2``); else 1x1."""
    if stride == 1 and in_ch == out_ch:
        return None
    if spec.shortcut == "pad":
        return PadShortcut(in_ch, out_ch, stride)
    if spec.shortcut == "conv":
        k = 1 if stride == 1 and dilation == 1 else spec.down_kernel_size
        d = (first_dilation or dilation) if k > 1 else 1
        conv = nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=((stride - 1) + d * (k - 1)) // 2, dilation=d,
                         bias=spec.conv_bias)
        return nn.Sequential(conv, norm_layer(spec.norm, out_ch))
    conv = nn.Conv2d(in_ch, out_ch, 1, stride=1, bias=spec.conv_bias)
    if stride == 1 and dilation == 1:
        pool = nn.Identity()
    elif dilation > 1:
        pool = AvgPool2dSame()
    else:
        pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)
    return nn.Sequential(pool, conv, norm_layer(spec.norm, out_ch))


def deep_stem_widths(spec) -> tuple[int, int]:
    """Widths of the first two 3x3 convs of a deep stem: (w, w), or (3*w//4, w) when tiered (timm)."""
    w = spec.stem_width
    return (3 * (w // 4), w) if spec.stem == "tiered" else (w, w)


def deep_stem_convs(spec, norm_factory, last_norm: bool) -> OrderedDict:
    """The three 3x3 convs of a deep stem, as (name, module) pairs for v2 naming."""
    w0, w1 = deep_stem_widths(spec)
    layers = OrderedDict(conv1=nn.Conv2d(spec.in_chans, w0, 3, 2, 1, bias=False), norm1=norm_factory(w0),
                         conv2=nn.Conv2d(w0, w1, 3, 1, 1, bias=False), norm2=norm_factory(w1),
                         conv3=nn.Conv2d(w1, spec.stem_channels, 3, 1, 1, bias=False))
    if last_norm:
        layers["norm3"] = norm_factory(spec.stem_channels)
    return layers
