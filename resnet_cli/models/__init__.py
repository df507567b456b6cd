"""Networks: specs as plain data (``spec``, ``registry``, ``parse``) and one builder (``resnet``).

Only :func:`build_model` imports torch, when called.
"""

from __future__ import annotations

from .parse import input_hw, parse_size, resolve
from .registry import FAMILIES, VARIANTS, Variant
from .spec import ResNetSpec
from .unet_spec import UNetSpec

__all__ = ["ResNetSpec", "UNetSpec", "Variant", "VARIANTS", "FAMILIES", "resolve", "get_spec", "build_model", "parse_size", "input_hw"]


def get_spec(name_or_spec: str | ResNetSpec, **overrides) -> ResNetSpec:
    """The spec of a variant name or spec string (``overrides`` such as ``in_chans=1`` applied last).

    Raises:
        UsageError: unknown name, unknown key, or a value that is not allowed.
    """
    if not isinstance(name_or_spec, (str, ResNetSpec, UNetSpec)) and hasattr(name_or_spec, "build"):
        return name_or_spec  # a network that is not a ResNetSpec or UNetSpec (models.external.ModuleSource)
    if isinstance(name_or_spec, (ResNetSpec, UNetSpec)):
        changes = {k: v for k, v in overrides.items() if v is not None}
        return name_or_spec.replace(**changes) if changes else name_or_spec
    return resolve(name_or_spec, **overrides)[1]


def build_model(name_or_spec: str | ResNetSpec, **overrides):
    """Build the ``torch.nn.Module`` of a variant name, spec string or :class:`ResNetSpec`.

    ``overrides``: any spec field, e.g. ``num_classes=10``, ``in_chans=1``. The model takes
    (N, in_chans, H, W) float input and returns (N, num_classes) logits (the pooled (N, C)
    features when ``num_classes=0``).

    A :class:`UNetSpec` (``unet(...)``) builds its own module (``spec.build()``): (N, in_chans, H, W)
    -> (N, classes, H, W) maps.

    Raises:
        UsageError: see :func:`get_spec`.
    """
    spec = get_spec(name_or_spec, **overrides)
    if hasattr(spec, "build"):
        return spec.build()  # its own builder (UNetSpec; models.external.ModuleSource: the user's factory)
    from .resnet import build

    return build(spec)
