"""Printing for people: lines, aligned tables, colour, escaping, and standard streams that never
let a failed write decide the outcome of an action.

Python ignores SIGPIPE, so every write to a closed pipe raises; here no write ever raises. A
reader that went away (EPIPE) is quiet: /dev/null takes the stream's place and the action
carries on. Any other failure (ENOSPC from /dev/full, EIO) is remembered for the end, where a
command whose output is its whole job says so and exits non-zero. Imports only the base.
"""

from __future__ import annotations

import errno
import io
import os
import sys

from servicectl.text import escape, shown

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, Optional

    from servicectl.service.outcome import Outcome

_GONE_QUIETLY = (errno.EPIPE, errno.ECONNRESET)  # the reader went away: nobody is listening


class _Lost:
    """What happened to each standard stream: None (fine), "closed" (quiet) or an OSError."""

    out: object = None
    err: object = None


LOST = _Lost()


def _devnull_over(fd: int) -> None:
    try:
        nul = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if nul != fd:
            os.dup2(nul, fd, inheritable=fd <= 2)
    except OSError:
        pass
    finally:
        if nul != fd:
            os.close(nul)


class _Guarded(io.RawIOBase):
    """fd 1 or 2 as a raw stream whose writes never raise."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd
        self.gone = False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd

    def isatty(self) -> bool:
        try:
            return os.isatty(self.fd)
        except OSError:
            return False

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.gone:
            return len(data)
        while True:
            try:
                return os.write(self.fd, data)
            except BlockingIOError:  # a stdout left non-blocking by someone else: wait for it
                import select

                select.select([], [self.fd], [], 1.0)
            except OSError as exc:
                self._failed(exc)
                return len(data)

    def _failed(self, exc: OSError) -> None:
        self.gone = True
        quiet = exc.errno in _GONE_QUIETLY
        what = "closed" if quiet else exc
        if self.fd == 1:
            LOST.out = LOST.out or what
        else:
            LOST.err = LOST.err or what
        _devnull_over(self.fd)  # later writes, a child's included, go nowhere instead of failing


def _open_standard_fds() -> None:
    """Put /dev/null on fd 0, 1 and 2 where they are closed (``servicectl status >&-``), before
    anything else is opened: otherwise the next file opened (a log, a PID file) would become
    the standard output."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        try:
            got = os.open(os.devnull, os.O_RDWR)
        except OSError:
            return
        if got != fd:
            os.dup2(got, fd)
            os.close(got)


def install_streams() -> None:
    """Open the standard fds that are closed, then make sys.stdout and sys.stderr guarded
    text streams (undecodable file-name bytes shown as escapes, never an error)."""
    _open_standard_fds()
    for fd, name in ((1, "stdout"), (2, "stderr")):
        old = getattr(sys, name)
        encoding = getattr(old, "encoding", None) or "utf-8"
        line_buffering = fd == 2 or bool(getattr(old, "line_buffering", False))
        stream = io.TextIOWrapper(
            io.BufferedWriter(_Guarded(fd)),  # type: ignore[type-var]
            encoding=encoding,
            errors="backslashreplace",
            line_buffering=line_buffering,
        )
        setattr(sys, name, stream)
    if sys.stdin is None:
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))


def flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # not a guarded stream (an embedding program's): nothing more to do


def stdout_gone() -> bool:
    """Nobody will read what is printed now (the reader left, or writing failed)."""
    return LOST.out is not None


def output_failure() -> Optional[str]:
    """Why the standard output could not be written, or None (also None for a reader that
    went away, which is no failure: ``status | grep -q web`` wants the exit code alone)."""
    if isinstance(LOST.out, OSError):
        return LOST.out.strerror or str(LOST.out)
    return None


def cell(text: str, last: bool = False) -> str:
    """``text`` as a table cell: escaped, on one line, ``-`` when empty. Only the last column
    (free text) may hold blanks; in the others a tab, newline or space (only an invalid name
    has them) is written ``\\t``, ``\\n``, ``\\x20``, so every row has the same columns for
    awk."""
    text = escape(text)
    if last:
        return text or "-"
    return text.replace(" ", "\\x20") or "-"


def plural(n: int, word: str, words: str = "") -> str:
    """``1 service``, ``2 services`` (``words``: an irregular plural)."""
    return f"{n} {word if n == 1 else words or word + 's'}"


def _wants_color(fd: int) -> bool:
    if os.environ.get("NO_COLOR") is not None or os.environ.get("TERM") == "dumb":
        return False
    return _is_terminal(fd)


def _is_terminal(fd: int) -> bool:
    """A terminal that can be drawn on (TERM=dumb cannot move the cursor)."""
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return os.isatty(fd)
    except OSError:
        return False


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal (wide East Asian characters count two)."""
    if text.isascii():
        return len(text)
    import unicodedata

    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


class Face:
    """Where lines go: stdout for what happened, stderr for errors; colour only on a terminal."""

    def __init__(self) -> None:
        self.color_out = _wants_color(1)
        self.color_err = _wants_color(2)
        self.tty_out = _is_terminal(1)  # draw for a person (rich); else plain lines
        self.tty_err = _is_terminal(2)

    def draws(self) -> bool:
        """Whether stdout gets a terminal display drawn with rich (a terminal, and rich is
        there: without it, the plain output serves)."""
        if not self.tty_out:
            return False
        try:
            import rich.console  # noqa: F401
        except ImportError:
            return False
        return True

    def unicode_out(self) -> bool:
        """Whether stdout takes characters beyond ASCII (box drawing, the state dot)."""
        encoding = (getattr(sys.stdout, "encoding", None) or "ascii").lower().replace("-", "")
        return encoding in ("utf8", "utf16", "utf32")

    def console(self) -> Any:
        """A rich Console on stdout for a terminal display (imports rich: only call it when
        ``tty_out``). Colour unless NO_COLOR; nothing in the text is read as markup."""
        from rich.console import Console

        return Console(
            file=sys.stdout,
            no_color=not self.color_out,
            highlight=False,
            markup=False,
            emoji=False,
            soft_wrap=False,
        )

    def paint(self, text: str, code: str, err: bool = False) -> str:
        if not (self.color_err if err else self.color_out):
            return text
        return f"\033[{code}m{text}\033[0m"

    def line(self, text: str = "", flush: bool = False) -> None:
        """One line on stdout, as given (callers escape what came from outside)."""
        print(text, flush=flush)

    def out(self, text: str) -> None:
        """Text on stdout as given, without a newline added."""
        sys.stdout.write(text)

    def outcome(self, o: Outcome) -> None:
        line = escape(f"{o.name}: {o.message}")
        if o.ok_line and o.code == 0:
            print(line, flush=True)
        else:
            print(self.paint("servicectl: " + line, "31", err=True), file=sys.stderr, flush=True)
        if o.detail:
            print(shown(o.detail), file=sys.stderr if o.code else sys.stdout, flush=True)

    def note(self, message: str) -> None:
        """A remark on stderr (not an error): ``servicectl: web: the PID file is missing``."""
        print(self.paint(f"servicectl: {escape(message)}", "33", err=True), file=sys.stderr)

    def error(self, message: str, detail: str = "") -> None:
        line = self.paint(f"servicectl: {escape(message)}", "31", err=True)
        print(line, file=sys.stderr, flush=True)
        if detail:
            print(shown(detail), file=sys.stderr, flush=True)

    def table(
        self,
        header: tuple[str, ...],
        rows: Sequence[Sequence[str]],
        colors: Optional[list[dict[int, str]]] = None,
    ) -> None:
        """Aligned columns, each as wide as its widest cell (header included), two blanks
        apart; the last column is free text. Cells are escaped and put on one line, and an
        empty cell is shown as ``-``, so ``awk '{print $2}'`` reads piped output.
        ``colors``: per row, column index -> SGR code (applied after padding)."""
        last = len(header) - 1
        cells = [tuple(cell(c, i == last) for i, c in enumerate(row)) for row in rows]
        sizes = [[width(c) for c in row[:last]] for row in cells]  # once each
        widths = [max(width(header[i]), *(size[i] for size in sizes)) for i in range(last)]

        def render(row: Sequence[str], size: list[int], paint: dict[int, str] | None) -> str:
            parts = [c + " " * (widths[i] - size[i]) for i, c in enumerate(row[:last])]
            for i, code in (paint or {}).items():
                if i < last:
                    parts[i] = self.paint(parts[i], code)
            return "  ".join([*parts, row[last]]).rstrip()

        print(self.paint(render(header, [width(h) for h in header[:last]], None), "1"))
        for k, row in enumerate(cells):
            print(render(row, sizes[k], colors[k] if colors else None))


face = Face()
