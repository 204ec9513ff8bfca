"""Sections 3 and 4: start+stop cycles (simple, forking) and stop latency, against
start-stop-daemon and supervisorctl."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from common import (
    FORKING_YAML,
    FORKINGD,
    PY,
    SSD_RETRY,
    SYS_PY3,
    alive,
    kill_pids,
    log,
    read_pid,
    run,
    wait_for,
)
from environment import Env, ssd_start_simple, ssd_stop
from report import NOTES, TARGETS, Series, cell, fmt_t, note_failures, ratio, table

if TYPE_CHECKING:
    from pathlib import Path

# ---------------------------------------------------------------- 3. cycles


def timed_pair(a: list[str], b: list[str], what: str) -> tuple[Optional[float], float, float, str]:
    """Run a then b; (total or None on failure, a secs, b secs, error)."""
    ra = run(a)
    rb = run(b)
    if ra.rc != 0 or rb.rc != 0:
        bad = ra if ra.rc != 0 else rb
        return None, ra.secs, rb.secs, f"{what}: rc={bad.rc}: {bad.err[-300:]}"
    return ra.secs + rb.secs, ra.secs, rb.secs, ""


@dataclass
class Cycle:
    total: Series = field(default_factory=Series)
    start: list[float] = field(default_factory=list)
    stop: list[float] = field(default_factory=list)

    def add(self, res: tuple[Optional[float], float, float, str]) -> None:
        tot, a, b, err = res
        if tot is None:
            self.total.failures.append(err)
            return
        self.total.values.append(tot)
        self.start.append(a)
        self.stop.append(b)

    def parts(self) -> str:
        if not self.start:
            return "—"
        return f"{fmt_t(statistics.median(self.start))} / {fmt_t(statistics.median(self.stop))}"


# servicectl with start_grace 0 and 0.5, s-s-d and supervisorctl (simple); servicectl and s-s-d
# (forking)
CYCLES = ("sc0", "sc05", "ssd", "sup", "scf", "ssdf")


def bench_cycles(env: Env) -> None:
    reps = env.args.reps
    run_dir = env.base / "cycle" / "run"
    sc = env.sc_dir(
        "cycle",
        {
            "s0": "command: sleep 100000\nstart_grace: 0\n",
            "s05": "command: sleep 100000\n",
            "f": FORKING_YAML,
        },
    )
    ssd_dir = env.base / "cycle" / "ssd-run"
    ssd_dir.mkdir()
    _cycles_intro(env)
    c = {k: Cycle() for k in CYCLES}
    ssd_p, ssdf_p = ssd_dir / "s.pid", ssd_dir / "f.pid"
    log(f"cycles: {reps} reps")
    for _ in range(reps):
        _cycles_rep(env, sc, c, ssd_p, ssdf_p)
        leftovers = [read_pid(p) for p in (ssd_p, ssdf_p, *run_dir.glob("*.pid"))]
        if any(p and alive(p) for p in leftovers):
            NOTES.append(f"cycles: processes left running after a cycle: {leftovers}")
            kill_pids([p for p in leftovers if p])
    TARGETS["cycle_simple"].series = c["sc0"].total
    TARGETS["cycle_forking"].series = c["scf"].total
    _cycles_table(env, c)
    for k, cy in c.items():
        note_failures(f"cycle {k}", cy.total)


def _cycles_intro(env: Env) -> None:
    reps = env.args.reps
    print("## 3. Start+stop cycles\n")
    print(
        f"One `start` then one `stop` subprocess, timed together (start / stop medians shown "
        f"beside); median (min–max) of {reps}, tools alternating. Simple: `sleep 100000`. "
        f"Forking: `{FORKINGD.name} --pidfile P` (double fork, writes its own PID file), run by "
        f"`{SYS_PY3}`. s-s-d: `--start --background --make-pidfile` (simple) or `--start "
        f"--pidfile P --exec {SYS_PY3}` (forking), then `--stop --retry {SSD_RETRY}`. "
        f"supervisorctl: `start sleeper` / `stop sleeper` (`startsecs=0`) against a running "
        f"supervisord, which is the sleeper's parent and reaps it at once. s-s-d's simple start "
        f"returns once it has forked (it checks nothing); its stop waits for PID 1 to reap.\n"
    )
    if not env.ssd:
        print("start-stop-daemon not found: its columns are skipped.\n")
    if not env.sup:
        print(f"supervisorctl column skipped: {env.sup_why}\n")


def _cycles_rep(env: Env, sc: list[str], c: dict[str, Cycle], ssd_p: Path, ssdf_p: Path) -> None:
    """One cycle of each kind, the tools alternating."""
    sup = env.sup
    c["sc0"].add(timed_pair([*sc, "start", "s0"], [*sc, "stop", "s0"], "servicectl s0"))
    if env.ssd:
        c["ssd"].add(timed_pair(ssd_start_simple(env, ssd_p), ssd_stop(env, ssd_p), "s-s-d"))
    c["sc05"].add(timed_pair([*sc, "start", "s05"], [*sc, "stop", "s05"], "servicectl s05"))
    if sup:
        c["sup"].add(
            timed_pair([*sup.ctl, "start", "sleeper"], [*sup.ctl, "stop", "sleeper"], "sup")
        )
    c["scf"].add(timed_pair([*sc, "start", "f"], [*sc, "stop", "f"], "servicectl forking"))
    if env.ssd:
        start = [env.ssd, "--start", "--pidfile", str(ssdf_p), "--exec", SYS_PY3, "--"]
        c["ssdf"].add(
            timed_pair(
                [*start, str(FORKINGD), "--pidfile", str(ssdf_p)],
                ssd_stop(env, ssdf_p, remove=False),
                "s-s-d forking",
            )
        )


def _cycles_table(env: Env, c: dict[str, Cycle]) -> None:
    have = {"ssd": bool(env.ssd), "ssdf": bool(env.ssd), "sup": env.sup is not None}

    def col(k: str) -> list[str]:
        return [cell(c[k].total), c[k].parts()] if have[k] else ["—", "—"]

    def ratios(k: str, *others: tuple[str, str]) -> str:
        out = [f"{ratio(c[k].total, c[o].total)} {name}" for o, name in others if have[o]]
        return ", ".join(out) or "—"

    rows = [
        [
            "simple, start_grace 0",
            cell(c["sc0"].total) + f" **{TARGETS['cycle_simple'].mark()}**",
            c["sc0"].parts(),
            *col("ssd"),
            *col("sup"),
            ratios("sc0", ("ssd", "s-s-d"), ("sup", "supervisorctl")),
        ],
        [
            "simple, start_grace 0.5 (default)",
            cell(c["sc05"].total),
            c["sc05"].parts(),
            *col("ssd"),
            *col("sup"),
            ratios("sc05", ("ssd", "s-s-d"), ("sup", "supervisorctl")),
        ],
        [
            "forking (double fork), start_grace 0",
            cell(c["scf"].total) + f" **{TARGETS['cycle_forking'].mark()}**",
            c["scf"].parts(),
            *col("ssdf"),
            "—",
            "—",
            ratios("scf", ("ssdf", "s-s-d")),
        ],
    ]
    table(
        [
            "cycle",
            "servicectl",
            "start / stop",
            "s-s-d",
            "start / stop",
            "supervisorctl",
            "start / stop",
            "servicectl / other",
        ],
        rows,
    )


# ---------------------------------------------------------------- 4. stop latency


LATPROG = '''\
"""Stop-latency probe: on SIGTERM write time.time() to argv[1], then _exit at once."""
import os, signal, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
def on_term(signum, frame):
    t = time.time()
    os.write(fd, repr(t).encode())
    os._exit(0)
signal.signal(signal.SIGTERM, on_term)
os.close(os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644))  # ready: handler installed
while True:
    signal.pause()
'''


def bench_latency(env: Env) -> None:
    reps = env.args.reps
    d = env.base / "latency"
    d.mkdir()
    prog = d / "latprog.py"
    prog.write_text(LATPROG)
    out_sc, ready_sc = d / "exit-sc.txt", d / "ready-sc"
    out_ssd, ready_ssd = d / "exit-ssd.txt", d / "ready-ssd"
    ssd_pid = d / "ssd.pid"
    lat_cmd = json.dumps([PY, str(prog), str(out_sc), str(ready_sc)])
    sc = env.sc_dir("latency-sc", {"lat": f"command: {lat_cmd}\nstart_grace: 0\n"})
    print("## 4. Stop latency\n")
    print(
        f"Time from the daemon's exit to the stop command returning. The daemon (a Python "
        f"program) writes `time.time()` right before `os._exit(0)` in its SIGTERM handler; the "
        f"benchmark takes `time.time()` right after the stop subprocess is reaped. Median "
        f"(min–max) of {reps}, tools alternating. 'whole stop' is the stop command's wall time "
        f"(includes its start-up).\n"
    )
    res = {"sc": (Series(), Series()), "ssd": (Series(), Series())}
    log(f"latency: {reps} reps")
    for _ in range(reps):
        _latency_once(
            "sc", [*sc, "start", "lat"], [*sc, "stop", "lat"], out_sc, ready_sc, *res["sc"]
        )
        if env.ssd:
            _latency_once(
                "ssd",
                ssd_start_simple(env, ssd_pid, PY, str(prog), str(out_ssd), str(ready_ssd)),
                ssd_stop(env, ssd_pid),
                out_ssd,
                ready_ssd,
                *res["ssd"],
            )
            kill_pids([p for p in [read_pid(ssd_pid)] if p])
    TARGETS["stop_latency"].series = res["sc"][0]
    _latency_table(env, res)


def _latency_once(
    key: str,
    start: list[str],
    stop: list[str],
    out: Path,
    ready: Path,
    lat: Series,
    whole: Series,
) -> None:
    """Start the probe, wait until it handles SIGTERM, stop it: add the time from its exit to
    the stop's return to ``lat``, and the stop's wall time to ``whole``."""
    for f in (out, ready):
        f.unlink(missing_ok=True)
    r = run(start)
    if r.rc != 0:
        lat.failures.append(f"start rc={r.rc}: {r.err[-300:]}")
        return
    try:
        wait_for(ready.exists, 10, f"{key} probe to install its SIGTERM handler")
    except TimeoutError as e:
        lat.failures.append(str(e))
        return
    r = run(stop)
    t_ret = r.ended
    try:
        t_exit = float(out.read_text())
    except (OSError, ValueError) as e:
        lat.failures.append(f"stop rc={r.rc}, no exit time: {e!r} {r.err[-200:]}")
        return
    if r.rc != 0:
        lat.failures.append(f"stop rc={r.rc}: {r.err[-300:]}")
        return
    lat.values.append(t_ret - t_exit)
    whole.values.append(r.secs)


def _latency_table(env: Env, res: dict[str, tuple[Series, Series]]) -> None:
    rows = [
        [
            "servicectl stop",
            cell(res["sc"][0]) + f" **{TARGETS['stop_latency'].mark()}**",
            cell(res["sc"][1]),
        ]
    ]
    if env.ssd:
        rows.append(
            [
                f"start-stop-daemon --stop --retry {SSD_RETRY}",
                cell(res["ssd"][0]),
                cell(res["ssd"][1]),
            ]
        )
        rows.append(
            [
                "ratio servicectl / s-s-d",
                ratio(res["sc"][0], res["ssd"][0]),
                ratio(res["sc"][1], res["ssd"][1]),
            ]
        )
    else:
        print("start-stop-daemon not found: its row is skipped.\n")
    table(["tool", "exit → stop returns", "whole stop"], rows)
    note_failures("latency servicectl", res["sc"][0])
    note_failures("latency s-s-d", res["ssd"][0])
