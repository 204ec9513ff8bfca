#!/usr/bin/env python3
"""Test daemon for servicectl: after --delay, listens on TCP or a unix socket, answers HTTP `ok`.
Creates the --touch file once listening; exits 0 on SIGTERM."""

import argparse
import os
import signal
import socket
import sys
import time

RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"


def handle(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(2.0)
        data = b""
        try:
            while b"\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            conn.sendall(RESPONSE)
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(0.5)
            while conn.recv(4096):  # drain the rest so close() does not reset the connection
                pass
        except OSError:
            pass


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, metavar="P")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--delay", type=float, default=0.0, metavar="S")
    p.add_argument("--unix", metavar="PATH")
    p.add_argument("--touch", metavar="PATH")
    args = p.parse_args()
    if args.port is None and args.unix is None:
        p.error("one of --port or --unix is required")

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    time.sleep(args.delay)
    if args.unix:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(args.unix):
            os.unlink(args.unix)
        sock.bind(args.unix)
        where = args.unix
    else:
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
        where = f"{args.host}:{args.port}"
    sock.listen(16)
    if args.touch:
        open(args.touch, "a").close()
    print(f"port_listener: listening on {where}", flush=True)
    try:
        while True:
            conn, _ = sock.accept()
            handle(conn)
    finally:
        sock.close()
        if args.unix:
            try:
                os.unlink(args.unix)
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(main())
