"""Options and helpers shared by the commands. No torch here."""

from __future__ import annotations

import enum
import gc
from typing import Any, Callable, Optional, Sequence

import typer

from ..errors import UsageError


class Format(str, enum.Enum):
    """Output formats: a rich table for people; JSON, CSV and Markdown for machines and documents."""

    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class Optimizer(str, enum.Enum):
    """The training step's optimizer (summary --pass train and bench --mode train)."""

    sgd = "sgd"
    momentum = "momentum"
    adamw = "adamw"


class Amp(str, enum.Enum):
    """Autocast dtype over fp32 weights (fp16 adds a gradient scaler)."""

    bf16 = "bf16"
    fp16 = "fp16"


FORMAT_HELP = "Output format: table, json, csv or markdown."

VARIANT_HELP = ("A variant name (see 'resnet-cli list') or a spec such as "
                "'resnet(depth=50, groups=32, width=4, stem=deep, shortcut=avgpool, attn=se)' "
                "or 'resnet50d(in_chans=1)'. See README, 'Custom specs'. Or your own network: "
                "path/to/file.py:factory, package.module:factory, timm:NAME or torchvision:NAME "
                "(architecture only, no weights downloaded). Loading a file or module runs its code, "
                "as python would; --weights never does.")

KWARGS_HELP = ("Keyword arguments for your own network's factory (file.py:factory, timm:NAME, ...), e.g. "
               "'depth=50,num_classes=10,act=\"relu\"': Python literals only, nothing is evaluated.")
INPUT_SIZE_HELP = ("Input C,H,W of your own network when it cannot tell (default: timm's pretrained_cfg, else "
                   "the first conv's in_channels and 224x224). --size still sets H and W.")


def format_option(default: Format = Format.table):
    return typer.Option(default, "--format", "-f", help=FORMAT_HELP, case_sensitive=False)


def in_chans_option():
    return typer.Option(None, "--in-chans", min=1, help="Input channels (overrides the variant's).")


def num_classes_option():
    return typer.Option(None, "--num-classes", min=0, help="Classifier outputs (overrides the variant's; 0 = none).")


def size_option(help_text: str = "Input size H or HxW (default: the variant's).") -> Any:
    return typer.Option(None, "--size", help=help_text)


def import_torch() -> None:
    """Import torch for a command (call it once the arguments are checked: usage errors answer
    without it), then move every object alive now (torch's modules, functions and classes: millions)
    out of the cyclic garbage collector's view (``gc.freeze``), so the collections the command
    triggers scan only its own objects (~0.2 s less per run here, and fewer pauses in bench's timed
    loop). CLI only: frozen objects are never collected, fine for a process that ends with its command."""
    import torch  # noqa: F401

    from . import _CtrlC

    _CtrlC.check()  # a Ctrl-C during the import that numpy's or torch's initialisers swallowed
    gc.freeze()


def emit(fmt: Format, payload: Any, rows: Sequence[dict], columns: Sequence[str],
         table: Callable[[Any], Any], numeric: Sequence[str] = ()) -> None:
    """Write the result to stdout in ``fmt``: ``table(payload)`` gives the rich renderable(s);
    JSON is the whole payload; CSV and Markdown are ``rows`` restricted to ``columns``."""
    from ..render import export
    from ..render.console import stdout

    if fmt == Format.json:
        typer.echo(export.to_json(payload))
    elif fmt == Format.csv:
        typer.echo(export.to_csv(rows, columns), nl=False)
    elif fmt == Format.markdown:
        typer.echo(export.to_markdown(rows, columns, numeric), nl=False)
    else:
        from ..render.console import plain_if_needed
        from ..render.tables import fit_width

        console = stdout()
        renderables = table(payload)
        for r in renderables if isinstance(renderables, (list, tuple)) else [renderables]:
            # a table too wide for the terminal becomes one block of lines per row (no column dropped);
            # a stream that cannot encode '±' gets ASCII cells (laid out after the change)
            r = plain_if_needed(console, fit_width(console, r))
            console.print(r, crop=False)  # a narrow terminal wraps the line; nothing is cut off


def kwargs_option():
    return typer.Option(None, "--kwargs", metavar="KEY=VALUE,...", help=KWARGS_HELP)


def input_size_option():
    return typer.Option(None, "--input-size", metavar="C,H,W", help=INPUT_SIZE_HELP)


def weights_option():
    return typer.Option(None, "--weights", help="A checkpoint (.pth, .pt, .safetensors) to load; read safely "
                        "(never unpickles code). With --weights, VARIANT may be left out: it is identified.")


def strict_option():
    return typer.Option(True, "--strict/--no-strict", help="Require every checkpoint key to load "
                        "(--no-strict lists what did not).")


def load_network(variant: Optional[str], weights: Optional[str] = None, strict: bool = True,
                 in_chans: Optional[int] = None, num_classes: Optional[int] = None,
                 kwargs: Optional[str] = None, input_size: Optional[str] = None):
    """(display name, spec, state_dict or None) for a command.

    Without ``weights`` this is ``models.resolve`` with the overrides. With ``weights`` the checkpoint is read
    safely and identified (or checked against ``variant``) by ``analysis.checkpoint.load_weights``;
    its notes (keys that did not load with --no-strict, other matching variants) go to stderr.
    Your own network (``file.py:factory``, ``timm:NAME``, ...) gives a ``models.external.ModuleSource``
    with ``kwargs`` and ``input_size`` (checked here, built later by the command).

    Raises:
        UsageError: no variant and no weights, an unknown variant, weights that do not fit, --kwargs or
            --input-size without your own network, --weights with it.
        RuntimeFailure: an unreadable checkpoint.
    """
    from ..models.external import is_source

    if variant is not None and is_source(variant):
        if weights is not None:
            raise UsageError("--weights loads checkpoints into the built-in ResNets only; your own network's "
                             "factory makes its weights (architecture only: they do not change the figures)")
        from ..models.external import parse_source

        name, source = parse_source(variant, kwargs, input_size, in_chans=in_chans, num_classes=num_classes)
        return name, source, None
    if kwargs is not None or input_size is not None:
        flag = "--kwargs" if kwargs is not None else "--input-size"
        raise UsageError(f"{flag} applies to your own network (path/to/file.py:factory, package.module:factory, "
                         "timm:NAME, torchvision:NAME); a built-in variant takes a spec, e.g. 'resnet50(in_chans=1)'")
    if weights is None:
        if variant is None:
            raise UsageError("missing VARIANT: give a variant name or spec (see 'resnet-cli list'), or --weights FILE")
        from ..models import resolve

        name, spec = resolve(variant, in_chans=in_chans, num_classes=num_classes)
        return name, spec, None
    from ..analysis.checkpoint import load_weights

    from ..render.console import note

    loaded = load_weights(weights, variant, in_chans=in_chans, num_classes=num_classes, strict=strict)
    for line in loaded.notes:
        note(line)
    return loaded.name, loaded.spec, loaded.state_dict


def network_hw_text(spec, size: Optional[str]):
    """``--size`` as (H, W) for a command (before torch): the spec's default when not given; for your own
    network (``ModuleSource``) None means its own input size, decided once it is built.

    Raises:
        UsageError: a bad --size.
    """
    from ..models import input_hw, parse_size
    from ..models.external import ModuleSource

    if isinstance(spec, ModuleSource):
        return parse_size(size) if size is not None else None
    return input_hw(spec, size)
