"""Variant name -> :class:`ResNetSpec`, as plain data (no torch here).

Each entry is the architecture arguments of the reference library's builder, never a measured
number: torchvision's ``models/resnet.py`` builders, timm's ``resnet.py`` / ``resnetv2.py``
``model_args``, and the CIFAR-10 nets of He et al. 2015, section 4.2.
"""

from __future__ import annotations

from dataclasses import dataclass

from .pruned import ECARESNET101D_PRUNED, ECARESNET50D_PRUNED
from .spec import DEPTHS, ResNetSpec


@dataclass(frozen=True)
class Variant:
    """A named network: its family (torchvision, timm, cifar, paper), its spec, and the library or
    paper whose architecture it is exactly (``source``)."""

    name: str
    family: str
    spec: ResNetSpec
    source: str = ""


def _depth(depth: int, **kw) -> dict:
    block, layers = DEPTHS[depth]
    return dict(block=block, layers=layers, **kw)


# ResNet-D family stems (Bag of Tricks, He et al. 2019; timm names): 'c' deep stem 32,
# 's' deep stem 64, 'd' deep stem 32 + avg-pool shortcut, 't' tiered stem 32 + avg-pool shortcut.
_C = dict(stem="deep", stem_width=32)
_S = dict(stem="deep", stem_width=64)
_D = dict(stem="deep", stem_width=32, shortcut="avgpool")
_T = dict(stem="tiered", stem_width=32, shortcut="avgpool")
_RS = dict(stem="deep", stem_width=32, stem_pool="conv", shortcut="avgpool", attn="se", se_ratio=0.25)

_TORCHVISION = {
    "resnet18": _depth(18),
    "resnet34": _depth(34),
    "resnet50": _depth(50),
    "resnet101": _depth(101),
    "resnet152": _depth(152),
    "resnext50_32x4d": _depth(50, groups=32, width_per_group=4),
    "resnext101_32x8d": _depth(101, groups=32, width_per_group=8),
    "resnext101_64x4d": _depth(101, groups=64, width_per_group=4),
    "wide_resnet50_2": _depth(50, width_per_group=128),
    "wide_resnet101_2": _depth(101, width_per_group=128),
}

_TIMM = {
    "resnet10t": _depth(10, **_T),
    "resnet14t": _depth(14, **_T),
    "resnet18d": _depth(18, **_D),
    "resnet26": _depth(26),
    "resnet26d": _depth(26, **_D),
    "resnet26t": _depth(26, **_T),
    "resnet34d": _depth(34, **_D),
    "resnet50c": _depth(50, **_C),
    "resnet50d": _depth(50, **_D),
    "resnet50s": _depth(50, **_S),
    "resnet50t": _depth(50, **_T),
    "resnet101c": _depth(101, **_C),
    "resnet101d": _depth(101, **_D),
    "resnet152d": _depth(152, **_D),
    "resnet152s": _depth(152, **_S),
    "resnet200": _depth(200),
    "resnet200d": _depth(200, **_D),
    "seresnet18": _depth(18, attn="se"),
    "seresnet34": _depth(34, attn="se"),
    "seresnet50": _depth(50, attn="se"),
    "seresnet50t": _depth(50, attn="se", **_T),
    "seresnet152d": _depth(152, attn="se", **_D),
    "ecaresnet26t": _depth(26, attn="eca", **_T),
    "ecaresnet50d": _depth(50, attn="eca", **_D),
    "ecaresnet50t": _depth(50, attn="eca", **_T),
    "ecaresnet101d": _depth(101, attn="eca", **_D),
    "resnext50d_32x4d": _depth(50, groups=32, width_per_group=4, **_D),
    "seresnext26d_32x4d": _depth(26, groups=32, width_per_group=4, attn="se", **_D),
    "seresnext50_32x4d": _depth(50, groups=32, width_per_group=4, attn="se"),
    "seresnext101_32x8d": _depth(101, groups=32, width_per_group=8, attn="se"),
    "resnetrs50": _depth(50, **_RS),
    "resnetrs101": _depth(101, **_RS),
    "resnet50_gn": _depth(50, norm="groupnorm"),
    "resnetblur50": _depth(50, aa="blur"),
    "resnetaa34d": _depth(34, aa="avgpool", **_D),
    "resnetaa50d": _depth(50, aa="avgpool", **_D),
    # Pre-activation ResNets (He et al. 2016), timm's ResNetV2 without the BiT weight standardisation.
    "resnetv2_18": _depth(18, preact=True),
    "resnetv2_34": _depth(34, preact=True),
    "resnetv2_50": _depth(50, preact=True),
    "resnetv2_101": _depth(101, preact=True),
    "resnetv2_152": _depth(152, preact=True),
    "resnetv2_50d": _depth(50, preact=True, stem="deep", stem_width=32, shortcut="avgpool"),
    "resnetv2_50t": _depth(50, preact=True, stem="tiered", stem_width=32, shortcut="avgpool"),
    # --- the rest of timm.models.resnet (timm 1.0.31 model_args, translated key for key)
    "resnet101s": _depth(101, **_S),
    "resnet152c": _depth(152, **_C),
    "resnext101_32x4d": _depth(101, groups=32, width_per_group=4),
    "resnext101_32x16d": _depth(101, groups=32, width_per_group=16),
    "resnext101_32x32d": _depth(101, groups=32, width_per_group=32),
    "ecaresnetlight": dict(block="bottleneck", layers=(1, 1, 11, 3), shortcut="avgpool", attn="eca"),
    "ecaresnet50d_pruned": _depth(50, attn="eca", **_D, **ECARESNET50D_PRUNED),
    "ecaresnet101d_pruned": _depth(101, attn="eca", **_D, **ECARESNET101D_PRUNED),
    "ecaresnet200d": _depth(200, attn="eca", **_D),
    "ecaresnet269d": dict(block="bottleneck", layers=(3, 30, 48, 8), attn="eca", **_D),
    "ecaresnext26t_32x4d": _depth(26, groups=32, width_per_group=4, attn="eca", **_T),
    "ecaresnext50t_32x4d": _depth(50, groups=32, width_per_group=4, attn="eca", **_T),
    "seresnet101": _depth(101, attn="se"),
    "seresnet152": _depth(152, attn="se"),
    "seresnet200d": _depth(200, attn="se", **_D),
    "seresnet269d": dict(block="bottleneck", layers=(3, 30, 48, 8), attn="se", **_D),
    "seresnext26t_32x4d": _depth(26, groups=32, width_per_group=4, attn="se", **_T),
    "seresnext101_32x4d": _depth(101, groups=32, width_per_group=4, attn="se"),
    "seresnext101_64x4d": _depth(101, groups=64, width_per_group=4, attn="se"),
    "seresnext101d_32x8d": _depth(101, groups=32, width_per_group=8, attn="se", **_D),
    # SENet-154 (Hu et al. 2018) as timm: deep stem of 64, cardinality 64, the first 1x1 of each
    # block at half the inner width, 3x3 strided conv shortcuts.
    "senet154": _depth(152, groups=64, width_per_group=4, attn="se", stem="deep", stem_width=64,
                       down_kernel_size=3, reduce_first=2),
    "resnetblur18": _depth(18, aa="blur"),
    "resnetblur50d": _depth(50, aa="blur", **_D),
    "resnetblur101d": _depth(101, aa="blur", **_D),
    "resnetaa50": _depth(50, aa="avgpool"),
    "resnetaa101d": _depth(101, aa="avgpool", **_D),
    "seresnetaa50d": _depth(50, aa="avgpool", attn="se", **_D),
    "seresnextaa101d_32x8d": _depth(101, groups=32, width_per_group=8, aa="avgpool", attn="se", **_D),
    "seresnextaa201d_32x8d": dict(block="bottleneck", layers=(3, 24, 36, 4), groups=32, width_per_group=8,
                                  aa="avgpool", attn="se", stem="deep", stem_width=64, shortcut="avgpool"),
    "resnetrs152": _depth(152, **_RS),
    "resnetrs200": _depth(200, **_RS),
    "resnetrs270": dict(block="bottleneck", layers=(4, 29, 53, 4), **_RS),
    "resnetrs350": dict(block="bottleneck", layers=(4, 36, 72, 4), **_RS),
    "resnetrs420": dict(block="bottleneck", layers=(4, 44, 87, 4), **_RS),
    # timm's tiny test network: mixed block types, narrow stages.
    "test_resnet": dict(block="basic", stage_blocks=("basic", "basic", "bottleneck", "basic"), layers=(1, 1, 1, 1),
                        widths=(32, 48, 48, 96), stem="deep", stem_width=16, shortcut="avgpool"),
}

# Default input size of timm's default pretrained config, where it is not 224x224.
_TIMM_INPUT = {
    "resnet10t": 176, "resnet14t": 176, "resnet26t": 256, "resnet101d": 256, "resnet152d": 256,
    "resnet200d": 256, "seresnet152d": 256, "ecaresnet26t": 256, "ecaresnet50t": 256,
    "resnetrs50": 160, "resnetrs101": 192,
    "ecaresnet200d": 256, "ecaresnet269d": 320, "seresnet200d": 256, "seresnet269d": 256,
    "seresnextaa101d_32x8d": 288, "seresnextaa201d_32x8d": 384, "resnetrs152": 256, "resnetrs200": 256,
    "resnetrs270": 256, "resnetrs350": 288, "resnetrs420": 320, "test_resnet": 160,
}

# timm's resnetv2.py beyond the plain pre-activation nets above: ResNet-D stems (deep 32, avg-pool
# shortcuts), the experimental GroupNorm / EvoNorm-S0 / FRN nets, and BiT (Kolesnikov et al. 2020:
# weight-standardised convs with eps 1e-8, GroupNorm 32, zero-padded stem pool, width factor xK).
_V2D = dict(preact=True, stem="deep", stem_width=32, shortcut="avgpool")
_BIT = dict(preact=True, norm="groupnorm", conv="std", conv_eps=1e-8, stem_pool="fixed")
_TIMM_V2 = {
    "resnetv2_18d": _depth(18, **_V2D),
    "resnetv2_34d": _depth(34, **_V2D),
    "resnetv2_101d": _depth(101, **_V2D),
    "resnetv2_152d": _depth(152, **_V2D),
    "resnetv2_50d_gn": _depth(50, norm="groupnorm", **_V2D),
    "resnetv2_50d_evos": _depth(50, norm="evonorm", **_V2D),
    "resnetv2_50d_frn": _depth(50, norm="frn", **_V2D),
    "resnetv2_50x1_bit": _depth(50, wide_factor=1, **_BIT),
    "resnetv2_50x3_bit": _depth(50, wide_factor=3, **_BIT),
    "resnetv2_101x1_bit": _depth(101, wide_factor=1, **_BIT),
    "resnetv2_101x3_bit": _depth(101, wide_factor=3, **_BIT),
    "resnetv2_152x2_bit": _depth(152, wide_factor=2, **_BIT),
    "resnetv2_152x4_bit": _depth(152, wide_factor=4, **_BIT),
}
# timm's default pretrained config of each: the first tag listed (50x1: distilled, 152x2: teacher at 224)
_TIMM_V2_INPUT = {"resnetv2_50x3_bit": 448, "resnetv2_101x1_bit": 448, "resnetv2_101x3_bit": 448,
                  "resnetv2_152x4_bit": 480}

# He et al. 2015, section 4.2: 6n+2 layers, three stages of n basic blocks, widths 16/32/64,
# a 3x3 stem of 16 channels, no max-pool, option-A shortcuts, 10 classes, 32x32 input.
_CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)


def _cifar(depth: int) -> ResNetSpec:
    n = (depth - 2) // 6
    return ResNetSpec(block="basic", layers=(n, n, n), widths=(16, 32, 64), stem="3x3", stem_width=16,
                      stem_pool="none", shortcut="pad", num_classes=10, naming="torchvision", input_size=(3, 32, 32))


# ResNet v1 as in the paper (He et al. 2015, and Caffe's released models): the stride of a stage's first
# bottleneck sits on its first 1x1 conv; torchvision's layout and keys otherwise.
_V1 = {f"resnet{d}_v1": _depth(d, stride_in_1x1=True) for d in (50, 101, 152)}

# Wide ResNets (Zagoruyko & Komodakis 2016, table 1 and fig. 1d): WRN-d-k has n = (d - 4) / 6 pre-activation
# basic blocks per stage, widths 16k/32k/64k, a 3x3 stem of 16, 1x1 projections where the shape changes;
# the layout of the authors' PyTorch code (shortcut read from the pre-activated input, final BN-ReLU).
_WRN = {"wrn16_8": (16, 8), "wrn28_10": (28, 10), "wrn40_4": (40, 4)}


def _wrn(depth: int, k: int) -> ResNetSpec:
    n = (depth - 4) // 6
    return ResNetSpec(block="basic", layers=(n, n, n), widths=(16 * k, 32 * k, 64 * k), stem="3x3", stem_width=16,
                      stem_pool="none", preact=True, zero_init_last=False, num_classes=10, input_size=(3, 32, 32))


# The CIFAR ResNet-18 most people train (kuangliu/pytorch-cifar): a 3x3/1 stem of 64, no pool,
# torchvision's widths and conv shortcuts, 10 classes; torchvision's key names.
_CIFAR_RESNET18 = ResNetSpec(block="basic", layers=(2, 2, 2, 2), stem="3x3", stem_pool="none", num_classes=10,
                             naming="torchvision", zero_init_last=False, input_size=(3, 32, 32))

_SOURCES = {"torchvision": "torchvision 0.29.1", "timm": "timm 1.0.31",
            "cifar": "He et al. 2015, sec. 4.2 (CIFAR-10)"}


def _build() -> dict[str, Variant]:
    out = {}
    for name, kw in _TORCHVISION.items():
        out[name] = Variant(name, "torchvision", ResNetSpec(naming="torchvision", zero_init_last=False, **kw),
                            _SOURCES["torchvision"])
    for name, kw in {**_TIMM, **_TIMM_V2}.items():
        size = _TIMM_INPUT.get(name, _TIMM_V2_INPUT.get(name, 224))
        # timm's ResNetV2 defaults to zero_init_last=False, its ResNet to True.
        out[name] = Variant(name, "timm", ResNetSpec(naming="timm", input_size=(3, size, size),
                                                     zero_init_last=not kw.get("preact", False), **kw),
                            _SOURCES["timm"])
    for depth in _CIFAR_DEPTHS:
        out[f"resnet{depth}"] = Variant(f"resnet{depth}", "cifar", _cifar(depth), _SOURCES["cifar"])
    for name, kw in _V1.items():
        out[name] = Variant(name, "paper", ResNetSpec(naming="torchvision", zero_init_last=False, **kw),
                            "He et al. 2015 (v1: stride on the 1x1, as Caffe)")
    for name, (depth, k) in _WRN.items():
        out[name] = Variant(name, "cifar", _wrn(depth, k), "Zagoruyko & Komodakis 2016 (WRN)")
    out["cifar_resnet18"] = Variant("cifar_resnet18", "cifar", _CIFAR_RESNET18, "kuangliu/pytorch-cifar ResNet18")
    return out


VARIANTS: dict[str, Variant] = _build()
FAMILIES: tuple[str, ...] = ("torchvision", "timm", "cifar", "paper")
