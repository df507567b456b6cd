"""The Python API of ``resnet-cli bench``: :func:`bench` times any network, an ``nn.Module`` included,
through the same :class:`~.session.Session` as the command line."""

from __future__ import annotations

from typing import Optional, Sequence, Union

from ..errors import UsageError
from .config import DEFAULT_BATCH, DEFAULT_MIN_TIME_S, DEFAULT_WARMUP, DTYPES, BenchConfig, parse_device
from .records import BenchReport


def network_config(network, size=None, *, name: Optional[str] = None, **settings) -> tuple[BenchConfig, tuple[str, ...]]:
    """A :class:`BenchConfig` for a variant name, spec, ``file.py:factory`` text, ``ModuleSource`` or
    ``nn.Module`` (the module is built once here and its forward pass checked at the size), and the
    notes on what was inferred (the input size). ``settings``: the other BenchConfig fields.

    Raises:
        UsageError / RuntimeFailure: see :func:`resnet_cli.analysis.network.open_network` and
            :func:`~resnet_cli.analysis.network.check_forward`.
    """
    from ..analysis.network import check_forward, open_network
    from ..analysis.network import network_hw

    net = open_network(network, name=name, input_size=size)
    h, w = network_hw(net, size)
    check_forward(net, (1, net.in_chans, h, w))
    spec = net.spec if net.spec is not None else net.source
    model = None if net.spec is not None else net.model
    settings.setdefault("state_dict", None)
    settings.setdefault("strict", True)
    return BenchConfig(variant=net.name, spec=spec, size=(h, w), model=model, **settings), net.notes


def bench(network, size=None, *, batch: Union[int, Sequence[int]] = DEFAULT_BATCH, device: str = "cpu",
          dtype: str = "fp32", channels_last: bool = False, compile_mode: Optional[str] = None,
          warmup: int = DEFAULT_WARMUP, iters: Optional[int] = None, min_time_s: float = DEFAULT_MIN_TIME_S,
          threads: Optional[int] = None, peak_tflops: Optional[float] = None, force: bool = False,
          name: Optional[str] = None) -> BenchReport:
    """Time forward passes of ``network`` (a variant name or spec, a ``file.py:factory`` / ``timm:NAME``
    text, or a ``torch.nn.Module``, which is copied and never changed) at (batch, C, H, W).

    Args:
        size: H, (H, W) or ``"HxW"``; for a module also (C, H, W). Default: the network's own.
        batch: one batch size or several, in the order to run. device: ``cpu``, ``cuda[:N]``, ``mps``.
        dtype: ``fp32``, ``fp16`` or ``bf16`` (weights and input cast). warmup, iters, min_time_s,
            threads, peak_tflops, force, compile_mode, channels_last: as the ``bench`` options.

    Returns:
        The :class:`BenchReport`: per batch latency in ms (mean, median, ...), images/s, TFLOP/s
        (FLOPs = 2 x conv + linear MACs of a forward pass), peak memory in bytes.

    Raises:
        UsageError: a bad option or size; RuntimeFailure: the device is not there, the module raised.
    """
    from .session import Session

    batches = (batch,) if isinstance(batch, int) else tuple(batch)
    if not batches or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in batches):
        raise UsageError(f"batch {batch!r} must be a positive integer or a sequence of them")
    if dtype not in DTYPES:
        raise UsageError(f"dtype {dtype!r} is not one of: {', '.join(DTYPES)}")
    cfg, _notes = network_config(network, size, name=name, device=parse_device(device), dtype=dtype,
                                 channels_last=channels_last, compile_mode=compile_mode,
                                 batches=tuple(dict.fromkeys(batches)), max_batch=False, warmup=warmup, iters=iters,
                                 min_time_s=min_time_s, threads=threads, peak_tflops=peak_tflops, force=force)
    return Session(cfg).run()
