"""Section 5: the terminal view: status NAME, the board and startall, piped and on a
pseudo-terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from common import log, run, run_pty
from report import LIVE_RATIO_LIMIT, NOTES, TARGETS, Series, cell, note_failures, ratio, table

if TYPE_CHECKING:
    from environment import Env


class Timings:
    """Wall time per key ("running pty", "board piped"...), and the CPU time of the runs that
    succeeded."""

    def __init__(self) -> None:
        self.series: dict[str, Series] = {}
        self.cpu: dict[str, Series] = {}

    def measure(self, key: str, argv: list[str], ok: tuple[int, ...], pty: bool) -> None:
        s = self.series.setdefault(key, Series())
        r = run_pty(argv) if pty else run(argv)
        if s.add(r, ok, what=f"{key}"):
            self.cpu.setdefault(key, Series()).values.append(r.cpu)

    def cpu_cells(self, key: str) -> str:
        return f"{cell(self.cpu.get(f'{key} piped'))} / {cell(self.cpu.get(f'{key} pty'))}"


def bench_view(env: Env) -> None:
    reps = env.args.reps
    one = env.sc_dir(
        "view-one",
        {"one": "command: sleep 100000\nstart_grace: 0\n", "off": "command: sleep 100000\n"},
    )
    hundred = env.sc_dir("view-100", {f"s{i:03d}": "command: sleep 100000\n" for i in range(100)})
    _intro(reps)
    r = run([*one, "start", "one"])
    if r.rc != 0:
        NOTES.append(f"view: start one failed (rc={r.rc}): {r.err[-300:]}")
    t = Timings()
    log(f"view: status NAME, board: {reps} reps")
    _status_name(t, one, reps)
    _board(t, hundred, reps)
    log(f"view: startall 100 piped and on a pty: {reps} reps")
    _startall(t, hundred, reps)
    run([*one, "stop", "one"])
    _report(t)


def _intro(reps: int) -> None:
    print("## 5. The terminal view\n")
    print(
        f"`status NAME` of a stopped and of a running service (`sleep`), piped (stdout to "
        f"/dev/null) and on a pseudo-terminal (120x40, TERM=xterm-256color, output drained); "
        f"the board of 100 running services the same two ways; `startall` of 100 services "
        f"(default start_grace 0.5 s) piped and on a pseudo-terminal (the live display), each "
        f"followed by an untimed `stopall`. Median (min–max) of {reps}, the two ways "
        f"alternating. CPU: user + system time of the command (with the children it reaped), "
        f"which a loaded machine inflates less than wall time.\n"
    )


def _status_name(t: Timings, one: list[str], reps: int) -> None:
    """``status NAME`` of the stopped and of the running service, each after a warm-up."""
    for argv, ok, key in (
        ([*one, "status", "off"], (3,), "stopped"),
        ([*one, "status", "one"], (0,), "running"),
    ):
        run(argv)
        run_pty(argv)  # warm-up
        for _ in range(reps):
            t.measure(f"{key} piped", argv, ok, False)
            t.measure(f"{key} pty", argv, ok, True)


def _board(t: Timings, hundred: list[str], reps: int) -> None:
    """``status`` with 100 services running."""
    r = run([*hundred, "startall"])
    if r.rc != 0:
        NOTES.append(f"view: startall of 100 failed (rc={r.rc}): {r.err[-300:]}")
    for _ in range(reps):
        t.measure("board piped", [*hundred, "status"], (0,), False)
        t.measure("board pty", [*hundred, "status"], (0,), True)
    run([*hundred, "stopall"])


def _startall(t: Timings, hundred: list[str], reps: int) -> None:
    """``startall`` of 100, piped then with the live display, each followed by ``stopall``."""
    for _ in range(reps):
        for pty in (False, True):
            t.measure(f"startall {'pty' if pty else 'piped'}", [*hundred, "startall"], (0,), pty)
            r = run([*hundred, "stopall"])
            if r.rc != 0:
                NOTES.append(f"view: stopall of 100 failed (rc={r.rc}): {r.err[-300:]}")


def _report(t: Timings) -> None:
    series, cpu_cells = t.series, t.cpu_cells
    TARGETS["status_pty"].series = series["running pty"]
    live = ratio(series["startall pty"], series["startall piped"])
    a, b = series["startall pty"].median, series["startall piped"].median
    verdict = (
        "not measured" if a is None or not b else "PASS" if a / b <= LIVE_RATIO_LIMIT else "MISS"
    )
    rows = [
        ["`status NAME`, stopped", cell(series["stopped piped"]), cell(series["stopped pty"]),
         ratio(series["stopped pty"], series["stopped piped"]), cpu_cells("stopped")],
        ["`status NAME`, running", cell(series["running piped"]),
         cell(series["running pty"]) + f" **{TARGETS['status_pty'].mark()}**",
         ratio(series["running pty"], series["running piped"]), cpu_cells("running")],
        ["`status` (the board), 100 running", cell(series["board piped"]),
         cell(series["board pty"]), ratio(series["board pty"], series["board piped"]),
         cpu_cells("board")],
        ["`startall`, 100", cell(series["startall piped"]), cell(series["startall pty"]),
         f"{live} **≤ {LIVE_RATIO_LIMIT}×: {verdict}**", cpu_cells("startall")],
    ]  # fmt: skip
    table(["command", "piped", "pseudo-terminal", "pty / piped", "CPU piped / pty"], rows)
    NOTES.append(f"view: startall of 100, live display on a pty / piped: {live} ({verdict})")
    for key, s in series.items():
        note_failures(f"view {key}", s)
