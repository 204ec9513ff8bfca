"""Service definitions: YAML files in, frozen value types and clear errors out (SPEC §3).

Every error names the file and the key, what was found and what was expected.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import signal
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from servicectl.errors import ConfigError
from servicectl.paths import Dirs

NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]+$")
MAX_NAME = 80  # "@servicectl/<8 hex>/NAME" must fit a 107-byte socket address; files 255 bytes
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
IGNORED_SUFFIXES = ("~", ".bak", ".swp", ".tmp", ".orig", ".rej")
MAX_SECONDS = 7 * 24 * 3600  # a week: anything longer is a typo
MAX_DEPTH = 100  # nesting levels of a definition (it needs 3)
MAX_NUMBER_CHARS = 300  # longer integers are refused by the loader (sexagesimal 1:2:3... is slow)

LIMIT_NAMES = {
    "as": "RLIMIT_AS",
    "core": "RLIMIT_CORE",
    "cpu": "RLIMIT_CPU",
    "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE",
    "locks": "RLIMIT_LOCKS",
    "memlock": "RLIMIT_MEMLOCK",
    "msgqueue": "RLIMIT_MSGQUEUE",
    "nice": "RLIMIT_NICE",
    "nofile": "RLIMIT_NOFILE",
    "nproc": "RLIMIT_NPROC",
    "rss": "RLIMIT_RSS",
    "rtprio": "RLIMIT_RTPRIO",
    "sigpending": "RLIMIT_SIGPENDING",
    "stack": "RLIMIT_STACK",
}
READY_KINDS = ("tcp", "unix", "file", "http", "command", "notify")
UNLIMITED = -1  # resource.RLIM_INFINITY on Linux


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


class Service(NamedTuple):
    """One valid service definition, with every path absolute and every default applied."""

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
    stderr_same: bool = True  # stderr goes to the same file as stdout
    pid_file: Path = Path("/")
    pid_file_given: bool = False
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

    @property
    def env(self) -> dict[str, str]:
        return dict(self.environment)

    @property
    def program(self) -> str:
        return self.command[0]


class Invalid(NamedTuple):
    """A definition that could not be used, with all its errors (the first one is shown)."""

    name: str
    file: Path
    errors: tuple[ConfigError, ...]

    @property
    def first_error(self) -> ConfigError:
        return self.errors[0]


class Catalog(NamedTuple):
    """Everything in a services directory: valid services and invalid definitions by name."""

    dirs: Dirs
    services: Mapping[str, Service]
    invalid: Mapping[str, Invalid]
    problems: tuple[str, ...] = ()  # directory-level notes

    def names(self) -> list[str]:
        return sorted(set(self.services) | set(self.invalid))


def _close_matches(word: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """Did-you-mean candidates (difflib is imported only when a definition is parsed)."""
    import difflib

    return difflib.get_close_matches(word, list(choices), n=n, cutoff=cutoff)


# ---------------------------------------------------------------------------------------------
# YAML


def _yaml_loader() -> type:
    """A safe loader (the C one when present) that rejects duplicate keys, expands merge keys
    (``<<``) without blowing up, and turns a bad scalar into an error with its position."""
    import yaml
    from yaml.constructor import ConstructorError, SafeConstructor
    from yaml.nodes import MappingNode, SequenceNode

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class StrictLoader(base):  # type: ignore[valid-type, misc]
        pass

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, MappingNode):
            raise ConstructorError(
                None, None, f"expected a mapping, found {node.id}", node.start_mark
            )
        merged: dict[Any, Any] = {}
        own: dict[Any, Any] = {}
        merge_seen = False
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                # Merged mappings are built as objects (each anchor once), so repeated aliases
                # cost nothing, unlike PyYAML's node-level flattening, which doubles per level.
                if merge_seen:
                    raise ConstructorError(None, None, "duplicate key '<<'", key_node.start_mark)
                merge_seen = True
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    if not isinstance(source, MappingNode):
                        raise ConstructorError(
                            None,
                            None,
                            "<<: expected a mapping or a list of mappings to merge",
                            source.start_mark,
                        )
                    mapping = loader.construct_object(source, deep=True)
                    if not isinstance(mapping, dict):  # a !!set or !!omap
                        raise ConstructorError(
                            None, None, "<<: expected a plain mapping", source.start_mark
                        )
                    for key, value in mapping.items():
                        merged.setdefault(key, value)  # the first mapping listed wins
                continue
            if key_node.tag == "tag:yaml.org,2002:value":
                key_node.tag = "tag:yaml.org,2002:str"
            key = loader.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark
                ) from None
            if key in own:
                raise ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            try:
                own[key] = loader.construct_object(value_node, deep=deep)
            except ConstructorError as exc:  # remember under which key, for the message
                exc.key_path = [str(key), *getattr(exc, "key_path", [])]  # type: ignore[attr-defined]
                raise
        return {**merged, **own} if merged else own  # keys written here override merged ones

    def checked(construct: Callable[[Any, Any], Any], expected: str) -> Callable[[Any, Any], Any]:
        def wrapper(loader: Any, node: Any) -> Any:
            text = loader.construct_scalar(node)
            if expected == "a whole number" and len(text) > MAX_NUMBER_CHARS:
                raise ConstructorError(
                    None,
                    None,
                    f"a number of {len(text)} characters, expected at most {MAX_NUMBER_CHARS}",
                    node.start_mark,
                )
            try:
                return construct(loader, node)
            except ConstructorError:
                raise
            except Exception:
                raise ConstructorError(
                    None, None, f"found {_show(text)}, expected {expected}", node.start_mark
                ) from None

        return wrapper

    def undefined(loader: Any, node: Any) -> Any:
        tag = str(node.tag)
        if tag.startswith("tag:yaml.org,2002:"):
            tag = "!!" + tag[len("tag:yaml.org,2002:") :]
        tag = tag if len(tag) <= 80 else tag[:77] + "..."
        problem = f"the tag {tag} is not allowed (a definition is plain YAML)"
        raise ConstructorError(None, None, problem, node.start_mark)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    StrictLoader.add_constructor(None, undefined)
    for tag, construct, expected in (
        ("int", SafeConstructor.construct_yaml_int, "a whole number"),
        ("float", SafeConstructor.construct_yaml_float, "a number"),
        ("bool", SafeConstructor.construct_yaml_bool, "true or false"),
        ("timestamp", SafeConstructor.construct_yaml_timestamp, "a date or time"),
    ):
        StrictLoader.add_constructor(f"tag:yaml.org,2002:{tag}", checked(construct, expected))
    return StrictLoader


_LOADER: type | None = None


def _check_depth(text: str, loader: type) -> None:
    """Refuse nesting deeper than MAX_DEPTH before composing: the C loader's composer recurses
    in C and crashes the interpreter (SIGSEGV) at some 30,000 levels of ``[``."""
    import yaml

    # Each level needs one of these indicators, so fewer of them means no need to look.
    if sum(text.count(c) for c in "[{-?:") <= MAX_DEPTH:
        return
    depth = 0
    for event in yaml.parse(text, Loader=loader):  # events come from a loop, not recursion
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark  # the C parser's Mark type is not in the stubs
                problem = f"nested more than {MAX_DEPTH} levels deep"
                raise yaml.constructor.ConstructorError(None, None, problem, mark)  # type: ignore[arg-type]
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def parse_yaml(text: str, file: str) -> Any:
    """Parse one YAML document safely; any failure becomes a ConfigError naming the file."""
    global _LOADER
    import yaml

    if _LOADER is None:
        _LOADER = _yaml_loader()
    try:
        _check_depth(text, _LOADER)
        return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = exc.problem or exc.context or "not valid YAML"
        key = ".".join(getattr(exc, "key_path", [])) or None
        raise ConfigError(file, key, f"not valid YAML{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, None, f"not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(file, None, "not valid YAML: nested too deeply") from None
    except Exception as exc:  # a constructor's own failure: still this file's error, not ours
        raise ConfigError(file, None, f"not valid YAML: {type(exc).__name__}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Field parsers


KNOWN_KEYS = (
    "description",
    "command",
    "type",
    "working_directory",
    "user",
    "group",
    "umask",
    "environment",
    "env_file",
    "stdout",
    "stderr",
    "pid_file",
    "stop_signal",
    "stop_timeout",
    "kill_mode",
    "reload_signal",
    "reload_command",
    "reload",
    "start_timeout",
    "start_grace",
    "ready",
    "depends",
    "enabled",
    "nice",
    "limits",
)


def _show(value: Any) -> str:
    """A short rendering of a found value for an error message."""
    if isinstance(value, str):
        text = repr(value)
    elif value is None:
        text = "nothing (null)"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = str(value)
    elif isinstance(value, list):
        text = "a list"
    elif isinstance(value, dict):
        text = "a mapping"
    else:
        text = type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


class _Fields:
    """Reads keys from one parsed document, collecting errors instead of stopping at the first."""

    def __init__(
        self, data: Mapping[Any, Any], file: str, expand: Callable[[str], str] = lambda v: v
    ) -> None:
        self.data = data
        self.file = file
        self.expand = expand
        self.errors: list[ConfigError] = []

    def error(self, key: str | None, problem: str) -> None:
        self.errors.append(ConfigError(self.file, key, problem))

    def wrong(self, key: str, value: Any, expected: str) -> None:
        self.error(key, f"found {_show(value)}, expected {expected}")

    def string(self, key: str, default: str | None = None, *, one_line: bool = False) -> str | None:
        value = self.data.get(key, default)
        if value is None or value is default:
            return value
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.wrong(key, value, "a string")
            return default
        text = str(value)
        text = self.expand(text)
        if one_line and ("\n" in text or "\r" in text):
            self.error(key, "found several lines, expected one line")
            return default
        if "\0" in text:
            self.error(key, "contains a NUL character")
            return default
        return text

    def number(self, key: str, default: float) -> float:
        value = self.data.get(key, default)
        if value is default:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.wrong(key, value, "a number of seconds")
            return default
        if (isinstance(value, float) and math.isnan(value)) or value < 0:
            self.wrong(key, value, "a number of seconds, 0 or more")
            return default
        if value > MAX_SECONDS:
            self.wrong(key, value, f"at most {MAX_SECONDS} seconds (a week)")
            return default
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.wrong(key, value, "true or false")
            return default
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.data.get(key, default)
        if value not in choices:
            self.wrong(key, value, " or ".join(choices))
            return default
        return str(value)

    def argv(self, key: str) -> tuple[str, ...] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                parts = shlex.split(value)
            except ValueError as exc:
                self.error(key, f"cannot be split like a shell command: {exc}")
                return None
        elif isinstance(value, list) and all(
            isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value
        ):
            parts = [str(v) for v in value]
        else:
            self.wrong(key, value, "a command line (a string, or a list of strings)")
            return None
        parts = [self.expand(p) for p in parts]
        if not parts or not parts[0]:
            self.wrong(key, value, "a non-empty command line")
            return None
        if any("\0" in p for p in parts):
            self.error(key, "contains a NUL character")
            return None
        return tuple(parts)

    def signal_number(self, key: str, default: int) -> int:
        value = self.data.get(key, default)
        if value is default:
            return default
        number = parse_signal(value)
        if number is None:
            self.wrong(key, value, "a signal name such as TERM, SIGINT or HUP, or a number 1-64")
            return default
        return number


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


PLACEHOLDER_RE = re.compile(r"\{(run_dir|log_dir|services_dir|name)\}")


def expand(value: str, name: str, dirs: Dirs) -> str:
    """Replace {run_dir}, {log_dir}, {services_dir} and {name}; other braces stay as they are."""
    values = {
        "run_dir": str(dirs.run),
        "log_dir": str(dirs.log),
        "services_dir": str(dirs.services),
        "name": name,
    }
    return PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], value)


def _resolve(base: Path, value: str) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else base / path


def _parse_umask(f: _Fields) -> int:
    value = f.data.get("umask", "022")
    if isinstance(value, bool):
        f.wrong("umask", value, 'an octal string such as "022"')
        return 0o022
    if isinstance(value, int):
        # YAML 1.1 reads an unquoted 022 as octal already.
        number = value
    elif isinstance(value, str) and re.fullmatch(r"0?[0-7]{1,4}", value.strip()):
        number = int(value.strip(), 8)
    else:
        f.wrong("umask", value, 'an octal string such as "022"')
        return 0o022
    if not 0 <= number <= 0o777:
        f.wrong("umask", value, 'an octal string from "000" to "777"')
        return 0o022
    return number


def _parse_environment(f: _Fields) -> tuple[tuple[str, str], ...]:
    value = f.data.get("environment")
    if value is None:
        return ()
    if not isinstance(value, dict):
        f.wrong("environment", value, "a mapping of NAME: value")
        return ()
    pairs = []
    for key, val in value.items():
        if not isinstance(key, str) or not ENV_KEY_RE.match(key):
            f.error("environment", f"{_show(key)} is not a variable name (letters, digits, _)")
            continue
        if isinstance(val, bool) or val is None or not isinstance(val, (str, int, float)):
            f.error(
                f"environment.{key}",
                f'found {_show(val)}, expected a string (quote it: "{val}")'
                if isinstance(val, bool)
                else f"found {_show(val)}, expected a string",
            )
            continue
        text = str(val)
        if "\0" in text:
            f.error(f"environment.{key}", "contains a NUL character")
            continue
        pairs.append((key, text))
    return tuple(pairs)


def _parse_limits(f: _Fields) -> tuple[tuple[str, int, int], ...]:
    value = f.data.get("limits")
    if value is None:
        return ()
    if not isinstance(value, dict):
        f.wrong("limits", value, "a mapping such as {nofile: 4096, core: 0}")
        return ()

    def one(v: Any) -> int | None:
        if isinstance(v, bool):
            return None
        if isinstance(v, int) and 0 <= v < 2**63:
            return v
        if isinstance(v, str) and v.strip().lower() in ("infinity", "unlimited"):
            return UNLIMITED
        return None

    out = []
    for key, v in value.items():
        if key not in LIMIT_NAMES:
            near = _close_matches(str(key), LIMIT_NAMES, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            f.error(f"limits.{key}", f"unknown limit{hint}; known: {', '.join(LIMIT_NAMES)}")
            continue
        if isinstance(v, list) and len(v) == 2:
            soft, hard = one(v[0]), one(v[1])
        else:
            soft = hard = one(v)
        if soft is None or hard is None:
            f.wrong(f"limits.{key}", v, 'a whole number, "unlimited", or [soft, hard]')
            continue
        if hard != UNLIMITED and (soft == UNLIMITED or soft > hard):
            f.error(f"limits.{key}", "the soft limit is above the hard limit")
            continue
        out.append((str(key), soft, hard))
    return tuple(out)


def _parse_ready(f: _Fields, base: Path) -> Ready | None:
    value = f.data.get("ready")
    if value is None:
        return None
    if value == "notify" or value == {"notify": True}:
        return Ready("notify")
    if not isinstance(value, dict) or len(value) not in (1, 2):
        f.wrong(
            "ready",
            value,
            "notify, or one of {tcp: HOST:PORT}, {unix: PATH}, "
            "{file: PATH}, {http: URL}, {command: CMD}",
        )
        return None
    timeout = None
    kinds = [k for k in value if k != "timeout"]
    if "timeout" in value:
        t = value["timeout"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= MAX_SECONDS:
            f.wrong("ready.timeout", t, "a number of seconds above 0")
            return None
        timeout = float(t)
    if len(kinds) != 1 or kinds[0] not in READY_KINDS:
        found = ", ".join(str(k) for k in kinds) or "nothing"
        near = _close_matches(str(kinds[0]), READY_KINDS, n=1) if kinds else []
        hint = f" (did you mean {near[0]}?)" if near else ""
        f.error("ready", f"found {found}{hint}, expected one of {', '.join(READY_KINDS)}")
        return None
    kind = kinds[0]
    target = value[kind]
    key = f"ready.{kind}"
    if kind == "notify":
        if target is not True:
            f.wrong(key, target, "true")
            return None
        return Ready("notify")
    if kind == "command":
        sub = _Fields({"command": target}, f.file, f.expand)
        argv = sub.argv("command")
        for err in sub.errors:
            f.error(key, err.problem)
        return Ready("command", argv, timeout) if argv else None
    if not isinstance(target, (str, int)) or isinstance(target, bool):
        f.wrong(key, target, "a string")
        return None
    text = f.expand(str(target))
    if kind == "tcp":
        host, sep, port = text.rpartition(":")
        if not sep or not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
            f.wrong(key, target, '"HOST:PORT" such as "127.0.0.1:8080"')
            return None
        if not host:
            text = "127.0.0.1:" + port
    elif kind == "http":
        if not re.match(r"^https?://[^/\s]+", text):
            f.wrong(key, target, 'a URL such as "http://127.0.0.1:8080/health"')
            return None
    else:  # unix, file
        text = str(_resolve(base, text))
    return Ready(kind, text, timeout)


def _parse_depends(f: _Fields) -> tuple[str, ...]:
    value = f.data.get("depends")
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        f.wrong("depends", value, "a list of service names")
        return ()
    for item in items:
        if not NAME_RE.match(item):
            f.error("depends", f"{item!r} is not a service name")
            return ()
    return tuple(dict.fromkeys(items))


def build_service(name: str, file: Path, data: Any, dirs: Dirs) -> Service:
    """Validate one parsed document into a Service; raise the first ConfigError if invalid.

    All errors found are attached to the raised error as ``.all_errors``.
    """
    errors = collect_errors_and_build(name, file, data, dirs)
    if isinstance(errors, Service):
        return errors
    first = errors[0]
    first.all_errors = errors  # type: ignore[attr-defined]
    raise first


def collect_errors_and_build(
    name: str, file: Path, data: Any, dirs: Dirs
) -> Service | list[ConfigError]:
    """Validate one parsed document: the Service, or every error found in it."""
    label = str(file)
    if data is None:
        return [ConfigError(label, None, "the file is empty; it needs at least a command: key")]
    if not isinstance(data, dict):
        return [ConfigError(label, None, f"found {_show(data)}, expected a mapping of keys")]
    f = _Fields(data, label, lambda v: expand(v, name, dirs))
    for key in data:
        if key not in KNOWN_KEYS:
            near = _close_matches(str(key), KNOWN_KEYS, n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]}?)" if near else ""
            f.error(str(key), f"unknown key{hint}")
    base = dirs.services

    command = f.argv("command")
    if command is None and "command" not in data:
        f.error("command", "missing: every service needs the program to run")
    if command and "/" in command[0]:
        command = (str(_resolve(base, command[0])), *command[1:])

    svc_type = f.choice("type", ("simple", "forking"), "simple")
    description = f.string("description", "", one_line=True) or ""
    workdir = f.string("working_directory", "/")
    user = f.string("user")
    group = f.string("group")
    env_file = f.string("env_file")
    pid_file = f.string("pid_file")
    if svc_type == "forking" and not pid_file:
        f.error("pid_file", "missing: a forking service must say where its daemon writes its PID")

    def output(key: str) -> Path | None:
        value = f.string(key)
        if value is None:
            return dirs.log / f"{name}.log"
        if value in ("null", "/dev/null"):
            return None
        return _resolve(base, value)

    stdout = output("stdout")
    stderr_same = "stderr" not in data or data.get("stderr") is None
    stderr = stdout if stderr_same else output("stderr")

    reload_command = f.argv("reload_command")
    if reload_command and "/" in reload_command[0]:
        reload_command = (str(_resolve(base, reload_command[0])), *reload_command[1:])
    if "reload_command" in data and "reload_signal" in data:
        f.error("reload_command", "give reload_signal or reload_command, not both")
    reload = f.boolean("reload", True)

    nice = data.get("nice")
    if nice is not None and (
        isinstance(nice, bool) or not isinstance(nice, int) or not -20 <= nice <= 19
    ):
        f.wrong("nice", nice, "a whole number from -20 to 19")
        nice = None

    service = Service(
        name=name,
        file=file,
        command=command or ("",),
        description=description,
        type=svc_type,
        working_directory=_resolve(base, workdir or "/"),
        user=user,
        group=group,
        umask=_parse_umask(f),
        environment=_parse_environment(f),
        env_file=_resolve(base, env_file) if env_file else None,
        stdout=stdout,
        stderr=stderr,
        stderr_same=stderr_same,
        pid_file=_resolve(base, pid_file) if pid_file else dirs.run / f"{name}.pid",
        pid_file_given=bool(pid_file),
        stop_signal=f.signal_number("stop_signal", int(signal.SIGTERM)),
        stop_timeout=f.number("stop_timeout", 30.0),
        kill_mode=f.choice("kill_mode", ("group", "process"), "group"),
        reload_signal=f.signal_number("reload_signal", int(signal.SIGHUP)),
        reload_command=reload_command,
        reload=reload,
        start_timeout=f.number("start_timeout", 30.0),
        start_grace=f.number("start_grace", 0.5),
        ready=_parse_ready(f, base),
        depends=_parse_depends(f),
        enabled=f.boolean("enabled", True),
        nice=nice,
        limits=_parse_limits(f),
    )
    if name in service.depends:
        f.error("depends", f"{name} cannot depend on itself")
    return f.errors if f.errors else service


# ---------------------------------------------------------------------------------------------
# Directory


def definition_files(services_dir: Path) -> dict[str, Path]:
    """Map service name to its file, ignoring hidden, backup and package-manager leftovers.

    When both NAME.yaml and NAME.yml exist, NAME.yaml wins.
    """
    found: dict[str, Path] = {}
    try:
        entries = sorted(os.scandir(services_dir), key=lambda e: e.name)
    except (
        OSError
    ):  # missing, not a directory, a symlink loop, unreadable: see services_dir_problem
        return {}
    for entry in entries:
        fname = entry.name
        if fname.startswith(".") or fname.endswith(IGNORED_SUFFIXES) or ".dpkg-" in fname:
            continue
        stem, dot, ext = fname.rpartition(".")
        if not dot or ext not in ("yaml", "yml") or not stem:
            continue
        if stem in found and ext == "yml":
            continue
        found[stem] = Path(entry.path)
    return found


def services_dir_problem(services_dir: Path) -> str | None:
    """Why the services directory cannot be listed, or None if it can."""
    try:
        os.close(os.open(services_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
    except FileNotFoundError:
        return f"the services directory {services_dir} does not exist"
    except NotADirectoryError:
        return f"the services directory {services_dir} is not a directory"
    except OSError as exc:
        return f"the services directory {services_dir} cannot be read: {exc.strerror}"
    return None


def load_file(name: str, file: Path, dirs: Dirs) -> Service | Invalid:
    """Read, parse and validate one definition file."""
    label = str(file)
    if not NAME_RE.match(name):
        err = ConfigError(
            label, None, f"{name!r} is not a valid service name (letters, digits, -, _, ., @)"
        )
        return Invalid(name, file, (err,))
    if len(name) > MAX_NAME:
        err = ConfigError(
            label,
            None,
            f"the service name is {len(name)} characters long, at most {MAX_NAME} "
            f"(its PID, state and socket names must fit); rename the file",
        )
        return Invalid(name, file, (err,))
    try:
        # Non-blocking: a FIFO planted as NAME.yaml must not hang every command.
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                err = ConfigError(label, None, "not a regular file; a definition must be one")
                return Invalid(name, file, (err,))
            raw = fh.read(1024 * 1024 + 1)
    except OSError as exc:
        return Invalid(name, file, (ConfigError(label, None, f"cannot be read: {exc.strerror}"),))
    if len(raw) > 1024 * 1024:
        return Invalid(name, file, (ConfigError(label, None, "larger than 1 MiB"),))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        err = ConfigError(label, None, f"not UTF-8 text (byte {exc.start})")
        return Invalid(name, file, (err,))
    try:
        data = parse_yaml(text, label)
    except ConfigError as err:
        return Invalid(name, file, (err,))
    result = collect_errors_and_build(name, file, data, dirs)
    if isinstance(result, Service):
        return result
    return Invalid(name, file, tuple(result))


def load_catalog(dirs: Dirs, only: Iterable[str] | None = None, use_cache: bool = True) -> Catalog:
    """Load every definition in the services directory.

    ``only`` limits parsing to those names and their dependencies (for speed); cross-file
    checks (unknown dependencies, cycles) are done over what was loaded. With ``use_cache``,
    a file whose identity (inode, size, mtime, ctime) is unchanged since it was last validated
    is not parsed again (see cache.py).
    """
    from servicectl import cache

    files = definition_files(dirs.services)
    problems: list[str] = []
    problem = services_dir_problem(dirs.services)
    if problem:
        problems.append(problem)
    services: dict[str, Service] = {}
    invalid: dict[str, Invalid] = {}
    cached = cache.load(dirs) if use_cache else {}
    fresh: dict[str, tuple[cache.FileKey, Service | Invalid]] = {}

    def parse(name: str) -> Service | Invalid:
        key = cache.file_key(files[name])
        hit = cached.get(name)
        if key is not None and hit is not None and hit[0] == key:
            return hit[1]  # type: ignore[no-any-return]
        result = load_file(name, files[name], dirs)
        if key is not None and cache.file_key(files[name]) == key:
            fresh[name] = (key, result)
        return result

    def load(name: str) -> None:
        if name in services or name in invalid or name not in files:
            return
        result = parse(name)
        if isinstance(result, Service):
            services[name] = result
            if only is not None:
                for dep in result.depends:
                    load(dep)
        else:
            invalid[name] = result

    for name in files if only is None else only:
        load(name)
    if use_cache and fresh:
        kept = {n: e for n, e in cached.items() if n in files}
        kept.update(fresh)
        cache.save(dirs, kept)

    # Dependencies that name no service.
    for name, svc in list(services.items()):
        missing = [d for d in svc.depends if d not in files]
        if missing:
            err = ConfigError(
                str(svc.file),
                "depends",
                f"{', '.join(missing)}: no such service in {dirs.services}",
            )
            invalid[name] = Invalid(name, svc.file, (err,))
            del services[name]

    for cycle in find_cycles(services):
        text = " -> ".join([*cycle, cycle[0]])
        for name in cycle:
            svc = services[name]
            err = ConfigError(str(svc.file), "depends", f"dependency cycle: {text}")
            invalid[name] = Invalid(name, svc.file, (err,))
        for name in cycle:
            del services[name]
    return Catalog(dirs, services, invalid, tuple(problems))


def find_cycles(services: Mapping[str, Service]) -> list[list[str]]:
    """Every dependency cycle among valid services (each reported once, in order)."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    cycles: list[list[str]] = []
    in_cycle: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        path.append(name)
        for dep in services[name].depends:
            if dep not in services:
                continue
            if state.get(dep) == 1:
                cycle = path[path.index(dep) :]
                if not in_cycle.intersection(cycle):
                    cycles.append(cycle)
                    in_cycle.update(cycle)
            elif dep not in state:
                visit(dep, path)
        path.pop()
        state[name] = 2

    for name in sorted(services):
        if name not in state:
            visit(name, [])
    return cycles
