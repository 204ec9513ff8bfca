#!/usr/bin/env python3
"""Test decoy for servicectl: appends `NAME PID` for every signal it receives to the file argv[1].
Writes `ready PID` there first; exits 0 after recording TERM or INT unless --stubborn is given."""

import os
import signal
import sys

path = sys.argv[1]
stubborn = "--stubborn" in sys.argv[2:]


def record(signum, frame) -> None:
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = str(signum)
    with open(path, "a") as f:
        f.write(f"{name} {os.getpid()}\n")
    if signum in (signal.SIGTERM, signal.SIGINT) and not stubborn:
        sys.exit(0)


for sig in signal.valid_signals():
    if sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
        continue
    try:
        signal.signal(sig, record)
    except (OSError, ValueError):
        pass
with open(path, "a") as f:
    f.write(f"ready {os.getpid()}\n")
while True:
    signal.pause()
