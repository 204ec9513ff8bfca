"""The last lines of a service's log, for failure messages and the status block (read under
R-LOG-1: bounded, never through a final symlink), limited to what its last run wrote.

Each spawn writes a start mark into the log first (system/logmark.py). The lines after the
last mark of the service are its last run's; the lines before it belong to earlier runs, and
are counted, not shown, so that an old crash is never taken for this start's. A log with no
mark in its last TAIL_BYTES (written before marks existed, or a run that wrote more than that)
is shown as it is.
"""

from __future__ import annotations

from servicectl.errors import ServicectlError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from servicectl.definitions.schema import Service

LOG_TAIL_LINES = 10


class RunTail:
    """The end of one log file as far as the last run goes.

    ``lines``: the last lines of the last run (of the whole window when ``started`` is None:
    no mark found); ``started``: the time of the last run's mark; ``more``: the run wrote more
    lines than shown; ``earlier``: lines before the mark in the window (from earlier runs);
    ``all_counted``: ``earlier`` counts every line before the mark in the file. (A plain
    class: a NamedTuple costs the status block a third of a millisecond to create.)"""

    __slots__ = ("lines", "started", "more", "earlier", "all_counted")

    def __init__(
        self, lines: list[str], started: float | None, more: bool, earlier: int, whole: bool
    ) -> None:
        self.lines = lines
        self.started = started
        self.more = more
        self.earlier = earlier
        self.all_counted = whole

    def earlier_phrase(self) -> str:
        """``57 earlier lines are from previous runs`` (``at least 58`` when the window did not
        reach the start of the file: the line it began in is one more); "" when there are
        none, or no mark was found."""
        if self.started is None or (self.earlier == 0 and self.all_counted):
            return ""
        if self.all_counted:
            n = self.earlier
            return f"{n} earlier line{'s are' if n != 1 else ' is'} from previous runs"
        return f"at least {self.earlier + 1} earlier lines are from previous runs"


def run_tail(path: Path | str, name: str, lines: int) -> RunTail:
    """The last ``lines`` lines that the last run of ``name`` wrote to ``path`` (R-LOG-1).
    Raises as files.safe.read_tail does. Only the lines shown are decoded."""
    from servicectl.files.safe import read_tail, window_lines
    from servicectl.system.logmark import last_mark

    data, start = read_tail(path)
    mark = last_mark(data, name, start > 0)
    if mark is None:
        shown = window_lines(data, start > 0, lines + 1)
        return RunTail(shown[-lines:] if lines > 0 else [], None, len(shown) > lines, 0, start == 0)
    at, started = mark
    line_end = data.find(b"\n", at)
    mine = window_lines(data[line_end + 1 :], False, lines + 1) if line_end >= 0 else []
    earlier = data.count(b"\n", 0, at) - (1 if start > 0 else 0)  # whole lines before it
    return RunTail(
        mine[-lines:] if lines > 0 else [], started, len(mine) > lines, earlier, start == 0
    )


def log_tail(svc: Service, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines this start of the service wrote to its output log, indented, or a note
    why there are none; how many lines before them are from earlier runs is said, not shown.

    Read under docs/security.md R-LOG-1 (``safe.read_tail``): a bounded window from the
    end, never through a symlink another user planted, never blocking on a FIFO.
    """
    from servicectl.files.safe import describe_refusal

    paths = [p for p in dict.fromkeys([svc.stdout, svc.stderr]) if p is not None]
    if not paths:
        return "  (output is discarded: stdout is null)"
    chunks = []
    for path in paths:
        try:
            tail = run_tail(path, svc.name, lines)
        except (ServicectlError, OSError) as exc:
            chunks.append(f"  ({path}: {describe_refusal(exc)})")
            continue
        earlier = tail.earlier_phrase()
        if tail.started is not None and not tail.lines:
            chunks.append(f"  ({path}: nothing written by this start" + _also(earlier) + ")")
        elif tail.lines:
            whose = ", written by this start" if tail.started is not None else ""
            head = f"  last lines of {path}{whose}" + (
                f" ({earlier}, not shown)" if earlier else ""
            )
            chunks.append(head + ":\n" + "\n".join("    " + t for t in tail.lines))
    return "\n".join(chunks) if chunks else f"  ({paths[0]} is empty)"


def _also(phrase: str) -> str:
    return f"; {phrase}" if phrase else ""
