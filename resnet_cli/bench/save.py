"""``--save FILE``: append-only JSON Lines, one line per measured batch.

Each line goes out in one ``os.write`` on a descriptor opened with ``O_APPEND`` (the kernel moves to
the end and writes in one step), then ``fsync``; an interrupted run can lose at most the line being
written, never an earlier one.
"""

from __future__ import annotations

import os

from ..errors import RuntimeFailure


def _open(path: str) -> int:
    try:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RuntimeFailure(f"--save {path!r} cannot be opened for appending ({exc.strerror}); "
                             "give a writable file path") from None


def check_appendable(path: str) -> None:
    """Fail before measuring rather than after.

    Raises:
        RuntimeFailure: the file cannot be created or opened for appending.
    """
    os.close(_open(path))


def append_line(path: str, line: str) -> None:
    """Append ``line`` (no newline inside) plus ``\\n`` in a single write, then flush to disk.

    Raises:
        RuntimeFailure: the write fails (disk full, file removed from a read-only mount...).
    """
    if "\n" in line:
        raise ValueError("a JSON Lines record must be one line")
    data = (line + "\n").encode("utf-8")
    fd = _open(path)
    try:
        written = os.write(fd, data)
        if written != len(data):  # a short write on a regular file means the disk is full
            raise OSError(28, "short write (disk full?)")
        os.fsync(fd)
    except OSError as exc:
        raise RuntimeFailure(f"--save {path!r}: writing failed ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
