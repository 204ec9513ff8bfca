"""The result of an action on one service (Outcome: its exit code, message and PID) and the
failure of a start (StartFailed).
"""

from __future__ import annotations

from servicectl.errors import ServicectlError


class Outcome:
    """What an action did to one service, for one output line (``ok_line`` False: print it on
    stderr as an error)."""

    __slots__ = ("name", "code", "message", "pid", "elapsed", "detail", "ok_line")

    def __init__(
        self,
        name: str,
        code: int,
        message: str,
        pid: int | None = None,
        elapsed: float = 0.0,
        detail: str = "",
        ok_line: bool = True,
    ) -> None:
        self.name = name
        self.code = code
        self.message = message
        self.pid = pid
        self.elapsed = elapsed
        self.detail = detail
        self.ok_line = ok_line

    def __repr__(self) -> str:
        return f"Outcome({self.name!r}, {self.code}, {self.message!r}, pid={self.pid})"


class StartFailed(ServicectlError):
    """The service did not start; nothing of it was left behind. ``exit_status``: how its
    process exited, when it died during the start and that is known."""

    exit_status: int | None = None
