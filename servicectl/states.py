"""Named states of a service and phases of its state record, and the LSB status code of each.

The values are what ``status --json`` prints and what the state record holds on disk: they
never change.
"""

from __future__ import annotations

from servicectl.errors import StatusCode

# What ``status`` says of a service.
RUNNING = "running"
STARTING = "starting"  # a start is under way (its servicectl holds the lock, or a launch runs)
STOPPED = "stopped"
DEAD = "dead"  # not running, but its PID file or state record is left
FAILED = "failed"  # supervised, and its supervisor gave up (too many respawns)
INVALID = "invalid"  # its definition is broken
UNKNOWN = "unknown"  # no such service, or the run directory cannot be used

# The ``phase`` of a state record: how far the start that wrote it got.
LAUNCHING = "launching"  # a forking launcher runs; its daemon is not known yet
PHASE_STARTING = "starting"  # the process runs; start has not confirmed it (grace, readiness)
PHASE_RUNNING = "running"  # start confirmed it
UNRECORDED = "unrecorded"  # never on disk: a process found by its PID file alone
# Written by the supervisor once the recorded process has exited (its exit is in the record):
RESPAWNING = "respawning"  # a respawn is due after restart_delay
GAVE_UP = "failed"  # too many respawns: the service is failed until the next start
EXITED = "exited"  # its exit called for no respawn (a clean exit under on-failure)
# ... and what ``status`` says of a ``type: oneshot`` whose last run succeeded (oneshot.py):
# status 0, as systemd's active (exited).

# A supervised service in its supervisor (servicectl/supervisor/machine.py: the table of these
# states and the events that move them): the same words as the phases and the states above.
# STOPPED: nothing of it is watched or due; PHASE_STARTING: a start or a respawn is under way;
# PHASE_RUNNING: its process runs and is watched; RELOADING: it runs, and a reload or an action
# is under way; STOPPING: a stop or a restart is under way, and no respawn can follow;
# RESPAWNING: its process exited and a respawn is due after restart_delay.
RELOADING = "reloading"
STOPPING = "stopping"
# Health (``health:``), as the record and status say it.
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"

STATE_CODES = {
    RUNNING: StatusCode.RUNNING,
    STARTING: StatusCode.RUNNING,
    DEAD: StatusCode.DEAD,
    FAILED: StatusCode.DEAD,
    STOPPED: StatusCode.STOPPED,
    EXITED: StatusCode.RUNNING,
    INVALID: StatusCode.UNKNOWN,
    UNKNOWN: StatusCode.UNKNOWN,
}
