#!/usr/bin/env python3
"""Test decoy for servicectl: a process that is no service's. It appends every signal it
receives to argv[1] (creating argv[2] once its handlers are set), and never exits by itself."""

import os
import signal
import sys

log_fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def record(signum: int, frame: object) -> None:
    os.write(log_fd, f"{signum}\n".encode())


for sig in signal.valid_signals():
    if sig in (signal.SIGKILL, signal.SIGSTOP):
        continue
    try:
        signal.signal(sig, record)
    except (OSError, ValueError):
        pass
os.close(os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644))
while True:
    signal.pause()
