"""Identity: is this process the service? The rules servicectl applies before it trusts a PID
(docs/security.md R-PROC-1, R-PROC-3, R-PROC-4), for observe (inspect) and launch.

Everything here only reads /proc and the run directory; nothing is signalled or written.
"""

from __future__ import annotations

import os
import time

from servicectl.errors import ServicectlError
from servicectl.system import proc
from servicectl.system.record import Record, read_record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _typeshed import StrPath

    from servicectl.definitions.schema import Service
    from servicectl.paths import Dirs
    from servicectl.system.proc import ProcInfo


def forged_reason(pid: int, info: ProcInfo | None) -> str | None:
    """Why ``pid`` can never be a service (init, servicectl or its caller, gone, a zombie, a
    thread), or None."""
    if pid == 1:
        return "PID 1 (init) is never a service"
    if pid in proc.ancestors_of_self():
        return f"PID {pid} is servicectl itself or its caller"
    if info is None:
        return f"no process has PID {pid}"
    if info.zombie:
        return f"PID {pid} has exited (zombie)"
    tgid = proc.thread_group_of(pid)
    if tgid is not None and tgid != pid:
        return f"{pid} is a thread of process {tgid}, not a process"
    return None


_INTERPRETER = (  # a pattern, compiled on first use (re costs a status 3-6 ms to import)
    r"(python|pypy|perl|ruby|node|nodejs|php|lua|luajit|java|tclsh|Rscript|bash|sh|dash|zsh|"
    r"ksh|mksh|busybox)[0-9.]*(-[0-9.]+)?$"
)


def unrecorded_match(
    svc: Service,
    info: ProcInfo,
    exes: set[str],
    uid: int,
    command: tuple[str, ...] | list[str] | None = None,
) -> str | None:
    """Why a process servicectl has no record of is not the service, or None if it matches:
    the same user and the same executable, as /proc/PID/exe shows it (for a script, its #!
    interpreter; never the comm name, which is truncated and changed by exec). When it is an
    interpreter (python, sh, busybox...), which tells nothing of the program, the arguments
    must be the service's too."""
    if info.uid != uid:
        return f"PID {info.pid} belongs to uid {info.uid}, not to the service's uid {uid}"
    exe = proc.exe_of(info.pid)
    if exe is None or os.path.realpath(exe) not in exes and exe not in exes:
        return f"PID {info.pid} runs {exe or info.comm}, not {svc.program}"
    import re

    if re.match(_INTERPRETER, os.path.basename(exe)):
        argv = list(command if command is not None else svc.command)
        if not _same_invocation(proc.cmdline_of(info.pid), argv):
            shown = " ".join(proc.cmdline_of(info.pid))[:120]
            return f"PID {info.pid} runs {exe} but not the service's program ({shown})"
    return None


def _same_invocation(cmdline: list[str], argv: list[str]) -> bool:
    """Whether a process's command line is ``argv`` run directly (``python x.py -v``) or as a
    #! script (the kernel makes it ``python [opts] /path/x.py -v``)."""
    args = argv[1:]
    if cmdline[1:] == args:
        return True
    n = len(args)
    if len(cmdline) < n + 2 or (n and cmdline[-n:] != args):
        return False
    script = cmdline[len(cmdline) - n - 1]
    return os.path.basename(script) == os.path.basename(argv[0])


def service_uid(svc: Service, dirs: Dirs) -> int:
    """The uid the service runs as, as any user can tell (-1 if its user does not exist):
    ``user:``, else the user whose services these are, the run directory's owner. Unlike
    start, this checks no privilege: a non-root reader of root's services needs it too."""
    if svc.user is None:
        try:
            return os.stat(dirs.run).st_uid
        except OSError:
            return os.geteuid()
    import pwd

    try:
        return (
            pwd.getpwuid(int(svc.user)) if svc.user.isdigit() else pwd.getpwnam(svc.user)
        ).pw_uid
    except (KeyError, ValueError):
        return -1


def look(pid: int, with_user: bool = True) -> tuple[ProcInfo | None, bool]:
    """The process as /proc shows it (None: no such process), and whether this non-root reader
    is kept from seeing it: /proc hides other users' processes (hidepid), yet the PID lives.
    Without ``with_user``, /proc/PID/stat alone (``uid`` -1): enough to tell a recorded
    process by its start time."""
    try:
        info = proc.read_proc(pid) if with_user else proc.read_stat(pid)
    except OSError:
        return None, True
    if info is None and os.geteuid() != 0:
        try:
            os.kill(pid, 0)
        except PermissionError:
            return None, True  # alive, and another user's
        except OSError:
            pass
    return info, False


def hidden_exe(info: ProcInfo) -> bool:
    """Whether this non-root reader cannot read the executable of another user's process."""
    return os.geteuid() != 0 and info.uid != os.geteuid() and proc.exe_of(info.pid) is None


def expected_exes(svc: Service) -> set[str]:
    from servicectl.system.spawn import expected_executables, resolve_program  # a running one's

    try:
        return expected_executables(resolve_program(svc, _program_env(svc)))
    except ServicectlError:
        # Removed since (its process shows "PATH (deleted)"): the configured path still names it.
        return {os.path.realpath(svc.program)} if os.path.isabs(svc.program) else set()


def _program_env(svc: Service) -> dict[str, str]:
    """Enough of the service's environment to find its program (its PATH)."""
    from servicectl.system.spawn import SERVICE_PATH

    path = dict(svc.environment).get("PATH", SERVICE_PATH)
    return {"PATH": path}


def group_remnants(record: Record) -> tuple[list[ProcInfo], list[ProcInfo]]:
    """What is left of the service's own process group although its main process has exited
    (a stop interrupted between the main process's exit and its children's, or children that
    outlived a crash): (proven members, members that cannot be proven). ``kill_mode: process``
    leaves children alone by design: none are reported.

    docs/security.md R-PROC-3: a candidate is a live process of the recorded group and session,
    with the service's user, started after the service. A PID's number (and so a group or
    session of that number) cannot be reused while any process has it as its PID, group or
    session. So if one candidate started before ``record.seen`` (a moment when servicectl saw
    the service's main process alive in that session), that session has never been let go
    since: every candidate is the service's. Otherwise the number may have been reused (a
    daemon's setsid and fork make pgid = sid = a dead service's PID): nothing is proven.
    """
    if record.kill_mode != "group" or record.pgid <= 1 or record.pgid == os.getpgrp():
        return [], []
    leader = proc.read_proc(record.pgid)
    if (
        leader is not None
        and not leader.zombie
        and record.pgid == record.pid
        and leader.starttime != record.starttime
    ):
        return [], []  # the number leads another group now
    mine = proc.ancestors_of_self()
    out: list[ProcInfo] = []  # with the service's user
    others: list[ProcInfo] = []  # workers that dropped to another user (www-data)
    for member in proc.group_members(record.pgid):
        info = proc.read_proc(member.pid)
        if (
            info is not None
            and not info.zombie
            and info.pgid == record.pgid
            and info.starttime >= record.starttime
            and info.sid == record.sid
            and info.pid not in mine
        ):
            (out if info.uid == record.uid else others).append(info)
    if record.seen > 0 and record.sid > 1 and any(i.starttime < record.seen for i in out + others):
        return out + others, []  # the session never let go: all of it descends from the service
    return [], out


def seen_alive(pid: int, starttime: int, sid: int | None = None) -> int:
    """A moment (clock ticks since boot) at which the process (``pid``, ``starttime``) held its
    PID, group and session numbers (alive, or a zombie not yet reaped) and was in session
    ``sid`` (if given), for ``Record.seen``; 0 if not. The moment is read before the process is
    looked at, so it is surely earlier than what was seen.

    Only what started before that tick is proven by it (group_remnants): if a child of the
    process started in this very tick, the next tick is awaited (at most one, 10 ms) and the
    process looked at again, so that a service's first children are proven too.
    """
    now = proc.uptime_ticks()
    info = proc.read_stat(pid)
    if info is None or info.starttime != starttime or sid is not None and info.sid != sid:
        return 0
    young = [c for c in map(proc.read_stat, proc.children_of(pid)) if c and c.starttime >= now]
    if young:
        until = time.monotonic() + 2.0 / proc.CLK_TCK + 0.05
        while proc.uptime_ticks() <= now and time.monotonic() < until:
            time.sleep(1.0 / proc.CLK_TCK / 4)
        later = proc.uptime_ticks()
        info = proc.read_stat(pid)
        if later > now and info is not None and info.starttime == starttime:
            return later if sid is None or info.sid == sid else now
    return now


def recorded_by_other(run: StrPath, name: str, info: ProcInfo) -> str | None:
    """The other service whose state record in ``run`` names this very process (its PID and
    start time, this boot), or None: such a process is never adopted as ``name``
    (docs/security.md R-PROC-4)."""
    try:
        names = os.listdir(run)
    except OSError:
        return None
    for entry in names:
        other = entry.removesuffix(".state")
        if other in (entry, name) or entry.startswith("."):
            continue
        record, _ = read_record(run, other)
        if (
            record is not None
            and record.pid == info.pid
            and record.starttime == info.starttime
            and record.boot_id == proc.boot_id()
        ):
            return other
    return None
