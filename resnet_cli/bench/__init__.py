"""Timing forward passes: ``config`` (settings, option parsing; no torch), ``runner`` (first call,
warm-up, timed loop), ``stats`` (statistics, outliers, warnings), ``device`` (availability, environment,
peak GEMM rate, memory probes), ``memory`` (activation estimate, OOM retry, max-batch search),
``session`` (one whole run), ``save`` (JSON Lines appends) and ``records`` (the results).

Nothing here prints; ``render.bench`` formats the records and ``cli.bench_cmd`` wires it up.
"""


def __getattr__(name: str):
    # ``from resnet_cli.bench import bench``: the Python API (an nn.Module, a name or a spec), imported lazily
    if name == "bench":
        from .api import bench

        return bench
    raise AttributeError(f"module 'resnet_cli.bench' has no attribute {name!r}")
