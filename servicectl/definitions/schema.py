"""The keys of a service definition, each declared once: name, type, default, the parser that
turns its YAML value into the Service field of the same name, what it does, and an example.

Derived from these declarations: KNOWN_KEYS, the key reference in docs/configuration.md
(regenerate: python -m servicectl.definitions.schema_doc --write docs/configuration.md),
the schema hash that keys the definition cache (digest.py), and the checks that Service's
fields and defaults agree with them (tests/test_config.py). Adding a key is adding its
declaration to KEYS, its parser to the module of its kind (program_keys.py,
lifecycle_keys.py, initd_keys.py) and its field to Service.

This module is on every command's path (cached definitions are Services); the parsers in
program_keys.py, lifecycle_keys.py and initd_keys.py are imported only when a file must be
parsed.
"""

from __future__ import annotations

from _signal import SIGHUP, SIGKILL, SIGTERM  # the C module: signal's enums import enum

from servicectl.definitions.names import is_template
from servicectl.definitions.values import Directory, Health, Ready, StartLimit
from servicectl.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

UNLIMITED = -1  # resource.RLIM_INFINITY on Linux
KILL_WAIT = 5.0  # after SIGKILL, how long a process may linger (D state) before stop gives up
READY_KINDS = ("tcp", "unix", "file", "http", "command", "notify")
LIMIT_NAMES = {
    name: f"RLIMIT_{name.upper()}"
    for name in (
        *("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice"),
        *("nofile", "nproc", "rss", "rtprio", "sigpending", "stack"),
    )
}


class Action(NamedTuple):
    """An extra verb (``actions``): a ``signal`` or a ``command``; ``stops``: it stops it."""

    signal: int = 0
    command: tuple[str, ...] = ()
    stops: bool = False

    def describe(self) -> str:
        return f"SIG{signal_name(self.signal)}" if self.signal else " ".join(self.command)


def parse_signal(value: Any) -> int | None:
    """``TERM``, ``SIGTERM``, ``sigterm`` or ``15`` to 15; None when it is not a signal."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 1 <= value <= 64 else None
    if not isinstance(value, str):
        return None
    text = value.strip().upper()
    if text.isdigit():  # also "²" or a thousand digits: int() must not see those
        return parse_signal(int(text)) if text.isascii() and len(text) <= 3 else None
    if not text.startswith("SIG"):
        text = "SIG" + text
    return _signal_numbers().get(text)


_NUMBERS: dict[str, int] = {}
_NAMES: dict[int, str] = {}


def _signal_numbers() -> dict[str, int]:
    """The signals' names (``SIGTERM``) and numbers, as signal.Signals has them, read from
    the C module (the signal module makes enums: enum costs 2 ms of every start and stop)."""
    if not _NUMBERS:
        import _signal

        for name, value in sorted(vars(_signal).items()):
            if name.startswith("SIG") and not name.startswith("SIG_") and name.isupper():
                _NUMBERS[name] = value
                _NAMES.setdefault(value, name)  # of aliases (IOT, ABRT), the first by name
    return _NUMBERS


def signal_name(number: int) -> str:
    """15 to ``TERM``; a number that names no signal, as a number."""
    _signal_numbers()
    name = _NAMES.get(number)
    return name.removeprefix("SIG") if name else str(number)


class Key(NamedTuple):
    """One key of a definition, as people write it and as servicectl reads it."""

    name: str
    type: str  # what to write; for a choice, the choices joined by " or "
    default: Any  # the YAML value an absent key stands for (None: nothing)
    parse: str  # parse_<parse> in fields(_more): (reader, key, value) -> the field
    doc: str  # what it does, one line
    example: str  # a YAML value, as written after "name: "
    shown_default: str = ""  # the default as the reference shows it, if not the value
    required: bool = False


SECONDS = "number of seconds"
SIGNAL = "signal: a name, with or without SIG, or a number"
KEYS: tuple[Key, ...] = (
    Key(
        "command",
        "command line: a string or a list",
        None,
        "argv",
        doc="The program to run and its arguments: a string is split like a shell would (no "
        "shell runs it); a program containing / is relative to the services directory.",
        example="python3 -m http.server 8080",
        required=True,
    ),
    Key(
        "description",
        "string, one line",
        "",
        "line",
        doc="Shown by status and list, and in init.d and unit headers.",
        example="Demo HTTP server",
        shown_default="empty",
    ),
    Key(
        "type",
        "simple or forking or oneshot",
        "simple",
        "choice",
        doc="simple: the program stays in the foreground; forking: it daemonizes itself and "
        "writes pid_file; oneshot: a task start runs to its end (state exited or failed).",
        example="forking",
    ),
    Key(
        "working_directory",
        "path",
        "/",
        "path",
        doc="The directory the program runs in.",
        example="/srv/www",
    ),
    Key(
        "directories",
        "list of paths, or of {path, mode, owner, group}",
        None,
        "directories",
        doc="Directories made before the config test and the start (missing parents 0755, "
        "root's), then owned by owner/group (default: the service's user and group) with mode "
        "(default 0755); an existing symlink or non-directory there is an error; never removed. "
        "An existing directory outside /var/lib, /run, /var/run, /var/log and /var/cache "
        "(/etc/chrony, say) changes owner only if the entry names it (owner:, or group: for "
        "the group alone); otherwise start refuses (exit 6).",
        example='[/run/redis, {path: /var/run/postgresql, mode: "2775", owner: postgres}]',
        shown_default="none",
    ),
    Key(
        "user",
        "user name or uid",
        None,
        "account",
        doc="Run as this user (root only); HOME, USER and LOGNAME are set to match.",
        example="www-data",
        shown_default="servicectl's own user",
    ),
    Key(
        "group",
        "group name or gid",
        None,
        "account",
        doc="Run with this group.",
        example="www-data",
        shown_default="the primary group of user",
    ),
    Key(
        "umask",
        "octal string",
        "022",
        "umask",
        doc="The file mode creation mask of the program.",
        example='"027"',
    ),
    Key(
        "environment",
        "mapping of NAME: value",
        None,
        "environment",
        doc="Variables added to the clean environment, after env_file.",
        example="{GREETING: hello}",
        shown_default="none",
    ),
    Key(
        "env_file",
        "path",
        None,
        "path",
        doc="A file of KEY=VALUE lines (# comments, optional export) added to the environment.",
        example="web.env  # relative to the services dir, like /etc/default/web",
        shown_default="none",
    ),
    Key(
        "stdout",
        'path, or "null"',
        "{log_dir}/{name}.log",
        "output",
        doc='Where the program\'s output is appended; "null" discards it.',
        example="/var/log/web.out",
    ),
    Key(
        "stderr",
        'path, or "null"',
        None,
        "stderr",
        doc="Where the program's error output is appended.",
        example='"null"',
        shown_default="the same file as stdout",
    ),
    Key(
        "pid_file",
        "path",
        "{run_dir}/{name}.pid",
        "path",
        doc="The PID file: servicectl writes it for a simple service; a forking daemon must "
        "write it itself (required for forking).",
        example='"{run_dir}/web.pid"',
    ),
    Key(
        "stop_signal",
        SIGNAL,
        "TERM",
        "signal_key",
        doc="The signal that asks the program to stop (SIGCONT follows it).",
        example="QUIT",
    ),
    Key(
        "stop_timeout",
        SECONDS,
        30,
        "seconds",
        doc="How long stop waits after stop_signal before SIGKILL.",
        example="10",
    ),
    Key(
        "stop_schedule",
        "SIG/SECS/SIG/SECS...: signals by name or number, seconds",
        None,
        "stop_schedule",
        doc="What stop sends and how long it waits after each signal (SIGCONT follows each), "
        "as start-stop-daemon --retry; whatever survives it all: stop fails. Replaces "
        "stop_signal and stop_timeout (giving both is an error).",
        example="QUIT/5/TERM/5/KILL/5",
        shown_default="stop_signal/stop_timeout/KILL/5",
    ),
    Key(
        "kill_mode",
        "group or process",
        "group",
        "choice",
        doc="group: stop signals every process of the service (its cgroup; without one, its own "
        "process group); process: its main process only, the rest is left running.",
        example="process",
    ),
    Key(
        "reload_signal",
        SIGNAL,
        "HUP",
        "signal_key",
        doc="The signal reload sends (only if the program catches it: otherwise reload refuses).",
        example="USR1",
    ),
    Key(
        "reload_command",
        "command line: a string or a list",
        None,
        "argv",
        doc="A command reload runs instead of sending reload_signal.",
        example="[nginx, -s, reload]",
        shown_default="none",
    ),
    Key(
        "reload",
        "true or false",
        True,
        "bool",
        doc="false: the service cannot be reloaded (reload exits 3, force-reload restarts it).",
        example="false",
    ),
    Key(
        "check_command",
        "command line: a string or a list",
        None,
        "argv",
        doc="A config test run before start, before restart stops anything and before reload "
        "signals anything (as the service's user, with its environment, within start_timeout); "
        "if it fails, the action is refused (exit 6) and the running instance left as it was.",
        example="[nginx, -t, -q]",
        shown_default="none",
    ),
    Key(
        "start_timeout",
        SECONDS,
        30,
        "seconds",
        doc="How long start waits for a forking daemon's PID file or for readiness.",
        example="60",
    ),
    Key(
        "start_grace",
        SECONDS,
        0.5,
        "seconds",
        doc="Without ready, a program that dies this soon after starting has failed to start.",
        example="1",
    ),
    Key(
        "ready",
        "readiness probe",
        None,
        "ready",
        doc="How start knows the service is ready: tcp, unix, file, http, command or notify. "
        "A tcp, unix or http probe counts only if the socket that answers is one of the "
        "service's processes' (where that cannot be told, start says so); a file only if "
        "written or touched since this start began; notify messages only from the service's "
        "processes.",
        example='{tcp: "127.0.0.1:8080"}',
        shown_default="none: started once it survives start_grace",
    ),
    Key(
        "depends",
        "list of service names",
        None,
        "depends",
        doc="Services started before this one and stopped after it.",
        example="[db]",
        shown_default="none",
    ),
    Key(
        "enabled",
        "true or false",
        True,
        "bool",
        doc="Whether startall starts it.",
        example="false",
    ),
    Key(
        "nice",
        "whole number from -20 to 19",
        None,
        "nice",
        doc="The scheduling priority (nice value) of the program.",
        example="5",
        shown_default="unchanged",
    ),
    Key(
        "limits",
        "mapping of limit: number, unlimited or [soft, hard]",
        None,
        "limits",
        doc="Resource limits set before the program runs; limits: " + ", ".join(LIMIT_NAMES) + ".",
        example="{nofile: 4096, core: 0}",
        shown_default="unchanged",
    ),
    Key(
        "stop_command",
        "command line: a string or a list",
        None,
        "argv",
        doc="type: oneshot only: what stop runs (as the service's user, within stop_timeout).",
        example="[/sbin/hwclock, --systohc]",
        shown_default="none",
    ),
    Key(
        "memory_max",
        "bytes: a whole number, or with K, M or G (1024-based)",
        None,
        "bytes",
        doc="The most memory all the service's processes together may use (its cgroup's "
        "memory.max, or v1 memory.limit_in_bytes); beyond it the kernel kills one of them.",
        example="512M",
        shown_default="no limit",
    ),
    Key(
        "pids_max",
        "whole number, 1 or more",
        None,
        "pids_max",
        doc="The most processes and threads the service may have at once (pids.max); a fork "
        "beyond it fails.",
        example="64",
        shown_default="no limit",
    ),
    Key(
        "cpu_weight",
        "whole number from 1 to 10000",
        None,
        "cpu_weight",
        doc="The service's share of CPU time against others when the CPU is busy (cpu.weight; "
        "v1 cpu.shares = weight * 1024 / 100).",
        example="200",
        shown_default="100, as every process",
    ),
    Key(
        "actions",
        "mapping of verb: {signal: SIG} or {command: CMD}, each with stops: true or false",
        None,
        "actions",
        doc="Extra verbs, like an init.d script's rotate or upgrade (servicectl action NAME "
        "VERB): a signal goes to the running main process (identity-checked; not running: exit "
        "7); a command runs as the service's user with its environment and MAINPID. stops: "
        "the verb stops the service (graceful-stop): servicectl waits for it, then it is stopped.",
        example="{rotate: {signal: USR1}, configtest: {command: [nginx, -t]}}",
        shown_default="none",
    ),
    Key(
        "instances",
        "list of instance names",
        None,
        "instances",
        doc="Templates (NAME@.yaml) only: the instances startall starts, and status and list "
        "show; INSTANCE: letters, digits, -, _, ., :, not starting with . or - (but - alone).",
        example='["11211", "11212"]',
        shown_default="none",
    ),
    Key(
        "restart",
        '"no", on-failure or always',
        "no",
        "restart",
        doc="Respawn the program when it exits: on-failure after a non-zero status or a signal "
        'other than the stop signal, always after any exit; "no": never (see docs/supervision.md).',
        example="on-failure",
        shown_default='`"no"`',
    ),
    Key(
        "restart_delay",
        SECONDS,
        1,
        "seconds",
        doc="How long the supervisor waits after an exit before it respawns the program.",
        example="0.5",
    ),
    Key(
        "start_limit",
        "mapping: burst (whole number, 1 or more), interval (seconds; 0: no limit)",
        None,
        "start_limit",
        doc="More than burst respawns within interval seconds: the supervisor gives up and the "
        "service is failed until the next start or restart.",
        example="{burst: 3, interval: 30}",
        shown_default="`{burst: 5, interval: 60}`",
    ),
    Key(
        "health",
        "probe (tcp, unix, http or command) with interval, timeout, retries",
        None,
        "health",
        doc="Probed every interval seconds once the service is ready; after retries failures "
        "in a row (timeout seconds each) its supervisor restarts it. Needs a restart policy.",
        example='{http: "http://127.0.0.1:8080/health", interval: 10, timeout: 5, retries: 3}',
        shown_default="none",
    ),
)
KNOWN_KEYS = tuple(k.name for k in KEYS)
_BY_NAME = {k.name: k for k in KEYS}


class Service(NamedTuple):
    """One valid service definition, every path absolute and every default applied. The fields
    after ``file`` are the keys of KEYS, in order, then what is derived from them. The defaults
    are the declared ones, parsed (tests/test_config.py checks it); those that depend on the
    name and the directories (stdout, stderr, pid_file) are always given by load_catalog."""

    name: str
    file: str
    command: tuple[str, ...]
    description: str = ""
    type: str = "simple"
    working_directory: str = "/"
    directories: tuple[Directory, ...] = ()
    user: str | None = None
    group: str | None = None
    umask: int = 0o022
    environment: tuple[tuple[str, str], ...] = ()
    env_file: str | None = None
    stdout: str | None = None  # None: discarded ("null")
    stderr: str | None = None  # None: discarded
    pid_file: str = "/"
    stop_signal: int = SIGTERM
    stop_timeout: float = 30.0
    stop_schedule: tuple[tuple[int, float], ...] = ()  # () : stop_signal/stop_timeout/KILL/5
    kill_mode: str = "group"
    reload_signal: int = SIGHUP
    reload_command: tuple[str, ...] | None = None
    reload: bool = True
    check_command: tuple[str, ...] | None = None
    start_timeout: float = 30.0
    start_grace: float = 0.5
    ready: Ready | None = None
    depends: tuple[str, ...] = ()
    enabled: bool = True
    nice: int | None = None
    limits: tuple[tuple[str, int, int], ...] = ()  # (name, soft, hard); -1 is unlimited
    stop_command: tuple[str, ...] | None = None  # a oneshot's
    memory_max: int | None = None  # bytes; the cgroup limits (system/cgroup_limits.py)
    pids_max: int | None = None
    cpu_weight: int | None = None
    actions: tuple[tuple[str, Action], ...] = ()  # (verb, what it does), in the file's order
    instances: tuple[str, ...] = ()  # a template's listed instances (its instances carry them)
    restart: str = "no"  # "no", "on-failure" or "always"
    restart_delay: float = 1.0
    start_limit: StartLimit = StartLimit()
    health: Health | None = None
    # Derived: whether the document gave stderr and pid_file; the drop-ins merged over file.
    stderr_same: bool = True
    pid_file_given: bool = False
    dropins: tuple[str, ...] = ()

    @property
    def instance(self) -> str | None:
        """INSTANCE for an instance of a template (NAME@INSTANCE from NAME@.yaml), else None."""
        stem = self.file.rpartition("/")[2].rpartition(".")[0]
        if not is_template(stem) or self.name == stem:
            return None
        return self.name.partition("@")[2]

    @property
    def in_startall(self) -> bool:
        """Whether startall starts it: enabled, and for a template's instance, listed in its
        instances."""
        return self.enabled and (self.instance is None or self.instance in self.instances)

    @property
    def env(self) -> dict[str, str]:
        return dict(self.environment)

    @property
    def program(self) -> str:
        return self.command[0]

    @property
    def stop_steps(self) -> tuple[tuple[int, float], ...]:
        """The stop schedule: stop_schedule, or stop_signal for stop_timeout, then KILL for
        KILL_WAIT seconds."""
        if self.stop_schedule:
            return self.stop_schedule
        return ((self.stop_signal, self.stop_timeout), (SIGKILL, KILL_WAIT))
