"""The last lines of a service's log, for failure messages and the status block (read under
R-LOG-1: bounded, never through a final symlink).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from servicectl.errors import ServicectlError

if TYPE_CHECKING:
    from servicectl.definitions.schema import Service

LOG_TAIL_LINES = 10


def log_tail(svc: Service, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of the service's output log, indented, or a note why there are none.

    Read under docs/security.md R-LOG-1 (``safefile.tail_lines``): a bounded window from the
    end, never through a symlink another user planted, never blocking on a FIFO.
    """
    from servicectl.files.safe import describe_refusal, tail_lines

    paths = [p for p in dict.fromkeys([svc.stdout, svc.stderr]) if p is not None]
    if not paths:
        return "  (output is discarded: stdout is null)"
    chunks = []
    for path in paths:
        try:
            text = tail_lines(path, lines)
        except (ServicectlError, OSError) as exc:
            chunks.append(f"  ({path}: {describe_refusal(exc)})")
            continue
        if text:
            chunks.append(f"  last lines of {path}:\n" + "\n".join("    " + t for t in text))
    return "\n".join(chunks) if chunks else f"  ({paths[0]} is empty)"
