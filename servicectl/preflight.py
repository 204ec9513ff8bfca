"""What must hold before a service is started, restarted or reloaded: its ``directories`` exist
with their owner and mode, and its config test (``check_command``) passes. Also the runner of
a service's own short commands (the config test, command actions): as the service's user,
with its environment, in its working directory, within a time limit, output captured.

The directories follow docs/security.md R-DIR: parents walked under R-PATH-1, missing ones
made 0755 and root's; the directory itself never followed, changed through its descriptor.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from servicectl import safefile
from servicectl.errors import Exit, Interrupted, PrivilegeError, ServicectlError
from servicectl.expansion import expanded
from servicectl.paths import writable_by_root_alone
from servicectl.spawn import Account, build_environment, resolve_account, resolve_program

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

    from servicectl.schema import Directory, Service

OUTPUT_BYTES = 64 * 1024  # what is kept of a command's output (its end)
OUTPUT_LINES = 20  # what is shown of it
DRAIN = 0.2  # how long output is read after the command exited
O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class ConfigTestFailed(ServicectlError):
    """The config test failed: the action is refused, nothing was changed (exit 6)."""

    exit_code = Exit.NOT_CONFIGURED


class Ran(NamedTuple):
    """How a service's command ended: its exit status (None: killed at the time limit) and
    the end of its output (stdout and stderr together)."""

    code: int | None
    output: str

    def detail(self) -> str:
        lines = self.output.rstrip("\n").splitlines()[-OUTPUT_LINES:]
        return "\n".join("    " + line for line in lines)


# ---------------------------------------------------------------------------------------------
# Before start, restart and reload


def prepare(svc: Service, action: str, directories: bool = True) -> None:
    """Make the directories (if ``directories``), then run the config test; ``action`` says
    what is refused if it fails ("not started", "not restarted: ..."). Exit 6 on failure."""
    if not (svc.check_command or (directories and svc.directories)):
        return
    account = resolve_account(svc)
    if directories:
        make_directories(svc, account)
    if svc.check_command:
        config_test(svc, account, action)


def config_test(svc: Service, account: Account, action: str) -> None:
    """Run ``check_command``; raise ConfigTestFailed (exit 6, with its output) unless it exits
    0 within start_timeout."""
    env = build_environment(svc, account)
    argv = expanded(svc, env).check_command
    assert argv is not None
    shown = " ".join(argv)
    try:
        ran = run(svc, argv, env, account, svc.start_timeout)
    except KeyboardInterrupt:
        raise Interrupted(
            f"{svc.name}: interrupted during its config test ({shown}); nothing was stopped, "
            f"started or signalled"
        ) from None
    if ran.code == 0:
        return
    how = (
        f"did not finish within start_timeout {svc.start_timeout:g} s (it was killed)"
        if ran.code is None
        else _exit_text(ran.code)
    )
    refused = f"; {action}" if action else ""
    raise ConfigTestFailed(
        f"{svc.name}: config test failed: {shown} {how}{refused}", detail=ran.detail()
    )


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by SIG{signal.Signals(-code).name.removeprefix('SIG')}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited {code}"


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
    Whatever it left in its process group is killed when it exits."""
    import subprocess

    program = resolve_program(svc, env, argv)
    if not svc.working_directory.is_dir():
        raise ServicectlError(
            f"{svc.name}: working directory {svc.working_directory} does not exist "
            f"(create it, or fix working_directory: in {svc.file})"
        )
    kwargs: dict[str, Any] = {}
    if account.switch:
        kwargs.update(user=account.uid, group=account.gid, extra_groups=list(account.groups))
    try:
        child = subprocess.Popen(
            [program, *argv[1:]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=str(svc.working_directory),
            env=env,
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
        output, finished = _collect(child, time.monotonic() + timeout)
    finally:
        _kill_group(child.pid)  # leftovers, or the whole command at the limit
        child.wait()
        assert child.stdout is not None
        child.stdout.close()
    return Ran(child.returncode if finished else None, output.decode("utf-8", "replace"))


def _collect(child: subprocess.Popen[bytes], deadline: float) -> tuple[bytes, bool]:
    """Read the child's output (keeping its end) until it has exited and closed it, or until
    ``deadline``; (output, whether it exited). Something it left that holds the output open
    is given DRAIN seconds after its exit (then killed by the caller)."""
    import select

    assert child.stdout is not None
    fd = child.stdout.fileno()
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


def _kill_group(pgid: int) -> None:
    """SIGKILL the process group the command leads (its own session: nothing else is in it;
    its leader is not reaped yet, so the number cannot have been reused)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# Directories


def make_directories(svc: Service, account: Account) -> None:
    """Make each of ``directories``, then chown and chmod it (R-DIR-1..4)."""
    for d in svc.directories:
        uid, gid = _owner(svc, d, account)
        try:
            _make(d, uid, gid)
        except safefile.Refused as exc:
            raise type(exc)(f"{svc.name}: {exc.message} (see directories: in {svc.file})") from None
        except ServicectlError as exc:
            exc.message = f"{svc.name}: {exc.message} (see directories: in {svc.file})"
            raise
        except OSError as exc:
            where = exc.filename or d.path
            raise ServicectlError(
                f"{svc.name}: cannot make the directory {d.path}: {where}: {exc.strerror} "
                f"(see directories: in {svc.file})",
                exit_code=Exit.PRIVILEGE if exc.errno in (errno.EPERM, errno.EACCES) else 1,
            ) from None


def _owner(svc: Service, d: Directory, account: Account) -> tuple[int, int]:
    """The directory's owner and group: as given, else the service's (a given owner alone
    brings its primary group)."""
    import grp
    import pwd

    try:
        if d.owner is None:
            uid, gid = account.uid, account.gid
        else:
            pw = pwd.getpwuid(int(d.owner)) if d.owner.isdigit() else pwd.getpwnam(d.owner)
            uid, gid = pw.pw_uid, pw.pw_gid
    except KeyError:
        raise ServicectlError(
            f"{svc.name}: the owner {d.owner!r} of {d.path} does not exist on this machine "
            f"(fix directories: in {svc.file})"
        ) from None
    if d.group is not None:
        try:
            gid = int(d.group) if d.group.isdigit() else grp.getgrnam(d.group).gr_gid
        except KeyError:
            raise ServicectlError(
                f"{svc.name}: the group {d.group!r} of {d.path} does not exist on this "
                f"machine (fix directories: in {svc.file})"
            ) from None
    return uid, gid


def _make(d: Directory, uid: int, gid: int) -> None:
    parent = _open_parent(d.path.parent)
    try:
        name = d.path.name
        created = _mkdir(parent, name, 0o700)
        try:
            fd = os.open(name, O_DIR, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise _not_a_directory(d.path, parent) from None
            raise OSError(exc.errno, exc.strerror, str(d.path)) from None
        try:
            st = os.fstat(fd)
            if not created and not writable_by_root_alone(os.fstat(parent)):
                _check_takeover(d.path, st, uid)
            if (st.st_uid, st.st_gid) != (uid, gid):
                os.fchown(fd, uid, gid)
            if stat.S_IMODE(st.st_mode) != d.mode or (st.st_uid, st.st_gid) != (uid, gid):
                os.fchmod(fd, d.mode)  # after fchown, which may clear set-id bits
        finally:
            os.close(fd)
    finally:
        os.close(parent)


def _not_a_directory(path: Path, parent: int) -> ServicectlError:
    """R-DIR-2: what is at ``path`` is not a directory: said, never followed nor changed."""
    try:
        st = os.stat(path.name, dir_fd=parent, follow_symlinks=False)
    except OSError:
        return ServicectlError(f"{path} is not a directory", exit_code=Exit.NOT_CONFIGURED)
    what = safefile.describe_kind(st)
    if stat.S_ISLNK(st.st_mode):
        try:
            what += f" (to {os.readlink(path.name, dir_fd=parent)})"
        except OSError:
            pass
    return ServicectlError(
        f"{path} is {what}, not a directory; servicectl neither follows nor changes it "
        f"(remove it, or choose another path)",
        exit_code=Exit.NOT_CONFIGURED,
    )


def _check_takeover(path: Path, st: os.stat_result, uid: int) -> None:
    """R-DIR-4: in a directory others can write, an existing directory is taken only if it
    belongs to root or already to its owner-to-be: no one can plant one for a service."""
    if st.st_uid not in (0, os.geteuid(), uid):
        raise PrivilegeError(
            f"the directory {path} exists and belongs to uid {st.st_uid}, in a directory other "
            f"users can write; servicectl does not hand it over (remove it: it is made again)"
        )


def _mkdir(parent: int, name: str, mode: int) -> bool:
    """mkdirat; False if something is there already (the caller looks at what)."""
    try:
        os.mkdir(name, mode, dir_fd=parent)
    except FileExistsError:
        return False
    return True


def _open_parent(path: Path) -> int:
    """An O_PATH descriptor of ``path``, walked under R-PATH-1; missing directories are made
    0755 and root's (whatever servicectl's umask), never through a symlink."""
    try:
        return safefile.open_dir(path)
    except FileNotFoundError:
        if path.parent == path:
            raise
    above = _open_parent(path.parent)
    try:
        if _mkdir(above, path.name, 0o700):
            fd = os.open(path.name, O_DIR, dir_fd=above)
            try:
                os.fchown(fd, os.geteuid(), os.getegid())
                os.fchmod(fd, 0o755)
            finally:
                os.close(fd)
        try:
            return os.open(path.name, safefile.O_DIR | os.O_NOFOLLOW, dir_fd=above)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
    finally:
        os.close(above)


# ---------------------------------------------------------------------------------------------
# check --run-checks


def check_more(svc: Service, run_checks: bool, errors: list[ServicectlError]) -> str:
    """What ``check`` says beyond validation: a warning for each unset variable a command uses;
    with ``run_checks``, the directories and the config test, as start would (their failure
    is added to ``errors``). A note for the "ok" line."""
    from servicectl.expansion import unset_variables
    from servicectl.face import face

    try:
        account = resolve_account(svc)
    except ServicectlError:  # a user of another machine: its variables are set all the same
        account = Account(svc.user or "", -1, -1, "", (), False)
    env = build_environment(svc, account)
    for key, name in unset_variables(svc, env):
        face.error(
            f"{svc.name}: warning: {key}: ${name} is not set (neither by env_file nor by "
            f"environment in {svc.file}); it expands to nothing"
        )
    if not run_checks:
        return ""
    try:
        prepare(svc, "")
    except ServicectlError as exc:
        errors.append(exc)
        return ""
    done = [
        what
        for what, given in (
            ("directories", svc.directories),
            ("config test passed", svc.check_command),
        )
        if given
    ]
    return "; " + ", ".join(done) if done else "; nothing to run"
