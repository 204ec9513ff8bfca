#!/usr/bin/env python3
"""Test daemon for supervision: runs until told to end, and says how.

Appends `started PID` to $MARKER (if set). SIGUSR1: exits with the status written in
$CRASH_FILE (1 if it is missing or not a number). SIGTERM: exits 0, or ignores it with
--ignore-term. --crash-at-start FILE: while FILE exists, exits 3 at once (a crash loop).
--ready-file PATH: creates PATH after --ready-after seconds (a readiness file);
--crash-before-ready FILE: while FILE exists, exits 4 before getting ready.
--crash-once-running STATE: exits 3 as soon as the state record STATE says it runs (its PID,
phase running): just after its start was confirmed, when its supervisor has yet to watch it.
"""

import argparse
import json
import os
import signal
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--crash-at-start", metavar="FILE")
    p.add_argument("--ready-file", metavar="PATH")
    p.add_argument("--ready-after", type=float, default=0.0, metavar="S")
    p.add_argument("--crash-before-ready", metavar="FILE")
    p.add_argument("--ignore-term", action="store_true")
    p.add_argument("--crash-once-running", metavar="STATE")
    args = p.parse_args()

    def crash(signum: int, frame: object) -> None:
        try:
            with open(os.environ.get("CRASH_FILE", "/nonexistent")) as f:
                code = int(f.read().strip())
        except (OSError, ValueError):
            code = 1
        print(f"crasher {os.getpid()}: exiting with {code}", file=sys.stderr, flush=True)
        os._exit(code)

    signal.signal(signal.SIGUSR1, crash)
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda s, f: os._exit(0))
    marker = os.environ.get("MARKER")  # written once the signals are handled
    if marker:
        with open(marker, "a") as f:
            f.write(f"started {os.getpid()}\n")
    if args.crash_at_start and os.path.exists(args.crash_at_start):
        print(f"crasher {os.getpid()}: crashing at start", file=sys.stderr, flush=True)
        return 3
    if args.crash_once_running:
        crash_once_running(args.crash_once_running)
    if args.ready_file:
        time.sleep(args.ready_after)
        if args.crash_before_ready and os.path.exists(args.crash_before_ready):
            print(f"crasher {os.getpid()}: crashing before ready", file=sys.stderr, flush=True)
            return 4
        with open(args.ready_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    while True:
        signal.pause()


def crash_once_running(state: str) -> None:
    """Exit 3 the moment the record says this process runs (it is read every millisecond)."""
    while True:
        try:
            with open(state) as f:
                record = json.load(f)
            if record.get("pid") == os.getpid() and record.get("phase") == "running":
                print(f"crasher {os.getpid()}: crashing once running", file=sys.stderr, flush=True)
                os._exit(3)
        except (OSError, ValueError):
            pass
        time.sleep(0.001)


if __name__ == "__main__":
    sys.exit(main())
