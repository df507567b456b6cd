"""Resolve a variant name or a custom spec string to a :class:`ResNetSpec` (no torch here).

Grammar (documented in README and ``--help``)::

    SPEC   := BASE | BASE "(" [ITEM ("," ITEM)*] ")"
    BASE   := a variant name (``resnet50d``) or ``resnet`` (the defaults: a torchvision-style resnet50)
    ITEM   := KEY "=" VALUE
    VALUE  := integer | number | true/false | word | dash-list (``3-4-23-3``) | HxW (``size=256x192``)

Keys are the :class:`ResNetSpec` fields plus the aliases in ``ALIASES`` and three shorthands:
``depth=N`` (block and layers of a standard depth), ``output_stride=8|16|32`` (dilate the last
stages) and ``size=H[xW]`` (default input size).
"""

from __future__ import annotations

import dataclasses
import difflib
import re

from ..errors import UsageError
from ..limits import MAX_SIDE
from .registry import VARIANTS
from .spec import DEPTHS, FIELD_DEFAULTS, ResNetSpec, inert_settings

ALIASES = {
    "cardinality": "groups",
    "width": "width_per_group",
    "base_width": "width_per_group",
    "attention": "attn",
    "classes": "num_classes",
    "channels": "in_chans",
    "in_channels": "in_chans",
    "width_factor": "wide_factor",  # timm ResNetV2's name for it
}
_SHORTHANDS = ("depth", "output_stride", "size")
_FIELDS = {f.name: f for f in dataclasses.fields(ResNetSpec)}
_INT_TUPLES = ("layers", "widths", "out_channels", "block_widths")
_WORD_TUPLES = ("stage_blocks",)
_BOOLS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False,
          "t": True, "f": False}
_SPEC_RE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)
ALLOWED_KEYS = tuple(sorted(set(_FIELDS) - {"naming", "input_size"} | set(ALIASES) | set(_SHORTHANDS)))


def closest_names(name: str, n: int = 3) -> list[str]:
    """Variant names that look like ``name``, best first: names that start with it, then by difflib
    similarity, ties in registry order (torchvision's names first)."""
    order = {v: i for i, v in enumerate(VARIANTS)}
    scored = [(not v.startswith(name), -difflib.SequenceMatcher(None, name, v).ratio(), order[v]) for v in VARIANTS]
    return [v for (_, ratio, _), v in sorted(zip(scored, VARIANTS)) if -ratio >= 0.5][:n]


#: words that are flag values, not names: ``--channels-last maybe`` leaves ``maybe`` as the variant
_FLAG_WORDS = ("true", "false", "yes", "no", "on", "off", "maybe", "1", "0")


def unknown_variant(name: str) -> UsageError:
    """The error for a name that is neither a variant nor a spec (shown as typed), with the closest names."""
    close = closest_names(name.lower())
    hint = f"did you mean {', '.join(close)}?" if close else "run 'resnet-cli list' for the names"
    if name.lower() in _FLAG_WORDS:
        hint = ("on/off flags such as --channels-last take no value (the word was read as the variant); "
                "give the variant, e.g. resnet50")
    return UsageError(f"unknown variant {name!r}: {hint} (or write a spec such as 'resnet(depth=50, attn=se)')")


def resolve(text: str, **overrides) -> tuple[str, ResNetSpec]:
    """Turn a variant name or spec string into ``(display name, spec)``; ``unet(...)`` gives a
    :class:`~resnet_cli.models.unet_spec.UNetSpec` (see that module for its keys).

    ``overrides`` (``in_chans=1``, ``num_classes=10``, ...) are applied last; ``None`` values are ignored.

    Raises:
        UsageError: unknown name, unknown key, or a value that is not allowed (the message names it).
    """
    if not isinstance(text, str) or not text.strip():
        raise UsageError("empty variant name: give a name such as resnet50 or a spec such as 'resnet(depth=18)'")
    if ":" in text.split("(", 1)[0]:  # the user's own module: file.py:factory, pkg.mod:factory, timm:NAME, ...
        from .external import parse_source

        return parse_source(text, **overrides)
    match = _SPEC_RE.match(text)
    if not match:
        raise UsageError(f"cannot read {text!r} as a variant or spec: expected NAME or NAME(key=value, ...)")
    base, body = match.group(1).lower(), match.group(2)
    if base == "unet":  # a U-Net on a ResNet encoder (models.unet_spec has its own grammar)
        from .unet_spec import parse_unet

        spec = parse_unet(body, **overrides)
        return (text.strip() if body is not None and body.strip() else "unet"), spec
    if base == "resnet":
        spec, name = ResNetSpec(naming="timm"), "custom"
    elif base in VARIANTS:
        spec, name = VARIANTS[base].spec, base
    else:
        raise unknown_variant(match.group(1))
    items = _parse_items(body) if body is not None else []
    if body is not None and body.strip():
        name = text.strip() if base == "resnet" else f"{base}({body.strip()})"
    spec = _apply(spec, items)
    # Overrides (--in-chans, --num-classes) come last and win over the text, as documented.
    extra = [(k, str(v) if not isinstance(v, bool) else str(v).lower()) for k, v in overrides.items() if v is not None]
    return name, _apply(spec, extra) if extra else spec


def _parse_items(body: str) -> list[tuple[str, str]]:
    if body.count("(") or body.count(")"):
        raise UsageError(f"unbalanced or nested parentheses in {body!r}: write NAME(key=value, ...) with one pair")
    return key_value_items(body.split(","), body, "spec", ALLOWED_KEYS)


def key_value_items(raw_items, body: str, what: str, keys) -> list[tuple[str, str]]:
    """``[(key, value)]`` of a spec's comma-separated items (``raw_items``, split from ``body``), both
    stripped; blank items are skipped when the whole body is blank. ``what`` names the spec in errors
    (``spec``, ``unet spec``) and ``keys`` are the keys it lists.

    Raises:
        UsageError: an empty item, an item without ``=``, or a missing comma (:func:`check_missing_comma`).
    """
    items = []
    for raw in raw_items:
        if not raw.strip():
            if body.strip():
                raise UsageError(f"empty item in {what} ({body.strip()!r}): write key=value, separated by commas")
            continue
        if "=" not in raw:
            raise UsageError(f"{what} item {raw.strip()!r} has no '=': write key=value (keys: {', '.join(keys)})")
        key, value = (part.strip() for part in raw.split("=", 1))
        check_missing_comma(key, value)
        items.append((key, value))
    return items


_NEXT_ITEM = re.compile(r"\s([A-Za-z_]\w*)\s*=")


def check_missing_comma(key: str, value: str) -> None:
    """Refuse a value that holds another ``key=value`` after a space (``depth=18 layers=2-2-2-2``): the
    comma between two items is missing. Text inside parentheses (a nested spec) is not looked at.

    Raises:
        UsageError: naming both items and the comma to add.
    """
    outer, previous = value, None
    while outer != previous:  # blank out (...) groups, innermost first
        previous, outer = outer, re.sub(r"\([^()]*\)", lambda m: " " * len(m.group(0)), outer)
    found = _NEXT_ITEM.search(outer)
    if found:
        here, there = _item_text(key, value[:found.start()].strip()), _item_text(
            *(part.strip() for part in value[found.start():].split("=", 1)))
        raise UsageError(f"a comma is missing between {here} and {there}: write {here}, {there} "
                         "(items are key=value, separated by commas)")


# Keys that set the same field: giving two of them (or one twice) is refused, not resolved by order.
_SAME_FIELD = {"depth": ("block", "layers"), "output_stride": ("dilate",)}


def _apply(spec: ResNetSpec, items: list[tuple[str, str]]) -> ResNetSpec:
    changes: dict = {}
    given: dict[str, str] = {}
    for raw_key, value in items:
        key = ALIASES.get(raw_key.lower(), raw_key.lower())
        for field_name in (key, *_SAME_FIELD.get(key, ())):
            if field_name in given:
                raise UsageError(f"{_item_text(raw_key, value)} conflicts with {given[field_name]} given before: "
                                 "give each setting once")
            given[field_name] = _item_text(raw_key, value)
        if key == "depth":
            depth = _int(key, value)
            if depth not in DEPTHS:
                raise UsageError(f"depth={value} has no standard block layout; use one of "
                                 f"{', '.join(map(str, DEPTHS))}, or give block= and layers=")
            changes["block"], changes["layers"] = DEPTHS[depth]
        elif key == "output_stride":
            changes["_output_stride"] = _int(key, value)
        elif key == "size":
            changes["_size"] = parse_size(value, what="size")
        elif key in _FIELDS and key not in ("naming", "input_size"):
            changes[key] = _convert(key, value)
        else:
            close = difflib.get_close_matches(key, ALLOWED_KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(f"unknown spec key {key!r}{hint}; keys: {', '.join(ALLOWED_KEYS)}")
    output_stride = changes.pop("_output_stride", None)
    size = changes.pop("_size", None)
    if "layers" in changes and "widths" not in changes and len(changes["layers"]) != len(spec.widths):
        changes["widths"] = tuple(spec.widths[0] * 2 ** i for i in range(len(changes["layers"])))
    if "layers" in changes and "dilate" not in changes:
        changes["dilate"] = ()
    if "block" in changes and "stage_blocks" not in changes:
        changes["stage_blocks"] = ()  # block= sets every stage
    # A setting the variant had that the changes leave without effect (resnetrs50's se_ratio=0.25 under
    # attn=none) goes back to its default; one written here is refused by the spec's validation.
    merged = {f: changes.get(f, getattr(spec, f)) for f in FIELD_DEFAULTS}
    for key, _ in inert_settings(merged):
        if key not in given:
            changes[key] = FIELD_DEFAULTS[key]
    new = spec.replace(**changes)
    if output_stride is not None:
        new = new.replace(dilate=dilate_for_output_stride(new, output_stride))
    if size is not None:
        new = new.replace(input_size=(new.in_chans, *size))
    return new


#: Output strides a network may be dilated to (timm's and DeepLab's choices, Chen et al. 2017).
OUTPUT_STRIDES = (8, 16, 32)


def output_stride_choices(spec: ResNetSpec) -> list[int]:
    """The output strides ``spec`` can be set to: those of 8, 16, 32 that dilating its later stages
    can reach, plus its own undilated one (4 for the CIFAR nets), smallest first."""
    base = spec.replace(dilate=())
    stem = base.stem_reduction * (2 if base.stem_pool != "none" else 1)
    reachable = {stem * 2 ** k for k in range(len(spec.layers))}
    return sorted((reachable & set(OUTPUT_STRIDES)) | {base.output_stride})


def dilate_for_output_stride(spec: ResNetSpec, output_stride: int) -> tuple[bool, ...]:
    """The ``dilate`` flags that give ``output_stride`` (timm's rule: once the running stride
    reaches the target, later stages dilate instead of striding; DeepLab, Chen et al. 2017).

    Raises:
        UsageError: an output stride not in :func:`output_stride_choices`.
    """
    choices = output_stride_choices(spec)
    if output_stride not in choices:
        use = f"use {choices[0]}" if len(choices) == 1 else f"use one of {', '.join(map(str, choices))}"
        raise UsageError(f"output stride {output_stride} is not possible for this network; {use}")
    base = spec.replace(dilate=())
    stem = base.stem_reduction * (2 if base.stem_pool != "none" else 1)
    flags, running = [], stem
    for _ in spec.layers[1:]:
        if running >= output_stride:
            flags.append(True)
        else:
            running *= 2
            flags.append(False)
    return tuple(flags)


def parse_size(text: str, what: str = "--size") -> tuple[int, int]:
    """``'224'`` -> (224, 224); ``'256x192'`` -> (256, 192) as (H, W).

    Raises:
        UsageError: anything but one or two positive integers joined by 'x'.
    """
    parts = str(text).strip().lower().split("x")
    if len(parts) not in (1, 2) or not all(p.isdigit() and p.isascii() for p in parts):
        raise UsageError(f"{what} {text!r} is not a size: use H or HxW with positive integers, e.g. 224 or 256x192")
    h, w = (int(parts[0]), int(parts[-1]))
    if h < 1 or w < 1:
        raise UsageError(f"{what} {text!r} must be positive: use H or HxW, e.g. 224 or 256x192")
    if max(h, w) > MAX_SIDE:
        raise UsageError(f"{what} {text!r} is out of range: each side must be from 1 to {MAX_SIDE} pixels")
    return h, w


def input_hw(spec: ResNetSpec, size=None) -> tuple[int, int]:
    """(H, W) from ``size``: None (the spec's default input size), an int H, an (H, W) pair, or a
    string for :func:`parse_size`.

    Raises:
        UsageError: anything else, or sides below 1.
    """
    if size is None:
        return tuple(spec.input_size[1:])
    if isinstance(size, str):
        return parse_size(size)
    sides = (size, size) if isinstance(size, int) else tuple(size)
    if len(sides) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= MAX_SIDE
                                  for s in sides):
        raise UsageError(f"input size {size!r} is not a size: use H, (H, W) or 'HxW' with integers from 1 "
                         f"to {MAX_SIDE}")
    return sides


def _item_text(key: str, value: str) -> str:
    """``key=value`` as given, or with ``repr`` where either holds a newline or another character
    that is not printable (an error message stays one readable line)."""
    def show(text: str) -> str:
        return text if text.isprintable() else repr(text)

    return f"{show(key)}={show(value)}"


def _int(key: str, value: str) -> int:
    try:
        return int(value, 10)
    except ValueError:
        raise UsageError(f"{key}={value!r} must be an integer") from None


def _convert(key: str, value: str):
    default = getattr(ResNetSpec(), key)
    if key in _INT_TUPLES:
        parts = value.replace("x", "-").split("-")
        if not all(p.strip().isdigit() and p.strip().isascii() for p in parts):
            raise UsageError(f"{key}={value!r} must be integers joined by '-', e.g. 3-4-6-3")
        return tuple(int(p) for p in parts)
    if key in _WORD_TUPLES:
        return tuple(p.strip().lower() for p in value.split("-"))
    if key == "dilate":
        parts = [p.strip().lower() for p in value.split("-")]
        if not all(p in _BOOLS for p in parts):
            raise UsageError(f"dilate={value!r} must be flags joined by '-', one per stage after the first, e.g. 0-1-1")
        return tuple(_BOOLS[p] for p in parts)
    if isinstance(default, bool):
        if value.lower() not in _BOOLS:
            raise UsageError(f"{key}={value!r} must be true or false")
        return _BOOLS[value.lower()]
    if isinstance(default, int):
        return _int(key, value)
    if isinstance(default, float):
        try:
            number = float(value)
        except ValueError:
            raise UsageError(f"{key}={value!r} must be a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise UsageError(f"{key}={value!r} must be a finite number")
        return number
    return value.lower()
