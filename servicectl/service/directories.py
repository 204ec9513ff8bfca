"""A service's ``directories``: made before the config test and the start, parents walked
under R-PATH-1 (missing ones made 0755 and root's), the directory itself never followed,
changed through its descriptor (docs/security.md R-DIR).
"""

from __future__ import annotations

import errno
import os
import stat

from servicectl.errors import Exit, PrivilegeError, ServicectlError
from servicectl.files import safe
from servicectl.paths import writable_by_root_alone

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.definitions.schema import Directory, Service
    from servicectl.system.spawn import (
        Account,
    )

O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


# ---------------------------------------------------------------------------------------------
# Directories


def make_directories(svc: Service, account: Account) -> None:
    """Make each of ``directories``, then chown and chmod it (R-DIR-1..4)."""
    for d in svc.directories:
        uid, gid = _owner(svc, d, account)
        try:
            _make(d, uid, gid)
        except safe.Refused as exc:
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
    parent = _open_parent(os.path.dirname(d.path))
    try:
        name = os.path.basename(d.path)
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
            if not created:
                _check_handover(d, st, uid, gid)
            if (st.st_uid, st.st_gid) != (uid, gid):
                os.fchown(fd, uid, gid)
            if stat.S_IMODE(st.st_mode) != d.mode or (st.st_uid, st.st_gid) != (uid, gid):
                os.fchmod(fd, d.mode)  # after fchown, which may clear set-id bits
        finally:
            os.close(fd)
    finally:
        os.close(parent)


def _not_a_directory(path: str, parent: int) -> ServicectlError:
    """R-DIR-2: what is at ``path`` is not a directory: said, never followed nor changed."""
    try:
        st = os.stat(os.path.basename(path), dir_fd=parent, follow_symlinks=False)
    except OSError:
        return ServicectlError(f"{path} is not a directory", exit_code=Exit.NOT_CONFIGURED)
    what = safe.describe_kind(st)
    if stat.S_ISLNK(st.st_mode):
        try:
            what += f" (to {os.readlink(os.path.basename(path), dir_fd=parent)})"
        except OSError:
            pass
    return ServicectlError(
        f"{path} is {what}, not a directory; servicectl neither follows nor changes it "
        f"(remove it, or choose another path)",
        exit_code=Exit.NOT_CONFIGURED,
    )


def _check_takeover(path: str, st: os.stat_result, uid: int) -> None:
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


def _open_parent(path: str) -> int:
    """An O_PATH descriptor of ``path``, walked under R-PATH-1; missing directories are made
    0755 and root's (whatever servicectl's umask), never through a symlink."""
    try:
        return safe.open_dir(path)
    except FileNotFoundError:
        if os.path.dirname(path) == path:
            raise
    above = _open_parent(os.path.dirname(path))
    try:
        if _mkdir(above, os.path.basename(path), 0o700):
            fd = os.open(os.path.basename(path), O_DIR, dir_fd=above)
            try:
                os.fchown(fd, os.geteuid(), os.getegid())
                os.fchmod(fd, 0o755)
            finally:
                os.close(fd)
        try:
            return os.open(os.path.basename(path), safe.O_DIR | os.O_NOFOLLOW, dir_fd=above)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
    finally:
        os.close(above)


STATE_TREES = ("/var/lib", "/run", "/var/run", "/var/log", "/var/cache")


def _check_handover(d: Directory, st: os.stat_result, uid: int, gid: int) -> None:
    """R-DIR-6: an existing directory outside the state, runtime, log and cache trees (say
    /etc/chrony) changes owner only if the entry names it (``owner:``; ``group:`` for the
    group alone): a configuration directory is never handed to a daemon by default."""
    if str(d.path).startswith(tuple(tree + "/" for tree in STATE_TREES)):
        return
    new_owner = st.st_uid != uid and d.owner is None
    new_group = st.st_gid != gid and d.owner is None and d.group is None
    if new_owner or new_group:
        raise ServicectlError(
            f"the directory {d.path} exists (owner uid {st.st_uid}, gid {st.st_gid}) outside "
            f"{', '.join(STATE_TREES)}: servicectl does not hand it to uid {uid} (gid {gid}) "
            f"unless the entry names its owner (owner: ...) (docs/security.md R-DIR-6)",
            exit_code=Exit.NOT_CONFIGURED,
        )
