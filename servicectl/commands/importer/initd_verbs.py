"""The verbs of an init.d script other than start: stop (the stop schedule), reload (the reload
signal or command), restart (a config test or schedule found only there) and extra verbs that
become actions (``rotate``; ``graceful-stop``, another way to stop, with ``stops``; a verb
that runs the daemon's own tool: ``postfix flush``)."""

from __future__ import annotations

import re

from servicectl.commands.importer import commands as C
from servicectl.commands.importer.commands import UTILITIES
from servicectl.commands.importer.draft import Draft, retry_schedule, sig
from servicectl.commands.importer.initd import (
    STANDARD_VERBS,
    TEST_NAME_RE,
    Script,
    Step,
    is_noise,
    program_of,
    related,
    steps_of,
)
from servicectl.commands.importer.initd_env import command_words
from servicectl.commands.importer.initd_steps import launcher, set_check, step_words
from servicectl.commands.importer.words import LOOP, Unknown, shown

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

STOPPING_SIGNALS = ("TERM", "KILL", "INT", "QUIT")
# A verb that stops the daemon another way (its action gets stops: true): by its name, or the
# last word of its command (``postfix abort``, ``apache2ctl graceful-stop``).
STOP_WORDS = {"stop", "graceful-stop", "abort", "force-stop", "shutdown", "halt", "kill"}
CHECK_VERBS = {"check", "configtest", "checkconfig", "testconfig", "configcheck", "test"}


def _signal_of(argv: list[str]) -> str | None:
    """The signal a stop/reload line sends to the daemon, or None if it sends none."""
    tool = program_of(argv)
    if tool == "start-stop-daemon":
        launch = C.ssd(argv)
        if "stop" not in launch.flags:
            return None
        return sig(launch.opts["signal"]) if "signal" in launch.opts else "TERM"
    if tool in ("kill", "killproc"):
        return C.kill_signal(argv)
    return None


def _significant(
    script: Script, draft: Draft, steps: list[Step]
) -> list[tuple[Step, list[str] | None]]:
    """The steps that do something, each with its words (None: computed when it runs)."""
    out = []
    for st in steps:
        if is_noise(st):
            continue
        argv: list[str] | None
        if st.tool() in ("kill", "killproc", "start-stop-daemon"):
            argv = step_words(
                st, script, draft, lenient=True, quiet=True
            )  # the target may be computed
        else:
            try:
                argv = st.argv()
            except Unknown:
                argv = None
        if argv is not None and argv and LOOP in argv[0]:
            argv = None  # a program found by a loop (for p in $PATH): known only when it runs
        if argv is not None and (not argv or is_noise(st, argv)):
            continue
        if (
            argv is not None
            and program_of(argv) == "start-stop-daemon"
            and "test" in C.ssd(argv).flags
        ):
            continue
        out.append((st, argv))
    return out


def stop(script: Script, draft: Draft) -> None:
    steps = steps_of(script, "stop", draft)
    done = False
    for st, argv in _significant(script, draft, steps):
        text = st.text(script.lines)
        if argv is None:
            draft.skip(st.line, text, "in stop: computed by a command; servicectl stops by signal")
            continue
        if script.config_test(st, argv):
            continue  # it decides how to stop; servicectl's check_command runs before restart
        signal = _signal_of(argv)
        if signal is None or done:
            if program_of(argv) not in UTILITIES or signal is None:
                draft.skip(st.line, text, "in stop: servicectl stops the service by signal")
            continue
        done = True
        _stop_line(draft, argv, signal, st.line, text)


def _stop_line(draft: Draft, argv: list[str], signal: str, line: int, text: str) -> None:
    if program_of(argv) == "start-stop-daemon":
        launch = C.ssd(argv)
        if "retry" in launch.opts:
            schedule, why = retry_schedule(launch.opts["retry"], signal)
            if schedule:
                draft.set("stop_schedule", schedule, line, text)
            else:
                draft.skip(line, f"--retry {shown(launch.opts['retry'])}", why)
                if signal != "TERM":
                    draft.set("stop_signal", signal, line, text)
            return
    if program_of(argv) == "killproc" and "-d" in argv:
        delay = argv[argv.index("-d") + 1] if argv.index("-d") + 1 < len(argv) else ""
        if delay.isdigit():
            draft.set("stop_timeout", int(delay), line, text)
    if signal != "TERM":
        draft.set("stop_signal", signal, line, text)


def reload(script: Script, draft: Draft) -> None:
    verb = (
        "reload"
        if "reload" in script.verbs
        else "force-reload"
        if "force-reload" in script.verbs
        else None
    )
    if verb is None:
        draft.set("reload", False, None, "no reload verb in the script")
        return
    body, line, patterns = script.verbs[verb]
    if "restart" in patterns:
        draft.set("reload", False, line, f"{'|'.join(patterns)}): reload is a restart")
        return
    sent = one_action(
        script, draft, verb, on_test=lambda st, argv: set_check(draft, st, script, argv)
    )
    if sent is None:
        draft.set("reload", False, line, f"{verb}) does not reload the daemon")
        return
    kind, value, st = sent
    text = st.text(script.lines)
    if kind == "signal" and value in STOPPING_SIGNALS:
        draft.set("reload", False, st.line, f"{verb}) sends {value}: that stops the daemon")
        return
    if kind == "signal":
        draft.set("reload_signal", value, st.line, text)
    else:
        assert isinstance(value, list)
        draft.set("reload_command", command_words(draft, value, st.line, text), st.line, text)


class _Sorted:
    """A verb's steps by what they do."""

    def __init__(self) -> None:
        self.signals: list[tuple[Step, str]] = []
        self.own: list[tuple[Step, list[str]]] = []  # the daemon's own tool (apache2ctl)
        self.other: list[tuple[Step, list[str]]] = []
        self.tests: list[tuple[Step, list[str]]] = []
        self.computed: list[Step] = []


def _sort(script: Script, draft: Draft, verb: str) -> _Sorted | None:
    out = _Sorted()
    for st, argv in _significant(script, draft, steps_of(script, verb, draft)):
        if argv is None:
            out.computed.append(st)
            continue
        signal = _signal_of(argv)
        if signal is not None:
            out.signals.append((st, signal))
        elif script.config_test(st, argv):
            out.tests.append((st, argv))
        elif launcher(script, st, argv) is not None:
            draft.skip(st.line, st.text(script.lines), f"in {verb}: starts the program again")
            return None
        elif related(program_of(C.unwrap(argv).argv), script.programs):
            out.own.append((st, argv))
        else:
            out.other.append((st, argv))
    return out


def one_action(
    script: Script,
    draft: Draft,
    verb: str,
    on_test: Callable[[Step, list[str]], None] | None = None,
) -> tuple[str, object, Step] | None:
    """What a verb does, if it is one thing: a signal to the daemon (``("signal", "USR1",
    step)``), or one command (``("command", argv, step)``), preferring the daemon's own tool;
    what runs beside it is listed. None (with the reason listed) otherwise."""
    got = _sort(script, draft, verb)
    if got is None:
        return None
    if on_test is not None:
        for st, argv in got.tests:
            on_test(st, argv)
    chosen: tuple[str, object, Step] | None = None
    beside: list[Step] = [st for st, _ in got.other] + got.computed
    if len(got.signals) == 1 and not got.own:
        chosen = ("signal", got.signals[0][1], got.signals[0][0])
    elif len(got.own) == 1 and not got.signals:
        chosen = ("command", got.own[0][1], got.own[0][0])
    elif not got.signals and not got.own and len(got.other) == 1 and not got.computed:
        chosen, beside = ("command", got.other[0][1], got.other[0][0]), []
    elif not (got.signals or got.own or got.other) and got.tests and on_test is None:
        chosen = ("command", got.tests[0][1], got.tests[0][0])
    if chosen is None:
        steps = [st for st, _ in got.signals] + [st for st, _ in got.own + got.other]
        first = steps + got.computed
        if first:
            why = "does more than send one signal or run one command"
            draft.skip(first[0].line, f"{verb})", why)
        return None
    for st in beside:
        draft.skip(st.line, st.text(script.lines), f"in {verb}: servicectl does not run it")
    return chosen


def restart(script: Script, draft: Draft) -> None:
    """A config test or a --retry schedule found only in restart still counts."""
    for st in steps_of(script, "restart", draft):
        try:
            argv = st.argv()
        except Unknown:
            continue
        if argv and script.config_test(st, argv):
            set_check(draft, st, script, argv)
        elif (
            argv
            and program_of(argv) == "start-stop-daemon"
            and "stop" in C.ssd(argv).flags
            and "stop_schedule" not in draft.values
            and "retry" in C.ssd(argv).opts
        ):
            signal = _signal_of(argv) or "TERM"
            _stop_line(draft, argv, signal, st.line, st.text(script.lines))


def _resolved(script: Script, draft: Draft, verb: str) -> list[tuple[str, ...]]:
    """What a verb runs, as words (a computed step as its text): to compare two verbs."""
    out = []
    for st, argv in _significant(
        script,
        Draft(draft.name, draft.source, draft.kind),
        steps_of(script, verb, Draft(draft.name, draft.source, draft.kind)),
    ):
        out.append(tuple(argv) if argv is not None else (st.text(script.lines),))
    return out


def _alias_action(
    script: Script, draft: Draft, verb: str, standard: str, line: int, patterns: list[str]
) -> tuple[str, object, Step] | None:
    """A verb in the arm of a standard one (``stop|graceful-stop)``) that does something else
    there (``apache2ctl $1``): the one step where it differs, as an action."""
    mine = _resolved(script, draft, verb)
    theirs = set(_resolved(script, draft, standard))
    if [w for w in mine if w not in theirs] == []:
        draft.skip(line, f"{'|'.join(patterns)})", f"{verb} does what {standard} does")
        return None
    differs = [
        (st, argv)
        for st, argv in _significant(script, draft, steps_of(script, verb, draft))
        if argv is not None and tuple(argv) not in theirs
    ]
    if len(differs) != 1:
        why = f"{verb}: does more than one thing beside what {standard} does"
        draft.skip(line, f"{'|'.join(patterns)})", why)
        return None
    st, argv = differs[0]
    signal = _signal_of(argv)
    return ("signal", signal, st) if signal else ("command", argv, st)


def extra_verbs(script: Script, draft: Draft) -> None:
    actions: dict[str, dict[str, object]] = {}
    origin: list[str] = []
    first_line = None
    for verb, (_, line, patterns) in script.verbs.items():
        if verb in STANDARD_VERBS or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,39}", verb):
            continue
        standard = next((p for p in patterns if p in STANDARD_VERBS and p != "*"), None)
        if standard is not None:
            got = _alias_action(script, draft, verb, standard, line, patterns)
        else:
            got = one_action(script, draft, verb)
        if got is None:
            continue
        kind, value, st = got
        text = st.text(script.lines)
        spec: dict[str, object] = {kind: value}
        if kind == "command":
            assert isinstance(value, list)
            spec[kind] = command_words(draft, value, st.line, text)
            if _is_check_verb(verb) and related(program_of(C.unwrap(value).argv), script.programs):
                set_check(draft, st, script, value)  # postfix check: a config test of its own
        last = str(spec.get("command", [""])[-1]) if kind == "command" else ""  # type: ignore[index]
        if standard == "stop" or verb in STOP_WORDS or last in STOP_WORDS:
            spec["stops"] = True
        actions[verb] = spec
        origin.append(f"{verb}: {text}")
        first_line = first_line or st.line
    if actions:
        draft.set("actions", actions, first_line, "; ".join(origin))


def _is_check_verb(verb: str) -> bool:
    return verb in CHECK_VERBS or bool(TEST_NAME_RE.search(verb))


def variable_notes(script: Script, draft: Draft) -> None:
    v = script.vars
    for name, value in v.unknown.items():
        if name == "NAME":
            draft.skip(
                value.line,
                value.how,
                f"NAME is computed; the service's name {script.name} was used",
            )
    over = sorted(
        n
        for n in v.used
        if n in v.values
        and v.values[n].overridable
        and v.values[n].text
        and n not in ("PATH", "NAME", "DESC", "DAEMON", "SCRIPTNAME", "DAEMONNAME")
    )
    for name, old, new in v.fallbacks:
        if name in v.used:
            draft.skip(
                old.line,
                old.how,
                f"{name} is computed by a command; "
                f"the fallback of line {new.line} ({new.text}) was used",
            )
    env = draft.values.get("env_file")
    if env and over and not v.defaults_read:
        draft.note(
            f"the script's own values were used for {', '.join(over[:12])}; {env} may set "
            "them differently (it is not read at import)"
        )
    for name in sorted(v.defaulted):
        if env and not v.defaults_read:
            draft.note(f"${{{name}:-...}}: the script's default was used; {env} may set {name}")
    _unset(script, draft)


UNSET_KEYS = ("command", "check_command", "reload_command", "stop_command", "pid_file")


def _unset(script: Script, draft: Draft) -> None:
    """A variable read in a line that made a key, but set nowhere (not by the script, nor by
    a file it sources): it expanded to nothing, and is listed, never lost silently."""
    for key in UNSET_KEYS:
        origin = draft.origins.get(key, "")
        where, _, text = origin.partition(": ")
        line = int(where[5:]) if where.startswith("line ") and where[5:].isdigit() else None
        for name in sorted(script.vars.unset):
            if re.search(rf"\$\{{?{name}(?![A-Za-z0-9_])", text):
                why = f"${name} is set nowhere (nor in a file it sources): it was left out"
                draft.skip(line, text, why)
