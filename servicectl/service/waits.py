"""How an action says what it is waiting for while it waits, for a live display (the face draws
it; the core only calls). Imports nothing.

A reporter is called as ``progress(name, what, budget)``: service ``name`` now waits for
``what`` (``ready: tcp 127.0.0.1:80``, ``pid file /run/web.pid``, ``TERM sent``), for at most
``budget`` seconds (None: no limit worth showing). Reporters are called from the fleet's worker
threads: they must be quick and thread-safe, and must never raise.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Optional

    Progress = Callable[[str, str, "float | None"], None]
else:  # annotations are not evaluated: the name is enough (collections.abc imports collections)
    Progress = "Progress"


def silent(name: str, what: str, budget: Optional[float] = None) -> None:
    """The reporter when nobody watches."""
