"""The variables of an init.d script, as its assignments set them (never run):

- a plain value, followed; a value computed by a command is None (unknown);
- ``for NAME in WORDS``: NAME is one literal word, or a loop variable (words.LOOP: a script
  that starts a daemon per value becomes a template, the value being {instance});
- ``NAME=$(mktemp)``: a temp file (what the script does with it is housekeeping);
- ``NAME=$(. FILE && echo $VAR)``: VAR as FILE sets it (apache2's ``PIDFILE`` from envvars);
- the files the script sources: its defaults file (``/etc/default/NAME``), read for the values
  it sets, which stay ``$VAR`` in command lines (expanded at start from env_file), and other
  files (``. $APACHE_ENVVARS``), whose assignments are taken as the script's own.

A file that cannot be read is said, and what it would have set stays unknown.
"""

from __future__ import annotations

import re

from servicectl.commands.importer import shell
from servicectl.commands.importer.walk import LOOP_VALUE, ordered
from servicectl.commands.importer.words import (
    END,
    LOOP,
    SPLIT,
    WHOLE,
    Unknown,
    Value,
    expand_words,
    plain,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from servicectl.commands.importer.words import Vars

TEMP_RE = re.compile(r'^"?\$\(\s*mktemp\b[^)]*\)"?$|^"?`\s*mktemp\b[^`]*`"?$')
FROM_FILE_RE = re.compile(
    r'^"?\$\(\s*(?:\.|source)\s+("?[^\s;&)"]+"?)\s*(?:&&|;)\s*'
    r'echo\s+"?\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?"?\s*\)"?$'
)
ENV_LINE_RE = re.compile(r"^\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_]*=.*$|^\s*(?:#.*)?$")
MAX_DEPTH = 3  # files sourced by files sourced by the script


def assign(
    v: Vars,
    name: str,
    raw: str,
    line: int,
    cond: bool,
    text: str,
    read: Callable[[str], str | None] | None = None,
    source: str = "",
) -> None:
    """``name=raw`` as the script (or a file it sources: ``source``) runs it; under a
    condition (``cond``) a known value is not replaced by a fallback, nor by an unknown."""
    value = _value_of(v, name, raw, line, text, read)
    if source and value.text is not None:
        value.source = source
    old = v.values.get(name)
    if cond and value.text is None and value.source not in ("temp", "loop"):
        return  # computed under a condition (SSHD_OPTS="$SSHD_OPTS $2"): keep what was known
    if cond and old is not None and old.text is not None and not source:
        return  # a fallback under a condition does not replace a known value
    if old is not None and old.text is None and value.text is not None and old.line != line:
        v.fallbacks.append((name, old, value))
    if cond and old is None and value.text is not None:
        value.overridable = v.env_sourced
    v.values[name] = value


def _value_of(
    v: Vars, name: str, raw: str, line: int, text: str, read: Callable[[str], str | None] | None
) -> Value:
    if raw.startswith(LOOP_VALUE):
        return _loop_value(v, name, raw[len(LOOP_VALUE) :].split("\x1f"), line, text)
    if TEMP_RE.match(raw):
        return Value(None, line, how=text, source="temp")
    m = FROM_FILE_RE.match(raw)
    if m and read is not None:
        try:
            found = value_from_file(plain(m.group(1), v), m.group(2), v, read)
        except Unknown:
            found = None
        return Value(found, line, how=text)
    try:
        if raw.startswith("("):
            return Value(None, line, how=text)
        return Value(plain(raw, v).replace(WHOLE, SPLIT), line, how=text)
    except Unknown:
        return Value(None, line, how=text)


def _loop_value(v: Vars, name: str, words: list[str], line: int, text: str) -> Value:
    """A ``for`` loop's variable: its one literal word, else a loop variable (LOOP)."""
    how = f"for {name} in {' '.join(words)}"
    try:
        values = [w for word in words for w in expand_words(word, v)]
    except Unknown:
        values = None
    if values is not None and len(values) == 1 and SPLIT not in values[0]:
        return Value(values[0], line, how=how)
    if not v.in_verb:
        return Value(None, line, how=how, source="loop")
    v.loops[name] = (line, how, values)
    return Value(LOOP + name + END, line, how=how, source="loop")


def value_from_file(path: str, var: str, v: Vars, read: Callable[[str], str | None]) -> str:
    """``$(. FILE && echo $VAR)``: VAR after FILE's assignments (a subshell: the script's own
    variables are not changed). Unknown if the file cannot be read or VAR is not known."""
    text = read(path)
    if text is None:
        raise Unknown(f"{path} cannot be read here")
    sub = v.copy()
    follow(text, sub, read)
    value = sub.values.get(var)
    if value is None or value.text is None:
        raise Unknown(f"{path} does not set {var} to a value known without running it")
    return value.text


def follow(
    text: str, v: Vars, read: Callable[[str], str | None], source: str = "", depth: int = 0
) -> list[str]:
    """Take a sourced file's assignments (``export``, ``unset`` and nested ``.`` too) into
    ``v``; the names it exports. Any other command in it is not run."""
    exported: list[str] = []
    for cmd, cond in ordered(shell.parse(text), None, False, v):
        if not cmd.words:
            for name, raw in cmd.assigns:
                assign(v, name, raw, cmd.line, cond, "", read, source)
            continue
        head = cmd.words[0]
        if head in ("export", "readonly", "declare", "typeset", "local"):
            exported += _declared(v, cmd, cond, read, source, export=head == "export")
        elif head == "unset":
            for word in cmd.words[1:]:
                v.values.pop(word, None)
        elif head in (".", "source") and len(cmd.words) > 1 and depth < MAX_DEPTH:
            try:
                inner = read(plain(cmd.words[1], v))
            except Unknown:
                inner = None
            if inner is not None:
                exported += follow(inner, v, read, source, depth + 1)
    return exported


def _declared(
    v: Vars,
    cmd: shell.Cmd,
    cond: bool,
    read: Callable[[str], str | None] | None,
    source: str,
    export: bool,
) -> list[str]:
    """``export A=1 B``: the assignments made, and the names exported."""
    names = []
    for word in cmd.words[1:]:
        m = shell.ASSIGN_RE.match(word)
        if m:
            assign(v, m.group(1), word[m.end() :], cmd.line, cond, "", read, source)
            names.append(m.group(1))
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", word):
            names.append(word)
    return names if export else []


def env_file_problem(text: str) -> str | None:
    """Why servicectl's env_file reader could not take this defaults file (a line that is not
    ``KEY=VALUE``, a comment or blank), or None."""
    for number, line in enumerate(text.splitlines(), 1):
        if not ENV_LINE_RE.match(line):
            return f"line {number} is shell ({line.strip()[:60]}), not KEY=VALUE"
    return None
