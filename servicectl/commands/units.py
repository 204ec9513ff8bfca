"""Native systemd units that hand every action of a service to servicectl (systemd 260+ runs no
init.d scripts): Type=forking (or oneshot), PIDFile=, ExecStart/Stop/Reload= calling
servicectl by absolute path, After=/Requires= from depends, the resource limits.
"""

from __future__ import annotations

import math
import os
import signal
import urllib.parse

from servicectl.commands.shims import (
    MARKER,
    GeneratedFile,
    _description,
    _limits,
    _one_line,
    _runs,
    _servicectl_argv,
)
from servicectl.errors import ConfigError
from servicectl.paths import Dirs, resolve_dirs
from servicectl.service import supervised
from servicectl.system.cgroup import TRACKED_BY

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.definitions.schema import Service


START_MARGIN = 15  # seconds added to systemd's start/stop timeouts for servicectl itself


STOP_MARGIN = 15  # covers the post-KILL confirmation (5 s) and interpreter start-up


def _unit_specifiers(text: str) -> str:
    """Escape ``%`` so systemd does not expand it as a specifier."""
    return text.replace("%", "%%")


def _unit_exec_word(word: str) -> str:
    """One word of an Exec*= line per systemd.syntax(7) and systemd.service(5).

    Words made only of safe characters are written bare; anything else is double-quoted with
    C escapes (``\\\\``, ``\\"``, ``\\xNN`` for control characters and undecodable bytes).
    ``%`` is doubled (specifiers) and ``$`` doubled (environment expansion) in either case.
    """
    if word and all(c in _UNIT_SAFE for c in word):
        return word
    out = ['"']
    for ch in word:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif ch == "%":
            out.append("%%")
        elif ch == "$":
            out.append("$$")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _unit_exec(argv: list[str]) -> str:
    return " ".join(_unit_exec_word(w) for w in argv)


def _unit_text_value(text: str) -> str:
    """A free-text value (Description=): one line, specifiers escaped, and no trailing
    backslash, which systemd would read as a line continuation."""
    return _unit_specifiers(_one_line(text)).rstrip("\\").rstrip() or "servicectl service"


def _unit_path_value(svc: Service, path: str) -> str:
    """The PID file for PIDFile=, which systemd takes literally (no quotes, no escapes).

    Raises ConfigError when the path holds a control character or ends in a backslash: a
    unit file cannot express it.
    """
    text = str(path)
    if _one_line(text) != text or text.endswith("\\"):
        key = "pid_file" if svc.pid_file_given else None
        raise ConfigError(
            str(svc.file),
            key,
            f"the PID file path {text!r} contains a control character or ends in a backslash; "
            "a systemd unit (PIDFile=) cannot express it: choose another pid_file or --run-dir",
        )
    return _unit_specifiers(text)


def _file_uri(path: str) -> str:
    """A file: URI for Documentation=, percent-encoded, then with specifiers escaped."""
    quoted = urllib.parse.quote(os.fsencode(str(path)), safe="/")
    return _unit_specifiers("file://" + quoted)


def _unit_pid_file(svc: Service, dirs: Dirs) -> str:
    """The PID file servicectl will use when systemd runs it (as root).

    When neither the definition nor the generation named a run directory, servicectl under
    systemd uses root's default run directory, even if the unit was generated as another user.
    """
    if svc.pid_file_given or dirs.run_given:
        return svc.pid_file
    root_dirs = resolve_dirs(dirs.services, environ={}, euid=0)
    return os.path.join(root_dirs.run, f"{svc.name}.pid")


def _unit_restart(svc: Service) -> tuple[list[str], list[str]]:
    """``restart`` as systemd says it: [Unit] lines (the start limit) and [Service] lines;
    systemd supervises, and servicectl started by the unit starts no supervisor of its own."""
    if svc.restart == "no":
        return [], []
    burst, interval = svc.start_limit
    return [
        f"# start_limit: {burst} respawns within {interval:g} s; systemd counts the start too.",
        f"StartLimitBurst={burst + 1}",
        f"StartLimitIntervalSec={interval:g}",
    ], [
        f"# restart: {svc.restart}: systemd respawns it; servicectl's supervisor stays out.",
        f"Environment={supervised.OUTER}=systemd",
        f"Restart={svc.restart}",
        f"RestartSec={svc.restart_delay:g}",
    ]


def _unit_type(svc: Service, dirs: Dirs) -> list[str]:
    if svc.type == "oneshot":
        return [
            "# type: oneshot: servicectl start runs the task to its end; it stays active",
            "# (exited) until servicectl stop runs its stop_command.",
            "Type=oneshot",
            "RemainAfterExit=yes",
        ]
    return [
        "# servicectl start returns once the detached service runs and its PID file exists.",
        "Type=forking",
        f"PIDFile={_unit_path_value(svc, _unit_pid_file(svc, dirs))}",
    ]


def unit_file(svc: Service, dirs: Dirs, exe: str) -> GeneratedFile:
    """A systemd service unit (mode 0644) whose ExecStart/ExecStop/ExecReload call servicectl.

    Guarantees: Type=forking with PIDFile= the service's PID file (servicectl start returns
    once the detached service runs and its PID file is written); ExecReload only when the
    service supports reload; Requires/After from depends; an [Install] section only when
    enabled; values escaped per systemd.syntax(7); byte-identical on regeneration. Raises
    ConfigError if the PID file path cannot be written in a unit file at all.
    """
    base = _servicectl_argv(dirs, exe)
    deps = [f"{d}.service" for d in svc.depends]
    lines = [
        f"{MARKER} Regenerate with: servicectl unit {svc.name}",
        "[Unit]",
        f"Description={_unit_text_value(_description(svc))}",
        f"Documentation={_file_uri(svc.file)}",
        "After=" + " ".join(["network.target", *deps]),
    ]
    if deps:
        lines.append("Requires=" + " ".join(deps))
    respawn_unit, respawn_service = _unit_restart(svc)
    lines += respawn_unit
    lines += ["", "[Service]", *_unit_type(svc, dirs)]
    if svc.check_command or svc.directories:
        lines += [
            "# Its directories and config test (check_command), as servicectl start does them",
            "# too; not RuntimeDirectory=, which systemd would give to root and remove at stop.",
            f"ExecStartPre={_unit_exec([*base, 'check', '--run-checks', svc.name])}",
        ]
    lines += [
        f"ExecStart={_unit_exec([*base, 'start', svc.name])}",
        f"ExecStop={_unit_exec([*base, 'stop', svc.name])}",
    ]
    if svc.reload:
        lines.append(f"ExecReload={_unit_exec([*base, 'reload', svc.name])}")
    else:
        lines.append("# No ExecReload=: the definition says reload: false.")
    if svc.actions:
        verbs = "|".join(verb for verb, _ in svc.actions)
        lines.append(f"# Its actions have no systemctl verb: servicectl action {svc.name} {verbs}")
    if svc.kill_mode == "process":
        lines += [
            "# ExecStop (servicectl stop) does the stopping: its stop schedule, KILL,",
            "# confirmation. kill_mode: process leaves the service's other processes alone, so",
            "# KillMode=process: systemd signals only a main process that survived ExecStop.",
            "KillMode=process",
        ]
    else:
        lines += [
            "# ExecStop (servicectl stop) does the stopping: its stop schedule, KILL,",
            "# confirmation. systemd acts only after it returns, and only on what is still in",
            "# the unit's cgroup (helpers that escaped the process group), so it never fights",
            "# servicectl over the service. KillMode=none is deprecated and would leave those.",
            "KillMode=control-group",
        ]
    lines += [
        "# The service stays in this unit's cgroup: systemd tracks every process of it (and",
        "# applies its limits), so servicectl makes no cgroup of its own for it.",
        f"Environment={TRACKED_BY}=systemd",
    ]
    lines += [f"{directive}={value}" for _, directive, value in _limits(svc)]
    lines += respawn_service
    lines += [*_unit_timeouts(svc), ""]
    if svc.enabled:
        lines += ["[Install]", "WantedBy=multi-user.target", ""]
    else:
        lines += [
            f"# No [Install] section: {svc.name} has enabled: false (start it by hand or as a",
            "# dependency; systemctl enable will refuse).",
            "",
        ]
    return GeneratedFile(f"{svc.name}.service", "\n".join(lines), 0o644, _runs(svc))


def _unit_timeouts(svc: Service) -> list[str]:
    """TimeoutStartSec= and TimeoutStopSec= that leave servicectl its own limits."""
    steps = svc.stop_steps
    if steps[-1][0] == signal.SIGKILL:
        steps = steps[:-1]  # the wait after KILL is in the margin
    stop_seconds = sum(seconds for _, seconds in steps)
    start_timeout = math.ceil(svc.start_timeout + svc.start_grace + stop_seconds)
    if svc.check_command:
        start_timeout += math.ceil(svc.start_timeout)  # the config test's own limit
    return [
        "# start: start_timeout + start_grace + the stop schedule's waits (a failed start is",
        f"# cleaned up) + {START_MARGIN} s, + start_timeout for a config test; stop: the",
        f"# schedule's waits + {STOP_MARGIN} s (KILL and confirmation).",
        f"TimeoutStartSec={start_timeout + START_MARGIN}",
        f"TimeoutStopSec={math.ceil(stop_seconds) + STOP_MARGIN}",
    ]


_UNIT_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./@:+,=-")
