"""The U-Net builder: segmentation_models_pytorch 0.6's ``smp.Unet`` on our ResNet, from a
:class:`~resnet_cli.models.unet_spec.UNetSpec`.

Module names and ``state_dict`` keys are smp's, so an smp checkpoint loads as it is:

* ``encoder.*``: smp's ``ResNetEncoder`` is torchvision's ResNet without ``fc`` and ``avgpool``
  (``encoder.conv1.weight``, ``encoder.layer1.0.conv1.weight``, ...). Its forward returns the
  ``depth + 1`` feature maps [input, stem activation, layer1, ...]; stages deeper than ``depth``
  stay (and keep their parameters) but do not run, as in smp.
* ``decoder.center`` (Identity: smp adds a center block for VGG encoders only) and
  ``decoder.blocks.N`` (``UnetDecoderBlock``): ``conv1`` and ``conv2`` are smp's ``Conv2dReLU``
  (``.0`` 3x3 conv without bias, ``.1`` BatchNorm, ``.2`` ReLU), ``attention1`` / ``attention2``
  smp's ``Attention`` (``.attention`` = Identity or ``SCSEModule`` with ``cSE.1``, ``cSE.3``, ``sSE.0``).
* ``segmentation_head``: ``.0`` 3x3 conv with bias, ``.1`` the upsampling (Identity),
  ``.2`` the activation (``Activation`` holding an Identity).

Shapes: (N, in_chans, H, W) -> (N, classes, H, W).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .resnet import ResNet
from .unet_spec import SCSE_REDUCTION, UNetSpec


class ResNetEncoder(nn.Module):
    """A ResNet without its classifier and global pool (smp's ``ResNetEncoder``).

    ``forward``: (N, C, H, W) -> the ``depth + 1`` maps [input, stem activation, layer1, ..., layer(depth-1)].
    """

    def __init__(self, spec, depth: int):
        super().__init__()
        net = ResNet(spec)
        for name, child in net.named_children():
            if name not in ("avgpool", "global_pool", "fc"):
                self.add_module(name, child)
        self.depth = depth
        self._stem_act = net._stem_act
        self.stages = len(spec.layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [x]
        if self.depth >= 1:
            x = getattr(self, self._stem_act)(self.bn1(self.conv1(x)))
            features.append(x)
        if self.depth >= 2:
            x = self.maxpool(x)
        for i in range(1, min(self.depth, self.stages + 1)):
            x = getattr(self, f"layer{i}")(x)
            features.append(x)
        return features


class Conv2dReLU(nn.Sequential):
    """3x3 conv (no bias), BatchNorm, ReLU: smp's ``Conv2dReLU`` with ``use_norm='batchnorm'``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class SCSEModule(nn.Module):
    """Concurrent spatial and channel squeeze-and-excitation (Roy et al. 2018; smp's ``SCSEModule``):
    ``x * cSE(x) + x * sSE(x)``; the channel branch squeezes to ``channels // 16``."""

    def __init__(self, in_channels: int, reduction: int = SCSE_REDUCTION):
        super().__init__()
        self.cSE = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, in_channels // reduction, 1),
                                 nn.ReLU(inplace=True), nn.Conv2d(in_channels // reduction, in_channels, 1),
                                 nn.Sigmoid())
        self.sSE = nn.Sequential(nn.Conv2d(in_channels, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.cSE(x) + x * self.sSE(x)


class Attention(nn.Module):
    """smp's ``Attention`` wrapper: ``attention`` is an Identity (``none``) or an :class:`SCSEModule`."""

    def __init__(self, name: str, in_channels: int):
        super().__init__()
        self.attention = SCSEModule(in_channels) if name == "scse" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x)


class UnetDecoderBlock(nn.Module):
    """Bring the map to the skip's size, concatenate the skip, two :class:`Conv2dReLU`.

    ``resize`` (smp 0.6): ``interpolate(size=skip size, mode='nearest')``, which always fits.
    ``upsample`` (classic U-Net): ``interpolate(scale_factor=factor)``; a size that then differs from
    the skip's raises ValueError naming both.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, attention: str,
                 decoder: str, factor: int):
        super().__init__()
        self.decoder, self.factor = decoder, factor
        self.conv1 = Conv2dReLU(in_channels + skip_channels, out_channels)
        self.attention1 = Attention(attention, in_channels + skip_channels)
        self.conv2 = Conv2dReLU(out_channels, out_channels)
        self.attention2 = Attention(attention, out_channels)

    def forward(self, x: torch.Tensor, height: int, width: int, skip: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.decoder == "resize":
            x = F.interpolate(x, size=(height, width), mode="nearest")
        else:
            x = F.interpolate(x, scale_factor=self.factor, mode="nearest")
            if tuple(x.shape[-2:]) != (height, width):
                h, w = x.shape[-2:]
                raise ValueError(f"the x{self.factor} upsampled map is {h}x{w} but the "
                                 f"{'skip' if skip is not None else 'input'} is {height}x{width} "
                                 "(the upsample decoder needs them equal; decoder=resize interpolates to the size)")
        if skip is not None:
            x = self.attention1(torch.cat([x, skip], dim=1))
        return self.attention2(self.conv2(self.conv1(x)))


class UnetDecoder(nn.Module):
    """smp's ``UnetDecoder``: the encoder maps, deepest first, through one block each.

    ``forward(features)``: the encoder's list [input, stem, layer1, ...] -> (N, decoder_channels[-1], H, W).
    """

    def __init__(self, spec: UNetSpec, factors: list[int]):
        super().__init__()
        self.center = nn.Identity()
        self.blocks = nn.ModuleList(
            UnetDecoderBlock(c_in, c_skip, c_out, spec.attention, spec.decoder, f)
            for (c_in, c_skip, c_out), f in zip(spec.block_channels(), factors))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        sizes = [tuple(f.shape[2:]) for f in features][::-1]
        features = features[1:][::-1]  # drop the input, deepest first
        x, skips = self.center(features[0]), features[1:]
        for i, block in enumerate(self.blocks):
            height, width = sizes[i + 1]
            x = block(x, height, width, skips[i] if i < len(skips) else None)
        return x


class Activation(nn.Module):
    """smp's ``Activation`` with ``activation=None``: an Identity under ``.activation``."""

    def __init__(self):
        super().__init__()
        self.activation = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(x)


class SegmentationHead(nn.Sequential):
    """smp's ``SegmentationHead``: 3x3 conv with bias, upsampling (Identity at factor 1), activation."""

    def __init__(self, in_channels: int, classes: int):
        super().__init__(nn.Conv2d(in_channels, classes, 3, padding=1), nn.Identity(), Activation())


class UNet(nn.Module):
    """smp 0.6's ``Unet`` (see the module docstring). ``self.spec`` describes it; ``feature_modules``
    are the encoder modules whose outputs are the skips, shallowest first (stem activation, layer1, ...)."""

    def __init__(self, spec: UNetSpec):
        super().__init__()
        self.spec = spec
        self.encoder = ResNetEncoder(spec.encoder, spec.depth)
        reductions = [1] + [f["reduction"] for f in spec.encoder.feature_info()][: spec.depth]
        # block i upsamples level depth - i to level depth - i - 1 (level 0 is the input)
        factors = [max(1, reductions[d] // reductions[d - 1]) for d in range(spec.depth, 0, -1)]
        self.decoder = UnetDecoder(spec, factors)
        self.segmentation_head = SegmentationHead(spec.decoder_channels[-1], spec.classes)
        names = spec.encoder.module_names()
        self.feature_modules = tuple(["encoder." + names["stem_act"]] +
                                     [f"encoder.layer{n}" for n in range(1, spec.depth)])
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.segmentation_head(self.decoder(self.encoder(x)))


def _init(model: UNet) -> None:
    """smp's ``initialize_decoder`` / ``initialize_head`` (the encoder keeps the ResNet's own init).
    Skipped on the meta device, where there are no values to set."""
    if any(p.is_meta for p in model.parameters()):
        return
    for m in model.decoder.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in model.segmentation_head.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def build(spec: UNetSpec) -> UNet:
    """The network of ``spec``: (N, in_chans, H, W) -> (N, classes, H, W)."""
    return UNet(spec)


__all__ = ["UNet", "ResNetEncoder", "UnetDecoder", "UnetDecoderBlock", "Conv2dReLU", "SCSEModule", "build"]
