"""Benchmarks for servicectl: fleet start/status/stop, CLI cost, start/stop cycles, stop latency.
Measures and prints Markdown tables, never asserts: python bench/bench.py [--quick] [--only X]."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from cli import bench_cli
from common import CHILD_ENV, FORKING_YAML, ORIG_ENV, PY, REPO, log, run
from environment import Env, ensure_supervisor
from fleet import bench_fleet
from lifecycle import bench_cycles, bench_latency
from report import NOTES, TARGETS
from supervise import bench_supervise
from supervise_peers import bench_peers as bench_supervise_peers
from view import bench_view


def warm_up(env: Env) -> None:
    """Untimed: run every kind of command once, so bytecode and page cache are warm."""
    log("warm-up")
    sc = env.sc_dir("warmup", {"s": "command: sleep 100000\nstart_grace: 0\n", "f": FORKING_YAML})
    cmds = [
        [PY, "-c", "pass"],
        [*sc, "--help"],
        [*sc, "list"],
        [*sc, "status"],
        [*sc, "start", "s"],
        [*sc, "status", "s"],
        [*sc, "stop", "s"],
        [*sc, "start", "f"],
        [*sc, "stop", "f"],
        [*sc, "startall"],
        [*sc, "status"],
        [*sc, "stopall"],
    ]
    if env.sup:
        cmds += [[*env.sup.ctl, "--help"], [*env.sup.ctl, "status"]]
    for c in cmds:
        r = run(c)
        if r.rc not in (0, 3):
            NOTES.append(f"warm-up `{' '.join(c[-2:])}`: rc={r.rc}: {r.err[-300:]}")


def header(env: Env) -> None:
    git = ["git", "--no-optional-locks", "-C", str(REPO)]
    try:
        sha = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = (
            subprocess.run([*git, "diff", "--quiet", "HEAD", "--", "servicectl"]).returncode != 0
        )
        rev = f"{sha}{' + uncommitted changes in servicectl/' if dirty else ''}"
    except OSError:
        rev = "unknown"
    ssd_ver = "not found"
    if env.ssd:
        v = subprocess.run([env.ssd, "--version"], capture_output=True, text=True).stdout
        ssd_ver = v.splitlines()[0] if v else "present"
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    print("# servicectl benchmarks\n")
    print(f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"- kernel (`uname -r`): {platform.release()}")
    print(f"- CPUs: {os.cpu_count()} (usable: {affinity})")
    print(f"- Python: {platform.python_version()} ({PY})")
    print(f"- servicectl: {rev}, run as `{env.sc_exe}`")
    print(f"- start-stop-daemon: {ssd_ver}")
    print(f"- PID 1: `{Path('/proc/1/comm').read_text().strip()}`")
    print(f"- load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if env.args.env_as_is:
        print("- Python bytecode: environment as-is (`--env-as-is`)")
    else:
        unset = (
            "; PYTHONDONTWRITEBYTECODE=1 from this environment is unset for the tools measured "
            "(with it, this editable install would compile servicectl from source on every run)"
            if "PYTHONDONTWRITEBYTECODE" in ORIG_ENV
            else ""
        )
        print(
            f"- Python bytecode: cached in the benchmark's temp dir (PYTHONPYCACHEPREFIX){unset}; "
            f"`--env-as-is` measures with the environment unchanged"
        )
    print(f"- repetitions: {env.args.reps}{' (--quick)' if env.args.quick else ''}\n")


STEPS: dict[str, list[Callable[[Env], None]]] = {
    "fleet": [bench_fleet],
    "cli": [bench_cli],
    "cycle": [bench_cycles, bench_latency],
    "view": [bench_view],
    "supervise": [bench_supervise, bench_supervise_peers],
    "supervise-peers": [bench_supervise_peers],
}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="3 repetitions instead of 7")
    ap.add_argument(
        "--only",
        choices=list(STEPS),
        help="cycle = cycles + stop latency; view = status NAME, board, startall on a terminal; "
        "supervise = respawn latency, the supervisor's PSS, supervised cycles, and beside "
        "runsv, s6-supervise and supervisord (respawn, PSS of 1/100/1,000, health checks)",
    )
    ap.add_argument("--reps", type=int, help="repetitions per row (default 7, --quick 3)")
    ap.add_argument(
        "--peers",
        action="store_true",
        help="only section 7: side by side with s6, runit, supervise-daemon, supervisord and "
        "start-stop-daemon at 1, 100 and 1,000 services (root: the proc connector)",
    )
    ap.add_argument(
        "--tree",
        default=str(REPO),
        help="--peers: the servicectl source tree to build a wheel of (default: this one)",
    )
    ap.add_argument(
        "--peer-sizes",
        default="1,100,1000",
        help="--peers: fleet sizes, comma-separated (default 1,100,1000)",
    )
    ap.add_argument(
        "--sdd-max", type=int, default=100, help="compare s-s-d for N ≤ this (default 100)"
    )
    ap.add_argument(
        "--sdd-stop-max",
        type=int,
        default=10,
        help="time the s-s-d stop loop for N ≤ this (default 10)",
    )
    ap.add_argument(
        "--sdd-stop-reps",
        type=int,
        help="repetitions that time the s-s-d stop loop (default 3, --quick 1)",
    )
    ap.add_argument(
        "--env-as-is",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE etc. as set (default: cache bytecode in the temp dir)",
    )
    ap.add_argument(
        "--servicectl", help="servicectl executable (default: this interpreter's script)"
    )
    args = ap.parse_args()
    args.reps = args.reps or (3 if args.quick else 7)
    args.peer_sizes = [int(x) for x in args.peer_sizes.split(",") if x.strip()]
    if args.sdd_stop_reps is None:
        args.sdd_stop_reps = 1 if args.quick else 3
    return args


def run_sections(env: Env, sections: list[str]) -> None:
    """Each section's steps in turn; a step that fails is reported and the next one runs."""
    for name in sections:
        for fn in STEPS[name]:
            try:
                fn(env)
            except KeyboardInterrupt:
                raise
            except Exception as e:
                print(f"**{fn.__name__} aborted: {e!r}**\n")
                log(f"{fn.__name__} aborted: {e!r}")
            sys.stdout.flush()


def summary(t0: float) -> None:
    """The targets measured, with their verdicts; the notes; the run time."""
    print("## Targets\n")
    for t in TARGETS.values():
        if t.series is not None:
            fig = t.figure()
            print(f"- {t.verdict()}: {t.what}: {fig} (target ≤ {t.limit_text()}, median)")
    if NOTES:
        print("\n## Notes\n")
        for n in NOTES:
            print(f"- {n}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n_Run time: {time.monotonic() - t0:.0f} s; load average at end: {load}._")


def run_peers(env: Env, t0: float) -> int:
    from peers import bench_peers

    print("# servicectl benchmarks: side by side\n")
    try:
        bench_peers(env.args, env.base)
        sys.stdout.flush()
        summary(t0)
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        env.cleanup()
    return 0


def main() -> int:
    args = parse_args()

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    env = Env(args)
    if not args.env_as_is:
        CHILD_ENV.pop("PYTHONDONTWRITEBYTECODE", None)
        CHILD_ENV["PYTHONPYCACHEPREFIX"] = str(env.base / "pycache")
    t0 = time.monotonic()
    if args.peers:
        return run_peers(env, t0)
    try:
        header(env)
        sections = [args.only] if args.only else list(STEPS)
        if "cli" in sections or "cycle" in sections:
            ensure_supervisor(env)
        warm_up(env)
        run_sections(env, sections)
        summary(t0)
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        env.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
