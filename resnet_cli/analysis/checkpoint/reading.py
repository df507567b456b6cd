"""Reading checkpoints without running code from them.

``.safetensors`` goes through the safetensors package; everything else through
``torch.load(path, map_location="cpu", weights_only=True)``, whose unpickler accepts tensors and plain
containers only (plus ``argparse.Namespace``, which timm's training checkpoints carry under ``args``).
A pickle naming any other global is refused before anything in it runs.

The state_dict is taken from under the first of ``WRAPPER_KEYS`` that holds tensors (else the
top-level tensors, else any nested dict of tensors), and the key prefix before the ResNet's own keys
(``module.`` from DataParallel/DDP, ``_orig_mod.`` from ``torch.compile``, ``model.``, ``backbone.``,
... nested to any depth) is found from the first block's keys and stripped.
"""

from __future__ import annotations

import os
import re
import stat
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ...errors import RuntimeFailure

#: Keys under which training scripts keep the state_dict, in order of preference (EMA weights last).
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "module", "weights", "params",
                "ema", "state_dict_ema", "model_ema", "ema_state_dict")
_STAGE_START = re.compile(r"(?:^|\.)(layer1\.0\.|stages\.0\.blocks\.0\.)")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint as read: ``tensors`` with the prefix stripped (keys outside it kept whole)."""

    file: str
    format: str
    wrapper_key: Optional[str]
    prefix: str
    tensors: dict
    #: the extension disagreed with the content (:func:`format_note`)
    note: Optional[str] = None

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(t.shape) for k, t in self.tensors.items()}


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint safely (see the module docstring); tensors stay on the CPU.

    Raises:
        RuntimeFailure: a missing file, a directory, a truncated or corrupt file, a pickle that would
            run code (refused before it runs), or a payload without tensors.
    """
    p = Path(path)
    size = _regular_file_size(p, str(path))
    try:
        with open(p, "rb") as f:
            head = f.read(9)
    except OSError as exc:
        raise RuntimeFailure(f"cannot read checkpoint {str(path)!r}: {exc.strerror or exc}") from None
    if size == 0:
        raise RuntimeFailure(f"checkpoint {str(path)!r} is empty (0 bytes): truncated, or not written yet?")
    fmt = _sniff(p, head, size)
    from .bounds import check_claims

    check_claims(p, fmt, size)  # sizes the file claims, against its length, before anything is allocated
    payload = _load_safetensors(p) if fmt == "safetensors" else _load_torch(p)
    tensors, wrapper = _unwrap(payload)
    if not tensors:
        raise RuntimeFailure(f"checkpoint {str(path)!r} holds no state_dict of named tensors (found "
                             f"{_describe(payload)}): expected a state_dict, or a dict holding one under a key "
                             "such as 'state_dict'")
    prefix = _prefix(tensors)
    stripped = {(k[len(prefix):] if k.startswith(prefix) else k): t for k, t in tensors.items()}
    return Checkpoint(str(path), fmt, wrapper, prefix, stripped, format_note(p, fmt))


def _regular_file_size(p: Path, shown: str) -> int:
    """The length of ``p`` in bytes, checked before it is opened: a directory, named pipe (FIFO),
    device or socket is refused (opening a FIFO would wait for a writer forever; a device such as
    /dev/zero never ends).

    Raises:
        RuntimeFailure: a missing path, or one that is not a regular file (symlinks are followed).
    """
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise RuntimeFailure(f"checkpoint {shown!r} does not exist") from None
    except OSError as exc:
        raise RuntimeFailure(f"cannot read checkpoint {shown!r}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise RuntimeFailure(f"checkpoint {shown!r} is a directory: give a .pth, .pt or .safetensors file")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                or stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise RuntimeFailure(f"checkpoint {shown!r} is {kind}: give a regular .pth, .pt or .safetensors file "
                             "(nothing was read)")
    return st.st_size


def _sniff(p: Path, head: bytes, size: int) -> str:
    """``safetensors`` (8-byte little-endian header length, then ``{`` of its JSON), ``torch`` (zip: ``PK\\x03\\x04``,
    what ``torch.save`` writes) or ``pickle`` (legacy ``torch.save``: protocol opcode 0x80 first), told by content
    first; only bytes that are none of these fall back to the extension (``.safetensors``, else pickle, so the
    safety checks of that format refuse or describe them)."""
    if head[:4] == b"PK\x03\x04":
        return "torch"
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= size - 8:
        return "safetensors"
    if head[:1] == b"\x80":
        return "pickle"
    return "safetensors" if p.suffix.lower() == ".safetensors" else "pickle"


_FORMAT_NAMES = {"torch": "a torch.save zip", "pickle": "a legacy torch.save pickle", "safetensors": "safetensors"}


def format_note(p: Path, fmt: str) -> Optional[str]:
    """A note when the extension of ``p`` disagrees with the format found in its content; else None."""
    suffix = p.suffix.lower()
    claims = "safetensors" if suffix == ".safetensors" else "torch" if suffix in (".pth", ".pt", ".bin", ".ckpt") \
        else None
    if claims is None or (claims == "safetensors") == (fmt == "safetensors"):
        return None
    return f"{str(p)!r} is {_FORMAT_NAMES[fmt]} by its content, not what its extension {p.suffix!r} says: read as {fmt}"


def _load_safetensors(p: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(p), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise RuntimeFailure(f"cannot read {str(p)!r} as safetensors (truncated or corrupt?): "
                             f"{_first_line(exc)}") from None


def _load_torch(p: Path) -> Any:
    import argparse
    import pickle
    import warnings

    import torch

    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals([argparse.Namespace]):
            warnings.simplefilter("ignore")  # torch warns about pickle protocols on stderr
            try:
                # a file object, not the path: torch.load hands a path ending .safetensors to safetensors
                with open(p, "rb") as f:
                    return torch.load(f, map_location="cpu", weights_only=True)
            except pickle.UnpicklingError as exc:
                if not re.search(r"Unsupported operand (\d+)", str(exc)):
                    raise
            # torch.save(..., pickle_protocol=4 or 5) uses opcodes (FRAME, MEMOIZE, SHORT_BINUNICODE,
            # STACK_GLOBAL...) that torch's weights-only unpickler refuses: read it with Python's own
            # unpickler restricted to the same allowed globals (see .safe_pickle).
            from . import safe_pickle

            with open(p, "rb") as f:
                return torch.load(f, map_location="cpu", weights_only=False, pickle_module=safe_pickle)
    except pickle.UnpicklingError as exc:
        raise RuntimeFailure(_refusal(p, str(exc))) from None
    except Exception as exc:  # truncated zip, EOF, bad magic number: torch raises many types
        # torch's own errors say what is wrong; others (IndexError deep in a parser) would only confuse
        known = isinstance(exc, (RuntimeError, OSError, EOFError, ValueError)) and _first_line(exc)
        raise RuntimeFailure(f"cannot read {str(p)!r} as a PyTorch checkpoint (torch.save's zip or pickle "
                             f"format; truncated or corrupt?){': ' + known if known else ''}") from None


def _refusal(p: Path, message: str) -> str:
    found = re.search(r"GLOBAL ([\w.]+)", message)
    if found:
        return (f"refused to load {str(p)!r}: its pickle imports {found.group(1)}, which could run code; "
                "nothing was run (resnet-cli reads only tensors and plain containers: save a state_dict "
                "or .safetensors)")
    operand = re.search(r"Unsupported operand (\d+)", message)
    what = f"pickle instruction {operand.group(1)}" if operand else "content"
    return (f"refused to load {str(p)!r}: {what} outside what torch.load(weights_only=True) accepts "
            "(a corrupt file, or a pickle of more than tensors); nothing was run")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _describe(payload: Any) -> str:
    if isinstance(payload, dict):
        if not payload:
            return "an empty dict"
        return "a dict with keys " + ", ".join(str(k) for k in list(payload)[:5]) + (", ..." if len(payload) > 5 else "")
    return f"a {type(payload).__name__}"


def _unwrap(payload: Any, depth: int = 0) -> tuple[dict, Optional[str]]:
    """(tensors, path of the wrapper keys) of the state_dict inside ``payload``."""
    import torch

    if not isinstance(payload, dict) or depth > 3:
        return {}, None
    others = [k for k in payload if k not in WRAPPER_KEYS and isinstance(payload[k], dict)]
    for key in [k for k in WRAPPER_KEYS if isinstance(payload.get(k), dict)] + [None] + others:
        if key is None:
            tensors = {k: v for k, v in payload.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
            if tensors:
                return tensors, None
            continue
        tensors, inner = _unwrap(payload[key], depth + 1)
        if tensors:
            return tensors, str(key) if inner is None else f"{key}.{inner}"
    return {}, None


def _prefix(tensors: dict) -> str:
    """The text before the ResNet's stage keys shared by most keys ('' when there is none)."""
    counts = Counter()
    for key in tensors:
        found = _STAGE_START.search(key)
        if found:
            counts[key[:found.start(1)]] += 1
    if not counts:
        return ""
    best = max(counts, key=lambda p: (sum(k.startswith(p) for k in tensors), -len(p)))
    return best
