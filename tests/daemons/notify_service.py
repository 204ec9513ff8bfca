#!/usr/bin/env python3
"""Test daemon for servicectl: speaks sd_notify to $NOTIFY_SOCKET over a plain datagram socket.
READY=1 after --delay (or ERRNO/never/MAINPID child); once ready, HUP sends RELOADING=1, READY=1."""

import argparse
import os
import signal
import socket
import sys
import time


def notify(msg: str) -> None:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        print(
            f"notify_service: NOTIFY_SOCKET not set, not sending {msg!r}",
            file=sys.stderr,
            flush=True,
        )
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(msg.encode(), addr)
    print(f"notify_service: sent {msg!r}", flush=True)


def on_hup(signum, frame) -> None:
    notify("RELOADING=1")
    notify("READY=1")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--delay", type=float, default=0.0, metavar="S")
    p.add_argument("--status", metavar="TEXT")
    p.add_argument("--mainpid-child", action="store_true")
    p.add_argument("--errno", type=int, metavar="N")
    p.add_argument("--never-ready", action="store_true")
    p.add_argument("--extend-usec", type=int, metavar="N")
    args = p.parse_args()

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # reload handling starts once ready
    if args.extend_usec is not None:
        notify(f"EXTEND_TIMEOUT_USEC={args.extend_usec}")
    if args.status is not None:
        notify(f"STATUS={args.status}")
    time.sleep(args.delay)
    if args.errno is not None:
        notify(f"ERRNO={args.errno}")
        return 1
    if not args.never_ready:
        if args.mainpid_child:
            sys.stdout.flush()
            sys.stderr.flush()
            child = os.fork()
            if child:
                notify(f"MAINPID={child}\nREADY=1")
                return 0
        else:
            notify("READY=1")
        signal.signal(signal.SIGHUP, on_hup)
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
