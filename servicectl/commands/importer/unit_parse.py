"""Reading a systemd unit file: Key=Value entries, specifiers, Exec command lines."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass

from servicectl.commands.importer.commands import kill_signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.commands.importer.draft import Draft

STATIC_SPECIFIERS = {
    "t": "/run",
    "S": "/var/lib",
    "C": "/var/cache",
    "L": "/var/log",
    "E": "/etc",
    "T": "/tmp",
    "V": "/var/tmp",
    "%": "%",
}
TEST_FLAGS = {
    "-t",
    "-T",
    "-tt",
    "--test",
    "--configtest",
    "configtest",
    "--config-test",
    "--test-config",
    "--check-config",
    "checkconfig",
    "--check",
    "-n",
}


@dataclass
class Entry:
    section: str
    key: str
    value: str
    line: int

    @property
    def text(self) -> str:
        return f"{self.key}={self.value}"


def parse(text: str, draft: Draft) -> list[Entry]:
    """``[Section]`` and ``Key=Value`` lines, continuation lines joined; the rest listed."""
    out: list[Entry] = []
    section = ""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        number = i + 1
        line = lines[i].strip()
        i += 1
        while line.endswith("\\") and i < len(lines):
            nxt = lines[i].strip()
            i += 1
            if nxt.startswith(("#", ";")):
                continue
            line = line[:-1] + " " + nxt
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, eq, value = line.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z0-9_-]+", key.strip()):
            draft.skip(number, line, "not a Key=Value line")
            continue
        out.append(Entry(section, key.strip(), value.strip(), number))
    return out


def unit_names(stem: str) -> tuple[str, str, str]:
    """``foo@.service`` -> (definition name ``foo@``, prefix ``foo``, instance text)."""
    prefix, at, inst = stem.partition("@")
    if at and not inst:
        return stem, prefix, "{instance}"
    return stem, prefix, inst


class Specifiers:
    def __init__(self, stem: str, draft: Draft) -> None:
        self.name, self.prefix, self.instance = unit_names(stem)
        self.full = f"{self.prefix}@{self.instance}" if "@" in stem else stem
        self.user = ""
        self.draft = draft

    def __call__(self, value: str, line: int) -> str:
        def one(m: re.Match[str]) -> str:
            c = m.group(1)
            if c in ("i", "I"):
                return self.instance
            if c == "n":
                return self.full + ".service"
            if c == "N":
                return self.full
            if c in ("p", "P"):
                return self.prefix
            if c in STATIC_SPECIFIERS:
                return STATIC_SPECIFIERS[c]
            if c in ("u", "U") and self.user:
                return self.user
            self.draft.skip(line, value, f"the specifier %{c} is left as written: replace it")
            return "%" + c

        return re.sub(r"%(.)", one, value)


def split_exec(value: str, draft: Draft, line: int, key: str) -> list[str] | None:
    """An Exec*= command line: prefixes stripped (and said), then split like systemd does."""
    prefixes = ""
    while value[:1] in ("-", "@", "+", "!", ":") and value:
        prefixes += value[0]
        value = value[1:]
    try:
        argv = shlex.split(value)
    except ValueError as exc:
        draft.skip(line, f"{key}={value}", f"cannot be split: {exc}")
        return None
    if not argv:
        return None
    meaning = {
        "-": "its failure is ignored by systemd; servicectl treats a failed start as a failure",
        "@": "the second word was argv[0]; servicectl runs the program under its own name",
        "+": "it runs with full privileges (as root)",
        "!": "it runs with full privileges (as root; the program drops them itself)",
        ":": "no variable expansion: '$' is kept literally",
    }
    for p in dict.fromkeys(prefixes):
        draft.note(f"line {line}: {key}: the prefix '{p}' was dropped ({meaning[p]})")
    if "@" in prefixes and len(argv) >= 2:
        argv = [argv[0], *argv[2:]]
    if ":" in prefixes:
        argv = [a.replace("$", "$$") for a in argv]
    return argv


def is_test(argv: list[str], program: str | None) -> bool:
    base = os.path.basename(argv[0])
    if program and base == os.path.basename(program):
        return any(a in TEST_FLAGS for a in argv[1:])
    return bool(re.search(r"check|test", base)) or "configtest" in argv[1:]


def mainpid_signal(argv: list[str]) -> str | None:
    """``kill -HUP $MAINPID`` (``/bin/kill -s HUP ${MAINPID}``): the signal, else None."""
    if os.path.basename(argv[0]) != "kill" or not any("MAINPID" in a for a in argv[1:]):
        return None
    return kill_signal(argv)
