"""resnet-cli: build any ResNet variant and report its shapes, parameters, MACs, receptive fields and speed.

Importing this package does not import torch; the functions below import it when called.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["build_model", "get_spec", "summarize", "compare", "encoder_stages", "decoder_plan", "__version__"]
# bench(network, ...), the Python API of ``resnet-cli bench``: ``from resnet_cli.bench import bench``
# (``resnet_cli.bench`` is the timing package, so the name cannot be re-exported here as well).


def __getattr__(name: str):
    # Lazy re-exports keep `import resnet_cli` (and so `resnet-cli --help`) free of torch.
    if name in ("build_model", "get_spec"):
        from . import models

        return getattr(models, name)
    if name in ("summarize", "compare"):
        from .analysis import summary

        return getattr(summary, name)
    if name == "encoder_stages":
        from .analysis.stages import encoder_stages

        return encoder_stages
    if name == "decoder_plan":
        from .analysis.decoder_plan import decoder_plan

        return decoder_plan
    raise AttributeError(f"module 'resnet_cli' has no attribute {name!r}")
