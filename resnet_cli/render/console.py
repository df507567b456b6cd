"""The two consoles: stdout carries the result only; notes, warnings and progress go to stderr."""

from __future__ import annotations

import codecs
import os
import sys
import unicodedata

from rich.console import Console

#: ASCII spellings of the non-ASCII characters resnet-cli and rich print, for a stream whose encoding
#: cannot show them (``LC_ALL=C`` without Python's UTF-8 mode, ``PYTHONIOENCODING=ascii``, latin-1).
ASCII = {"\u00b1": "+/-", "\u00d7": "x", "\u2026": "...", "\u2014": "-", "\u2013": "-", "\u00b5": "u",
         "\u2248": "~", "\u2264": "<=", "\u2265": ">=", "\u2192": "->", "\u00a7": "S.", "\u00b7": ".",
         "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "}
_HANDLER = "resnet_cli_ascii"


def _to_ascii(char: str) -> str:
    if char in ASCII:
        return ASCII[char]
    if unicodedata.category(char).startswith("Z"):
        return " "
    if 0x2500 <= ord(char) <= 0x259F:  # box drawing and block elements (table rules, progress bars)
        return "#" if ord(char) >= 0x2580 else ("|" if char in "\u2502\u2503\u2551" else "-")
    plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    return plain or "?"


def _replace(error: UnicodeEncodeError):
    text = error.object[error.start:error.end]
    return "".join(_to_ascii(c) for c in text), error.end


codecs.register_error(_HANDLER, _replace)


def ascii_fallback(streams=None) -> None:
    """Let stdout and stderr write any text: a stream whose encoding cannot show a character
    (``\u00b1`` under ``LC_ALL=C``) writes an ASCII spelling instead (``+/-``, see :data:`ASCII`; others by
    their Unicode decomposition, else ``?``) rather than raising UnicodeEncodeError after half the
    output. UTF-8 streams are left as they are. Rich sees the stream's encoding and draws ASCII rules."""
    for stream in streams or (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if not encoding or not hasattr(stream, "reconfigure"):
            continue
        try:
            "\u00b1\u2026\u2500".encode(encoding)
        except UnicodeEncodeError:
            try:
                stream.reconfigure(errors=_HANDLER)
            except (ValueError, OSError):  # closed or detached: nothing will be written there
                pass
        except LookupError:
            pass


class _StdoutConsole(Console):
    """Rich's console, except that a closed pipe (``| head -1``) raises BrokenPipeError for the CLI to
    end quietly with status 0; rich's own handling exits with status 1."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError(32, "the reader of stdout went away")


#: Every string reaches a console literally: a table cell or title holding a user's file name or spec
#: (``[red]x.py``, ``own.py:factory``) must not be read as rich markup or as an emoji code (``:factory:``).
#: resnet-cli styles with ``style=`` and Text objects, never with markup in strings.
_LITERAL = {"markup": False, "emoji": False, "highlight": False}


def stdout() -> Console:
    """A console on the current stdout; 200 columns when it is not a terminal, so piped tables do not wrap.
    Strings are shown literally (no markup, no emoji codes: see ``_LITERAL``)."""
    tty = sys.stdout.isatty()
    return _StdoutConsole(file=sys.stdout, width=None if tty or "COLUMNS" in os.environ else 200, **_LITERAL)


def stderr() -> Console:
    """A console on the current stderr; strings are shown literally, as on :func:`stdout`."""
    return Console(file=sys.stderr, **_LITERAL)


def note(text: str) -> None:
    """A one-line note on stderr (kept out of stdout so JSON and CSV pipe cleanly)."""
    stderr().print(text, markup=False, highlight=False, soft_wrap=True)


def ascii_text(text: str) -> str:
    """``text`` with every non-ASCII character spelled in ASCII (see :data:`ASCII`)."""
    return text.encode("ascii", _HANDLER).decode("ascii")


def _can_show(console: Console) -> bool:
    try:
        "\u00b1\u2026\u2500".encode(console.encoding or "utf-8")
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def plain_if_needed(console: Console, renderable):
    """``renderable`` with its text spelled in ASCII when ``console``'s stream cannot encode it, done
    before rich lays it out so columns stay aligned (``mean +/- std`` is wider than ``mean \u00b1 std``).
    Handles rich Tables and Texts, strings and our LinesTable/RecordBlocks; anything else goes out as
    is (the stream's error handler from :func:`ascii_fallback` spells what remains)."""
    if _can_show(console):
        return renderable
    from rich.table import Table
    from rich.text import Text

    from .tables import LinesTable, RecordBlocks

    def fix(cell):
        if isinstance(cell, str):
            return ascii_text(cell)
        if isinstance(cell, Text):
            return Text(ascii_text(cell.plain), style=cell.style, justify=cell.justify, no_wrap=cell.no_wrap)
        return cell

    if isinstance(renderable, RecordBlocks):
        plain_if_needed(console, renderable.table)
    elif isinstance(renderable, Table):
        renderable.title, renderable.caption = fix(renderable.title), fix(renderable.caption)
        for column in renderable.columns:
            column.header = fix(column.header)
            column._cells[:] = [fix(c) for c in column._cells]
    elif isinstance(renderable, LinesTable):
        renderable.title = ascii_text(renderable.title)
        renderable.header = [ascii_text(h) for h in renderable.header]
        renderable.cells = [[ascii_text(c) for c in row] for row in renderable.cells]
    else:
        return fix(renderable)
    return renderable
