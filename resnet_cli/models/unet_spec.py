"""A U-Net on a ResNet encoder as plain data (no torch here): :class:`UNetSpec` and its parser.

The network is segmentation_models_pytorch 0.6's ``smp.Unet`` (``decoders/unet/model.py``,
``decoder.py``): the encoder gives ``depth + 1`` feature maps (the input, the stem activation, then
``layer1``..); the decoder has one block per entry of ``decoder_channels``, deepest first. Block ``i``
receives ``in_channels[i]`` = ``[deepest feature's channels] + decoder_channels[:-1]``, brings it to
the next shallower feature's size, concatenates that feature (``skip_channels`` = the shallower
features reversed, then 0: the last block meets the input's size but no skip) and runs two 3x3
conv + BatchNorm + ReLU; a 3x3 conv with bias (the segmentation head) gives ``classes`` maps.

Grammar (``models.parse.resolve`` hands ``unet(...)`` here)::

    unet(encoder=SPEC, decoder_channels=256-128-64-32-16, depth=5, classes=1,
         attention=none|scse, decoder=resize|upsample, in_chans=3, size=HxW)

``depth`` defaults to the number of ``decoder_channels`` given, else to min(5, what the encoder
reaches); ``decoder_channels`` to the first ``depth`` of smp's 256-128-64-32-16 (see :class:`UNetSpec`).

``encoder`` is any ResNet variant name or spec string (nested parentheses allowed:
``encoder=resnet(depth=18, stem=deep)``); aliases: ``encoder_depth`` for ``depth``, ``num_classes``
for ``classes``, ``in_channels``/``channels`` for ``in_chans``, ``decoder_attention_type`` for
``attention``.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Optional

from ..errors import UsageError
from .spec import ResNetSpec

ATTENTIONS = ("none", "scse")
UNET_DECODERS = ("resize", "upsample")
#: smp's SCSEModule squeezes its channels by this factor (``in_channels // reduction``).
SCSE_REDUCTION = 16
DEFAULT_ENCODER = "resnet34"
DEFAULT_DECODER_CHANNELS = (256, 128, 64, 32, 16)
MAX_CHANNELS = 16384

_KEYS = ("encoder", "decoder_channels", "depth", "classes", "attention", "decoder", "in_chans", "size")
_ALIASES = {"encoder_depth": "depth", "num_classes": "classes", "in_channels": "in_chans", "channels": "in_chans",
            "decoder_attention_type": "attention", "encoder_name": "encoder"}
#: every key the parser takes, aliases included (as the resnet(...) list), for the error messages
ALLOWED_KEYS = tuple(sorted(set(_KEYS) | set(_ALIASES)))


def _default_encoder() -> ResNetSpec:
    from .registry import VARIANTS

    return encoder_spec(VARIANTS[DEFAULT_ENCODER].spec)


def encoder_spec(spec: ResNetSpec) -> ResNetSpec:
    """``spec`` as a U-Net encoder: no classifier, torchvision's module names (smp's ResNetEncoder
    subclasses torchvision's ResNet and deletes ``fc`` and ``avgpool``).

    Raises:
        UsageError: a pre-activation network (smp has no such encoder; its features are taken before
            the activations).
    """
    if spec.preact:
        raise UsageError("a pre-activation ResNet (preact=true) cannot be a U-Net encoder here: "
                         "use a post-activation encoder such as resnet34 or resnet50d")
    return spec.replace(num_classes=0, naming="torchvision")


@dataclass(frozen=True)
class UNetSpec:
    """A U-Net (smp 0.6 ``Unet``) on a ResNet encoder, completely.

    Attributes:
        encoder: the encoder's :class:`ResNetSpec` (no classifier, torchvision names).
        encoder_text: how the encoder was written (``resnet34``), for :meth:`to_string`.
        decoder_channels: output channels of each decoder block, deepest first; one per ``depth``.
            Default (None): the first ``depth`` of smp's ``256, 128, 64, 32, 16``.
        depth: encoder stages used, smp's ``encoder_depth``: 1 (stem only) .. 1 + number of stages.
            Deeper stages stay in the encoder (their parameters count) but do not run, as in smp.
            Default (None): the number of ``decoder_channels`` when they are given, else
            ``min(5, max_depth)``. smp's default is always 5 (and it requires
            ``len(decoder_channels) == encoder_depth``), so ours differs only where smp's cannot build:
            a 3-stage CIFAR encoder (4), or fewer than 5 channels given. An explicit depth must still
            match the channels given.
        classes: output maps of the segmentation head.
        attention: ``none`` or ``scse`` (Roy et al. 2018, smp's ``decoder_attention_type``): on each
            block's concatenated input and on its output.
        decoder: ``resize`` (smp 0.6: interpolate to the skip's size, nearest) or ``upsample``
            (the classic decoder: scale by the stride ratio, x2 between ImageNet stages; the
            concatenation fails when the sizes then differ).
        input_size: default (C, H, W) input.
    """

    encoder: ResNetSpec = field(default_factory=_default_encoder)
    encoder_text: str = DEFAULT_ENCODER
    decoder_channels: Optional[tuple[int, ...]] = None
    depth: Optional[int] = None
    classes: int = 1
    attention: str = "none"
    decoder: str = "resize"
    input_size: tuple[int, int, int] = (3, 224, 224)

    def __post_init__(self) -> None:
        if self.depth is None:  # follows the channels given, else the encoder (see the class docstring)
            if self.decoder_channels is not None:
                depth = len(tuple(self.decoder_channels))
                if depth > self.max_depth:
                    raise UsageError(f"decoder_channels={_dashed(self.decoder_channels)} gives {depth} blocks but "
                                     f"encoder {self.encoder_text} has room for 1 to {self.max_depth} "
                                     f"(depth 1 = stem only .. {self.max_depth} = down to layer{self.max_depth - 1})")
            else:
                depth = min(len(DEFAULT_DECODER_CHANNELS), self.max_depth)
            object.__setattr__(self, "depth", depth)
        if self.decoder_channels is None:
            object.__setattr__(self, "decoder_channels", DEFAULT_DECODER_CHANNELS[: self.depth])
        object.__setattr__(self, "decoder_channels", tuple(self.decoder_channels))
        if self.input_size[0] != self.encoder.in_chans:
            object.__setattr__(self, "input_size", (self.encoder.in_chans, *self.input_size[1:]))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`UsageError` naming the first field that cannot describe a U-Net."""
        for key, allowed in (("attention", ATTENTIONS), ("decoder", UNET_DECODERS)):
            if getattr(self, key) not in allowed:
                raise UsageError(f"{key}={getattr(self, key)!r} is not allowed for a U-Net; use one of "
                                 f"{', '.join(allowed)}")
        deepest = self.max_depth
        if not 1 <= self.depth <= deepest:
            raise UsageError(f"depth={self.depth} is not possible for encoder {self.encoder_text}: use 1 (stem only) "
                             f"to {deepest} (down to layer{deepest - 1})")
        n = len(self.decoder_channels)
        if n != self.depth:  # smp: "Model depth is 5, but you provide `decoder_channels` for 4 blocks"
            fix = (f"or set depth={n}" if n <= deepest
                   else f"encoder {self.encoder_text} takes 1 to {deepest} blocks with a matching depth")
            raise UsageError(f"decoder_channels={_dashed(self.decoder_channels)} gives {n} block{'s' if n != 1 else ''} "
                             f"but depth is {self.depth}: give {self.depth} channels (one per decoder block), {fix}")
        for i, c in enumerate(self.decoder_channels):
            if not 1 <= c <= MAX_CHANNELS:
                raise UsageError(f"decoder_channels[{i}]={c} must be 1 to {MAX_CHANNELS}")
        if not 1 <= self.classes <= MAX_CHANNELS:
            raise UsageError(f"classes={self.classes} must be 1 to {MAX_CHANNELS} for a U-Net "
                             "(the segmentation head's output maps)")
        if self.attention == "scse":
            for i, (name, c) in enumerate(self.attention_channels()):
                if c // SCSE_REDUCTION < 1:
                    raise UsageError(
                        f"attention=scse is too narrow for decoder block {i // 2}: its {name} gets {c} channels, "
                        f"and SCSE squeezes by {SCSE_REDUCTION} (smp's reduction), leaving a 0-channel conv; "
                        f"make every decoder block (and its concatenated input) at least {SCSE_REDUCTION} "
                        "channels wide, or use attention=none")

    # ------------------------------------------------------------------ the protocol of ResNetSpec
    @property
    def in_chans(self) -> int:
        """Input channels (the encoder's)."""
        return self.encoder.in_chans

    @property
    def num_classes(self) -> int:
        """Output maps (``classes``)."""
        return self.classes

    @property
    def output_stride(self) -> int:
        """Input pixels per output pixel: 1, the segmentation map has the input's size."""
        return 1

    @property
    def stage_channels(self) -> tuple[int, ...]:
        """Output channels of each decoder block, deepest first (``compare``'s stage column)."""
        return self.decoder_channels

    @property
    def max_depth(self) -> int:
        """The deepest ``depth`` the encoder allows: 1 + its number of stages (5 for ImageNet ResNets)."""
        return 1 + len(self.encoder.layers)

    def feature_channels(self) -> list[int]:
        """Channels of the encoder's ``depth + 1`` feature maps, input first (smp's ``out_channels``)."""
        return [self.in_chans] + [f["num_chs"] for f in self.encoder.feature_info()][: self.depth]

    def block_channels(self) -> list[tuple[int, int, int]]:
        """(in, skip, out) channels of each decoder block, deepest first (smp's UnetDecoder rule)."""
        features = self.feature_channels()[1:][::-1]
        ins = [features[0]] + list(self.decoder_channels[:-1])
        skips = list(features[1:]) + [0]
        return list(zip(ins, skips, self.decoder_channels))

    def attention_channels(self) -> list[tuple[str, int]]:
        """(name, channels) of each attention module in build order: per block ``attention1`` on
        in + skip channels (built in the last block too, unused there as in smp), ``attention2`` on out."""
        out = []
        for i, (c_in, c_skip, c_out) in enumerate(self.block_channels()):
            out += [("attention1 (concatenated input)", c_in + c_skip), ("attention2 (output)", c_out)]
        return out

    def replace(self, **changes) -> "UNetSpec":
        """A copy with some fields changed (validated again); ``in_chans`` goes to the encoder,
        ``num_classes`` sets ``classes``."""
        if "num_classes" in changes:
            changes["classes"] = changes.pop("num_classes")
        if "in_chans" in changes:
            changes["encoder"] = changes.get("encoder", self.encoder).replace(in_chans=changes.pop("in_chans"))
        return dataclasses.replace(self, **changes)

    def to_string(self) -> str:
        """The spec string that parses back into this spec (defaults left out)."""
        from .parse import resolve

        parts = [f"encoder={self.encoder_text}"]
        try:
            written = encoder_spec(resolve(self.encoder_text)[1])
        except UsageError:
            written = None
        if written is None or written.replace(in_chans=self.in_chans) != self.encoder:
            parts = [f"encoder={self.encoder.to_string()}"]
        elif written.in_chans != self.in_chans:
            parts.append(f"in_chans={self.in_chans}")
        default = UNetSpec()
        for key in ("decoder_channels", "depth", "classes", "attention", "decoder"):
            value = getattr(self, key)
            if value != getattr(default, key):
                parts.append(f"{key}={_dashed(value) if isinstance(value, tuple) else value}")
        if self.input_size[1:] != self.encoder.input_size[1:]:
            parts.append(f"size={self.input_size[1]}x{self.input_size[2]}")
        return f"unet({', '.join(parts)})"

    def build(self):
        """The ``torch.nn.Module`` (imports torch): see :func:`resnet_cli.models.unet.build`."""
        from .unet import build

        return build(self)


def _dashed(values) -> str:
    return "-".join(str(v) for v in values)


def split_items(body: str) -> list[str]:
    """Split ``body`` at the commas outside parentheses.

    Raises:
        UsageError: unbalanced parentheses.
    """
    items, level, start = [], 0, 0
    for i, ch in enumerate(body):
        if ch == "(":
            level += 1
        elif ch == ")":
            level -= 1
            if level < 0:
                break
        elif ch == "," and level == 0:
            items.append(body[start:i])
            start = i + 1
    if level != 0:
        raise UsageError(f"unbalanced parentheses in {body!r}: every '(' needs its ')'")
    items.append(body[start:])
    return items


def parse_unet(body: Optional[str], **overrides) -> UNetSpec:
    """The :class:`UNetSpec` of the text inside ``unet(...)``; ``overrides`` (``in_chans``,
    ``num_classes``; None ignored) are applied last and win over the text.

    Raises:
        UsageError: an unknown key, a key given twice, a bad value, or a spec that cannot be built
            (the message names it).
    """
    from .parse import key_value_items, parse_size, resolve

    given: dict[str, str] = {}
    for key, value in key_value_items(split_items(body or ""), body or "", "unet spec", ALLOWED_KEYS):
        name = _ALIASES.get(key.lower(), key.lower())
        if name not in _KEYS:
            close = difflib.get_close_matches(name, _KEYS + tuple(_ALIASES), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(f"unknown unet key {key!r}{hint}; keys: {', '.join(ALLOWED_KEYS)}")
        if name in given:
            raise UsageError(f"{key}={value} conflicts with {given[name]} given before: give each setting once")
        given[name] = f"{key}={value}"
    values = {k: v.split("=", 1)[1].strip() for k, v in given.items()}
    changes: dict = {}
    if "encoder" in values:
        text = values["encoder"]
        if text.lower().startswith("unet"):
            raise UsageError(f"encoder={text!r}: the encoder must be a ResNet (a variant name or resnet(...) spec)")
        try:
            encoder = resolve(text)[1]
        except UsageError as exc:
            raise UsageError(f"encoder={text!r}: {exc}") from None
        if not isinstance(encoder, ResNetSpec):  # the user's own module (file.py:factory, timm:NAME)
            raise UsageError(f"encoder={text!r}: a U-Net encoder must be a ResNet resnet-cli builds (a variant "
                             "name or resnet(...) spec), not a module of your own")
        changes["encoder"], changes["encoder_text"] = encoder_spec(encoder), text
    for key in ("depth", "classes", "in_chans"):
        if key in values:
            try:
                changes[key] = int(values[key], 10)
            except ValueError:
                raise UsageError(f"{key}={values[key]!r} must be an integer") from None
    if "decoder_channels" in values:
        changes["decoder_channels"] = parse_channels(values["decoder_channels"], "decoder_channels")
    for key in ("attention", "decoder"):
        if key in values:
            changes[key] = values[key].lower()
    if changes.get("attention") == "null":
        changes["attention"] = "none"
    encoder = changes.get("encoder") or _default_encoder()
    text_in_chans = changes.pop("in_chans", None)
    in_chans = overrides.get("in_chans") if overrides.get("in_chans") is not None else text_in_chans
    if in_chans is not None:
        if in_chans < 1:
            raise UsageError(f"in_chans={in_chans} must be a positive integer")
        encoder = encoder.replace(in_chans=in_chans)
    changes["encoder"] = encoder
    if overrides.get("num_classes") is not None:  # --num-classes: the error names the flag the user typed
        if not 1 <= overrides["num_classes"] <= MAX_CHANNELS:
            raise UsageError(f"--num-classes {overrides['num_classes']} is not possible for a U-Net: use 1 to "
                             f"{MAX_CHANNELS} (it sets classes, the segmentation head's output maps; "
                             "0 = no classifier is for a ResNet)")
        changes["classes"] = overrides["num_classes"]
    size = parse_size(values["size"], what="size") if "size" in values else tuple(encoder.input_size[1:])
    changes["input_size"] = (encoder.in_chans, *size)
    return UNetSpec(**changes)


def parse_channels(text: str, what: str = "--decoder-channels") -> tuple[int, ...]:
    """``'256-128-64'`` or ``'256,128,64'`` -> (256, 128, 64).

    Raises:
        UsageError: anything but positive integers joined by '-' or ','.
    """
    parts = [p.strip() for p in str(text).replace(",", "-").split("-")]
    if not parts or not all(p.isdigit() and p.isascii() for p in parts):
        raise UsageError(f"{what} {text!r} must be positive integers joined by '-' or ',', e.g. 256-128-64-32-16")
    values = tuple(int(p) for p in parts)
    if any(v < 1 for v in values):
        raise UsageError(f"{what} {text!r} must be positive integers, e.g. 256-128-64-32-16")
    return values
