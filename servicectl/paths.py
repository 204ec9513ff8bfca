"""Where services, PID files and logs live: flag, then SERVICECTL_* environment, then default.

Also creates those directories on demand with safe modes.
"""

from __future__ import annotations

import os
import stat

from servicectl.errors import EnvironmentProblem, PrivilegeError, ServicectlError
from servicectl.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _typeshed import StrPath  # str, or a path object: os functions take either

SYSTEM_SERVICES_DIR = "/etc/servicectl/services.d"


class Dirs(NamedTuple):
    """The three directories servicectl works with, absolute, and where each came from.
    Paths are ``str`` here and in the definitions (Service): the everyday commands do not
    import pathlib (with what it imports, 4-5 ms of a 30 ms ``status``)."""

    services: str
    run: str
    log: str
    run_given: bool = False  # given by flag or environment (init.d shims pass it on)
    log_given: bool = False


def resolve_dirs(
    services: str | os.PathLike[str] | None = None,
    run: str | os.PathLike[str] | None = None,
    log: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
    euid: int | None = None,
) -> Dirs:
    """Resolve the directories by flag, then SERVICECTL_* environment, then the defaults: as
    root /etc/servicectl/services.d, /run/servicectl, /var/log/servicectl; otherwise
    /etc/servicectl/services.d if it exists (else ./services.d), $XDG_RUNTIME_DIR/servicectl
    (else ~/.local/state/servicectl/run) and ~/.local/state/servicectl/log."""
    env = dict(os.environ) if environ is None else environ
    root = (os.geteuid() if euid is None else euid) == 0
    home = env.get("HOME") or os.path.expanduser("~")

    services_value = services or env.get("SERVICECTL_SERVICES_DIR")
    if services_value:
        services_dir = os.fspath(services_value)
    elif root or os.path.isdir(SYSTEM_SERVICES_DIR):
        services_dir = SYSTEM_SERVICES_DIR
    else:
        services_dir = "services.d"

    run_value = run or env.get("SERVICECTL_RUN_DIR")
    if run_value:
        run_dir = os.fspath(run_value)
    elif root:
        run_dir = "/run/servicectl"
    elif env.get("XDG_RUNTIME_DIR"):
        run_dir = os.path.join(env["XDG_RUNTIME_DIR"], "servicectl")
    else:
        run_dir = os.path.join(home, ".local/state/servicectl/run")

    log_value = log or env.get("SERVICECTL_LOG_DIR")
    if log_value:
        log_dir = os.fspath(log_value)
    elif root:
        log_dir = "/var/log/servicectl"
    else:
        log_dir = os.path.join(home, ".local/state/servicectl/log")

    return Dirs(
        services=os.path.abspath(services_dir),
        run=os.path.abspath(run_dir),
        log=os.path.abspath(log_dir),
        run_given=bool(run_value),
        log_given=bool(log_value),
    )


def pure(path: str) -> str:
    """``path`` spelled as PurePosixPath spells it (what the definitions held before they held
    ``str``): no empty or ``.`` components, no trailing slash; ``..`` is kept (the kernel
    resolves it, after symlinks)."""
    parts = [p for p in path.split("/") if p and p != "."]
    if path.startswith("//") and not path.startswith("///"):
        head = "//"  # POSIX leaves the meaning of exactly two leading slashes open
    else:
        head = "/" if path.startswith("/") else ""
    return head + "/".join(parts) if head or parts else "."


def ensure_dir(path: StrPath, mode: int, what: str) -> StrPath:
    """Create ``path`` (and parents) if missing; explain a failure in terms of ``what``."""
    try:
        os.makedirs(path, mode=mode, exist_ok=True)
    except PermissionError as exc:
        raise PrivilegeError(
            f"cannot create the {what} {path}: permission denied "
            f"(run as root, or choose another directory with the flag or environment variable)"
        ) from exc
    except FileExistsError:
        pass  # something that is not a directory is in the way: reported below
    except NotADirectoryError as exc:
        raise EnvironmentProblem(
            f"cannot create the {what} {path}: {blocking_ancestor(path)} is not a directory"
        ) from exc
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create the {what} {path}: {exc.strerror}") from exc
    if not os.path.isdir(path):
        raise EnvironmentProblem(
            f"the {what} {path} exists but is not a directory (remove it, or choose another "
            f"directory with the flag or environment variable)"
        )
    return path


def blocking_ancestor(path: StrPath) -> str:
    """The first existing component of ``path`` that is not a directory (``path`` if none)."""
    for parent in reversed(ancestors(os.fspath(path))):
        if os.path.exists(parent) and not os.path.isdir(parent):
            return parent
    return os.fspath(path)


def ancestors(path: str) -> list[str]:
    """The ancestors of ``path``, nearest first, as PurePath.parents gives them."""
    out: list[str] = []
    path = os.path.normpath(path)
    while True:
        parent = os.path.dirname(path) or "."
        if parent == path or (path == "." and parent == "."):
            return out
        out.append(parent)
        path = parent


def run_dir_problem(path: StrPath) -> ServicectlError | None:
    """Why the run directory cannot be used (an error to raise or report), or None if it is fine
    or does not exist yet. Nothing is created here.

    PID files and state in a directory another user can write are not evidence of anything
    (that user could have written them, naming any process), so servicectl will not act on
    them (exit 4).
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return EnvironmentProblem(
            f"the run directory {path} cannot exist: {blocking_ancestor(path)} is not a directory"
        )
    except OSError as exc:
        return PrivilegeError(f"the run directory {path} cannot be examined: {exc.strerror}")
    return _stat_problem(path, st)


def _stat_problem(path: StrPath, st: os.stat_result) -> ServicectlError | None:
    """``run_dir_problem`` of the run directory whose lstat is ``st``."""
    euid = os.geteuid()
    if stat.S_ISLNK(st.st_mode):
        return PrivilegeError(
            f"the run directory {path} is a symlink (to {os.readlink(path)}); servicectl does "
            f"not follow symlinks there: give the real directory with --run-dir"
        )
    if not stat.S_ISDIR(st.st_mode):
        return EnvironmentProblem(
            f"the run directory {path} exists but is not a directory (remove it, or choose "
            f"another with --run-dir)"
        )
    if st.st_uid not in (euid, 0):
        return PrivilegeError(
            f"the run directory {path} belongs to another user (owner uid {st.st_uid}, mode "
            f"{st.st_mode & 0o7777:04o}); PID files there cannot be trusted. "
            f"Fix it with: chown {euid} {path} && chmod go-w {path}"
        )
    if st.st_mode & 0o022:
        return PrivilegeError(
            f"the run directory {path} can be written by other users (owner uid {st.st_uid}, "
            f"mode {st.st_mode & 0o7777:04o}); PID files there cannot be trusted. "
            f"Fix it with: chmod go-w {path}"
        )
    return None


def ensure_run_dir(path: StrPath) -> StrPath:
    """Create the run directory (0755) and refuse one that is unusable or others could write.

    Checked before creating it too, so that nothing is ever created through a symlink.
    """
    try:  # a directory that is there is examined once (a fleet's every action ensures it)
        problem = _stat_problem(path, os.lstat(path))
    except OSError:
        problem = run_dir_problem(path)
        if problem is None:
            ensure_dir(path, 0o755, "run directory")
            problem = run_dir_problem(path)
    if problem is not None:
        raise problem
    return path


# ---------------------------------------------------------------------------------------------
# Trust: what root may act on (docs/security.md, R-DEF and R-ENV-1)


def writable_by_root_alone(st: os.stat_result) -> bool:
    """Whether only root (or servicectl's own user) can change what this stat describes: owned
    by one of them, and not writable by group or others. A sticky world-writable directory
    (/tmp) is not: others can create entries in it."""
    return st.st_uid in (0, os.geteuid()) and not st.st_mode & 0o022


def untrusted_problem(path: StrPath, what: str, st: os.stat_result | None = None) -> str | None:
    """Why root must not act on ``path`` (a definition file, a drop-in file or directory, an
    env_file), with the command that fixes it; None if only root can write it, or if servicectl
    does not run as root (a user's own services run with that user's rights).

    ``st`` is the stat of what was actually opened (fstat), when the caller has it."""
    if os.geteuid() != 0:
        return None
    if st is None:
        try:
            st = os.stat(path)
        except OSError:
            return None  # missing or unreadable: the caller reports that in its own terms
    if writable_by_root_alone(st):
        return None
    if st.st_uid not in (0, os.geteuid()):
        fix, who = f"chown root {path} && chmod go-w {path}", f"belongs to uid {st.st_uid}"
    else:
        fix, who = f"chmod go-w {path}", "can be written by other users"
    return (
        f"the {what} {path} {who} (mode {stat.S_IMODE(st.st_mode):04o}); as root, servicectl "
        f"does not act on what another user could have written. Fix it with: {fix}"
    )


def untrusted_tree_problem(path: StrPath, what: str) -> PrivilegeError | None:
    """R-DEF-1: as root, ``path`` (a directory, symlinks resolved) must be writable by root
    alone, and so must each of its ancestors unless that ancestor is sticky (/tmp): whoever can
    rename or replace it chooses what root runs. None if fine, missing, or not root."""
    if os.geteuid() != 0:
        return None
    link = _planted_link(str(path))
    if link is not None:
        return PrivilegeError(
            f"the {what} {path} is reached through the symlink {link}, which another user "
            f"could have made or can replace; as root, servicectl does not act on it. Give "
            f"the real directory ({os.path.realpath(path)}), or make that symlink root's in "
            f"a directory only root can write"
        )
    real = os.path.realpath(path)
    problem = untrusted_problem(real, what)
    if problem is not None:
        return PrivilegeError(problem)
    for parent in ancestors(real):
        try:
            st = os.stat(parent)
        except OSError:
            return None
        sticky = st.st_mode & stat.S_ISVTX and st.st_uid in (0, os.geteuid())
        if writable_by_root_alone(st) or sticky:
            continue
        return PrivilegeError(
            f"the {what} {path} lies in {parent}, which "
            + (
                f"belongs to uid {st.st_uid}"
                if st.st_uid not in (0, os.geteuid())
                else "other users can write"
            )
            + f" (mode {stat.S_IMODE(st.st_mode):04o}): they could replace it. As root, "
            f"servicectl does not act on it. Fix it with: chown root {parent} && chmod go-w "
            f"{parent} (or move the {what})"
        )
    return None


def _planted_link(path: str) -> str | None:
    """R-DEF-1: the first symlink met on the way to ``path`` (as given) that another user
    could have made or can replace: one in a directory others can write, unless that directory
    is sticky and the link is root's. None if there is none (or the path is missing)."""
    todo = [p for p in reversed(os.path.abspath(path).split("/")) if p]
    where, links = "/", 0
    while todo and links <= 40:  # a symlink loop ends
        here = os.path.join(where, todo.pop())
        try:
            st = os.lstat(here)
            holder = os.stat(where)
            target = os.readlink(here) if stat.S_ISLNK(st.st_mode) else None
        except OSError:
            return None
        if target is None:
            where = os.path.normpath(here)  # where is real: ".." is its physical parent
            continue
        sticky = holder.st_mode & stat.S_ISVTX and holder.st_uid in (0, os.geteuid())
        if not writable_by_root_alone(holder) and not (sticky and st.st_uid in (0, os.geteuid())):
            return here
        todo += [p for p in reversed(target.split("/")) if p]
        where, links = ("/" if target.startswith("/") else where), links + 1
    return None
