#!/usr/bin/env python3
"""Test daemon for servicectl: appends `started PID` to $MARKER, then waits for signals.
SIGTERM appends `stopped PID` and exits 0; SIGHUP appends `reloaded PID` only with --hup."""

import argparse
import json
import os
import resource
import signal
import sys


def append_marker(word: str) -> None:
    path = os.environ.get("MARKER")
    if path:
        with open(path, "a") as f:
            f.write(f"{word} {os.getpid()}\n")


def on_term(signum, frame) -> None:
    append_marker("stopped")
    sys.exit(0)


def on_hup(signum, frame) -> None:
    append_marker("reloaded")


def env_dump(path: str) -> None:
    umask = os.umask(0)
    os.umask(umask)
    fds = []
    for name in os.listdir("/proc/self/fd"):  # the listing's own fd is closed by now
        try:
            os.fstat(int(name))
        except OSError:
            continue
        fds.append(int(name))
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
        tty = True
    except OSError:
        tty = False
    info = {
        "cwd": os.getcwd(),
        "umask": umask,
        "uid": os.getuid(),
        "gid": os.getgid(),
        "nice": os.nice(0),
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
        "fds": sorted(fds),
        "sid": os.getsid(0),
        "pgid": os.getpgid(0),
        "pid": os.getpid(),
        "tty": tty,
        "sigmask": sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
    }
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(json.dumps(dict(os.environ)) + "\n" + json.dumps(info) + "\n")
    os.rename(tmp, path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--exit-code", type=int, metavar="N")
    p.add_argument("--after", type=float, default=0.0, metavar="S")
    p.add_argument("--print", dest="text", metavar="TEXT")
    p.add_argument("--env-dump", metavar="PATH")
    p.add_argument("--hup", action="store_true")
    args = p.parse_args()

    signal.signal(signal.SIGTERM, on_term)
    if args.hup:
        signal.signal(signal.SIGHUP, on_hup)
    if args.text is not None:
        print(args.text, flush=True)
        print(args.text, file=sys.stderr, flush=True)
    if args.env_dump:
        env_dump(args.env_dump)
    append_marker("started")

    if args.exit_code is not None:

        def crash(signum=None, frame=None) -> None:
            print(f"sleeper: crashing with {args.exit_code}", file=sys.stderr, flush=True)
            os._exit(args.exit_code)

        if args.after <= 0:
            crash()
        signal.signal(signal.SIGALRM, crash)
        signal.setitimer(signal.ITIMER_REAL, args.after)
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
