"""The one exception type for user-facing errors.

``cli`` prints ``str(error)`` as a single line on stderr and exits with ``error.exit_code``:
2 for usage errors (a bad name, option or value), 1 for runtime failures (a device that is not
there, an unreadable file). Anything else escaping a command is a bug and is reported as such.
"""

from __future__ import annotations


class ResnetCliError(Exception):
    """An error whose message is meant for the user, one line, naming the bad value and what is accepted.

    The message is kept to one printable line whatever built it: a newline, tab or other control
    character (from a value the user typed or a file name) is written as its escape (``\\n``), as
    ``repr`` shows it. Message builders should still show such values with ``!r``."""

    exit_code = 2

    def __init__(self, *args):
        if len(args) == 1 and isinstance(args[0], str):
            args = (one_line(args[0]),)
        super().__init__(*args)


def one_line(text: str) -> str:
    """``text`` with every non-printable character (newline, tab, escape, NUL...) replaced by its
    ``repr`` escape, so it prints as a single line that cannot move the cursor or colour the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type's name when the message is empty)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class UsageError(ResnetCliError):
    """Bad input from the user: exit status 2."""

    exit_code = 2


class RuntimeFailure(ResnetCliError):
    """The input was fine but the run failed (device, file, memory): exit status 1."""

    exit_code = 1


class ReadsValues(RuntimeFailure):
    """A forward pass or step reads a tensor's value (``if y.sum() > 0``), which an analysis on meta or
    fake tensors cannot answer: exit status 1 where nothing else can be done (bench still times it)."""
