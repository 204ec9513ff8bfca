#!/usr/bin/env python3
"""Test daemon for servicectl: forks N idle children, lists them in $CHILDREN_FILE, then says
READY=1 to $NOTIFY_SOCKET if set. On SIGTERM the parent exits 0 without touching its children
(a manager must signal the group)."""

import argparse
import os
import signal
import sys


def name_self(comm: bytes) -> None:
    """Set /proc/self/comm (prctl PR_SET_NAME)."""
    import ctypes

    try:
        ctypes.CDLL(None).prctl(15, ctypes.c_char_p(comm), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--children", type=int, default=2, metavar="N")
    p.add_argument("--children-ignore-term", action="store_true")
    args = p.parse_args()

    if args.children_ignore_term:  # set before fork so children never run with TERM un-ignored
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.stdout.flush()
    sys.stderr.flush()
    pids = []
    for _ in range(args.children):
        pid = os.fork()
        if pid == 0:
            name_self(b"pwc-child")  # so that tests can tell the children from the parent
            while True:
                signal.pause()
        pids.append(pid)

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    path = os.environ.get("CHILDREN_FILE")
    if path:
        tmp = f"{path}.tmp.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write("".join(f"{pid}\n" for pid in pids))
        os.rename(tmp, path)
    print(f"parent {os.getpid()} children {' '.join(map(str, pids))}", flush=True)
    notify = os.environ.get("NOTIFY_SOCKET")  # ready: notify: ready once the children run
    if notify:
        import socket

        addr = "\0" + notify[1:] if notify.startswith("@") else notify
        try:
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", addr)
        except OSError:
            pass  # no one listens (its servicectl was killed): as sd_notify, carry on
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
