"""The state record beside a PID file: what identifies the process servicectl started (PID,
start time, boot id, executable, user, group), the definition it was started from, and its
phase. JSON, written atomically, read warily.
"""

from __future__ import annotations

import errno
import os
import stat
import time

from servicectl.files.atomic import atomic_write
from servicectl.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

    from _typeshed import StrPath

    from servicectl.definitions.schema import Service
    from servicectl.system.proc import ProcInfo


class Record(NamedTuple):
    """What servicectl knows about a service it started (the state file beside the PID file)."""

    pid: int
    starttime: int  # kernel clock ticks since boot (/proc/PID/stat field 22)
    boot_id: str
    uid: int
    pgid: int  # the service's own process group, verified at start (0: none)
    exe: str | None
    pid_file: str
    type: str
    phase: str = "running"  # "starting" until start has confirmed it
    started_at: float = 0.0  # wall clock, for people only
    command: tuple[str, ...] = ()
    user: str | None = None
    kill_mode: str = "group"
    status_text: str | None = None
    notify_socket: str | None = None
    sid: int = 0  # the session of the recorded process (0: unknown)
    seen: int = 0  # clock ticks since boot at which servicectl saw it alive in that session
    definition: str | None = None  # the definition file it was started from (None: unknown)
    # The definition's files at start, (path, mtime_ns, size, sha256) each (see drift.py).
    fingerprint: tuple[tuple[str, int, int, str], ...] = ()
    # The definition it was started with, parsed (drift.snapshot; None: not kept, as by older
    # servicectl versions): what status compares with the definition on disk.
    parsed: Optional[dict[str, Any]] = None
    # Supervision: who supervises it ("servicectl", "systemd"...; empty: nobody) and, for
    # servicectl's supervisor, that process (pid, start time); respawns since the last start,
    # the last exit seen ({"code": N} or {"signal": "KILL"} or {"unknown": why}, with "at"),
    # when a pending respawn is due (wall clock), and the supervisor's last word on it.
    supervision: str = ""
    supervisor_pid: int = 0
    supervisor_starttime: int = 0
    restarts: int = 0
    last_exit: Optional[dict[str, Any]] = None
    respawn_at: float = 0.0
    supervision_note: Optional[str] = None
    # What its readiness check could not tell (R-READY-1: whose socket answered), or None.
    ready_note: Optional[str] = None
    # Its cgroup v2 ("": none could be written; the process group and session track it), the
    # cgroup v1 ones its limits needed, and its memory_max (bytes, 0: none) when it started.
    cgroup: str = ""
    cgroups_v1: tuple[str, ...] = ()
    memory_max: int = 0
    tracked_by: str = ""  # "systemd": its systemd unit's cgroup holds it (cgroup.TRACKED_BY)
    # How its supervisor came to have it when it did not start it ({"at", "from", "why"}:
    # its supervisor died, or handed over), and its health ({"state", "since", "last",
    # "failures"}: see servicectl/supervisor/health.py).
    adopted: Optional[dict[str, Any]] = None
    health: Optional[dict[str, Any]] = None

    def to_json(self) -> bytes:
        from servicectl.jsontext import dumps  # not json: its decoder imports re

        return dumps(self._asdict(), sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes) -> Record:
        from servicectl.jsontext import loads  # not json: its decoder imports re

        data: dict[str, Any] = loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        known = _FIELDS.get(cls) or _FIELDS.setdefault(cls, frozenset(cls._fields))
        # fields of other versions (stop_signal...) are dropped
        values = data if known.issuperset(data) else {k: v for k, v in data.items() if k in known}
        if "command" in values:
            values["command"] = tuple(values["command"])
        if "fingerprint" in values:
            values["fingerprint"] = tuple(tuple(entry) for entry in values["fingerprint"])
        for key in ("last_exit", "adopted", "health", "parsed"):
            if not isinstance(values.get(key), (dict, type(None))):
                values[key] = None
        if not isinstance(values.get("cgroup", ""), str):
            values["cgroup"] = ""
        if "cgroups_v1" in values:
            values["cgroups_v1"] = tuple(p for p in values["cgroups_v1"] if isinstance(p, str))
        return cls(**values)


_FIELDS: dict[type, frozenset[str]] = {}


def state_path(run_dir: StrPath, name: str) -> str:
    return os.path.join(run_dir, f"{name}.state")


def read_record(run_dir: StrPath, name: str) -> tuple[Record | None, str | None]:
    """The service's state record, or (None, why it was ignored) if missing or unusable."""
    path = state_path(run_dir, name)
    raw, why = read_own(path, "the state file", 1 << 20)
    if raw is None:
        return None, why
    try:
        return Record.from_json(raw), None
    except (ValueError, TypeError):
        return None, f"the state file {path} is corrupt; ignored"


def read_own(path: StrPath, what: str, limit: int) -> tuple[bytes | None, str | None]:
    """The bytes (at most ``limit``) of a file servicectl wrote in a run directory, or (None,
    why it was ignored: ``what`` names it) if missing or not servicectl's: a symlink is not
    followed, only a regular file is read, without blocking, and only if written by root or
    by the user reading it, writable by its owner alone (docs/security.md R-RUN-2: a non-root
    reader trusts root's records, or it would call every service dead)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, f"{what} {path} is a symlink; not followed, ignored"
        return None, f"{what} {path} cannot be read ({exc.strerror}); ignored"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, f"{what} {path} is not a regular file; ignored"
        if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
            return None, f"{what} {path} was not written by servicectl; ignored"
        want = min(limit, st.st_size + 1)  # not a buffer of ``limit`` bytes for each read
        raw = os.read(fd, want)
        if len(raw) == want < limit:  # grown since the fstat: read on, up to ``limit``
            raw += os.read(fd, limit - want)
        return raw, None
    finally:
        os.close(fd)


def write_record(run_dir: StrPath, name: str, record: Record) -> None:
    atomic_write(state_path(run_dir, name), record.to_json(), 0o644)


def new_record(svc: Service, info: ProcInfo, **fields: Any) -> Record:
    """A state record of ``info`` as ``svc``'s process: its identity (PID, start time, boot,
    user, session) and what a later stop needs from the definition as it is now; ``fields``
    set or override the rest (phase, pgid, exe...)."""
    from servicectl.system import proc
    from servicectl.system.record import Record

    base: dict[str, Any] = {
        "pid": info.pid,
        "starttime": info.starttime,
        "boot_id": proc.boot_id(),
        "uid": info.uid,
        "sid": info.sid,
        "pid_file": str(svc.pid_file),
        "type": svc.type,
        "started_at": time.time(),
        "command": tuple(svc.command),
        "user": svc.user,
        "kill_mode": svc.kill_mode,
        "definition": str(svc.file),
    }
    base.update(fields)
    return Record(**base)
