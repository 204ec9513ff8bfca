"""servicectl's own actions, told to the system log: ``web: started (pid 812) by uid 0``.

Datagrams to /dev/log (ident ``servicectl``, facility daemon), as syslog(3) sends them, but
never blocking and never failing: where /dev/log is missing, refuses, or is full (a stalled
syslog daemon), the line is dropped and the action goes on. The ``syslog`` module is not used:
it blocks when the log daemon does. ``SERVICECTL_SYSLOG_SOCKET`` replaces the path, for tests
only (empty: no syslog at all).
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.service.outcome import Outcome

SOCKET = "/dev/log"
OVERRIDE = "SERVICECTL_SYSLOG_SOCKET"
DAEMON = 3  # the facility
ERR, WARNING, NOTICE, INFO = 3, 4, 5, 6  # severities
MAX_BYTES = 2048  # a datagram syslog daemons take whole
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def who() -> str:
    """Who acts: ``uid 0``, and under sudo the user behind it (``uid 0 (sudo from uid 1000)``)."""
    uid = os.getuid()
    sudo = os.environ.get("SUDO_UID", "")
    if uid == 0 and sudo.isdigit() and sudo != "0":
        return f"uid 0 (sudo from uid {sudo})"
    return f"uid {uid}"


def note(text: str, severity: int = NOTICE) -> None:
    """Send one line to the system log, or drop it; never raises, never blocks."""
    path = os.environ.get(OVERRIDE, SOCKET)
    if not path or not _is_socket(path):
        return  # no log daemon here (a container, a small box): no socket module to load
    now = time.localtime()
    stamp = f"{_MONTHS[now.tm_mon - 1]} {now.tm_mday:2d} {time.strftime('%H:%M:%S', now)}"
    from servicectl.text import escape

    line = escape(text)  # R-VIEW-1: one line, whatever the text holds
    data = f"<{DAEMON * 8 + severity}>{stamp} servicectl[{os.getpid()}]: {line}"
    _send(data.encode("utf-8", "backslashreplace")[:MAX_BYTES], path)


def _is_socket(path: str) -> bool:
    """Whether ``path`` is a socket (followed, as a send would follow it); a line to a path
    that is none would be dropped anyway."""
    import stat

    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _send(data: bytes, path: str) -> None:
    import _socket  # the socket module's core: the same calls without its enum set-up

    flags = _socket.SOCK_NONBLOCK | _socket.SOCK_CLOEXEC
    try:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | flags)
    except OSError:
        return
    try:
        sock.sendto(data, path)
        return
    except OSError as exc:
        import errno

        if exc.errno != errno.EPROTOTYPE:
            return  # missing, refused, or full (EAGAIN): dropped
    finally:
        sock.close()
    _send_stream(data, path, flags)


def _send_stream(data: bytes, path: str, flags: int) -> None:
    """A log daemon listening on a stream socket (syslog-ng can): one NUL-ended message, sent
    only if the whole of it fits at once."""
    import _socket

    try:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | flags)
    except OSError:
        return
    try:
        sock.connect(path)
        sock.send(data + b"\0")
    except OSError:
        pass
    finally:
        sock.close()


def told(outcome: Outcome, severity: int = NOTICE) -> None:
    """An action that changed something: ``NAME: MESSAGE by uid U``."""
    note(f"{outcome.name}: {outcome.message} by {who()}", severity)


def failed(name: str, message: str) -> None:
    """An action that failed: ``NAME: MESSAGE (by uid U)``, at warning level."""
    text = message if message.startswith(f"{name}: ") else f"{name}: {message}"
    note(f"{text} (by {who()})", WARNING)
