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
FAILED = "failed"  # not used yet
INVALID = "invalid"  # its definition is broken
UNKNOWN = "unknown"  # no such service, or the run directory cannot be used

# The ``phase`` of a state record: how far the start that wrote it got.
LAUNCHING = "launching"  # a forking launcher runs; its daemon is not known yet
PHASE_STARTING = "starting"  # the process runs; start has not confirmed it (grace, readiness)
PHASE_RUNNING = "running"  # start confirmed it
UNRECORDED = "unrecorded"  # never on disk: a process found by its PID file alone

STATE_CODES = {
    RUNNING: StatusCode.RUNNING,
    STARTING: StatusCode.RUNNING,
    DEAD: StatusCode.DEAD,
    STOPPED: StatusCode.STOPPED,
    INVALID: StatusCode.UNKNOWN,
    UNKNOWN: StatusCode.UNKNOWN,
}
