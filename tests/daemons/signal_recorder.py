#!/usr/bin/env python3
"""Test decoy for servicectl: appends `NAME PID` for every signal it receives to the file argv[1].
Writes `ready PID` there first; exits 0 after recording TERM or INT unless --stubborn is given.

Signals are recorded in the order the kernel delivered them: the C-level handler writes each
number to a wakeup pipe (signal.set_wakeup_fd), and the main loop records what it reads. (Python
handlers doing the writing could run nested, the second signal's before the first's.)"""

import os
import signal
import sys

path = sys.argv[1]
stubborn = "--stubborn" in sys.argv[2:]


def name_of(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def noted(signum, frame) -> None:
    """Nothing: the wakeup pipe carries the signal to the main loop."""


r, w = os.pipe()
os.set_blocking(w, False)
signal.set_wakeup_fd(w, warn_on_full_buffer=False)
for sig in signal.valid_signals():
    if sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
        continue
    try:
        signal.signal(sig, noted)
    except (OSError, ValueError):
        pass
with open(path, "a") as f:
    f.write(f"ready {os.getpid()}\n")
while True:
    for signum in os.read(r, 256):
        with open(path, "a") as f:
            f.write(f"{name_of(signum)} {os.getpid()}\n")
        if signum in (signal.SIGTERM, signal.SIGINT) and not stubborn:
            sys.exit(0)
