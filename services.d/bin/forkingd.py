#!/usr/bin/env python3
"""Demo SysV-style daemon for servicectl: double-forks, writes its pid file, then idles.
The launcher exits 0 only after the daemon wrote its pid file (1 if the daemon failed to start)."""

import argparse
import os
import signal
import sys
import time

SIGNALS = {signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGUSR2}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--pidfile", required=True)
    p.add_argument("--logfile")
    p.add_argument("--fail-launch", action="store_true")
    p.add_argument("--no-pidfile", action="store_true")
    p.add_argument("--pidfile-delay", type=float, default=0.0, metavar="SECONDS")
    p.add_argument("--die-after", type=float, metavar="SECONDS")
    return p.parse_args()


def write_pidfile(path: str, pid: int) -> None:
    tmp = f"{path}.tmp.{pid}"
    with open(tmp, "w") as f:
        f.write(f"{pid}\n")
    os.rename(tmp, path)


def remove_pidfile_if_ours(path: str, pid: int) -> None:
    try:
        with open(path) as f:
            if f.read().strip() == str(pid):
                os.unlink(path)
    except OSError:
        pass


def setup(args: argparse.Namespace) -> None:
    """Daemon-side setup; runs in the grandchild before readiness is reported."""
    os.chdir("/")
    os.umask(0o022)
    null = os.open(os.devnull, os.O_RDWR)
    out = null
    if args.logfile:
        out = os.open(args.logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    for fd in {null, out} - {0, 1, 2}:
        os.close(fd)
    time.sleep(args.pidfile_delay)
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    if not args.no_pidfile:
        write_pidfile(args.pidfile, os.getpid())


def run(args: argparse.Namespace) -> int:
    pid = os.getpid()
    print(f"forkingd: started pid={pid}", flush=True)
    now = time.monotonic()
    die_at = now + args.die_after if args.die_after is not None else float("inf")
    next_tick = now
    while True:
        now = time.monotonic()
        if now >= die_at:
            print(f"forkingd: dying with code 3 pid={pid}", flush=True)
            return 3
        if now >= next_tick:
            print(f"forkingd alive pid={pid}", flush=True)
            next_tick = now + 1.0
            continue
        info = signal.sigtimedwait(SIGNALS, min(next_tick, die_at) - now)
        if info is None:
            continue
        if info.si_signo == signal.SIGHUP:
            print("forkingd: reloaded", flush=True)
        elif info.si_signo == signal.SIGUSR2:
            # Hand over to a new process (as nginx's binary upgrade does): the child takes
            # over the PID file, the old process exits.
            if os.fork():
                return 0
            pid = os.getpid()
            if not args.no_pidfile:
                write_pidfile(args.pidfile, pid)
            print(f"forkingd: took over as pid={pid}", flush=True)
        else:
            print("forkingd: stopping", flush=True)
            if not args.no_pidfile:
                remove_pidfile_if_ours(args.pidfile, pid)
            return 0


def main() -> int:
    args = parse_args()
    if args.fail_launch:
        print("forkingd: refusing to start (--fail-launch)", file=sys.stderr)
        return 1
    args.pidfile = os.path.abspath(args.pidfile)
    if args.logfile:
        args.logfile = os.path.abspath(args.logfile)
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    child = os.fork()
    if child:  # original parent: wait for the daemon's readiness report
        os.close(w)
        os.waitpid(child, 0)
        data = b""
        while chunk := os.read(r, 4096):
            data += chunk
        if data == b"ok":
            return 0
        reason = data.decode(errors="replace") or "daemon exited before becoming ready"
        print(f"forkingd: failed to start: {reason}", file=sys.stderr)
        return 1
    os.close(r)
    os.setsid()
    if os.fork():
        os._exit(0)  # intermediate child: the grandchild is not a session leader
    try:
        setup(args)
    except OSError as e:
        os.write(w, str(e).encode())
        return 1
    os.write(w, b"ok")
    os.close(w)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
