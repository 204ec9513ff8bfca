"""The entry point of servicectl: main(), run(), and the fast parser of everyday command lines.

Everyday lines are parsed here from the command table (grammar.py) without importing typer,
which costs 20-30 ms per call; whatever this parser cannot decide exactly as typer would (help,
completion, a usage error, combined forms it does not know) goes to the typer grammar built
from the same table (cli_typer.py). Both produce a Call; commands.py runs it.
"""

from __future__ import annotations

import _signal  # the C module: signal's enums would import enum (a few ms)
import gc
import os
import sys

from servicectl import lastresort
from servicectl.commands.grammar import (
    COMMANDS,
    DEBUG,
    DIR_OPTS,
    HELP_FLAGS,
    Call,
    Command,
    Opt,
    make_call,
    output_code,
)
from servicectl.errors import ServicectlError
from servicectl.output import face as _face
from servicectl.output.face import face
from servicectl.text import escape, shown  # noqa: F401  (the escaping, for callers)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, Union

GLOBAL_OPTS = (*DIR_OPTS, DEBUG)  # before the command, and also accepted after it
_GLOBAL = {flag: opt for opt in GLOBAL_OPTS for flag in opt.flags}


def _value(opt: Opt, text: str) -> Any:
    """``text`` as the value of ``opt``, or None when typer might read it otherwise (or
    refuse it): only plain ASCII numbers and ordinary paths are decided here."""
    if opt.kind == "int":
        if not (text.isascii() and text.isdigit()):
            return None
        number = int(text)
        return None if opt.minimum is not None and number < opt.minimum else number
    return None if not text or text.startswith("-") else text


def _option(argv: list[str], k: int, table: dict[str, Opt], values: dict[str, Any]) -> int:
    """Take the option at ``argv[k]`` (``--name[=value]``, ``-x``, ``-xVALUE``, ``-fx``)
    into ``values``; the index after it, or -1 when it is not decided here."""
    arg = argv[k]
    if arg.startswith("--"):
        name, eq, text = arg.partition("=")
        opt = table.get(name)
        if opt is None or (opt.kind == "flag" and eq):
            return -1
        if opt.kind == "flag":
            values[opt.name] = True
            return k + 1
    else:
        for j in range(1, len(arg)):
            opt = table.get("-" + arg[j])
            if opt is None:
                return -1
            if opt.kind == "flag":
                values[opt.name] = True
                continue
            text = arg[j + 1 :]
            eq = "=" if text else ""
            break
        else:
            return k + 1
    if not eq:
        k += 1
        if k == len(argv):
            return -1
        text = argv[k]
    value = _value(opt, text)
    if value is None:
        return -1
    values[opt.name] = value
    return k + 1


def fast_parse(argv: list[str]) -> Optional[Call]:
    """The Call for ``argv``, or None when typer must decide (help, a usage error, forms
    this parser does not know). Whatever it decides, typer decides the same."""
    dirs: dict[str, Any] = {}
    k = _take_options(argv, _GLOBAL, dirs)
    if k < 0 or k == len(argv) or argv[k] not in COMMANDS:
        return None
    cmd = COMMANDS[argv[k]]
    table = {flag: opt for opt in (*cmd.opts, *GLOBAL_OPTS) for flag in opt.flags}
    values: dict[str, Any] = {}
    words = _words_and_options(argv[k + 1 :], table, values)
    if words is None or not _bind_arguments(cmd, words, values):
        return None
    for opt in GLOBAL_OPTS:
        if opt.name in values:
            dirs[opt.name] = values.pop(opt.name)
    given = tuple(dirs.get(o.name) for o in DIR_OPTS)
    return make_call(cmd, values, given, bool(dirs.get(DEBUG.name)))  # type: ignore[arg-type]


def _take_options(argv: list[str], table: dict[str, Opt], values: dict[str, Any]) -> int:
    """Take the leading options of ``argv`` into ``values``; the index of the first word
    (``-`` and ``--`` are words here), or -1 when an option is not decided here."""
    k = 0
    while k < len(argv) and argv[k].startswith("-") and argv[k] not in ("-", "--"):
        k = _option(argv, k, table, values)
        if k < 0:
            return -1
    return k


def _words_and_options(
    rest: list[str], table: dict[str, Opt], values: dict[str, Any]
) -> Optional[list[str]]:
    """The positional words of a command's ``rest``, its options taken into ``values``
    (everything after ``--`` is a word); None when an option is not decided here."""
    words: list[str] = []
    k = 0
    while k < len(rest):
        arg = rest[k]
        if arg == "--":
            words += rest[k + 1 :]
            break
        if arg.startswith("-") and arg != "-":
            k = _option(rest, k, table, values)
            if k < 0:
                return None
            continue
        words.append(arg)
        k += 1
    return words


def _bind_arguments(cmd: Command, words: list[str], values: dict[str, Any]) -> bool:
    """Bind ``words`` to the arguments of ``cmd`` in ``values``; False when they do not fit
    (too few, or more words than arguments), which typer then says."""
    for spec in cmd.args:
        if spec.variadic:
            if spec.required and not words:
                return False
            values[spec.name], words = words, []
        elif not words:
            return False
        else:
            values[spec.name] = words.pop(0)
    return not words


def decide(argv: list[str]) -> Union[Call, int]:
    """The Call for ``argv`` (fast parser first, then typer), or the exit code of typer's own
    answer (help, version, completion, a usage error)."""
    if argv == ["--version"]:  # without typer (the same answer as typer's --version)
        from servicectl import version

        face.out(f"servicectl {version()}\n")
        return 0
    completing = any(k.startswith("_SERVICECTL_COMPLETE") for k in os.environ)
    text = None if completing else _help_text(argv)
    if text is not None:  # typer's own words, pre-rendered (cli/helptext.py)
        face.out(text)
        return 0
    call = None if completing else fast_parse(argv)
    if call is not None:
        return call
    from servicectl.cli.typer_app import parse

    return parse(argv)


def _help_text(argv: list[str]) -> Optional[str]:
    """typer's help for ``--help``/``-h`` of servicectl or of one command, as pre-rendered
    for terminals of HELP_WIDTH columns or more, or None (another form, or a narrower
    terminal, whose help typer wraps otherwise). Directory options may come first."""
    k = 0
    while 0 <= k < len(argv) and argv[k].startswith("-") and argv[k] not in HELP_FLAGS:
        k = _option(argv, k, _GLOBAL, {})
    argv = argv[k:] if k >= 0 else []
    if not 1 <= len(argv) <= 2 or argv[-1] not in HELP_FLAGS:
        return None
    name = argv[0] if len(argv) == 2 else ""
    if name and name not in COMMANDS:
        return None
    from servicectl.cli.helptext import HELP, HELP_WIDTH

    if _columns() < HELP_WIDTH:
        return None
    return HELP.get(name)


def _columns() -> int:
    """The terminal's width as click reads it (shutil.get_terminal_size: $COLUMNS, else the
    terminal of standard output, else 80), without importing shutil."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def _on_interrupt(signum: int, frame: object) -> None:
    import signal

    name = signal.Signals(signum).name
    face.error(
        f"interrupted by {name}; finishing safely (a half-done start is undone; a service "
        f"being stopped stays tracked)"
    )
    raise KeyboardInterrupt


def run(argv: list[str]) -> int:
    """Parse ``argv`` (without the program name), do the command, flush its output, and
    return its exit code. SIGTERM is handled like Ctrl-C: the action under way undoes what it
    half did (a start kills what it spawned), then the code is 130. Output never decides the
    outcome: a reader that went away changes nothing; output that could not be written is
    said on stderr, and fails a command whose output is its whole job."""
    _signal.signal(_signal.SIGTERM, _on_interrupt)
    if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, _on_interrupt)
    lastresort.DEBUG = _debug_asked(argv)
    lastresort.install_hooks()
    call: Optional[Call] = None
    try:
        decided = decide(argv)
        if isinstance(decided, int):
            code = decided
        else:
            call = decided
            _name_the_call(call)
            from servicectl.commands.dispatch import execute

            code = execute(call)
    except SystemExit as exc:  # from a library: its code, or its message and 1
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            face.error(str(exc.code))
            code = 1
    except ServicectlError as exc:
        face.error(exc.message, exc.detail)
        code = int(exc.exit_code)
    except KeyboardInterrupt:
        code = 130  # what was left is already said (_on_interrupt, the commands)
    except Exception as exc:  # R-VIEW-4: the last net, one line (a traceback with --debug)
        _face.flush()
        lastresort.report(exc, _names(call))
        code = 4 if call is not None and call.command == "status" else 1
    _face.flush()
    lost = _face.output_failure()
    if lost is not None:
        face.error(f"the output could not be written: {lost}")
        _face.flush()
        return _lost_output_code(call, code)
    return code


def _debug_asked(argv: list[str]) -> bool:
    """Whether ``--debug`` is among the options (before ``--``), however parsing goes."""
    for arg in argv:
        if arg == "--":
            return False
        if arg == "--debug":
            return True
    return False


def _name_the_call(call: Call) -> None:
    lastresort.COMMAND = call.command
    lastresort.DEBUG = lastresort.DEBUG or call.debug


def _names(call: Optional[Call]) -> str:
    """The service(s) a command line names, for the last net's line ("" if none)."""
    if call is None:
        return ""
    values = call.arguments()
    named = values.get("names") or values.get("name") or ()
    words = [named] if isinstance(named, str) else [str(n) for n in named]
    return " ".join(words[:3]) + (" ..." if len(words) > 3 else "")


def _lost_output_code(call: Optional[Call], code: int) -> int:
    """The exit code when the output could not be written: an action keeps its own; a
    command whose output is its whole job fails (status: 4, unknown; the others: their own
    failure, else 1). What typer answered itself (help, version) was all output too."""
    if code == 130:
        return code
    wanted = 1 if call is None else output_code(call)
    if wanted is None:
        return code
    if call is not None and call.command == "status":
        return wanted
    return code or wanted


def main() -> None:
    """Console entry point: guard the standard streams, run the command, and leave at once.
    Everything servicectl writes is flushed by run(), locks are the kernel's, and no atexit
    work is needed, so the interpreter's teardown (about 6 ms here) is skipped. The cyclic
    garbage collector is off: a command is short and makes little cyclic garbage, and the
    collections it would run while modules load cost 3-6 ms (``logs -f``, the one command
    that runs unbounded, turns it back on)."""
    gc.disable()
    _face.install_streams()
    os._exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
