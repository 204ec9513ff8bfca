"""What each exit code means, command by command, as the command table (grammar.py) shows it in
``servicectl COMMAND --help`` and docs/commands.md. Each command lists only the codes it can
give, in its own words: ``stop --help`` has no config test, ``restart --help`` no try-restart.

Data only; imports nothing.
"""

from __future__ import annotations

Exits = tuple[tuple[int, str], ...]

USAGE = (2, "usage error")
PRIVILEGE = (4, "insufficient privilege (a service of root or of another user), or no run dir")
UNKNOWN = (5, "unknown service")
NOT_INSTALLED = (5, "unknown service, or its program is not installed")
CONFIG_TEST = (6, "invalid definition, or its config test (check_command) failed")

START: Exits = (
    (0, "every service named runs (started now, or already running)"),
    (
        1,
        "a start failed (died within start_grace, launcher exit, timeout) or was skipped "
        "because a dependency failed",
    ),
    USAGE,
    PRIVILEGE,
    NOT_INSTALLED,
    CONFIG_TEST,
)
STOP: Exits = (
    (0, "every service named is stopped (now, or already; a stale PID file is left alone)"),
    (1, "a service could not be stopped (it survived its stop schedule)"),
    USAGE,
    PRIVILEGE,
    UNKNOWN,
    (6, "invalid definition, or its pid_file names a file that is not a PID file"),
)
RESTART: Exits = (
    (0, "every service named runs again (restarted, or started if it was stopped)"),
    (1, "the stop or the start failed"),
    USAGE,
    PRIVILEGE,
    NOT_INSTALLED,
    (
        6,
        "invalid definition, or its config test (check_command) failed: a running instance "
        "is left as it was",
    ),
)
TRY_RESTART: Exits = (
    (0, "every running service named was restarted; a stopped one is left stopped"),
    (1, "the stop or the start failed"),
    USAGE,
    PRIVILEGE,
    NOT_INSTALLED,
    RESTART[-1],
)
RELOAD: Exits = (
    (0, "reloaded"),
    (1, "the reload failed (the signal would kill the process, or reload_command failed)"),
    USAGE,
    (3, "the service cannot be reloaded (reload: false)"),
    PRIVILEGE,
    NOT_INSTALLED,
    CONFIG_TEST,
    (7, "not running"),
)
FORCE_RELOAD: Exits = (
    (0, "reloaded, or restarted (a service that cannot reload); a stopped one is left stopped"),
    (1, "the reload, the stop or the start failed"),
    USAGE,
    PRIVILEGE,
    NOT_INSTALLED,
    CONFIG_TEST,
    (7, "not running (a service that supports reload)"),
)
STATUS: Exits = (
    (0, "running (or starting); with several services: every one runs"),
    (
        1,
        "dead (a PID file is left but its process is gone) or failed (its last start "
        "failed, or its supervisor gave up)",
    ),
    (3, "stopped"),
    (4, "unknown service, invalid definition, status unknown, or lost output"),
)
FLEET: Exits = (
    (0, "every service concerned ends as asked"),
    (1, "some service failed (or was skipped because a dependency failed)"),
    USAGE,
    (6, "the services directory cannot be listed"),
)
LIST: Exits = (
    (0, "listed"),
    (1, "the output could not be written"),
    USAGE,
    (6, "the services directory cannot be listed"),
)
CHECK: Exits = (
    (0, "every definition is valid (and, with --run-checks, passes its test)"),
    (1, "the output could not be written, or a directory could not be made"),
    USAGE,
    (4, "a directory could not be made: a symlink servicectl does not follow"),
    (5, "unknown service, or (--run-checks) its program or its config test's is missing"),
    (6, "an invalid definition, or a failed config test"),
)
ACTION: Exits = (
    (0, "done"),
    (1, "the signal would kill the process, or the command failed"),
    (2, "usage error, or a verb the service does not have (its verbs are listed)"),
    PRIVILEGE,
    (5, "unknown service, or the command's program is not installed"),
    (6, "invalid definition"),
    (7, "not running (a signal action)"),
)
LOGS: Exits = (
    (0, "printed"),
    (1, "no log (output discarded, never started) or lost output"),
    (2, "usage error, or a --since time that cannot be read"),
    (4, "the log cannot be read by this user, or is a symlink servicectl does not follow"),
    UNKNOWN,
    (6, "invalid definition"),
)
METRICS: Exits = (
    (0, "printed (whatever state the services are in)"),
    (1, "the output could not be written"),
    USAGE,
    (6, "the services directory cannot be listed"),
)
ENABLE: Exits = (
    (0, "done, or already so"),
    (1, "the drop-in could not be written, or a later drop-in overrides it"),
    (2, "usage error (an instance name a template cannot have)"),
    (4, "insufficient privilege, or an untrusted definition or drop-in directory"),
    UNKNOWN,
    (6, "invalid definition (fix it first, with edit)"),
)
CAT: Exits = (
    (0, "printed"),
    (1, "a file could not be read, or the output could not be written"),
    (2, "usage error (an instance name a template cannot have)"),
    (4, "a file could not be read: permission denied"),
    UNKNOWN,
)
EDIT: Exits = (
    (0, "installed, or unchanged"),
    (1, "the editor failed, or the override could not be written"),
    USAGE,
    (4, "insufficient privilege, or an untrusted definition or drop-in directory"),
    UNKNOWN,
    (
        6,
        "the edited override makes an invalid definition: the copy is kept, "
        "the installed override is unchanged",
    ),
)
GENERATE: Exits = (
    (0, "every file written (or unchanged)"),
    (1, "a file was not written (a foreign file without --force, a missing --dir...)"),
    (2, "usage error (no names and no --all/--boot, or several of them)"),
    (4, "the directory cannot be written by this user (it needs root: or use --dir, --stdout)"),
    UNKNOWN,
    (6, "invalid definition"),
)
IMPORT: Exits = (
    (0, "a definition was produced (printed, or written with --write)"),
    (1, "a definition could not be written (it exists: use --force)"),
    USAGE,
    (5, "the file is missing"),
    (6, "no program to run could be found, or the file is not a script or unit"),
)
SUPERVISE: Exits = (
    (0, "it was told to leave (SIGTERM): the services run on"),
    (1, "the run directory cannot be used, or the supervisor could not start"),
)
