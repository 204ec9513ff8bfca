"""Running a decided command line: the directories are resolved once, then the command's body
(named ``module:function`` in the command table, grammar.py) is imported and called with the
line's arguments; a ServicectlError it raises is printed and becomes the exit code.

Heavy modules (the lifecycle, the fleet, json, difflib) are imported inside the bodies that
need them, so that one command pays only for itself.
"""

from __future__ import annotations

from servicectl.commands.resolve import _CTX
from servicectl.errors import ServicectlError
from servicectl.output.face import face

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from servicectl.commands.grammar import Call


# The commands that act on services: one that finds supervised services without a live
# supervisor starts one first, which adopts them (status, and the other commands that only
# look, say so and leave it).
ACTING = frozenset(
    ("start", "stop", "restart", "try-restart", "reload", "force-reload", "action")
    + ("startall", "stopall")
)


def execute(call: Call) -> int:
    """Run a decided command line; returns its exit code."""
    from servicectl.commands.grammar import COMMANDS
    from servicectl.paths import resolve_dirs

    _CTX.dirs = resolve_dirs(*call.dirs)
    body = _body(COMMANDS[call.command].body)
    if call.command in ACTING:
        from servicectl.supervisor.route import ensure_supervisor

        ensure_supervisor(_CTX.dirs)
    try:
        return int(body(**call.arguments()))
    except ServicectlError as exc:
        face.error(exc.message, exc.detail)
        return int(exc.exit_code)


def _body(name: str) -> Any:
    """The function a table entry names, ``module:function`` in servicectl.commands (the
    module is imported only when its command runs)."""
    module, _, function = name.partition(":")  # __import__: importlib costs a command 0.5 ms
    return getattr(__import__(f"servicectl.commands.{module}", fromlist=[function]), function)
