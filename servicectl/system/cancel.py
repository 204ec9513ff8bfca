"""Cancelling waits: servicectl interrupted (CANCEL, every worker thread), or one job
cancelled (a Cancel, the job's thread). Waits poll a Cancel's pipe beside their pidfds, so
cancellation wakes them at once; they look at CANCEL every CANCEL_SLICE seconds."""

from __future__ import annotations

import _thread
import os

TYPE_CHECKING = False


class _Flag:
    """Set once, read by every thread (what threading.Event would do here, without importing
    threading: a start of one service needs none)."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


CANCEL = _Flag()  # set when servicectl is interrupted: worker threads stop waiting
CANCEL_SLICE = 0.1  # how often a wait looks at CANCEL (exits still wake it at once)
_SCOPE = _thread._local()  # (threading.local is this) the Cancel of the job this thread runs


class Cancel:
    """The cancellation of one job (the supervisor cancels a job whose requester left): a
    flag, and a pipe that waits poll beside their pidfds so that it wakes them at once."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.flag = False

    def set(self) -> None:
        if not self.flag:
            self.flag = True
            try:
                os.write(self._w, b"x")
            except OSError:
                pass

    def fileno(self) -> int:
        return self._r

    def close(self) -> None:
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass


class cancel_scope:  # noqa: N801  (used as a function: ``with cancel_scope(cancel):``)
    """Waits in this thread stop (KeyboardInterrupt) once ``cancel`` is set. (A class:
    contextlib costs a command 1-2 ms.)"""

    def __init__(self, cancel: Cancel | None) -> None:
        self.cancel = cancel

    def __enter__(self) -> None:
        _SCOPE.cancel = self.cancel

    def __exit__(self, *exc: object) -> None:
        _SCOPE.cancel = None


def cancel_fd() -> int | None:
    """The descriptor a wait in this thread polls to learn of its cancellation (or None)."""
    scope = getattr(_SCOPE, "cancel", None)
    return scope.fileno() if scope is not None else None


def check_cancel() -> None:
    """Raise KeyboardInterrupt in a worker thread once servicectl has been interrupted, or once
    the job this thread runs was cancelled."""
    scope = getattr(_SCOPE, "cancel", None)
    if CANCEL.is_set() or (scope is not None and scope.flag):
        raise KeyboardInterrupt
