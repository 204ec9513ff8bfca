"""What ``status`` shows: the board (every service, one aligned line each) and, for services
named, a block per service as ``systemctl status`` draws it (definition, state and since when,
main PID and command line, its process tree, memory, CPU time, listening sockets, the STATUS=
text, supervision, notes, the end of its log).

On a terminal both are drawn with rich, in colour unless NO_COLOR; piped, they are plain text:
the board's columns are each as wide as their widest cell, with ``-`` for an empty cell and no
blank inside a cell but the last (the description), so ``awk`` reads it; notes go to stderr.
rich is imported only for a terminal; the processes of a running service are read only
for its block (metrics.py).
"""

from __future__ import annotations

import os
import time

from servicectl.errors import ServicectlError
from servicectl.output.face import face
from servicectl.states import (
    DEAD,
    EXITED,
    FAILED,
    INVALID,
    RUNNING,
    STARTING,
    STOPPED,
    UNKNOWN,
)
from servicectl.text import escape
from servicectl.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from servicectl.definitions.schema import Service
    from servicectl.service.status_row import Status
    from servicectl.system.process_tree import Member, Metrics

STATE_STYLE = {  # rich styles (terminal)
    RUNNING: "green",
    EXITED: "green",
    STARTING: "yellow",
    STOPPED: "dim",
    DEAD: "red",
    FAILED: "red",
    INVALID: "bold red",
    UNKNOWN: "red",
}
STATE_SGR = {  # the same as SGR codes (face.table, piped with colour)
    RUNNING: "32",
    EXITED: "32",
    STARTING: "33",
    STOPPED: "2",
    DEAD: "31",
    FAILED: "31",
    INVALID: "31;1",
    UNKNOWN: "31",
}
BOARD_HEADER = ("NAME", "STATE", "PID", "UPTIME", "MEMORY", "CPU", "DESCRIPTION")
LABEL_WIDTH = 11  # "Supervision"

# ---------------------------------------------------------------------------------------------
# Formats


def fmt_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "K", "M"):
        if size < 1024:
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}G"


def fmt_ago(seconds: float) -> str:
    """``12s``, ``5min 3s``, ``2h 10min``, ``3 days 4h``, as systemctl says how long ago."""
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{max(0.0, seconds):.1f}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}min {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}min"
    days = s // 86400
    return f"{days} day{'s' if days > 1 else ''} {s % 86400 // 3600}h"


def fmt_when(epoch: float) -> str:
    """An absolute local time, with the day and the zone: ``Tue 2026-11-24 23:50:01 UTC``."""
    return time.strftime("%a %Y-%m-%d %H:%M:%S %Z", time.localtime(epoch))


def fmt_stamp(epoch: float) -> str:
    """``14:03:22`` today, ``2026-11-24 23:50:01`` another day (local time)."""
    then = time.localtime(epoch)
    if time.strftime("%Y-%m-%d", then) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M:%S", then)
    return time.strftime("%Y-%m-%d %H:%M:%S", then)


def fmt_cpu(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.3f}s"
    return f"{int(seconds) // 60}min {seconds % 60:.3f}s"


# ---------------------------------------------------------------------------------------------
# The board


def board(rows: Sequence[Status]) -> None:
    """Every service, one line each; then the notes."""
    cells = [
        (
            r.name,
            r.state,
            str(r.pid or "-"),
            fmt_uptime(r.uptime_seconds),
            fmt_bytes(r.memory_bytes),
            "-" if r.cpu_percent is None else f"{r.cpu_percent:.1f}%",
            r.error or r.status_text or r.description,
        )
        for r in rows
    ]
    notes = [escape(f"{r.name}: {note}") for r in rows for note in r.notes]
    if face.draws():
        _rich_board(rows, cells, notes)
        return
    face.table(BOARD_HEADER, cells, [{1: STATE_SGR.get(r.state, "0")} for r in rows])
    for note in notes:  # stdout stays one line per service, for scripts
        face.note(note)


def _rich_board(rows: Sequence[Status], cells: Sequence[Sequence[str]], notes: list[str]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False, show_edge=False)
    for title in BOARD_HEADER[:-1]:
        table.add_column(title, no_wrap=True, justify="right" if title == "PID" else "left")
    table.add_column(BOARD_HEADER[-1], no_wrap=True, overflow="ellipsis")
    for r, row in zip(rows, cells):
        texts = [Text(escape(c) or "-") for c in row]
        texts[1].stylize(STATE_STYLE.get(r.state, ""))
        table.add_row(*texts)
    console = face.console()
    console.print(table)
    for note in notes:
        console.print(Text(f"  {note}", style="yellow"))


# ---------------------------------------------------------------------------------------------
# The block of one service


class Field(NamedTuple):
    label: str
    lines: list[str]  # escaped already
    style: str = ""


class Block(NamedTuple):
    status: Status
    title: str
    fields: list[Field]
    logs: list[tuple[str, list[str]]]  # (heading, lines), escaped


def blocks(rows: Sequence[Status], services: Mapping[str, Service], lines: int) -> None:
    """A block per service named, a blank line between them."""
    built = [_block(r, services.get(r.name), lines) for r in rows]
    if face.draws():
        console = face.console()
        for i, b in enumerate(built):
            if i:
                console.print()
            _rich_block(console, b)
        return
    for i, b in enumerate(built):
        if i:
            face.line()
        _plain_block(b)


def _block(r: Status, svc: Service | None, lines: int) -> Block:
    title = escape(f"{r.name} - {r.description}" if r.description else r.name)
    fields = [*_definition(r, svc), _state(r)]
    if r.error:
        fields.append(Field("Error", [escape(r.error)], "red"))
    if r.tracking:
        fields.append(Field("Tracking", [escape(r.tracking)]))
    if r.pid is not None and r.state in (RUNNING, STARTING):
        fields += _running(r)
    elif r.remaining:
        fields += _remaining(r)
    if r.status_text:
        fields.append(Field("Status", [escape(f'"{r.status_text}"')]))
    supervision = _supervision(r)
    supervised = r.supervisor is not None or r.restarts is not None
    oneshot = svc is not None and svc.type == "oneshot"
    if supervision and (oneshot or supervised or "unknown" not in (r.last_exit or {})):
        # A failed start's last exit is no supervisor's; with no exit status, its note says all.
        title = "Last run" if oneshot else "Supervision" if supervised else "Last exit"
        fields.append(Field(title, [supervision]))
    if r.health is not None:
        fields.append(_health(r.health))
    from servicectl.definitions import fingerprint

    notes = [escape(n) for n in r.notes if n != fingerprint.NOTE]
    if notes:
        fields.append(Field("Notes", notes, "yellow"))
    logs = _logs(svc, lines, r.state) if svc is not None and lines > 0 else []
    return Block(r, title, fields, logs)


def _definition(r: Status, svc: Service | None) -> list[Field]:
    if r.file is None and svc is None:
        return []
    what = escape(r.file or str(svc.file if svc else ""))
    if svc is not None:
        what += f" ({'enabled' if svc.enabled else 'disabled'}; {svc.type})"
    out = [Field("Loaded", [what])]
    if r.dropins:
        out.append(Field("Drop-In", [escape(p) for p in r.dropins]))
    if r.definition_changed:
        from servicectl.definitions import fingerprint

        out.append(Field("Warning", [fingerprint.NOTE], "yellow"))
    return out


def _state(r: Status) -> Field:
    text = r.state
    if r.since is not None:
        text += f" since {fmt_when(r.since)}; {fmt_ago(time.time() - r.since)} ago"
    return Field("State", [text], STATE_STYLE.get(r.state, ""))


def _running(r: Status) -> list[Field]:
    """What the running service's processes use (bounded /proc reads: metrics.py). Each field
    degrades on its own; this is the last net under them (R-VIEW-3)."""
    from servicectl.system.process_tree import collect

    assert r.pid is not None
    try:
        metrics = collect(r.pid, r.pgid, r.sid, r.cgroup)
    except Exception as exc:  # R-VIEW-3: the view degrades, it never dies
        why = escape(f"{type(exc).__name__}: {exc}")
        return [Field("Main PID", [str(r.pid)]), Field("Processes", [f"unknown ({why})"])]
    return _process(r, metrics)


def _process(r: Status, m: Metrics | None) -> list[Field]:
    if m is None or not m.members:
        return [Field("Main PID", [f"{r.pid} (exited just now)"])]
    main = next((p for p in m.members if p.pid == r.pid), m.members[0])
    out = [
        Field("Main PID", [escape(f"{main.pid} ({main.name})")]),
        Field("Command", [_command_line(main)]),
    ]
    out.append(Field("Memory", [_memory(r, m)]))
    if m.cpu_seconds is not None:
        out.append(Field("CPU", [fmt_cpu(m.cpu_seconds)]))
    out.append(Field("Listening", _sockets(m)))
    out.append(Field("Processes", _tree_lines(m.members, m.more)))
    if m.unknown:
        out.append(Field("Unknown", [escape(u) for u in m.unknown], "yellow"))
    return out


def _memory(r: Status, m: Metrics) -> str:
    """What its processes use: from its cgroup (all of them, as the kernel charges it) beside
    its memory_max, or their resident memory."""
    n = m.count
    count = f"{n} process{'es' if n > 1 else ''}"
    limit = f" of memory_max {fmt_bytes(r.memory_max)}" if r.memory_max else ""
    if r.cgroup_memory is not None:
        return f"{fmt_bytes(r.cgroup_memory)}{limit} (its cgroup, {count})"
    return f"{fmt_bytes(m.memory)} (resident, {count}){limit}"


def _remaining(r: Status) -> list[Field]:
    """What is left running of a service whose main process exited."""
    from servicectl.system.process_tree import collect_pids

    try:
        m = collect_pids(r.remaining)
    except ImportError:
        return [Field("Remaining", [", ".join(str(p) for p in r.remaining)])]
    return [Field("Remaining", _tree_lines(m.members) or ["(exited just now)"], "yellow")]


def _sockets(m: Metrics) -> list[str]:
    lines = [
        escape(f"{s.kind} {s.address}" + (f" ({s.detail})" if s.detail else ""))
        for s in m.listeners
    ]
    if m.hidden:
        if m.hidden == len(m.members):
            lines.append("(not visible to this user)")
        else:
            lines.append(f"(and those of {m.hidden} processes, not visible to this user)")
    return lines or ["none"]


MAX_DEPTH = 12  # levels of the tree drawn indented; deeper ones are drawn at this level


def _tree_lines(members: list[Member], more: int = 0) -> list[str]:
    """``PID command line``, one per process, under its parent with box-drawing guides; drawn
    without recursion, at most MAX_DEPTH levels indented (deeper: ``+N`` levels said)."""
    mid, last, bar = ("├─", "└─", "│ ") if face.unicode_out() else ("|-", "`-", "| ")
    by_pid = {m.pid: m for m in members}
    children: dict[int, list[Member]] = {}
    roots: list[Member] = []
    for m in members:  # tree order already: parents first
        (children.setdefault(m.ppid, []) if m.ppid in by_pid else roots).append(m)
    out: list[str] = []
    todo: list[tuple[Member, str, str, int]] = [(root, "", "", 0) for root in reversed(roots)]
    while todo:
        m, prefix, guide, level = todo.pop()
        deeper = f"+{level - MAX_DEPTH} " if level > MAX_DEPTH else ""
        out.append(f"{prefix}{guide}{deeper}{m.pid} {_command_line(m)}")
        kids = children.get(m.pid, [])
        inner = prefix
        if guide and level <= MAX_DEPTH:
            inner = prefix + ("  " if guide == last else bar)
        for k in range(len(kids) - 1, -1, -1):
            todo.append((kids[k], inner, last if k == len(kids) - 1 else mid, level + 1))
    if more:
        dots = "…" if face.unicode_out() else "..."
        out.append(f"{dots} and {more} more process{'es' if more > 1 else ''}")
    return out


def _command_line(m: Member) -> str:
    """The process's arguments as ``ps`` shows them (a daemon that rewrote its title, as nginx
    does, shows the title), escaped and cut (metrics.MAX_ARGV); ``[name]`` when it has none
    (a kernel thread, a zombie)."""
    if m.argv is None:
        return escape(f"[{m.name}] (command line unknown)")
    text = " ".join(m.argv).rstrip()
    return escape(text) if text else escape(f"[{m.name}]")


def _supervision(r: Status) -> str:
    """Restarts, last exit and supervisor, when the service's record has them."""
    parts = []
    if r.supervisor is not None:
        parts.append(escape(str(r.supervisor)))
    if r.restarts is not None:
        parts.append(f"{r.restarts} restart{'' if r.restarts == 1 else 's'}")
    if r.last_exit is not None:
        supervised = r.supervisor is not None or r.restarts is not None
        parts.append(("last exit: " if supervised else "") + _last_exit(r.last_exit))
    adopted = r.adopted or {}
    at = adopted.get("at")
    if isinstance(at, (int, float)):
        why = escape(str(adopted.get("why", "")))
        parts.append(f"adopted at {fmt_when(at)} ({why}; was pid {adopted.get('from')})")
    return "; ".join(parts)


def _health(health: Mapping[str, Any]) -> Field:
    """``healthy``, ``unhealthy since ...``, or ``starting`` (no probe answered yet), with
    the last probe's result."""
    state = str(health.get("state", "unknown"))
    text = state
    since = health.get("since")
    if state == "unhealthy" and isinstance(since, (int, float)):
        text += f" since {fmt_when(since)}"
    failures = health.get("failures")
    if state != "unhealthy" and isinstance(failures, int) and failures:
        text += f", {failures} failed probe{'s' if failures > 1 else ''} in a row"
    if health.get("last"):
        text += f"; last probe: {health['last']}"
    color = {"healthy": "green", "unhealthy": "red"}.get(state, "yellow")
    return Field("Health", [escape(text)], color)


def _last_exit(last: Mapping[str, Any]) -> str:
    if "code" in last:
        how = f"code {last['code']}"
    elif "signal" in last:
        how = f"signal {last['signal']}"
    else:
        how = f"unknown ({last.get('unknown', 'not observed')})"
    if last.get("oom"):
        how += f" (killed by the kernel: out of memory at memory_max {last['oom']})"
    at = last.get("at")
    if isinstance(at, (int, float)):
        how += f" at {fmt_when(at)}"
    return escape(how)


def _logs(svc: Service, lines: int, state: str) -> list[tuple[str, list[str]]]:
    """The last ``lines`` lines its last run wrote to each output file of the service (bounded
    reads), with how many lines before them are from earlier runs."""
    from servicectl.files.safe import describe_refusal
    from servicectl.service.logtail import run_tail

    paths = [p for p in dict.fromkeys([svc.stdout, svc.stderr]) if p is not None]
    if not paths:
        return [("Log: none (output is discarded: stdout is null)", [])]
    out: list[tuple[str, list[str]]] = []
    run = "this run" if state in (RUNNING, STARTING) else "its last run"
    for path in paths:
        try:
            tail = run_tail(path, svc.name, lines)
        except PermissionError:
            out.append((escape(f"Log {path}: not readable by this user"), []))
            continue
        except (ServicectlError, OSError) as exc:  # a refusal (symlink, FIFO...), unreadable
            out.append((escape(f"Log {path}: {describe_refusal(exc)}"), []))
            continue
        n = len(tail.lines)
        count = f"last {n} line{'s' if n != 1 else ''}"
        if tail.started is None:
            heading = f"Log {path} ({count}):"
            if not tail.lines:
                heading = f"Log {path}: " + ("empty" if os.path.lexists(path) else "none yet")
        else:
            what = f"{count} of {run}" if tail.more else f"{run}: {count}" if n else run
            extra = "".join(f"; {p}" for p in [tail.earlier_phrase()] if p)
            heading = f"Log {path} ({what}, started {fmt_stamp(tail.started)}{extra})"
            heading += ":" if n else ": nothing written"
        out.append((escape(heading), [escape(t) for t in tail.lines]))
    return out


def _plain_block(b: Block) -> None:
    dot = "●" if face.unicode_out() else "*"
    face.line(face.paint(dot, STATE_SGR.get(b.status.state, "0")) + " " + b.title)
    pad = " " * (LABEL_WIDTH + 2)
    for f in b.fields:
        for k, text in enumerate(f.lines):
            head = f"{f.label:>{LABEL_WIDTH}}: " if k == 0 else pad
            face.line(head + text)
    gutter = _gutter()
    for heading, lines in b.logs:
        face.line()
        face.line(heading)
        for text in lines:
            face.line(gutter + text)


def _gutter() -> str:
    """What starts each log line of a block: what the service wrote cannot pass for a line of
    the block (``    State: running`` in a log is shown ``│     State: running``)."""
    return "│ " if face.unicode_out() else "| "


def _rich_block(console: Any, b: Block) -> None:
    from rich.table import Table
    from rich.text import Text

    dot = "●" if face.unicode_out() else "*"
    title = Text()
    title.append(dot, style=STATE_STYLE.get(b.status.state, ""))
    title.append(" " + b.title, style="bold")
    console.print(title)
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", no_wrap=True, style="bold", min_width=LABEL_WIDTH + 1)
    grid.add_column(overflow="fold")
    for f in b.fields:
        grid.add_row(Text(f.label + ":"), Text("\n".join(f.lines), style=f.style))
    console.print(grid)
    for heading, lines in b.logs:
        console.print()
        console.print(Text(heading, style="dim"))
        for text in lines:
            console.print(Text(_gutter(), style="dim") + Text(text), overflow="fold")
