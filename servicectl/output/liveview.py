"""Live progress of an action on several services, on a terminal: each service in flight with
what it waits for (``ready: tcp 127.0.0.1:80, 1.2 s of 30 s``, ``TERM sent``) and a spinner,
drawn with rich under the lines of the services that finished.

The core reports through a Progress callback (progress.py) from the fleet's worker threads;
this module keeps the latest word of each service under a lock and rich redraws it a few times
a second. Off a terminal (piped, TERM=dumb) nothing here runs and rich is never imported: the
output is one line per service as each finishes, as always. On both, a service's line is
printed the moment its action ends (fleet/parallel.py yields outcomes as they come), and it
leaves the live area at that moment; a clock never shows more than its limit.
"""

from __future__ import annotations

import sys
import time

from servicectl import lastresort
from servicectl.output.face import face
from servicectl.service.waits import silent
from servicectl.text import escape

TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable
    from typing import Any, Optional

    from servicectl.service.outcome import Outcome
    from servicectl.service.waits import Progress

REFRESH_PER_SECOND = 8
MAX_ROWS = 12  # services in flight shown at once; the others are counted
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
    """The services in flight; rich asks for the picture (``__rich__``) on each redraw."""

    def __init__(self, console: Any) -> None:
        import threading  # here: without a live display (not a terminal) no thread is started

        self.console = console
        self.lock = threading.Lock()
        # name -> (what it waits for, budget, since when, first seen): shown oldest first
        self.flight: dict[str, tuple[str, Optional[float], float, float]] = {}
        self.frames = SPINNER if face.unicode_out() else ASCII_SPINNER

    def progress(self, name: str, what: str, budget: Optional[float] = None) -> None:
        now = time.monotonic()
        with self.lock:
            first = self.flight[name][3] if name in self.flight else now
            self.flight[name] = (escape(what), budget, now, first)

    def done(self, name: str) -> None:
        with self.lock:
            self.flight.pop(name, None)

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.text import Text

        now = time.monotonic()
        with self.lock:
            items = sorted(self.flight.items(), key=lambda item: (item[1][3], item[0]))
        room = max(1, min(MAX_ROWS, self.console.size.height - 3))
        shown_items = items if len(items) <= room else items[: room - 1]
        frame = self.frames[int(now * 10) % len(self.frames)]
        lines = []
        for name, (what, budget, since, _) in shown_items:
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"{frame} ", style="cyan")
            line.append(escape(name), style="bold")
            line.append(f": {what}")
            waited = now - since
            if budget is not None:  # a clock never shows more than its limit
                line.append(f", {min(waited, budget):.1f} s of {budget:g} s", style="dim")
            elif waited >= 1:
                line.append(f", {waited:.1f} s", style="dim")
            lines.append(line)
        if len(shown_items) < len(items):
            more = len(items) - len(shown_items)
            lines.append(Text(f"  ... and {more} more in flight", style="dim"))
        return Group(*lines)


class _Held:
    """Stands in for sys.stdout (and sys.stderr on the same terminal) while the display is
    drawn: what is printed is held, then written above the display at the next redraw, many
    lines in one go (a burst of a hundred finished services costs one redraw, not a hundred).
    Writing never blocks on the terminal, so a signal handler may print too."""

    def __init__(self, real: Any, held: list[str], lock: threading.RLock) -> None:
        self.real = real
        self.held = held
        self.lock = lock

    def write(self, text: str) -> int:
        with self.lock:
            self.held.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno...: the real stream's
        return getattr(self.real, name)


class _Drawing:
    """The live display and the thread that redraws it: at each tick, the held lines go above
    the display (one print), or the display is redrawn alone (the spinners and clocks)."""

    def __init__(self, view: _View) -> None:
        import threading

        from rich.live import Live

        self.view = view
        self.live = Live(view, console=view.console, auto_refresh=False, transient=True)
        self.held: list[str] = []
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        lastresort.install_thread_hook()
        self.ticker = threading.Thread(target=self._tick, name="servicectl-live", daemon=True)
        self.saved: tuple[Any, Any] = (sys.stdout, sys.stderr)

    def __enter__(self) -> _Drawing:
        self.live.start(refresh=True)
        out, err = self.saved
        sys.stdout = _Held(out, self.held, self.lock)  # type: ignore[assignment]
        if face.tty_err:
            sys.stderr = _Held(err, self.held, self.lock)  # type: ignore[assignment]
        self.ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        try:
            self.ticker.join()
        finally:  # even if interrupted again meanwhile: the terminal is given back
            sys.stdout, sys.stderr = self.saved
            try:
                self._draw(final=True)
            finally:
                self.live.stop()

    def _tick(self) -> None:
        while not self.stopping.wait(1 / REFRESH_PER_SECOND):
            self._draw()

    def _draw(self, final: bool = False) -> None:
        from rich.text import Text

        with self.lock:
            text = "".join(self.held)
            self.held.clear()
            if final:
                lines, ended, rest = text.removesuffix("\n"), bool(text), ""
            else:  # a line still being written waits for its end
                lines, newline, rest = text.rpartition("\n")
                ended = bool(newline)
            if rest:
                self.held.append(rest)
        try:
            if ended:
                self.live.console.print(Text.from_ansi(lines))
            else:
                self.live.refresh()
        except Exception:  # the terminal went away: the action goes on regardless
            pass


class watching:  # noqa: N801 (used as a function: ``with watching(...) as watch``)
    """A Watch for an action: on a terminal (and ``wanted``: several services) a live display
    for its duration, erased at the end (the finished lines stay); otherwise silent. (A class,
    not contextlib's decorator: contextlib costs 2-3 ms of every start and stop.)"""

    def __init__(self, wanted: bool) -> None:
        self.drawing: _Drawing | None = None
        self.watch = Watch()
        if wanted and face.draws():
            view = _View(face.console())
            self.drawing = _Drawing(view)
            self.watch = Watch(view)

    def __enter__(self) -> Watch:
        if self.drawing is not None:
            self.drawing.__enter__()
        return self.watch

    def __exit__(self, *exc: object) -> None:
        if self.drawing is not None:
            self.drawing.__exit__(*exc)
