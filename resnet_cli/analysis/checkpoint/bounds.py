"""Checks, before a checkpoint is loaded, that the sizes it claims fit in the file: a crafted file
can claim a huge string in a pickle, a huge storage in its storage index, or a huge entry in its zip
directory, and loaders allocate what is claimed before they find the file shorter (memory grew past
8 GB on a few-byte file). Every claim here is read without allocating it and compared with the file's
length; nothing in the file is run (the storage index is walked by an unpickler whose globals are inert
stand-ins). No torch here.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import zipfile
from pathlib import Path

from ...errors import RuntimeFailure

#: safetensors' own limit on the JSON header.
MAX_HEADER_BYTES = 100 * 2 ** 20
_ELEMENT_BYTES = {"Double": 8, "Float": 4, "Half": 2, "BFloat16": 2, "Long": 8, "Int": 4, "Short": 2, "Char": 1,
                  "Byte": 1, "Bool": 1, "ComplexFloat": 8, "ComplexDouble": 16, "Untyped": 1}
_OPS = {op.code.encode("latin-1"): op for op in pickletools.opcodes}


def _refuse(p: Path, what: str) -> RuntimeFailure:
    return RuntimeFailure(f"refused to load {str(p)!r}: {what} (a truncated or corrupt file, or a crafted one); nothing was loaded")


def check_claims(p: Path, fmt: str, size: int) -> None:
    """Raise before loading when ``p`` (``fmt`` from the sniffing, ``size`` bytes) claims more than it holds.

    Raises:
        RuntimeFailure: names the claim and the file's length.
    """
    try:
        with open(p, "rb") as f:
            if fmt == "safetensors":
                _safetensors(p, f, size)
            elif fmt == "torch":
                _zip(p, size)
            else:
                _legacy(p, f, size)
    except _Malformed:  # not a pickle at all, or cut short: the loader's own message says so
        return


class _Malformed(Exception):
    """The bytes are not a well-formed pickle: left to torch.load to describe."""


def _safetensors(p: Path, f, size: int) -> None:
    head = f.read(8)
    if len(head) < 8:
        raise _refuse(p, f"a safetensors file of {size} bytes has no 8-byte header length")
    n = int.from_bytes(head, "little")
    if n > size - 8 or n > MAX_HEADER_BYTES:
        raise _refuse(p, f"its header claims {n} bytes, more than the file's {size} bytes (or the "
                         f"{MAX_HEADER_BYTES} safetensors allows)")


def _zip(p: Path, size: int) -> None:
    try:
        with zipfile.ZipFile(p) as zf:
            infos = zf.infolist()
            total = 0
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED:  # torch.save stores entries uncompressed
                    raise _refuse(p, f"entry {info.filename!r} is compressed, which torch.save never does")
                total += info.file_size
                if info.file_size > size or total > size:
                    raise _refuse(p, f"its zip directory claims {total} bytes of entries, more than the "
                                     f"file's {size} bytes")
            records = {i.filename.rsplit("/", 1)[-1]: i.file_size for i in infos if "/data/" in i.filename}
            pkl = next((i for i in infos if i.filename.endswith("data.pkl")), None)
            if pkl is None:
                return
            data = zf.read(pkl)
    except zipfile.BadZipFile:
        return  # torch.load reports a broken archive itself
    _check_pickle_lengths(p, io.BytesIO(data), len(data))
    for key, claimed in _storage_claims(data).items():
        have = records.get(str(key))
        if have is not None and claimed > have:
            raise _refuse(p, f"storage {key!r} claims {claimed} bytes but its record holds {have}")


def _legacy(p: Path, f, size: int) -> None:
    """torch's legacy format: magic number, protocol, system info and the object as four pickles, the
    storage keys as a fifth, then each storage (8-byte element count, then its bytes)."""
    starts = []
    for _ in range(5):
        starts.append(f.tell())
        if f.tell() >= size:
            return  # not a legacy checkpoint: torch.load says what it is
        _check_pickle_lengths(p, f, size)
    f.seek(starts[3])
    main = f.read(starts[4] - starts[3])
    claims = _storage_claims(main)
    total = sum(claims.values())
    if total > size:
        raise _refuse(p, f"its storage index claims {total} bytes of tensors, more than the file's {size} bytes")


def _check_pickle_lengths(p: Path, f, size: int) -> None:
    """Walk one pickle's opcodes up to STOP without reading any argument longer than what is left."""
    while True:
        code = f.read(1)
        if not code:
            raise _Malformed()
        op = _OPS.get(code)
        if op is None:
            raise _Malformed()
        arg = op.arg
        if arg is not None:
            n = arg.n
            if n == pickletools.UP_TO_NEWLINE:
                for _ in range(2 if op.name in ("GLOBAL", "INST") else 1):  # module and name: two lines
                    line = f.readline(size)
                    if not line.endswith(b"\n"):
                        raise _Malformed()
                n = 0
            elif n < 0:
                width = {pickletools.TAKEN_FROM_ARGUMENT1: 1, pickletools.TAKEN_FROM_ARGUMENT4: 4,
                         pickletools.TAKEN_FROM_ARGUMENT4U: 4, pickletools.TAKEN_FROM_ARGUMENT8U: 8}[n]
                raw = f.read(width)
                if len(raw) < width:
                    raise _Malformed()
                n = int.from_bytes(raw, "little", signed=(n == pickletools.TAKEN_FROM_ARGUMENT4))
                if n < 0:
                    raise _refuse(p, f"a pickle argument claims {n} bytes")
            left = size - f.tell()
            if n > left:
                raise _refuse(p, f"a pickle argument claims {n} bytes, more than the {left} left in the file")
            f.seek(n, os.SEEK_CUR)
        if op.name == "STOP":
            return


class _Inert:
    """What every global becomes in the claims walk: callable, subscriptable, settable, inert."""

    def __init__(self, name: str = "", *args, **kwargs):
        self.name = name

    def __call__(self, *args, **kwargs):
        return _Inert(self.name)

    def __setitem__(self, key, value):
        pass

    def __setstate__(self, state):
        pass

    def append(self, item):
        pass

    def extend(self, items):
        pass


class _ClaimsUnpickler(pickle.Unpickler):
    def __init__(self, file):
        super().__init__(file)
        self.claims: dict = {}

    def find_class(self, module, name):
        return _Inert(name)

    def persistent_load(self, pid):
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
            kind, key, numel = pid[1], pid[2], pid[4]
            name = getattr(kind, "name", "")
            element = next((b for prefix, b in _ELEMENT_BYTES.items() if name.startswith(prefix)), 1)
            if isinstance(numel, int) and isinstance(key, (str, int)):
                self.claims[key] = max(self.claims.get(key, 0), max(numel, 0) * element)
        return _Inert("storage")


def _storage_claims(data: bytes) -> dict:
    """{storage key: bytes claimed} from a pickle's persistent ids (the storage index), by an inert walk;
    {} when the walk fails (the loader then reports the file itself)."""
    unpickler = _ClaimsUnpickler(io.BytesIO(data))
    try:
        unpickler.load()
    except Exception:  # noqa: BLE001  (malformed: leave the diagnosis to torch.load)
        pass
    return unpickler.claims


__all__ = ["check_claims", "MAX_HEADER_BYTES"]
