"""startall / status / stopall of N services by two servicectl trees, side by side: a git ref
(the base, main's code before a change) and this checkout, alternating within each repetition
so that the machine's drift hits both alike. Prints a Markdown table of medians (min-max).

    python bench/side_by_side.py [--base REF] [--n 100] [--reps 7] [--limits]

--limits gives every service memory_max, pids_max and cpu_weight (this checkout only: the base
does not know the keys, so its column is left out). Measures, never asserts.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PY, REPO, log, run  # noqa: E402


def extract(ref: str, into: Path) -> Path:
    """The servicectl package of ``ref``, extracted (git archive) under ``into``."""
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", ref],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tree = into / f"base-{sha}"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, "servicectl"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    compileall.compile_dir(tree / "servicectl", quiet=1)
    return tree


def services(root: Path, n: int, limits: bool) -> list[str]:
    """N trivial services in root/svc (run and log beside it); the base argv of servicectl."""
    svc, rundir, logdir = root / "svc", root / "run", root / "log"
    for p in (svc, rundir, logdir):
        p.mkdir(parents=True)
    extra = "memory_max: 64M\npids_max: 32\ncpu_weight: 50\n" if limits else ""
    for i in range(n):
        (svc / f"s{i:03d}.yaml").write_text(f"command: sleep 100000\n{extra}")
    old = 1_000_000_000  # older than the definition cache's window for coarse file times
    for f in svc.iterdir():
        st = f.stat()
        os.utime(f, ns=(st.st_atime_ns - old, st.st_mtime_ns - old))
    return ["-m", "servicectl", "-d", str(svc), "--run-dir", str(rundir), "--log-dir", str(logdir)]


def one(tree: Path, argv: list[str], what: str) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, the command and what it reaped) of one command."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    r = run([PY, *argv, what], timeout=300, env=env)
    if r.rc not in (0, 3) if what == "status" else r.rc != 0:
        log(f"{tree.name} {what}: exit {r.rc}: {r.err[-300:]}")
    return r.secs, r.cpu


def cell(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3f} s ({min(xs):.3f}–{max(xs):.3f})" if xs else "-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--base", default="main", help="git ref of the base tree (default: main)")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--limits", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="servicectl-sbs-"))
    try:
        trees = {"this checkout": REPO}
        if not a.limits:
            trees = {f"base ({a.base})": extract(a.base, tmp), **trees}
        argvs = {name: services(tmp / f"t{i}", a.n, a.limits) for i, name in enumerate(trees)}
        times: dict[tuple[str, str], list[float]] = {}
        cpus: dict[tuple[str, str], list[float]] = {}
        for rep in range(a.reps + 1):  # the first is a warm-up
            order = list(trees) if rep % 2 else list(reversed(trees))
            for name in order:
                for what in ("startall", "status", "stopall"):
                    secs, cpu = one(trees[name], argvs[name], what)
                    if rep:
                        times.setdefault((name, what), []).append(secs)
                        cpus.setdefault((name, what), []).append(cpu)
            log(f"repetition {rep} done")
        print(f"\nstartall / stopall of {a.n} services (`command: sleep 100000`), median (min–max)")
        print(f"of {a.reps} repetitions, the trees alternating:\n")
        print("| tree | startall | status (the board) | stopall |\n|---|---|---|---|")
        for name in trees:
            cells = " | ".join(cell(times[(name, w)]) for w in ("startall", "status", "stopall"))
            print(f"| {name} | {cells} |")
        print("\nCPU seconds (user + system of the command and the children it reaped: the")
        print("services' own run, started and killed, is in startall's), median (min–max):\n")
        print("| tree | startall | status (the board) | stopall |\n|---|---|---|---|")
        for name in trees:
            cells = " | ".join(cell(cpus[(name, w)]) for w in ("startall", "status", "stopall"))
            print(f"| {name} | {cells} |")
        return 0
    finally:
        for name in argvs if "argvs" in locals() else ():
            one(trees[name], argvs[name], "stopall")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
