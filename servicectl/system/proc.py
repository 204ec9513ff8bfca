"""Process identity, signals and waiting, straight from /proc and pidfds.

A PID is not an identity (PIDs are reused): a process is identified by (PID, kernel start
time, boot id), never by a name, nor by psutil's create_time (wall clock: it shifts when NTP
steps the clock). Signals go through a pidfd, so the process checked is the process signalled,
and the pidfd wakes a wait at the exit, without polling. A zombie counts as gone.
"""

from __future__ import annotations

import _thread
import errno
import os
import time

from servicectl.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

CLK_TCK = os.sysconf("SC_CLK_TCK")


class ProcInfo(NamedTuple):
    """A snapshot of one process read from /proc/PID. ``starttime`` is in clock ticks since boot."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    starttime: int
    uid: int
    comm: str
    cpu_ticks: int = 0  # CPU time used so far, user plus system
    rss_pages: int = 0  # resident memory, in pages (PAGE_SIZE)

    @property
    def zombie(self) -> bool:
        """Exited but not yet reaped (Z) or dead (X): counts as gone (an orphan's zombie waits
        for init to reap it, about a second here, or forever in a container without one)."""
        return self.state in ("Z", "X")


_BOOT_ID: list[str] = []  # read once (a memo without functools: status does not import it)


def boot_id() -> str:
    """This boot's id; a record from another boot identifies nothing."""
    if not _BOOT_ID:
        try:
            with open("/proc/sys/kernel/random/boot_id") as fh:
                _BOOT_ID.append(fh.read().strip())
        except OSError:
            _BOOT_ID.append("unknown")
    return _BOOT_ID[0]


def read_proc(pid: int) -> ProcInfo | None:
    """The process ``pid`` as /proc shows it now, or None if there is no such process.

    Never raises for a vanished process; the comm field is parsed from the last ')' so a
    program named ``a) b`` cannot shift the fields.
    """
    return _read(pid, with_user=True)


def read_stat(pid: int) -> ProcInfo | None:
    """``read_proc`` without the user (``uid`` is -1): /proc/PID/stat alone, one file instead
    of three, for what needs only the start time, state, group and session (a handle's check,
    a wait for an exit)."""
    return _read(pid, with_user=False)


def read_small(path: str) -> bytes:
    """The whole of a /proc file, read with ``os.open``/``os.read``: three system calls where
    ``open()`` makes nine (two fstat, an ioctl, two lseek) and builds a buffered file object;
    at a fleet of 1,000 a start reads about ten of them, a stop five. Raises OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, 8192)
        if not data:
            return data
        chunks = [data]
        while data:
            data = os.read(fd, 65536)
            chunks.append(data)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _read(pid: int, with_user: bool) -> ProcInfo | None:
    if pid <= 0:
        return None
    try:
        raw = read_small(f"/proc/{pid}/stat")
        if not with_user:
            return _parse_stat(pid, raw)
        uid = _real_uid(pid)
        if uid is None:  # status unreadable: the owner of /proc/PID (its effective uid)
            uid = os.stat(f"/proc/{pid}").st_uid
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno in (errno.ESRCH, errno.ENOENT):
            return None
        raise
    return _parse_stat(pid, raw, uid)


def _status_field(pid: int, key: bytes) -> int | None:
    """A number of /proc/PID/status (its first, for Uid: the real uid), or None."""
    try:
        raw = read_small(f"/proc/{pid}/status")
    except OSError:
        return None
    at = raw.find(b"\n" + key)
    if at < 0:
        return None
    try:
        return int(raw[at + len(key) + 1 :].split(None, 1)[0])
    except (IndexError, ValueError):
        return None


def _real_uid(pid: int) -> int | None:
    return _status_field(pid, b"Uid:")


def thread_group_of(pid: int) -> int | None:
    """The process (thread group) that ``pid`` belongs to: ``pid`` itself for a process, another
    number when ``pid`` names a thread; None if it cannot be read."""
    return _status_field(pid, b"Tgid:")


def exe_of(pid: int) -> str | None:
    """The executable's path (without a `` (deleted)`` suffix), or None if it cannot be read."""
    try:
        path = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
    return path.removesuffix(" (deleted)")


def cmdline_of(pid: int) -> list[str]:
    try:
        raw = read_small(f"/proc/{pid}/cmdline")
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def uptime_ticks() -> int:
    """Clock ticks since boot, on the same clock as ``ProcInfo.starttime``: CLOCK_BOOTTIME,
    which /proc/uptime shows (a time namespace's offset included in both), read without
    opening a file; rounded down like the kernel's start times, in integers (a float would
    make 12.34 s read as 1233 ticks)."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME) * CLK_TCK // 1_000_000_000


def children_of(pid: int) -> list[int]:
    """The PIDs of the process's children (every thread's), or [] if they cannot be read."""
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            out += [int(c) for c in read_small(f"/proc/{pid}/task/{tid}/children").split()]
    except (OSError, ValueError):
        pass
    return out


def age_seconds(info: ProcInfo) -> float:
    """How long the process has run; immune to wall-clock steps (unlike psutil.create_time)."""
    return max(0.0, (uptime_ticks() - info.starttime) / CLK_TCK)


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# rt_sigtimedwait by machine: a thread waiting in it has the waited signals removed from its
# SigBlk for the duration of the wait, yet takes them safely.
_SIGTIMEDWAIT = {
    "x86_64": 128,
    "aarch64": 137,
    "riscv64": 137,
    "i686": 177,
    "i386": 177,
    "armv7l": 177,
    "ppc64le": 176,
    "s390x": 177,
}


def _status_masks(path: str) -> dict[bytes, int]:
    masks: dict[bytes, int] = {}
    with open(path, "rb") as fh:
        for line in fh:
            key = line.split(b":", 1)[0]
            if key in (b"SigCgt", b"SigBlk", b"SigIgn"):
                masks[key] = int(line.split()[1], 16)
    return masks


def _in_sigwait(task_dir: str) -> bool | None:
    import platform

    number = _SIGTIMEDWAIT.get(platform.machine())
    try:
        with open(f"{task_dir}/syscall") as fh:
            first = fh.read().split(" ", 1)[0]
    except OSError:
        return None
    return number is not None and first == str(number)


def signal_disposition(pid: int, sig: int) -> str | None:
    """How the process would take ``sig``: ``caught`` (a handler), ``ignored``, ``blocked``
    (blocked in every thread, or waited for with sigwait), or ``default`` (for HUP: death);
    None if it cannot be told.

    Read from SigCgt/SigIgn (process-wide) and each thread's SigBlk and current syscall.
    """
    bit = 1 << (sig - 1)
    try:
        masks = _status_masks(f"/proc/{pid}/status")
        if masks.get(b"SigCgt", 0) & bit:
            return "caught"
        if masks.get(b"SigIgn", 0) & bit:
            return "ignored"
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    unknown = False
    for tid in tids:
        task = f"/proc/{pid}/task/{tid}"
        try:
            if _status_masks(f"{task}/status").get(b"SigBlk", 0) & bit:
                continue
        except OSError:
            continue  # the thread exited
        waiting = _in_sigwait(task)
        if waiting is None:
            unknown = True
        elif not waiting:
            return "default"
    return None if unknown else "blocked"


def all_pids() -> list[int]:
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def children_since(parent: int, since: int) -> list[ProcInfo]:
    """The children of ``parent`` (zombies included) started at or after ``since`` (ticks)."""
    out = []
    for pid in all_pids():
        info = read_proc(pid)
        if info is not None and info.ppid == parent and info.starttime >= since:
            out.append(info)
    return out


PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Make orphans of our descendants (a forking daemon) re-parent to servicectl while it runs,
    so the PID a daemon writes can be checked to be our descendant.

    prctl is called through ``_ctypes`` itself, as ctypes' CDLL would call it: the ctypes
    package's classes cost the supervisor about 0.25 MiB for good and a command 2-3 ms."""
    try:
        import _ctypes

        libc = _ctypes.dlopen(None, os.RTLD_NOW | os.RTLD_LOCAL)  # type: ignore[arg-type]
        _ctypes.call_function(_ctypes.dlsym(libc, "prctl"), (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
    except (ImportError, AttributeError, OSError):  # another interpreter's _ctypes: ctypes
        _subreaper_by_ctypes()


def _subreaper_by_ctypes() -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (ImportError, OSError, AttributeError):  # no ctypes, no prctl: not a subreaper
        pass


def _parse_stat(pid: int, raw: bytes, uid: int = -1) -> ProcInfo:
    head, _, rest = raw.rpartition(b")")
    fields = rest.split()
    return ProcInfo(
        pid=pid,
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        sid=int(fields[3]),
        state=fields[0].decode(),
        starttime=int(fields[19]),
        uid=uid,
        comm=head.partition(b"(")[2].decode("utf-8", "replace"),
        cpu_ticks=int(fields[11]) + int(fields[12]),
        rss_pages=int(fields[21]),
    )


class _GroupIndex:
    """Process groups of every process, from one /proc scan shared between threads.

    A caller asks for a scan no older than the moment it cares about (say, the moment its
    main process exited); a scan that started after that moment serves every such caller, so
    a parallel stopall does a handful of scans instead of two per service.
    """

    def __init__(self) -> None:
        self.lock = _thread.allocate_lock()  # threading's Lock, without importing threading
        self.started = float("-inf")
        self.groups: dict[int, list[ProcInfo]] = {}

    def members(self, pgid: int, fresh_after: float) -> list[ProcInfo]:
        with self.lock:
            if self.started < fresh_after:
                self.started = time.monotonic()
                self.groups = self._scan()
            return list(self.groups.get(pgid, ()))

    @staticmethod
    def _scan() -> dict[int, list[ProcInfo]]:
        groups: dict[int, list[ProcInfo]] = {}
        for info in snapshot():
            groups.setdefault(info.pgid, []).append(info)
        return groups


_GROUPS = _GroupIndex()


def group_members(pgid: int, fresh_after: float | None = None) -> list[ProcInfo]:
    """Live (non-zombie) processes whose process group is ``pgid``, from a /proc scan that
    started after ``fresh_after`` (monotonic; default: now). ``uid`` is not filled in (-1)."""
    if pgid <= 0 or not _group_exists(pgid):
        return []
    return _GROUPS.members(pgid, time.monotonic() if fresh_after is None else fresh_after)


def _group_exists(pgid: int) -> bool:
    """Whether any process (a zombie too) has process group ``pgid`` now: signal 0 to the
    group, one system call instead of a scan of /proc (the usual answer after an exit: no)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # EPERM: it exists, with processes of another user
    return True


def snapshot() -> list[ProcInfo]:
    """Every live (non-zombie) process, from one /proc scan (``uid`` is not filled in: -1)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            info = _parse_stat(int(name), read_small(f"/proc/{name}/stat"))
        except (OSError, IndexError, ValueError):
            continue
        if not info.zombie:
            out.append(info)
    return out


def descendants(roots: Iterable[tuple[int, int]]) -> list[ProcInfo]:
    """The live descendants of ``roots`` ((PID, start time) pairs; not the roots themselves),
    by their parent links in one /proc scan. A root must still have its start time and a child
    must have started no earlier than its parent: a reused PID brings in no one's children."""
    children: dict[int, list[ProcInfo]] = {}
    now: dict[int, ProcInfo] = {}
    for info in snapshot():
        now[info.pid] = info
        children.setdefault(info.ppid, []).append(info)
    todo = [now[pid] for pid, start in roots if pid in now and now[pid].starttime == start]
    seen = {r.pid for r in todo}
    out = []
    while todo:
        parent = todo.pop()
        for child in children.get(parent.pid, ()):
            if child.pid not in seen and child.starttime >= parent.starttime:
                seen.add(child.pid)
                out.append(child)
                todo.append(child)
    return out


def is_descendant(pid: int, ancestor: int) -> bool:
    """Whether ``ancestor`` is on the parent chain of ``pid``."""
    seen = 0
    while pid > 1 and seen < 4096:
        info = read_proc(pid)
        if info is None:
            return False
        if info.ppid == ancestor:
            return True
        pid = info.ppid
        seen += 1
    return False


def ancestors_of_self() -> set[int]:
    """servicectl itself and every process above it: never a service."""
    out = {os.getpid()}
    pid = os.getpid()
    while pid > 1:
        info = read_proc(pid)
        if info is None:
            break
        pid = info.ppid
        out.add(pid)
    return out


# ---------------------------------------------------------------------------------------------
# pidfd-based handles


FD_MARGIN = 64  # descriptors kept free for /proc reads, pipes and sockets beside the pidfds
_SOFT_LIMIT: list[int] = []  # servicectl's soft RLIMIT_NOFILE, once read


def _make_room(fd: int) -> None:
    """Keep room for more descriptors: a stop holds one pidfd per member of the service's group
    (R-PROC-2), and a service's user can fork thousands; with the usual soft limit of 1024 the
    thousandth pidfd would leave none for reading /proc. When ``fd`` nears the soft limit, it
    is doubled (up to the hard limit) for this servicectl process; what it starts later
    inherits the raised soft limit."""
    if not _SOFT_LIMIT:  # sysconf's OPEN_MAX is the soft limit (no resource module to load)
        _SOFT_LIMIT.append(os.sysconf("SC_OPEN_MAX"))
    if fd < _SOFT_LIMIT[0] - FD_MARGIN:
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if fd >= soft - FD_MARGIN:
        want = soft * 2 if hard == resource.RLIM_INFINITY else min(hard, soft * 2)
        if want > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
                soft = want
            except (OSError, ValueError):
                pass
    _SOFT_LIMIT[:] = [soft]


class Handle:
    """A verified reference to one process: a pidfd plus the (PID, start time) it must have.

    Once opened and verified, signals sent through the handle can only reach that process even
    if it exits and its PID is reused: nothing can slip in between the identity check and the
    signal.
    """

    def __init__(self, pid: int, starttime: int) -> None:
        self.pid = pid
        self.starttime = starttime
        self.fd: int | None = None
        try:
            self.fd = os.pidfd_open(pid)
            _make_room(self.fd)
        except ProcessLookupError:
            self.fd = None
        except OSError as exc:
            # EINVAL: ``pid`` is a thread, not a process (kill() would hit its whole process).
            # ENOSYS: no pidfd (old kernel): fall back to kill() with a start-time check.
            self.fd = None if exc.errno == errno.EINVAL else -1
        except AttributeError:
            self.fd = -1
        info = read_stat(pid)
        self.valid = (
            self.fd is not None
            and info is not None
            and info.starttime == starttime
            and not info.zombie
        )

    def close(self) -> None:
        if self.fd is not None and self.fd >= 0:
            os.close(self.fd)
        self.fd = None

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, sig: int) -> bool:
        """Send ``sig``; False if the process is already gone."""
        if not self.valid or self.fd is None:
            return False
        try:
            if self.fd >= 0:
                from _signal import pidfd_send_signal  # signal's enums import enum

                pidfd_send_signal(self.fd, sig)
            else:
                info = read_stat(self.pid)
                if info is None or info.starttime != self.starttime:
                    return False
                os.kill(self.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def exited(self) -> bool:
        """True once the process has exited (a zombie counts as exited): /proc's answer, which
        a poll of the pidfd could only have turned to True where /proc already says so (a
        new process with the PID and the same start time aside), so none is made here (the
        select module is loaded by what waits, not by what looks)."""
        if not self.valid or self.fd is None:
            return True
        info = read_stat(self.pid)
        return info is None or info.zombie or info.starttime != self.starttime


def wait_all_exit(
    handles: Iterable[Handle], deadline: float, cancellable: bool = True
) -> list[Handle]:
    """Wait until every handle's process has exited or ``deadline`` (monotonic) passes.

    Woken by the kernel at each exit through poll() on the pidfds: no fixed-interval sleep.
    Returns the handles still alive at the end.
    """
    from servicectl.system.cancel import CANCEL_SLICE, cancel_fd, check_cancel
    from servicectl.system.turns import paused

    alive = [h for h in handles if not h.exited()]
    while alive:
        if cancellable:
            check_cancel()
        remaining = min(deadline - time.monotonic(), CANCEL_SLICE)
        if deadline - time.monotonic() <= 0:
            break
        fds = [h for h in alive if h.fd is not None and h.fd >= 0]
        if fds:
            import select

            p = select.poll()
            for h in fds:
                p.register(h.fd or 0, select.POLLIN)
            stop = cancel_fd() if cancellable else None
            if stop is not None:
                p.register(stop, select.POLLIN)
            # Also re-check processes without pidfds at a short backoff.
            timeout = remaining if len(fds) == len(alive) else min(remaining, 0.01)
            with paused():  # a fleet's worker lets another act meanwhile (turns.py)
                p.poll(max(1, int(timeout * 1000)) if timeout < 1e6 else None)
        else:
            with paused():
                time.sleep(min(remaining, 0.005))
        alive = [h for h in alive if not h.exited()]
    return alive


def reap_if_child(pid: int) -> int | None:
    """Collect the exit status of ``pid`` if it is our exited child; None otherwise."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if got == 0:
        return None
    return os.waitstatus_to_exitcode(status)


def describe_exit(code: int | None) -> str:
    """``exited with status 3`` / ``was killed by signal KILL`` for a waitstatus_to_exitcode
    value (None: the status could not be collected)."""
    if code is None:
        return "exited"
    if code < 0:
        from servicectl.definitions.schema import signal_name

        return f"was killed by signal {signal_name(-code)}"
    return f"exited with status {code}"


def is_zombie(pid: int) -> bool:
    """Whether ``pid`` is a zombie (exited, not reaped)."""
    info = read_proc(pid)
    return info is not None and info.zombie
