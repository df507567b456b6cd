"""The one exception type for user-facing errors.

``cli`` prints ``str(error)`` as a single line on stderr and exits with ``error.exit_code``:
2 for usage errors (a bad name, option or value), 1 for runtime failures (a device that is not
there, an unreadable file). Anything else escaping a command is a bug and is reported as such.
"""

from __future__ import annotations


class ResnetCliError(Exception):
    """An error whose message is meant for the user, one line, naming the bad value and what is accepted."""

    exit_code = 2


class UsageError(ResnetCliError):
    """Bad input from the user: exit status 2."""

    exit_code = 2


class RuntimeFailure(ResnetCliError):
    """The input was fine but the run failed (device, file, memory): exit status 1."""

    exit_code = 1
