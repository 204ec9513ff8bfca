"""The command table of servicectl: every command, its arguments, options, defaults, help text,
exit codes and the body that runs it. Typer-free and import-light.

Both parsers are built from it: the full typer grammar (cli_typer.py: help, completion, usage
errors) and the fast parser of everyday lines (cli.py). Both produce a ``Call`` (command,
keyword arguments, global directories), so the two can be compared, and docs/commands.md is
generated from it (``python -m servicectl.commands.grammar_doc``).
"""

from __future__ import annotations

from servicectl.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional


class Arg(NamedTuple):
    """A positional argument: ``variadic`` takes any number of words (at least one if
    ``required``); otherwise exactly one."""

    name: str  # keyword of the body
    metavar: str
    help: str
    required: bool = True
    variadic: bool = True


class Opt(NamedTuple):
    """An option. ``kind``: "flag" (no value), "int", "path", "text"; ``minimum`` for ints.
    A default of None means "not given" (the body decides); ``shown_default`` then says what
    that means, for the docs."""

    name: str  # keyword of the body
    flags: tuple[str, ...]
    kind: str
    default: Any
    help: str
    minimum: Optional[int] = None
    metavar: str = ""
    shown_default: str = ""


class Command(NamedTuple):
    """One command: ``body`` names its function as ``module:function`` in servicectl.commands
    (imported lazily); ``summary``: one short line for the list of commands in the main help
    (it must fit whole: SUMMARY_WIDTH); ``help``: the full text of its own help;
    ``exit_table``: the name of its table in exits.py (read only by help and the docs);
    ``output_code``: the exit code when its output, its whole job, could not be written."""

    name: str
    body: str
    summary: str
    help: str
    args: tuple[Arg, ...] = ()
    opts: tuple[Opt, ...] = ()
    exit_table: str = ""
    output_code: Optional[int] = None

    @property
    def exits(self) -> tuple[tuple[int, str], ...]:
        """(code, meaning) of each exit code it can give, as its help lists them."""
        from servicectl.commands import exits

        table: tuple[tuple[int, str], ...] = getattr(exits, self.exit_table)
        return table


class Call(NamedTuple):
    """A decided command line: what to run, with which arguments, in which directories.
    Variadic arguments are tuples; ``dirs`` is (services, run, log), None where not given.
    Two parsers that decide alike produce equal Calls."""

    command: str
    kwargs: tuple[tuple[str, Any], ...]
    dirs: tuple[Optional[str], Optional[str], Optional[str]]
    debug: bool = False  # --debug: an internal error's traceback is printed too

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
DEBUG = Opt(
    "debug",
    ("--debug",),
    "flag",
    False,
    "After an internal error's one line, print its traceback too (for a bug report).",
)
HELP_FLAGS = ("-h", "--help")
APP_HELP = "Start, stop, reload and watch services described by one YAML file each."
APP_EPILOG = (
    "The directory options may also follow the command (servicectl status -d ./services.d). "
    "Run 'servicectl COMMAND --help' for a command's arguments, options and exit codes."
)

# ---------------------------------------------------------------------------------------------
# The commands

SUMMARY_WIDTH = 60  # a summary fits the main --help's list of commands at 80 columns, whole

NAMES = Arg(
    "names", "NAME", "Service names (file stems in the services directory, or NAME@INSTANCE)."
)
SOME_NAMES = Arg("names", "NAME", "Services (default: all).", required=False)
GEN_NAMES = Arg("names", "NAME", "Services (or --all, or --boot).", required=False)
JSON = Opt("as_json", ("--json",), "flag", False, "Print a JSON list.")
FORCE = Opt("force", ("--force",), "flag", False, "Overwrite files servicectl did not write.")
STDOUT = Opt("stdout", ("--stdout",), "flag", False, "Print instead of writing.")
ALL = Opt("all_", ("--all",), "flag", False, "Every service definition.")
LOG_LINES = 10  # the lines of log shown by status NAME and by logs, unless -n says otherwise


def _jobs(what: str) -> Opt:
    return Opt("jobs", ("-j", "--jobs"), "int", 64, f"Parallel {what} per level.", 1, "N")


def _generator(kind: str, where: str, what: str, short: str) -> Command:
    return Command(
        kind,
        f"generate:{kind}",
        f"Write {short} for services (or for boot: --boot)",
        f"Write {what} that hand every action to servicectl; --boot writes the one for the "
        f"whole fleet (startall at boot, stopall at shutdown). Writing into {where} needs "
        f"root; --stdout prints instead.",
        (GEN_NAMES,),
        (
            ALL,
            Opt("boot", ("--boot",), "flag", False, "The boot file for the whole fleet."),
            Opt(
                "directory",
                ("--dir",),
                "path",
                where,  # a path option's value becomes a Path in make_call
                "Where to write (must exist).",
                metavar="DIR",
            ),
            STDOUT,
            FORCE,
        ),
        "GENERATE",
    )


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command(
            "start",
            "control:start",
            "Start services (their stopped dependencies first)",
            "Start services (their stopped dependencies first); success if already running.",
            (NAMES,),
            (_jobs("starts"),),
            "START",
        ),
        Command(
            "stop",
            "control:stop",
            "Stop services (their running dependents first)",
            "Stop services; running services that depend on them are stopped first. Success "
            "if already stopped.",
            (NAMES,),
            (_jobs("stops"),),
            "STOP",
        ),
        Command(
            "restart",
            "control:restart",
            "Stop if running, then start (dependents too)",
            "Stop if running, then start. The config test (check_command) runs first: if it "
            "fails, nothing is stopped. Running services that depend on them are restarted "
            "too.",
            (NAMES,),
            (),
            "RESTART",
        ),
        Command(
            "try-restart",
            "control:try_restart",
            "Restart the services that are running",
            "Restart only services that are running; a stopped one is left stopped (exit 0).",
            (NAMES,),
            (),
            "TRY_RESTART",
        ),
        Command(
            "reload",
            "control:reload",
            "Reload services (reload_signal or reload_command)",
            "Send reload_signal or run reload_command, after the config test (check_command).",
            (NAMES,),
            (),
            "RELOAD",
        ),
        Command(
            "force-reload",
            "control:force_reload",
            "Reload if supported, else restart if running",
            "Reload if supported, else restart if running.",
            (NAMES,),
            (),
            "FORCE_RELOAD",
        ),
        Command(
            "status",
            "views:status",
            "One line per service, or a block for each one named",
            "Without names, one line per service: state, PID, uptime, memory, CPU and "
            "description. With names, a block per service (as systemctl status): its "
            "definition, state and since when, main PID and command line, process tree, "
            "memory, CPU time, listening sockets, notes and what its last start wrote to its "
            "log. LSB status codes.",
            (SOME_NAMES,),
            (
                JSON,
                Opt(
                    "lines",
                    ("-n", "--lines"),
                    "int",
                    LOG_LINES,
                    "Log lines in the block of each service named (0: none).",
                    0,
                    "N",
                ),
            ),
            "STATUS",
            output_code=4,
        ),
        Command(
            "startall",
            "control:startall",
            "Start every enabled service, in dependency order",
            "Start every enabled service, dependencies first, each level in parallel.",
            (),
            (_jobs("starts"),),
            "FLEET",
        ),
        Command(
            "stopall",
            "control:stopall",
            "Stop every running service, dependents first",
            "Stop every running service, dependents first, each level in parallel.",
            (),
            (_jobs("stops"),),
            "FLEET",
        ),
        Command(
            "list",
            "views:list_",
            "List definitions: name, type, enabled, depends",
            "List definitions: name, type, enabled, depends, description.",
            (),
            (JSON,),
            "LIST",
            output_code=1,
        ),
        Command(
            "check",
            "check:check",
            "Validate definitions (and their programs)",
            "Validate definitions without touching any process (6 if any is invalid); find "
            "each program as start would (a missing one is a warning, or exit 5 when the "
            "checks are run); warn about unset $VARIABLES their commands use.",
            (SOME_NAMES,),
            (
                Opt(
                    "run_checks",
                    ("--run-checks",),
                    "flag",
                    False,
                    "Do what start would before it spawns: make their directories, run their "
                    "config tests (check_command), refuse a missing program (5) and, as root, "
                    "test that each service's user may execute it.",
                ),
            ),
            "CHECK",
            output_code=1,
        ),
        Command(
            "action",
            "actions:command",
            "Run one of a service's extra verbs (rotate...)",
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
            "ACTION",
        ),
        Command(
            "logs",
            "logs:logs",
            "Print (or follow) the end of a service's log",
            "Print the end of the service's output log. Each start is marked in the log "
            "(-- servicectl: starting NAME at TIME --).",
            (Arg("name", "NAME", "Service name.", variadic=False),),
            (
                Opt(
                    "lines",
                    ("-n", "--lines"),
                    "int",
                    None,
                    f"How many lines (default {LOG_LINES}, as status NAME shows; with "
                    f"--since: every line since then).",
                    0,
                    "N",
                    shown_default=f"`{LOG_LINES}`; with `--since`, all",
                ),
                Opt(
                    "since",
                    ("-S", "--since"),
                    "text",
                    None,
                    "Only lines written since TIME: 2025-06-01 12:00, 12:00, yesterday, "
                    "'10 min ago', -2h, @EPOCH (times read at the start of lines, and "
                    "servicectl's start marks).",
                    metavar="TIME",
                    shown_default="all",
                ),
                Opt("follow", ("-f", "--follow"), "flag", False, "Keep printing new lines."),
            ),
            "LOGS",
            output_code=1,
        ),
        Command(
            "metrics",
            "metrics:metrics",
            "Every service's state and use, for Prometheus",
            "Print every service's state, restarts, last exit, health, memory and CPU in the "
            "Prometheus text format (for node_exporter's textfile collector).",
            (),
            (),
            "METRICS",
            output_code=1,
        ),
        Command(
            "enable",
            "editing:enable",
            "Put services in startall",
            "Put services in startall: write NAME.d/50-enabled.yaml (enabled: true). For a "
            "template's instance, startall also needs it listed in instances.",
            (NAMES,),
            (),
            "ENABLE",
        ),
        Command(
            "disable",
            "editing:disable",
            "Take services out of startall",
            "Take services out of startall: write NAME.d/50-enabled.yaml (enabled: false); "
            "a running service keeps running.",
            (NAMES,),
            (),
            "ENABLE",
        ),
        Command(
            "cat",
            "editing:cat",
            "Print definitions with their drop-ins",
            "Print each definition and its drop-ins, each under a # /path/to/file line.",
            (NAMES,),
            (),
            "CAT",
            output_code=1,
        ),
        Command(
            "edit",
            "editing:edit",
            "Edit a service's override drop-in, validated",
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
            "EDIT",
        ),
        Command(
            "supervise",
            "supervise:command",
            "Run the supervisor in the foreground (for init)",
            "Run the run directory's supervisor in the foreground, for an init system that "
            "restarts it (systemd Restart=always, inittab respawn, OpenRC supervisor): it waits "
            "for a supervisor already running to leave, then adopts every supervised service.",
            (),
            (),
            "SUPERVISE",
        ),
        _generator("initd", "/etc/init.d", "LSB init.d shims", "init.d shims"),
        _generator("unit", "/etc/systemd/system", "native systemd units", "systemd units"),
        Command(
            "import",
            "importer.main:command",
            "Turn init.d scripts and systemd units into definitions",
            "Turn init.d scripts and systemd units into definitions (never run them); list "
            "what was not converted, at the top of the result and on stderr.",
            (Arg("paths", "PATH", "init.d scripts or systemd .service units to read."),),
            (
                Opt("write", ("--write",), "flag", False, "Write NAME.yaml into the services dir."),
                Opt("force", ("--force",), "flag", False, "Overwrite an existing NAME.yaml."),
            ),
            "IMPORT",
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


def make_call(
    cmd: Command, values: dict[str, Any], dirs: tuple[Any, Any, Any], debug: bool = False
) -> Call:
    """The Call for ``cmd`` from parsed values (missing ones take their defaults), normalized
    the same way whichever parser produced them. The directories stay strings: the everyday
    commands do not import pathlib (a few ms); a path option's value is a Path."""

    kwargs: list[tuple[str, Any]] = []
    for arg in cmd.args:
        value = values.get(arg.name)
        kwargs.append((arg.name, tuple(value or ()) if arg.variadic else value))
    for opt in cmd.opts:
        value = values.get(opt.name, opt.default)
        if value is None:
            value = opt.default
        if value is None:  # not given, and no default: the body decides
            pass
        elif opt.kind == "path":
            from pathlib import Path

            value = Path(value)
        elif opt.kind == "int":
            value = int(value)
        elif opt.kind == "text":
            value = str(value)
        else:
            value = bool(value)
        kwargs.append((opt.name, value))
    paths = tuple(None if d is None else str(d) for d in dirs)
    return Call(cmd.name, tuple(kwargs), paths, bool(debug))  # type: ignore[arg-type]
