"""A service's short commands (its config test, a readiness command, an action or reload
command) in a cgroup of their own, joined before they run anything, so that whatever they fork
(a ``setsid`` double fork too) is killed when they end.

The cgroup is ``BASE/servicectl/checks/<NAME>.<pid>-<n>`` (``pid``: the servicectl process, so
that two never share one); it is made root's (docs/security.md R-CG-1), and removed when the
command ends. One that a killed servicectl left behind is ended by the next command's sweep.
Where no cgroup v2 hierarchy can be written, the command runs as before: in a session of its
own, its process group killed when it ends.
"""

from __future__ import annotations

import itertools
import os
import signal

from servicectl.system import cgroup
from servicectl.system.spawn import Gate, after_switch, gated

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import Any

END_WAIT = 2.0  # how long the end of a command waits for its cgroup to empty after KILL
_COUNT = itertools.count(1)


class Confined:
    """A cgroup for one short command of service ``name`` (none where cgroups cannot be
    written: ``path`` is "")."""

    def __init__(self, name: str) -> None:
        top = cgroup.hierarchies().top
        self.checks = os.path.join(top, cgroup.TOP, cgroup.CHECKS) if top else ""
        self.path = os.path.join(self.checks, f"{name}.{os.getpid()}-{next(_COUNT)}") if top else ""

    def popen(
        self,
        program: str,
        argv: tuple[str, ...],
        env: dict[str, str],
        directory: str,
        **kwargs: Any,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` (``program``: its resolved path) with Popen's ``kwargs`` (a user
        switch among them): held at a gate until it is in its cgroup, then let through (stdin
        from /dev/null). It is started in "/" and enters ``directory`` as the user it runs as
        (R-EXEC-2)."""
        import subprocess

        if not self.path:
            cmd = after_switch([program, *argv[1:]], directory, env)
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env, cwd="/", **kwargs)
        _sweep(self.checks)
        try:
            cgroup.make(self.path, os.path.dirname(os.path.dirname(self.checks)))
        except OSError:
            self.path = ""  # cannot be made (removed under us?): run it as without cgroups
            return self.popen(program, argv, env, directory, **kwargs)
        gate = Gate()
        cmd, exe = gated(program, argv, env, directory)
        try:
            child = subprocess.Popen(
                cmd, executable=exe, stdin=gate.read_fd, env=env, cwd="/", **kwargs
            )
        except BaseException:
            gate.close()
            self.end()
            raise
        os.close(gate.read_fd)
        gate.read_fd = -1
        try:
            cgroup.join(self.path, child.pid)
        except OSError:
            gate.close()  # it reads EOF and exits 125 without running anything
            child.wait()
            self.end()
            raise
        gate.open()
        return child

    def end(self) -> None:
        """Kill whatever is left in the cgroup, wait until it is empty, remove it."""
        if self.path:
            cgroup.kill(self.path)
            if cgroup.wait_empty(self.path, END_WAIT):
                cgroup.remove(self.path)


def _sweep(checks: str) -> None:
    """End and remove the cgroups of commands whose servicectl is gone (it was killed)."""
    try:
        names = os.listdir(checks)
    except OSError:
        return
    for entry in names:
        owner = entry.rpartition(".")[2].partition("-")[0]
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            path = os.path.join(checks, entry)
            cgroup.kill(path)
            if cgroup.wait_empty(path, END_WAIT):
                cgroup.remove(path)


def kill_group(pgid: int) -> None:
    """SIGKILL a process group a command leads (its own session; its leader not reaped yet,
    so the number cannot have been reused)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
