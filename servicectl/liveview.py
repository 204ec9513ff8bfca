"""Live progress of an action on several services, on a terminal: each service in flight with
what it waits for (``ready: tcp 127.0.0.1:80, 1.2 s of 30 s``, ``TERM sent``) and a spinner,
drawn with rich under the lines of the services that finished.

The core reports through a Progress callback (progress.py) from the fleet's worker threads;
this module keeps the latest word of each service under a lock and rich redraws it a few times
a second. Off a terminal (piped, TERM=dumb) nothing here runs and rich is never imported: the
output is one line per service as each finishes, as always.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Optional

from servicectl.face import face, shown
from servicectl.progress import silent

if TYPE_CHECKING:
    from servicectl.outcome import Outcome
    from servicectl.progress import Progress

REFRESH_PER_SECOND = 8
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
ASCII_SPINNER = "|/-\\"


class Watch:
    """What an action reports to: ``progress`` (what each service waits for) and ``report``
    (wraps the per-service line printer: a finished service leaves the display first)."""

    def __init__(self, view: _View | None = None) -> None:
        self.view = view
        self.progress: Progress = view.progress if view is not None else silent

    def done(self, name: str) -> None:
        """``name`` is no longer in flight (its action ended without an Outcome)."""
        if self.view is not None:
            self.view.done(name)

    def report(self, printer: Callable[[Outcome], None]) -> Callable[[Outcome], None]:
        view = self.view
        if view is None:
            return printer

        def finished(outcome: Outcome) -> None:
            view.done(outcome.name)
            printer(outcome)

        return finished


class _View:
    """The services in flight; rich asks for the picture (``__rich__``) on each refresh."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.lock = threading.Lock()
        self.flight: dict[str, tuple[str, Optional[float], float]] = {}  # what, budget, since
        self.frames = SPINNER if face.unicode_out() else ASCII_SPINNER

    def progress(self, name: str, what: str, budget: Optional[float] = None) -> None:
        with self.lock:
            self.flight[name] = (shown(what), budget, time.monotonic())

    def done(self, name: str) -> None:
        with self.lock:
            self.flight.pop(name, None)

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.text import Text

        now = time.monotonic()
        with self.lock:
            items = sorted(self.flight.items())
        room = max(1, self.console.size.height - 3)
        shown_items = items if len(items) <= room else items[: room - 1]
        frame = self.frames[int(now * 10) % len(self.frames)]
        lines = []
        for name, (what, budget, since) in shown_items:
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"{frame} ", style="cyan")
            line.append(shown(name), style="bold")
            line.append(f": {what}")
            waited = now - since
            if budget is not None:
                line.append(f", {waited:.1f} s of {budget:g} s", style="dim")
            elif waited >= 1:
                line.append(f", {waited:.1f} s", style="dim")
            lines.append(line)
        if len(shown_items) < len(items):
            lines.append(Text(f"  ... and {len(items) - len(shown_items)} more", style="dim"))
        return Group(*lines)


@contextmanager
def watching(wanted: bool) -> Iterator[Watch]:
    """A Watch for an action: on a terminal (and ``wanted``: several services) a live display
    for its duration, erased at the end (the finished lines stay); otherwise silent."""
    if not (wanted and face.tty_out):
        yield Watch()
        return
    from rich.live import Live

    console = face.console()
    view = _View(console)
    with Live(
        view,
        console=console,
        refresh_per_second=REFRESH_PER_SECOND,
        transient=True,
        redirect_stdout=True,
        redirect_stderr=face.tty_err,
    ):
        yield Watch(view)
