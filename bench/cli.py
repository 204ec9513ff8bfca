"""Section 2: the cost of one invocation (--help, status NAME, status and list of 20) and its
peak RSS, against the interpreter floor, supervisorctl and start-stop-daemon."""

from __future__ import annotations

import os
import platform
import site
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from common import CHILD_ENV, ORIG_ENV, PY, log, peak_rss, run
from report import NOTES, TARGETS, Series, cell, fmt_t, note_failures, ratio, table

if TYPE_CHECKING:
    from environment import Env

FLOOR = [PY, "-c", "pass"]
Commands = dict[str, tuple[list[str], tuple[int, ...]]]  # tool -> (argv, exit codes that are ok)


class CostTable:
    """The command-cost table: its measurements (the tools alternating) and rows."""

    def __init__(self, reps: int) -> None:
        self.reps = reps
        self.rows: list[list[str]] = []

    def measure(self, cmds: Commands, env: Optional[dict[str, str]] = None) -> dict[str, Series]:
        """One untimed warm-up run of each, then ``reps`` rounds of each in turn."""
        out = {k: Series() for k in cmds}
        for argv, _ok in cmds.values():
            run(argv, env=env)  # warm-up
        for _ in range(self.reps):
            for k, (argv, ok) in cmds.items():
                out[k].add(run(argv, env=env), ok, what=" ".join(argv[-2:]))
        return out

    def row(self, label: str, res: dict[str, Series], target: str = "") -> None:
        sc = res["sc"]
        ratios = ", ".join(
            f"{ratio(sc, res[k])} {name}"
            for k, name in (("py", "python"), ("sup", "supervisorctl"), ("ssd", "s-s-d"))
            if k in res
        )
        self.rows.append(
            [
                label,
                cell(sc) + (f" **{TARGETS[target].mark()}**" if target else ""),
                cell(res.get("py")),
                cell(res.get("sup")),
                cell(res.get("ssd")),
                ratios,
            ]
        )
        for k, s in res.items():
            note_failures(f"cli {label} [{k}]", s)


def bench_cli(env: Env) -> None:
    one = env.sc_dir("cli-one", {"one": "command: sleep 100000\n"})
    twenty = env.sc_dir("cli-20", {f"s{i:02d}": "command: sleep 100000\n" for i in range(1, 21)})
    _intro(env)
    t = CostTable(env.args.reps)
    res_help = _help(env, t, one)
    _help_via_path(env, t, res_help)
    _status_name(env, t, one)
    _twenty_running(env, t, twenty)
    table(
        ["command", "servicectl", "python -c pass", "supervisorctl", "start-stop-daemon", "ratios"],
        t.rows,
    )
    _peak_rss(env, twenty)
    run([*twenty, "stopall"])
    if env.sup:
        run([*env.sup.ctl, "stop", "all"])


def _intro(env: Env) -> None:
    print("## 2. CLI cost\n")
    print(
        f"Wall time of one invocation (fresh process each time; one untimed warm-up run first, "
        f"so page cache and .pyc are warm), stdout to /dev/null, median (min–max) of "
        f"{env.args.reps}, tools alternating. servicectl is run as `{env.sc_exe}` (the console "
        f"script of this interpreter). Comparators: the interpreter floor `python -c pass` (same "
        f"{platform.python_version()}), `supervisorctl` (Python too, talking to a running "
        f"supervisord with 20 programs), `start-stop-daemon` (C).\n"
    )
    if not env.sup:
        print(f"supervisorctl column skipped: {env.sup_why}\n")


def _help(env: Env, t: CostTable, one: list[str]) -> dict[str, Series]:
    """``--help`` against the interpreter floor (with and without site)."""
    log("cli: --help")
    cmds: Commands = {
        "sc": ([*one, "--help"], (0,)),
        "py": (FLOOR, (0,)),
        "pyS": ([PY, "-S", "-c", ""], (0,)),
    }
    if env.sup:
        cmds["sup"] = ([*env.sup.ctl, "--help"], (0,))
    res = t.measure(cmds)
    TARGETS["help"].series = res["sc"]
    t.row("`--help`", res, "help")
    py, py_s = res["py"].median, res["pyS"].median
    if py is not None and py_s is not None:
        pth = sorted(p.name for d in site.getsitepackages() for p in Path(d).glob("*.pth"))
        NOTES.append(
            f"Interpreter floor: `python -c pass` {fmt_t(py)}, `python -S -c pass` {fmt_t(py_s)}: "
            f"site-packages start-up costs {fmt_t(py - py_s)} in every process of this "
            f"interpreter, servicectl included ({', '.join(pth) or 'no .pth files'}). "
            f"supervisorctl runs from its own venv, which loads none of those."
        )
    return res


def _help_via_path(env: Env, t: CostTable, res_help: dict[str, Series]) -> None:
    """What a user typing `servicectl` gets: the first one on PATH that is not the script itself
    (under `pyenv exec` the script's own bin dir comes first, the shim later)."""
    shim = next(
        (
            p
            for d in os.environ.get("PATH", "").split(os.pathsep)
            if d
            and os.access(p := os.path.join(d, "servicectl"), os.X_OK)
            and os.path.realpath(p) != os.path.realpath(env.sc_exe)
        ),
        None,
    )
    if not shim:
        return
    log("cli: --help via PATH")
    res = t.measure({"sc": ([shim, "--help"], (0,)), "py": (FLOOR, (0,))})
    t.row(f"`--help` via PATH (`{shim}`)", res)
    NOTES.append(
        f"`servicectl` on PATH is `{shim}` (a wrapper, e.g. a pyenv shim); the rows above "
        f"use the console script directly. Via PATH costs {ratio(res['sc'], res_help['sc'])} "
        f"the direct script for `--help`."
    )


def _status_name(env: Env, t: CostTable, one: list[str]) -> None:
    """``status NAME`` of a stopped service (and with the environment as-is, if it differs)."""
    log("cli: status NAME")
    cmds: Commands = {"sc": ([*one, "status", "one"], (3,)), "py": (FLOOR, (0,))}
    if env.sup:
        cmds["sup"] = ([*env.sup.ctl, "status", "sleeper"], (0, 3))
    if env.ssd:
        ssd_pid = str(env.base / "cli-one" / "run" / "one.pid")
        cmds["ssd"] = ([env.ssd, "--status", "--pidfile", ssd_pid], (3,))
    res = t.measure(cmds)
    TARGETS["status_name"].series = res["sc"]
    t.row("`status NAME` (stopped)", res, "status_name")
    if CHILD_ENV != ORIG_ENV:
        log("cli: status NAME, environment as-is")
        res = t.measure({"sc": ([*one, "status", "one"], (3,)), "py": (FLOOR, (0,))}, env=ORIG_ENV)
        t.row("`status NAME`, environment as-is (no bytecode cache)", res)


def _twenty_running(env: Env, t: CostTable, twenty: list[str]) -> None:
    """``status`` and ``list`` with 20 services running (supervisorctl's 20 programs too)."""
    sup = env.sup
    log("cli: status/list with 20 services")
    r = run([*twenty, "startall"])
    if r.rc != 0:
        NOTES.append(f"cli: startall of 20 failed (rc={r.rc}): {r.err[-300:]}")
    if sup:
        r = run([*sup.ctl, "start", "all"])
        if r.rc != 0:
            NOTES.append(f"cli: supervisorctl start all failed (rc={r.rc}): {r.err[-300:]}")
    cmds: Commands = {"sc": ([*twenty, "status"], (0,)), "py": (FLOOR, (0,))}
    if sup:
        cmds["sup"] = ([*sup.ctl, "status"], (0,))
    t.row("`status`, 20 running", t.measure(cmds))
    cmds = {"sc": ([*twenty, "list"], (0,)), "py": (FLOOR, (0,))}
    if sup:
        cmds["sup"] = ([*sup.ctl, "avail"], (0,))
    t.row("`list`, 20 (supervisorctl: `avail`)", t.measure(cmds))


def _peak_rss(env: Env, twenty: list[str]) -> None:
    """Peak RSS of ``status`` with 20 running, the interpreter floor and supervisorctl."""
    log("cli: peak RSS")
    # wait4's ru_maxrss would be wrong here: Popen spawns with vfork, and the kernel carries the
    # parent's (this benchmark's) high-water RSS into the child at exec. GNU time forks instead.
    rss: dict[str, list[int]] = {"sc": [], "py": [], "sup": []}
    how = "`/usr/bin/time -f %M` (GNU time forks: only the command's own pages count)"
    if not os.access("/usr/bin/time", os.X_OK):
        how = "`wait4` ru_maxrss — an upper bound: it includes this benchmark's own RSS (vfork)"
    for _ in range(env.args.reps):
        rss["sc"].append(peak_rss([*twenty, "status"]))
        rss["py"].append(peak_rss(FLOOR))
        if env.sup:
            rss["sup"].append(peak_rss([*env.sup.ctl, "status"]))
    rss = {k: [x for x in v if x > 0] for k, v in rss.items()}
    print(f"Peak RSS of one invocation, `status` with 20 running services, measured with {how}:\n")
    sup_ratio = "—"
    if rss["sup"] and rss["sc"]:
        sup_ratio = f"{statistics.median(rss['sc']) / statistics.median(rss['sup']):.2f}×"
    table(
        [
            "servicectl status",
            "python -c pass",
            "supervisorctl status",
            "servicectl / supervisorctl",
        ],
        [[_mb(rss["sc"]), _mb(rss["py"]), _mb(rss["sup"]), sup_ratio]],
    )


def _mb(v: list[int]) -> str:
    """KiB figures as a median MB (min–max)."""
    if not v:
        return "—"
    return f"{statistics.median(v) / 1024:.1f} MB ({min(v) / 1024:.1f}–{max(v) / 1024:.1f})"
