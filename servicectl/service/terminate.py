"""The one signal-wait-KILL schedule, shared by stop and by the clean-up of a failed start.

A schedule is a list of steps (signal, seconds): send the signal (then CONT) to what still
runs, wait up to that long for it to exit, go on to the next step. A service's stop is its
``stop_schedule`` (start-stop-daemon's ``--retry QUIT/5/TERM/5/KILL/5``), or ``[(stop_signal,
stop_timeout), (KILL, 5)]``; a failed start's clean-up is the KILL step alone. What survives
the last step is an error, whatever that step's signal.
"""

from __future__ import annotations

import time
from _signal import SIGCONT, SIGKILL, SIGSTOP  # the C module: signal's enums import enum

from servicectl.definitions.schema import KILL_WAIT, signal_name
from servicectl.errors import Interrupted, ServicectlError
from servicectl.service.waits import Progress, silent
from servicectl.system import proc
from servicectl.system.proc import Handle

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.definitions.schema import Service

Step = tuple[int, float]  # (signal, seconds to wait for the exit after sending it)
TREE_ROUNDS = 8  # how many times kill_tree looks for children forked while it freezes a tree


def schedule(svc: Service) -> list[Step]:
    """The stop schedule of ``svc``: its stop_schedule, or its stop signal, then KILL."""
    return list(svc.stop_steps)


def terminate(
    svc: Service,
    handles: list[Handle],
    group: int,
    exclude: int,
    t0: float,
    steps: list[Step] | None = None,
    progress: Progress = silent,
    cgroup: str = "",
    reaped: dict[int, int] | None = None,
) -> tuple[str, float]:
    """Run the stop schedule (default: ``schedule(svc)``) on every handle, and on the members
    of ``group`` (but ``exclude``) that appear meanwhile, or with ``cgroup``, on every process
    that appears in that cgroup (the caller ends what is left of it after the schedule). The
    first step's wait counts from ``t0``. Returns how it ended ("after TERM", "killed after
    10 s") and how long it took.

    What survives the last step is an error: "could not be stopped". Interrupted, it raises
    Interrupted saying what still runs. The handles are closed in every case; the exit
    statuses of those that were this process's children go into ``reaped`` (PID -> status).
    """
    steps = schedule(svc) if steps is None else steps
    handles = list(handles)
    alive = handles
    scope = Scope(group, exclude, cgroup)
    try:
        for i, (sig, seconds) in enumerate(steps):
            if i > 0 and (group or cgroup):
                known = {h.pid for h in handles if not h.exited()}
                late = scope.late(handles)
                handles += [h for h in late if h.pid not in known]
                for h in late:
                    if h.pid in known:
                        h.close()
            deadline = (t0 if i == 0 else time.monotonic()) + seconds
            final = i == len(steps) - 1
            progress(svc.name, f"{signal_name(sig)} sent", seconds)
            alive = _step(handles, sig, deadline, final, scope)
            if not alive:
                return _how(steps, i), time.monotonic() - t0
        raise _survived(svc, alive, steps[-1])
    except KeyboardInterrupt as exc:
        if isinstance(exc, Interrupted):
            raise
        raise stop_interrupted(svc, handles, exclude) from None
    finally:
        _reap_and_close(handles, reaped)


def kill_and_reap(targets: list[Handle]) -> None:
    """SIGKILL every handle's process, wait for all (not cancellable: this is cleanup), reap
    those that are our children, and close the handles."""
    try:
        _step(targets, SIGKILL, time.monotonic() + KILL_WAIT, final=True)
    finally:
        _reap_and_close(targets)


def kill_tree(roots: list[tuple[int, int]]) -> None:
    """SIGKILL ``roots`` ((PID, start time) pairs) and every descendant of theirs, found by
    ancestry (``setsid`` children too, which no process group reaches): the clean-up of a
    failed start.

    The tree is frozen first (SIGSTOP, one verified pidfd per process, looking again for
    children forked meanwhile) so that no process can fork past the sweep; then all of it is
    killed, waited for and reaped. Not cancellable: this is cleanup.
    """
    held: dict[int, Handle] = {}
    todo = list(roots)
    for _ in range(TREE_ROUNDS):
        for pid, starttime in todo:
            if pid in held:
                continue
            h = Handle(pid, starttime)
            if h.valid and h.send(SIGSTOP):
                held[pid] = h
            else:
                h.close()
        found = proc.descendants((h.pid, h.starttime) for h in held.values())
        todo = [(d.pid, d.starttime) for d in found if d.pid not in held]
        if not todo:
            break
    kill_and_reap(list(held.values()))


class Scope:
    """Where the members of a stopped service that appear during its stop are found: its own
    process group (``group``, but ``exclude``, proven under R-PROC-3), or its cgroup."""

    def __init__(self, group: int = 0, exclude: int = 0, cgroup: str = "") -> None:
        self.group, self.exclude, self.cgroup = group, exclude, cgroup

    def __bool__(self) -> bool:
        return bool(self.group or self.cgroup)

    def late(self, handles: list[Handle], fresh_after: float | None = None) -> list[Handle]:
        if self.cgroup:
            return cgroup_handles(self.cgroup, {h.pid for h in handles})
        return group_handles(self.group, self.exclude, held_by=handles, fresh_after=fresh_after)


def _step(
    handles: list[Handle],
    sig: int,
    deadline: float,
    final: bool,
    scope: Scope | None = None,
) -> list[Handle]:
    """Send ``sig`` (then CONT) to the handles still alive and wait for them until ``deadline``.

    Unless this is a final KILL, if they all exited, wait too for the members of ``scope``
    forked meanwhile (or that outlived the main process): sent ``sig`` too, and added to
    ``handles``. A final KILL only confirms (after KILL, nothing can fork) and is cleanup: it
    is not cancelled. Returns what still runs.
    """
    final = final and sig == SIGKILL
    alive = [h for h in handles if not h.exited()]
    _send(alive, sig)
    alive = proc.wait_all_exit(alive, deadline, cancellable=not final)
    if scope and not alive and not final:
        # What the exited ones forked was forked before now: a scan begun since finds it.
        late = scope.late(handles, fresh_after=time.monotonic())
        handles += late
        if scope.cgroup:
            _send(late, sig)
        alive = proc.wait_all_exit(late, deadline)
    return alive


def _send(handles: list[Handle], sig: int) -> None:
    for h in handles:
        h.send(sig)
    if sig not in (SIGKILL, SIGCONT):
        for h in handles:
            h.send(SIGCONT)  # a stopped (SIGSTOP) process cannot act on TERM until CONT


def _how(steps: list[Step], i: int) -> str:
    """How a schedule ended when what it stopped exited during step ``i``."""
    sig = steps[i][0]
    if i == 0:
        return f"after {signal_name(sig)}"
    waited = sum(seconds for _, seconds in steps[:i])
    if sig == SIGKILL:
        return f"killed after {waited:g} s"
    return f"after {signal_name(sig)} ({waited:g} s)"


def _survived(svc: Service, still: list[Handle], last: Step) -> ServicectlError:
    sig, seconds = last
    pids = ", ".join(str(h.pid) for h in still)
    why = "stuck in the kernel, state D?" if sig == SIGKILL else "the schedule ends here"
    return ServicectlError(
        f"{svc.name}: could not be stopped: process {pids} survived SIG{signal_name(sig)} for "
        f"{seconds:g} s ({why}); the PID file is kept. Check with: ps -o pid,stat,wchan -p {pids}"
    )


def describe(steps: tuple[Step, ...] | list[Step]) -> str:
    """A schedule as written in a definition: QUIT/5/TERM/5/KILL/5."""
    return "/".join(f"{signal_name(sig)}/{secs:g}" for sig, secs in steps)


def _reap_and_close(handles: list[Handle], reaped: dict[int, int] | None = None) -> None:
    for h in handles:
        code = proc.reap_if_child(h.pid)
        if code is not None and reaped is not None:
            reaped[h.pid] = code
        h.close()


def group_handles(
    pgid: int,
    exclude: int,
    held_by: list[Handle] | None = None,
    fresh_after: float | None = None,
) -> list[Handle]:
    """Handles on the live members of process group ``pgid`` (but ``exclude``), from a /proc
    scan started after ``fresh_after`` (monotonic; default: now). The moment a caller cares
    about (its stop began; the processes it knew had all exited) lets one scan serve the
    parallel stops of a stopall: a process that existed then and still lives is in it.

    With ``held_by`` (the service's processes known so far), the members are taken only if
    one of those is still in the group after the scan, alive or a zombie: a group's number
    cannot be reused while a process has it, so the group was the service's all along
    (docs/security.md R-PROC-3). Otherwise nothing is proven, and none is returned.
    """
    if pgid <= 1:
        return []
    out = []
    for member in proc.group_members(pgid, fresh_after):
        if member.pid == exclude:
            continue
        h = Handle(member.pid, member.starttime)
        # Re-check membership through the pidfd-held process: no PID reuse can slip in.
        again = proc.read_proc(member.pid)
        if h.valid and again is not None and again.pgid == pgid:
            out.append(h)
        else:
            h.close()
    if held_by is not None and out and not any(_in_group(h, pgid) for h in held_by):
        for h in out:
            h.close()
        return []
    return out


def cgroup_handles(path: str, known: set[int] | frozenset[int] = frozenset()) -> list[Handle]:
    """Verified handles on the live processes in the cgroup ``path`` (but ``known``): each one
    is still listed there after its pidfd was opened, so a PID reused by a process outside
    can never be taken for a member (docs/security.md R-CG-2)."""
    from servicectl.system import cgroup as cg

    held = []
    for pid in cg.members(path):
        if pid in known:
            continue
        info = proc.read_proc(pid)
        if info is None or info.zombie:
            continue
        h = Handle(pid, info.starttime)
        if h.valid:
            held.append(h)
        else:
            h.close()
    still = set(cg.members(path)) if held else set()  # once, after every pidfd is open
    out = [h for h in held if h.pid in still]
    for h in held:
        if h.pid not in still:
            h.close()
    return out


def _in_group(h: Handle, pgid: int) -> bool:
    """Whether the handle's process is still there (a zombie counts) in group ``pgid``."""
    info = proc.read_proc(h.pid)
    return info is not None and info.starttime == h.starttime and info.pgid == pgid


def stop_interrupted(svc: Service, handles: list[Handle], main: int) -> Interrupted:
    """What an interrupted stop leaves: which processes still run (still tracked)."""
    left = sorted({h.pid for h in handles if not h.exited()})
    if not left:
        return Interrupted(
            f"{svc.name}: stop interrupted after its processes exited; its PID file and state "
            f"are left: run stop again to clean them"
        )
    pids = ", ".join(str(p) for p in left)
    again = f"run stop again (its schedule: {describe(svc.stop_steps)})"
    if main in left:
        return Interrupted(
            f"{svc.name}: stop interrupted: it is still running (PID {pids}) and still "
            f"tracked; {again}"
        )
    return Interrupted(
        f"{svc.name}: stop interrupted: its main process {main} has exited, but PID {pids} of "
        f"its process group still run; {again}"
    )
