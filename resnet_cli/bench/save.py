"""``--save FILE``: append-only JSON Lines, one line per measured batch.

Each line goes out in one ``os.write`` on a descriptor opened with ``O_APPEND`` (the kernel moves to
the end and writes in one step), then ``fsync``; an interrupted run can lose at most the line being
written, never an earlier one.
"""

from __future__ import annotations

import errno
import os
import stat

from ..errors import RuntimeFailure


def _open(path: str) -> int:
    """Open for appending without blocking: a FIFO nobody reads answers ENXIO at once instead of
    hanging in open(); the descriptor is then made blocking again for the write."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        why = "a named pipe with no reader" if exc.errno == errno.ENXIO else (exc.strerror or str(exc))
        raise RuntimeFailure(f"--save {path!r} cannot be opened for appending ({why}); "
                             "give a writable file path") from None
    os.set_blocking(fd, True)
    return fd


def check_appendable(path: str) -> None:
    """Fail before measuring rather than after, without creating the file (nothing is written
    before a measurement exists): the path must not be a directory, an existing file must be
    writable, a new one's folder must exist and be writable.

    Raises:
        RuntimeFailure: names the path and what is wrong with it.
    """
    def fail(why: str) -> None:
        raise RuntimeFailure(f"--save {path!r} {why}; give a writable file path")

    if os.path.isdir(path):
        fail("is a directory")
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            fail("is not writable")
        return
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        fail(f"cannot be created: the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        fail(f"cannot be created: the folder {folder!r} is not writable")


def append_line(path: str, line: str) -> None:
    """Append ``line`` (no newline inside) plus ``\\n`` in a single write, then flush to disk
    (``fsync``, regular files only: a pipe or device has no disk to flush to).

    Raises:
        RuntimeFailure: the open or write fails (disk full, /dev/full, a FIFO nobody reads...).
    """
    if "\n" in line:
        raise ValueError("a JSON Lines record must be one line")
    data = (line + "\n").encode("utf-8")
    fd = _open(path)
    try:
        written = os.write(fd, data)
        if written != len(data):  # a short write on a regular file means the disk is full
            raise OSError(28, "short write (disk full?)")
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fsync(fd)
    except OSError as exc:
        raise RuntimeFailure(f"--save {path!r}: writing failed ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
