#!/usr/bin/env python3
"""Test daemon for servicectl's cgroups: processes that try to leave their service, and
services that outgrow their limits. One mode per run; the PIDs of what it made go to
$PIDS_FILE (one per line, written atomically once all exist), then it idles (or, with
--forking, its launcher writes $PID_FILE and exits, as a forking daemon does).

  setsid      a child calls setsid() and forks a grandchild, then exits: the grandchild runs
              in a session of its own, an orphan re-parented away from the service
  reparent    a child forks a grandchild and exits: the grandchild is re-parented (to init or
              the nearest subreaper), still in the service's session
  workers N   N workers, each in a session of its own (a master's workers, as apache's)
  moveto P    moves itself into the cgroup P (writes its PID to P/cgroup.procs); $PIDS_FILE
              gets "moved" or the error
  hog         allocates memory, 8 MiB at a time, until the kernel kills it
  forkbomb    forks idle children until fork fails; $PIDS_FILE gets how many it made
"""

from __future__ import annotations

import os
import signal
import sys
import time


def idle() -> None:
    while True:
        signal.pause()


def write(lines: list[str]) -> None:
    path = os.environ.get("PIDS_FILE")
    if not path:
        return
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as fh:
        fh.write("".join(f"{line}\n" for line in lines))
    os.rename(tmp, path)


def fork_idle(setsid: bool) -> int:
    pid = os.fork()
    if pid == 0:
        if setsid:
            os.setsid()
        idle()
    return pid


def orphan(setsid: bool) -> int:
    """A grandchild whose parent (a child of ours) exits at once; its PID."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(r)
        if setsid:
            os.setsid()
        grandchild = os.fork()
        if grandchild == 0:
            os.close(w)
            idle()
        os.write(w, str(grandchild).encode())
        os._exit(0)
    os.close(w)
    grandchild = int(os.read(r, 32))
    os.close(r)
    os.waitpid(child, 0)
    return grandchild


def hog() -> None:
    chunks = []
    while True:
        chunks.append(bytearray(8 << 20))  # touched: bytearray zero-fills
        time.sleep(0.005)


def forkbomb() -> None:
    made = 0
    while made < 10000:
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            idle()
        made += 1
    write([str(made)])


def moveto(target: str) -> None:
    try:
        with open(os.path.join(target, "cgroup.procs"), "w") as fh:
            fh.write(str(os.getpid()))
        write(["moved"])
    except OSError as exc:
        write([f"refused: {exc.strerror}"])


def main() -> int:
    args = sys.argv[1:]
    forking = "--forking" in args
    args = [a for a in args if a != "--forking"]
    if forking and os.fork():
        return 0  # the launcher exits; the daemon (our child) writes the PID file
    if forking:
        os.setsid()
        with open(os.environ["PID_FILE"] + ".tmp", "w") as fh:
            fh.write(f"{os.getpid()}\n")
        os.rename(os.environ["PID_FILE"] + ".tmp", os.environ["PID_FILE"])
    mode = args[0]
    if mode == "setsid":
        write([str(orphan(True))])
    elif mode == "reparent":
        write([str(orphan(False))])
    elif mode == "workers":
        write([str(fork_idle(True)) for _ in range(int(args[1]))])
    elif mode == "moveto":
        moveto(args[1])
    elif mode == "hog":
        hog()
    elif mode == "forkbomb":
        forkbomb()
    idle()
    return 0


if __name__ == "__main__":
    sys.exit(main())
