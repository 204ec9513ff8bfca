"""The verbs of an init.d script other than start: stop (the stop schedule), reload (the reload
signal or command), restart (a config test or schedule found only there) and extra verbs that
become actions."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from servicectl.commands.importer import commands as C
from servicectl.commands.importer.draft import Draft, retry_schedule, sig
from servicectl.commands.importer.initd import (
    STANDARD_VERBS,
    Script,
    Step,
    is_config_test,
    is_noise,
    program_of,
    steps_of,
)
from servicectl.commands.importer.initd_map import UTILITIES, _argv, _check, _launcher
from servicectl.commands.importer.words import Unknown, shown, to_servicectl

if TYPE_CHECKING:
    from collections.abc import Callable


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
    out = []
    for st in steps:
        if is_noise(st):
            continue
        argv: list[str] | None
        if st.tool() in ("kill", "killproc", "start-stop-daemon"):
            argv = _argv(st, script, draft, lenient=True, quiet=True)  # the target may be computed
        else:
            try:
                argv = st.argv()
            except Unknown:
                argv = None
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


def reload(script: Script, draft: Draft, program: str) -> None:
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
    sent = _one_action(
        script, draft, verb, program, on_test=lambda st, argv: _check(draft, st, script, argv)
    )
    if sent is None:
        draft.set("reload", False, line, f"{verb}) does not reload the daemon")
        return
    kind, value, st = sent
    if kind == "signal" and value in ("TERM", "KILL", "INT", "QUIT"):
        draft.set(
            "reload",
            False,
            st.line,
            f"{verb}) sends {value}: that stops the daemon, it does not reload it",
        )
        return
    if kind == "signal":
        draft.set("reload_signal", value, st.line, st.text(script.lines))
    else:
        draft.set("reload_command", value, st.line, st.text(script.lines))


def _one_action(
    script: Script,
    draft: Draft,
    verb: str,
    program: str,
    on_test: Callable[[Step, list[str]], None] | None = None,
) -> tuple[str, object, Step] | None:
    """A verb that sends one signal (``("signal", "USR1", step)``) or runs one command
    (``("command", argv, step)``); None (with the reason listed) otherwise."""
    steps = steps_of(script, verb, draft)
    sig_steps: list[tuple[Step, str]] = []
    cmds: list[tuple[Step, list[str]]] = []
    tests: list[tuple[Step, list[str]]] = []
    for st, argv in _significant(script, draft, steps):
        if argv is None:
            draft.skip(st.line, st.text(script.lines), f"in {verb}: computed by a command")
            return None
        signal = _signal_of(argv)
        if signal is not None:
            sig_steps.append((st, signal))
        elif is_config_test(st, argv, program):
            tests.append((st, argv))
        elif _launcher(script, st, argv) is not None:
            draft.skip(st.line, st.text(script.lines), f"in {verb}: starts the program again")
            return None
        else:
            cmds.append((st, argv))
    if on_test is not None:
        for st, argv in tests:
            on_test(st, argv)
    if len(sig_steps) == 1 and not cmds:
        return ("signal", sig_steps[0][1], sig_steps[0][0])
    if not sig_steps and len(cmds) == 1:
        return ("command", [to_servicectl(a) for a in cmds[0][1]], cmds[0][0])
    if not sig_steps and not cmds and tests and on_test is None:
        return ("command", [to_servicectl(a) for a in tests[0][1]], tests[0][0])
    if sig_steps or cmds:
        first = (sig_steps or cmds)[0][0]  # type: ignore[index]
        draft.skip(first.line, f"{verb})", "does more than send one signal or run one command")
    return None


def restart(script: Script, draft: Draft, program: str) -> None:
    """A config test or a --retry schedule found only in restart still counts."""
    for st in steps_of(script, "restart", draft):
        try:
            argv = st.argv()
        except Unknown:
            continue
        if argv and is_config_test(st, argv, program):
            _check(draft, st, script, argv)
        elif (
            argv
            and program_of(argv) == "start-stop-daemon"
            and "stop" in C.ssd(argv).flags
            and "stop_schedule" not in draft.values
            and "retry" in C.ssd(argv).opts
        ):
            signal = _signal_of(argv) or "TERM"
            _stop_line(draft, argv, signal, st.line, st.text(script.lines))


def extra_verbs(script: Script, draft: Draft, program: str) -> None:
    actions: dict[str, dict[str, object]] = {}
    origin: list[str] = []
    first_line = None
    for verb, (_, line, patterns) in script.verbs.items():
        if verb in STANDARD_VERBS or not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", verb):
            continue
        if any(p in STANDARD_VERBS for p in patterns):
            draft.skip(line, f"{'|'.join(patterns)})", f"{verb} does what a standard verb does")
            continue
        got = _one_action(script, draft, verb, program)
        if got is None:
            continue
        kind, value, st = got
        actions[verb] = {kind: value}
        origin.append(f"{verb}: {st.text(script.lines)}")
        first_line = first_line or st.line
    if actions:
        draft.set("actions", actions, first_line, "; ".join(origin))


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
    if env and over:
        draft.note(
            f"the script's own values were used for {', '.join(over[:12])}; {env} may set "
            "them differently (it is not read at import)"
        )
    for name in sorted(v.defaulted):
        if env:
            draft.note(f"${{{name}:-...}}: the script's default was used; {env} may set {name}")
