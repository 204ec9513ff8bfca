"""The ``failed`` state of a service whose last start failed (system/failure.py keeps the note):
written when a start fails, removed by the next start that succeeds and by a stop, and shown by
``status`` as a supervisor's give-up is: state ``failed``, status code 1, ``last_exit`` with
``at``, and a note ``last start failed at 14:03:22: ...``.
"""

from __future__ import annotations

import os
import time

from servicectl.errors import ServicectlError, StatusCode
from servicectl.states import FAILED
from servicectl.system import failure, proc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from servicectl.definitions.schema import Service
    from servicectl.paths import Dirs


class noted:  # noqa: N801  (used as a function: ``with noted(svc, dirs):``)
    """Around the spawn of a start: a failure is noted (then raised as it was); a success
    removes the note of an earlier failure. (A class: contextlib costs a command 1-2 ms.)"""

    def __init__(self, svc: Service, dirs: Dirs) -> None:
        self.svc, self.dirs = svc, dirs

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, ServicectlError):
            note(self.svc, self.dirs, exc)
        elif exc is None:
            failure.forget(self.dirs.run, self.svc.name)


def note(svc: Service, dirs: Dirs, exc: ServicectlError) -> None:
    """Note that a start of ``svc`` failed with ``exc`` (until the next start or stop)."""
    reason = exc.message.removeprefix(f"{svc.name}: ").removeprefix("failed to start: ")
    code = getattr(exc, "exit_status", None)
    failure.remember(dirs.run, svc.name, reason, code, str(svc.file), proc.boot_id())


def forget(svc: Service, dirs: Dirs) -> bool:
    """Remove the note (a stop); whether there was one."""
    had = failure.read_failure(dirs.run, svc.name) is not None
    failure.forget(dirs.run, svc.name)
    return had


def describe(row: Any, svc: Service, dirs: Dirs) -> None:
    """Make a ``stopped`` status row (status_row.Status) ``failed`` when its last start failed."""
    note = failure.read_failure(dirs.run, svc.name)
    if note is None or note.get("boot_id") != proc.boot_id() or not _same_file(note, svc):
        return
    at = float(note["at"])
    row.state = FAILED
    row.code = int(StatusCode.DEAD)
    row.since = at
    row.last_exit = dict(note["last_exit"], reason=note["reason"])
    row.notes.append(f"last start failed at {_when(at)}: {note['reason']}")


def _same_file(note: dict[str, Any], svc: Service) -> bool:
    definition = note.get("definition")
    if not isinstance(definition, str) or definition == str(svc.file):
        return True
    try:
        return os.path.samefile(definition, svc.file)
    except OSError:
        return False


def _when(epoch: float) -> str:
    """``14:03:22`` today, ``2026-11-24 23:50:01`` another day."""
    then = time.localtime(epoch)
    if time.strftime("%Y-%m-%d", then) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M:%S", then)
    return time.strftime("%Y-%m-%d %H:%M:%S", then)
