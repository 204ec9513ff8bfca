"""A gated start without the subprocess module: a fork and exec done here, with Popen's own
care, and ``Child``, as much of a Popen as a start uses (pid, returncode, poll, wait).

subprocess imports signal, enum, collections, re (through locale), threading and selectors:
7-9 ms of a 50 ms ``start``. It stays the way for everything else: a user switch,
descriptors to pass (socket activation), the exec shim, a command that is not the dash gate,
and any process that runs more than one thread (a fork copies only the thread that forks; a
lock another thread held stays held in the child: Popen's child is C code, this one is not).

The child is what Popen makes of spawn.spawn's arguments: its own session (``setsid``),
stdin from the gate's pipe, stdout and stderr to the log, no other descriptor (``close_fds``),
SIGPIPE and SIGXFSZ back to their defaults (``restore_signals``), the parent's signal mask,
the service's umask, started in "/" (R-EXEC-1; the gate enters the working directory). An
exec that fails is an OSError in the parent, read from a close-on-exec pipe as Popen does.
(Not os.posix_spawn: glibc's leaves its internal signals 32 and 33 ignored in the program.)

Born in its cgroup: given the service's cgroup v2 directory, the child is made by ``clone3``
with ``CLONE_INTO_CGROUP`` (Linux 5.7) instead of ``fork``, so that no join is written for it.
A write to ``cgroup.procs`` takes the kernel's cgroup_threadgroup_rwsem for writing, which on
a default cgroup v2 mount waits for an RCU grace period (5-8 ms, the largest single wait of a
``start``); a process born into the cgroup takes it only for reading, as any fork does. The
call goes through ``_ctypes`` (as proc.become_subreaper's prctl), in a process with one thread
only (``usable``): ctypes lets go of the GIL around the call, which no other thread may take
in the child's copy. Where clone3 is refused (an older kernel, a seccomp filter that answers
ENOSYS, a cgroup that refuses the process, no ``_ctypes``) the child is forked and joined as
before, and that join says what went wrong.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Optional

    Meanwhile = Callable[[int, str], None]  # (pid, the cgroup it was born in, or "")


class Child:
    """A process this one spawned: ``poll`` and ``wait`` reap it and set ``returncode``
    (negative: killed by that signal), as Popen's do; None while it runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: Optional[int] = None

    def poll(self) -> Optional[int]:
        if self.returncode is None:
            self._reap(os.WNOHANG)
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> int:
        """Its exit code, once it exited; subprocess.TimeoutExpired after ``timeout``."""
        if self.returncode is None and timeout is not None:
            self._await(timeout)
        while self.returncode is None:
            self._reap(0)
        return self.returncode

    def _await(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for its exit (a pidfd, else short sleeps)."""
        if self.poll() is not None:
            return
        try:
            fd = os.pidfd_open(self.pid)
        except OSError:  # reaped by someone else (ESRCH), or no pidfd (old kernel)
            fd = -1
        if fd >= 0:
            import select

            try:
                p = select.poll()
                p.register(fd, select.POLLIN)
                p.poll(max(0, int(timeout * 1000)))
            finally:
                os.close(fd)
        if self.poll() is None:
            import subprocess

            raise subprocess.TimeoutExpired(str(self.pid), timeout)

    def _reap(self, flags: int) -> None:
        try:
            pid, status = os.waitpid(self.pid, flags)
        except ChildProcessError:  # reaped elsewhere (a supervisor's SIGCHLD): Popen says 0
            self.returncode = 0
            return
        if pid == self.pid:
            self.returncode = os.waitstatus_to_exitcode(status)


def usable(fds: tuple[int, ...]) -> bool:
    """Whether a gate with stdin, stdout and stderr ``fds`` may be spawned here: one thread
    (a fork copies only the thread that forks), descriptors that the child's own dup2 cannot
    clobber (3 and up)."""
    if min(fds) < 3:
        return False
    threading = sys.modules.get("threading")
    return threading is None or threading.active_count() == 1  # type: ignore[attr-defined]


def forked_gate(
    argv: list[str],
    env: dict[str, str],
    ends: tuple[Any, int, int],
    umask: int,
    popen_only: bool,
    meanwhile: Meanwhile | None = None,
    into: str = "",
) -> Child | None:
    """The gate (``argv``: the dash gate, ``ends``: its Gate, stdout, stderr) forked here
    where it may be: ``popen_only`` false (no user switch, nothing to pass, the dash gate)
    and ``usable``; None where Popen must do it. ``into``: the cgroup v2 directory to be born
    in, where the kernel allows it (see the module's docstring)."""
    gate, out, err = ends
    if gate is None or popen_only:
        return None
    fds = (gate.read_fd, out, err)
    return spawn_gate(argv, env, fds, umask, meanwhile, into) if usable(fds) else None


def spawn_gate(
    argv: list[str],
    env: dict[str, str],
    fds: tuple[int, int, int],
    umask: int,
    meanwhile: Meanwhile | None = None,
    into: str = "",
) -> Child:
    """Spawn ``argv`` (the gate's shell first) with ``env``, stdin, stdout and stderr from
    ``fds``, in a session of its own (see the module's docstring). OSError as Popen raises it,
    in this process, when the shell could not be executed (an error pipe, as Popen's).
    ``into``: a cgroup v2 directory the child is born in if the kernel allows it.
    ``meanwhile(pid, born_in)`` runs while the child goes on to its exec; ``born_in`` is
    ``into`` if the child was born there, else "" (the caller joins it: on a default cgroup v2
    mount a join waits a few milliseconds for the kernel, the fork and exec take as long)."""
    import _signal

    errors, report = os.pipe()  # close-on-exec: EOF on the read end once the exec succeeded
    here = os.getpid()
    old_mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, _signal.valid_signals())
    try:
        pid, born_in = _fork(into)
        if pid == 0:  # the child: never returns
            _become(argv, env, fds, umask, report, old_mask)
    finally:
        if os.getpid() != here:  # the child, whatever went wrong before _become: never back
            os._exit(127)
        _signal.pthread_sigmask(_signal.SIG_SETMASK, old_mask)
        os.close(report)
    try:
        if meanwhile is not None:
            meanwhile(pid, born_in)
        failed = os.read(errors, 64)
    finally:
        os.close(errors)
    if failed:
        os.waitpid(pid, 0)
        number = int(failed.split(b":")[0] or b"0")
        why = os.strerror(number) if number else "it failed before its exec"
        raise OSError(number, why, argv[0])
    return Child(pid)


def _fork(into: str) -> tuple[int, str]:
    """A child of this process (0 in the child, its PID here), born in ``into`` where clone3
    puts it there (``into`` is said back), else forked (and "" said back)."""
    if into:
        try:
            fd = os.open(into, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:  # gone, or not ours to open: the join that follows says so
            fd = -1
        if fd >= 0:
            try:
                pid = _clone_into(fd)
            finally:
                os.close(fd)
            if pid >= 0:
                return pid, into
    return os.fork(), ""


def _clone_into(cgroup_fd: int) -> int:
    """clone3(CLONE_INTO_CGROUP) through libc's syscall(): 0 in the child, the child's PID
    here, -1 where there is no such call (another architecture's numbers, no ``_ctypes``) or
    the kernel refused it (nothing was made then)."""
    if os.uname().machine not in _CLONE3_435:
        return -1
    try:
        import _ctypes

        libc = _ctypes.dlopen(None, os.RTLD_NOW | os.RTLD_LOCAL)  # type: ignore[arg-type]
        syscall = _ctypes.dlsym(libc, "syscall")
    except (ImportError, AttributeError, OSError):
        return -1
    # struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
    # tls, set_tid, set_tid_size, cgroup; a stack of 0: the child goes on on its copy of ours
    import _signal

    fields = (CLONE_INTO_CGROUP, 0, 0, 0, _signal.SIGCHLD, 0, 0, 0, 0, 0, cgroup_fd)
    args = b"".join(value.to_bytes(8, sys.byteorder) for value in fields)
    try:
        pid = _ctypes.call_function(syscall, (SYS_CLONE3, args, len(args)))
    except (TypeError, ValueError, OSError):  # another interpreter's _ctypes
        return -1
    return pid if isinstance(pid, int) else -1


CLONE_INTO_CGROUP = 0x200000000
SYS_CLONE3 = 435  # the same on every architecture of the common table (not MIPS or Alpha)
_CLONE3_435 = frozenset(
    {"x86_64", "i386", "i586", "i686", "aarch64", "armv7l", "armv8l", "ppc64le", "ppc64"}
    | {"s390x", "riscv64", "loongarch64"}
)


def _become(
    argv: list[str],
    env: dict[str, str],
    fds: tuple[int, int, int],
    umask: int,
    report: int,
    mask: object,
) -> None:
    """The forked child: what Popen's child does, then exec; any failure is written to
    ``report`` as "errno:" and the child exits 127. Runs with every signal blocked until its
    handlers are back to their defaults: no Python handler of the parent ever runs here."""
    import _signal

    try:
        for number in _signal.valid_signals():
            handler = _signal.getsignal(number)
            if callable(handler) or number in (_signal.SIGPIPE, _signal.SIGXFSZ):
                _signal.signal(number, _signal.SIG_DFL)  # restore_signals; no handler of ours
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)  # inheritable: 0-2 are the child's
        os.closerange(3, report)
        os.closerange(report + 1, _MAX_FD)
        os.umask(umask)
        os.chdir("/")
        _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)  # type: ignore[arg-type]
        os.execve(argv[0], argv, env)
    except OSError as exc:
        _tell(report, exc.errno or 0)
    except BaseException:
        _tell(report, 0)
    os._exit(127)


def _tell(report: int, number: int) -> None:
    try:
        os.write(report, b"%d:" % number)
    except BaseException:
        pass
    os._exit(127)


_MAX_FD = 1 << 20  # close_range's upper bound: every descriptor above the error pipe
