"""Figures and how they are printed: series of timings, Markdown cells and tables, the targets
with their verdicts, and the notes printed at the end."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from common import Run


@dataclass
class Series:
    values: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    estimate: bool = False

    def add(self, r: Run, ok: tuple[int, ...] = (0,), what: str = "") -> bool:
        if r.rc in ok:
            self.values.append(r.secs)
            return True
        self.failures.append(f"{what}: rc={r.rc}: {r.err[-300:]}")
        return False

    @property
    def median(self) -> Optional[float]:
        return statistics.median(self.values) if self.values else None


def fmt_t(v: float, unit_of: Optional[float] = None) -> str:
    """Seconds with 2 decimals from 1 s, else ms: whole from 100 ms, 1 decimal below."""
    u = v if unit_of is None else unit_of
    if u >= 1:
        return f"{v:.2f} s"
    if u >= 0.1:
        return f"{v * 1000:.0f} ms"
    return f"{v * 1000:.1f} ms"


def fmt_limit(v: float) -> str:
    return fmt_t(v).replace(".0 ms", " ms")


def cell(s: Optional[Series]) -> str:
    if s is None:
        return "—"
    if not s.values:
        return "FAILED" if s.failures else "—"
    med = s.median
    assert med is not None
    if s.estimate:
        return f"≈{fmt_t(med)} (est.)"
    lo, hi = (fmt_t(x, med).split()[0] for x in (min(s.values), max(s.values)))
    spread = f"{lo}–{hi}"
    fails = f", {len(s.failures)} failed" if s.failures else ""
    return f"{fmt_t(med)} ({spread}{fails})"


def ratio(a: Optional[Series], b: Optional[Series]) -> str:
    if a is None or b is None or a.median is None or not b.median:
        return "—"
    r = a.median / b.median
    digits = ".0f" if r >= 10 else ".2f" if r >= 0.1 else ".3f"
    return f"{'≈' if a.estimate or b.estimate else ''}{r:{digits}}×"


def table(headers: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


@dataclass
class Target:
    what: str
    limit: float
    series: Optional[Series] = None
    unit: str = ""  # "" for seconds; "MiB" for memory figures

    def verdict(self) -> str:
        s = self.series
        if s is None or s.median is None:
            return "not measured"
        return "PASS" if s.median <= self.limit else "MISS"

    def limit_text(self) -> str:
        return f"{self.limit:g} {self.unit}" if self.unit else fmt_limit(self.limit)

    def mark(self) -> str:
        return f"≤ {self.limit_text()}: {self.verdict()}"

    def figure(self) -> str:
        s = self.series
        if self.unit and s is not None and s.median is not None:
            return f"{s.median:.1f} {self.unit}"
        return cell(s)


TARGETS: dict[str, Target] = {
    "startall100": Target("fleet: startall, N=100", 2.0),
    "status200": Target("fleet: status, N=200 (the board, piped)", 0.120),
    "stopall100": Target("fleet: stopall, N=100", 2.0),
    "status_name": Target("cli: status NAME (stopped, piped)", 0.045),
    "help": Target("cli: --help", 0.080),
    "cycle_simple": Target("cycle: simple start+stop (start_grace 0)", 0.150),
    "cycle_forking": Target("cycle: forking start+stop", 0.150),
    "stop_latency": Target("stop latency (daemon exit → stop returns)", 0.020),
    "status_pty": Target("view: status NAME (running) on a pseudo-terminal", 0.120),
    "respawn": Target("supervise: respawn latency (exit → new process running, − delay)", 0.010),
    "pss100": Target("supervise: PSS of the supervision of 100 services", 16.0, unit="MiB"),
    "pss1000": Target("supervise: PSS of the supervision of 1,000 services", 48.0, unit="MiB"),
    "health100": Target("supervise: health probes of 100 services every 5 s", 2.0, unit="%"),
}
SUPERVISED_CYCLE_RATIO = 1.1  # a supervised start+stop over an unsupervised one
# startall of 100 with the live display on a pseudo-terminal, over the same piped
LIVE_RATIO_LIMIT = 1.2

NOTES: list[str] = []


def note_failures(label: str, s: Optional[Series]) -> None:
    if s is not None:
        for f in s.failures[:3]:
            NOTES.append(f"{label}: {f}")
        if len(s.failures) > 3:
            NOTES.append(f"{label}: ... {len(s.failures) - 3} more failures")
