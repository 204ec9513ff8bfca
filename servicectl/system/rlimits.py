"""The resource limits (``limits``: setrlimit before exec) a definition asks for: whether this
servicectl may set them here (a hard limit above its own needs CAP_SYS_RESOURCE, which root in
a container often lacks), said before anything is spawned.
"""

from __future__ import annotations

from servicectl.definitions.schema import LIMIT_NAMES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.definitions.schema import Service


CAP_SYS_RESOURCE = 24


def limits_problem(svc: Service) -> str | None:
    """Why ``limits`` cannot be set here: a limit above the hard limit servicectl has, which
    only a process with CAP_SYS_RESOURCE may raise (root in a container often may not)."""
    if not svc.limits or _has_capability(CAP_SYS_RESOURCE):
        return None
    import resource

    for name, soft, hard in svc.limits:
        current = resource.getrlimit(getattr(resource, LIMIT_NAMES[name]))[1]
        if current == resource.RLIM_INFINITY:
            continue
        wanted = [v for v in (soft, hard) if v < 0 or v > current]
        if wanted:
            shown = "unlimited" if wanted[0] < 0 else str(wanted[0])
            return (
                f"cannot set limit {name} to {shown}: the hard limit here is {current}, and "
                "servicectl may not raise it (no CAP_SYS_RESOURCE: a container?); lower "
                f"limits: {name}, or raise the hard limit of what starts servicectl"
            )
    return None


def _has_capability(bit: int) -> bool:
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except (OSError, ValueError, IndexError):
        pass
    return True  # cannot tell: let setrlimit say
