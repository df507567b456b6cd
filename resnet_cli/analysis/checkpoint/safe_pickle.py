"""A pickle module for ``torch.load(..., pickle_module=safe_pickle)`` that never imports an arbitrary
global: Python's own unpickler (every opcode of protocols 0-5: FRAME, MEMOIZE, SHORT_BINUNICODE,
STACK_GLOBAL, ...) with ``find_class`` restricted to the globals torch's ``weights_only`` unpickler
allows (tensor rebuilders, storages, dtypes, OrderedDict, ...) plus ``argparse.Namespace``; anything
else is refused before it is imported, with the global named ("Restricting Globals", Python's pickle
documentation). Used for checkpoints saved with ``torch.save(sd, pickle_protocol=4)``, whose opcodes
torch's weights-only unpickler does not implement.
"""

from __future__ import annotations

import functools
import pickle
from typing import Any


UnpicklingError = pickle.UnpicklingError


@functools.lru_cache(maxsize=1)
def allowed_globals() -> dict[str, Any]:
    """``"module.name"`` -> object: torch's weights-only allow-list, argparse.Namespace, and torch's dtypes."""
    import argparse

    import torch

    allowed: dict[str, Any] = {}
    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        allowed.update(_get_allowed_globals())
    except (ImportError, AttributeError):  # a torch without it: the few globals a state_dict needs
        from collections import OrderedDict

        allowed.update({"collections.OrderedDict": OrderedDict, "torch._utils._rebuild_tensor_v2":
                        torch._utils._rebuild_tensor_v2, "torch._utils._rebuild_parameter":
                        torch._utils._rebuild_parameter, "torch.nn.parameter.Parameter": torch.nn.Parameter,
                        "torch.Size": torch.Size, "torch.device": torch.device})
    allowed.update({f"torch.{name}": value for name, value in vars(torch).items() if isinstance(value, torch.dtype)})
    allowed["argparse.Namespace"] = argparse.Namespace
    return allowed


class Unpickler(pickle.Unpickler):
    """Python's unpickler; ``find_class`` returns only allowed globals (torch's storage classes are
    resolved by torch.load's own wrapper before this is asked)."""

    def find_class(self, module: str, name: str) -> Any:
        key = f"{module}.{name}"
        found = allowed_globals().get(key)
        if found is None:
            raise pickle.UnpicklingError(f"GLOBAL {key} is not allowed")
        return found


def load(file, **kwargs) -> Any:
    """``pickle.load`` with the restricted :class:`Unpickler`."""
    return Unpickler(file, **kwargs).load()


def loads(data: bytes, **kwargs) -> Any:
    import io

    return Unpickler(io.BytesIO(data), **kwargs).load()
