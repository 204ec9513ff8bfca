#!/usr/bin/env python3
"""Demo foreground worker for servicectl: prints `heartbeat N (GREETING)` every interval.
SIGHUP re-reads GREETING from $HEARTBEAT_CONF (prints `reloaded: generation G`); TERM exits."""

import os
import signal
import sys
import time

SIGNALS = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT}


def reload_greeting(current: str) -> str:
    path = os.environ.get("HEARTBEAT_CONF")
    if not path:
        return current
    try:
        with open(path) as f:
            return f.readline().strip() or current
    except OSError as e:
        print(f"heartbeat: cannot read {path}: {e}", file=sys.stderr, flush=True)
        return current


def main() -> int:
    interval = float(os.environ.get("HEARTBEAT_INTERVAL", "2.0"))
    greeting = os.environ.get("GREETING", "hello")
    # Signals stay blocked and are collected synchronously, so they wake the wait at once.
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    beat = generation = 0
    deadline = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= deadline:
            beat += 1
            print(f"heartbeat {beat} ({greeting})", flush=True)
            deadline = now + interval
            continue
        info = signal.sigtimedwait(SIGNALS, deadline - now)
        if info is None:
            continue
        if info.si_signo == signal.SIGHUP:
            generation += 1
            greeting = reload_greeting(greeting)
            print(f"reloaded: generation {generation}", flush=True)
        else:
            print("stopping", flush=True)
            return 0


if __name__ == "__main__":
    sys.exit(main())
