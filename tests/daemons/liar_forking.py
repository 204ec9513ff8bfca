#!/usr/bin/env python3
"""Test daemon for servicectl: a forking daemon (double fork, setsid) that may lie in its PID file.
--claim PID writes PID, not its own; SIGUSR1 rewrites it to --later PID (then exits if --then-exit)
and notes `rewritten` in --marker; --stubborn notes SIGTERM there and lives on."""

import argparse
import os
import signal
import sys


def write_pidfile(path: str, pid: int) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{pid}\n")
    os.rename(tmp, path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--pidfile", required=True)
    p.add_argument("--claim", type=int, metavar="PID")
    p.add_argument("--later", type=int, metavar="PID")
    p.add_argument("--then-exit", action="store_true")
    p.add_argument("--stubborn", action="store_true")
    p.add_argument("--marker")
    args = p.parse_args()

    sys.stdout.flush()
    r, w = os.pipe()
    if os.fork():  # the launcher: exit 0 once the daemon has written its PID file
        os.close(w)
        return 0 if os.read(r, 2) == b"ok" else 1
    os.close(r)
    os.setsid()
    if os.fork():
        os._exit(0)

    def note(line: str) -> None:
        if args.marker:
            with open(args.marker, "a") as f:
                f.write(line + "\n")

    if args.stubborn:
        signal.signal(signal.SIGTERM, lambda signum, frame: note("SIGTERM"))

    def rewrite(signum, frame) -> None:
        write_pidfile(args.pidfile, args.later)
        note(f"rewritten {args.later}")
        if args.then_exit:
            os._exit(0)

    if args.later is not None:
        signal.signal(signal.SIGUSR1, rewrite)
    write_pidfile(args.pidfile, args.claim if args.claim is not None else os.getpid())
    os.write(w, b"ok")
    os.close(w)
    print(f"liar_forking: running as {os.getpid()}", flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
