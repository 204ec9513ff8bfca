"""The stop schedule as a list of (signal, seconds) steps, on real processes: today's
(stop_signal, stop_timeout) then KILL, and the longer schedules it is built to take."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import PY, TAG_VAR, Env, alive, wait_for

from servicectl.definitions.schema import Service
from servicectl.errors import ServicectlError
from servicectl.service.terminate import terminate
from servicectl.system import proc

# Ignores TERM; exits 0 on INT unless told to ignore it too; says when its handlers are set.
STUBBORN = """
import os, signal, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
if sys.argv[2] == "exit-on-int":
    signal.signal(signal.SIGINT, lambda *a: os._exit(0))
else:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
open(sys.argv[1], "w").close()
while True:
    signal.pause()
"""


def _stubborn(env: Env, on_int: str) -> tuple[subprocess.Popen[bytes], proc.Handle]:
    ready = env.root / f"ready-{on_int}"
    child = subprocess.Popen(
        [PY, "-c", STUBBORN, str(ready), on_int], env={**os.environ, TAG_VAR: env.tag}
    )
    env.commands.append(child)
    wait_for(Path(ready).exists, what="the handlers to be set")
    info = proc.read_proc(child.pid)
    assert info is not None
    return child, proc.Handle(child.pid, info.starttime)


def _svc(stop_timeout: float = 0.3) -> Any:
    return Service(name="t", file=Path("t.yaml"), command=("x",), stop_timeout=stop_timeout)


def test_default_schedule_is_stop_signal_then_kill(env: Env) -> None:
    child, handle = _stubborn(env, "ignore-int")
    how, elapsed = terminate(_svc(0.3), [handle], 0, child.pid, time.monotonic())
    assert how == "killed after 0.3 s"
    assert elapsed >= 0.3
    assert not alive(child.pid)


def test_a_middle_step_that_works_ends_the_schedule(env: Env) -> None:
    child, handle = _stubborn(env, "exit-on-int")
    steps = [(signal.SIGTERM, 0.3), (signal.SIGINT, 10.0), (signal.SIGKILL, 5.0)]
    how, elapsed = terminate(_svc(), [handle], 0, child.pid, time.monotonic(), steps)
    assert how == "after INT (0.3 s)"
    assert elapsed < 10
    assert not alive(child.pid)


def test_a_schedule_without_kill_can_leave_the_process(env: Env) -> None:
    child, handle = _stubborn(env, "ignore-int")
    steps = [(signal.SIGTERM, 0.2), (signal.SIGINT, 0.2)]
    with pytest.raises(ServicectlError) as err:
        terminate(_svc(), [handle], 0, child.pid, time.monotonic(), steps)
    assert f"could not be stopped: process {child.pid} survived SIGINT" in err.value.message
    assert alive(child.pid)
    assert handle.fd is None  # closed all the same
