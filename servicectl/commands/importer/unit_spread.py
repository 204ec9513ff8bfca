"""The parts of a unit's import that systemd spreads over several keys:

- the directories a service needs: ``RuntimeDirectory=`` and its siblings (owned by ``User=``,
  but ``ConfigurationDirectory=``, which systemd leaves to root), ``ExecStartPre=``/``Post``
  ``mkdir``/``chown``/``install -d`` lines, and the tmpfiles.d entries for the unit's paths;
- ``ExecStart=!`` and ``+``: the program runs with full privileges (no ``user:``; ``User=``
  still owns the directories, as systemd has it);
- ``Type=oneshot`` (with ``RemainAfterExit=``, several ``ExecStart=``, ``ExecStop=``);
- ``Restart=`` values servicectl has no word for.
"""

from __future__ import annotations

import os
import re
import shlex

from servicectl.commands.importer import sysfiles
from servicectl.commands.importer.commands import dir_command

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from servicectl.commands.importer.unit import _State
    from servicectl.commands.importer.unit_parse import Entry

DIRECTORY_KEYS = {
    "RuntimeDirectory": "/run",
    "StateDirectory": "/var/lib",
    "CacheDirectory": "/var/cache",
    "LogsDirectory": "/var/log",
    "ConfigurationDirectory": "/etc",
}
# Restart= values servicectl has no word for: the nearest policy that respawns at least when
# systemd would, and what is different.
RESTART = {
    "on-abnormal": ("on-failure", "also after a non-zero exit status, which systemd would not"),
    "on-abort": ("on-failure", "also after a non-zero exit status or SIGTERM-like signals"),
    "on-watchdog": ("on-failure", "servicectl has no watchdog (WatchdogSec=): see health:"),
    "on-success": ("always", "also after a failure, which systemd would not"),
}


def restart(s: _State, e: Entry) -> None:
    value = e.value
    if value in ("no", "on-failure", "always"):
        s.draft.set("restart", value, e.line, e.text)
    elif value in RESTART:
        policy, differs = RESTART[value]
        s.draft.set("restart", policy, e.line, e.text)
        s.draft.note(f"line {e.line}: {e.text}: restart: {policy} respawns {differs}")
    else:
        s.draft.skip(e.line, e.text, "servicectl respawns: no, on-failure or always")


# ---------------------------------------------------------------------------------------------
# Directories


def directory_key(s: _State, e: Entry) -> None:
    base = DIRECTORY_KEYS[e.key]
    for name in e.value.split():
        if ".." in name.split("/") or name.startswith("/"):
            s.draft.skip(e.line, e.text, f"{name}: not a relative directory name")
            continue
        info: dict[str, Any] = {"key": e.key, "entry": e}
        _add(s, f"{base}/{name}", info)


def directory_mode(s: _State, e: Entry) -> None:
    if re.fullmatch(r"0?[0-7]{3,4}", e.value):
        s.modes[e.key[: -len("Mode")]] = e.value
    else:
        s.draft.skip(e.line, e.text, "not an octal mode")


def exec_dirs(s: _State, e: Entry, argv: list[str]) -> bool:
    """An ``ExecStartPre=``/``Post`` line that makes or owns directories (``mkdir -p``,
    ``chown``, ``chmod``, ``install -d``): taken as ``directories``. False if it is none."""
    work = dir_command(argv)
    if work is None:
        return False
    for path, info in work:
        if not path.startswith("/"):
            s.draft.skip(e.line, e.text, f"{path}: not an absolute path")
            return True
        _add(s, path, {**info, "entry": e})
    return True


def _add(s: _State, path: str, info: dict[str, Any]) -> None:
    entry = s.dirs.setdefault(path.rstrip("/") or "/", {})
    for key, value in info.items():
        entry.setdefault(key, value)
    if info.get("owner") or info.get("group") or info.get("mode"):
        entry.update({k: v for k, v in info.items() if k in ("owner", "group", "mode")})


def _tmpfiles(s: _State) -> None:
    """tmpfiles.d's directories for the unit's paths (mariadb.conf's /run/mysqld)."""
    stem = s.spec.prefix
    for t in sysfiles.tmpfiles_for(s.system, stem, s.text):
        if t.path in s.dirs:
            continue
        info: dict[str, Any] = {"tmpfiles": t, "mode": t.mode, "owner": t.owner or "root"}
        info["group"] = t.group or "root"
        s.dirs[t.path] = {k: v for k, v in info.items() if v is not None}


def directories(s: _State) -> None:
    """All of them as ``directories``, each under systemd's ownership rules."""
    _tmpfiles(s)
    out: list[object] = []
    origins: list[str] = []
    first = None
    for path, info in s.dirs.items():
        item = _item(s, path, info)
        out.append(item if len(item) > 1 else path)
        e = info.get("entry")
        t = info.get("tmpfiles")
        origins.append(e.text if e is not None else f"{t.where}: {t.text.strip()}" if t else path)
        first = first or (e.line if e is not None else None)
    if out:
        s.draft.set("directories", out, first, "; ".join(dict.fromkeys(origins)))


def _item(s: _State, path: str, info: dict[str, Any]) -> dict[str, str]:
    key = info.get("key")
    item: dict[str, str] = {"path": path}
    mode = info.get("mode") or (s.modes.get(key) if key else None)
    owner: str | None
    group: str | None
    if key == "ConfigurationDirectory":
        owner, group = "root", "root"  # systemd never hands a service its configuration
    elif key is not None:
        owner, group = s.account  # User=/Group= own them, even under ExecStart=!
    else:
        owner, group = info.get("owner"), info.get("group")
    user, svc_group = s.draft.values.get("user"), s.draft.values.get("group")
    if owner and owner != (user or "root"):
        item["owner"] = str(owner)
    if group and group != (svc_group or (_primary_group(user) if user else "root")):
        item["group"] = str(group)
    if mode and str(mode).lstrip("0") != "755":
        item["mode"] = str(mode)
    return item


def _primary_group(user: str | None) -> str | None:
    """The name of ``user``'s primary group on this machine (None if unknown)."""
    import grp
    import pwd

    try:
        return grp.getgrgid(pwd.getpwnam(str(user)).pw_gid).gr_name
    except (KeyError, OverflowError):
        return None


# ---------------------------------------------------------------------------------------------
# Full privileges, oneshot


def privileged(s: _State) -> None:
    """``ExecStart=!``/``+`` with ``User=``: the program runs as root (it drops privileges
    itself: chronyd -u _chrony); User= and Group= still own the service's directories."""
    d = s.draft
    user = d.values.pop("user", None)
    group = d.values.pop("group", None)
    if user is None:
        return
    s.account = (user, group or _primary_group(user) or user)
    assert s.start_entry is not None
    d.note(
        f"line {s.start_entry.line}: {s.start_entry.key}= runs with full privileges "
        f"('{s.start_prefix}'): no user:, the program runs as root; User={user} owns its "
        "directories"
    )


def oneshot(s: _State) -> None:
    """``Type=oneshot``: the ExecStart= lines in turn (a shell runs several), ExecStop= as
    stop_command; it stays exited after a successful run, as RemainAfterExit=yes has it."""
    d = s.draft
    d.set("type", "oneshot", s.type_line, "Type=oneshot")
    if len(s.starts) > 1:
        line = " && ".join(shlex.join(argv) for _, argv in s.starts)
        d.set("command", ["/bin/sh", "-c", line], s.starts[0][0].line, "ExecStart= (each)")
        d.note(f"the {len(s.starts)} ExecStart= lines run in turn, stopping at the first failure")
    if len(s.stops) == 1:
        e, argv = s.stops[0]
        d.set("stop_command", argv, e.line, e.text)
    elif s.stops:
        line = " ; ".join(shlex.join(argv) for _, argv in s.stops)
        d.set("stop_command", ["/bin/sh", "-c", line], s.stops[0][0].line, "ExecStop= (each)")
    if not s.remain:
        d.note(
            "no RemainAfterExit=yes: systemd forgets a oneshot once it ran; servicectl keeps it "
            "exited until stop (restart runs it again)"
        )
    for e, _ in s.reload:
        d.skip(e.line, e.text, "a oneshot is not reloaded (restart runs it again)")
    s.reload = []
    if s.pid is not None:
        d.skip(s.pid.line, s.pid.text, "a oneshot leaves no process: no PID file")
    restart = d.values.pop("restart", None)
    if restart not in (None, "no"):
        d.skip(None, f"Restart={restart}", "a oneshot is not respawned by servicectl")
    for key in ("restart_delay", "start_limit"):
        d.values.pop(key, None)


def exec_start_prefix(value: str) -> str:
    """The prefixes of an Exec*= line (``!``, ``+``, ``-``...)."""
    m = re.match(r"[-@+!:]*", value)
    return m.group(0) if m else ""


def stem_of(path: str) -> str:
    return os.path.basename(path)
