"""The last net under every command and the supervisor: an exception servicectl did not expect
becomes one line for people (``servicectl: status web: internal error: TypeName: message``),
never a traceback; the traceback is printed only with ``--debug``, and the supervisor writes
it to its own log (docs/security.md R-VIEW-4).

This is no replacement for handling what can go wrong where it goes wrong: it is what is left
when that failed. Base layer: imports the text escaping only.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

COMMAND = ""  # the command being run, for the line ("" before it is known)
DEBUG = False  # --debug: the traceback follows the line
FAILURE = 1  # the exit code of an internal error (4 for status: unknown)


def describe(exc: BaseException, name: str = "") -> str:
    """``COMMAND NAME: internal error: TypeName: message`` (what is known of them)."""
    where = " ".join(w for w in (COMMAND, name) if w)
    message = str(exc).strip()
    what = type(exc).__name__ + (f": {message}" if message else "")
    return (f"{where}: " if where else "") + f"internal error: {what}"


def traceback_text(exc: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip("\n")


def in_action(exc: BaseException) -> str:
    """An Outcome's message for one service's internal error in a fleet action (the others go
    on): ``internal error in start: TypeName: message``; with --debug, the traceback is
    printed at once."""
    if DEBUG:
        from servicectl.text import shown

        try:
            sys.stderr.write(shown(traceback_text(exc)) + "\n")
        except Exception:  # noqa: BLE001 - a last net
            pass
    message = str(exc).strip()
    where = f" in {COMMAND}" if COMMAND else ""
    return f"internal error{where}: {type(exc).__name__}" + (f": {message}" if message else "")


def report(exc: BaseException, name: str = "") -> None:
    """Say ``exc`` on stderr, one line (and its traceback with --debug); never raises."""
    from servicectl.text import escape, shown

    try:
        sys.stderr.write(f"servicectl: {escape(describe(exc, name))}\n")
        if DEBUG:
            sys.stderr.write(shown(traceback_text(exc)) + "\n")
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - a last net: stderr itself may be gone
        pass


def install_hooks() -> None:
    """Route what Python reports as unraisable (an exception in a finalizer) through
    ``report``, and what escapes a thread once threads are used (install_thread_hook: a
    command that starts none does not pay for importing threading)."""

    def unraisable_hook(args: Any) -> None:
        if DEBUG and args.exc_value is not None:
            report(args.exc_value, "")

    sys.unraisablehook = unraisable_hook
    if "threading" in sys.modules:
        install_thread_hook()


def install_thread_hook() -> None:
    """Route what escapes a thread through ``report``: a helper thread's crash is one line
    too. Called by whatever starts threads, before it starts them."""
    import threading

    def thread_hook(args: Any) -> None:
        if args.exc_type is SystemExit:
            return
        report(args.exc_value or args.exc_type(), "")

    threading.excepthook = thread_hook
