"""Checkpoints: read them safely (``reading``), identify the ResNet they hold (``identify``), and
check them against a network, key by key and shape by shape.

``inspect_checkpoint`` serves ``resnet-cli inspect``; ``load_weights`` serves
``--weights`` (through ``cli.common.load_network``). Exit codes follow ``errors``: an unreadable or
refused file is a :class:`RuntimeFailure` (1); weights that do not fit the requested network, or no
network to fit them to, a :class:`UsageError` (2).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ...errors import UsageError
from ...models import ResNetSpec, resolve
from ...models.parse import ALIASES
from .identify import BN_BUFFERS, Identification, NotAResNet, derive_spec, identify, layout_signature, matching_variants
from .identify import _classes, _layout
from .reading import WRAPPER_KEYS, Checkpoint, read_checkpoint

__all__ = ["WRAPPER_KEYS", "Checkpoint", "CheckpointReport", "Identification", "LoadedWeights", "NotAResNet",
           "ShapeMismatch", "compare", "derive_spec", "expected_shapes", "identify", "inspect_checkpoint",
           "layout_signature", "load_weights", "matching_variants", "num_params",
           "read_checkpoint"]


@dataclass(frozen=True)
class ShapeMismatch:
    """A key present in both, with the checkpoint's shape and the network's (N, C, kH, kW) etc."""

    key: str
    checkpoint: tuple[int, ...]
    expected: tuple[int, ...]


@dataclass(frozen=True)
class CheckpointReport:
    """``resnet-cli inspect``: the file, what it holds, and how it differs from the identified network.

    ``num_params`` counts the elements of the checkpoint's parameter tensors (BatchNorm running
    statistics and counters excluded, as ``model.parameters()`` counts). ``matches`` are the variants
    the file fits exactly (empty when keys differ); ``closest`` the variants the key lists compare
    against. Key lists are against the network ``spec``/``variant`` builds.
    """

    file: str
    format: str
    wrapper_key: Optional[str]
    prefix: str
    num_tensors: int
    num_params: int
    dtypes: tuple[str, ...]
    matches: tuple[str, ...]
    closest: tuple[str, ...]
    exact: bool
    variant: Optional[str]
    spec: Optional[str]
    in_chans: Optional[int]
    num_classes: Optional[int]
    undetermined: tuple[str, ...]
    missing_keys: tuple[str, ...]
    unexpected_keys: tuple[str, ...]
    shape_mismatches: tuple[ShapeMismatch, ...]
    reason: Optional[str]
    #: notes for the user (the file's extension disagreeing with its content)
    notes: tuple[str, ...] = ()


@functools.lru_cache(maxsize=128)
def expected_shapes(spec: ResNetSpec) -> dict[str, tuple[int, ...]]:
    """{key: shape} of the state_dict of the network ``spec`` builds (built on the meta device)."""
    import torch

    from ...models import build_model

    with torch.device("meta"):
        model = build_model(spec)
    return {k: tuple(t.shape) for k, t in model.state_dict().items()}


def compare(shapes: dict, expected: dict) -> tuple[tuple[str, ...], tuple[str, ...], tuple[ShapeMismatch, ...]]:
    """(missing, unexpected, shape mismatches) of a checkpoint against a network.

    A missing BatchNorm ``num_batches_tracked`` counter is not reported: timm's published weights
    drop them, and loading sets them to 0 (the counter only matters with ``momentum=None``).
    """
    missing = tuple(k for k in expected if k not in shapes and not k.endswith("num_batches_tracked"))
    unexpected = tuple(k for k in shapes if k not in expected)
    mismatched = tuple(ShapeMismatch(k, tuple(shapes[k]), tuple(e)) for k, e in expected.items()
                       if k in shapes and tuple(shapes[k]) != tuple(e))
    return missing, unexpected, mismatched


def num_params(shapes: dict) -> int:
    """Elements of the parameter tensors: BatchNorm running statistics and counters excluded."""

    return sum(math.prod(s) for k, s in shapes.items() if not k.endswith(BN_BUFFERS))


def check_loadable(ckpt: Checkpoint) -> None:
    """Weights to load must hold values in the dense (strided) layout: meta tensors (shapes only, from
    ``torch.save`` of a model built on the meta device) and sparse or other layouts cannot be copied
    into a network's parameters. ``inspect`` reads shapes only and accepts them.

    Raises:
        UsageError: names the first such tensor and how many there are.
    """
    import torch

    for what, bad in (("meta tensors (shapes without values)", lambda t: t.is_meta),
                      ("tensors that are not dense", lambda t: t.layout != torch.strided)):
        found = [k for k, t in ckpt.tensors.items() if bad(t)]
        if found:
            layout = "" if what.startswith("meta") else f" (layout {str(ckpt.tensors[found[0]].layout).replace('torch.', '')})"
            raise UsageError(f"weights {ckpt.file!r} hold {len(found)} {what}, e.g. {found[0]!r}{layout}: there are "
                             "no dense values to load; save the state_dict of a network on the CPU "
                             "(tensor.to_dense() for sparse ones)")


def inspect_checkpoint(path: str | Path) -> CheckpointReport:
    """Read, identify and check a checkpoint for ``resnet-cli inspect``.

    Raises:
        RuntimeFailure: see :func:`read_checkpoint`.
    """
    ckpt = read_checkpoint(path)
    from .unet import inspect_unet  # an smp U-Net: its own report

    unet = inspect_unet(ckpt, CheckpointReport)
    if unet is not None:
        return unet
    shapes = ckpt.shapes()
    ident = identify(shapes)
    missing, unexpected, mismatched = (), (), ()
    if ident.spec is not None:
        missing, unexpected, mismatched = compare(shapes, expected_shapes(ident.spec))
    exact = ident.spec is not None and not (missing or unexpected or mismatched)
    dtypes = sorted({str(t.dtype).replace("torch.", "") for t in ckpt.tensors.values()})
    return CheckpointReport(
        file=ckpt.file, format=ckpt.format, wrapper_key=ckpt.wrapper_key, prefix=ckpt.prefix,
        num_tensors=len(shapes), num_params=num_params(shapes), dtypes=tuple(dtypes),
        matches=ident.matches if exact else (), closest=ident.matches, exact=exact, variant=ident.variant,
        spec=ident.spec.to_string() if ident.spec is not None else None,
        in_chans=ident.spec.in_chans if ident.spec else None,
        num_classes=ident.spec.num_classes if ident.spec else None,
        undetermined=ident.undetermined, missing_keys=missing, unexpected_keys=unexpected,
        shape_mismatches=mismatched, reason=ident.reason, notes=(ckpt.note,) if ckpt.note else ())


# -------------------------------------------------------------------------------------------- loading
@dataclass(frozen=True)
class LoadedWeights:
    """A network and the state_dict to load into it (``model.load_state_dict(state_dict, strict=...)``),
    plus the notes the user should see (what was identified, what did not load)."""

    name: str
    spec: ResNetSpec
    state_dict: dict
    notes: tuple[str, ...]


def load_weights(path: str | Path, variant: Optional[str] = None, in_chans: Optional[int] = None,
                 num_classes: Optional[int] = None, strict: bool = True) -> LoadedWeights:
    """Read ``path`` and fit it to ``variant`` (identified from the file when None).

    ``in_chans`` / ``num_classes`` not given (by option or in the VARIANT spec) are taken from the file.
    Strict: every key must load. Not strict: keys that are missing, unexpected or of another shape
    are left out of ``state_dict`` (missing ones keep the network's initialisation) and listed in
    ``notes``. Missing BatchNorm counters are filled with 0 (see :func:`compare`).

    Raises:
        RuntimeFailure: an unreadable or refused file (see :func:`read_checkpoint`).
        UsageError: ``in_chans``/``num_classes`` that disagree with the file; no VARIANT and a file that
            holds no recognisable ResNet; with ``strict``, any key that does not fit.
    """
    import torch

    ckpt = read_checkpoint(path)
    check_loadable(ckpt)
    from .unet import load_unet  # an smp U-Net file or a unet(...) VARIANT

    unet = load_unet(ckpt, variant, in_chans, num_classes, strict)
    if unet is not None:
        return unet
    shapes = ckpt.shapes()
    ident = identify(shapes)
    notes, identified = ([f"note: {ckpt.note}"] if ckpt.note else []), None
    if variant is None:
        if ident.spec is None:
            raise UsageError(f"cannot identify the network in {ckpt.file!r} ({ident.reason}): give VARIANT")
        variant = ident.variant
        others = [n for n in ident.matches if n != variant.split("(")[0]]
        also = f"; its state_dict cannot tell it from {', '.join(others)} (give VARIANT to choose)" if others else ""
        if not ident.matches and ident.undetermined:
            also += (f"; a state_dict cannot show {', '.join(ident.undetermined)}: assumed as written "
                     "(give VARIANT to choose)")
        identified = f"{ckpt.file} holds {variant}{also}"
    file_values = {"in_chans": _file_in_chans(shapes), "num_classes": _classes(shapes, _safe_layout(shapes))}
    options = {"in_chans": in_chans, "num_classes": num_classes}
    given = dict(options)
    for key, value in options.items():
        if value is None and not _stated(variant, key) and file_values[key] is not None:
            given[key] = file_values[key]
    name, spec = resolve(variant, **given)
    if identified is None:
        default = resolve(variant)[1]
        for key in ("in_chans", "num_classes"):
            if options[key] is None and given[key] != getattr(default, key):
                notes.append(f"note: {key}={given[key]} taken from {ckpt.file} ({variant} has {getattr(default, key)})")
    for key, option in (("in_chans", "--in-chans"), ("num_classes", "--num-classes")):
        have = file_values[key]
        if have is not None and getattr(spec, key) != have:
            raise UsageError(f"{key}={getattr(spec, key)} (from {option} or VARIANT) does not fit {ckpt.file!r}, "
                             f"whose weights have {key}={have}: leave {option} out, or use {have}")
    expected = expected_shapes(spec)
    missing, unexpected, mismatched = compare(shapes, expected)
    if identified:
        fits = not (missing or unexpected or mismatched)
        notes.append("note: " + (identified if fits else f"{ckpt.file} is closest to {variant}"))
    if missing or unexpected or mismatched:
        summary = _summary(missing, unexpected, mismatched)
        if strict:
            hint = "use --no-strict to load what fits"
            if ident.spec is not None and ident.variant != variant:
                holds = "holds" if ident.matches else "reads as"
                hint = f"the file {holds} {ident.variant}: give that as VARIANT, or {hint}"
            raise UsageError(f"weights {ckpt.file!r} do not fit {name}: {summary}; {hint}")
        every = _summary(missing, unexpected, mismatched, every=True)
        notes.append(f"note: --no-strict: not loaded into {name} from {ckpt.file}: {every}")
    state = {k: t for k, t in ckpt.tensors.items() if k in expected and tuple(t.shape) == expected[k]}
    for k in expected:
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = torch.zeros((), dtype=torch.long)
    return LoadedWeights(name, spec, state, tuple(notes))


def _safe_layout(shapes: dict) -> bool:
    try:
        return _layout(shapes)
    except NotAResNet:
        return "head.fc.weight" in shapes


def _file_in_chans(shapes: dict) -> Optional[int]:
    for key in ("conv1.weight", "conv1.0.weight", "stem.conv.weight", "stem.conv1.weight"):
        if len(shapes.get(key, ())) == 4:
            return shapes[key][1]
    return None


def _stated(variant: str, field: str) -> bool:
    """Whether the VARIANT text sets ``field`` itself ('resnet50(in_chans=1)', or an alias of it)."""
    body = variant.partition("(")[2]
    return any(ALIASES.get(k.lower(), k.lower()) == field for k in re.findall(r"([A-Za-z_]\w*)\s*=", body))


def _summary(missing, unexpected, mismatched, every: bool = False) -> str:
    def few(items):
        items = list(items)
        shown = items if every or len(items) <= 3 else items[:3]
        return ", ".join(shown) + ("" if len(shown) == len(items) else f", ... ({len(items) - len(shown)} more)")

    def shape(s):
        return "x".join(map(str, s)) or "scalar"

    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({few(unexpected)})")
    if mismatched:
        pairs = few(f"{m.key} file {shape(m.checkpoint)} vs network {shape(m.expected)}" for m in mismatched)
        parts.append(f"{len(mismatched)} of another shape ({pairs})")
    return "; ".join(parts)
