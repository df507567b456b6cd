"""Small building blocks shared by the ResNet builders: norms, attention, anti-aliasing, shortcuts.

Each follows the reference implementation it names, so that parameters, state_dict keys and the
forward computation are the same.
"""

from __future__ import annotations

import math
import warnings
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
    """BatchNorm followed by ReLU, holding the norm's parameters directly (timm ``BatchNormAct2d``:
    children ``drop`` (identity) and ``act``, as there)."""

    def __init__(self, channels: int):
        super().__init__(channels)
        self.drop = nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(super().forward(x)))


class GroupNormAct(nn.GroupNorm):
    """GroupNorm (32 groups, eps 1e-5) followed by ReLU (timm ``GroupNormAct``: children ``drop``
    (identity) and ``act``, as there)."""

    def __init__(self, channels: int):
        super().__init__(32, channels)
        self.drop = nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(super().forward(x)))


def norm_act_layer(kind: str, channels: int) -> nn.Module:
    """Norm + activation as one module, for the pre-activation network (timm's norm-act layers)."""
    if kind == "groupnorm":
        return GroupNormAct(channels)
    if kind == "evonorm":
        return EvoNorm2dS0(channels)
    if kind == "frn":
        return FilterResponseNormTlu2d(channels)
    if kind == "evonorm_b0":
        return EvoNorm2dB0(channels)
    return BatchNormAct2d(channels)


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
    """Widths of the first two 3x3 convs of a deep stem: (w, w), or (3*w//4, w) when tiered (timm);
    ``w`` is the stem width after ``wide_factor``."""
    w = spec.stem_planes
    return (3 * (w // 4), w) if spec.stem == "tiered" else (w, w)


def deep_stem_convs(spec, norm_factory, last_norm: bool, conv=nn.Conv2d) -> OrderedDict:
    """The three 3x3 convs of a deep stem, as (name, module) pairs for v2 naming."""
    w0, w1 = deep_stem_widths(spec)
    layers = OrderedDict(conv1=conv(spec.in_chans, w0, 3, 2, 1, bias=False), norm1=norm_factory(w0),
                         conv2=conv(w0, w1, 3, 1, 1, bias=False), norm2=norm_factory(w1),
                         conv3=conv(w1, spec.stem_channels, 3, 1, 1, bias=False))
    if last_norm:
        layers["norm3"] = norm_factory(spec.stem_channels)
    return layers



# ----------------------------------------------------------------- timm ResNetV2 (BiT, EvoNorm, FRN)
class StdConv2d(nn.Conv2d):
    """Weight-standardised convolution (Qiao et al. 2019, "Micro-Batch Training with Batch-Channel
    Normalization and Weight Standardization"; used by BiT) as timm's ``StdConv2d``: before each use
    the weight of every output channel is normalised to zero mean and unit (biased) variance with
    ``F.batch_norm`` over the weight (eps ``eps``; timm's default 1e-6, BiT's 1e-8), then an ordinary
    ``F.conv2d`` runs. Parameters and state_dict keys are a Conv2d's.

    Shapes: (N, C_in, H, W) -> (N, C_out, H_out, W_out), as ``nn.Conv2d``.
    """

    def __init__(self, *args, eps: float = 1e-6, **kwargs):
        super().__init__(*args, **kwargs)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 0:
            # An empty batch (the analysis passes) has no output values, so the standardised weight's
            # values cannot matter: skip the standardisation rather than read the (uninitialised,
            # possibly huge) weight; its cost is added per module by the MAC count (analysis/flops.py).
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        weight = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                              training=True, momentum=0.0, eps=self.eps).reshape_as(self.weight)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


def conv_layer(spec):
    """The conv class of ``spec``: ``nn.Conv2d``, or :class:`StdConv2d` with ``spec.conv_eps``."""
    if spec.conv == "std":
        return lambda *args, **kwargs: StdConv2d(*args, eps=spec.conv_eps, **kwargs)
    return nn.Conv2d


def _group_std(x: torch.Tensor, groups: int, group_size: int, eps: float) -> torch.Tensor:
    """timm ``group_std``: the biased standard deviation of each (sample, group of channels), over the
    group's channels and H, W, broadcast back to (N, C, H, W). The batch is an explicit dimension, so
    an empty batch (N = 0) gives an empty result, never NaN."""
    n, c, h, w = x.shape
    grouped = x.reshape(n, groups, group_size, h, w)  # group_size given: no shape arithmetic in a jit trace
    with warnings.catch_warnings():
        if n == 0:  # torch warns that an empty reduction has no degrees of freedom: there is no sample
            warnings.filterwarnings("ignore", message=r"var\(\): degrees of freedom", category=UserWarning)
        std = grouped.float().var(dim=(2, 3, 4), unbiased=False, keepdim=True).add(eps).sqrt().to(x.dtype)
    return std.expand(grouped.shape).reshape(n, c, h, w)


class EvoNorm2dS0(nn.Module):
    """EvoNorm-S0 (Liu et al. 2020, "Evolving Normalization-Activation Layers", table 1) as timm's
    ``EvoNorm2dS0``: ``y = x * sigmoid(v * x) / group_std(x) * weight + bias``, 32 groups, eps 1e-5.
    A norm and its activation in one; per-sample statistics only (no running buffers).
    Parameters ``weight``, ``bias``, ``v`` (C each). Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels: int, groups: int = 32, eps: float = 1e-5):
        super().__init__()
        self.groups, self.group_size, self.eps = groups, channels // groups, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.v = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, 1, 1)
        v = self.v.view(shape).to(x.dtype)
        x = x * (x * v).sigmoid() / _group_std(x, self.groups, self.group_size, self.eps)
        return x * self.weight.view(shape).to(x.dtype) + self.bias.view(shape).to(x.dtype)


class EvoNorm2dB0(nn.Module):
    """EvoNorm-B0 (Liu et al. 2020, table 1) as timm's ``EvoNorm2dB0``: ``y = x / max(sqrt(var_batch + eps),
    v * x + instance_std(x)) * weight + bias``, eps 1e-3; the batch variance is the running one in eval
    mode (buffer ``running_var``, momentum 0.1, updated with the unbiased batch variance in training).
    Parameters ``weight``, ``bias``, ``v`` (C each). Shapes: (N, C, H, W) -> (N, C, H, W).

    An empty batch (N = 0) in training mode leaves ``running_var`` as it is (timm's would become NaN).
    """

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-3):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.v = nn.Parameter(torch.ones(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, 1, 1)
        if self.training and x.shape[0]:
            var = x.float().var(dim=(0, 2, 3), unbiased=False)
            n = x.numel() / x.shape[1]
            self.running_var.copy_(self.running_var * (1 - self.momentum) + var.detach() * self.momentum * (n / (n - 1)))
        else:
            var = self.running_var
        left = var.add(self.eps).sqrt_().to(x.dtype).view(shape).expand_as(x)
        with warnings.catch_warnings():
            if x.shape[0] == 0:  # an empty reduction: torch warns of no degrees of freedom, there is no sample
                warnings.filterwarnings("ignore", message=r"var\(\): degrees of freedom", category=UserWarning)
            std = x.float().var(dim=(2, 3), unbiased=False, keepdim=True).add(self.eps).sqrt().to(x.dtype)
        right = x * self.v.to(x.dtype).view(shape) + std.expand(x.shape)
        x = x / left.max(right)
        return x * self.weight.to(x.dtype).view(shape) + self.bias.to(x.dtype).view(shape)


class FilterResponseNormTlu2d(nn.Module):
    """Filter Response Normalization with a Thresholded Linear Unit (Singh and Krishnan 2020) as
    timm's ``FilterResponseNormTlu2d``: ``y = max(x / sqrt(mean_HW(x^2) + eps) * weight + bias, tau)``,
    eps 1e-5; per-sample statistics only. Parameters ``weight``, ``bias``, ``tau`` (C each).
    Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.tau = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, 1, 1)
        inv_rms = x.square().float().mean(dim=(2, 3), keepdim=True).add(self.eps).rsqrt().to(x.dtype)
        x = x * inv_rms.expand(x.shape)
        x = x * self.weight.view(shape).to(x.dtype) + self.bias.view(shape).to(x.dtype)
        return torch.maximum(x, self.tau.reshape(shape).to(x.dtype))


class MaxPool2dSame(nn.MaxPool2d):
    """3x3/2 max-pool with TensorFlow 'SAME' padding (timm ``MaxPool2dSame``, the ViT-hybrid stem):
    pad ``max((ceil(L / s) - 1) * s + k - L, 0)`` per side length L, half before (rounded down) and
    the rest after, with -inf, then pool without padding. Shapes: (N, C, H, W) -> (N, C, ceil(H/2), ceil(W/2)).
    """

    def __init__(self, kernel_size: int = 3, stride: int = 2):
        super().__init__(kernel_size, stride, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size, self.stride
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad takes the last dimension first
            total = max((-(-size // s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.max_pool2d(F.pad(x, pads, value=-float("inf")), k, s, 0)


def v2_stem_pool(kind: str) -> OrderedDict:
    """The pool of timm's ResNetV2 stem as (name, module) pairs: ``pool`` (3x3/2 max-pool, padding 1);
    ``fixed``: ``pad`` (constant zero pad 1) + ``pool`` (unpadded); ``same``: ``pool`` (TF 'SAME');
    ``none``: nothing."""
    if kind == "fixed":
        return OrderedDict(pad=nn.ConstantPad2d(1, 0.0), pool=nn.MaxPool2d(kernel_size=3, stride=2, padding=0))
    if kind == "same":
        return OrderedDict(pool=MaxPool2dSame(3, 2))
    if kind == "none":
        return OrderedDict()
    return OrderedDict(pool=nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
