"""Section 6: supervision: respawn latency, the supervisor's memory (PSS) for N services, and
supervised against unsupervised start+stop cycles."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import TYPE_CHECKING

import psutil
from common import CHILD_ENV, PY, SLEEP, kill_pids, log, pss_mib, read_pid, run, supervisors
from lifecycle import Cycle, timed_pair
from report import NOTES, SUPERVISED_CYCLE_RATIO, Series, cell, note_failures, ratio, table

if TYPE_CHECKING:
    from pathlib import Path

    from environment import Env


def respawned_at(pid_file: Path, old: int, exe: str, timeout: float = 10) -> float:
    """Poll (every 0.2 ms) until the PID file names a new process that runs ``exe`` (past the
    gate): the time.perf_counter() of that sight."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        pid = read_pid(pid_file)
        if pid and pid != old:
            try:
                if os.readlink(f"/proc/{pid}/exe") == exe:
                    return time.perf_counter()
            except OSError:
                pass
        time.sleep(0.0002)
    raise TimeoutError(f"no respawn within {timeout} s")


def bench_supervise(env: Env) -> None:
    reps = env.args.reps
    print("## 6. Supervision\n")
    print(
        "One supervisor per run directory is the parent of every supervised service (see "
        "docs/supervision.md). Respawn latency: SIGKILL to the service (`sleep 100000`), then "
        "the benchmark polls every 0.2 ms until the PID file names a new process that runs "
        "`sleep` (its gate passed), minus `restart_delay`. PSS: `/proc/PID/smaps_rollup` of "
        "the supervisor with N services running under it. Cycles: `start` then `stop` of a "
        "`sleep` with `start_grace: 0`, supervised (`restart: always`, the supervisor already "
        "running) and not.\n"
    )
    sleep_exe = os.path.realpath(SLEEP)
    lat: dict[float, Series] = {}
    for delay in (0.0, 0.2):
        name = f"r{int(delay * 1000)}"
        yaml = f"command: {SLEEP} 100000\nstart_grace: 0\nrestart: always\n"
        yaml += f"restart_delay: {delay}\nstart_limit: {{interval: 0}}\n"
        sc = env.sc_dir(f"respawn-{name}", {"s": yaml})
        pid_file = env.base / f"respawn-{name}" / "run" / "s.pid"
        series = lat[delay] = Series()
        r = run([*sc, "start", "s"])
        if r.rc != 0:
            series.failures.append(f"start: {r.err[-300:]}")
            continue
        log(f"respawn latency, restart_delay {delay}: {reps * 3} respawns")
        for _ in range(reps * 3):
            old = read_pid(pid_file)
            assert old is not None
            time.sleep(0.05)  # the previous respawn's start_grace and confirmation are over
            t0 = time.perf_counter()
            os.kill(old, signal.SIGKILL)
            try:
                series.values.append(respawned_at(pid_file, old, sleep_exe) - t0 - delay)
            except TimeoutError as e:
                series.failures.append(str(e))
                break
        run([*sc, "stop", "s"])
    table(
        ["restart_delay", "exit → new process running, minus restart_delay"],
        [
            ["0 s", cell(lat[0.0])],
            ["0.2 s", cell(lat[0.2])],
        ],
    )
    _bench_supervise_pss(env)
    _bench_supervise_cycle(env)


def _bench_supervise_pss(env: Env) -> None:
    rows = []
    for n in (1, 10, 100):
        yaml = f"command: {SLEEP} 100000\nstart_grace: 0\nrestart: always\n"
        sc = env.sc_dir(f"pss-{n}", {f"s{i:03d}": yaml for i in range(n)})
        run_dir = env.base / f"pss-{n}" / "run"
        r = run([*sc, "startall"], timeout=300)
        sups = supervisors(run_dir)
        if r.rc != 0 or not sups:
            NOTES.append(f"pss {n}: startall rc={r.rc}, supervisors {sups}: {r.err[-300:]}")
            continue
        time.sleep(0.5)
        pss = sum(pss_mib(p) for p in sups)
        rss = sum(psutil.Process(p).memory_info().rss for p in sups) / 2**20
        threads = sum(psutil.Process(p).num_threads() for p in sups)
        rows.append([str(n), str(len(sups)), f"{pss:.1f} MiB", f"{rss:.1f} MiB", str(threads)])
        run([*sc, "stopall"], timeout=300)
        kill_pids(sups)
    py = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"], env=CHILD_ENV)
    time.sleep(0.5)
    one = pss_mib(py.pid)
    py.kill()
    py.wait()
    rows.append(
        [
            f"(one `python -c` for comparison: ×100 = {one * 100:.0f} MiB)",
            "—",
            f"{one:.1f} MiB",
            "—",
            "—",
        ]
    )
    table(["services", "supervisors", "PSS", "RSS", "threads"], rows)


def _bench_supervise_cycle(env: Env) -> None:
    reps = env.args.reps
    plain = "command: sleep 100000\nstart_grace: 0\n"
    sup = plain + "restart: always\n"
    sc = env.sc_dir("sup-cycle", {"plain": plain, "sup": sup, "keeper": sup})
    cold = Cycle()
    cold.add(timed_pair([*sc, "start", "sup"], [*sc, "stop", "sup"], "supervised, cold"))
    run([*sc, "start", "keeper"])  # keeps the supervisor up between cycles
    c = {"plain": Cycle(), "sup": Cycle()}
    log(f"supervised cycles: {reps} reps")
    for _ in range(reps):
        for k in ("plain", "sup"):
            c[k].add(timed_pair([*sc, "start", k], [*sc, "stop", k], f"cycle {k}"))
    run([*sc, "stop", "keeper"])
    r = ratio(c["sup"].total, c["plain"].total)
    pl, su = c["plain"].total.median, c["sup"].total.median
    verdict = (
        "not measured"
        if not pl or not su
        else "PASS"
        if su <= SUPERVISED_CYCLE_RATIO * pl
        else "MISS"
    )
    table(
        ["cycle (start_grace 0)", "start+stop", "start / stop"],
        [
            ["unsupervised", cell(c["plain"].total), c["plain"].parts()],
            ["supervised (supervisor running)", cell(c["sup"].total), c["sup"].parts()],
            ["supervised, first start (starts the supervisor)", cell(cold.total), cold.parts()],
            [
                f"ratio supervised / unsupervised (target ≤ {SUPERVISED_CYCLE_RATIO}×)",
                f"{r} **{verdict}**",
                "—",
            ],
        ],
    )
    for k, cy in c.items():
        note_failures(f"supervised cycle {k}", cy.total)
