"""Section 1: startall / status / stopall of N services, against start-stop-daemon loops."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

from common import SSD_RETRY, kill_pids, log, read_pid, run, wait_for
from environment import Env, ssd_start_simple, ssd_stop
from report import NOTES, TARGETS, Series, cell, note_failures, ratio, table

if TYPE_CHECKING:
    from pathlib import Path

SIZES = [10, 100, 200]
HEADERS = [
    "N",
    "servicectl startall",
    "servicectl status",
    "servicectl stopall",
    "s-s-d start loop",
    "s-s-d stop loop",
    "startall / s-s-d start",
    "stopall / s-s-d stop",
]


@dataclass
class Fleet:
    """The figures of one fleet size: servicectl's commands, and the s-s-d loops (None when
    s-s-d is not compared at this size)."""

    n: int
    startall: Series = field(default_factory=Series)
    status: Series = field(default_factory=Series)
    stopall: Series = field(default_factory=Series)
    loop_start: Optional[Series] = None
    loop_stop: Optional[Series] = None


def bench_fleet(env: Env) -> None:
    _intro(env)
    rows = []
    per_stop: Optional[float] = None
    for n in SIZES:
        row, per_stop = _one_size(env, n, per_stop)
        rows.append(row)
    table(HEADERS, rows)


def _intro(env: Env) -> None:
    a = env.args
    reps = a.reps
    print("## 1. Fleet: startall / status / stopall\n")
    print(
        f"N trivial services (`command: sleep 100000`, default start_grace 0.5 s). Wall time of "
        f"one `servicectl` subprocess each; median (min–max) of {reps} repetitions, servicectl "
        f"and start-stop-daemon alternating within each repetition. The s-s-d loops are the "
        f"classic init.d way: N sequential `start-stop-daemon --start --background "
        f"--make-pidfile` / `--stop --retry {SSD_RETRY} --remove-pidfile`.\n"
    )
    if not env.ssd:
        print("start-stop-daemon not found: s-s-d columns skipped.\n")
    else:
        print(
            f"s-s-d is compared for N ≤ {a.sdd_max} (`--sdd-max`). Each s-s-d `--stop` waits "
            f"until the process is reaped, and PID 1 here reaps orphans only every ~1–2 s, so "
            f"the stop loop costs ~1–2 s per service: it is timed for N ≤ {a.sdd_stop_max} "
            f"(`--sdd-stop-max`) in the first {min(a.sdd_stop_reps, reps)} repetition(s) "
            f"(`--sdd-stop-reps`; its spread is tiny, being a wait for PID 1's reap tick). "
            f"Otherwise the started sleeps are killed by PID instead (untimed), and above "
            f"N = {a.sdd_stop_max} the loop is estimated as N × the per-stop median of the "
            f"largest timed N, marked (est.). Note that s-s-d `--start --background` returns "
            f"without checking that the program survived, while servicectl waits start_grace "
            f"(0.5 s) for it: startall's floor is 0.5 s.\n"
        )


def _one_size(env: Env, n: int, per_stop: Optional[float]) -> tuple[list[str], Optional[float]]:
    """Measure N services (and the s-s-d loops, if compared at this N): the table's row, and
    the per-stop median of the s-s-d stop loop (the largest timed N's) for the estimates."""
    a = env.args
    cmd = env.sc_dir(f"fleet{n}", {f"s{i:03d}": "command: sleep 100000\n" for i in range(n)})
    ssd_run = env.base / f"fleet{n}" / "ssd-run"
    ssd_run.mkdir()
    use_ssd = bool(env.ssd) and n <= a.sdd_max
    ssd_timed_stop = use_ssd and n <= a.sdd_stop_max
    f = Fleet(n)
    if use_ssd:
        f.loop_start, f.loop_stop = Series(), Series()
    log(f"fleet N={n}: {a.reps} reps (s-s-d: {'yes' if use_ssd else 'no'})")
    for rep in range(a.reps):
        _servicectl_rep(cmd, f)
        if f.loop_start is not None and f.loop_stop is not None:
            timed = ssd_timed_stop and rep < a.sdd_stop_reps
            _ssd_rep(env, ssd_run, f.n, f.loop_start, f.loop_stop if timed else None)
    if f.loop_stop is not None:
        if ssd_timed_stop and f.loop_stop.median is not None:
            per_stop = f.loop_stop.median / n
        elif not ssd_timed_stop and per_stop is not None:
            f.loop_stop.values, f.loop_stop.estimate = [per_stop * n], True
    if n == 100:
        TARGETS["startall100"].series = f.startall
        TARGETS["stopall100"].series = f.stopall
    if n == 200:
        TARGETS["status200"].series = f.status
    row = _row(f, a.reps)
    _note_failures(f)
    shutil.rmtree(ssd_run, ignore_errors=True)
    return row, per_stop


def _servicectl_rep(cmd: list[str], f: Fleet) -> None:
    """startall, status (if it started), stopall."""
    n = f.n
    r = run([*cmd, "startall"])
    if f.startall.add(r, what=f"startall N={n}"):
        f.status.add(run([*cmd, "status"]), what=f"status N={n}")
    else:
        f.status.failures.append("skipped: startall failed")
    f.stopall.add(run([*cmd, "stopall"]), what=f"stopall N={n}")


def _ssd_rep(
    env: Env, ssd_run: Path, n: int, loop_start: Series, loop_stop: Optional[Series]
) -> None:
    """The s-s-d start loop, then the stop loop when timed (``loop_stop``); whatever is left
    (all of it when the stop loop is not timed) is killed by PID."""
    pidfiles = [ssd_run / f"s{i:03d}.pid" for i in range(n)]
    _timed_loop(pidfiles, lambda p: ssd_start_simple(env, p), loop_start, "starts")
    missing = [f for f in pidfiles if not f.exists()]
    if missing:  # s-s-d returned before its child wrote the PID file
        NOTES.append(f"fleet N={n}: {len(missing)} s-s-d PID files absent at loop end")
        wait_for(lambda fs=pidfiles: all(f.exists() for f in fs), 10, "s-s-d PID files")
    if loop_stop is not None:
        _timed_loop(pidfiles, lambda p: ssd_stop(env, p), loop_stop, "stops")
    kill_pids([p for f in pidfiles if (p := read_pid(f))])
    for f in pidfiles:
        f.unlink(missing_ok=True)


def _timed_loop(
    pidfiles: list[Path], command: Callable[[Path], list[str]], series: Series, what: str
) -> None:
    """One sequential run of ``command`` per PID file: the loop's wall time, or a failure."""
    t0 = time.perf_counter()
    bad = [r for p in pidfiles if (r := run(command(p))).rc != 0]
    elapsed = time.perf_counter() - t0
    if bad:
        series.failures.append(f"{len(bad)} of {len(pidfiles)} {what} failed: {bad[0].err[-200:]}")
    else:
        series.values.append(elapsed)


def _row(f: Fleet, reps: int) -> list[str]:
    n, s_stop = f.n, f.loop_stop

    def with_target(s: Series, key: str, at: int) -> str:
        return f"{cell(s)} **{TARGETS[key].mark()}**" if n == at else cell(s)

    stop_cell = cell(s_stop)
    if s_stop is not None and not s_stop.estimate and 0 < len(s_stop.values) < reps:
        stop_cell += f" n={len(s_stop.values)}"  # timed in fewer repetitions (--sdd-stop-reps)
    return [
        str(n),
        with_target(f.startall, "startall100", 100),
        with_target(f.status, "status200", 200),
        with_target(f.stopall, "stopall100", 100),
        cell(f.loop_start),
        stop_cell,
        ratio(f.startall, f.loop_start),
        ratio(f.stopall, s_stop),
    ]


def _note_failures(f: Fleet) -> None:
    n = f.n
    for label, s in (("startall", f.startall), ("status", f.status), ("stopall", f.stopall)):
        note_failures(f"fleet N={n} servicectl {label}", s)
    note_failures(f"fleet N={n} s-s-d start loop", f.loop_start)
    note_failures(f"fleet N={n} s-s-d stop loop", f.loop_stop)
