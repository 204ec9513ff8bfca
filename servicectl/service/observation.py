"""What observe.inspect found of one service: its process (if any), its record and PID file,
what is left of it, and whether it runs.
"""

from __future__ import annotations

from servicectl.states import RUNNING, STARTING

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.system.pidfile import PidFileRead
    from servicectl.system.proc import ProcInfo
    from servicectl.system.record import Record


class Observation:
    """What is true of a service right now, and the evidence: ``state`` is running, starting,
    stopped, dead or unknown; ``leftovers``: files to clean when not running; ``remnants``: its
    group, after its main process exited; ``taken_by``: the definition file that runs a
    service of this name from the same run directory."""

    __slots__ = (
        "state",
        "pid",
        "info",
        "record",
        "pid_read",
        "notes",
        "leftovers",
        "remnants",
        "taken_by",
    )

    def __init__(
        self,
        state: str,
        pid: int | None = None,
        info: ProcInfo | None = None,
        record: Record | None = None,
        pid_read: PidFileRead | None = None,
        notes: list[str] | None = None,
        leftovers: bool = False,
        remnants: list[ProcInfo] | None = None,
        taken_by: str | None = None,
    ) -> None:
        self.state = state
        self.pid = pid
        self.info = info
        self.record = record
        self.pid_read = pid_read
        self.notes = notes if notes is not None else []
        self.leftovers = leftovers
        self.remnants = remnants if remnants is not None else []
        # Another definition file runs a service of this name from the same run directory.
        self.taken_by = taken_by

    @property
    def running(self) -> bool:
        return self.state in (RUNNING, STARTING)

    def now(self, state: str) -> Observation:
        """The same evidence, with the service now in ``state``."""
        other = Observation.__new__(Observation)
        for slot in Observation.__slots__:
            setattr(other, slot, getattr(self, slot))
        other.state = state
        return other
