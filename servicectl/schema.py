"""The keys of a service definition, each declared once: name, type, default, the parser that
turns its YAML value into the Service field of the same name, what it does, and an example.

Derived from these declarations: KNOWN_KEYS, the key reference in docs/configuration.md
(regenerate: python -m servicectl.schema --write docs/configuration.md), the schema hash that
keys the definition cache, and the checks that Service's fields and defaults agree with them
(tests/test_config.py). Adding a key is adding its declaration to KEYS, its parser to
servicectl/fields.py and its field to Service.

This module is on every command's path (cached definitions are Services); the parsers in
fields.py are imported only when a file must be parsed.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path
from typing import Any, NamedTuple

from servicectl.paths import Dirs

NAME_RE = re.compile(r"[A-Za-z0-9_.@-]+\Z")  # \Z: "$" would let a final newline through
PLACEHOLDER_RE = re.compile(r"\{(run_dir|log_dir|services_dir|name)\}")
UNLIMITED = -1  # resource.RLIM_INFINITY on Linux
READY_KINDS = ("tcp", "unix", "file", "http", "command", "notify")
LIMIT_NAMES = {
    name: f"RLIMIT_{name.upper()}"
    for name in (
        *("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice"),
        *("nofile", "nproc", "rss", "rtprio", "sigpending", "stack"),
    )
}


class Ready(NamedTuple):
    """A readiness probe: ``kind`` is one of READY_KINDS; ``target`` its argument."""

    kind: str
    target: str | tuple[str, ...] = ""
    timeout: float | None = None  # per-probe timeout for ``command``

    def describe(self) -> str:
        if self.kind == "notify":
            return "notify"
        target = " ".join(self.target) if isinstance(self.target, tuple) else self.target
        return f"{self.kind} {target}"


class StartLimit(NamedTuple):
    """``start_limit``: more than ``burst`` respawns within ``interval`` seconds, and the
    supervisor gives up (0 s: no limit)."""

    burst: int = 5
    interval: float = 60.0


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
        return parse_signal(int(text)) if re.fullmatch(r"[0-9]{1,3}", text) else None
    if not text.startswith("SIG"):
        text = "SIG" + text
    sig = getattr(signal.Signals, text, None) if text.isidentifier() else None
    if sig is None or text in ("SIG_DFL", "SIG_IGN"):
        return None
    return int(sig)


def signal_name(number: int) -> str:
    """15 to ``TERM``."""
    try:
        return signal.Signals(number).name.removeprefix("SIG")
    except ValueError:
        return str(number)


def expand(value: str, name: str, dirs: Dirs) -> str:
    """Replace {run_dir}, {log_dir}, {services_dir} and {name}; other braces stay as they are."""
    values = {
        "run_dir": str(dirs.run),
        "log_dir": str(dirs.log),
        "services_dir": str(dirs.services),
        "name": name,
    }
    return PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], value)


class Key:
    """One key of a definition, as people write it and as servicectl reads it."""

    __slots__ = ("name", "type", "default", "parse", "doc", "example", "shown_default", "required")

    def __init__(
        self,
        name: str,
        type: str,  # what to write; for a choice, the choices joined by " or "
        default: Any,  # the YAML value an absent key stands for (None: nothing)
        parse: str,  # its parser, fields.parse_<parse>: (reader, key, value) -> the field
        doc: str,  # what it does, one line
        example: str,  # a YAML value, as written after "name: "
        shown_default: str = "",  # the default as the reference shows it, if not the value
        required: bool = False,
    ) -> None:
        self.name = name
        self.type = type
        self.default = default
        self.parse = parse
        self.doc = doc
        self.example = example
        self.shown_default = shown_default
        self.required = required

    def __repr__(self) -> str:
        return f"Key{tuple(getattr(self, slot) for slot in self.__slots__)!r}"


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
        "simple or forking",
        "simple",
        "choice",
        doc="simple: the program stays in the foreground; forking: it daemonizes itself and "
        "writes pid_file.",
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
        "kill_mode",
        "group or process",
        "group",
        "choice",
        doc="group: stop signals the service's own process group; process: its main process only.",
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
        doc="How start knows the service is ready: tcp, unix, file, http, command or notify.",
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
)
KNOWN_KEYS = tuple(k.name for k in KEYS)
_BY_NAME = {k.name: k for k in KEYS}


class Service(NamedTuple):
    """One valid service definition, every path absolute and every default applied. The fields
    after ``file`` are the keys of KEYS, in order, then what is derived from them. The defaults
    are the declared ones, parsed (tests/test_config.py checks it); those that depend on the
    name and the directories (stdout, stderr, pid_file) are always given by load_catalog."""

    name: str
    file: Path
    command: tuple[str, ...]
    description: str = ""
    type: str = "simple"
    working_directory: Path = Path("/")
    user: str | None = None
    group: str | None = None
    umask: int = 0o022
    environment: tuple[tuple[str, str], ...] = ()
    env_file: Path | None = None
    stdout: Path | None = None  # None: discarded ("null")
    stderr: Path | None = None  # None: discarded
    pid_file: Path = Path("/")
    stop_signal: int = int(signal.SIGTERM)
    stop_timeout: float = 30.0
    kill_mode: str = "group"
    reload_signal: int = int(signal.SIGHUP)
    reload_command: tuple[str, ...] | None = None
    reload: bool = True
    start_timeout: float = 30.0
    start_grace: float = 0.5
    ready: Ready | None = None
    depends: tuple[str, ...] = ()
    enabled: bool = True
    nice: int | None = None
    limits: tuple[tuple[str, int, int], ...] = ()  # (name, soft, hard); -1 is unlimited
    restart: str = "no"  # "no", "on-failure" or "always"
    restart_delay: float = 1.0
    start_limit: StartLimit = StartLimit()
    # Derived: whether the document gave stderr and pid_file.
    stderr_same: bool = True
    pid_file_given: bool = False

    @property
    def env(self) -> dict[str, str]:
        return dict(self.environment)

    @property
    def program(self) -> str:
        return self.command[0]


# ---------------------------------------------------------------------------------------------
# The schema hash and the reference


_HASH: str | None = None


def schema_hash() -> str:
    """A digest of what a cached definition depends on: the fields of Service and their
    defaults, the declared keys, and the code that reads them (this module, fields.py,
    config.py and yamlload.py, by size and modification time: any edit or upgrade changes
    it), so that a change to parsing never serves a stale definition; nothing to bump."""
    global _HASH
    if _HASH is None:
        import zlib

        here = os.path.dirname(__file__)
        code = []
        for module in ("schema.py", "fields.py", "config.py", "yamlload.py"):
            try:
                st = os.stat(os.path.join(here, module))
                code.append((module, st.st_size, st.st_mtime_ns))
            except OSError:  # installed without sources: the version still tells them apart
                code.append((module, 0, 0))
        keys = [(k.name, k.type, k.default, k.parse, k.required) for k in KEYS]  # not the docs
        fields = (Service._fields, Service._field_defaults, Ready._fields, keys, code)
        _HASH = format(zlib.crc32(repr(fields).encode()), "08x")
    return _HASH


BEGIN = "<!-- BEGIN KEY REFERENCE: generated by python -m servicectl.schema; do not edit -->"
END = "<!-- END KEY REFERENCE -->"


def markdown() -> str:
    """The key reference of docs/configuration.md, from the declarations."""

    def default_of(k: Key) -> str:
        if k.required:
            return "required"
        if k.shown_default:
            return k.shown_default
        value = k.default
        return f"`{str(value).lower() if isinstance(value, bool) else value}`"

    out = [BEGIN, "", "| key | type | default |", "|---|---|---|"]
    out += [f"| [`{k.name}`](#{k.name}) | {k.type} | {default_of(k)} |" for k in KEYS]
    for k in KEYS:
        out += ["", f"### {k.name}", "", k.doc, ""]
        out += [f"- type: {k.type}", f"- default: {default_of(k)}", ""]
        out += ["```yaml", f"{k.name}: {k.example}", "```"]
    return "\n".join([*out, "", END]) + "\n"


def main(argv: list[str]) -> int:
    """--markdown: print the key reference; --write FILE: replace it in FILE."""
    if argv == ["--markdown"]:
        print(markdown(), end="")
        return 0
    if len(argv) == 2 and argv[0] == "--write":
        path = Path(argv[1])
        text = path.read_text()
        start, end = text.find(BEGIN), text.find(END)
        if start < 0 or end < start:
            print(f"{path}: no {BEGIN} ... {END} block to replace", file=sys.stderr)
            return 1
        path.write_text(text[:start] + markdown() + text[end + len(END) + 1 :])
        return 0
    print("usage: python -m servicectl.schema --markdown | --write FILE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
