"""An LSB init.d script (or a Red Hat one, or a plain one) read into a Draft, never run.

The script is parsed (shell.py); its plain variable assignments are followed (words.py); the
verbs of its main ``case "$1"`` are flattened through the functions they call; then the start
verb yields the program and how it is launched, stop the stop schedule, reload the reload
signal, and other verbs that send one signal or run one command become actions.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from servicectl.commands.importer import shell
from servicectl.commands.importer.draft import Draft, one_line
from servicectl.commands.importer.initd_source import assign, env_file_problem, follow
from servicectl.commands.importer.shell import Case, Cmd, Func, Group, If, Loop, Node
from servicectl.commands.importer.sysfiles import System
from servicectl.commands.importer.walk import ordered
from servicectl.commands.importer.words import LOOP, Unknown, Value, Vars, expand_words, plain

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

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
    """One command on a verb's path, with the variables as they are when it runs (its
    positional parameters as they were when it was reached: a function's arguments)."""

    cmd: Cmd
    vars: Vars
    via: tuple[str, ...]  # the functions it was reached through
    args: list[str | None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.args = None if self.vars.args is None else list(self.vars.args)

    def argv(self) -> list[str]:
        out: list[str] = []
        for word in self.cmd.words:
            out += self.expand(word)
        return out

    def expand(self, word: str) -> list[str]:
        """One of its words, expanded and split as when it runs."""
        saved, self.vars.args = self.vars.args, self.args
        try:
            return expand_words(word, self.vars)
        finally:
            self.vars.args = saved

    def tool(self) -> str | None:
        """The program's base name, from the first word alone; None if it is computed."""
        if not self.cmd.words:
            return None
        saved, self.vars.args = self.vars.args, self.args
        try:
            return os.path.basename(plain(self.cmd.words[0], self.vars))
        except Unknown:
            return None
        finally:
            self.vars.args = saved

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
    system: System = field(default_factory=System)
    env_files: list[tuple[str, int, str]] = field(default_factory=list)
    top: list[Step] | None = None
    exported: dict[str, int] = field(default_factory=dict)  # name -> line of its export
    env_problem: str | None = None  # why the defaults file cannot be an env_file
    foreign: dict[str, str] = field(default_factory=dict)  # functions of sourced files: file
    programs: set[str] = field(default_factory=set)  # the daemon's programs (config tests)

    def is_function(self, name: str | None) -> bool:
        return name is not None and (name in self.funcs or name in self.foreign)

    def config_test(self, st: Step, argv: list[str]) -> bool:
        """Whether the step is a config test of this script's daemon (is_config_test)."""
        return is_config_test(st, argv, self.programs, [*self.funcs, *self.foreign])

    def exists(self, path: str) -> bool:
        return self.system.exists(path)


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


def load(path: str, name: str, text: str, draft: Draft, system: System | None = None) -> Script:
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
    v.args = [None]  # $1 is the verb (not known here); at boot nothing follows it ($2...)
    script = Script(path, name, lines, nodes, funcs, verbs, main, v, system=system or System())
    script.top = _top(script, draft)
    return script


def _top(script: Script, draft: Draft) -> list[Step]:
    """The commands outside functions and the main case, run when the script starts; follows
    assignments and sourced files. Returns the steps worth a look (limits, directories...).
    A main case inside a function (``hwclocksh "$@"``) is left out of the function's call."""
    v = script.vars
    out: list[Step] = []
    for cmd, cond in ordered(script.nodes, script.main, False, v):
        out += _apply(script, Step(cmd, v, ()), cond, draft, follow=True)
    return out


def _apply(script: Script, st: Step, cond: bool, draft: Draft, follow: bool) -> list[Step]:
    """Assignments and ``.`` files change the variables; a call to a script function is
    followed (with its arguments as $1...); anything else is returned as a step."""
    cmd, v = st.cmd, st.vars
    text = source_text(script.lines, cmd)
    if not cmd.words:
        for name, raw in cmd.assigns:
            assign(v, name, raw, cmd.line, cond, text, script.system.read)
        return []
    try:
        first = plain(cmd.words[0], v)
    except Unknown:
        return [st]
    if first in ("export", "readonly", "declare", "typeset", "local"):
        from servicectl.commands.importer.initd_source import _declared

        for exported in _declared(v, cmd, cond, script.system.read, "", first == "export"):
            script.exported.setdefault(exported, cmd.line)
        return []
    if first in (".", "source") and len(cmd.words) > 1:
        _source(script, cmd, v, draft, text)
        return []
    if first == "read":  # read VAR...: values known only when it runs
        for word in cmd.words[1:]:
            if not word.startswith("-"):
                v.values[word] = Value(None, cmd.line, how=text, source="read")
        return [st]
    if follow and first in script.funcs and first not in st.via and len(st.via) < 8:
        saved = v.args
        v.args = _call_args(cmd, v)
        try:
            out: list[Step] = []
            for sub, sub_cond in ordered(script.funcs[first].body, script.main, cond, v):
                out += _apply(script, Step(sub, v, (*st.via, first)), sub_cond, draft, follow)
            return out
        finally:
            v.args = saved
    return [st]


def _call_args(cmd: Cmd, v: Vars) -> list[str | None]:
    """A function call's arguments, as its $1... (None for one that is not known)."""
    out: list[str | None] = []
    for word in cmd.words[1:]:
        try:
            out += [plain(word, v)] if word.startswith('"') else expand_words(word, v)
        except Unknown:
            out.append(None)
    return out


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
    if path in NOISE_SOURCES or LOOP in path:
        return
    if path.startswith(("/etc/default/", "/etc/sysconfig/")):
        _source_defaults(script, v, path, cmd.line, text)
        return
    content = script.system.read(path)
    if content is None:
        draft.skip(cmd.line, text, f"{path} cannot be read here: its settings are not followed")
        v.opaque = v.opaque or path
        return
    for name in follow(content, v, script.system.read):
        script.exported.setdefault(name, cmd.line)
    for name in _funcs(shell.parse(content)):
        script.foreign.setdefault(name, path)
    draft.note(f"line {cmd.line}: {path} was read for the variables it sets (never run)")


def _source_defaults(script: Script, v: Vars, path: str, line: int, text: str) -> None:
    """The defaults file: env_file (if it exists). Read where it can be, for the values it
    sets: those stay $VAR in command lines (expanded from env_file at start), and decide the
    script's conditions. A file that is shell, not KEY=VALUE lines, is no env_file: its values
    are then written into the definition."""
    if all(p != path for p, _, _ in script.env_files):
        script.env_files.append((path, line, text))
    v.sourced_at = v.sourced_at or line  # what is set before it is the administrator's knob
    if not script.exists(path):  # a file that is not there sets nothing
        return
    for value in v.values.values():
        value.overridable = True
    v.env_sourced = True
    content = script.system.read(path)
    if content is None:
        return
    problem = env_file_problem(content)
    if problem is not None:
        script.env_problem = f"{path}: {problem}"
    v.defaults_read = True
    follow(content, v, script.system.read, "" if problem else "defaults")


def steps_of(script: Script, verb: str, draft: Draft, seen: tuple[str, ...] = ()) -> list[Step]:
    """The commands a verb runs, through the functions it calls and ``$0 VERB``; $1 is the
    verb itself (and nothing follows it: what ``service NAME VERB`` passes at boot)."""
    if verb not in script.verbs or verb in seen or len(seen) > 4:
        return []
    body = script.verbs[verb][0]
    v = script.vars.copy()
    v.args = [verb]
    v.in_verb = True
    out: list[Step] = []
    for cmd, cond in ordered(body, None, False, v):
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


_VAR_REF = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
SHELL_WORDS = {"[", "[[", "test", "true", "false", ":", "!"}
# A program that is a configuration checker of its own (named-checkconf, apachectl
# configtest's cousins): its name says so.
CHECKER_RE = re.compile(r"check-?conf|conf-?check|configtest|checkconfig", re.I)


def _temp_file_work(st: Step) -> bool:
    """``rm``/``cat``/``touch`` of a temp file the script made with mktemp: housekeeping."""
    if st.tool() not in ("rm", "cat", "touch", "mv", "cp"):
        return False
    names = {m.group(1) for w in st.cmd.words[1:] for m in _VAR_REF.finditer(w)}
    values = st.vars.values
    return any(n in values and values[n].source == "temp" for n in names)


def is_noise(st: Step, argv: list[str] | None = None) -> bool:
    """Messages, tests, sleeps, lock, PID and temp file housekeeping: nothing to convert."""
    tool = program_of(argv) if argv else st.tool()
    if tool in NOISE or (tool or "").startswith("log_") or _temp_file_work(st):
        return True
    words = st.cmd.words
    if tool == "kill" and len(words) > 1 and words[1] in ("-0", "-s0", "-SIG0"):
        return True  # a liveness probe
    if argv is None:
        return False
    if tool in ("rm", "touch"):
        return all(
            a == "" or ".pid" in a or "/lock/" in a or "pid" in a.lower()
            for a in argv[1:]
            if not a.startswith("-")
        )
    return False


def _stem(name: str) -> str:
    base = os.path.basename(name)
    return re.sub(r"(ctl|d|-server|-admin|-daemon)$", "", base) or base


def related(tool: str, programs: set[str]) -> bool:
    """Whether ``tool`` is the daemon's program or its own tool (apache2ctl for apache2,
    mariadb-admin for mariadbd): the same name, but for ctl, d, -server, -admin."""
    stem = _stem(tool)
    for program in programs:
        other = _stem(program)
        if (
            stem == other
            or min(len(stem), len(other)) >= 4
            and (stem.startswith(other) or other.startswith(stem))
        ):
            return True
    return False


def is_config_test(
    st: Step, argv: list[str], programs: set[str], functions: Iterable[str] = ()
) -> bool:
    """A configuration test, decided positively: a checker of its own (named-checkconf), or
    the daemon's program or its own tool (``programs``) run with a test flag (``nginx -t``,
    ``apache2ctl configtest``), from a function named like test_config, or as a guard whose
    failure makes the script give up (``if ! exim4 -bV; then exit 1``). Housekeeping around
    a test (``rm -f $TMPFILE``) is never one."""
    from servicectl.commands.importer.commands import UTILITIES, unwrap

    words = unwrap(argv).argv
    tool = program_of(words)
    if not tool or tool in NOISE or tool in SHELL_WORDS or tool in UTILITIES:
        return False
    if tool in functions:
        return False  # a shell function of the script (or of a file it sources): not a program
    if CHECKER_RE.search(tool):
        return True
    if not related(tool, programs):
        return False
    flagged = any(a in TEST_FLAGS for a in words[1:])
    via = any(TEST_NAME_RE.search(f) for f in st.via)
    return flagged or via or st.cmd.aborts and not st.cmd.background
