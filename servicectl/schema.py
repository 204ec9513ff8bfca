"""The keys of a service definition, each declared once: name, type, default, the parser that
turns its YAML value into the Service field of the same name, what it does, and an example.

Derived from these declarations: KNOWN_KEYS, the defaults of Service, the key reference in
docs/configuration.md (regenerate: python -m servicectl.schema --write docs/configuration.md)
and the schema hash that keys the definition cache. Adding a key is adding its declaration to
KEYS, its parser (servicectl/fields.py) and its field to Service; a test checks that they agree.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from servicectl.errors import ConfigError
from servicectl.fields import (
    LIMIT_NAMES,
    Reader,
    Ready,
    hint,
    parse_account,
    parse_argv,
    parse_bool,
    parse_choice,
    parse_depends,
    parse_environment,
    parse_limits,
    parse_line,
    parse_nice,
    parse_output,
    parse_path,
    parse_ready,
    parse_seconds,
    parse_signal_key,
    parse_stderr,
    parse_umask,
    show,
)
from servicectl.paths import Dirs


class Key(NamedTuple):
    """One key of a definition, as people write it and as servicectl reads it."""

    name: str
    type: str  # what to write; for a choice, the choices joined by " or "
    default: Any  # the YAML value an absent key stands for (None: nothing)
    parse: Callable[[Reader, Key, Any], Any]  # the YAML value (or the default) -> the field
    doc: str  # what it does, one line
    example: str  # a YAML value, as written after "name: "
    shown_default: str = ""  # the default as the reference shows it, when not the value itself
    required: bool = False


SECONDS = "number of seconds"
SIGNAL = "signal: a name, with or without SIG, or a number"
KEYS: tuple[Key, ...] = (
    Key(
        "command",
        "command line: a string or a list",
        None,
        parse_argv,
        doc="The program to run and its arguments: a string is split like a shell would (no "
        "shell runs it); a program containing / is relative to the services directory.",
        example="python3 -m http.server 8080",
        required=True,
    ),
    Key(
        "description",
        "string, one line",
        "",
        parse_line,
        doc="Shown by status and list, and in init.d and unit headers.",
        example="Demo HTTP server",
        shown_default="empty",
    ),
    Key(
        "type",
        "simple or forking",
        "simple",
        parse_choice,
        doc="simple: the program stays in the foreground; forking: it daemonizes itself and "
        "writes pid_file.",
        example="forking",
    ),
    Key(
        "working_directory",
        "path",
        "/",
        parse_path,
        doc="The directory the program runs in.",
        example="/srv/www",
    ),
    Key(
        "user",
        "user name or uid",
        None,
        parse_account,
        doc="Run as this user (root only); HOME, USER and LOGNAME are set to match.",
        example="www-data",
        shown_default="servicectl's own user",
    ),
    Key(
        "group",
        "group name or gid",
        None,
        parse_account,
        doc="Run with this group.",
        example="www-data",
        shown_default="the primary group of user",
    ),
    Key(
        "umask",
        "octal string",
        "022",
        parse_umask,
        doc="The file mode creation mask of the program.",
        example='"027"',
    ),
    Key(
        "environment",
        "mapping of NAME: value",
        None,
        parse_environment,
        doc="Variables added to the clean environment, after env_file.",
        example="{GREETING: hello}",
        shown_default="none",
    ),
    Key(
        "env_file",
        "path",
        None,
        parse_path,
        doc="A file of KEY=VALUE lines (# comments, optional export) added to the environment.",
        example="/etc/default/web",
        shown_default="none",
    ),
    Key(
        "stdout",
        'path, or "null"',
        "{log_dir}/{name}.log",
        parse_output,
        doc='Where the program\'s output is appended; "null" discards it.',
        example="/var/log/web.out",
    ),
    Key(
        "stderr",
        'path, or "null"',
        None,
        parse_stderr,
        doc="Where the program's error output is appended.",
        example='"null"',
        shown_default="the same file as stdout",
    ),
    Key(
        "pid_file",
        "path",
        "{run_dir}/{name}.pid",
        parse_path,
        doc="The PID file: servicectl writes it for a simple service; a forking daemon must "
        "write it itself (required for forking).",
        example='"{run_dir}/web.pid"',
    ),
    Key(
        "stop_signal",
        SIGNAL,
        "TERM",
        parse_signal_key,
        doc="The signal that asks the program to stop (SIGCONT follows it).",
        example="QUIT",
    ),
    Key(
        "stop_timeout",
        SECONDS,
        30,
        parse_seconds,
        doc="How long stop waits after stop_signal before SIGKILL.",
        example="10",
    ),
    Key(
        "kill_mode",
        "group or process",
        "group",
        parse_choice,
        doc="group: stop signals the service's own process group; process: its main process only.",
        example="process",
    ),
    Key(
        "reload_signal",
        SIGNAL,
        "HUP",
        parse_signal_key,
        doc="The signal reload sends (only if the program catches it: otherwise reload refuses).",
        example="USR1",
    ),
    Key(
        "reload_command",
        "command line: a string or a list",
        None,
        parse_argv,
        doc="A command reload runs instead of sending reload_signal.",
        example="[nginx, -s, reload]",
        shown_default="none",
    ),
    Key(
        "reload",
        "true or false",
        True,
        parse_bool,
        doc="false: the service cannot be reloaded (reload exits 3, force-reload restarts it).",
        example="false",
    ),
    Key(
        "start_timeout",
        SECONDS,
        30,
        parse_seconds,
        doc="How long start waits for a forking daemon's PID file or for readiness.",
        example="60",
    ),
    Key(
        "start_grace",
        SECONDS,
        0.5,
        parse_seconds,
        doc="Without ready, a program that dies this soon after starting has failed to start.",
        example="1",
    ),
    Key(
        "ready",
        "readiness probe",
        None,
        parse_ready,
        doc="How start knows the service is ready: tcp, unix, file, http, command or notify.",
        example='{tcp: "127.0.0.1:8080"}',
        shown_default="none: started once it survives start_grace",
    ),
    Key(
        "depends",
        "list of service names",
        None,
        parse_depends,
        doc="Services started before this one and stopped after it.",
        example="[db]",
        shown_default="none",
    ),
    Key(
        "enabled",
        "true or false",
        True,
        parse_bool,
        doc="Whether startall starts it.",
        example="false",
    ),
    Key(
        "nice",
        "whole number from -20 to 19",
        None,
        parse_nice,
        doc="The scheduling priority (nice value) of the program.",
        example="5",
        shown_default="unchanged",
    ),
    Key(
        "limits",
        "mapping of limit: number, unlimited or [soft, hard]",
        None,
        parse_limits,
        doc="Resource limits set before the program runs; limits: " + ", ".join(LIMIT_NAMES) + ".",
        example="{nofile: 4096, core: 0}",
        shown_default="unchanged",
    ),
)
KNOWN_KEYS = tuple(k.name for k in KEYS)
_BY_NAME = {k.name: k for k in KEYS}

# What the defaults stand for in a service named NAME in root's directories: load_catalog
# fills in every field; these serve values built by hand (tests, tools).
NEUTRAL_DIRS = Dirs(
    Path("/etc/servicectl/services.d"), Path("/run/servicectl"), Path("/var/log/servicectl")
)


def _defaults() -> dict[str, Any]:
    r = Reader({}, "(defaults)", "NAME", NEUTRAL_DIRS)
    for k in KEYS:
        if not k.required:
            r.values[k.name] = k.parse(r, k, k.default)
    assert not r.errors, r.errors
    return r.values


DEFAULTS = _defaults()


class Service(NamedTuple):
    """One valid service definition, every path absolute and every default applied. The fields
    after ``file`` are the keys of KEYS, in order, then what is derived from them."""

    name: str
    file: Path
    command: tuple[str, ...]
    description: str = DEFAULTS["description"]
    type: str = DEFAULTS["type"]
    working_directory: Path = DEFAULTS["working_directory"]
    user: str | None = DEFAULTS["user"]
    group: str | None = DEFAULTS["group"]
    umask: int = DEFAULTS["umask"]
    environment: tuple[tuple[str, str], ...] = DEFAULTS["environment"]
    env_file: Path | None = DEFAULTS["env_file"]
    stdout: Path | None = DEFAULTS["stdout"]  # None: discarded ("null")
    stderr: Path | None = DEFAULTS["stderr"]  # None: discarded
    pid_file: Path = DEFAULTS["pid_file"]
    stop_signal: int = DEFAULTS["stop_signal"]
    stop_timeout: float = DEFAULTS["stop_timeout"]
    kill_mode: str = DEFAULTS["kill_mode"]
    reload_signal: int = DEFAULTS["reload_signal"]
    reload_command: tuple[str, ...] | None = DEFAULTS["reload_command"]
    reload: bool = DEFAULTS["reload"]
    start_timeout: float = DEFAULTS["start_timeout"]
    start_grace: float = DEFAULTS["start_grace"]
    ready: Ready | None = DEFAULTS["ready"]
    depends: tuple[str, ...] = DEFAULTS["depends"]
    enabled: bool = DEFAULTS["enabled"]
    nice: int | None = DEFAULTS["nice"]
    limits: tuple[tuple[str, int, int], ...] = DEFAULTS["limits"]
    # Derived: whether the document gave stderr and pid_file.
    stderr_same: bool = True
    pid_file_given: bool = False

    @property
    def env(self) -> dict[str, str]:
        return dict(self.environment)

    @property
    def program(self) -> str:
        return self.command[0]


def build(name: str, file: Path, data: Any, dirs: Dirs) -> Service | list[ConfigError]:
    """Validate one parsed document: the Service, or every error found in it."""
    label = str(file)
    if data is None:
        return [ConfigError(label, None, "the file is empty; it needs at least a command: key")]
    if not isinstance(data, dict):
        return [ConfigError(label, None, f"found {show(data)}, expected a mapping of keys")]
    r = Reader(data, label, name, dirs)
    for key in data:
        if key not in _BY_NAME:
            r.error(str(key), f"unknown key{hint(str(key), KNOWN_KEYS)}")
    for k in KEYS:
        r.values[k.name] = k.parse(r, k, data.get(k.name, k.default))
    if r.values["type"] == "forking" and not r.given("pid_file"):
        r.error("pid_file", "missing: a forking service must say where its daemon writes its PID")
    if "reload_command" in data and "reload_signal" in data:
        r.error("reload_command", "give reload_signal or reload_command, not both")
    if r.errors:
        return r.errors
    return Service(
        name=name,
        file=file,
        **r.values,
        stderr_same=not r.given("stderr"),
        pid_file_given=r.given("pid_file"),
    )


# ---------------------------------------------------------------------------------------------
# The schema hash and the reference


_HASH: str | None = None


def schema_hash() -> str:
    """A digest of what a cached definition depends on: the fields of Service, the keys and
    their defaults, and the code that reads them (this module, fields.py, config.py and
    yamlload.py), so
    that any change to parsing invalidates the definition cache; nothing to bump by hand."""
    global _HASH
    if _HASH is None:
        import zlib

        here = Path(__file__).parent
        keys = [tuple(v.__qualname__ if callable(v) else v for v in k) for k in KEYS]
        parts = [repr((Service._fields, Ready._fields, keys, sorted(DEFAULTS.items()))).encode()]
        for module in ("schema.py", "fields.py", "config.py", "yamlload.py"):
            try:
                parts.append((here / module).read_bytes())
            except OSError:  # installed without sources: the version still tells them apart
                parts.append(module.encode())
        _HASH = format(zlib.crc32(b"\0".join(parts)), "08x")
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
