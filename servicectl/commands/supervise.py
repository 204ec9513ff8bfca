"""``servicectl supervise``: the run directory's supervisor, in the foreground, for an init
system that keeps it up (docs/boot.md): the process is replaced by the supervisor itself
(``python -S -m servicectl.supervisor.daemon RUN_DIR - --foreground``), so that the init
system watches the supervisor, and its output goes where the init system sends it. Under
systemd (``Type=notify``) it says READY=1 once it listens, or once it waits for another
supervisor to leave (STATUS= says which).
"""

from __future__ import annotations


def command() -> int:
    """Execute the supervisor in this process (no return, unless it cannot be executed)."""
    import os
    import sys
    from pathlib import Path

    import servicectl
    from servicectl.commands.resolve import dirs
    from servicectl.errors import ServicectlError
    from servicectl.output.face import face
    from servicectl.paths import ensure_run_dir

    run = dirs().run
    try:
        ensure_run_dir(run)
    except ServicectlError as exc:
        face.error(f"supervise: {exc.message}")
        return 1
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # NOTIFY_SOCKET stays
    env["PYTHONPATH"] = str(Path(servicectl.__file__).resolve().parent.parent)
    argv = [sys.executable, "-S", "-m", "servicectl.supervisor.daemon", str(run), "-"]
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        os.chdir("/")
        os.execve(sys.executable, [*argv, "--foreground"], env)
    except OSError as exc:
        face.error(f"supervise: cannot execute {sys.executable}: {exc.strerror}")
    return 1
