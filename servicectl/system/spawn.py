"""Detached spawn: the clean environment, the user, the program, and subprocess.Popen (or,
for the dash gate of a service that runs as servicectl's user, the same done in child.py).

Popen raises exec, chdir and setuid failures in the parent (CPython's close-on-exec error
pipe; child.py has one too). No preexec_fn: it is unsafe once threads exist,
and the fleet runs threads.
"""

from __future__ import annotations

import os
import pwd
import sys

from servicectl.definitions.schema import LIMIT_NAMES, Service
from servicectl.errors import (
    ConfigError,
    EnvironmentProblem,
    Exit,
    NotInstalledError,
    PrivilegeError,
    ServicectlError,
)
from servicectl.paths import untrusted_problem
from servicectl.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable
    from typing import Any

SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Account(NamedTuple):
    """Who the service runs as. ``switch`` is False when it runs as servicectl's own user."""

    user: str
    uid: int
    gid: int
    home: str
    groups: tuple[int, ...]
    switch: bool


def resolve_account(svc: Service) -> Account:
    """The service's user and group, or a clear error (exit 4 without root, else 1)."""
    euid = os.geteuid()
    if svc.user is None:
        try:
            pw = pwd.getpwuid(euid)
            name, home, gid = pw.pw_name, pw.pw_dir, os.getegid()
        except KeyError:
            name, home, gid = str(euid), "/", os.getegid()
        if svc.group is not None:
            gid = _group_id(svc, svc.group)
            if euid != 0 and gid != os.getegid() and gid not in os.getgroups():
                raise PrivilegeError(
                    f"{svc.name}: cannot run as group {svc.group} without root "
                    f"(servicectl runs as {name})"
                )
        return Account(name, euid, gid, home, (), switch=svc.group is not None and euid == 0)
    try:
        pw = pwd.getpwuid(int(svc.user)) if svc.user.isdigit() else pwd.getpwnam(svc.user)
    except KeyError:
        raise ServicectlError(
            f"{svc.name}: user {svc.user!r} does not exist on this machine "
            f"(create it, or change user: in {svc.file})"
        ) from None
    gid = _group_id(svc, svc.group) if svc.group is not None else pw.pw_gid
    if pw.pw_uid != euid and euid != 0:
        raise PrivilegeError(
            f"{svc.name}: only root can start a service as user {pw.pw_name}; "
            f"run servicectl as root (or remove user: from {svc.file})"
        )
    import grp  # here: a service that runs as servicectl's user and group needs none

    groups = tuple(g.gr_gid for g in grp.getgrall() if pw.pw_name in g.gr_mem and g.gr_gid != gid)
    return Account(pw.pw_name, pw.pw_uid, gid, pw.pw_dir, groups, switch=euid == 0)


def _group_id(svc: Service, group: str) -> int:
    import grp

    try:
        return int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise ServicectlError(
            f"{svc.name}: group {group!r} does not exist on this machine "
            f"(create it, or change group: in {svc.file})"
        ) from None


MAX_ENV_FILE = 1024 * 1024


def read_env_file(svc: Service) -> dict[str, str]:
    """KEY=VALUE lines; ``#`` comments, blank lines, optional ``export`` and quotes.

    docs/security.md R-ENV: as root, the file must be writable by root alone (exit 4); it is
    opened without following symlinks others could have planted, non-blocking (a FIFO never
    hangs), a regular file of at most 1 MiB; broken content is a configuration error of this
    service (exit 6) that names the line but never quotes it.
    """
    path = svc.env_file
    assert path is not None
    raw = _read_env_bytes(svc, path)

    def bad(number: int, what: str) -> ConfigError:
        return ConfigError(str(svc.file), "env_file", f"{path} line {number}: {what}")

    if b"\0" in raw:
        raise bad(raw[: raw.index(b"\0")].count(b"\n") + 1, "contains a NUL byte")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(raw[: exc.start].count(b"\n") + 1, "not UTF-8 text") from None
    out: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), 1):
        try:
            entry = _env_entry(line)
        except ValueError as exc:
            raise bad(number, str(exc)) from None
        if entry is not None:
            out[entry[0]] = entry[1]
    return out


def _read_env_bytes(svc: Service, path: str) -> bytes:
    """The content of the service's env_file, read under the rules of read_env_file: a
    refused path is exit 4 (the wrong kind of file: 6), an unreadable one exit 6."""
    from servicectl.files import safe

    try:
        raw, st = safe.read_regular(path, MAX_ENV_FILE, "env_file")
    except safe.Refused as exc:
        if isinstance(exc, safe.NotUsable):
            raise ConfigError(str(svc.file), "env_file", exc.message) from None
        raise PrivilegeError(f"{svc.name}: {exc.message} (fix env_file: in {svc.file})") from None
    except OSError as exc:
        raise ServicectlError(
            f"{svc.name}: env_file {path} cannot be read ({exc.strerror}); "
            f"create it or fix env_file: in {svc.file}",
            exit_code=Exit.NOT_CONFIGURED,
        ) from None
    problem = untrusted_problem(path, "env_file", st)
    if problem is not None:
        raise PrivilegeError(f"{svc.name}: {problem}")
    return raw


def _env_entry(line: str) -> tuple[str, str] | None:
    """The KEY and VALUE of one env_file line (``export`` and one pair of matching quotes
    removed), None for a blank or comment line; ValueError, saying what was expected, for
    anything else."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    line = line.removeprefix("export ").strip()
    key, sep, value = line.partition("=")
    key = key.strip()
    if not sep:
        raise ValueError("expected KEY=VALUE (no '=' on the line)")
    if not key or not key.isascii() or not key.replace("_", "a").isalnum() or key[0].isdigit():
        raise ValueError(
            "expected KEY=VALUE, where KEY is letters, digits and _ and does not start with a digit"
        )
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return key, value


def env_file_problems(svc: Service) -> list[ServicectlError]:
    """What ``check`` must report about the service's env_file (empty if none or fine)."""
    if svc.env_file is None:
        return []
    try:
        read_env_file(svc)
    except ServicectlError as exc:
        return [exc]
    return []


def build_environment(svc: Service, account: Account) -> dict[str, str]:
    """The clean environment, like service(8), never servicectl's own: PATH (SERVICE_PATH),
    LANG if set, HOME/USER/LOGNAME of the service's user, then env_file, then environment."""
    env = {"PATH": SERVICE_PATH}
    if "LANG" in os.environ:
        env["LANG"] = os.environ["LANG"]
    env.update(HOME=account.home, USER=account.user, LOGNAME=account.user)
    if svc.env_file is not None:
        env.update(read_env_file(svc))
    env.update(svc.environment)
    return env


def which(program: str, path: str) -> str | None:
    """The first executable regular file named ``program`` in the directories of ``path``, as
    ``shutil.which`` finds it (whose import costs every command ~3 ms)."""
    for directory in path.split(os.pathsep):
        candidate = os.path.join(directory or ".", program)
        if os.access(candidate, os.X_OK) and os.path.isfile(candidate):
            return candidate
    return None


def resolve_program(svc: Service, env: dict[str, str], argv: tuple[str, ...] | None = None) -> str:
    """The absolute path of the program to execute, or exit 5 with what is wrong."""
    program = (argv or svc.command)[0]
    if "/" in program:
        path = program
        if not os.path.exists(path):
            raise NotInstalledError(
                f"{svc.name}: program {path} does not exist (is it installed? "
                f"check command: in {svc.file})"
            )
    else:
        found = which(program, env.get("PATH", SERVICE_PATH))
        if found is None:
            raise NotInstalledError(
                f"{svc.name}: program {program!r} not found in PATH {env.get('PATH')} "
                f"(install it, or give its absolute path in command: in {svc.file})"
            )
        path = found
    if os.path.isdir(path):
        raise NotInstalledError(f"{svc.name}: {path} is a directory, not a program")
    if not os.path.isfile(path):  # execve runs regular files only
        raise NotInstalledError(
            f"{svc.name}: {path} is not a regular file (a FIFO, socket or device), not a "
            f"program (check command: in {svc.file})"
        )
    if not os.access(path, os.X_OK):
        raise NotInstalledError(
            f"{svc.name}: {path} is not executable (chmod +x {path}, or run it through its "
            f"interpreter in command: in {svc.file})"
        )
    return path


def open_output(svc: Service, account: Account) -> tuple[int, int]:
    """File descriptors for the service's stdout and stderr (O_APPEND; /dev/null for "null").

    Opened by safefile under docs/security.md R-OUT: no symlink others could have planted is
    followed, only a file created now is given to the service's user, devices are used as they
    are and never chowned, FIFOs and other special files are refused without blocking.
    """
    from servicectl.files import safe

    give_to = (account.uid, account.gid) if account.switch else None

    def open_one(path: str | None) -> int:
        if path is None:
            return os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        key = "stdout" if path == svc.stdout else "stderr"
        try:
            return safe.open_output(path, give_to, account.uid)
        except safe.Refused as exc:
            raise type(exc)(
                f"{svc.name}: {exc.message}: remove it, or set {key}: in {svc.file} to another "
                f"file",
            ) from None
        except NotADirectoryError as exc:
            raise EnvironmentProblem(
                f"{svc.name}: cannot open the log file {path}: {exc.filename} is not a "
                f"directory (fix the log directory, or set {key}: in {svc.file})"
            ) from None
        except OSError as exc:
            raise EnvironmentProblem(
                f"{svc.name}: cannot open the log file {path}: {exc.strerror} "
                f"(check the log directory's permissions, or set {key}: in {svc.file})"
            ) from None

    out = open_one(svc.stdout)
    if svc.stderr_same:
        return out, out
    try:
        err = open_one(svc.stderr)
    except BaseException:
        os.close(out)
        raise
    return out, err


# The exec shim runs as root until it switches to the service's user (docs/security.md
# R-EXEC-1): ``python -I -S`` (no current directory, script directory, PYTHON* variable, user
# or site directory on sys.path: the standard library alone), started in "/" with an
# environment of servicectl's making. The service's environment travels in it renamed
# (ENV_PREFIX + name), so that the loader never reads LD_PRELOAD or LD_LIBRARY_PATH meant for
# the service while the shim is root; the working directory is entered after the switch.
ENV_PREFIX = "SERVICECTL_ENV_"
CHDIR_EXIT = 200  # the service's user cannot enter its working directory

SHIM = """
import os, resource, sys, json
spec = json.loads(sys.argv[1])
def fail(what, e, code=126):
    reason = getattr(e, "strerror", None) or str(e)
    sys.stderr.write("servicectl: cannot %s: %s\\n" % (what, reason))
    os._exit(code)
inf = resource.RLIM_INFINITY
for name, soft, hard in spec["limits"]:
    pair = (inf if soft < 0 else soft, inf if hard < 0 else hard)
    try:
        resource.setrlimit(getattr(resource, name), pair)
    except (OSError, ValueError) as e:
        shown = ["unlimited" if v == inf else str(v) for v in pair]
        now = resource.getrlimit(getattr(resource, name))[1]
        now = "unlimited" if now == inf else str(now)
        fail("set limit %s to %s (soft/hard; the hard limit here is %s)"
             % (name[7:].lower(), "/".join(shown), now), e)
if spec["nice"] is not None:
    try:
        os.setpriority(os.PRIO_PROCESS, 0, spec["nice"])
    except OSError as e:
        fail("set nice %d" % spec["nice"], e)
if spec["uid"] is not None:
    try:
        os.setgroups(spec["groups"])
        os.setgid(spec["gid"])
        os.setuid(spec["uid"])
    except OSError as e:
        fail("switch to uid %d" % spec["uid"], e)
try:
    os.chdir(spec["cwd"])
except OSError as e:
    fail("enter the working directory %s" % spec["cwd"], e, @CHDIR@)
if spec["gate"] and not os.read(0, 1):
    os._exit(125)
if spec["gate"]:
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
n = len("@PREFIX@")
env = {k[n:]: v for k, v in os.environ.items() if k.startswith("@PREFIX@")}
try:
    os.execve(sys.argv[2], sys.argv[3:], env)
except OSError as e:
    sys.stderr.write("servicectl: cannot execute %s: %s\\n" % (sys.argv[2], e.strerror))
    os._exit(127)
""".replace("@PREFIX@", ENV_PREFIX).replace("@CHDIR@", str(CHDIR_EXIT))


# The gate: the child waits on stdin (a pipe) until servicectl has recorded it, then becomes the
# program with stdin from /dev/null. If servicectl dies first, the pipe reads EOF and the child
# exits 125 without running the program: no process is ever left that servicectl lost.
# dash adds only PWD to the environment (unset unless the service sets it); other shells add
# more (bash: SHLVL), so without dash the Python shim does the gate, 10-15 ms slower.
GATE_READ = "read -r _ || exit 125; "
GATE_EXEC = 'exec "$0" "$@" </dev/null'
GATE_SH = GATE_READ + GATE_EXEC  # the gate's script, with the working directory entered between
GATE_SHELL = "/bin/dash"
GATE_EXIT = 125


class Gate:
    """The write end of a spawned child's gate; ``open`` lets the child run the program."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()

    def open(self) -> None:
        """Let the child exec the program (idempotent)."""
        if self.write_fd >= 0:
            try:
                os.write(self.write_fd, b"go\n")
            except OSError:
                pass  # the child is gone; the caller sees its death
            self.close()

    def close(self) -> None:
        """Close both ends: a child still waiting reads EOF and exits without running."""
        for fd in (self.read_fd, self.write_fd):
            if fd >= 0:
                os.close(fd)
        self.read_fd = self.write_fd = -1

    def gated_argv(self, cmdline: list[str]) -> bool:
        """Whether /proc shows ``cmdline`` as still the gate (the program not yet executed):
        the dash gate, or the exec shim, which holds the gate itself after it applied nice and
        limits, switched user and entered the working directory (an interpreter's start:
        tens of milliseconds under load, during which any of these can still fail)."""
        if len(cmdline) >= 5 and cmdline[1:4] == ["-I", "-S", "-c"] and cmdline[4] == SHIM:
            return True
        return (
            len(cmdline) >= 3
            and cmdline[1] == "-c"
            and cmdline[2].startswith(GATE_READ)
            and cmdline[2].endswith(GATE_EXEC)
        )


def _sh_word(word: str) -> str:
    """``word`` quoted for sh, read back literally."""
    return "'" + word.replace("'", "'\\''") + "'"


def enter_directory(directory: str, env: dict[str, str]) -> str:
    """sh text that enters ``directory`` (run after the user switch: R-EXEC-2) or exits
    CHDIR_EXIT saying so, then leaves PWD and OLDPWD as the service's environment has them
    (cd would export them)."""
    word = _sh_word(directory)
    why = "servicectl: cannot enter the working directory %s as the service user\\n"
    restore = "".join(
        f"{var}={_sh_word(env[var])}; " if var in env else f"unset {var}; "
        for var in ("PWD", "OLDPWD")
    )
    return (
        f"cd -P -- {word} 2>/dev/null || {{ printf '{why}' {word} >&2; exit {CHDIR_EXIT}; }}; "
        + restore
    )


def after_switch(argv: list[str], directory: str, env: dict[str, str]) -> list[str]:
    """``argv`` (its program resolved) run through sh, which enters ``directory`` as the user
    Popen switched to, then becomes the program: for commands servicectl runs as the service's
    user (R-EXEC-2), so that root never enters a directory for them."""
    shell = GATE_SHELL if os.access(GATE_SHELL, os.X_OK) else "/bin/sh"
    script = enter_directory(directory, env) + 'exec "$0" "$@"'
    return [shell, "-c", script, *argv]


def gated(
    program: str, argv: tuple[str, ...], env: dict[str, str], directory: str | None = None
) -> tuple[list[str], str]:
    """A command held at a gate (its stdin a Gate's pipe), no limits: the dash gate, or the
    exec shim where there is no dash; it enters ``directory`` once through the gate, after
    Popen's user switch (R-EXEC-2), so start it in "/". (argv, executable) for Popen."""
    if os.access(GATE_SHELL, os.X_OK):
        enter = enter_directory(directory, env) if directory else ""
        script = GATE_READ + enter + GATE_EXEC
        if not directory and "PWD" not in env:
            script = "unset PWD; " + script
        return [GATE_SHELL, "-c", script, program, *argv[1:]], GATE_SHELL
    import json

    spec: dict[str, object] = {"limits": [], "nice": None, "uid": None, "gid": 0, "groups": []}
    spec.update(gate=True, cwd=directory)
    shim = [sys.executable, "-I", "-S", "-c", SHIM, json.dumps(spec), program, *argv]
    return shim, sys.executable


def _command_line(
    svc: Service,
    account: Account,
    env: dict[str, str],
    program: str,
    argv: tuple[str, ...],
    gate: Gate | None,
) -> tuple[list[str], str, dict[str, Any], dict[str, str]]:
    """What Popen runs: (argv, executable, keyword arguments for the user switch, the
    environment). The exec shim when ``nice`` or ``limits`` must be applied (or a gate is
    wanted without dash), the dash gate, or the program itself. Each enters the working
    directory only after the user switch, and is started in "/" (R-EXEC-1, R-EXEC-2)."""
    uses_shim = bool(svc.limits) or svc.nice is not None
    if gate is not None and not uses_shim and not os.access(GATE_SHELL, os.X_OK):
        uses_shim = True
    directory = str(svc.working_directory)
    if uses_shim:
        import json

        spec = {
            "limits": [(LIMIT_NAMES[n], s, h) for n, s, h in svc.limits],
            "nice": svc.nice,
            "uid": account.uid if account.switch else None,
            "gid": account.gid,
            "groups": list(account.groups) or [account.gid],
            "gate": gate is not None,
            "cwd": directory,
        }
        shim = [sys.executable, "-I", "-S", "-c", SHIM, json.dumps(spec), program, *argv]
        return shim, sys.executable, {}, {ENV_PREFIX + k: v for k, v in env.items()}
    kwargs: dict[str, Any] = {}
    if account.switch:
        kwargs.update(user=account.uid, group=account.gid, extra_groups=list(account.groups))
    if gate is not None:
        script = GATE_READ + enter_directory(directory, env) + GATE_EXEC
        return [GATE_SHELL, "-c", script, program, *argv[1:]], GATE_SHELL, kwargs, env
    if account.switch:
        wrapped = after_switch([program, *argv[1:]], directory, env)
        return wrapped, wrapped[0], kwargs, env
    return list(argv), program, kwargs, env


def _can_start(svc: Service, program: str) -> None:
    """What would make the exec fail after the fork, said before it (exit 5 or 6)."""
    if not os.path.isdir(svc.working_directory):
        raise EnvironmentProblem(
            f"{svc.name}: working directory {svc.working_directory} does not exist "
            f"(create it, or fix working_directory: in {svc.file})"
        )
    from servicectl.system.interpreter import check_interpreter

    check_interpreter(svc.name, program)


def spawn(
    svc: Service,
    account: Account,
    env: dict[str, str],
    program: str,
    pass_fds: tuple[int, ...] = (),
    argv: tuple[str, ...] | None = None,
    gate: Gate | None = None,
    meanwhile: Callable[[int, str], None] | None = None,
    into: str = "",
) -> subprocess.Popen[bytes]:
    """Start the program detached: own session and process group, stdin from /dev/null, output
    to the log (its start mark first: logmark.py), no controlling terminal, no inherited
    descriptors beyond 0-2 and ``pass_fds``. ``nice`` and ``limits`` are applied by a tiny
    exec shim (an isolated interpreter started in "/", R-EXEC-1) before the user switch (so
    hard limits can be raised): preexec_fn is unsafe once threads exist. The working directory
    is entered after the user switch (R-EXEC-2). A ``gate`` holds the program until opened
    (GATE_SH); ``meanwhile(pid, born_in)`` runs while a gate forked here (child.py; born in
    the cgroup ``into`` if it can) goes on to its exec, never after Popen (the caller sees)."""
    argv = argv or svc.command
    _can_start(svc, program)
    out, err = open_output(svc, account)
    from servicectl.system.logmark import write_mark

    write_mark((out, err), svc.name)  # before the child exists: all it writes comes after
    cmd, exe, kwargs, environment = _command_line(svc, account, env, program, argv, gate)
    plain = exe == program  # the program itself, not a shell or the shim: entered by Popen
    try:
        from servicectl.system.rlimits import limits_problem

        problem = limits_problem(svc)
        if problem is not None:
            raise EnvironmentProblem(f"{svc.name}: not started: {problem} (in {svc.file})")
        from servicectl.system.child import forked_gate

        ends, popen_only = (gate, out, err), bool(kwargs or pass_fds or exe != GATE_SHELL)
        forked = forked_gate(cmd, environment, ends, svc.umask, popen_only, meanwhile, into)
        if forked is not None:  # a Child: what callers use of a Popen (child.py)
            return forked  # type: ignore[return-value]
        import subprocess

        return subprocess.Popen(
            cmd,
            executable=exe,
            stdin=gate.read_fd if gate is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=str(svc.working_directory) if plain else "/",
            env=environment,
            start_new_session=True,
            close_fds=True,
            pass_fds=pass_fds,
            umask=svc.umask,
            restore_signals=True,
            **kwargs,
        )
    except FileNotFoundError as exc:
        if exc.filename == str(svc.working_directory):
            raise EnvironmentProblem(
                f"{svc.name}: working directory {svc.working_directory} does not exist"
            ) from None
        raise NotInstalledError(
            f"{svc.name}: cannot execute {program}: {exc.strerror} "
            f"(a script whose interpreter is missing? check its #! line)"
        ) from None
    except PermissionError as exc:
        raise NotInstalledError(
            f"{svc.name}: cannot execute {program}: permission denied"
            + (f" for user {account.user}" if account.switch else "")
            + f" ({exc.filename or program})"
        ) from None
    except OSError as exc:
        raise ServicectlError(f"{svc.name}: cannot start {program}: {exc.strerror}") from None
    finally:
        os.close(out)
        if err != out:
            os.close(err)
        if gate is not None:
            os.close(gate.read_fd)
            gate.read_fd = -1


def expected_executables(program: str) -> set[str]:
    """Paths /proc/PID/exe may show for ``program``: itself, or its #! interpreter."""
    from servicectl.system.interpreter import shebang

    out = {os.path.realpath(program)}
    parts = shebang(program)
    if parts:
        interp = parts[0]
        if os.path.basename(interp) == "env" and len(parts) > 1:
            args = [p for p in parts[1:] if not p.startswith("-")]
            found = which(args[0], SERVICE_PATH) if args else None
            if found:
                out.add(os.path.realpath(found))
        else:
            out.add(os.path.realpath(interp))
    return out
