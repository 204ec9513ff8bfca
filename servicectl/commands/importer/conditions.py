"""Deciding a script's conditions where the import can: ``[ -n "$X" ]``, ``[ "$A" = b ]``,
``test -z ...`` and ``case WORD in`` over values the script itself sets (or its defaults file).

A condition that depends on the machine (``[ -x /usr/sbin/foo ]``), on a command's output or on
anything else not known is undecided (None): the reader then takes every branch, as before. The
values used are the defaults file's own, not the references kept for the command line.
"""

from __future__ import annotations

import fnmatch
import re

from servicectl.commands.importer.words import LOOP, SPLIT, WHOLE, Unknown, expand_words, plain

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.commands.importer.shell import Node
    from servicectl.commands.importer.words import Vars

_UNARY = {"-n", "-z"}
# An administrator's on/off switch in the defaults file (ENABLED=false, START_DAEMON=no): a
# condition on it is not decided (the definition says how to start either way); its value
# becomes ``enabled`` (initd_map.py).
SWITCH_RE = re.compile(r"^(?:[A-Z0-9_]*_)?(?:ENABLED?|START|RUN|DISABLED?)(?:_[A-Z0-9_]*)?$")
_REF = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_BINARY = {"=", "==", "!="}


def _words(words: list[str], v: Vars) -> list[str] | None:
    """The words of a test after expansion; None if one is not known."""
    before = v.resolve
    v.resolve = True
    try:
        out: list[str] = []
        for word in words:
            quoted = word.startswith(('"', "'"))
            expanded = [plain(word, v)] if quoted else expand_words(word, v)
            if any(SPLIT in w or WHOLE in w or LOOP in w for w in expanded):
                return None
            out += expanded
        return out
    except Unknown:
        return None
    finally:
        v.resolve = before


def _test(args: list[str]) -> bool | None:
    """``test``'s own expression (without ``[``/``]``): the string forms only."""
    if args[:1] == ["!"]:
        inner = _test(args[1:])
        return None if inner is None else not inner
    if len(args) == 1:
        return args[0] != ""
    if len(args) == 2 and args[0] in _UNARY:
        return (args[1] != "") == (args[0] == "-n")
    if len(args) == 3 and args[1] in _BINARY:
        same = args[0] == args[2]
        return same if args[1] != "!=" else not same
    return None


def decide(nodes: list[Node], v: Vars) -> bool | None:
    """Whether a condition (the commands between ``if`` and ``then``) holds; None if it cannot
    be told without running anything."""
    from servicectl.commands.importer.shell import Cmd

    if len(nodes) != 1 or not isinstance(nodes[0], Cmd):
        return None
    cmd = nodes[0]
    if cmd.assigns or not cmd.words:
        return None
    head = cmd.words[0]
    if head in ("true", ":", "false"):
        result: bool | None = head != "false"
    elif head in ("[", "test"):
        if _switch(cmd.words, v):
            return None
        words = cmd.words[1:]
        if head == "[":
            if words[-1:] != ["]"]:
                return None
            words = words[:-1]
        args = _words(words, v)
        result = None if args is None else _test(args)
    else:
        return None
    if result is None:
        return None
    return not result if cmd.negated else result


def _switch(words: list[str], v: Vars) -> bool:
    """Whether the test reads an on/off switch of the defaults file (noted in ``v``)."""
    found = False
    for word in words:
        for name in _REF.findall(word):
            value = v.values.get(name)
            if (
                SWITCH_RE.match(name)
                and value is not None
                and (value.source == "defaults" or value.line < v.sourced_at)
            ):
                v.switches[name] = value.text or ""
                found = True
    return found


def choose_arm(word: str, patterns: list[list[str]], v: Vars) -> int | None:
    """The index of the ``case`` arm that ``word`` selects (-1: none does); None if the word
    is not known."""
    found = _words([word if word.startswith('"') else f'"{word}"'], v)
    if found is None or len(found) != 1:
        return None
    value = found[0]
    for index, pats in enumerate(patterns):
        for pat in pats:
            text = _words([pat], v)
            if text is None:
                return None
            if any(fnmatch.fnmatchcase(value, t) for t in text or [""]):
                return index
    return -1
