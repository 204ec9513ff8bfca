"""How a supervisor comes to have services it did not start: what it keeps on disk for a
successor (each supervised service's definition, as data, beside its record; a marker that
some service of the run directory is supervised), what it finds there when it starts (the
supervised records whose supervisor is gone: adopted), and what it hands to the code it
executes on a hand-over (its services' states, in a memfd).

An adopted service that is not this supervisor's child (its supervisor died: it was
re-parented to init or to a subreaper) is watched through a pidfd: its exit status cannot be
known (docs/supervision.md: an unknown status is a failure for ``restart: on-failure``).
"""

from __future__ import annotations

import os
import select
import sys
import time

from servicectl import jsontext
from servicectl.errors import ServicectlError
from servicectl.service import supervised
from servicectl.states import EXITED, GAVE_UP, LAUNCHING, PHASE_STARTING, RESPAWNING
from servicectl.supervisor import jobs, protocol
from servicectl.supervisor.machine import RUNNING, STARTING, Unit
from servicectl.supervisor.start import say
from servicectl.system import proc
from servicectl.system.lock import is_locked
from servicectl.system.record import read_record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from _typeshed import StrPath

    from servicectl.supervisor.daemon import Supervisor
    from servicectl.system.record import Record


def definition_path(run: StrPath, name: str) -> str:
    """Where the supervisor keeps a service's definition for a successor (no service name
    starts with "."; the suffix keeps two names apart)."""
    return os.path.join(run, f".{name}.definition")


def save_definition(unit: Unit, saved: dict[str, int]) -> None:
    """Keep the unit's definition beside its record, if it changed since the last save."""
    from servicectl.files.atomic import atomic_write

    if unit.svc is None or unit.dirs is None:
        return
    data = jsontext.dumps(protocol.definition(unit.svc, unit.dirs), sort_keys=True).encode()
    digest = hash(data)  # this process's own memory of what it saved (no zlib to load)
    if saved.get(unit.name) == digest:
        return
    try:
        atomic_write(definition_path(unit.dirs.run, unit.name), data + b"\n", 0o600)
        saved[unit.name] = digest
    except OSError:
        pass  # a read-only run directory: a successor cannot adopt it (said at adoption)


def forget_definition(run: StrPath, name: str, saved: dict[str, int]) -> None:
    saved.pop(name, None)
    try:
        os.unlink(definition_path(run, name))
    except OSError:
        pass


def load_definition(run: StrPath, name: str) -> tuple[Any, Any] | None:
    """The definition a supervisor kept for ``name`` (None: none, or not readable as one)."""
    path = definition_path(run, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o077:
            return None  # not written by a supervisor of this user (R-SUP-4)
        raw = os.read(fd, protocol.MAX_LINE)
    finally:
        os.close(fd)
    try:
        return protocol.read_definition(jsontext.loads(raw))
    except ValueError:
        return None


def mark(run: StrPath, on: bool) -> None:
    """The marker that some service of this run directory is supervised: a command that finds
    it and no supervisor listening starts one (which adopts them)."""
    path = os.path.join(run, protocol.MARKER_NAME)
    try:
        if on:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            os.close(fd)
        else:
            os.unlink(path)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# Adoption after a supervisor's death


class Orphan:
    """A supervised record whose supervisor is gone, found at start-up: its unit, and how its
    process was found (``alive``: it runs; else the record says a respawn is due, or its
    process exited with nobody to see it)."""

    __slots__ = ("unit", "record", "alive")

    def __init__(self, unit: Unit, record: Record, alive: bool) -> None:
        self.unit = unit
        self.record = record
        self.alive = alive


def orphans(run: StrPath, me: int) -> tuple[list[Orphan], dict[int, list[str]], list[str]]:
    """The supervised records of ``run`` whose supervisor is gone (and not this one): what
    can be adopted, the dead supervisors (PID -> names), and what cannot be adopted (why)."""
    found: list[Orphan] = []
    dead: dict[int, list[str]] = {}
    refused: list[str] = []
    try:
        names = [e.name[: -len(".state")] for e in os.scandir(run) if e.name.endswith(".state")]
    except OSError:
        return found, dead, refused
    for name in sorted(names):
        record, _ = read_record(run, name)
        if record is None or record.supervision != supervised.OURS:
            continue
        if record.phase in (EXITED, GAVE_UP) or record.supervisor_pid == me:
            continue
        if supervised.supervisor_alive(record):
            continue
        if record.phase in (LAUNCHING, PHASE_STARTING) and is_locked(run, name):
            continue  # the command whose start it was sees it through (route.start)
        dead.setdefault(record.supervisor_pid, []).append(name)
        definition = load_definition(run, name)
        if definition is None or definition[0].name != name:
            refused.append(f"{name}: its definition was not kept (start it again)")
            continue
        unit = Unit(name, *definition)
        unit.restarts, unit.last_exit = record.restarts, record.last_exit
        info = proc.read_proc(record.pid)
        running = info is not None and not info.zombie and info.starttime == record.starttime
        found.append(Orphan(unit, record, running))
    return found, dead, refused


def note(why: str, old: int) -> dict[str, Any]:
    return {"at": round(time.time(), 3), "from": old, "why": why}


# ---------------------------------------------------------------------------------------------
# A hand-over: the state of every service, for the code this process executes next


def code_stamp() -> tuple[tuple[int, int, int], ...]:
    """What identifies the servicectl code on disk (an upgrade replaces these files)."""
    import servicectl

    top = os.path.dirname(servicectl.__file__)
    out = []
    for rel in ("__init__.py", "supervisor/daemon.py", "supervisor/protocol.py"):
        try:
            st = os.stat(os.path.join(top, rel))
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((0, 0, 0))
    return tuple(out)


def dump(units: list[Unit], said: dict[str, Any]) -> int:
    """The services' states in a memfd (inherited by the new code; its descriptor)."""
    now = time.monotonic()
    rows = []
    for u in units:
        if u.svc is None or u.dirs is None or u.state not in (RUNNING, RESPAWNING):
            continue
        row = protocol.definition(u.svc, u.dirs)
        row.update(
            name=u.name,
            state=u.state,
            pid=u.pid,
            starttime=u.starttime,
            due_in=max(0.0, u.due - now),
            restarts=u.restarts,
            ages=[now - t for t in u.history],
            last_exit=u.last_exit,
        )
        rows.append(row)
    fd = os.memfd_create("servicectl-handover", 0)
    data = jsontext.dumps({"from": said, "units": rows}).encode()
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def load(fd: int) -> tuple[dict[str, Any], list[Unit]]:
    """What ``dump`` wrote: who handed over, and the units (their state and data restored;
    the caller watches their processes again)."""
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    state = jsontext.loads(b"".join(chunks))
    now = time.monotonic()
    units = []
    for row in state.get("units", []):
        try:
            svc, dirs = protocol.read_definition(row)
        except ValueError as exc:
            raise ServicectlError(f"{row.get('name')}: its definition: {exc}") from None
        unit = Unit(svc.name, svc, dirs)
        unit.state = row["state"]
        unit.pid, unit.starttime = int(row["pid"]), int(row["starttime"])
        unit.due = now + float(row.get("due_in", 0))
        unit.restarts = int(row.get("restarts", 0))
        unit.history = [now - float(a) for a in row.get("ages", [])]
        unit.last_exit = row.get("last_exit")
        units.append(unit)
    return dict(state.get("from") or {}), units


# ---------------------------------------------------------------------------------------------
# The supervisor's side


def adopt_orphans(sup: Supervisor) -> None:
    """At start-up: adopt the supervised records whose supervisor is gone."""
    from servicectl.service import audit

    found, dead, refused = orphans(sup.run, sup.me[0])
    for pid, names in sorted(dead.items()):
        text = f"the supervisor (pid {pid}) of {', '.join(names)} in {sup.run} is gone"
        say(text)
        audit.note(f"{text}; pid {sup.me[0]} adopts them", audit.WARNING)
    for why in refused:
        say(f"cannot adopt {why}")
    for orphan in found:
        unit, record = orphan.unit, orphan.record
        unit.adopted = note("its supervisor was gone", record.supervisor_pid)
        sup.units[unit.name] = unit
        unit.pid, unit.starttime = record.pid, record.starttime
        if orphan.alive:
            sup.transition(unit, STARTING, "adopted")
            sup.work(unit, "adopt", None, jobs.adopt, "")
        elif record.phase == RESPAWNING:
            unit.move(RESPAWNING)
            unit.due = time.monotonic() + max(0.0, record.respawn_at - time.time())
            sup.work(unit, "adopt", None, jobs.adopt, "")
        else:
            unit.move(RUNNING)
            sup.on_exited(unit, None, "it exited while it had no supervisor")


def restore(sup: Supervisor, said: dict[str, Any], units: list[Unit]) -> None:
    """After a hand-over: the services of the supervisor this process was."""
    why = f"handed over by servicectl {said.get('version')} (schema {said.get('schema')})"
    for unit in units:
        unit.adopted = note(why, sup.me[0])
        sup.units[unit.name] = unit
        state = unit.state
        if state == RUNNING:
            unit.move(STARTING)
        sup.work(unit, "adopt", None, jobs.adopt, why)
    say(f"{why}: {len(units)} services")


def exec_handover(sup: Supervisor) -> None:
    """Execute the caller's code in this process, handing it every service: they stay
    this process's children (their exit statuses stay observable), none is restarted."""
    said = sup.handover
    assert said is not None
    fd = dump(list(sup.units.values()), sup.hello)
    keep = [fd, sup.listener.fileno()] + ([sup.lock_fd] if sup.lock_fd >= 0 else [])
    for k in keep:
        os.set_inheritable(k, True)
    # R-EXEC-1: isolated, the package loaded from the directory the newer command came from
    from servicectl.supervisor.client import SUPERVISOR_BOOT

    package = os.path.join(said["path"], "servicectl")
    argv = [said["python"], "-I", "-c", SUPERVISOR_BOOT, package, "servicectl.supervisor.daemon"]
    argv += [str(sup.run), "-", "--handover", ",".join(str(k) for k in keep)]
    if sup.foreground:
        argv.append("--foreground")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    say(f"executing {said['python']} with servicectl from {said['path']}")
    try:
        sys.stderr.flush()
        os.execve(said["python"], argv, env)
    except OSError as exc:
        say(f"the hand-over failed: cannot execute {said['python']}: {exc.strerror}")
        sup.refused.add(str(said.get("schema")))
        sup.handover = None
        os.close(fd)
        sup.poller.register(sup.listener.fileno(), select.POLLIN)
