"""The note a failed start leaves: ``RUN_DIR/NAME.failed``, so that ``status`` can tell "failed
to start" from "never started", as systemd keeps a unit ``failed``.

A failed start leaves no process, no PID file and no state record (guarantee 5); it leaves
this note: why it failed, when, and how its process exited (the form a supervisor's record
uses: ``{"code": 1}``, ``{"signal": "KILL"}`` or ``{"unknown": why}``, with ``at``). The next
start or stop removes it. Written and read under the rules of state records (R-RUN-2):
atomically, never through a symlink, trusted only if owned by root or by the reader and not
writable by others, bounded; a note of another boot or of another definition file is ignored.
"""

from __future__ import annotations

import os
import stat
import time

from servicectl.files.atomic import atomic_write

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from _typeshed import StrPath

MAX_BYTES = 16 * 1024


def failure_path(run_dir: StrPath, name: str) -> str:
    return os.path.join(run_dir, f"{name}.failed")


def exit_form(code: int | None, why: str) -> dict[str, Any]:
    """How a process ended, as records say it (a waitstatus_to_exitcode value; None:
    unknown, with why), stamped with the time."""
    at = round(time.time(), 3)
    if code is None:
        return {"unknown": why, "at": at}
    if code < 0:
        from servicectl.definitions.schema import signal_name

        return {"signal": signal_name(-code), "at": at}
    return {"code": code, "at": at}


def remember(
    run_dir: StrPath, name: str, reason: str, code: int | None, definition: str, boot_id: str
) -> None:
    """Write the note of a failed start (quietly: a run directory that cannot be written had
    nothing of the start written to it either)."""
    import json

    note = {
        "reason": reason,
        "at": round(time.time(), 3),
        "last_exit": exit_form(code, "the start failed without an exit status"),
        "definition": definition,
        "boot_id": boot_id,
    }
    try:
        atomic_write(failure_path(run_dir, name), json.dumps(note).encode() + b"\n", 0o644)
    except OSError:
        pass


def forget(run_dir: StrPath, name: str) -> None:
    """Remove the note (a start or a stop of the service), quietly."""
    try:
        os.unlink(failure_path(run_dir, name))
    except OSError:
        pass


def read_failure(run_dir: StrPath, name: str) -> dict[str, Any] | None:
    """The note of the service's last failed start, or None (none, or not trustworthy:
    R-RUN-2)."""
    path = failure_path(run_dir, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:  # none, a symlink, unreadable: nothing to trust
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid not in (0, os.geteuid()):
            return None
        if st.st_mode & 0o022:
            return None
        raw = os.read(fd, MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > MAX_BYTES:
        return None
    from servicectl.jsontext import loads  # not json: its decoder imports re

    try:
        note = loads(raw)
    except ValueError:
        return None
    if not isinstance(note, dict) or not isinstance(note.get("reason"), str):
        return None
    if not isinstance(note.get("at"), (int, float)) or not isinstance(note.get("last_exit"), dict):
        return None
    return note
