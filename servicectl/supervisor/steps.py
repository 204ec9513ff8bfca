"""The supervisor's actions: what each entry of the state table (machine.TABLE) does. Each one
runs in the poll loop, moves the service to its next state, and starts the job that state
needs (in a worker thread, servicectl/supervisor/jobs.py); the job's end (``on_done``) moves
it on.
"""

from __future__ import annotations

import time

from servicectl.states import RELOADING, RESPAWNING, STOPPED, STOPPING
from servicectl.supervisor import jobs, protocol
from servicectl.supervisor.machine import (
    DUE,
    REQUESTS,
    RESTART,
    RUNNING,
    START,
    STARTING,
    STOP,
    TABLE,
    TELL,
    UNHEALTHY,
    Job,
    Unit,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from servicectl.supervisor.jobs import Result
    from servicectl.supervisor.protocol import Conn

UNKNOWN_EXIT = 1 << 16  # a pending exit whose status is unknown (no status is this large)


class Steps:
    """The table's actions (mixed into the Supervisor, which provides the loop's means:
    ``work`` starts a job, ``watch``/``unwatch`` a process, ``answer`` a connection)."""

    units: dict[str, Unit]

    if TYPE_CHECKING:  # provided by the Supervisor

        def work(self, unit: Unit, kind: str, conn: Conn | None, fn: Any, *args: Any) -> None: ...
        def watch(self, unit: Unit, pid: int, starttime: int) -> None: ...
        def unwatch(self, unit: Unit) -> None: ...
        def answer(self, conn: Conn, reply: dict[str, Any]) -> None: ...
        def progress_for(self, conn: Conn | None) -> Any: ...
        def transition(self, unit: Unit, state: str, why: str) -> None: ...
        def schedule(self, unit: Unit) -> None: ...
        def forget(self, unit: Unit) -> None: ...
        def alive_conn(self, conn: Conn | None) -> bool: ...
        def collect(self, unit: Unit) -> tuple[int | None, str]: ...

    # ------------------------------------------------------------------ events

    def event(self, unit: Unit, event: str, *args: Any) -> None:
        """Look ``event`` up in the table for the unit's state, and do what it says."""
        action = TABLE[unit.state].get(event)
        if action is not None:
            getattr(self, f"on_{action}")(unit, *args)

    def request(self, conn: Conn, msg: dict[str, Any], unit: Unit) -> None:
        """A command's request: done now, or once the job under way is done (a job of the
        supervisor's own is cancelled for it). A stop or a restart moves the service to
        ``stopping`` at once, even before that job has ended: no respawn can follow."""
        op = str(msg.get("op"))
        event = REQUESTS[op]
        if event == RESTART and op != "restart" and unit.state != RUNNING:
            event = TELL  # try-restart, force-reload of what does not run: nothing to restart
        job = unit.job
        if job is None and not unit.waiting:
            self.take(unit, conn, msg, event)
            return
        unit.waiting.append((conn, msg))
        if job is not None and job.own:
            job.cancel.set()
            if event in (STOP, RESTART):
                job.preempted = True
                if unit.state != STOPPING:
                    self.transition(unit, STOPPING, f"{op}: the {job.kind} is cancelled")

    def take(self, unit: Unit, conn: Conn, msg: dict[str, Any], event: str) -> None:
        op = str(msg.get("op"))
        unit.unconfirmed = None  # the last stop was heard, or it does not matter any more
        action = TABLE[unit.state].get(event)
        if action is None:
            self.answer(conn, {"ok": False, "code": 1, "message": f"{unit.name}: {op}: busy"})
            return
        getattr(self, f"on_{action}")(unit, conn, msg)

    def next(self, unit: Unit) -> None:
        """After a job: the next waiting request, else what is due, else forget the unit."""
        while unit.job is None and unit.waiting:
            conn, msg = unit.waiting.pop(0)
            if not self.alive_conn(conn):
                continue
            op = str(msg.get("op"))
            event = REQUESTS[op]
            if event == RESTART and op != "restart" and unit.state != RUNNING:
                event = TELL
            self.take(unit, conn, msg, event)
        if unit.job is None and unit.state == RESPAWNING:
            if time.monotonic() >= unit.due:
                self.event(unit, DUE)
            else:
                self.schedule(unit)
        if unit.idle:
            self.forget(unit)

    # ------------------------------------------------------------------ requests

    def on_start(self, unit: Unit, conn: Conn, msg: dict[str, Any]) -> None:
        if unit.state != RUNNING:  # a start by a command begins a new count
            unit.restarts, unit.history, unit.last_exit = 0, [], None
        # What runs stays watched (and reaped) meanwhile: the start finds it running, or, if
        # it exited just now, starts it anew.
        self.transition(unit, STARTING, "start requested")
        self.work(unit, "start", conn, jobs.start, self.progress_for(conn))

    def on_stop(self, unit: Unit, conn: Conn, msg: dict[str, Any]) -> None:
        self.unwatch(unit)
        self.transition(unit, STOPPING, "stop requested")
        self.work(unit, "stop", conn, jobs.stop, self.progress_for(conn))

    def on_restart(self, unit: Unit, conn: Conn, msg: dict[str, Any]) -> None:
        op = str(msg.get("op"))
        if op == "restart":
            unit.restarts, unit.history = 0, []
        self.unwatch(unit)
        self.transition(unit, STOPPING, f"{op} requested")
        self.work(unit, "restart", conn, jobs.restart, self.progress_for(conn), op)

    def on_tell(self, unit: Unit, conn: Conn, msg: dict[str, Any]) -> None:
        op, verb = str(msg.get("op")), str(msg.get("verb") or "")
        if unit.state == RUNNING:
            self.transition(unit, RELOADING, f"{op} {verb}".strip() + " requested")
        self.work(unit, "tell", conn, jobs.tell, self.progress_for(conn), op, verb)

    # ------------------------------------------------------------------ the supervisor's own

    def on_exited(self, unit: Unit, code: int | None, why: str = "") -> None:
        """The watched process exited (``code``: its status; None: unknown, ``why``)."""
        self.unwatch(unit)
        unit.last_exit = jobs.exit_of(code, why or "its supervisor was not its parent")
        oom = jobs.oom_cause(unit)
        if oom:
            unit.last_exit["oom"] = oom  # killed by the kernel at memory_max
        respawn, said = jobs.decide(unit)
        if respawn:
            assert unit.svc is not None
            unit.due = time.monotonic() + unit.svc.restart_delay
            self.transition(unit, RESPAWNING, said)
            if unit.svc.restart_delay <= 0:  # due now: one job records the exit and respawns
                self.transition(unit, STARTING, "respawn due")
                self.work(unit, "respawn", None, jobs.respawn, said)
                return
        else:
            self.transition(unit, STOPPED, said)
        self.work(unit, "exited", None, jobs.exited, said, respawn)

    def on_defer_exit(self, unit: Unit, code: int | None, why: str = "") -> None:
        self.unwatch(unit)
        unit.pending_exit = code if code is not None else UNKNOWN_EXIT

    def on_heal(self, unit: Unit, cause: str) -> None:
        self.unwatch(unit)
        self.transition(unit, STOPPING, cause)
        self.work(unit, "heal", None, jobs.heal, cause)

    def on_respawn(self, unit: Unit) -> None:
        self.transition(unit, STARTING, "respawn due")
        self.work(unit, "respawn", None, jobs.respawn)

    def unhealthy(self, unit: Unit, cause: str) -> None:
        """The health probe failed ``retries`` times in a row (from the prober)."""
        if unit.job is None:
            self.event(unit, UNHEALTHY, cause)

    # ------------------------------------------------------------------ a job's end

    def on_done(self, unit: Unit, job: Job, conn: Conn | None, result: Result) -> None:
        """A job ended: answer whoever asked, then move on from what it left: what runs of
        the service is watched (running); else what the supervisor decided (unless a stop
        or a restart came meanwhile), or stopped."""
        kind = job.kind
        if conn is not None:
            self._reply(unit, kind, conn, result)
        was = unit.state
        if result.alive is not None:
            unit.pending_exit = None  # what exited meanwhile was replaced (a re-exec)
            self.watch(unit, *result.alive)
            return
        if was == RELOADING or unit.pending_exit is not None:  # it exited during the job
            code, unit.pending_exit = unit.pending_exit, None
            unit.state = RUNNING
            if code is None:  # not seen yet: collected now
                self.on_exited(unit, *self.collect(unit))
            else:
                self.on_exited(unit, None if code == UNKNOWN_EXIT else code)
            return
        if kind in ("tell", "adopt") and was in (STOPPED, RESPAWNING):
            return  # a reload or an action of what does not run changed nothing
        if not job.preempted and self._decided(unit, kind, result):
            return
        if kind == "stop" and self._stopped(unit, conn, result):
            return
        self.transition(unit, STOPPED, f"{kind} done")

    def _decided(self, unit: Unit, kind: str, result: Result) -> bool:
        """The supervisor's own job said what comes next; whether it did."""
        if kind == "exited":
            return True  # on_exited moved it already
        if kind in ("respawn", "heal") and result.respawn is not None:
            assert unit.svc is not None
            unit.due = time.monotonic() + unit.svc.restart_delay
            self.transition(unit, RESPAWNING if result.respawn else STOPPED, result.said)
            return True
        if kind == "adopt":  # its process exited while it was being adopted
            unit.state = RUNNING
            self.on_exited(unit, *self.collect(unit))
            return True
        return False

    def _stopped(self, unit: Unit, conn: Conn | None, result: Result) -> bool:
        """A stop's end: until its requester says it heard it, how the service exited is
        kept (see gone); an interrupted stop after the exit, or one whose requester left
        before it ended (gone ran already: its socket is closed), records it now (and True)."""
        unit.last_exit = jobs.exit_of(result.code, "it was not the supervisor's child")
        left = conn is not None and conn.sock.fileno() < 0
        if result.error is None and conn is not None and not left:
            unit.unconfirmed = conn
        elif (left or jobs.interrupted(result.error)) and unit.svc is not None:
            why = "its requester left" if left else "its stop was interrupted"
            self.transition(unit, STOPPED, f"{why} after it exited")
            self.work(unit, "lost", None, jobs.lost_stop)
            return True
        return False

    def _reply(self, unit: Unit, kind: str, conn: Conn, result: Result) -> None:
        if result.error is not None:
            self.answer(conn, protocol.error_data(result.error))
            return
        reply: dict[str, Any] = {"ok": True}
        if result.outcome is not None:
            reply["outcome"] = protocol.outcome_data(result.outcome)
        if kind == "stop":
            reply["confirm"] = True
        self.answer(conn, reply)

    def gone(self, conn: Conn) -> None:
        """A connection closed (its servicectl finished, or died): its waiting requests are
        dropped, its job is cancelled (the job undoes it: a start kills what it spawned, a
        stop leaves what still runs supervised), and a stop whose end it never confirmed
        leaves a record of how the service exited."""
        for name in conn.names:
            unit = self.units.get(name)
            if unit is None:
                continue
            unit.waiting = [(c, m) for c, m in unit.waiting if c is not conn]
            if unit.job is not None and unit.job.conn is conn:
                unit.job.cancel.set()
            if unit.unconfirmed is conn:
                unit.unconfirmed = None
                if unit.job is None and unit.state == STOPPED and unit.last_exit is not None:
                    self.work(unit, "lost", None, jobs.lost_stop)
            if unit.idle:
                self.forget(unit)

    def confirm(self, conn: Conn, name: str) -> None:
        unit = self.units.get(name)
        if unit is not None and unit.unconfirmed is conn:
            unit.unconfirmed = None
            if unit.idle:
                self.forget(unit)


__all__ = ["Steps", "START", "STOP"]
