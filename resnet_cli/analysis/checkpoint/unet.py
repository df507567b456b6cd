"""U-Net checkpoints: segmentation_models_pytorch 0.6's ``smp.Unet`` state_dicts on a ResNet encoder.

Such a file has ``encoder.*`` keys (a torchvision ResNet without ``fc``), ``decoder.blocks.N.*`` and
``segmentation_head.0.*``. ``read_checkpoint`` takes ``encoder.`` for a prefix (it finds the ResNet's
stage keys under it) and strips it from the encoder's keys; :func:`unet_tensors` puts the smp keys
back. :func:`identify_unet` reads the :class:`~resnet_cli.models.unet_spec.UNetSpec` from the keys
and shapes: the encoder as any ResNet checkpoint (``identify``), ``decoder_channels`` from each
block's first conv, ``classes`` from the head, ``attention`` from the SCSE keys.
"""

from __future__ import annotations

import re
from typing import Optional

from ...errors import UsageError
from ...models import UNetSpec, resolve
from ...models.unet_spec import encoder_spec

_BLOCK = re.compile(r"decoder\.blocks\.(\d+)\.conv1\.0\.weight")
ENCODER = "encoder."


def unet_tensors(ckpt) -> Optional[tuple[str, dict]]:
    """(the prefix before smp's keys, {smp key: tensor}) when ``ckpt`` holds a U-Net, else None."""
    if not ckpt.prefix.endswith(ENCODER):
        return None
    outer = ckpt.prefix[: -len(ENCODER)]
    own = ("decoder.", "segmentation_head.", "classification_head.")
    full = {}
    for key, tensor in ckpt.tensors.items():
        if key.startswith(tuple(outer + o for o in own)):
            full[key[len(outer):]] = tensor
        else:
            full[ENCODER + key] = tensor
    if "segmentation_head.0.weight" not in full or not any(_BLOCK.fullmatch(k) for k in full):
        return None
    return outer, full


def identify_unet(shapes: dict) -> tuple[Optional[UNetSpec], tuple[str, ...], str]:
    """(spec or None, fields a state_dict cannot show, reason when None) of smp U-Net ``shapes``."""
    from . import identify

    encoder = identify({k[len(ENCODER):]: s for k, s in shapes.items() if k.startswith(ENCODER)})
    if encoder.spec is None:
        return None, (), f"its encoder is not a ResNet resnet-cli builds ({encoder.reason})"
    blocks = sorted((int(m[1]), shapes[k]) for k in shapes if (m := _BLOCK.fullmatch(k)))
    if [i for i, _ in blocks] != list(range(len(blocks))):
        return None, (), "its decoder blocks are not numbered 0, 1, ... without gaps"
    text = _without_classifier(encoder.variant)
    head = shapes["segmentation_head.0.weight"]
    attention = "scse" if any(".attention1.attention.cSE." in k for k in shapes) else "none"
    try:
        spec = UNetSpec(encoder=encoder_spec(encoder.spec), encoder_text=text,
                        decoder_channels=tuple(s[0] for _, s in blocks), depth=len(blocks), classes=head[0],
                        attention=attention, input_size=encoder.spec.input_size)
    except UsageError as exc:
        return None, (), str(exc)
    return spec, encoder.undetermined + ("decoder (resize or upsample)",), ""


def _without_classifier(text: str) -> str:
    """'resnet34(in_chans=1, num_classes=0)' -> 'resnet34(in_chans=1)': an encoder has no classifier anyway."""
    base, paren, body = text.partition("(")
    if not paren:
        return text
    items = [i.strip() for i in body.rstrip().removesuffix(")").split(",") if i.strip() and i.strip() != "num_classes=0"]
    return f"{base}({', '.join(items)})" if items else base


def load_unet(ckpt, variant: Optional[str], in_chans: Optional[int], num_classes: Optional[int], strict: bool):
    """``load_weights`` for a U-Net file or a ``unet(...)`` VARIANT; None when neither is one.

    Raises:
        UsageError: a U-Net file with a ResNet VARIANT or the reverse; weights that do not fit
            (with ``strict``); a file whose U-Net cannot be read and no VARIANT.
    """
    import torch

    from . import LoadedWeights, _summary, compare, expected_shapes

    found = unet_tensors(ckpt)
    wants = variant is not None and variant.strip().lower().startswith("unet")
    if found is None:
        if wants:
            raise UsageError(f"{ckpt.file!r} holds no U-Net (no decoder.blocks.* and segmentation_head.0.* keys "
                             "beside a ResNet's): give a ResNet VARIANT, or a U-Net checkpoint")
        return None
    if variant is not None and not wants:
        raise UsageError(f"{ckpt.file!r} holds a U-Net (segmentation_models_pytorch's keys): give VARIANT as "
                         "unet(encoder=..., ...) or leave it out")
    tensors = found[1]
    shapes = {k: tuple(t.shape) for k, t in tensors.items()}
    derived, _, reason = identify_unet(shapes)
    notes = []
    if variant is None:
        if derived is None:
            raise UsageError(f"cannot identify the U-Net in {ckpt.file!r} ({reason}): give VARIANT")
        name, spec = derived.to_string(), derived.replace(in_chans=in_chans or derived.in_chans,
                                                          classes=num_classes or derived.classes)
        notes.append(f"note: {ckpt.file} holds {name}")
    else:
        name, spec = resolve(variant, in_chans=in_chans, num_classes=num_classes)
        if derived is not None:
            stated = {k.lower() for k in re.findall(r"([A-Za-z_]\w*)\s*=", variant)}
            for key, option, aliases in (("in_chans", in_chans, ("in_chans", "in_channels", "channels")),
                                         ("classes", num_classes, ("classes", "num_classes"))):
                have = getattr(derived, key)
                if option is None and getattr(spec, key) != have and not stated & set(aliases):
                    notes.append(f"note: {key}={have} taken from {ckpt.file} ({name} has {getattr(spec, key)})")
                    spec = spec.replace(**{key: have})
    expected = expected_shapes(spec)
    missing, unexpected, mismatched = compare(shapes, expected)
    if missing or unexpected or mismatched:
        if strict:
            hint = "use --no-strict to load what fits"
            if derived is not None and derived.to_string() != spec.to_string():
                hint = f"the file reads as {derived.to_string()}: give that as VARIANT, or {hint}"
            raise UsageError(f"weights {ckpt.file!r} do not fit {name}: {_summary(missing, unexpected, mismatched)}; "
                             f"{hint}")
        notes.append(f"note: --no-strict: not loaded into {name} from {ckpt.file}: "
                     f"{_summary(missing, unexpected, mismatched, every=True)}")
    state = {k: t for k, t in tensors.items() if k in expected and tuple(t.shape) == expected[k]}
    for k in expected:
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = torch.zeros((), dtype=torch.long)
    return LoadedWeights(name, spec, state, tuple(notes))


def inspect_unet(ckpt, report_type):
    """``inspect_checkpoint``'s report for a U-Net file, else None."""
    import dataclasses

    from . import compare, expected_shapes, num_params

    found = unet_tensors(ckpt)
    if found is None:
        return None
    outer, tensors = found
    shapes = {k: tuple(t.shape) for k, t in tensors.items()}
    spec, undetermined, reason = identify_unet(shapes)
    missing, unexpected, mismatched = compare(shapes, expected_shapes(spec)) if spec is not None else ((), (), ())
    exact = spec is not None and not (missing or unexpected or mismatched)
    text = spec.to_string() if spec is not None else None
    dtypes = sorted({str(t.dtype).replace("torch.", "") for t in tensors.values()})
    fields = dict(file=ckpt.file, format=ckpt.format, wrapper_key=ckpt.wrapper_key, prefix=outer,
                  num_tensors=len(shapes), num_params=num_params(shapes), dtypes=tuple(dtypes),
                  matches=(text,) if exact else (), closest=(text,) if text else (), exact=exact, variant=text,
                  spec=text, in_chans=spec.in_chans if spec else None, num_classes=spec.classes if spec else None,
                  undetermined=undetermined, missing_keys=missing, unexpected_keys=unexpected,
                  shape_mismatches=mismatched, reason=reason or None,
                  notes=(ckpt.note,) if getattr(ckpt, "note", None) else ())
    return report_type(**{f.name: fields[f.name] for f in dataclasses.fields(report_type)})
