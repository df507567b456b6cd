"""Variant name -> :class:`ResNetSpec`, as plain data (no torch here).

Each entry is the architecture arguments of the reference library's builder, never a measured
number: torchvision's ``models/resnet.py`` builders, timm's ``resnet.py`` / ``resnetv2.py``
``model_args``, and the CIFAR-10 nets of He et al. 2015, section 4.2.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import DEPTHS, ResNetSpec


@dataclass(frozen=True)
class Variant:
    """A named network: its family (torchvision, timm, cifar) and its spec."""

    name: str
    family: str
    spec: ResNetSpec


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
}

# Default input size of timm's default pretrained config, where it is not 224x224.
_TIMM_INPUT = {
    "resnet10t": 176, "resnet14t": 176, "resnet26t": 256, "resnet101d": 256, "resnet152d": 256,
    "resnet200d": 256, "seresnet152d": 256, "ecaresnet26t": 256, "ecaresnet50t": 256,
    "resnetrs50": 160, "resnetrs101": 192,
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


def _build() -> dict[str, Variant]:
    out = {}
    for name, kw in _TORCHVISION.items():
        out[name] = Variant(name, "torchvision", ResNetSpec(naming="torchvision", zero_init_last=False, **kw))
    for name, kw in {**_TIMM, **_TIMM_V2}.items():
        size = _TIMM_INPUT.get(name, _TIMM_V2_INPUT.get(name, 224))
        # timm's ResNetV2 defaults to zero_init_last=False, its ResNet to True.
        out[name] = Variant(name, "timm", ResNetSpec(naming="timm", input_size=(3, size, size),
                                                     zero_init_last=not kw.get("preact", False), **kw))
    for depth in _CIFAR_DEPTHS:
        out[f"resnet{depth}"] = Variant(f"resnet{depth}", "cifar", _cifar(depth))
    return out


VARIANTS: dict[str, Variant] = _build()
FAMILIES: tuple[str, ...] = ("torchvision", "timm", "cifar")
