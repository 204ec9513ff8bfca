"""Printing the side-by-side section (bench/peers.py): the header, the table, the notes on how
each peer was run."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from report import NOTES, Series, cell, note_failures, table

if TYPE_CHECKING:
    from peers import Bench, Results

PEERS = [
    ("S6", "s6"),
    ("Runit", "runit"),
    ("SuperviseDaemon", "supervise-daemon"),
    ("Supervisord", "supervisord"),
    ("Ssd", "start-stop-daemon"),
]
# row, label, servicectl's tool key(s)
ROWS = [
    ("status_stopped", "`status NAME`, stopped", ["Servicectl"]),
    ("status_running", "`status NAME`, running", ["Servicectl"]),
    ("startstop", "start+stop of one service", ["Servicectl"]),
    ("respawn", "respawn after `kill -9`", ["ServicectlSupervised"]),
    ("pss", "PSS of the supervising processes", ["ServicectlSupervised"]),
    ("bringup", "bring-up of N", ["Servicectl", "ServicectlSupervised"]),
    ("teardown", "tear-down of N", ["Servicectl", "ServicectlSupervised"]),
    ("board", "`status` of all (N + 1)", ["Servicectl"]),
]
WHAT_PEERS_RAN = {
    "status_stopped": "s6-svstat DIR (a service with a `down` file); sv status DIR (likewise); "
    "supervisorctl status x; start-stop-daemon --status --pidfile P (no such file)",
    "status_running": "s6-svstat DIR; sv status DIR; supervisorctl status f:p00000; "
    "start-stop-daemon --status --pidfile P",
    "startstop": "s6-svc -wu -u DIR then s6-svc -wD -d DIR (-wU waits as -wu without a "
    "notification-fd); sv -w 30 up DIR then sv -w 30 down DIR; supervise-daemon x --start "
    "then --stop (each through nsenter); supervisorctl start x then stop x; start-stop-daemon "
    "--start --background --make-pidfile then --stop --retry TERM/30/KILL/5 --remove-pidfile",
    "respawn": "SIGKILL to service 0's process; the kernel's exit time of the old process to the "
    "exec time of the new one. s6-supervise waits 1 s after any death before it relaunches "
    "(measured: 1.01 s whether the service had run 1.2, 3 or 5 s); supervisord restarts at "
    "its next 1 s tick",
    "pss": "the sum of Pss: in /proc/PID/smaps_rollup of s6-svscan + every s6-supervise; "
    "runsvdir + every runsv; every supervise-daemon; supervisord; servicectl's supervisor(s)",
    "board": "a `sh` loop of s6-svstat over the scan dir; one `sv status` with every service "
    "dir as arguments; supervisorctl status",
}


def fmt(v: float, unit: str) -> str:
    if unit == "MiB":
        return f"{v:.1f} MiB"
    if v >= 1:
        return f"{v:.2f} s"
    if v >= 0.1:
        return f"{v * 1000:.0f} ms"
    return f"{v * 1000:.1f} ms"


def cell_of(s: Optional[Series], unit: str) -> str:
    if s is None or (not s.values and not s.failures):
        return "—"
    if unit != "MiB":
        return cell(s)
    if not s.values:
        return "FAILED"
    med = statistics.median(s.values)
    return f"{med:.1f} MiB ({min(s.values):.1f}–{max(s.values):.1f})"


def times(a: Optional[Series], b: Optional[Series]) -> str:
    if a is None or b is None or not a.values or not b.values:
        return ""
    r = statistics.median(a.values) / statistics.median(b.values)
    return f"{r:.0f}×" if r >= 10 else f"{r:.2f}×" if r >= 0.1 else f"{r:.3f}×"


def floor_at(res: Results, row: str, n: int) -> Optional[Series]:
    s = res.floor.get((row, n))
    if s is not None and s.values:
        return s
    every = [v for (r, m), s in res.floor.items() if m == n for v in s.values]
    return Series(every) if every else None


def rows_of(res: Results, sizes: list[int]) -> list[list[str]]:
    out = []
    for row, label, sc_keys in ROWS:
        unit = "MiB" if row == "pss" else "s"
        for n in sizes:
            for sc_key in sc_keys:
                sc = res.fig.get((row, n, sc_key))
                peer_cells = []
                any_peer = False
                for key, _ in PEERS:
                    s = res.fig.get((row, n, key))
                    c = cell_of(s, unit)
                    r = times(sc, s)
                    any_peer |= c != "—"
                    peer_cells.append(f"{c} · {r}" if r else c)
                if (sc is None or not (sc.values or sc.failures)) and not any_peer:
                    continue
                what = (
                    label
                    if len(sc_keys) == 1
                    else (f"{label} ({'supervised' if 'Supervised' in sc_key else 'restart: no'})")
                )
                py = "" if unit == "MiB" else times(sc, floor_at(res, row, n))
                out.append([what, str(n), cell_of(sc, unit), py or "—", *peer_cells])
    return out


def header(b: Bench) -> None:
    tree = Path(b.args.tree).resolve()
    git = ["git", "--no-optional-locks", "-C", str(tree)]
    fmt = ["log", "-1", "--format=%h (%cs)"]
    head = subprocess.run([*git, *fmt], capture_output=True, text=True).stdout.strip()
    last = subprocess.run([*git, *fmt, "--", "servicectl"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "diff", "--quiet", "HEAD", "--", "servicectl"]).returncode
    print("## 7. Side by side with the peers\n")
    print(f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"- kernel {platform.release()}; CPUs: {os.cpu_count()}; PID 1: "
          f"`{Path('/proc/1/comm').read_text().strip()}`")  # fmt: skip
    print(f"- servicectl: {tree} at {head}, its servicectl/ last changed in "
          f"{last.stdout.strip()}{' + uncommitted changes' if dirty else ''}; a wheel installed "
          f"in `{b.peers.sc_venv}` (no pip, no setuptools, no .pth)")  # fmt: skip
    print(f"- interpreter: Python {platform.python_version()}, `{b.floor[0]}` "
          f"(the floor `python -c pass` is that venv's python)")  # fmt: skip
    print(f"- load average at the start: {' '.join(f'{x:.2f}' for x in b.load0)}")
    for k, v in b.peers.versions.items():
        print(f"- {k}: {v}")
    for k, v in b.peers.why.items():
        print(f"- **{k} not compared**: {v}")
    print(f"- sizes {', '.join(map(str, b.args.peer_sizes))}; rounds (each tool once per round, "
          f"the order rotating): " + ", ".join(
              f"{rounds} at {n}" for n in b.args.peer_sizes
              for rounds in [__import__('peers').rounds_for(n, b.args.quick)]))  # fmt: skip


def print_report(b: Bench, secs: float) -> None:
    res = b.res
    header(b)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"- load average at the end: {load}; run time of this section: {secs:.0f} s\n")
    print(
        "Medians (min–max). `× python`: servicectl's median over the median of `python -c "
        "pass`, run alternately with it. In a peer's cell, `· R×` is servicectl's median over "
        "that peer's (R > 1: servicectl is slower). PSS in MiB; everything else is wall time, "
        "except where the kernel's event times are named below.\n"
    )
    table(
        ["work", "N", "servicectl", "× python", *[label for _, label in PEERS]],
        rows_of(res, b.args.peer_sizes),
    )
    floors = [v for s in res.floor.values() for v in s.values]
    if floors:
        print(f"`python -c pass` over the whole section: {cell(Series(floors))}.\n")
    print("How each figure was taken:\n")
    for key, label in [("Servicectl", "servicectl"), *PEERS]:
        if key in res.how and res.how[key][0]:
            up, down = res.how[key]
            print(f"- {label}: bring-up: {up}; tear-down: {down}")
    for row, text in WHAT_PEERS_RAN.items():
        print(f"- {row}: {text}")
    print()
    for (row, n, key), s in sorted(res.fig.items()):
        note_failures(f"peers {row} N={n} {key}", s)
    if b.watch.overruns:
        NOTES.append(f"peers: {b.watch.overruns} proc connector overruns: events were lost")
