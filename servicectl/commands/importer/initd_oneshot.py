"""One-shot init.d scripts: no daemon, no PID file, a start that runs a tool to its end (procps:
``sysctl --system``; hwclock.sh: its stop saves the clock; kmod: modprobe for each module
listed) become ``type: oneshot``, with their stop's work as ``stop_command``.

A script is a task, not a daemon, when what it starts is run in the foreground (no
``start-stop-daemon``, no ``&``), it names no PID file (or ``PIDFILE=none``, init-d-script's
word for it) and its stop sends no signal. Work servicectl cannot say as one command (a loop
over values read when it runs) is left to the script itself: the definition runs
``SCRIPT start`` (and ``SCRIPT stop``), and says so.
"""

from __future__ import annotations

import os

from servicectl.commands.importer import commands as C
from servicectl.commands.importer.initd import Step, is_noise, program_of, steps_of
from servicectl.commands.importer.initd_env import command_words
from servicectl.commands.importer.words import LOOP, Unknown

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.commands.importer.draft import Draft
    from servicectl.commands.importer.initd import Script
    from servicectl.commands.importer.shell import Node

KILLERS = {"kill", "killall", "pkill", "killproc", "start-stop-daemon", "killall5"}
SETUP = {"ulimit", "umask", "cd", "mkdir", "chown", "chmod", "install"}
PID_VARS = ("PIDFILE", "PID_FILE", "PID", "pidfile")


def names_pid_file(script: Script, draft: Draft) -> bool:
    """Whether the script names a PID file (``PIDFILE=none`` names none)."""
    if "_header_pidfile" in draft.values:
        return True
    for var in PID_VARS:
        value = script.vars.values.get(var)
        if value is not None and value.text not in ("", "none"):
            return True
    return False


WATCHERS = {"status_of_proc", "pidofproc", "pidof", "pgrep", "ps", "killproc", "kill"}


def status_watches(script: Script, draft: Draft) -> bool:
    """Whether the status verb looks for a running process (status_of_proc, pidof, the
    daemon's own tool: ``fail2ban-client ping``): a daemon's script, not a task's."""
    if "status" in script.verbs:
        if _asks_a_command(script, script.verbs["status"][0]):
            return True  # RUNNING=$(running $INSTANCE): postfix's
        steps = steps_of(script, "status", draft)
    elif script.family == "init-d-script":
        steps = _override(script, ("do_status_override", "do_status"))
        if not any(n in script.funcs for n in ("do_status_override", "do_status")):
            return True  # init-d-script's own: status_of_proc
    else:
        return False
    for st in steps:
        tool = st.tool()
        if tool in WATCHERS or tool == "start-stop-daemon":
            return True
        if not is_noise(st) and not script.is_function(tool) and tool not in ("exit", "return"):
            return True
    return False


def _asks_a_command(script: Script, body: list[Node], depth: int = 0) -> bool:
    """Whether a verb's body (and the functions it calls) takes a command's output."""
    from servicectl.commands.importer.walk import ordered

    for cmd, _ in ordered(body, None):
        if any("$(" in raw or "`" in raw for _, raw in cmd.assigns):
            return True
        name = cmd.words[0] if cmd.words else ""
        inner = script.funcs[name].body if name in script.funcs and depth < 3 else []
        if inner and _asks_a_command(script, inner, depth + 1):
            return True
    return False


def stop_signals(script: Script, draft: Draft) -> bool:
    """Whether the stop verb (or init-d-script's do_stop) sends a signal to anything."""
    return any(st.tool() in KILLERS for st in _stop_steps(script, draft))


def _stop_steps(script: Script, draft: Draft) -> list[Step]:
    if "stop" in script.verbs:
        return steps_of(script, "stop", draft)
    if script.family == "init-d-script":
        return _override(script, ("do_stop_cmd_override", "do_stop_cmd", "do_stop"))
    return []


def _override(script: Script, names: tuple[str, ...]) -> list[Step]:
    """The steps of the first of init-d-script's functions the script defines itself."""
    from servicectl.commands.importer.walk import ordered

    for name in names:
        if name in script.funcs:
            v = script.vars.copy()
            v.in_verb = True
            return [
                Step(c, v, (name,)) for c, _ in ordered(script.funcs[name].body, None, False, v)
            ]
    return []


def is_task(script: Script, draft: Draft, st: Step, launch: C.Launch) -> bool:
    """A start line that runs a tool to its end: in the foreground (start-stop-daemon without
    --background runs it so too), with no PID file named, and a stop that signals nothing."""
    if launch.tool not in ("direct", "start-stop-daemon") or st.cmd.background:
        return False
    if "pidfile" in launch.opts or launch.flags & {"background", "make-pidfile", "notify-await"}:
        return False
    if any(a.endswith(".pid") for a in launch.argv):
        return False
    if names_pid_file(script, draft) or stop_signals(script, draft):
        return False
    return not status_watches(script, draft)


def work(script: Script, steps: list[Step]) -> tuple[list[tuple[Step, list[str]]], list[Step]]:
    """The steps that do the task (not messages, tests, directories or limits), with their
    words; and those whose words are known only when they run."""
    done: list[tuple[Step, list[str]]] = []
    computed: list[Step] = []
    for st in steps:
        if st.tool() in script.foreign:
            computed.append(st)  # a function of a file it sources: not followed
            continue
        if is_noise(st) or script.is_function(st.tool()):
            continue
        try:
            argv = st.argv()
        except Unknown:
            computed.append(st)
            continue
        if not argv or is_noise(st, argv) or program_of(argv) in SETUP:
            continue
        if C.dir_command(argv) is not None or script.config_test(st, argv):
            continue
        if any(LOOP in a for a in argv):
            computed.append(st)
            continue
        done.append((st, argv))
    return done, computed


def task(
    script: Script, draft: Draft, steps: list[Step], argv: list[str] | None = None
) -> str | None:
    """A script whose start runs no daemon: ``type: oneshot`` with the start's work as command
    (``argv``: what its start line runs, through start-stop-daemon); None, with draft.fatal,
    if the script is no task: its stop signals a daemon."""
    none = (
        "its start verb runs no program servicectl can find (no start-stop-daemon --start, "
        "start_daemon, daemon, or direct run of $DAEMON)"
    )
    if stop_signals(script, draft) or names_pid_file(script, draft):
        draft.fatal = f"{none}, yet it stops a daemon by signal"
        return None
    if not steps and script.main is not None:
        steps = [st for st in script.top or [] if st.line > script.main.line]  # kmod's loop
    done, computed = work(script, steps)
    if argv is not None:
        done, computed = [(steps[0], argv)], []
    foreign = [st for st in computed if st.tool() in script.foreign]
    if foreign:
        name = foreign[0].tool() or ""
        draft.fatal = (
            f"{none}; line {foreign[0].line}: it calls {name}, a function of "
            f"{script.foreign[name]}, which is not followed"
        )
        return None
    if not done and not computed and not any(work(script, _stop_steps(script, draft))):
        draft.fatal = none
        return None
    line = script.verbs["start"][1] if "start" in script.verbs else 1
    if computed or len(done) > 1:
        return _whole_script(script, draft, "start", (computed or [d for d, _ in done])[0])
    if not done:
        draft.set("command", ["/bin/true"], line, "start)")
        draft.note(f"line {line}: its start does nothing: command is /bin/true; stop does the work")
    else:
        st, argv = done[0]
        text = st.text(script.lines)
        draft.set("command", command_words(draft, argv, st.line, text), st.line, text)
    draft.set("type", "oneshot", line, "no daemon: a task run to its end")
    return str(draft.values["command"][0])


def _whole_script(script: Script, draft: Draft, verb: str, st: Step) -> str:
    """The script itself runs the work that no single command can say."""
    text = st.text(script.lines)
    key = "command" if verb == "start" else "stop_command"
    draft.set(key, [script.path, verb], st.line, text)
    draft.set("type", "oneshot", st.line, "no daemon: a task run to its end")
    draft.note(
        f"line {st.line}: its {verb} does more than one command can say ({text}): the "
        f"definition runs {script.path} {verb} itself; keep that script (servicectl initd and "
        "unit will not replace a file the definition runs)"
    )
    return script.path


def verbs(script: Script, draft: Draft) -> None:
    """A oneshot's other verbs: stop's work as stop_command; reload is a restart."""
    done, computed = work(script, _stop_steps(script, draft))
    if computed or len(done) > 1:
        _whole_script(script, draft, "stop", (computed or [d for d, _ in done])[0])
    elif done:
        st, argv = done[0]
        text = st.text(script.lines)
        draft.set("stop_command", command_words(draft, argv, st.line, text), st.line, text)
    for verb in ("reload", "force-reload"):
        if verb in script.verbs:
            line = script.verbs[verb][1]
            draft.note(f"line {line}: {verb}: a oneshot is not reloaded; restart runs it again")
            break
    if os.path.basename(str(draft.values.get("command", [""])[0])) == "true":
        draft.values.pop("_header_pidfile", None)
