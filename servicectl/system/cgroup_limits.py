"""A service's cgroups and its resource limits: which cgroups it gets (its v2 cgroup, and the v1
ones its limits need), where each limit goes, and what the kernel counts there (memory in use,
OOM kills).

``memory_max``, ``pids_max`` and ``cpu_weight`` go through cgroup v2 controllers where
servicectl's subtree can have them (the controller is offered to its cgroup and either already
enabled below it or enableable: the cgroup holds no process, or is the hierarchy's root), and
otherwise through the v1 ``memory``, ``pids`` and ``cpu`` hierarchies of a hybrid host, in
cgroups made beneath the cgroup servicectl itself runs in there. v1 ``cpu.shares`` is
``cpu_weight * 1024 / 100``, as systemd maps CPUWeight=. A limit that cannot be applied is a
configuration error (exit 6) that names the key and the missing controller: never ignored.
"""

from __future__ import annotations

import os

from servicectl.errors import ConfigError
from servicectl.system import cgroup
from servicectl.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.definitions.schema import Service

# key -> (controller, v2 file, v1 file)
LIMITS = {
    "memory_max": ("memory", "memory.max", "memory.limit_in_bytes"),
    "pids_max": ("pids", "pids.max", "pids.max"),
    "cpu_weight": ("cpu", "cpu.weight", "cpu.shares"),
}


class Plan(NamedTuple):
    """A service's cgroups: ``v2`` its cgroup ("" when none can be written: ``why``), under
    ``top``; ``v1`` (controller, cgroup) pairs for the limits v2 cannot take; ``writes``
    (cgroup, file, value) the limits; ``memory_max`` in bytes (0: none)."""

    v2: str
    top: str
    why: str
    enable: frozenset[str]
    v1: tuple[tuple[str, str], ...]
    writes: tuple[tuple[str, str, str], ...]
    memory_max: int

    @property
    def all(self) -> tuple[str, ...]:
        """Every cgroup of the plan, v2 first."""
        return ((self.v2,) if self.v2 else ()) + tuple(path for _, path in self.v1)


def wanted(svc: Service) -> dict[str, int]:
    """The limits the definition sets."""
    return {key: value for key in LIMITS if (value := getattr(svc, key, None)) is not None}


def v2_offers(top: str, controller: str) -> bool:
    """Whether servicectl's cgroups under ``top`` can have ``controller``: offered to ``top``,
    and enabled for its children already, or enableable (``top`` is the hierarchy's root, which
    has no cgroup.events, or holds no process of its own)."""
    offered = (cgroup.read(os.path.join(top, "cgroup.controllers")) or "").split()
    if controller not in offered:
        return False
    enabled = (cgroup.read(os.path.join(top, "cgroup.subtree_control")) or "").split()
    if controller in enabled:
        return True
    return not os.path.exists(os.path.join(top, "cgroup.events")) or not cgroup.members(top)


def plan(svc: Service, run_dir: str) -> Plan:
    """Where ``svc``'s cgroups and limits go on this machine; a ConfigError (exit 6) naming the
    first key that cannot be applied and the missing controller. Reads, changes nothing."""
    found = cgroup.hierarchies()
    limits = wanted(svc)
    if found.why == cgroup.SYSTEMD_UNIT:  # the unit's MemoryMax=, TasksMax=, CPUWeight=
        return Plan("", "", found.why, frozenset(), (), (), limits.get("memory_max", 0))
    v2 = cgroup.leaf(found.top, run_dir, svc.name) if found.top else ""
    enable: set[str] = set()
    v1: dict[str, str] = {}
    writes: list[tuple[str, str, str]] = []
    for key, value in limits.items():
        controller, v2_file, v1_file = LIMITS[key]
        text = str(value)
        if v2 and v2_offers(found.top, controller):
            enable.add(controller)
            writes.append((v2, v2_file, text))
            continue
        top1 = found.v1.get(controller)
        if top1 is None:
            raise ConfigError(str(svc.file), key, _missing(controller, found))
        path = cgroup.leaf(top1, run_dir, svc.name)
        v1[controller] = path
        if key == "cpu_weight":
            text = str(max(2, value * 1024 // 100))
        writes.append((path, v1_file, text))
    return Plan(
        v2,
        found.top,
        found.why,
        frozenset(enable),
        tuple(sorted(v1.items())),
        tuple(writes),
        limits.get("memory_max", 0),
    )


def _missing(controller: str, found: cgroup.Hierarchies) -> str:
    if found.top:
        offered = (cgroup.read(os.path.join(found.top, "cgroup.controllers")) or "").split()
        if controller in offered:  # but servicectl's cgroup holds processes: cannot enable it
            v2 = f"{found.top} holds processes, so it cannot enable {controller} below it"
        else:
            shown = ", ".join(offered) or "none"
            v2 = f"the cgroup v2 hierarchy at {found.top} offers only {shown}"
    else:
        v2 = found.why.partition(": ")[2] or "no writable cgroup v2 hierarchy"
    return (
        f"cannot be applied on this machine: no cgroup {controller} controller: {v2}, and no "
        f"cgroup v1 {controller} hierarchy servicectl can write is mounted; remove the key, or "
        f"run servicectl where the {controller} controller is available"
    )


def make(p: Plan) -> None:
    """Make the plan's cgroups (fresh: counters at zero) and write its limits."""
    if p.v2:
        cgroup.make(p.v2, p.top)
        cgroup.enable(p.top, p.v2, set(p.enable))
    for _, path in p.v1:
        cgroup.make(path, os.path.dirname(os.path.dirname(os.path.dirname(path))))
    for path, name, value in p.writes:
        cgroup.set_value(path, name, value)


def v1_leaves(run_dir: str, name: str) -> tuple[str, ...]:
    """The v1 limit cgroups a service of ``run_dir`` may have on this machine."""
    tops = cgroup.hierarchies().v1
    return tuple(cgroup.leaf(top, run_dir, name) for _, top in sorted(tops.items()))


# ---------------------------------------------------------------------------------------------
# What the kernel counts


def memory_in_use(paths: tuple[str, ...]) -> int | None:
    """Bytes of memory charged to the service's cgroups (v2 memory.current, or v1
    memory.usage_in_bytes), all its processes together; None where no memory controller is."""
    for path in paths:
        for name in ("memory.current", "memory.usage_in_bytes"):
            text = cgroup.read(os.path.join(path, name))
            if text is not None and text.strip().isdigit():
                return int(text)
    return None


def oom_kills(paths: tuple[str, ...]) -> int:
    """How many of the service's processes the kernel killed for want of memory in its cgroup
    (v2 memory.events ``oom_kill``, v1 memory.oom_control ``oom_kill``)."""
    for path in paths:
        for name in ("memory.events", "memory.oom_control"):
            kills = _oom_kill(cgroup.read(os.path.join(path, name)))
            if kills:
                return kills
    return 0


def memory_seen(v2: str, v1: tuple[str, ...]) -> tuple[int | None, int]:
    """``memory_in_use`` and ``oom_kills`` together, for a status row, opening only the files
    that can be there: v2's memory.current and memory.events in the v2 cgroup (neither when it
    has no memory.current: the memory controller is not enabled there), v1's
    memory.usage_in_bytes and memory.oom_control in the v1 ones."""
    used: int | None = None
    kills = 0
    if v2:
        text = cgroup.read(os.path.join(v2, "memory.current"))
        if text is not None:
            used = int(text) if text.strip().isdigit() else None
            kills = _oom_kill(cgroup.read(os.path.join(v2, "memory.events")))
    for path in v1:
        if used is None:
            text = cgroup.read(os.path.join(path, "memory.usage_in_bytes"))
            if text is not None and text.strip().isdigit():
                used = int(text)
        if not kills:
            kills = _oom_kill(cgroup.read(os.path.join(path, "memory.oom_control")))
    return used, kills


def _oom_kill(text: str | None) -> int:
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit() and int(value) > 0:
            return int(value)
    return 0


def show_bytes(n: int) -> str:
    """64M, 1.5G, 512K, 100 (bytes), as memory_max is written."""
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f}{unit}" if value == int(value) else f"{value:.1f}{unit}"
    return str(n)
