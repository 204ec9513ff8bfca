"""A supervised service in its supervisor: one state, the data that state needs, and the table
of what each event does in each state (as s6-supervise keeps its states and events).

The states are the words of servicectl/states.py (the record's phases where they overlap):

- ``stopped``: nothing of it is watched or due (the record may say ``exited`` or ``failed``);
- ``starting``: a start (a command's) or a respawn (the supervisor's own) is under way;
- ``running``: its process runs and is watched (its exit wakes the supervisor at once);
- ``reloading``: it runs and is watched, and a reload or an action is under way;
- ``stopping``: a stop, a restart or a health restart is under way;
- ``respawning``: its process exited; a respawn is due at ``Unit.due``.

Events: the requests of commands (start, stop, restart, tell: a reload or an action), the
exit of the watched process, the respawn's due time, a health verdict, the end of a job (done),
and the end of a requester's connection (gone).

One job at a time acts on a service (in a worker thread, under the service's lock); a request
that comes while one runs waits for it, in order, as commands wait for the lock. A job of the
supervisor's own (a respawn, the record of an exit, a health restart) gives way: a request
cancels it. **Stop wins by construction**: a stop (or a restart) moves the service to
``stopping`` before anything is signalled, even while a respawn is being cancelled, and no
entry of the table leads from ``stopping`` to a respawn: only ``done`` leaves it, to
``stopped``, or back to ``running`` when the stop was interrupted and the process still runs.
"""

from __future__ import annotations

from servicectl.states import (
    PHASE_RUNNING,
    PHASE_STARTING,
    RELOADING,
    RESPAWNING,
    STOPPED,
    STOPPING,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from servicectl.definitions.schema import Service
    from servicectl.paths import Dirs
    from servicectl.system.proc import Handle

STARTING, RUNNING = PHASE_STARTING, PHASE_RUNNING
STATES = (STOPPED, STARTING, RUNNING, RELOADING, STOPPING, RESPAWNING)

# Events
START, STOP, RESTART, TELL = "start", "stop", "restart", "tell"  # a command's request
EXIT, DUE, UNHEALTHY = "exit", "due", "unhealthy"
REQUESTS = {
    "start": START,
    "stop": STOP,
    "restart": RESTART,
    "try-restart": RESTART,
    "force-reload": RESTART,
    "reload": TELL,
    "action": TELL,
}

# What each event does in each state: the name of the supervisor's action (a method
# ``on_<name>`` of servicectl/supervisor/daemon.py's Supervisor), which also sets the next
# state. A request is looked up only when no job runs (it waits for the job otherwise); an
# event missing from a state's row is ignored there (a due time or a health verdict that
# came late). ``done`` and ``gone`` are handled alike in every state (the job's result says
# what comes next: see on_done).
TABLE: dict[str, dict[str, str]] = {
    STOPPED: {START: "start", STOP: "stop", RESTART: "restart", TELL: "tell"},
    STARTING: {EXIT: "defer_exit"},  # requests wait (and cancel a respawn); a start of what
    # runs keeps it watched: its exit is handled once the start is done
    RUNNING: {
        START: "start",  # already running: the start says so (and supervises it)
        STOP: "stop",
        RESTART: "restart",
        TELL: "tell",  # -> reloading
        EXIT: "exited",  # -> respawning, or stopped (exited, failed)
        UNHEALTHY: "heal",  # -> stopping, then respawning
    },
    RELOADING: {EXIT: "defer_exit"},  # the exit is handled once the reload or action is done
    STOPPING: {},  # no exit is watched, no respawn is due: only done leaves it
    RESPAWNING: {
        START: "start",  # now, instead of at the due time
        STOP: "stop",  # ends what is left, removes the record
        RESTART: "restart",
        TELL: "tell",  # not running: says a respawn is pending
        DUE: "respawn",  # -> starting
    },
}


class Job:
    """One job under way on a service: what it is, who asked for it (a connection, or None:
    the supervisor itself), and its cancellation."""

    __slots__ = ("kind", "conn", "cancel", "own", "preempted")

    def __init__(self, kind: str, conn: Any, cancel: Any) -> None:
        self.kind = kind
        self.conn = conn
        self.cancel = cancel
        self.own = conn is None  # the supervisor's own job: a command's request cancels it
        self.preempted = False  # a stop or a restart came: what the job decided is void


class Unit:
    """One supervised service as its supervisor knows it: its state, and the data of that
    state (the watched process while running or reloading, the due time while respawning);
    what it remembers across states (its definition, its respawns, its last exit, its
    health); the job under way and the requests waiting for it."""

    __slots__ = (
        "name",
        "state",
        "svc",
        "dirs",
        "pid",
        "starttime",
        "handle",
        "due",
        "job",
        "waiting",
        "restarts",
        "history",
        "last_exit",
        "pending_exit",
        "unconfirmed",
        "adopted",
        "health",
        "lines",
    )

    def __init__(self, name: str, svc: Service | None = None, dirs: Dirs | None = None) -> None:
        self.name = name
        self.state = STOPPED
        self.svc = svc
        self.dirs = dirs
        # running, reloading: the watched main process; a pidfd when it is not a child
        self.pid = 0
        self.starttime = 0
        self.handle: Handle | None = None
        self.due = 0.0  # respawning: when the respawn is due (monotonic)
        self.job: Job | None = None
        self.waiting: list[tuple[Any, dict[str, Any]]] = []  # (connection, request)
        self.restarts = 0  # respawns since the last start by a command
        self.history: list[float] = []  # monotonic times of respawns, for start_limit
        self.last_exit: dict[str, Any] | None = None
        self.pending_exit: int | None = None  # reloading: the exit status seen meanwhile
        self.unconfirmed: Any = None  # a stop whose requester has not said it heard the end
        self.adopted: dict[str, Any] | None = None  # how this supervisor came to have it
        self.health: Any = None  # its health probe's state (supervisor/health.py)
        self.lines: list[str] = []  # what its log is to say of its transitions, not written yet

    def move(self, state: str) -> None:
        assert state in STATES, state
        self.state = state

    @property
    def watched(self) -> bool:
        """Whether the loop watches its process now (and reaps it)."""
        return self.state in (RUNNING, RELOADING) and self.pid > 0

    @property
    def idle(self) -> bool:
        """Nothing to do for it, nothing to remember: it can be forgotten."""
        return (
            self.state == STOPPED
            and self.job is None
            and not self.waiting
            and self.unconfirmed is None
        )

    def info(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "pid": self.pid if self.watched else None,
            "job": self.job.kind if self.job else None,
            "waiting": len(self.waiting),
            "restarts": self.restarts,
        }
