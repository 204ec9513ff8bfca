"""From a parsed init.d script to the keys of a definition (see initd.py for the reading)."""

from __future__ import annotations

import os
import re

from servicectl.commands.importer import commands as C
from servicectl.commands.importer.initd import (
    TEST_FLAGS,
    TEST_NAME_RE,
    Script,
    Step,
    is_config_test,
    is_noise,
    load,
    program_of,
    read_header,
    steps_of,
)
from servicectl.commands.importer.initd_env import (
    add_environment,
    exported_environment,
)
from servicectl.commands.importer.initd_steps import (
    direct_launch,
    drop_unknown,
    launcher,
    set_check,
    step_words,
)
from servicectl.commands.importer.words import Unknown, plain, refs, shown, to_servicectl

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.commands.importer.draft import Draft
    from servicectl.commands.importer.sysfiles import System

NOT_FORKING_HINT = re.compile(
    r"^(--foreground|--no-daemon|--nodaemon|--no-detach|--nofork|--no-fork)$"
)


def convert(
    path: str,
    name: str,
    text: str,
    draft: Draft,
    names: dict[str, str],
    system: System | None = None,
) -> None:
    """Fill ``draft`` from the script ``text``. ``names``: service names and Provides that
    already have (or get, in this import) a definition, to their definition name.
    ``system``: the machine's files the import reads (sysfiles.py)."""
    script = load(path, name, text, draft, system)
    _header(script, draft, names)
    _env_file(script, draft)
    assert script.top is not None
    for st in script.top:
        _setup_step(script, st, draft, "when the script starts")
    launched = _start(script, draft)
    if not launched:
        return
    from servicectl.commands.importer import initd_oneshot, initd_verbs

    if draft.values.get("type") == "oneshot":
        initd_oneshot.verbs(script, draft)
    else:
        initd_verbs.stop(script, draft)
        initd_verbs.reload(script, draft)
        initd_verbs.restart(script, draft)
    initd_verbs.extra_verbs(script, draft)
    initd_verbs.variable_notes(script, draft)
    _templated(script, draft)
    _switches(script, draft)


def _switches(script: Script, draft: Draft) -> None:
    """An on/off switch of the defaults file that is off (ENABLED=false): enabled: false."""
    for name, value in script.vars.switches.items():
        on = value.strip().lower() not in ("", "0", "no", "false", "off", "disabled")
        if on == ("DISABLE" in name):
            line, how = script.vars.sourced_at or None, f"{name}={value}"
            draft.set("enabled", False, line, f"{draft.values.get('env_file', 'defaults')}: {how}")


def _templated(script: Script, draft: Draft) -> None:
    """A script that starts one daemon per value of a loop (``for INSTANCE in ...``): the
    definition is a template, {instance} standing for the value."""
    if "{instance}" not in repr(draft.values.get("command")) or "@" in draft.name:
        return
    v = script.vars
    name = next((n for n in v.loops if n in v.used), "")
    line, how, values = v.loops.get(name, (None, "a loop", None))
    draft.name += "@"
    draft.note(
        f"line {line}: it starts a daemon for each value of ${name} ({how}): this is the "
        f"template {draft.name}; start {draft.name}INSTANCE"
        + ("" if values else "; list the instances you run in instances:")
    )
    if values:
        draft.set("instances", values, line, how)


def _header(script: Script, draft: Draft, names: dict[str, str]) -> None:
    fields = read_header(script.lines, draft)
    desc = fields.get("short-description") or fields.get("description")
    if desc and desc[0]:
        draft.set(
            "description",
            desc[0],
            desc[1],
            f"{'Short-Description' if 'short-description' in fields else 'description'}: {desc[0]}",
        )
    start = fields.get("default-start")
    if start is not None and not start[0].strip():
        draft.set("enabled", False, start[1], "Default-Start: (empty)")
    chk = fields.get("chkconfig")
    if chk is not None and chk[0].split()[:1] == ["-"]:
        draft.set("enabled", False, chk[1], f"chkconfig: {chk[0]}")
    req = fields.get("required-start")
    if req is not None:
        deps: list[str] = []
        for item in req[0].split():
            if item.startswith("$"):
                continue
            target = names.get(item)
            if target and target != draft.name:
                deps.append(target)
            elif not target:
                draft.skip(req[1], f"Required-Start: {item}", "no definition provides it here")
        if deps:
            draft.set("depends", list(dict.fromkeys(deps)), req[1], f"Required-Start: {req[0]}")
    pidf = fields.get("pidfile")
    if pidf is not None and pidf[0]:
        draft.values.setdefault("_header_pidfile", (pidf[0], pidf[1]))


def _env_file(script: Script, draft: Draft) -> None:
    assert script.env_files is not None
    chosen = False
    for path, line, text in script.env_files:
        if chosen:
            draft.skip(line, text, "servicectl reads one env_file; add this one's settings to it")
            continue
        if script.env_problem and script.env_problem.startswith(f"{path}:"):
            why = script.env_problem.removeprefix(f"{path}: ")
            draft.skip(line, text, f"no env_file: {why}; the values it sets were written here")
        elif script.exists(path):
            draft.set("env_file", path, line, text)
            chosen = True
        else:
            draft.note(f"line {line}: {path} does not exist on this machine: no env_file")


def _setup_step(script: Script, st: Step, draft: Draft, when: str) -> bool:
    """ulimit, umask, cd, mkdir/chown/chmod before the program starts. True if handled."""
    tool = st.tool()
    if tool in script.foreign:
        why = f"{tool} is a function of {script.foreign[tool]}, which is not followed"
        draft.skip(st.line, st.text(script.lines), f"runs {when}: {why}")
        return True
    if is_noise(st) or script.is_function(tool):
        return True
    try:
        argv = st.argv()
    except Unknown as exc:
        draft.skip(st.line, st.text(script.lines), exc.why)
        return True
    if not argv or is_noise(st, argv):
        return True
    tool = program_of(argv)
    text = st.text(script.lines)
    if any(refs(a) for a in argv) and tool in ("ulimit", "umask", "cd", "mkdir", "chown", "chmod"):
        names = ", ".join(sorted({r for a in argv for r in refs(a)}))
        draft.skip(st.line, text, f"{names} comes from the defaults file, not read at import")
        return True
    if tool == "ulimit":
        limits, why = C.ulimit(argv)
        if why:
            draft.skip(st.line, text, why)
        else:
            merged = dict(draft.values.get("limits") or {})
            merged.update(limits)
            draft.set("limits", merged, st.line, text)
        return True
    if tool == "umask" and len(argv) == 2 and re.fullmatch(r"0?[0-7]{1,4}", argv[1]):
        draft.set("umask", f"{int(argv[1], 8):03o}", st.line, text)
        return True
    if tool == "cd" and len(argv) == 2 and argv[1].startswith("/"):
        draft.set("working_directory", argv[1], st.line, text)
        return True
    work = C.dir_command(argv)
    if work is not None:
        _directories(draft, work, st.line, text)
        return True
    if script.is_function(tool):
        return True
    draft.skip(st.line, text, f"runs {when}; servicectl does not run it")
    return True


def _directories(
    draft: Draft, work: list[tuple[str, dict[str, str | bool]]], line: int, text: str
) -> None:
    dirs: dict[str, dict[str, str | bool]] = draft.values.setdefault("_dirs", {})
    for path, info in work:
        if not path.startswith("/"):
            draft.skip(line, text, f"{path}: not an absolute path")
            continue
        entry = dirs.setdefault(path, {"line": str(line), "text": text})
        entry.update(info)


def _finish_directories(draft: Draft) -> None:
    dirs: dict[str, dict[str, str | bool]] = draft.values.pop("_dirs", {})
    out: list[object] = []
    first_line, texts = None, []
    for path, info in dirs.items():
        is_file = re.search(r"\.(pid|sock|log|lock)$", path) or path == draft.values.get("pid_file")
        if not info.get("made") and (is_file or not path.startswith(("/run/", "/var/run/"))):
            draft.skip(
                int(str(info["line"])),
                str(info["text"]),
                f"{path}: servicectl manages directories it creates, not this path",
            )
            continue
        item: dict[str, str] = {"path": path}
        for key in ("owner", "group"):
            value = info.get(key)
            if value and value != draft.values.get("user" if key == "owner" else "group"):
                item[key] = str(value)
        mode = info.get("mode")
        if mode and str(mode).lstrip("0") != "755":
            item["mode"] = str(mode)
        out.append(item if len(item) > 1 else path)
        first_line = first_line or int(str(info["line"]))
        texts.append(str(info["text"]))
    if out:
        draft.set("directories", out, first_line, "; ".join(dict.fromkeys(texts)))


def _start(script: Script, draft: Draft) -> str | None:
    """The program and how it is launched; None (and draft.fatal) if none is found."""
    verb = "start" if "start" in script.verbs else None
    steps = steps_of(script, verb, draft) if verb else []
    if verb is None and script.family == "init-d-script":
        steps = _init_d_script_start(script, draft)
    if verb is None and script.family != "init-d-script":
        draft.fatal = 'no start verb found (no case "$1" with a start) arm'
        return None
    from servicectl.commands.importer import initd_oneshot

    found = _find_launch(script, draft, steps)
    if found is None:
        return initd_oneshot.task(script, draft, steps)
    st, launch = found
    if initd_oneshot.is_task(script, draft, st, launch):
        program = initd_oneshot.task(script, draft, [st], launch.argv)
        if program is not None:
            _launch_options(draft, launch.opts, st.line, st.text(script.lines))
        return program
    program = _command(script, draft, st, launch)
    if program is None:
        return None
    for other in steps:
        if other is st:
            continue
        _pre_step(script, draft, other, program, "in start")
    _finish_directories(draft)
    return program


def _find_launch(script: Script, draft: Draft, steps: list[Step]) -> tuple[Step, C.Launch] | None:
    """start-stop-daemon --start, start_daemon or daemon; else a line that runs the program
    itself (in the background, through nohup/exec/su, or as ``$DAEMON``-like variable)."""
    for st in steps:
        if st.tool() not in ("start-stop-daemon", "start_daemon", "daemon"):
            continue
        argv = step_words(st, script, draft, lenient=True) or []
        launch = launcher(script, st, argv) if argv else None
        launch = drop_unknown(launch) if launch is not None else None
        if launch is not None and launch.argv:
            return st, launch
    for st in steps:
        if is_noise(st) or any(TEST_NAME_RE.search(f) for f in st.via):
            continue
        first = st.cmd.words[0] if st.cmd.words else ""
        wrapped = st.tool() in ("nohup", "exec", "setsid", "su", "runuser", "env", "nice")
        if not (st.cmd.background or wrapped or first.startswith("$") or first.startswith('"$')):
            continue
        try:
            argv = st.argv()
        except Unknown:
            continue
        launch = direct_launch(script, st, argv) if argv else None
        if (
            launch is not None
            and launch.argv
            and not is_config_test(st, launch.argv, set(), [*script.funcs, *script.foreign])
        ):
            if any(a in TEST_FLAGS for a in launch.argv[1:]):
                continue
            return st, launch
    return None


def _init_d_script_start(script: Script, draft: Draft) -> list[Step]:
    """Debian's /lib/init/init-d-script runs ``start-stop-daemon --start --pidfile $PIDFILE
    --exec $DAEMON -- $DAEMON_ARGS`` unless do_start_cmd_override says otherwise."""
    from servicectl.commands.importer.shell import Cmd

    v = script.vars
    for own in ("do_start_cmd_override", "do_start_cmd"):
        if own in script.funcs:
            from servicectl.commands.importer.walk import ordered

            v = v.copy()
            v.in_verb = True
            return [Step(c, v, (own,)) for c, _ in ordered(script.funcs[own].body, None, False, v)]
    words = ["start-stop-daemon", "--start", "--exec", "$DAEMON", "--", "$DAEMON_ARGS"]
    if v.values.get("PIDFILE") is None or v.values["PIDFILE"].text != "none":
        words[2:2] = ["--pidfile", "${PIDFILE:-/var/run/$NAME.pid}"]
    draft.note(
        "init-d-script: the start line is init-d-script's own "
        "(start-stop-daemon --start --exec $DAEMON)"
    )
    return [Step(Cmd(words, [], 1, 1), v, ())]


def _command(script: Script, draft: Draft, st: Step, launch: C.Launch) -> str | None:
    """Set command, type, pid_file, user, group, working_directory, nice, umask, stdout."""
    text = st.text(script.lines)
    line = st.line
    argv = [to_servicectl(a) for a in launch.argv]
    program = launch.argv[0]
    if refs(program) or not program:
        draft.fatal = (
            f"line {line}: the program ({shown(program)}) is set only in the defaults file"
        )
        return None
    draft.set("command", argv, line, text)
    add_environment(draft, launch.env, line, text)
    exported_environment(script, draft, launch.env_clear)
    script.programs = {os.path.basename(program)} | {
        os.path.basename(a) for a in launch.argv if a.startswith("/") and not a.endswith("/")
    }
    daemon = script.vars.values.get("DAEMON")
    if daemon is not None and daemon.text:
        script.programs.add(os.path.basename(daemon.text))
    _type_and_pid_file(script, draft, st, launch, text)
    _launch_options(draft, launch.opts, line, text)
    _redirects(draft, st, line, text)
    return program


def _type_and_pid_file(script: Script, draft: Draft, st: Step, launch: C.Launch, text: str) -> None:
    """type (simple when start-stop-daemon puts it in the background, else forking with its
    pid_file), and ready: notify for --notify-await."""
    line = st.line
    flags = launch.flags
    background = "background" in flags or "make-pidfile" in flags or st.cmd.background
    if "notify-await" in flags:
        draft.set("ready", "notify", line, "--notify-await")
    pid = launch.opts.get("pidfile") or next(
        (a for a in launch.argv[1:] if a.endswith(".pid") and a.startswith("/")), None
    )
    if background:
        draft.set("type", "simple", line, text)
        if pid:  # the path other tools read (logrotate snippets, monitoring): kept
            draft.set("pid_file", to_servicectl(pid), line, text)
            draft.note(f"pid_file: servicectl writes {pid} itself, as the script had it written")
        if st.cmd.piped_to:
            try:
                shown_to = " ".join(w for x in st.cmd.piped_to for w in st.expand(x))
            except Unknown:
                shown_to = " ".join(st.cmd.piped_to)
            draft.note(
                f"line {line}: its output went to `{shown_to}`; servicectl appends it to the "
                "service's log (stdout:)"
            )
        return
    if any(NOT_FORKING_HINT.match(a) for a in launch.argv[1:]):
        draft.skip(
            line,
            text,
            "started without --background but its options suggest it stays in the "
            "foreground: check type",
        )
    if not pid:
        pid = _guess_pid(script, draft, launch.argv[0], line, text)
    draft.set("type", "forking", line, text)
    draft.set("pid_file", to_servicectl(pid), line, text)


def _launch_options(draft: Draft, o: dict[str, str], line: int, text: str) -> None:
    """start-stop-daemon's --chuid, --group, --chdir, --nicelevel, --umask, --output; the
    options servicectl has no setting for are listed as not converted."""
    if "chuid" in o:
        user, _, group = o["chuid"].partition(":")
        if user and user not in ("0", "root"):
            draft.set("user", user, line, text)
        if group and group not in ("0", "root"):
            draft.set("group", group, line, text)
    if "group" in o and "group" not in draft.values and o["group"] not in ("0", "root"):
        draft.set("group", o["group"], line, text)
    if "chdir" in o:
        draft.set("working_directory", o["chdir"], line, text)
    if "nicelevel" in o and re.fullmatch(r"[+-]?[0-9]{1,2}", o["nicelevel"]):
        draft.set("nice", int(o["nicelevel"]), line, text)
    if "umask" in o and re.fullmatch(r"0?[0-7]{1,4}", o["umask"]):
        draft.set("umask", f"{int(o['umask'], 8):03o}", line, text)
    for key in ("chroot", "iosched", "procsched"):
        if key in o:
            draft.skip(line, f"--{key} {o[key]}", "servicectl has no such setting")
    if "output" in o:
        draft.set("stdout", o["output"], line, text)


def _guess_pid(script: Script, draft: Draft, program: str, line: int, text: str) -> str:
    for var in ("PIDFILE", "PID_FILE", "PID", "pidfile"):
        value = script.vars.values.get(var)
        if value is not None and value.text and value.text.startswith("/"):
            return value.text
    header = draft.values.pop("_header_pidfile", None)
    if header:
        return str(header[0])
    guess = f"/var/run/{os.path.basename(program)}.pid"
    computed = next(
        (
            v
            for n in ("PIDFILE", "PID_FILE", "PID")
            if (v := script.vars.values.get(n)) and not v.text
        ),
        None,
    )
    if computed is not None:
        why = f"its PID file is computed when it runs (line {computed.line}: {computed.how})"
        draft.skip(line, text, f"{why}: {guess} is a guess, check it")
        return guess
    draft.skip(
        line, text, f"a daemon that forks, with no PID file named: {guess} is a guess, check it"
    )
    return guess


def _redirects(draft: Draft, st: Step, line: int, text: str) -> None:
    red = st.cmd.redirects
    for i, op in enumerate(red):
        target = red[i + 1] if i + 1 < len(red) else ""
        try:
            path = plain(target, st.vars)
        except Unknown:
            continue
        if (
            op in (">", ">>", "1>", "1>>", "&>", "&>>")
            and path.startswith("/")
            and path != "/dev/null"
        ):
            draft.set("stdout", path, line, text)
        elif op in ("2>", "2>>") and path.startswith("/") and path != "/dev/null":
            draft.set("stderr", path, line, text)


def _pre_step(script: Script, draft: Draft, st: Step, program: str, where: str) -> None:
    if _writes_pid_file(script, draft, st):
        return
    if is_noise(st):
        return
    try:
        argv = st.argv()
    except Unknown as exc:
        if "$!" in st.text(script.lines):
            draft.note("the script writes $! to a PID file: servicectl records the PID itself")
            return
        draft.skip(st.line, st.text(script.lines), exc.why)
        return
    if not argv or is_noise(st, argv):
        return
    if script.config_test(st, argv):
        set_check(draft, st, script, argv)
        return
    tool = program_of(argv)
    if tool == "start-stop-daemon":
        launch = C.ssd(argv)
        if "test" in launch.flags or "stop" in launch.flags or "status" in launch.flags:
            return
    if tool in ("kill", "killproc") and where == "in start":
        return
    _setup_step(script, st, draft, where)


def _writes_pid_file(script: Script, draft: Draft, st: Step) -> bool:
    """``echo -n "$pid" > "$PIDFILE"`` after a forking start: the script writes the daemon's
    PID file itself, which servicectl waits for the daemon to write (rpcbind's)."""
    red = st.cmd.redirects
    pid_file = draft.values.get("pid_file")
    if draft.values.get("type") != "forking" or "$!" in st.text(script.lines):
        return False
    for op, target in zip(red, red[1:]):
        try:
            path = plain(target, st.vars)
        except Unknown:
            continue
        if op in (">", ">>", ">|") and path == pid_file:
            draft.skip(
                st.line,
                st.text(script.lines),
                f"the script writes {path} itself: servicectl waits for the daemon to write "
                "it; make the daemon write it, or run it in the foreground (type: simple)",
            )
            return True
    return False
