"""What servicectl knows of a ``type: oneshot`` service: its last run, kept in the run
directory as ``NAME.oneshot`` (JSON, written atomically; read without following symlinks and
only if servicectl wrote it, as the state records of pidfile.py).

A oneshot has no process once its run is over. Its state is:

- ``starting`` (status 0) while its command runs (the run's PID is recorded first);
- ``exited`` (status 0) once the last run succeeded, until ``stop``;
- ``failed`` (status 1) when the last run failed (or was interrupted), with why and when;
- ``stopped`` (status 3) with no run recorded (never started, stopped, or before this boot).

The actions (start, stop, restart) are in oneshot.py; this module only observes.
"""

from __future__ import annotations

import os

from servicectl.service.observation import Observation
from servicectl.states import EXITED, FAILED, STARTING, STOPPED
from servicectl.system import proc
from servicectl.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

    from _typeshed import StrPath

    from servicectl.definitions.schema import Service
    from servicectl.paths import Dirs

RUNNING = "running"  # a run under way (the record's ``result``)
MAX_BYTES = 64 * 1024


class Run(NamedTuple):
    """A oneshot's last run: ``result`` is running, exited or failed; ``at`` (wall clock) is
    when it began (running) or ended; ``code``/``signal`` how its command ended."""

    result: str
    at: float
    boot_id: str
    definition: str = ""
    pid: int = 0
    starttime: int = 0
    code: Optional[int] = None
    signal: Optional[str] = None
    why: str = ""
    seconds: float = 0.0

    def to_json(self) -> bytes:
        import json

        return json.dumps(self._asdict(), sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes) -> Run:
        from servicectl.jsontext import loads  # not json: its decoder imports re

        data: Any = loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        values = {k: v for k, v in data.items() if k in cls._fields}
        run = cls(**values)
        if run.result not in (RUNNING, EXITED, FAILED) or not isinstance(run.at, (int, float)):
            raise ValueError("not a oneshot's run")
        return run

    def last_exit(self) -> dict[str, object] | None:
        """As status --json says an exit: ``{"code": N}`` or ``{"signal": "KILL"}``, with at."""
        if self.signal:
            return {"signal": self.signal, "at": self.at}
        if self.code is not None:
            return {"code": self.code, "at": self.at}
        return None


def run_path(run_dir: StrPath, name: str) -> str:
    return os.path.join(run_dir, f"{name}.oneshot")


def read(run_dir: StrPath, name: str) -> tuple[Run | None, str | None]:
    """The last run, or (None, why it was ignored) if missing or unusable."""
    from servicectl.system.record import read_own

    path = run_path(run_dir, name)
    raw, why = read_own(path, "the run record", MAX_BYTES)
    if raw is None:
        return None, why
    try:
        return Run.from_json(raw), None
    except (ValueError, TypeError):
        return None, f"the run record {path} is corrupt; ignored"


def write(run_dir: StrPath, name: str, run: Run) -> None:
    from servicectl.files.atomic import atomic_write

    atomic_write(run_path(run_dir, name), run.to_json(), 0o644)


def remove(run_dir: StrPath, name: str) -> None:
    from servicectl.system.pidfile import remove_file

    remove_file(run_path(run_dir, name))


def _ours(run: Run, svc: Service) -> bool:
    if not run.definition or run.definition == str(svc.file):
        return True
    try:
        return os.path.samefile(run.definition, svc.file)
    except OSError:
        return False


def observe(svc: Service, dirs: Dirs) -> tuple[Observation, Run | None]:
    """The oneshot's state now, and the run it comes from (None: no run of this boot)."""
    from servicectl.system.lock import is_locked

    run, note = read(dirs.run, svc.name)
    notes = [note] if note else []
    if run is not None and run.boot_id != proc.boot_id():
        notes.append("its last run was before the last reboot")
        return Observation(STOPPED, notes=notes), None
    if run is not None and not _ours(run, svc):
        notes.append(f"{run.definition} runs a service of this name from {dirs.run}")
        return Observation(STOPPED, notes=notes, taken_by=run.definition), None
    if run is None:
        return Observation(STOPPED, notes=notes), None
    if run.result == RUNNING:
        info = proc.read_proc(run.pid)
        if info is not None and not info.zombie and info.starttime == run.starttime:
            if not is_locked(dirs.run, svc.name):
                notes.append("the start that runs it was interrupted; its command still runs")
            return Observation(STARTING, run.pid, info, notes=notes), run
        if is_locked(dirs.run, svc.name):
            return Observation(STARTING, notes=notes), run
        run = run._replace(result=FAILED, why="its run was interrupted (servicectl was killed)")
    return Observation(run.result, notes=notes), run


def describe(row: Any, run: Run | None) -> None:
    """Fill a status row (status_row.Status) with what is known of the last run: since when it is
    in its state, how it ended, and why it failed."""
    import time

    if run is None:
        return
    row.last_exit = run.last_exit()
    row.since = run.at
    if run.result == FAILED:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.at))
        row.notes.append(f"failed at {when}: {run.why}")
