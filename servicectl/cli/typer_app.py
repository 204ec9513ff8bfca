"""The full command-line grammar of servicectl in typer (help, completion, usage errors), built
from the command table in grammar.py. ``parse`` turns a command line into the same Call the
fast parser of cli.py produces, or into the exit code of typer's own answer (help, a usage
error, the version); it runs no command.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Optional, Union

import typer
from typer import _click as click
from typer.core import TyperArgument, TyperCommand

import servicectl
from servicectl.commands.grammar import (
    APP_EPILOG,
    APP_HELP,
    COMMANDS,
    DEBUG,
    DIR_OPTS,
    HELP_FLAGS,
    VERSION,
    Arg,
    Call,
    Command,
    Opt,
    make_call,
)

_DECIDED: list[Call] = []
_GROUP_DIRS: list[Optional[str]] = [None, None, None]
_GROUP_DEBUG = [False]  # --debug given before the command


def _version(value: bool) -> None:
    if value:
        print(f"servicectl {servicectl.version()}")
        raise typer.Exit(0)


def _option(opt: Opt, hidden: bool = False) -> tuple[Any, Any]:
    """(annotation, typer default) for one option of the table."""
    common: dict[str, Any] = {"help": opt.help, "hidden": hidden}
    if opt.kind == "flag":
        if opt is VERSION:
            common.update(callback=_version, is_eager=True)
        return bool, typer.Option(False, *opt.flags, **common)
    if opt.kind == "int":
        return (int if opt.default is not None else Optional[int]), typer.Option(
            opt.default, *opt.flags, min=opt.minimum, metavar=opt.metavar, **common
        )
    # Paths are taken as text (click's Path type would refuse unreadable ones, which the
    # fast parser accepts); the Call makes them Paths.
    default = None if opt.default is None else str(opt.default)
    return Optional[str], typer.Option(
        default, *opt.flags, metavar=opt.metavar or None, show_default=default is not None, **common
    )


def _complete_names(ctx: typer.Context, args: list[str], incomplete: str) -> list[Any]:
    """Service names for a NAME argument, from the services directory in effect (-d before
    or after the command, else SERVICECTL_SERVICES_DIR, else the default), each with its
    description where the definition can be read; names already given are left out."""
    from servicectl.definitions.catalog import definition_files
    from servicectl.paths import resolve_dirs

    given = ctx.params.get("services_dir") or (ctx.parent.params if ctx.parent else {}).get(
        "services_dir"
    )
    dirs = resolve_dirs(given)
    try:
        files = definition_files(dirs.services)
    except OSError:
        return []
    taken = set(ctx.params.get("names") or ())
    names = sorted(n for n in files if n.startswith(incomplete) and n not in taken)
    try:
        from servicectl.definitions.catalog import load_catalog

        catalog = load_catalog(dirs, names)
    except Exception:  # completion never fails: names alone will do
        return names
    return [(n, catalog.services[n].description) if n in catalog.services else n for n in names]


def _argument(arg: Arg) -> tuple[Any, Any]:
    # Written as the usage line shows it (NAME..., [NAME]...): see _Command.
    metavar = f"{arg.metavar}..." if arg.variadic else arg.metavar
    info = typer.Argument(
        ... if arg.required else None,
        metavar=metavar,
        help=arg.help,
        show_default=False,
        autocompletion=_complete_names if arg.metavar == "NAME" else None,
    )
    if arg.variadic:
        return (list[str] if arg.required else Optional[list[str]]), info
    return str, info


def _function(
    name: str, doc: str, params: list[tuple[str, Any, Any]], body: Callable[..., None]
) -> Callable[..., None]:
    """A function typer can read: keyword parameters with typer defaults and annotations."""

    def fn(**values: Any) -> None:
        body(**values)

    fn.__name__ = name.replace("-", "_")
    fn.__doc__ = doc
    fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a)
            for p, a, d in params
        ]
    )
    fn.__annotations__ = {p: a for p, a, _ in params}
    return fn


def _command_body(cmd: Command) -> Callable[..., None]:
    def decide(**values: Any) -> None:
        # A directory given after the command wins over one given before it.
        after = [values.pop(opt.name) for opt in DIR_OPTS]
        dirs = tuple(a if a is not None else b for a, b in zip(after, _GROUP_DIRS))
        debug = bool(values.pop(DEBUG.name)) or _GROUP_DEBUG[0]
        _DECIDED.append(make_call(cmd, values, dirs, debug))  # type: ignore[arg-type]

    return decide


def _group(**values: Any) -> None:
    for i, opt in enumerate(DIR_OPTS):
        _GROUP_DIRS[i] = values[opt.name]
    _GROUP_DEBUG[0] = bool(values.get(DEBUG.name))


class _Command(TyperCommand):
    """A command as servicectl writes it: required arguments bare in the usage line
    (``stop [OPTIONS] NAME...``, where typer writes ``{NAME...}``), optional ones in brackets,
    and the directory options, hidden from each command's help (the main help lists them),
    still offered by completion after the command name."""

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                metavar = param.make_metavar(ctx)
                pieces.append(metavar if param.required else f"[{metavar}]")
        return pieces

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        from typer._click.shell_completion import CompletionItem

        items = super().shell_complete(ctx, incomplete)
        if incomplete and not incomplete[0].isalnum():
            for opt in DIR_OPTS:
                given = ctx.params.get(opt.name) is not None
                items += [
                    CompletionItem(flag, help=opt.help)
                    for flag in opt.flags
                    if flag.startswith(incomplete) and not given
                ]
        return items


def build() -> typer.Typer:
    app = typer.Typer(
        name="servicectl",
        help=APP_HELP,
        epilog=APP_EPILOG,
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": list(HELP_FLAGS)},
    )
    params = [(o.name, *_option(o)) for o in (*DIR_OPTS, DEBUG, VERSION)]
    app.callback(epilog=APP_EPILOG)(_function("servicectl", APP_HELP, params, _group))
    for cmd in COMMANDS.values():
        params = [(a.name, *_argument(a)) for a in cmd.args]
        params += [(o.name, *_option(o)) for o in cmd.opts]
        params += [(o.name, *_option(o, hidden=True)) for o in (*DIR_OPTS, DEBUG)]
        # "\b": click keeps the lines of this paragraph as they are.
        exits = "\n".join(f"  {code}  {text}" for code, text in cmd.exits)
        app.command(
            cmd.name,
            cls=_Command,
            help=cmd.help,
            short_help=cmd.summary,
            epilog=f"\b\nExit codes:\n{exits}",
        )(_function(cmd.name, cmd.help, params, _command_body(cmd)))
    return app


def parse(argv: list[str]) -> Union[Call, int]:
    """The Call for ``argv``, or the exit code of what typer answered itself (help and
    version: 0; a usage error: 2, said on stderr)."""
    _DECIDED.clear()
    _GROUP_DIRS[:] = [None, None, None]
    _GROUP_DEBUG[0] = False
    try:
        build()(args=argv, prog_name="servicectl")
    except SystemExit as exc:
        if _DECIDED:
            return _DECIDED[0]
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return _DECIDED[0] if _DECIDED else 0


HELP_WIDTH = 80  # click wraps help to min(columns, 80) - 2: the same text from 80 columns up


def rendered_help() -> dict[str, str]:
    """What typer prints for ``--help`` of servicectl ("") and of each command, on a terminal
    of HELP_WIDTH columns or more (or none): cli/helptext.py holds it for the fast parser."""
    import contextlib
    import io
    import os

    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(HELP_WIDTH)
    out = {}
    try:
        for name in ("", *COMMANDS):
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                parse([name, "--help"] if name else ["--help"])
            out[name] = buf.getvalue()
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    return out


def helptext_module() -> str:
    """The source of cli/helptext.py (python -m servicectl.cli.typer_app --write-help FILE)."""
    lines = [
        '"""typer\'s --help of servicectl ("") and of each command, as printed on a terminal of',
        "HELP_WIDTH columns or more (or none): the fast parser prints it without importing typer.",
        "Generated by python -m servicectl.cli.typer_app --write-help servicectl/cli/helptext.py;",
        'tests/test_grammar.py checks it against typer."""',
        "",
        f"HELP_WIDTH = {HELP_WIDTH}",
        "HELP = {",
    ]
    for name, text in rendered_help().items():
        lines.append(f"    {name!r}: (")
        for line in text.splitlines(keepends=True):  # long lines in pieces: under 100 columns
            lines += [f"        {line[i : i + 76]!r}" for i in range(0, len(line), 76)]
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] != ["--write-help"] or len(sys.argv) != 3:
        sys.exit("usage: python -m servicectl.cli.typer_app --write-help FILE")
    with open(sys.argv[2], "w") as fh:
        fh.write(helptext_module())
