"""The keys that say what init.d scripts say beyond running one program: the directories to
make, the extra verbs (``actions``), and a template's instances (with the check that
{instance} is used only in a template).
"""

from __future__ import annotations

import os
import re

from servicectl.definitions.names import INSTANCE_CHARS, valid_instance
from servicectl.definitions.program_keys import command_line, parse_account
from servicectl.definitions.reader import Reader, hint, parse_text, show
from servicectl.definitions.schema import (
    Action,
    Directory,
    Key,
    parse_signal,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

VERB_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}\Z")


LSB_VERBS = ("start", "stop", "restart", "try-restart", "reload", "force-reload", "status")


def _mode(r: Reader, key: str, value: Any) -> int | None:
    if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3,4}", value.strip()):
        return int(value.strip(), 8)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o7777:
        return value  # YAML 1.1 reads an unquoted 0755 as octal already
    r.wrong(key, value, 'an octal mode such as "0755" or "2775"')
    return None


def _key(name: str) -> Key:
    return Key(name, "", None, "", "", "")


def _directory(r: Reader, where: str, item: Any) -> Directory | None:
    spec = {"path": item} if isinstance(item, str) else item
    if not isinstance(spec, dict):
        r.wrong(where, item, "a path, or a mapping {path, mode, owner, group}")
        return None
    errors = len(r.errors)
    for x in spec:
        if x not in Directory._fields:
            r.error(where, f"unknown key {x}{hint(str(x), Directory._fields)}")
    path = parse_text(r, _key(f"{where}.path"), spec.get("path"))
    dotted = path is not None and bool({".", ".."} & set(path.split("/")))
    if path is not None and (not path.startswith("/") or dotted or path.strip("/") == ""):
        # R-DIR-5: "/var/lib/x/." is /var/lib/x, and its owner would become the service's
        r.wrong(
            f"{where}.path",
            spec["path"],
            "an absolute path other than / (without .. or . components)",
        )
    elif path is None and len(r.errors) == errors:
        r.error(f"{where}.path", "missing: the directory to make")
    mode = _mode(r, f"{where}.mode", spec["mode"]) if "mode" in spec else 0o755
    owner = parse_account(r, _key(f"{where}.owner"), spec.get("owner"), "user")
    group = parse_account(r, _key(f"{where}.group"), spec.get("group"), "group")
    if len(r.errors) > errors or path is None or mode is None:
        return None
    return Directory(os.path.normpath(path), mode, owner, group)


def parse_directories(r: Reader, k: Key, value: Any) -> tuple[Directory, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, (str, dict)) else value
    if not isinstance(items, list):
        r.wrong(k.name, value, "a list of paths, or of {path, mode, owner, group}")
        return ()
    out: dict[str, Directory] = {}
    for i, item in enumerate(items):
        d = _directory(r, f"{k.name}[{i}]", item)
        if d is not None and d.path in out:
            r.error(f"{k.name}[{i}]", f"{d.path} is listed twice")
        elif d is not None:
            out[d.path] = d
    return tuple(out.values())


def parse_actions(r: Reader, k: Key, value: Any) -> tuple[tuple[str, Action], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        r.wrong(k.name, value, "a mapping of verb: {signal: SIG} or verb: {command: CMD}")
        return ()
    out = []
    for verb, spec in value.items():
        where = f"{k.name}.{verb}"
        if not isinstance(verb, str) or not VERB_RE.match(verb):
            rule = "a letter, then letters, digits, - or _; at most 40"
            r.error(k.name, f"{show(verb)} is not a verb ({rule})")
        elif verb in LSB_VERBS:
            r.error(where, f"{verb} is a standard verb servicectl already has; choose another")
        elif not isinstance(spec, dict) or set(spec) - {"stops"} not in ({"signal"}, {"command"}):
            r.wrong(where, spec, "{signal: SIG} or {command: CMD} (and stops: true or false)")
        elif "stops" in spec and not isinstance(spec["stops"], bool):
            r.wrong(f"{where}.stops", spec["stops"], "true or false")
        else:
            action = _action(r, where, spec)
            if action is not None:
                out.append((verb, action._replace(stops=bool(spec.get("stops")))))
    return tuple(out)


def _action(r: Reader, where: str, spec: dict[str, Any]) -> Action | None:
    if "signal" in spec:
        number = parse_signal(spec["signal"])
        if number is None:
            r.wrong(f"{where}.signal", spec["signal"], "a signal name such as USR1, or 1-64")
            return None
        return Action(signal=number)
    argv = command_line(r, f"{where}.command", spec["command"])
    return Action(command=argv) if argv else None


def parse_instances(r: Reader, k: Key, value: Any) -> tuple[str, ...]:
    """A template's instances: names made of letters, digits, -, _, ., :, not starting with .
    or - (numbers are taken as written: an unquoted port is fine)."""
    if value is None:
        return ()
    if not r.template:
        r.error(k.name, "only a template (a file named NAME@.yaml) lists instances")
        return ()
    items = value if isinstance(value, list) else None
    if items is None or not all(
        isinstance(v, (str, int)) and not isinstance(v, bool) for v in items
    ):
        r.wrong(k.name, value, "a list of instance names")
        return ()
    out = [str(v) for v in items]
    for item in out:
        if not valid_instance(item):
            r.error(k.name, f"{show(item)} is not an instance name ({INSTANCE_CHARS})")
            return ()
    return tuple(dict.fromkeys(out))


_CLOSE = object()  # in _mentions' stack: every item under the container on top was looked at


def _mentions(value: Any, words: tuple[str, ...], known: dict[int, bool]) -> bool:
    """Whether a string anywhere in ``value`` holds one of ``words``. Each list or mapping is
    looked at once, however often YAML aliases repeat it (no "billion laughs"), and once for
    all the calls that share ``known`` (what was found of each container, by id): the keys of
    an alias chain (c1: &c1 {x: *c0}, c2: &c2 {x: *c1}...) cost its length, not its square."""
    todo: list[Any] = [value]
    opened: list[int] = []  # the containers being looked into, outermost first
    is_open: set[int] = set()
    seen: set[int] = set()
    cyclic = False  # a container holds itself: then none is known clean for later calls
    while todo:
        item = todo.pop()
        if item is _CLOSE:
            done = opened.pop()
            is_open.discard(done)
            if not cyclic:
                known[done] = False
            continue
        if isinstance(item, str):
            found = any(w in item for w in words)
        elif isinstance(item, (list, dict)):
            found = known.get(id(item), False)
            if not found and id(item) not in known and id(item) not in seen:
                seen.add(id(item))
                is_open.add(id(item))
                opened.append(id(item))
                todo.append(_CLOSE)
                todo.extend(item.values() if isinstance(item, dict) else item)
            elif id(item) in is_open:
                cyclic = True
        else:
            found = False
        if found:
            known.update(dict.fromkeys(opened, True))  # each open one holds it
            return True
    return False


def instance_outside_template(r: Reader) -> None:
    """{instance} and {prefix} mean something only in an instance: elsewhere they would stay
    as written, which is never what was meant (environment values are never expanded)."""
    known: dict[int, bool] = {}
    for key, value in r.data.items():
        if key != "environment" and _mentions(value, ("{instance}", "{prefix}"), known):
            r.error(
                str(key),
                "{instance} and {prefix} are replaced only in a template (a file named "
                "NAME@.yaml, run as NAME@INSTANCE); this definition is not one",
            )
