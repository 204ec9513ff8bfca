#!/usr/bin/env python3
"""Test daemon for servicectl: ignores SIGTERM and SIGINT, so only SIGKILL ends it.
Appends `started PID` to $MARKER (if set), then waits forever."""

import os
import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
marker = os.environ.get("MARKER")
if marker:
    with open(marker, "a") as f:
        f.write(f"started {os.getpid()}\n")
while True:
    signal.pause()
