"""A systemd service unit read into a Draft: [Unit], [Service] and [Install] keys mapped to a
definition's keys, specifiers resolved, everything else listed."""

from __future__ import annotations

import os
import re
import shlex

from servicectl.commands.importer import unit_spread
from servicectl.commands.importer.commands import ssd
from servicectl.commands.importer.draft import Draft, limit_value, retry_schedule, sig, timespan
from servicectl.commands.importer.sysfiles import System
from servicectl.commands.importer.unit_parse import (
    Entry,
    Specifiers,
    is_test,
    mainpid_signal,
    parse,
    split_exec,
)
from servicectl.commands.importer.unit_spread import DIRECTORY_KEYS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

SANDBOX_PREFIXES = (
    "Protect",
    "Private",
    "Restrict",
    "NoNewPrivileges",
    "Capability",
    "AmbientCapabilities",
    "SystemCall",
    "ReadWrite",
    "ReadOnly",
    "Inaccessible",
    "Exec",
    "NoExec",
    "Lock",
    "MemoryDeny",
    "RemoveIPC",
    "DevicePolicy",
    "DeviceAllow",
    "IPAddress",
    "SecureBits",
    "Keyring",
    "ProcSubset",
    "Bind",
    "Temporary",
    "Mount",
    "Personality",
)


def convert(
    stem: str,
    text: str,
    draft: Draft,
    names: dict[str, str],
    system: System | None = None,
) -> None:
    """Fill ``draft`` from the unit ``text``; ``names`` as for init.d scripts; ``system``: the
    machine's files the import reads (sysfiles.py)."""
    entries = parse(text, draft)
    spec = Specifiers(stem, draft)
    by_key: dict[tuple[str, str], list[Entry]] = {}
    for e in entries:
        if e.section == "Service" and e.key == "User":
            spec.user = e.value
        by_key.setdefault((e.section, e.key), []).append(e)
    state = _State(draft, spec, names)
    state.system = system or System()
    state.exists = state.system.exists
    state.text = text
    for e in entries:
        e.value = spec(e.value, e.line)
        handler = HANDLERS.get((e.section, e.key))
        if handler is None and e.section in ("Unit", "Service") and e.key.startswith("Limit"):
            handler = _limit
        if handler is None:
            _unknown(state, e)
        else:
            handler(state, e)
    state.finish()


class _State:
    def __init__(self, draft: Draft, spec: Specifiers, names: dict[str, str]) -> None:
        self.draft = draft
        self.spec = spec
        self.names = names
        self.type = "simple"
        self.type_line = 0
        self.start: list[str] | None = None
        self.start_entry: Entry | None = None
        self.pre: list[tuple[Entry, list[str]]] = []
        self.reload: list[tuple[Entry, list[str]]] = []
        self.stop_schedule: tuple[str, Entry] | None = None
        self.kill_signal = "TERM"
        self.stop_timeout: float | None = None
        self.install = False
        self.burst: tuple[int, Entry] | None = None
        self.interval: tuple[float, Entry] | None = None
        self.dirs: dict[str, dict[str, Any]] = {}  # path -> how it is made (unit_spread.py)
        self.modes: dict[str, str] = {}  # RuntimeDirectory -> its RuntimeDirectoryMode
        self.account: tuple[str | None, str | None] = (None, None)  # owner of *Directory=
        self.starts: list[tuple[Entry, list[str]]] = []  # every ExecStart= (a oneshot's)
        self.start_prefix = ""
        self.stops: list[tuple[Entry, list[str]]] = []
        self.post: list[tuple[Entry, list[str]]] = []
        self.remain = False
        self.pid: Entry | None = None
        self.exists: Callable[[str], bool] = os.path.lexists
        self.system = System()
        self.text = ""

    def finish(self) -> None:
        d = self.draft
        if self.start is None or self.start_entry is None:
            d.fatal = "no ExecStart= line: no program to run"
            return
        d.set("command", self.start, self.start_entry.line, self.start_entry.text)
        if "!" in self.start_prefix or "+" in self.start_prefix:
            unit_spread.privileged(self)
        if self.type == "oneshot":
            unit_spread.oneshot(self)
        else:
            for e, _ in self.starts[1:]:
                d.skip(e.line, e.text, "a second ExecStart=: servicectl runs one program")
            self._pid_file()
        self._pre_post()
        if self.type != "oneshot":
            self._reload()
            self._stop()
        if (self.burst or self.interval) and self.type != "oneshot":
            burst = self.burst[0] if self.burst else 5
            interval = self.interval[0] if self.interval else 10
            e = (self.burst or self.interval)[1]  # type: ignore[index]
            d.set("start_limit", {"burst": burst, "interval": interval}, e.line, e.text)
        unit_spread.directories(self)
        if not self.install:
            d.set("enabled", False, None, "no WantedBy= in [Install]: not started at boot")

    def _pid_file(self) -> None:
        """PIDFile=: a forking daemon's, or the path other tools read for a simple one
        (servicectl writes it then); a guess, said, for a forking one without it."""
        d = self.draft
        assert self.start is not None
        if self.type == "forking":
            d.values["type"] = "forking"
            if self.pid is not None:
                d.set("pid_file", self.pid.value, self.pid.line, self.pid.text)
            else:
                guess = f"/run/{os.path.basename(self.start[0])}.pid"
                d.set("pid_file", guess, self.type_line, "Type=forking")
                d.skip(
                    self.type_line,
                    "Type=forking",
                    f"no PIDFile=: {guess} is a guess, check where the daemon writes its PID",
                )
        elif self.pid is not None:
            d.set("pid_file", self.pid.value, self.pid.line, self.pid.text)
            d.note(f"pid_file: servicectl writes {self.pid.value} itself (PIDFile=)")

    def _pre_post(self) -> None:
        """ExecStartPre=/Post: directories, a config test; the rest is listed."""
        d = self.draft
        assert self.start is not None
        for e, argv in self.pre:
            if unit_spread.exec_dirs(self, e, argv):
                continue
            if is_test(argv, self.start[0]) and "check_command" not in d.values:
                d.set("check_command", argv, e.line, e.text)
            else:
                d.skip(e.line, e.text, "runs before start; servicectl does not run it")
        for e, argv in self.post:
            if not unit_spread.exec_dirs(self, e, argv):
                d.skip(e.line, e.text, "runs after start; servicectl does not run it")

    def _reload(self) -> None:
        d = self.draft
        done = False
        signals = [mainpid_signal(argv) for _, argv in self.reload]
        for (e, argv), signal in zip(self.reload, signals):
            if signal and not done:
                d.set("reload_signal", signal, e.line, e.text)
                done = True
            elif self.start and (is_test(argv, self.start[0]) or any(signals) and not signal):
                if "check_command" not in d.values:
                    d.set("check_command", argv, e.line, e.text)
            elif not done and not any("MAINPID" in a for a in argv):
                d.set("reload_command", argv, e.line, e.text)
                done = True
            else:
                d.skip(e.line, e.text, "servicectl runs one reload signal or command")
        if not self.reload:
            d.set("reload", False, None, "no ExecReload=: systemd cannot reload it either")

    def _stop(self) -> None:
        d = self.draft
        if self.stop_schedule is not None:
            schedule, e = self.stop_schedule
            if schedule.split("/")[-2:-1] != ["KILL"]:
                timeout = self.stop_timeout if self.stop_timeout is not None else 90
                schedule += f"/{self.kill_signal}/{int(timeout)}/KILL/5"
            d.set("stop_schedule", schedule, e.line, e.text)
            return
        if self.kill_signal != "TERM":
            d.values.setdefault("stop_signal", self.kill_signal)


def _type(s: _State, e: Entry) -> None:
    t = e.value
    s.type_line = e.line
    if t in ("simple", "exec", "idle"):
        s.draft.set("type", "simple", e.line, e.text)
    elif t in ("notify", "notify-reload"):
        s.draft.set("type", "simple", e.line, e.text)
        s.draft.set("ready", "notify", e.line, e.text)
    elif t == "forking":
        s.type = "forking"
        s.draft.set("type", "forking", e.line, e.text)
    elif t == "oneshot":
        s.type = "oneshot"
    else:
        s.draft.set("type", "simple", e.line, e.text)
        s.draft.skip(e.line, e.text, f"Type={t} is run as simple; servicectl does not watch for it")
    if t == "notify-reload":
        s.draft.set("reload_signal", "HUP", e.line, e.text)


def _exec_start(s: _State, e: Entry) -> None:
    if not e.value:
        s.start, s.start_entry, s.starts = None, None, []
        return
    argv = split_exec(e.value, s.draft, e.line, e.key)
    if argv is None:
        return
    s.starts.append((e, argv))
    if s.start is None:
        s.start = argv
        s.start_entry = e
        s.start_prefix = unit_spread.exec_start_prefix(e.value)


def _exec_list(attr: str) -> Callable[[_State, Entry], None]:
    def handler(s: _State, e: Entry) -> None:
        argv = split_exec(e.value, s.draft, e.line, e.key) if e.value else None
        if argv:
            getattr(s, attr).append((e, argv))
        elif not e.value:
            getattr(s, attr).clear()

    return handler


def _exec_stop(s: _State, e: Entry) -> None:
    argv = split_exec(e.value, s.draft, e.line, e.key) if e.value else None
    if not argv:
        return
    s.stops.append((e, argv))
    if s.type == "oneshot":
        return
    signal = mainpid_signal(argv)
    if signal:
        s.kill_signal = signal
        s.draft.set("stop_signal", signal, e.line, e.text)
        return
    if os.path.basename(argv[0]) == "start-stop-daemon":
        launch = ssd(argv)
        if "stop" in launch.flags and "retry" in launch.opts:
            first = sig(launch.opts.get("signal", "TERM")) or "TERM"
            schedule, why = retry_schedule(launch.opts["retry"], first)
            if schedule:
                s.stop_schedule = (schedule, e)
                return
            s.draft.skip(e.line, e.text, why)
            return
    s.draft.skip(
        e.line, e.text, "servicectl stops the service by signal (stop_signal, stop_schedule)"
    )


def _simple_key(
    key: str, convert: Callable[[str], tuple[object, str]] | None = None
) -> Callable[[_State, Entry], None]:
    def handler(s: _State, e: Entry) -> None:
        value: object = e.value
        if convert is not None:
            value, why = convert(e.value)
            if value is None:
                s.draft.skip(e.line, e.text, why)
                return
        s.draft.set(key, value, e.line, e.text)

    return handler


def _seconds(text: str) -> tuple[object, str]:
    t = timespan(text)
    if t is None:
        return None, "not a number of seconds servicectl can use (infinity?)"
    if t == 0:
        return None, "0 means no limit to systemd; servicectl needs one: the default is kept"
    return t, ""


def _nice(text: str) -> tuple[object, str]:
    return (
        (int(text), "")
        if re.fullmatch(r"[+-]?[0-9]{1,2}", text) and -20 <= int(text) <= 19
        else (None, "not a nice value")
    )


def _umask(text: str) -> tuple[object, str]:
    return (
        (f"{int(text, 8):03o}", "")
        if re.fullmatch(r"0?[0-7]{1,4}", text)
        else (None, "not an octal umask")
    )


def _signal(text: str) -> tuple[object, str]:
    name = sig(text)
    return (name, "") if name else (None, "not a signal")


def _kill_signal(s: _State, e: Entry) -> None:
    name = sig(e.value)
    if name is None:
        s.draft.skip(e.line, e.text, "not a signal")
        return
    s.kill_signal = name
    s.draft.set("stop_signal", name, e.line, e.text)


def _stop_timeout(s: _State, e: Entry) -> None:
    value, why = _seconds(e.value)
    if value is None:
        s.draft.skip(e.line, e.text, why)
        return
    s.stop_timeout = float(value)  # type: ignore[arg-type]
    s.draft.set("stop_timeout", value, e.line, e.text)


def _timeout(s: _State, e: Entry) -> None:
    _stop_timeout(s, e)
    if "stop_timeout" in s.draft.values:
        s.draft.set("start_timeout", s.draft.values["stop_timeout"], e.line, e.text)


def _bytes(text: str) -> tuple[object, str]:
    """MemoryMax=/MemoryLimit=: bytes with K, M, G, T as memory_max takes them."""
    if text in ("infinity", ""):
        return None, "no limit: none is set"
    if text.endswith("%"):
        return None, "a share of the machine's memory: give memory_max in bytes (512M)"
    match = re.fullmatch(r"([0-9]+)([KMGT]?)", text)
    if match is None:
        return None, "not a number of bytes"
    return (int(text) if not match.group(2) else text), ""


def _tasks(text: str) -> tuple[object, str]:
    """TasksMax=: a number (a percentage of the kernel's limit has no servicectl form)."""
    if text in ("infinity", ""):
        return None, "no limit: none is set"
    if re.fullmatch(r"[0-9]{1,7}", text) and int(text) > 0:
        return int(text), ""
    return None, "a share of the kernel's limit: give pids_max as a number"


def _weight(text: str) -> tuple[object, str]:
    """CPUWeight=: 1 to 10000 (idle has no servicectl form)."""
    if re.fullmatch(r"[0-9]{1,5}", text) and 1 <= int(text) <= 10000:
        return int(text), ""
    return None, "not a weight from 1 to 10000"


def _shares(text: str) -> tuple[object, str]:
    """CPUShares= (cgroup v1, 1024 by default) as cpu_weight (100 by default)."""
    if re.fullmatch(r"[0-9]{1,6}", text) and int(text) >= 2:
        return max(1, min(10000, int(text) * 100 // 1024)), ""
    return None, "not a number of shares"


def _kill_mode(s: _State, e: Entry) -> None:
    mode = {"control-group": "group", "mixed": "group", "process": "process"}.get(e.value)
    if e.value == "none":  # nothing is killed but the main process: the nearest is process
        mode = "process"
    if mode is None:
        s.draft.skip(e.line, e.text, "servicectl always signals the service (group or process)")
        return
    s.draft.set("kill_mode", mode, e.line, e.text)


def _remain(s: _State, e: Entry) -> None:
    s.remain = e.value.lower() in ("yes", "true", "1", "on")


def _watchdog(s: _State, e: Entry) -> None:
    """WatchdogSec=: servicectl does not watch sd_notify WATCHDOG=1 keep-alives; its health
    checks probe the service from outside. Off (0, infinity): nothing to say. Otherwise the
    timing is said as a health check to write (the probe cannot be guessed)."""
    seconds, _ = _seconds(e.value)
    if e.value.strip() in ("", "0", "infinity") or seconds in (0, None):
        return
    interval = max(1, round(float(seconds) / 2))  # type: ignore[arg-type]
    s.draft.skip(
        e.line,
        e.text,
        "servicectl does not watch WATCHDOG=1 keep-alives; to restart it when it stops "
        f"answering, add a health check, e.g. health: {{tcp: HOST:PORT, interval: {interval}, "
        "retries: 2} (or http: URL, command: CMD), with a restart: policy",
    )


def _pid_file(s: _State, e: Entry) -> None:
    s.pid = e


def _environment(s: _State, e: Entry) -> None:
    env: dict[str, str] = dict(s.draft.values.get("environment") or {})
    try:
        words = shlex.split(e.value)
    except ValueError as exc:
        s.draft.skip(e.line, e.text, f"cannot be split: {exc}")
        return
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            s.draft.skip(e.line, e.text, f"{word!r} is not NAME=value")
            continue
        env[key] = value
    if env:
        s.draft.set("environment", env, e.line, e.text)


def _env_file(s: _State, e: Entry) -> None:
    optional = e.value.startswith("-")
    path = e.value.lstrip("-")
    if "env_file" in s.draft.values:
        s.draft.skip(e.line, e.text, "servicectl reads one env_file; merge this one into it")
    elif not s.exists(path):
        why = "optional, and " if optional else ""
        s.draft.skip(
            e.line,
            e.text,
            f"{why}{path} does not exist here: no env_file (create it, then add env_file:)",
        )
    else:
        s.draft.set("env_file", path, e.line, e.text)


def _workdir(s: _State, e: Entry) -> None:
    path = e.value.lstrip("-")
    if not path.startswith("/"):
        s.draft.skip(e.line, e.text, "not an absolute path")
        return
    s.draft.set("working_directory", path, e.line, e.text)


def _limit(s: _State, e: Entry) -> None:
    name = e.key[len("Limit") :].lower()
    value, why = limit_value(e.value, name)
    if value is None:
        s.draft.skip(e.line, e.text, why)
        return
    limits = dict(s.draft.values.get("limits") or {})
    limits[name] = value
    s.draft.set("limits", limits, e.line, e.text)


def _deps(s: _State, e: Entry) -> None:
    deps = list(s.draft.values.get("depends") or [])
    for unit in e.value.split():
        stem = unit[: -len(".service")] if unit.endswith(".service") else None
        target = s.names.get(stem) if stem else None
        if target and target != s.draft.name:
            deps.append(target)
        elif stem and not target:
            s.draft.skip(e.line, e.text, f"{unit}: no definition of that name here")
    if deps:
        s.draft.set("depends", list(dict.fromkeys(deps)), e.line, e.text)
    elif not any(u.endswith(".service") for u in e.value.split()):
        s.draft.note(f"line {e.line}: {e.text}: targets only; startall runs once the system is up")


def _install(s: _State, e: Entry) -> None:
    if e.value.strip():
        s.install = True
        s.draft.set("enabled", True, e.line, e.text)


def _start_limit_burst(s: _State, e: Entry) -> None:
    if e.value.isdigit():
        s.burst = (int(e.value), e)
    else:
        s.draft.skip(e.line, e.text, "not a number")


def _start_limit_interval(s: _State, e: Entry) -> None:
    t = timespan(e.value)
    if t is None:
        s.draft.skip(e.line, e.text, "not a number of seconds")
    else:
        s.interval = (t, e)


def _noted(why: str) -> Callable[[_State, Entry], None]:
    def handler(s: _State, e: Entry) -> None:
        s.draft.skip(e.line, e.text, why)

    return handler


def _ignore(s: _State, e: Entry) -> None:
    return None


def _unknown(s: _State, e: Entry) -> None:
    if e.section not in ("Unit", "Service", "Install"):
        s.draft.skip(
            e.line, f"[{e.section}] {e.text}", "not a section of a service unit servicectl reads"
        )
    elif e.key.startswith(SANDBOX_PREFIXES) or e.key in ("DynamicUser", "PrivateTmp"):
        s.draft.skip(e.line, e.text, "sandboxing: servicectl does not isolate services")
    else:
        s.draft.skip(e.line, e.text, "servicectl has no equivalent")


HANDLERS: dict[tuple[str, str], Callable[[_State, Entry], None]] = {
    ("Unit", "Description"): _simple_key("description"),
    ("Unit", "Requires"): _deps,
    ("Unit", "After"): _deps,
    ("Unit", "BindsTo"): _deps,
    ("Unit", "StartLimitBurst"): _start_limit_burst,
    ("Unit", "StartLimitIntervalSec"): _start_limit_interval,
    ("Unit", "StartLimitInterval"): _start_limit_interval,
    ("Unit", "Documentation"): _ignore,
    ("Service", "StartLimitBurst"): _start_limit_burst,
    ("Service", "StartLimitInterval"): _start_limit_interval,
    ("Service", "Type"): _type,
    ("Service", "ExecStart"): _exec_start,
    ("Service", "ExecStartPre"): _exec_list("pre"),
    ("Service", "ExecReload"): _exec_list("reload"),
    ("Service", "ExecStop"): _exec_stop,
    ("Service", "PIDFile"): _pid_file,
    ("Service", "User"): _simple_key("user"),
    ("Service", "Group"): _simple_key("group"),
    ("Service", "WorkingDirectory"): _workdir,
    ("Service", "Environment"): _environment,
    ("Service", "EnvironmentFile"): _env_file,
    ("Service", "UMask"): _simple_key("umask", _umask),
    ("Service", "Nice"): _simple_key("nice", _nice),
    ("Service", "KillSignal"): _kill_signal,
    ("Service", "KillMode"): _kill_mode,
    ("Service", "MemoryMax"): _simple_key("memory_max", _bytes),
    ("Service", "MemoryLimit"): _simple_key("memory_max", _bytes),
    ("Service", "TasksMax"): _simple_key("pids_max", _tasks),
    ("Service", "CPUWeight"): _simple_key("cpu_weight", _weight),
    ("Service", "CPUShares"): _simple_key("cpu_weight", _shares),
    ("Service", "TimeoutStopSec"): _stop_timeout,
    ("Service", "TimeoutStartSec"): _simple_key("start_timeout", _seconds),
    ("Service", "TimeoutSec"): _timeout,
    ("Service", "Restart"): unit_spread.restart,
    ("Service", "RemainAfterExit"): _remain,
    ("Service", "ExecStartPost"): _exec_list("post"),
    ("Service", "RestartSec"): _simple_key("restart_delay", _seconds),
    ("Service", "WatchdogSec"): _watchdog,
    ("Service", "RuntimeDirectoryPreserve"): _ignore,
    ("Install", "WantedBy"): _install,
    ("Install", "RequiredBy"): _install,
}
for _key in DIRECTORY_KEYS:
    HANDLERS[("Service", _key)] = unit_spread.directory_key
    HANDLERS[("Service", _key + "Mode")] = unit_spread.directory_mode
