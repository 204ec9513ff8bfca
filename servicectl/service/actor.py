"""Who carries out an action on one service: servicectl's command (``COMMAND``, the default),
or the run directory's supervisor, which passes an Actor of its own to the same lifecycle code
(servicectl/supervisor/jobs.py). What differs between the two is here, passed down, never a
module-wide switch:

- ``fields``: what every record a start writes says of its supervision (the supervisor's PID,
  the restarts so far, the last exit: from the first write on);
- ``spawned``: a process the start spawned (the supervisor keeps its Popen: it reaps it itself;
  the command keeps it too, until it exits: see ``Actor.spawned``);
- ``attach``: a start found the service running: the supervisor supervises it from now on;
- ``keep_record``: a respawn: a failed start leaves the record (rewritten with the exit at once),
  so that no reader ever sees the service unrecorded;
- ``reaped``: the exit statuses a stop collected (PID -> status);
- ``cancel``: the job's cancellation (its requester left), or None.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import Any

    from servicectl.definitions.schema import Service
    from servicectl.paths import Dirs
    from servicectl.system.cancel import Cancel
    from servicectl.system.record import Record


class Actor:
    """servicectl's command acting on a service: it supervises nothing and keeps nothing."""

    keep_record = False
    cancel: Cancel | None = None
    reaped: dict[int, int] | None = None  # None: nobody asks

    def fields(self, svc: Service) -> dict[str, Any]:
        """Record fields of a start beyond its process: who supervises it, if someone else
        does (a systemd unit's ``SERVICECTL_SUPERVISED_BY``)."""
        from servicectl.service.supervised import start_fields

        return start_fields(svc)

    def spawned(self, child: subprocess.Popen[bytes]) -> None:
        """A process this action spawned (its parent is this process), left running: its Popen
        is kept for as long as this command runs. A Popen dropped while its child runs goes
        on subprocess's list of children to collect, which every later Popen polls (one
        waitpid each): a startall of 1,000 made half a million waitpid calls that way. Never
        collected here, the children are inherited by init when the command exits."""
        _LEFT_RUNNING.append(child)

    def attach(self, svc: Service, dirs: Dirs, record: Record) -> str:
        """A start found ``svc`` running (``record``): a note for its message."""
        return ""


_LEFT_RUNNING: list[subprocess.Popen[bytes]] = []  # see Actor.spawned
COMMAND = Actor()
