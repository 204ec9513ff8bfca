"""Where servicectl's time goes: `python -X importtime` trees and py-spy samples of
the hot commands, from a wheel install (bench/peer_setup.py), written as text reports.

    python bench/profile.py [--out DIR] [--reps 15] [--tree PATH] [--only NAME,...]

For each scenario: the median wall time of the command (unprofiled, alternating with
`python -c pass`), the import tree (median self/cumulative ms per module over --reps runs, the
chains above 0.3 ms), and py-spy's samples (`--native`, rate 2 kHz, summed over --reps runs;
startall/stopall of 1,000 once each with --subprocesses): the share of samples spent importing,
the servicectl functions by inclusive share, and the leaf frames by self share. Shares are
turned into ms by the unprofiled median. py-spy comes from `pip install py-spy`.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CHILD_ENV, REPO, run  # noqa: E402
from peer_setup import wheel_venv  # noqa: E402

ENV = {k: v for k, v in CHILD_ENV.items() if not k.startswith("PYTHON")}
SLEEP = "/usr/bin/sleep"
RATE = 2000  # py-spy's samples a second


@dataclass
class Scenario:
    name: str
    argv: Callable[[], list[list[str]]]  # one or more commands run in turn (start+stop: two)
    before: Callable[[], None] = lambda: None
    after: Callable[[], None] = lambda: None
    setup: Callable[[], None] = lambda: None  # once, before the scenario's runs
    teardown: Callable[[], None] = lambda: None
    ok: tuple[int, ...] = (0, 3)
    reps: Optional[int] = None  # None: --reps
    subprocesses: bool = False


class Prof:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.venv = Path(args.venv) if args.venv else wheel_venv(Path(args.tree).resolve())
        self.py = str(self.venv / "bin" / "python")
        self.sc = str(self.venv / "bin" / "servicectl")
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.base = Path(tempfile.mkdtemp(prefix="servicectl-prof-"))
        self.pyspy_exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")

    def dirs(self, name: str, n: int) -> list[str]:
        d = self.base / name
        for sub in ("svc", "run", "log"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            f = d / "svc" / f"s{i:05d}.yaml"
            f.write_text(f"command: {SLEEP} 100000\nstart_grace: 0\n")
        return [self.sc, "-d", str(d / "svc"), "--run-dir", str(d / "run"), "--log-dir",
                str(d / "log")]  # fmt: skip

    def sc_run(self, argv: list[str]) -> None:
        r = run(argv, env=ENV, timeout=300)
        if r.rc not in (0, 3):
            print(f"warning: {' '.join(argv[-2:])}: rc={r.rc}: {r.err[-300:]}", file=sys.stderr)

    def scenarios(self) -> list[Scenario]:
        one = self.dirs("one", 2)
        fleet = self.dirs("fleet", 1000)
        time.sleep(2.2)  # definitions older than the cache's window (cache.RACY_NS)
        for cmd in (one, fleet):
            self.sc_run([*cmd, "list"])
        self.sc_run([*one, "start", "s00001"])
        return [
            Scenario("status NAME, stopped", lambda: [[*one, "status", "s00000"]]),
            Scenario("status NAME, running", lambda: [[*one, "status", "s00001"]]),
            Scenario("--help", lambda: [[*one, "--help"]]),
            Scenario(
                "start+stop of one service",
                lambda: [[*one, "start", "s00000"], [*one, "stop", "s00000"]],
            ),
            Scenario(
                "status of 1,000 (the board)",
                lambda: [[*fleet, "status"]],
                setup=lambda: self.sc_run([*fleet, "startall"]),
                teardown=lambda: self.sc_run([*fleet, "stopall"]),
            ),
            Scenario(
                "startall of 1,000",
                lambda: [[*fleet, "startall"]],
                after=lambda: self.sc_run([*fleet, "stopall"]),
                reps=3,
                subprocesses=True,
            ),
            Scenario(
                "stopall of 1,000",
                lambda: [[*fleet, "stopall"]],
                before=lambda: self.sc_run([*fleet, "startall"]),
                reps=3,
                subprocesses=True,
            ),
        ]

    # ------------------------------------------------------------ measurements

    def wall(self, sc: Scenario, reps: int) -> tuple[float, float]:
        """Median wall ms of the scenario's commands (summed) and of python -c pass."""
        w, f = [], []
        for _ in range(reps):
            sc.before()
            w.append(sum(run(a, env=ENV, timeout=300).secs for a in sc.argv()) * 1000)
            sc.after()
            f.append(run([self.py, "-c", "pass"], env=ENV).secs * 1000)
        return statistics.median(w), statistics.median(f)

    def importtime(self, sc: Scenario, reps: int) -> dict[str, list[tuple[float, float, int]]]:
        """Per module (name, in order): (self ms, cumulative ms, depth) of each run."""
        rows: dict[str, list[tuple[float, float, int]]] = collections.defaultdict(list)
        self.order: list[str] = []
        for _ in range(reps):
            sc.before()
            for a in sc.argv():
                p = subprocess.run([self.py, "-X", "importtime", *a], env=ENV,
                                   capture_output=True, text=True, timeout=300)  # fmt: skip
                for line in p.stderr.splitlines():
                    m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
                    if m:
                        name = m.group(4)
                        if name not in rows:
                            self.order.append(name)
                        depth = len(m.group(3)) // 2
                        rows[name].append((int(m.group(1)) / 1000, int(m.group(2)) / 1000, depth))
            sc.after()
        return rows

    def pyspy(self, sc: Scenario, reps: int) -> collections.Counter[str]:
        stacks: collections.Counter[str] = collections.Counter()
        for i in range(reps):
            sc.before()
            for j, a in enumerate(sc.argv()):
                f = self.out / f"raw-{slug(sc.name)}-{i}-{j}.txt"
                cmd = [
                    self.pyspy_exe,
                    "record",
                    "-r",
                    str(RATE),
                    "--native",
                    "-f",
                    "raw",
                    "-o",
                    str(f),
                ]
                if sc.subprocesses:  # threads: where the GIL goes (it serialises them)
                    cmd += ["--subprocesses", "--gil"]
                subprocess.run([*cmd, "--", self.py, *a], env=ENV, capture_output=True,
                               timeout=600)  # fmt: skip
                if f.exists():
                    for line in f.read_text().splitlines():
                        stack, _, count = line.rpartition(" ")
                        if count.isdigit():
                            stacks[stack] += int(count)
            sc.after()
        return stacks


def slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def import_tree(rows: dict[str, list[tuple[float, float, int]]], order: list[str],
                floor_ms: float = 0.3) -> list[str]:  # fmt: skip
    """Modules (in import order, indented by depth) whose median cumulative time ≥ floor_ms."""
    out = []
    for name in reversed(order):  # importtime prints children before their parent
        v = rows[name]
        cum = statistics.median(x[1] for x in v)
        slf = statistics.median(x[0] for x in v)
        depth = v[0][2]
        if cum >= floor_ms:
            out.append(f"{'  ' * depth}{name}: {cum:.1f} ms (self {slf:.1f})")
    return out


def frame_name(frame: str) -> str:
    return frame.split(" (")[0] + (f" ({frame.split(' (')[1]}" if " (" in frame else "")


def _key(frame: str) -> str:
    return re.sub(r":\d+\)$", ")", frame)


def spy_summary(
    stacks: collections.Counter[str], wall_ms: Optional[float], rate: int, runs: int
) -> list[str]:
    """Shares of the samples: importing or not; servicectl's functions, inclusive (split into
    the importing they trigger and the rest); leaf frames. One-thread commands: a sample is
    wall/samples ms; threaded ones (sampled with --gil): 1/rate s of holding the GIL. The ms
    are per run (the samples of ``runs`` runs are summed)."""
    total = sum(stacks.values())
    if not total:
        return ["(no samples)"]
    ms = wall_ms / total if wall_ms else 1000 / rate / runs
    imp = sum(c for s, c in stacks.items() if "_find_and_load" in s)
    incl: collections.Counter[str] = collections.Counter()
    incl_imp: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    for s, c in stacks.items():
        frames = s.split(";")
        seen = set()
        for i, fr in enumerate(frames):
            if "servicectl/" in fr and "<module>" not in fr:
                key = _key(fr)
                if key not in seen:
                    seen.add(key)
                    incl[key] += c
                    if any("_find_and_load" in f for f in frames[i:]):
                        incl_imp[key] += c
        leaf[_key(frames[-1])] += c
    what = "of wall" if wall_ms else "GIL held"
    out = [
        f"samples: {total} ({what}: ≈{total * ms:.0f} ms); importing: {100 * imp / total:.0f} % "
        f"(≈{imp * ms:.1f} ms); the rest ≈{(total - imp) * ms:.1f} ms",
        "servicectl functions, inclusive (outside `<module>` bodies): share, ms, of which "
        "importing ms:",
    ]
    for k, c in incl.most_common(22):
        out.append(
            f"  {100 * c / total:5.1f} %  ≈{c * ms:7.1f} ms  (imp {incl_imp[k] * ms:5.1f})  {k}"
        )
    out.append("leaf frames (self):")
    for k, c in leaf.most_common(16):
        out.append(f"  {100 * c / total:5.1f} %  ≈{c * ms:7.1f} ms  {k}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="/tmp/servicectl-profile")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--tree", default=str(REPO))
    ap.add_argument("--venv", help="a venv with servicectl installed (default: build a wheel)")
    ap.add_argument("--only", help="comma-separated scenario names (substrings)")
    args = ap.parse_args()
    p = Prof(args)
    report = []
    try:
        for sc in p.scenarios():
            if args.only and not any(s in sc.name for s in args.only.split(",")):
                continue
            reps = sc.reps or args.reps
            print(f"[profile] {sc.name}", file=sys.stderr, flush=True)
            sc.setup()
            try:
                wall, floor = p.wall(sc, reps)
                rows = p.importtime(sc, min(reps, 7))
                tree = import_tree(rows, p.order)
                stacks = p.pyspy(sc, reps)
            finally:
                sc.teardown()
            report += [f"## {sc.name}", "", f"wall: {wall:.1f} ms (median of {reps}); "
                       f"python -c pass: {floor:.1f} ms; ratio {wall / floor:.2f}×", "",
                       "import tree (median of runs; cumulative ≥ 0.3 ms):", *tree, "",
                       "py-spy:", *spy_summary(stacks, None if sc.subprocesses else wall, RATE,
                                               reps),
                       ""]  # fmt: skip
            (p.out / "report.txt").write_text("\n".join(report))
    finally:
        one = [p.sc, "-d", str(p.base / "one" / "svc"), "--run-dir", str(p.base / "one" / "run"),
               "--log-dir", str(p.base / "one" / "log")]  # fmt: skip
        fleet = [x.replace("/one/", "/fleet/") for x in one]
        for cmd in (one, fleet):
            subprocess.run([*cmd, "stopall"], env=ENV, capture_output=True)
        shutil.rmtree(p.base, ignore_errors=True)
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.exit(main())
