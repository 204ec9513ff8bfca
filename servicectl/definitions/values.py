"""The values of a definition that are records of their own: a readiness or health probe, a
directory to make, the respawn limit (servicectl/definitions/schema.py declares the keys; it
re-exports these)."""

from __future__ import annotations

from servicectl.tuples import NamedTuple

TYPE_CHECKING = False


class Ready(NamedTuple):
    """A readiness probe: ``kind`` is one of READY_KINDS; ``target`` its argument."""

    kind: str
    target: str | tuple[str, ...] = ""
    timeout: float | None = None  # per-probe timeout for ``command``

    def describe(self) -> str:
        if self.kind == "notify":
            return "notify"
        target = " ".join(self.target) if isinstance(self.target, tuple) else self.target
        return f"{self.kind} {target}"


class Directory(NamedTuple):
    """A directory made before the config test and the start (``directories``): ``owner`` and
    ``group`` None mean the service's user and group."""

    path: str
    mode: int = 0o755
    owner: str | None = None
    group: str | None = None


class StartLimit(NamedTuple):
    """``start_limit``: more than ``burst`` respawns within ``interval`` seconds, and the
    supervisor gives up (0 s: no limit)."""

    burst: int = 5
    interval: float = 60.0


class Health(NamedTuple):
    """``health``: a probe in one of the forms of ``ready`` (tcp, unix, http, command), run
    every ``interval`` seconds once the service is ready; ``retries`` failures in a row (each
    probe allowed ``timeout`` seconds) and the supervisor restarts it."""

    kind: str
    target: str | tuple[str, ...] = ""
    interval: float = 10.0
    timeout: float = 5.0
    retries: int = 3

    def describe(self) -> str:
        target = " ".join(self.target) if isinstance(self.target, tuple) else self.target
        return f"{self.kind} {target}"
