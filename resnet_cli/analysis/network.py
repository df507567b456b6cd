"""The one entry point of every analysis: "a module and an input shape", whatever the network came from.

:func:`open_network` takes a variant name, spec string, :class:`~resnet_cli.models.ResNetSpec`,
:class:`~resnet_cli.models.external.ModuleSource` (``file.py:factory``, ``timm:NAME``, ...) or a
``torch.nn.Module`` and returns a :class:`Network`: the module, its input (C, H, W), its ResNetSpec
when there is one (stage names, output stride) and notes for the user (how the input size was chosen).

A ResNetSpec is built on the meta device (no memory). The user's module is built once on the CPU
(its factory decides its weights) and its forward pass is checked on an empty batch first, so that a
module that cannot run at the size fails with one line naming it (:func:`check_forward`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..errors import RuntimeFailure, UsageError
from ..models import ResNetSpec, build_model, input_hw, resolve
from ..models.external import ModuleSource, module_input_size, parse_input_size


@dataclass(frozen=True)
class Network:
    """A network ready for analysis.

    Attributes:
        name: display name. spec_string: what rebuilds it (a spec string, or the command-line words).
        model: the ``nn.Module`` (meta device for a ResNetSpec).
        input_size: its default (C, H, W).
        spec: the ResNetSpec (or another built-in spec, such as a UNetSpec), or None for any other module
            (then stage names and output stride are inferred from the trace).
        source: the ModuleSource it came from, or None.
        notes: lines for the user (stderr in the CLI; ``notes`` in JSON).
    """

    name: str
    spec_string: str
    model: torch.nn.Module
    input_size: tuple[int, int, int]
    spec: Optional[object]
    source: Optional[ModuleSource]
    notes: tuple[str, ...]

    @property
    def in_chans(self) -> int:
        return self.input_size[0]


def open_network(network, *, name: Optional[str] = None, input_size=None) -> Network:
    """The :class:`Network` of ``network`` (see the module docstring).

    ``input_size``: (C, H, W) for a module that cannot tell its own (a ModuleSource's ``--input-size``
    comes with it); ignored for a ResNetSpec (its ``in_chans`` and size rule).

    Raises:
        UsageError / RuntimeFailure: see :func:`~resnet_cli.models.external.ModuleSource.build`.
    """
    if isinstance(network, str):
        display, network = resolve(network)
        name = name or display
    if isinstance(network, ResNetSpec) or not isinstance(network, (ModuleSource, torch.nn.Module)) and \
            hasattr(network, "to_string") and hasattr(network, "input_size"):  # a built-in spec (UNetSpec too)
        with torch.device("meta"):
            model = build_model(network)
        return Network(name or "custom", network.to_string(), model, tuple(network.input_size), network, None, ())
    given = parse_input_size(input_size) if isinstance(input_size, (tuple, list)) and len(input_size) == 3 else None
    hw = None
    if input_size is not None and given is None:  # --size H[xW]: named in the note on the assumed input
        try:
            hw = input_hw(ResNetSpec(), input_size)
        except UsageError:
            hw = None  # reported where the size is used
    if isinstance(network, ModuleSource):
        model = network.build()
        size, note = module_input_size(model, network.input_size or given, hw)
        source = network.replace(input_size=size)
        return Network(name or network.label(), source.to_string(), model, size, None, source,
                       (note,) if note else ())
    if isinstance(network, torch.nn.Module):
        size, note = module_input_size(network, given, hw)
        cls = type(network)
        source = ModuleSource("object", cls.__module__, cls.__qualname__, (), size)
        return Network(name or cls.__name__, source.to_string(), network, size, None, source,
                       (note,) if note else ())
    raise UsageError(f"cannot analyse a {type(network).__name__}: give a variant name, a spec, a "
                     "file.py:factory / timm:NAME text, or a torch.nn.Module")


def network_hw(net, size) -> tuple[int, int]:
    """(H, W) for a :class:`.network.Network`: ``size`` as H, (H, W), ``"HxW"`` or (C, H, W) (C taken
    by :func:`.network.open_network`), default its own input size.

    Raises:
        UsageError: anything else (see :func:`resnet_cli.models.input_hw`).
    """
    if size is None:
        return tuple(net.input_size[1:])
    if isinstance(size, (tuple, list)) and len(size) == 3:
        if net.spec is not None:
            raise UsageError(f"input size {tuple(size)!r}: give (H, W) for a ResNet spec (its channels are "
                             "in_chans, e.g. 'resnet50(in_chans=1)')")
        size = tuple(size)[1:]
    return input_hw(net.spec or ResNetSpec(), size)


def check_forward(net: Network, shape: tuple[int, int, int, int]) -> None:
    """For a network that is not a ResNetSpec: run one empty-batch (N = 0) forward pass at (C, H, W) =
    ``shape[1:]`` on an uninitialised CPU copy, and turn a failure into one line naming the module.

    Raises:
        UsageError: the forward fails at this size but a nearby size works (exit 2, as for a built-in
            network at a size it cannot take; the message names the layer and that size).
        RuntimeFailure: the forward raises at every nearby size (the module's own error, exit 1), or the
            module cannot take an empty batch, which resnet-cli's analysis passes use.
    """
    if net.spec is not None:
        return
    from .trace import empty_cpu_copy, input_error

    empty = empty_cpu_copy(net.model).eval()
    c, h, w = shape[1:]
    at = f"input {c}x{h}x{w} (C x H x W)"
    try:
        with torch.no_grad():
            empty(torch.empty((0, c, h, w), device="cpu"))
        return
    except KeyboardInterrupt:
        raise
    except Exception as err:  # noqa: BLE001  (the user's forward: any error is theirs, one line)
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        failure = f"{type(err).__name__}: {first}" if first else type(err).__name__
        error = err
    if _runs_at_batch_one(empty, shape):
        raise RuntimeFailure(f"{net.name} cannot take an empty batch (N = 0), which resnet-cli's analysis runs "
                             f"to get shapes without compute ({failure}); a common cause is x.view(x.size(0), -1): "
                             "torch.flatten(x, 1) takes any batch")
    if isinstance(error, (RuntimeError, ValueError)):
        failure = input_error(net.model, shape, error)
        message = str(failure)
        if isinstance(failure, RuntimeFailure):  # not a size problem (a value read): said as it is
            raise RuntimeFailure(f"{net.name}: {message}")
        if "the nearest size that works" in message:
            raise UsageError(f"{net.name}: {message}")
        raise RuntimeFailure(f"the forward pass of {net.name} fails at {at} and at every size within 64 px: "
                             f"{message}")
    raise RuntimeFailure(f"the forward pass of {net.name} fails at {at}: {failure}")


def _runs_at_batch_one(model: torch.nn.Module, shape) -> bool:
    try:
        with torch.no_grad():
            model(torch.zeros((1, *shape[1:]), device="cpu"))
        return True
    except Exception:  # noqa: BLE001
        return False


def inferred_output_stride(traced) -> Optional[int]:
    """The largest cumulative stride of any module's output in a trace (None when none is known)."""
    strides = [t.stride for t in traced.values() if t.stride is not None]
    return max(strides) if strides else None


def first_rf_note(traced) -> Optional[str]:
    """The first reason the receptive field stopped in a trace, as a line for the user; None if it never did."""
    reason = next((t.rf_note for t in traced.values() if t.rf_note), None)
    if reason is None:
        return None
    return (f"receptive field and stride: n/a {reason} (computed through convolutions, pools and per-position "
            "ops only; the rows before it have them)")
