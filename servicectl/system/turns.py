"""Turns: how many of a fleet's worker threads act at once, beside how many may wait at once.

A startall or stopall runs up to ``--jobs`` actions in parallel (64), so that their waits
(start_grace, readiness, a stop's grace, a lock) overlap. But Python runs one thread at a
time: when 64 threads all have work, every system call (an open of /proc, a write of a
record) hands the interpreter to another thread and back, two context switches each; at a
fleet of 1,000 that cost about a third of the CPU time of a stopall. So a worker needs a turn
to act (``take``), and gives it back while it waits (``paused``): as many threads act at once
as there are CPUs, and any number wait.

A turn is never a lock that anything depends on: a worker that cannot get one within
``WAIT_FOR_TURN`` goes on without it (a wait here that is not wrapped in ``paused`` only makes
others wait that long), and a thread that never took one (a single action, the supervisor's
jobs) is not affected at all.
"""

from __future__ import annotations

import _thread
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

WAIT_FOR_TURN = 0.25  # seconds a worker waits for a turn before it acts without one
_LOCAL = _thread._local()  # (threading.local is this) whether this thread holds a turn
_TURNS: list[Any] = []  # the semaphore, once a pool set it up


def setup(workers: int) -> None:
    """A pool of ``workers`` threads is about to start: give turns to as many as there are
    CPUs (at least 2), if fewer than the workers."""
    if _TURNS:
        return
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 2
    n = max(2, cpus)
    if n < workers:
        import threading

        _TURNS.append(threading.Semaphore(n))


def take() -> None:
    """Before a worker acts: wait for a turn (at most WAIT_FOR_TURN)."""
    if _TURNS and not getattr(_LOCAL, "held", False):
        _LOCAL.held = _TURNS[0].acquire(timeout=WAIT_FOR_TURN)


def give() -> None:
    """After a worker acted (or before it waits): give its turn back, if it has one."""
    if getattr(_LOCAL, "held", False):
        _LOCAL.held = False
        _TURNS[0].release()


class paused:
    """``with paused():`` around a wait: its turn is given back meanwhile, and taken again
    after (a thread without a turn is left as it is)."""

    def __enter__(self) -> None:
        self.held = getattr(_LOCAL, "held", False)
        if self.held:
            give()

    def __exit__(self, *exc: object) -> None:
        if self.held:
            take()
