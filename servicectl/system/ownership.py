"""Whether what answered a readiness probe is the service's own (docs/security.md R-READY-1).

A tcp, http or unix probe connects to whoever holds the address: when the service's own bind
failed (EADDRINUSE) another program answers it, and the service would be "started" while it
dies. So after a probe connects, the listening socket that answers the address is looked up in
the kernel's tables (/proc/net/tcp, tcp6, unix) and its inode in the descriptors of the
service's processes (tree.service_pids). Where this cannot be told (the service in another
network namespace, /proc unreadable, a name that does not match), the probe counts and the
verdict says why it could not be checked.

System layer: imports procnet and tree only.
"""

from __future__ import annotations

import ipaddress
import os

from servicectl.system import procnet, tree
from servicectl.tuples import NamedTuple

BUDGET = 2.0  # seconds one check may spend reading /proc


class Verdict(NamedTuple):
    """``owned``: True (the service's own socket answered), False (another program's), or
    None (cannot tell); ``why`` says so for people."""

    owned: bool | None
    why: str = ""


def service_inodes(pid: int, pgid: int, sid: int, deadline: float) -> set[int] | None:
    """The socket inodes the service's processes hold, or None if one of them cannot be
    looked at (another user's process, for a servicectl that is not root)."""
    out: set[int] = set()
    pids = tree.service_pids(pid, pgid, sid, deadline)
    if pids is None:
        return None  # /proc not read whole in time: a process of the service may be missing
    for p in pids:
        try:
            out |= procnet.socket_inodes(p, deadline)
        except PermissionError:
            return None
        except OSError:
            continue  # gone meanwhile
    return out


def inet(peer: tuple[str, int], pid: int, pgid: int, sid: int, deadline: float) -> Verdict:
    """The verdict on a TCP connection to ``peer`` (ip, port) as the probe made it."""
    ip, port = peer[0], int(peer[1])
    where = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
    if procnet.same_network(pid) is not True:
        return Verdict(None, f"the service is in another network namespace: {where} not checked")
    inodes = service_inodes(pid, pgid, sid, deadline)
    if inodes is None:
        return Verdict(None, f"the service's processes cannot all be read: {where} not checked")
    answering = _answering(ip, port, deadline)
    if answering is None:
        return Verdict(None, f"/proc/net/tcp cannot be read: {where} not checked")
    if not answering:
        return Verdict(None, f"no listening socket on this machine has {where}: not checked")
    if all(s.inode in inodes for s in answering):
        return Verdict(True)
    return Verdict(False, f"{where} is answered by a socket none of the service's processes holds")


def _answering(ip: str, port: int, deadline: float) -> list[procnet.Socket] | None:
    """The listening sockets that answer a connection to ``ip``:``port``, as the kernel picks
    them: bound to that very address first, then to the IPv4 wildcard, then to ``::``."""
    suffix = f":{port}"
    found: list[procnet.Socket] = []
    for kind in ("tcp", "tcp6"):
        try:
            table, _ = procnet.read_table(
                kind, None, lambda s: s.listening and s.address.endswith(suffix), deadline
            )
        except OSError:
            return None
        found += table
    target = ipaddress.ip_address(ip)
    mapped = getattr(target, "ipv4_mapped", None) or target
    tiers: list[list[procnet.Socket]] = [[], [], []]
    for s in found:
        host = ipaddress.ip_address(s.address[: -len(suffix)].strip("[]"))
        host = getattr(host, "ipv4_mapped", None) or host
        if host == mapped:
            tiers[0].append(s)
        elif host.is_unspecified and host.version == mapped.version:
            tiers[1].append(s)
        elif host.is_unspecified and host.version == 6:  # [::] takes IPv4 unless IPv6-only
            tiers[2].append(s)
    return next((tier for tier in tiers if tier), [])


def unix(path: str, pid: int, pgid: int, sid: int, deadline: float) -> Verdict:
    """The verdict on a connection to the unix socket at ``path``."""
    try:
        target = os.stat(path)
    except OSError as exc:
        return Verdict(None, f"{path} cannot be looked at ({exc.strerror}): not checked")
    inodes = service_inodes(pid, pgid, sid, deadline)
    if inodes is None:
        return Verdict(None, f"the service's processes cannot all be read: {path} not checked")
    try:
        table, whole = procnet.read_table(
            "unix",
            None,
            lambda s: s.listening and (s.inode in inodes or s.address == path),
            deadline,
        )
    except OSError as exc:
        return Verdict(None, f"/proc/net/unix cannot be read ({exc.strerror}): not checked")
    key = (target.st_dev, target.st_ino)
    matching = [
        s
        for s in table
        if not s.forged and s.address.startswith("/") and _same_file(s.address, key)
    ]  # a made-up line, an abstract or a relative name says nothing
    if any(s.inode not in inodes for s in matching):
        return Verdict(
            False, f"{path} is answered by a socket none of the service's processes hold"
        )
    if matching and whole:
        return Verdict(True)
    return Verdict(None, f"the socket at {path} is not found among the service's: not checked")


def _same_file(path: str, key: tuple[int, int]) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == key
