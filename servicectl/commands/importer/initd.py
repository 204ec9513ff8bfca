"""An LSB init.d script (or a Red Hat one, or a plain one) read into a Draft, never run.

The script is parsed (shell.py); its plain variable assignments are followed (words.py); the
verbs of its main ``case "$1"`` are flattened through the functions they call; then the start
verb yields the program and how it is launched, stop the stop schedule, reload the reload
signal, and other verbs that send one signal or run one command become actions.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from servicectl.commands.importer import shell
from servicectl.commands.importer.draft import Draft, one_line
from servicectl.commands.importer.shell import Case, Cmd, Func, Group, If, Loop, Node
from servicectl.commands.importer.words import (
    SPLIT,
    WHOLE,
    Unknown,
    Value,
    Vars,
    expand_words,
    plain,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

HEADER_RE = re.compile(r"^#\s*([A-Za-z-]+):\s*(.*)$")
NOISE = {
    "log_daemon_msg",
    "log_end_msg",
    "log_action_msg",
    "log_progress_msg",
    "log_success_msg",
    "log_failure_msg",
    "log_warning_msg",
    "log_action_begin_msg",
    "log_action_end_msg",
    "log_begin_msg",
    "echo",
    "printf",
    "exit",
    "return",
    "true",
    "false",
    ":",
    "sleep",
    "set",
    "local",
    "test",
    "[",
    "[[",
    "status_of_proc",
    "pidofproc",
    "status",
    "success",
    "failure",
    "echo_success",
    "echo_failure",
    "warning",
    "passed",
    "shift",
    "trap",
    "unset",
    "wait",
    "break",
    "continue",
    "init_is_upstart",
    "pidof",
    "ps",
    "grep",
    "id",
    "logger",
    "tput",
    "stty",
    "is_true",
    "export",
    "readonly",
    "declare",
    "typeset",
    "eval_gettext",
    "gettext",
    "usage",
    "which",
    "type",
    "command",
    "hash",
    "head",
    "tail",
    "cut",
    "awk",
    "sed",
    "tr",
    "basename",
    "dirname",
    "expr",
    "seq",
    "let",
    "getopts",
    "read",
    "cat",
}
STANDARD_VERBS = {
    "start",
    "stop",
    "restart",
    "reload",
    "force-reload",
    "status",
    "try-restart",
    "condrestart",
    "cond-restart",
    "*",
    "usage",
    "help",
    "force-stop",
    "restart-if-running",
}
TEST_NAME_RE = re.compile(
    r"(test|check|verify).*conf|conf.*(test|check)|^(configtest|checkconfig)$", re.I
)
TEST_FLAGS = {
    "-t",
    "-T",
    "-tt",
    "--test",
    "--configtest",
    "--config-test",
    "--test-config",
    "--check-config",
    "-checkconfig",
    "configtest",
    "checkconfig",
    "--check",
}
NOISE_SOURCES = ("/lib/init/vars.sh", "/etc/default/rcS", "/etc/default/locale", "/etc/environment")
FAMILY_SOURCES = {
    "/lib/lsb/init-functions": "lsb",
    "/etc/rc.d/init.d/functions": "redhat",
    "/etc/init.d/functions": "redhat",
    "/lib/init/init-d-script": "init-d-script",
}


@dataclass
class Step:
    """One command on a verb's path, with the variables as they are when it runs."""

    cmd: Cmd
    vars: Vars
    via: tuple[str, ...]  # the functions it was reached through

    def argv(self) -> list[str]:
        out: list[str] = []
        for word in self.cmd.words:
            out += expand_words(word, self.vars)
        return out

    def tool(self) -> str | None:
        """The program's base name, from the first word alone; None if it is computed."""
        if not self.cmd.words:
            return None
        try:
            return os.path.basename(plain(self.cmd.words[0], self.vars))
        except Unknown:
            return None

    def text(self, lines: list[str]) -> str:
        return source_text(lines, self.cmd)

    @property
    def line(self) -> int:
        return self.cmd.line


def source_text(lines: list[str], cmd: Cmd) -> str:
    """The command's text as written (its lines joined)."""
    text = " ".join(x.strip().rstrip("\\") for x in lines[cmd.line - 1 : cmd.end])
    return one_line(text, 200)


@dataclass
class Script:
    path: str
    name: str
    lines: list[str]
    nodes: list[Node]
    funcs: dict[str, Func]
    verbs: dict[str, tuple[list[Node], int, list[str]]]
    main: Case | None
    vars: Vars
    family: str = "plain"
    exists: Callable[[str], bool] = os.path.lexists
    env_files: list[tuple[str, int, str]] | None = None
    top: list[Step] | None = None


def ordered(nodes: list[Node], skip: Node | None, cond: bool = False) -> Iterator[tuple[Cmd, bool]]:
    """Simple commands in order, each with whether it runs only under a condition."""
    for node in nodes:
        if node is skip or isinstance(node, Func):
            continue
        if isinstance(node, Cmd):
            yield node, cond or node.guarded
        elif isinstance(node, If):
            for test, body in node.branches:
                yield from ordered(test, skip, True)
                yield from ordered(body, skip, True)
            yield from ordered(node.otherwise, skip, True)
        elif isinstance(node, Case):
            for _, body, _ in node.arms:
                yield from ordered(body, skip, True)
        elif isinstance(node, Loop):
            yield from ordered(node.body, skip, True)
        elif isinstance(node, Group):
            yield from ordered(node.body, skip, cond)


def _find_main(nodes: list[Node]) -> Case | None:
    """The case statement whose arms include ``start``: first outside functions, then in."""
    later: list[Node] = []
    stack = list(reversed(nodes))
    while stack:
        node = stack.pop()
        if isinstance(node, Case) and any("start" in _patterns(p) for p, _, _ in node.arms):
            return node
        if isinstance(node, If):
            for test, body in reversed(node.branches):
                stack += list(reversed(body)) + list(reversed(test))
            stack += list(reversed(node.otherwise))
        elif isinstance(node, Case):
            for _, body, _ in node.arms:
                stack += list(reversed(body))
        elif isinstance(node, (Loop, Group)):
            stack += list(reversed(node.body))
        elif isinstance(node, Func):
            later += node.body
    return _find_main(later) if later else None


def _patterns(words: list[str]) -> list[str]:
    return [w.strip("'\"") for w in words]


def _funcs(nodes: list[Node]) -> dict[str, Func]:
    out: dict[str, Func] = {}
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, Func):
            out.setdefault(node.name, node)
            stack += node.body
        elif isinstance(node, If):
            for test, body in node.branches:
                stack += test + body
            stack += node.otherwise
        elif isinstance(node, Case):
            for _, body, _ in node.arms:
                stack += body
        elif isinstance(node, (Loop, Group)):
            stack += node.body
    return out


def read_header(lines: list[str], draft: Draft) -> dict[str, tuple[str, int]]:
    """The ``### BEGIN INIT INFO`` block (and Red Hat's chkconfig comments): field -> (value,
    line). Continuation lines (``#`` + two spaces or a tab) extend the field before."""
    fields: dict[str, tuple[str, int]] = {}
    inside = False
    last = ""
    for number, raw in enumerate(lines[:400], 1):
        line = raw.rstrip()
        if line.startswith("### BEGIN INIT INFO"):
            inside = True
            continue
        if line.startswith("### END INIT INFO"):
            inside = False
            continue
        m = HEADER_RE.match(line)
        if m and (
            inside or m.group(1).lower() in ("chkconfig", "description", "pidfile", "processname")
        ):
            last = m.group(1).lower()
            if last not in fields:
                fields[last] = (m.group(2).strip(), number)
            continue
        if inside and last and re.match(r"^#(\t|\s{2,})\S", line):
            value, at = fields[last]
            fields[last] = (value + " " + line[1:].strip(), at)
    return fields


def load(
    path: str, name: str, text: str, draft: Draft, exists: Callable[[str], bool] = os.path.lexists
) -> Script:
    lines = text.split("\n")
    nodes = shell.parse(text)
    funcs = _funcs(nodes)
    main = _find_main(nodes)
    verbs: dict[str, tuple[list[Node], int, list[str]]] = {}
    if main is not None:
        for pats, body, line in main.arms:
            clean = _patterns(pats)
            for p in clean:
                verbs.setdefault(p, (body, line, clean))
    v = Vars(script=path, service=name)
    script = Script(path, name, lines, nodes, funcs, verbs, main, v, exists=exists, env_files=[])
    script.top = _top(script, draft)
    return script


def _assign(v: Vars, name: str, raw: str, line: int, cond: bool, text: str) -> None:
    try:
        value = Value(
            None if raw.startswith("(") else plain(raw, v).replace(WHOLE, SPLIT), line, how=text
        )
    except Unknown:
        value = Value(None, line, how=text)
    old = v.values.get(name)
    if cond and value.text is None:
        return  # computed under a condition (SSHD_OPTS="$SSHD_OPTS $2"): keep what was known
    if cond and old is not None and old.text is not None:
        return  # a fallback under a condition does not replace a known value
    if old is not None and old.text is None and value.text is not None and old.line != line:
        v.fallbacks.append((name, old, value))
    if cond and old is None and value.text is not None:
        value.overridable = v.env_sourced
    v.values[name] = value


def _top(script: Script, draft: Draft) -> list[Step]:
    """The commands outside functions and the main case, run when the script starts; follows
    assignments and sourced files. Returns the steps worth a look (limits, directories...)."""
    v = script.vars
    out: list[Step] = []
    for cmd, cond in ordered(script.nodes, script.main):
        out += _apply(script, Step(cmd, v, ()), cond, draft, follow=True)
    return out


def _apply(script: Script, st: Step, cond: bool, draft: Draft, follow: bool) -> list[Step]:
    """Assignments and ``.`` files change the variables; a call to a script function is
    followed; anything else is returned as a step."""
    cmd, v = st.cmd, st.vars
    text = source_text(script.lines, cmd)
    if not cmd.words:
        for name, raw in cmd.assigns:
            _assign(v, name, raw, cmd.line, cond, text)
        return []
    try:
        first = plain(cmd.words[0], v)
    except Unknown:
        return [st]
    if first in ("export", "readonly", "declare", "typeset", "local"):
        for word in cmd.words[1:]:
            m = shell.ASSIGN_RE.match(word)
            if m:
                _assign(v, m.group(1), word[m.end() :], cmd.line, cond, text)
        return []
    if first in (".", "source") and len(cmd.words) > 1:
        _source(script, cmd, v, draft, text)
        return []
    if follow and first in script.funcs and first not in st.via and len(st.via) < 8:
        out: list[Step] = []
        for sub, sub_cond in ordered(script.funcs[first].body, None, cond):
            out += _apply(script, Step(sub, v, (*st.via, first)), sub_cond, draft, follow)
        return out
    return [st]


def _source(script: Script, cmd: Cmd, v: Vars, draft: Draft, text: str) -> None:
    try:
        path = plain(cmd.words[1], v)
    except Unknown as exc:
        draft.skip(cmd.line, text, f"the file sourced is not known ({exc.why})")
        return
    if path in FAMILY_SOURCES:
        if script.family == "plain" or FAMILY_SOURCES[path] == "init-d-script":
            script.family = FAMILY_SOURCES[path]
        return
    if path in NOISE_SOURCES:
        return
    if path.startswith(("/etc/default/", "/etc/sysconfig/")):
        assert script.env_files is not None
        if all(p != path for p, _, _ in script.env_files):
            script.env_files.append((path, cmd.line, text))
        if script.exists(path):  # a file that is not there sets nothing
            for value in v.values.values():
                value.overridable = True
            v.env_sourced = True
        return
    draft.skip(cmd.line, text, "a sourced file: its settings are not followed")
    v.opaque = v.opaque or path


def steps_of(script: Script, verb: str, draft: Draft, seen: tuple[str, ...] = ()) -> list[Step]:
    """The commands a verb runs, through the functions it calls and ``$0 VERB``."""
    if verb not in script.verbs or verb in seen or len(seen) > 4:
        return []
    body = script.verbs[verb][0]
    v = script.vars.copy()
    out: list[Step] = []
    for cmd, cond in ordered(body, None):
        for st in _apply(script, Step(cmd, v, ()), cond, draft, follow=True):
            again = _self_call(script, st)
            if again:
                out += steps_of(script, again, draft, (*seen, verb))
            else:
                out.append(st)
    return out


def _self_call(script: Script, st: Step) -> str | None:
    """``$0 start``, ``/etc/init.d/NAME stop``, ``service NAME start``: the verb, or None."""
    try:
        argv = st.argv()
    except Unknown:
        return None
    if len(argv) >= 2 and argv[0] in ("service", "invoke-rc.d") and len(argv) >= 3:
        argv = argv[1:]
        argv[0] = script.path if argv[0] == script.name else argv[0]
    if len(argv) >= 2 and (
        argv[0] == script.path
        or os.path.basename(argv[0]) == os.path.basename(script.path)
        and argv[0].startswith("/etc/init.d/")
    ):
        return argv[1] if argv[1] in script.verbs else None
    return None


def program_of(argv: list[str]) -> str:
    return os.path.basename(argv[0]) if argv else ""


def is_noise(st: Step, argv: list[str] | None = None) -> bool:
    """Messages, tests, sleeps, lock and PID file housekeeping: nothing to convert."""
    tool = program_of(argv) if argv else st.tool()
    if tool in NOISE or (tool or "").startswith("log_"):
        return True
    words = st.cmd.words
    if tool == "kill" and len(words) > 1 and words[1] in ("-0", "-s0", "-SIG0"):
        return True  # a liveness probe
    if argv is None:
        return False
    if tool in ("rm", "touch"):
        return all(
            a.startswith("-") or ".pid" in a or "/lock/" in a or "pid" in a.lower()
            for a in argv[1:]
        )
    return False


def is_config_test(st: Step, argv: list[str], program: str | None) -> bool:
    """A configuration test: reached through a function like test_config, or the daemon's
    own program run with a test flag (``nginx -t``, ``sshd -t``)."""
    if any(TEST_NAME_RE.search(f) for f in st.via):
        return True
    if program and argv and (argv[0] == program or program_of(argv) == os.path.basename(program)):
        return any(a in TEST_FLAGS for a in argv[1:])
    return False
