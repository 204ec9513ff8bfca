"""Running a service's own short commands (the config test, command actions, reload
commands): as the service's user, with its environment, in its working directory, within a
time limit, its output captured (the end of it, bounded); its process group killed at the
limit.
"""

from __future__ import annotations

import os
import time

from servicectl.errors import Exit, ServicectlError
from servicectl.system.confined import Confined, kill_group
from servicectl.system.spawn import Account, resolve_program
from servicectl.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import IO, Any

    from servicectl.definitions.schema import Service

OUTPUT_BYTES = 64 * 1024  # what is kept of a command's output (its end)
OUTPUT_LINES = 20  # what is shown of it
DRAIN = 0.2  # how long output is read after the command exited


class Ran(NamedTuple):
    """How a service's command ended: its exit status (None: killed at the time limit) and
    the end of its output (stdout and stderr together)."""

    code: int | None
    output: str

    def detail(self) -> str:
        lines = self.output.rstrip("\n").splitlines()[-OUTPUT_LINES:]
        return "\n".join("    " + line for line in lines)


# ---------------------------------------------------------------------------------------------
# Running a service's command


def run(
    svc: Service,
    argv: tuple[str, ...],
    env: dict[str, str],
    account: Account,
    timeout: float,
) -> Ran:
    """Run ``argv`` (already expanded) as the service's user, with ``env``, in its working
    directory and umask, in a session of its own, stdin from /dev/null; keep the last
    OUTPUT_BYTES of its output. At ``timeout``, or interrupted, its process group is killed.
    Whatever it left in its process group, or in its own cgroup (confined.py: joined before it
    runs), is killed when it exits."""
    import subprocess

    program = resolve_program(svc, env, argv)
    if not os.path.isdir(svc.working_directory):
        raise ServicectlError(
            f"{svc.name}: working directory {svc.working_directory} does not exist "
            f"(create it, or fix working_directory: in {svc.file})"
        )
    kwargs: dict[str, Any] = {}
    if account.switch:  # R-EXEC-2: the directory is entered as the user, after the switch
        kwargs.update(user=account.uid, group=account.gid, extra_groups=list(account.groups))
    box = Confined(svc.name)
    try:
        child = box.popen(
            program,
            argv,
            env,
            str(svc.working_directory),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            umask=svc.umask,
            start_new_session=True,
            close_fds=True,
            restore_signals=True,
            **kwargs,
        )
    except OSError as exc:
        raise ServicectlError(
            f"{svc.name}: cannot run {program}: {exc.strerror}", exit_code=Exit.NOT_INSTALLED
        ) from None
    try:
        output, finished = collect(child, time.monotonic() + timeout)
    finally:
        kill_group(child.pid)  # leftovers, or the whole command at the limit
        box.end()  # and whatever left its group: its cgroup holds them all
        child.wait()
        assert child.stdout is not None
        child.stdout.close()
    return Ran(child.returncode if finished else None, output.decode("utf-8", "replace"))


def collect(
    child: subprocess.Popen[bytes], deadline: float, stream: IO[bytes] | None = None
) -> tuple[bytes, bool]:
    """Read the child's output (``stream``, default its stdout; keeping its end) until it has
    exited and closed it, or until ``deadline``; (output, whether it exited). Something it
    left that holds the output open is given DRAIN seconds after its exit (then killed by the
    caller)."""
    import select

    stream = stream or child.stdout
    assert stream is not None
    fd = stream.fileno()
    data, eof, exited_at = b"", False, None
    while True:
        now = time.monotonic()
        if exited_at is None and _exited(child.pid):
            exited_at = now
        if exited_at is not None and (eof or now >= exited_at + DRAIN):
            return data, True
        if now >= deadline:
            return data, False
        if eof:  # it closed its output but still runs
            time.sleep(min(0.05, deadline - now))
            continue
        if select.select([fd], [], [], min(0.5, deadline - now))[0]:
            chunk = os.read(fd, 65536)
            eof = not chunk
            data = (data + chunk)[-OUTPUT_BYTES:]


def _exited(pid: int) -> bool:
    """Whether our child has exited, without reaping it: until the caller reaps it, its PID
    (the number of its process group) cannot be reused, so killing that group is safe."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True
