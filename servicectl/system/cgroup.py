"""cgroups: where servicectl may make them, a service's cgroup, and what the kernel says of it.

Tracking is cgroup v2: a pure-v2 ``/sys/fs/cgroup``, the unified hierarchy of a hybrid host
(``/sys/fs/cgroup/unified``), or a delegated subtree (the cgroup servicectl itself runs in,
when it may write there: a container's own cgroup namespace, a user's delegated slice). Every
service gets ``BASE/servicectl/<run id>/<NAME>.service``; the run id is 8 hex digits of the run
directory's path, so two run directories never share a cgroup. Its short commands (config
test, readiness command, actions) get ``BASE/servicectl/checks/<NAME>.<pid>-<n>``. Each is
made by root, mode 0755, its files root's: the service's user can neither move a process nor
make a sub-cgroup (docs/security.md R-CG-1).

Limits go through v2 controllers where servicectl's subtree can have them, else through the
v1 ``memory``, ``pids`` and ``cpu`` hierarchies of a hybrid host (limits.py). Nothing here
decides what to do with a service: it makes, joins, reads, kills and removes what it is asked.

``SERVICECTL_CGROUP_V2`` (``none``, or a cgroup v2 directory to use as BASE) and
``SERVICECTL_CGROUP_V1`` (``none``) exist for the tests alone (docs/security.md R-CG-3).
``SERVICECTL_TRACKED_BY=systemd`` is set by the units ``servicectl unit`` writes: the unit's
cgroup holds the service, systemd applies its limits, and servicectl makes no cgroup.
"""

from __future__ import annotations

import errno
import os
import time

from servicectl.system.turns import paused
from servicectl.tuples import NamedTuple

ENV_V2 = "SERVICECTL_CGROUP_V2"
ENV_V1 = "SERVICECTL_CGROUP_V1"
# Set by the systemd units servicectl generates: the unit's own cgroup holds the service, and
# systemd tracks it and applies its limits (MemoryMax=...); servicectl makes no cgroup then.
TRACKED_BY = "SERVICECTL_TRACKED_BY"
SYSTEMD_UNIT = "the cgroup of its systemd unit (systemd tracks it, and applies its limits)"
TOP = "servicectl"
SUFFIX = ".service"
CHECKS = "checks"
KILL_ROUNDS = 50  # where cgroup.kill is missing: how many sweeps of SIGKILL to each member
NO_CGROUP = "process group and session (no writable cgroup)"


class Mount(NamedTuple):
    point: str  # where it is mounted
    root: str  # the cgroup (of this namespace) at the mount point
    controllers: frozenset[str]  # v1: the controllers of the hierarchy; v2: empty


class Hierarchies(NamedTuple):
    """What this machine offers servicectl: the v2 directory its cgroups go under (``top``:
    the hierarchy's root, or the delegated cgroup servicectl runs in; "" when none, and
    ``why``), for each v1 controller the directory its limit cgroups go under, and every
    directory a servicectl of this machine may have put them under (``known``: whether this
    one may write there or not, for reading records)."""

    top: str
    why: str
    v1: dict[str, str]
    known: frozenset[str] = frozenset()


def _unescape(field: str) -> str:
    """A mountinfo field with its octal escapes (``\\040``) decoded."""
    if "\\" not in field:
        return field
    return field.encode().decode("unicode_escape").encode("latin-1").decode(errors="replace")


def _mounts() -> tuple[list[Mount], list[Mount]]:
    """The cgroup2 mounts and the cgroup v1 mounts of this mount namespace."""
    v2: list[Mount] = []
    v1: list[Mount] = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return v2, v1
    for line in lines:
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not sep or len(fields) < 5 or len(rest) < 3:
            continue
        root, point = _unescape(fields[3]), _unescape(fields[4])
        if rest[0] == "cgroup2":
            v2.append(Mount(point, root, frozenset()))
        elif rest[0] == "cgroup":
            opts = set(rest[2].split(","))
            v1.append(Mount(point, root, frozenset(opts & {"memory", "pids", "cpu"})))
    order = {"/sys/fs/cgroup": 0, "/sys/fs/cgroup/unified": 1}
    v2.sort(key=lambda m: order.get(m.point, 2))
    return v2, v1


def _own() -> dict[str, str]:
    """The cgroup this process is in, per hierarchy: "" for v2, each controller for v1."""
    out: dict[str, str] = {}
    try:
        with open("/proc/self/cgroup", encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                out[controller] = parts[2]
    return out


def _in_mount(mount: Mount, cgroup: str | None) -> str | None:
    """The directory of ``cgroup`` in ``mount``, or None when the mount does not show it."""
    if cgroup is None:
        return None
    root = mount.root.rstrip("/")
    if cgroup != root and not cgroup.startswith(root + "/"):
        return None
    return (mount.point.rstrip("/") + cgroup[len(root) :]).rstrip("/") or "/"


def _writable(directory: str) -> bool:
    procs = os.path.join(directory, "cgroup.procs")
    return os.access(directory, os.W_OK) and os.access(procs, os.W_OK)


_FOUND: list[Hierarchies] = []  # memos without functools: status does not import it
_RUN_IDS: dict[str, str] = {}


def hierarchies() -> Hierarchies:
    """Where servicectl's cgroups go on this machine (read once per process)."""
    if not _FOUND:
        _FOUND.append(_hierarchies())
    return _FOUND[0]


def _hierarchies() -> Hierarchies:
    v2, v1 = _mounts()
    own = _own()
    top, why = _v2_top(v2, own.get(""))
    tops = _v1_tops(v1, own)
    known: set[str | None] = {top, *tops.values()}
    for mount in v2:
        known.update((mount.point, _in_mount(mount, own.get(""))))
    for mount in v1:
        known.update(_in_mount(mount, own.get(c)) for c in mount.controllers)
    return Hierarchies(top, why, tops, frozenset(k for k in known if k))


def _v2_top(mounts: list[Mount], own: str | None) -> tuple[str, str]:
    if os.environ.get(TRACKED_BY) == "systemd":
        return "", SYSTEMD_UNIT
    forced = os.environ.get(ENV_V2, "")
    if forced == "none":
        return "", f"{NO_CGROUP}: cgroups are turned off for the tests ({ENV_V2}=none)"
    if forced:
        return (
            (forced, "")
            if os.path.isfile(os.path.join(forced, "cgroup.procs"))
            else (
                "",
                f"{NO_CGROUP}: {ENV_V2}={forced} is no cgroup v2 directory",
            )
        )
    if not mounts:
        return "", f"{NO_CGROUP}: no cgroup v2 hierarchy is mounted"
    for mount in mounts:
        if _writable(mount.point):
            return mount.point, ""
        mine = _in_mount(mount, own)
        if mine is not None and _writable(mine):
            return mine, ""  # delegated to servicectl's user, or a container's own subtree
    return "", f"{NO_CGROUP}: servicectl may not write to {mounts[0].point}"


def _v1_tops(mounts: list[Mount], own: dict[str, str]) -> dict[str, str]:
    """For each of memory, pids and cpu mounted as v1: the cgroup servicectl is in there, where
    its limit cgroups go (never out of a cgroup the machine put servicectl in)."""
    if os.environ.get(ENV_V1) == "none" or os.environ.get(TRACKED_BY) == "systemd":
        return {}
    out: dict[str, str] = {}
    for mount in mounts:
        for controller in mount.controllers:
            mine = _in_mount(mount, own.get(controller))
            if controller not in out and mine is not None and _writable(mine):
                out[controller] = mine
    return out


# ---------------------------------------------------------------------------------------------
# Paths


def run_id(run_dir: str) -> str:
    """8 hex digits of the run directory's path: its cgroups are apart from another's."""
    found = _RUN_IDS.get(run_dir)
    if found is None:
        found = _RUN_IDS[run_dir] = _run_id(run_dir)
    return found


def _run_id(run_dir: str) -> str:
    from servicectl.digests import short

    return short(os.path.realpath(run_dir).encode())


def leaf(top: str, run_dir: str, name: str) -> str:
    """The cgroup of service ``name`` of ``run_dir`` under ``top``."""
    return os.path.join(top, TOP, run_id(run_dir), name + SUFFIX)


def service_path(run_dir: str, name: str) -> str:
    """The v2 cgroup of the service on this machine ("" when there is no writable v2)."""
    top = hierarchies().top
    return leaf(top, run_dir, name) if top else ""


def trusted(path: str, run_dir: str, name: str) -> bool:
    """Whether a recorded cgroup path can be the service's (docs/security.md R-CG-2): exactly
    ``T/servicectl/<run id>/<NAME>.service`` where T is a cgroup mount point of this machine
    or the cgroup servicectl runs in there (``known``): no ``..``, and no symlink (a cgroup
    file system cannot hold one). A record naming any other cgroup is never used."""
    tail = os.path.join(TOP, run_id(run_dir), name + SUFFIX)
    if not path.endswith("/" + tail):
        return False
    return path[: -len(tail) - 1] in hierarchies().known


# ---------------------------------------------------------------------------------------------
# Making, joining, reading


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def read(path: str) -> str | None:
    """A cgroup file's text; None if it is missing (the cgroup, or a controller, is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        return os.read(fd, 65536).decode(errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def make(path: str, stop_at: str = "") -> bool:
    """Make the cgroup ``path`` and the missing ones above it (below ``stop_at``), each 0755
    and root's (R-CG-1). True if it was made now, False if it was there."""
    for _ in range(5):  # a stop may remove an empty parent meanwhile: make it again
        try:
            os.mkdir(path, 0o755)
            return True
        except FileExistsError:
            if not os.path.isdir(path) or os.path.islink(path):
                raise
            return False
        except FileNotFoundError:
            parent = os.path.dirname(path)
            if parent in (path, stop_at) or not parent.startswith(stop_at):
                raise
            make(parent, stop_at)
    raise OSError(errno.EBUSY, "cgroup removed while it was made", path)


def enable(top: str, path: str, controllers: set[str]) -> None:
    """Enable ``controllers`` for the children of every cgroup from ``top`` down to the parent
    of ``path`` (v2: a controller reaches a cgroup only through its parents' subtree_control)."""
    if not controllers:
        return
    chain = [top]
    rel = os.path.relpath(os.path.dirname(path), top)
    for part in [] if rel == "." else rel.split("/"):
        chain.append(os.path.join(chain[-1], part))
    for directory in chain:
        have = set((read(os.path.join(directory, "cgroup.subtree_control")) or "").split())
        missing = controllers - have
        if missing:
            text = " ".join("+" + c for c in sorted(missing))
            _write(os.path.join(directory, "cgroup.subtree_control"), text)


def join(path: str, pid: int) -> None:
    """Move process ``pid`` (a child held at its gate: nothing of the program has run) into
    the cgroup ``path``."""
    _write(os.path.join(path, "cgroup.procs"), str(pid))


def set_value(path: str, key: str, value: str) -> None:
    _write(os.path.join(path, key), value)


def members(path: str) -> list[int]:
    """The PIDs of the processes in the cgroup (none if it is gone)."""
    text = read(os.path.join(path, "cgroup.procs")) or ""
    return sorted({int(p) for p in text.split() if p.isdigit()})


def populated(path: str) -> bool:
    """Whether any process is in the cgroup (v2 cgroup.events; v1: cgroup.procs)."""
    events = read(os.path.join(path, "cgroup.events"))
    if events is None:
        return bool(members(path))
    return "populated 1" in events


def where(pid: int) -> str | None:
    """The v2 cgroup of process ``pid`` as /proc/PID/cgroup shows it (None: unknown)."""
    text = read(f"/proc/{pid}/cgroup") or ""
    return next((line[3:] for line in text.splitlines() if line.startswith("0::")), None)


# ---------------------------------------------------------------------------------------------
# Ending and removing


def kill(path: str) -> list[int]:
    """SIGKILL every process in the cgroup (cgroup.kill; where that file is missing, each
    member through a pidfd, frozen first where cgroup.freeze exists); the PIDs it held."""
    pids = members(path)
    if not pids:
        return []
    try:
        set_value(path, "cgroup.kill", "1")
        return pids
    except OSError:  # no cgroup.kill (v1, or a kernel before 5.14): one by one
        pass
    frozen = os.path.isfile(os.path.join(path, "cgroup.freeze"))
    if frozen:
        set_value(path, "cgroup.freeze", "1")
    try:
        for _ in range(KILL_ROUNDS):
            left = members(path)
            if not left:
                break
            for pid in left:
                _kill_member(path, pid)
            if not frozen:
                time.sleep(0.001)
    finally:
        if frozen:
            try:
                set_value(path, "cgroup.freeze", "0")
            except OSError:
                pass
    return pids


def _kill_member(path: str, pid: int) -> None:
    """SIGKILL ``pid`` only if, with a pidfd held on it, it is still listed in the cgroup: a
    PID reused meanwhile by a process outside is never hit."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        if pid in members(path):
            import signal

            signal.pidfd_send_signal(fd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(fd)


def wait_empty(path: str, timeout: float) -> bool:
    """Wait until the cgroup holds no process (v2: poll() on cgroup.events, woken by the kernel
    when ``populated`` changes; v1: short backoff on cgroup.procs); whether it is empty."""
    deadline = time.monotonic() + timeout
    try:
        fd = os.open(os.path.join(path, "cgroup.events"), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return _wait_members(path, deadline)
    try:
        poller = None  # made for the first wait: an empty cgroup needs none (nor select)
        while True:
            if b"populated 0" in os.pread(fd, 4096, 0):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if poller is None:
                import select

                poller = select.poll()
                poller.register(fd, select.POLLPRI | select.POLLERR)
            with paused():  # a fleet's worker lets another act meanwhile (turns.py)
                poller.poll(max(1, int(min(remaining, 0.5) * 1000)))
    except OSError:
        return not populated(path)
    finally:
        os.close(fd)


def _wait_members(path: str, deadline: float) -> bool:
    delay = 0.001
    while members(path):
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True


def remove(path: str, up_to: str = "") -> bool:
    """Remove the empty cgroup ``path`` (gone already counts) with the empty cgroups a root
    service made beneath it, then its parents up to, not including, ``up_to`` as long as they
    are empty; whether ``path`` is gone."""
    try:
        try:
            os.rmdir(path)
        except OSError as exc:
            if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                raise
            below = [os.path.join(top, d) for top, dirs, _ in os.walk(path) for d in dirs]
            for directory in sorted(below, key=len, reverse=True):
                os.rmdir(directory)
            os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    parent = os.path.dirname(path)
    while up_to and parent.startswith(up_to.rstrip("/") + "/") and parent != up_to:
        try:
            os.rmdir(parent)
        except OSError:
            break
        parent = os.path.dirname(parent)
    return True
