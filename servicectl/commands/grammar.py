"""The command table of servicectl: every command, its arguments, options, defaults, help text,
exit codes and the body that runs it. Typer-free and import-light.

Both parsers are built from it: the full typer grammar (cli_typer.py: help, completion, usage
errors) and the fast parser of everyday lines (cli.py). Both produce a ``Call`` (command,
keyword arguments, global directories), so the two can be compared, and docs/commands.md is
generated from it (``python -m servicectl.commands.grammar_doc``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional


class Arg:
    """A positional argument: ``variadic`` takes any number of words (at least one if
    ``required``); otherwise exactly one."""

    __slots__ = ("name", "metavar", "help", "required", "variadic")

    def __init__(
        self, name: str, metavar: str, help: str, required: bool = True, variadic: bool = True
    ) -> None:
        self.name = name  # keyword of the body
        self.metavar = metavar
        self.help = help
        self.required = required
        self.variadic = variadic


class Opt:
    """An option. ``kind``: "flag" (no value), "int", "path"; ``minimum`` for ints."""

    __slots__ = ("name", "flags", "kind", "default", "help", "minimum", "metavar")

    def __init__(
        self,
        name: str,
        flags: tuple[str, ...],
        kind: str,
        default: Any,
        help: str,
        minimum: Optional[int] = None,
        metavar: str = "",
    ) -> None:
        self.name = name  # keyword of the body
        self.flags = flags
        self.kind = kind
        self.default = default
        self.help = help
        self.minimum = minimum
        self.metavar = metavar


class Command:
    """One command: ``body`` names its function as ``module:function`` in servicectl.commands
    (imported lazily);
    ``output_code``: the exit code when its output, its whole job, could not be written."""

    __slots__ = ("name", "body", "help", "args", "opts", "exits", "output_code")

    def __init__(
        self,
        name: str,
        body: str,
        help: str,
        args: tuple[Arg, ...] = (),
        opts: tuple[Opt, ...] = (),
        exits: tuple[tuple[int, str], ...] = (),
        output_code: Optional[int] = None,
    ) -> None:
        self.name = name
        self.body = body
        self.help = help
        self.args = args
        self.opts = opts
        self.exits = exits
        self.output_code = output_code


class Call:
    """A decided command line: what to run, with which arguments, in which directories.
    Variadic arguments are tuples; ``dirs`` is (services, run, log), None where not given.
    Two parsers that decide alike produce equal Calls."""

    __slots__ = ("command", "kwargs", "dirs")

    def __init__(
        self,
        command: str,
        kwargs: tuple[tuple[str, Any], ...],
        dirs: tuple[Optional[Path], Optional[Path], Optional[Path]],
    ) -> None:
        self.command = command
        self.kwargs = kwargs
        self.dirs = dirs

    def _key(self) -> tuple[Any, ...]:
        return (self.command, self.kwargs, self.dirs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Call) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Call({self.command!r}, {self.kwargs!r}, {self.dirs!r})"

    def arguments(self) -> dict[str, Any]:
        return dict(self.kwargs)


# ---------------------------------------------------------------------------------------------
# Global options: before the command, and also accepted after it.

DIR_OPTS = (
    Opt(
        "services_dir",
        ("-d", "--services-dir"),
        "path",
        None,
        "Service definitions [env SERVICECTL_SERVICES_DIR].",
        metavar="DIR",
    ),
    Opt(
        "run_dir",
        ("--run-dir",),
        "path",
        None,
        "PID files, state, locks [env SERVICECTL_RUN_DIR].",
        metavar="DIR",
    ),
    Opt(
        "log_dir",
        ("--log-dir",),
        "path",
        None,
        "Service output logs [env SERVICECTL_LOG_DIR].",
        metavar="DIR",
    ),
)
VERSION = Opt("version", ("--version",), "flag", False, "Print the version and exit.")
HELP_FLAGS = ("-h", "--help")
APP_HELP = "Start, stop, reload and watch services described by one YAML file each."
APP_EPILOG = (
    "The directory options may also follow the command (servicectl status -d ./services.d). "
    "Run 'servicectl COMMAND --help' for a command's arguments, options and exit codes."
)

# ---------------------------------------------------------------------------------------------
# The commands

NAMES = Arg(
    "names", "NAME", "Service names (file stems in the services directory, or NAME@INSTANCE)."
)
SOME_NAMES = Arg("names", "NAME", "Services (default: all).", required=False)
GEN_NAMES = Arg("names", "NAME", "Services (or --all, or --boot).", required=False)
JSON = Opt("as_json", ("--json",), "flag", False, "Print a JSON list.")
FORCE = Opt("force", ("--force",), "flag", False, "Overwrite files servicectl did not write.")
STDOUT = Opt("stdout", ("--stdout",), "flag", False, "Print instead of writing.")
ALL = Opt("all_", ("--all",), "flag", False, "Every service definition.")


def _jobs(what: str) -> Opt:
    return Opt("jobs", ("-j", "--jobs"), "int", 64, f"Parallel {what} per level.", 1, "N")


_COMMON_EXITS = (
    (2, "usage error"),
    (4, "insufficient privilege, or an unusable run directory"),
    (5, "unknown service, or its program is not installed"),
    (6, "invalid definition, or its config test (check_command) failed"),
)
START_EXITS = (
    (0, "every service named runs (started now, or already running)"),
    (
        1,
        "a start failed (died within start_grace, launcher exit, timeout) or was skipped "
        "because a dependency failed",
    ),
    *_COMMON_EXITS,
)
STOP_EXITS = (
    (0, "every service named is stopped (now, or already; a stale PID file is left alone)"),
    (1, "a service could not be stopped (it survived its stop schedule)"),
    *_COMMON_EXITS,
)
ACTION_EXITS = (
    (0, "done (for try-restart: also a stopped service, left stopped)"),
    (1, "failure (the stop or the start failed)"),
    *_COMMON_EXITS,
)
RELOAD_EXITS = (
    (0, "reloaded"),
    (1, "failure"),
    (2, "usage error"),
    (3, "the service cannot be reloaded (reload: false)"),
    (5, "unknown service, or its program is not installed"),
    (6, "invalid definition, or its config test failed"),
    (7, "not running"),
)
ALL_EXITS = (
    (0, "every service concerned ends as asked"),
    (1, "some service failed (or was skipped because a dependency failed)"),
    (2, "usage error"),
    (6, "the services directory cannot be listed"),
)
ENABLE_EXITS = (
    (0, "done, or already so"),
    (1, "the drop-in could not be written, or a later drop-in overrides it"),
    (2, "usage error (an instance name a template cannot have)"),
    (4, "insufficient privilege, or an untrusted definition or drop-in directory"),
    (5, "unknown service"),
    (6, "invalid definition (fix it first, with edit)"),
)
GEN_EXITS = (
    (0, "every file written (or unchanged)"),
    (1, "a file was not written (a foreign file without --force, a missing --dir...)"),
    (2, "usage error (no names and no --all/--boot, or several of them)"),
    (5, "unknown service"),
    (6, "invalid definition"),
)


def _generator(kind: str, where: str, what: str) -> Command:
    return Command(
        kind,
        f"generate:{kind}",
        f"Write {what} that hand every action to servicectl; --boot writes the one for the "
        f"whole fleet (startall at boot, stopall at shutdown).",
        (GEN_NAMES,),
        (
            ALL,
            Opt("boot", ("--boot",), "flag", False, "The boot file for the whole fleet."),
            Opt(
                "directory",
                ("--dir",),
                "path",
                Path(where),
                "Where to write (must exist).",
                metavar="DIR",
            ),
            STDOUT,
            FORCE,
        ),
        GEN_EXITS,
    )


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command(
            "start",
            "control:start",
            "Start services (their stopped dependencies first); success if already running.",
            (NAMES,),
            (_jobs("starts"),),
            START_EXITS,
        ),
        Command(
            "stop",
            "control:stop",
            "Stop services; running services that depend on them are stopped first.",
            (NAMES,),
            (_jobs("stops"),),
            STOP_EXITS,
        ),
        Command(
            "restart", "control:restart", "Stop if running, then start.", (NAMES,), (), ACTION_EXITS
        ),
        Command(
            "try-restart",
            "control:try_restart",
            "Restart only services that are running.",
            (NAMES,),
            (),
            ACTION_EXITS,
        ),
        Command(
            "reload",
            "control:reload",
            "Send reload_signal or run reload_command (3: cannot reload, 7: not running).",
            (NAMES,),
            (),
            RELOAD_EXITS,
        ),
        Command(
            "force-reload",
            "control:force_reload",
            "Reload if supported, else restart if running.",
            (NAMES,),
            (),
            (*ACTION_EXITS, (7, "not running (a service that supports reload)")),
        ),
        Command(
            "status",
            "views:status",
            "Without names, one line per service: state, PID, uptime, memory, CPU and "
            "description. With names, a block per service (as systemctl status): its "
            "definition, state and since when, main PID and command line, process tree, "
            "memory, CPU time, listening sockets, notes and the end of its log. LSB status "
            "codes.",
            (SOME_NAMES,),
            (
                JSON,
                Opt(
                    "lines",
                    ("-n", "--lines"),
                    "int",
                    10,
                    "Log lines in the block of each service named (0: none).",
                    0,
                    "N",
                ),
            ),
            (
                (0, "running (or starting); with several services: every one runs"),
                (1, "dead: a PID file is left but its process is gone (or failed)"),
                (3, "stopped"),
                (4, "unknown service, invalid definition, status unknown, or lost output"),
            ),
            output_code=4,
        ),
        Command(
            "startall",
            "control:startall",
            "Start every enabled service, dependencies first, each level in parallel.",
            (),
            (_jobs("starts"),),
            ALL_EXITS,
        ),
        Command(
            "stopall",
            "control:stopall",
            "Stop every running service, dependents first, each level in parallel.",
            (),
            (_jobs("stops"),),
            ALL_EXITS,
        ),
        Command(
            "list",
            "views:list_",
            "List definitions: name, type, enabled, depends, description.",
            (),
            (JSON,),
            (
                (0, "listed"),
                (1, "the output could not be written"),
                (2, "usage error"),
                (6, "the services directory cannot be listed"),
            ),
            output_code=1,
        ),
        Command(
            "check",
            "check:check",
            "Validate definitions without touching any process (6 if any is invalid); warn "
            "about unset $VARIABLES their commands use.",
            (SOME_NAMES,),
            (
                Opt(
                    "run_checks",
                    ("--run-checks",),
                    "flag",
                    False,
                    "Also make their directories and run their config tests (check_command), "
                    "as start would.",
                ),
            ),
            (
                (0, "every definition is valid (and, with --run-checks, passes its test)"),
                (1, "the output could not be written, or a directory could not be made"),
                (2, "usage error"),
                (4, "a directory could not be made: a symlink servicectl does not follow"),
                (5, "unknown service, or its config test's program is not installed"),
                (6, "an invalid definition, or a failed config test"),
            ),
            output_code=1,
        ),
        Command(
            "action",
            "actions:command",
            "Run one of the service's actions (extra verbs such as rotate or upgrade): send "
            "its signal to the running service, or run its command.",
            (
                Arg("name", "NAME", "Service name.", variadic=False),
                Arg(
                    "verb",
                    "VERB",
                    "One of the verbs under actions: in its definition.",
                    variadic=False,
                ),
            ),
            (),
            (
                (0, "done"),
                (1, "the signal would kill the process, or the command failed"),
                (2, "usage error, or a verb the service does not have (its verbs are listed)"),
                (4, "insufficient privilege, or an unusable run directory"),
                (5, "unknown service, or the command's program is not installed"),
                (6, "invalid definition"),
                (7, "not running (a signal action)"),
            ),
        ),
        Command(
            "logs",
            "logs:logs",
            "Print the end of the service's output log.",
            (Arg("name", "NAME", "Service name.", variadic=False),),
            (
                Opt("lines", ("-n", "--lines"), "int", 20, "How many lines.", 0, "N"),
                Opt("follow", ("-f", "--follow"), "flag", False, "Keep printing new lines."),
            ),
            (
                (0, "printed"),
                (1, "no log (output discarded, never started) or lost output"),
                (2, "usage error"),
                (5, "unknown service"),
                (6, "invalid definition"),
            ),
            output_code=1,
        ),
        Command(
            "enable",
            "editing:enable",
            "Put services in startall: write NAME.d/50-enabled.yaml (enabled: true). For a "
            "template's instance, startall also needs it listed in instances.",
            (NAMES,),
            (),
            ENABLE_EXITS,
        ),
        Command(
            "disable",
            "editing:disable",
            "Take services out of startall: write NAME.d/50-enabled.yaml (enabled: false); "
            "a running service keeps running.",
            (NAMES,),
            (),
            ENABLE_EXITS,
        ),
        Command(
            "cat",
            "editing:cat",
            "Print each definition and its drop-ins, each under a # /path/to/file line.",
            (NAMES,),
            (),
            (
                (0, "printed"),
                (1, "a file could not be read, or the output could not be written"),
                (2, "usage error (an instance name a template cannot have)"),
                (4, "a file could not be read: permission denied"),
                (5, "unknown service"),
            ),
            output_code=1,
        ),
        Command(
            "edit",
            "editing:edit",
            "Edit NAME.d/override.yaml with $VISUAL, $EDITOR, editor or vi (on a copy); it "
            "is installed only if the definition it makes is valid.",
            (
                Arg(
                    "name",
                    "NAME",
                    "Service name (NAME@ edits what every instance shares).",
                    variadic=False,
                ),
            ),
            (),
            (
                (0, "installed, or unchanged"),
                (1, "the editor failed, or the override could not be written"),
                (2, "usage error"),
                (4, "insufficient privilege, or an untrusted definition or drop-in directory"),
                (5, "unknown service"),
                (
                    6,
                    "the edited override makes an invalid definition: the copy is kept, "
                    "the installed override is unchanged",
                ),
            ),
        ),
        Command(
            "supervise",
            "supervise:command",
            "Run the run directory's supervisor in the foreground, for an init system that "
            "restarts it (systemd Restart=always, inittab respawn, OpenRC supervisor): it waits "
            "for a supervisor already running to leave, then adopts every supervised service.",
            (),
            (),
            (
                (0, "it was told to leave (SIGTERM): the services run on"),
                (1, "the run directory cannot be used, or the supervisor could not start"),
            ),
        ),
        _generator("initd", "/etc/init.d", "LSB init.d shims"),
        _generator("unit", "/etc/systemd/system", "native systemd units"),
        Command(
            "import",
            "importer.main:command",
            "Turn init.d scripts and systemd units into definitions (never run them); list "
            "what was not converted, at the top of the result and on stderr.",
            (Arg("paths", "PATH", "init.d scripts or systemd .service units to read."),),
            (
                Opt("write", ("--write",), "flag", False, "Write NAME.yaml into the services dir."),
                Opt("force", ("--force",), "flag", False, "Overwrite an existing NAME.yaml."),
            ),
            (
                (0, "a definition was produced (printed, or written with --write)"),
                (1, "a definition could not be written (it exists: use --force)"),
                (2, "usage error"),
                (5, "the file is missing"),
                (6, "no program to run could be found, or the file is not a script or unit"),
            ),
        ),
    )
}


def output_code(call: Call) -> Optional[int]:
    """The exit code when the output of ``call`` could not be written and that output was its
    whole job; None when the output is a report of an action (the action's code stands)."""
    cmd = COMMANDS[call.command]
    if cmd.name in ("initd", "unit") and call.arguments().get("stdout"):
        return 1
    return cmd.output_code


def make_call(cmd: Command, values: dict[str, Any], dirs: tuple[Any, Any, Any]) -> Call:
    """The Call for ``cmd`` from parsed values (missing ones take their defaults), normalized
    the same way whichever parser produced them."""
    kwargs: list[tuple[str, Any]] = []
    for arg in cmd.args:
        value = values.get(arg.name)
        kwargs.append((arg.name, tuple(value or ()) if arg.variadic else value))
    for opt in cmd.opts:
        value = values.get(opt.name, opt.default)
        if value is None:
            value = opt.default
        if opt.kind == "path":
            value = Path(value)
        elif opt.kind == "int":
            value = int(value)
        else:
            value = bool(value)
        kwargs.append((opt.name, value))
    paths = tuple(None if d is None else Path(d) for d in dirs)
    return Call(cmd.name, tuple(kwargs), paths)  # type: ignore[arg-type]
