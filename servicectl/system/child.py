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
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Optional


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
    meanwhile: Callable[[int], None] | None = None,
) -> Child | None:
    """The gate (``argv``: the dash gate, ``ends``: its Gate, stdout, stderr) forked here
    where it may be: ``popen_only`` false (no user switch, nothing to pass, the dash gate)
    and ``usable``; None where Popen must do it."""
    gate, out, err = ends
    if gate is None or popen_only:
        return None
    fds = (gate.read_fd, out, err)
    return spawn_gate(argv, env, fds, umask, meanwhile) if usable(fds) else None


def spawn_gate(
    argv: list[str],
    env: dict[str, str],
    fds: tuple[int, int, int],
    umask: int,
    meanwhile: Callable[[int], None] | None = None,
) -> Child:
    """Spawn ``argv`` (the gate's shell first) with ``env``, stdin, stdout and stderr from
    ``fds``, in a session of its own (see the module's docstring). OSError as Popen raises it,
    in this process, when the shell could not be executed (an error pipe, as Popen's).
    ``meanwhile(pid)`` runs while the child goes on to its exec (the gate's join of its
    cgroup: on a default cgroup v2 mount a join waits a few milliseconds for the kernel, the
    fork and exec take as long)."""
    import _signal

    errors, report = os.pipe()  # close-on-exec: EOF on the read end once the exec succeeded
    old_mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, _signal.valid_signals())
    try:
        pid = os.fork()
        if pid == 0:  # the child: never returns
            _become(argv, env, fds, umask, report, old_mask)
    finally:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, old_mask)
        os.close(report)
    try:
        if meanwhile is not None:
            meanwhile(pid)
        failed = os.read(errors, 64)
    finally:
        os.close(errors)
    if failed:
        os.waitpid(pid, 0)
        number = int(failed.split(b":")[0] or b"0")
        why = os.strerror(number) if number else "it failed before its exec"
        raise OSError(number, why, argv[0])
    return Child(pid)


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
