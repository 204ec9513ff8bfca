"""One exclusive flock per service, held for a whole action (FIELD-NOTES 10).

The kernel drops the lock when its holder dies, so a killed servicectl never leaves it stale.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def lock_path(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.lock"


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


@contextmanager
def service_lock(run_dir: Path, name: str) -> Iterator[None]:
    """Hold the service's lock; blocks while another servicectl acts on the same service.

    The lock file is never removed: removing it would let two holders lock different files.
    """
    fd = _open(lock_path(run_dir, name))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def is_locked(run_dir: Path, name: str) -> bool:
    """Whether another process holds the service's lock right now (mid-start or mid-stop)."""
    try:
        fd = os.open(lock_path(run_dir, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False
