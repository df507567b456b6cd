"""The Typer app. Parses options, calls one function below, hands the records to ``render``.

No torch at import time: each command imports what it needs when it runs, so ``--help`` and
``list`` answer fast. Exit codes: 0 ok, 1 runtime failure, 2 usage error, 130 interrupted.
``--debug`` (anywhere on the line, or RESNET_CLI_DEBUG=1) shows tracebacks.
"""

from __future__ import annotations

import errno
import gc
import os
import sys
import traceback

try:
    import typer
    from typer.core import TyperGroup
    from typer.exceptions import Abort, Exit, TyperException
except KeyboardInterrupt:  # Ctrl-C while the CLI itself loads (~0.15 s; longer on a busy machine)
    sys.stderr.write("resnet-cli: error: interrupted\n")
    os._exit(130)

from ..errors import ResnetCliError


def _fail(message: str, code: int) -> None:
    from ..errors import one_line

    try:
        typer.echo(f"resnet-cli: error: {one_line(message)}", err=True)
    except (BrokenPipeError, ValueError):  # stderr closed too: the exit status still says it
        pass
    sys.exit(code)


def _exit_now(code: int) -> None:
    """Flush and end the process with ``code`` at once. After Ctrl-C the interpreter's own shutdown
    (torch half imported, its threads) may end the process by the signal instead (-2), or run on;
    an interrupted run has nothing left to finalise."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001  (a closed or broken stream: nothing more can be said)
            pass
    os._exit(code)


def _stdout_closed() -> None:
    """The reader of stdout went away (``resnet-cli summary resnet50 | head -1``): not a failure.
    Point stdout at /dev/null so the interpreter's final flush cannot raise again (the recipe in
    Python's documentation of SIGPIPE), and exit 0 without a message."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (CliRunner's buffer)
        pass
    sys.exit(0)


class _Interrupted(ResnetCliError):
    """Ctrl-C outside a command's own handling (Typer would turn it into a silent exit 130)."""

    exit_code = 130


def _caused_by_ctrl_c(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt is in ``exc``'s chain: a Ctrl-C during ``import torch`` can
    surface as an ImportError raised while handling it."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


class _CtrlC:
    """Remembers a Ctrl-C even when a library swallows the KeyboardInterrupt it raised: during
    ``import torch`` numpy's and torch's C initialisers can clear a pending exception, and the
    command would then run to the end and exit 0. The handler records the signal, then raises as
    Python's default handler does; :meth:`check` turns a recorded one into KeyboardInterrupt."""

    seen = False

    @classmethod
    def install(cls) -> None:
        import signal
        import threading

        cls.seen = False
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return  # ignored (a background job) or the caller's own handler: leave it
        signal.signal(signal.SIGINT, cls._handle)

    @classmethod
    def uninstall(cls) -> None:
        """Put Python's default handler back (a library caller's process keeps its own behaviour)."""
        import signal
        import threading

        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) == cls._handle:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    @classmethod
    def _handle(cls, signum, frame):
        cls.seen = True
        raise KeyboardInterrupt

    @classmethod
    def check(cls) -> None:
        """Raise KeyboardInterrupt if a Ctrl-C arrived (call after imports that may swallow it)."""
        if cls.seen:
            raise KeyboardInterrupt


#: Options of a command whose value may be left out (click's options always take one): the first
#: choice is implied. ``bench --channels-last`` alone means ``--channels-last on``.
_OPTIONAL_VALUES = {"bench": {"--channels-last": ("on", "off", "both")}}


def _optional_values(args: list) -> list:
    """``bench --channels-last`` alone means ``--channels-last on``; ``--channels-last both`` keeps its
    value. Other commands' arguments pass unchanged."""
    command = next((a for a in args if not str(a).startswith("-")), None)
    optional = _OPTIONAL_VALUES.get(command, {})
    if not optional:
        return args
    out = []
    for i, arg in enumerate(args):
        out.append(arg)
        choices = optional.get(arg)
        if choices and (i + 1 == len(args) or str(args[i + 1]).lower() not in choices):
            out.append(choices[0])
    return out


class _App(TyperGroup):
    """Turns every failure into one line on stderr and the documented exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise _Interrupted("interrupted") from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        args = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in args or os.environ.get("RESNET_CLI_DEBUG") == "1"
        args = _optional_values([a for a in args if a != "--debug"])
        from ..render.console import ascii_fallback

        ascii_fallback()
        _CtrlC.install()
        try:
            return self._main(args, prog_name, complete_var, debug, **extra)
        finally:
            _CtrlC.uninstall()

    def _main(self, args, prog_name, complete_var, debug, **extra):
        try:
            result = super().main(args, prog_name or "resnet-cli", complete_var, standalone_mode=False, **extra)
        except BrokenPipeError:
            _stdout_closed()
        except SystemExit as exc:  # click ends a closed pipe (EPIPE) with sys.exit(1): that is no failure
            if isinstance(exc.__context__, OSError) and exc.__context__.errno == errno.EPIPE:
                _stdout_closed()
            raise
        except Exit as exc:
            sys.exit(exc.exit_code)
        except TyperException as exc:  # Typer's (vendored click's) usage errors: exit 2
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
                typer.echo(ctx.get_help(), err=True)
                sys.exit(2)
            where = ctx.command_path if ctx is not None else "resnet-cli"
            _fail(" ".join(exc.format_message().split()) + f" (see '{where} --help')", exc.exit_code)
        except (Abort, KeyboardInterrupt):
            _fail("interrupted", 130)
        except ResnetCliError as exc:
            if debug:
                traceback.print_exc()
            _fail(str(exc).replace("\n", " "), exc.exit_code)
        except Exception as exc:  # a bug: say so in one line, the traceback only with --debug
            if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
                _stdout_closed()
            if _CtrlC.seen or _caused_by_ctrl_c(exc):
                _fail("interrupted", 130)
            if debug:
                traceback.print_exc()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            _fail(f"internal error: {type(exc).__name__}: {first} (rerun with --debug for the traceback)", 1)
        if _CtrlC.seen and not result:  # a Ctrl-C some library swallowed: the run was still interrupted
            _fail("interrupted", 130)
        try:
            sys.stdout.flush()  # a closed pipe shows here when the output was small enough to buffer
        except BrokenPipeError:
            _stdout_closed()
        except (OSError, ValueError):
            pass
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    cls=_App,
    name="resnet-cli",
    help="Inspect and benchmark ResNets: layer shapes, parameters, MACs/FLOPs, receptive fields, "
         "U-Net skip shapes, training-step memory, and forward-pass and training-step throughput. Add --debug "
         "anywhere for tracebacks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"resnet-cli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Inspect and benchmark ResNets."""


from . import bench_cmd, inspect_cmd, list_cmd, plot_cmd, skips_cmd, summary_cmd  # noqa: E402,F401  (registers the commands)


def main() -> None:
    """Console-script entry point."""
    try:
        try:
            app()
        except KeyboardInterrupt:  # between commands' own handling and exit (Typer's wrapper)
            _fail("interrupted", 130)
    except SystemExit as exc:
        if exc.code == 130:  # the process ends here, by its status, not by the signal at shutdown
            _exit_now(130)
        raise
    finally:
        # Everything is printed. With torch imported, the interpreter's final collections walk
        # millions of objects (~1 s here); frozen objects are skipped (documented gc API).
        gc.freeze()
