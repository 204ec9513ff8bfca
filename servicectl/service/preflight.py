"""What must hold before a service is started, restarted or reloaded: its ``directories`` exist
with their owner and mode (directories.py), and its config test (``check_command``) passes,
run as the service's user (system/runner.py).
"""

from __future__ import annotations

from servicectl.definitions.expansion import expanded
from servicectl.definitions.schema import signal_name
from servicectl.errors import Exit, Interrupted, ServicectlError
from servicectl.service.directories import make_directories
from servicectl.system.spawn import (
    Account,
    build_environment,
    resolve_account,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.definitions.schema import Service


class ConfigTestFailed(ServicectlError):
    """The config test failed: the action is refused, nothing was changed (exit 6)."""

    exit_code = Exit.NOT_CONFIGURED


# ---------------------------------------------------------------------------------------------
# Before start, restart and reload


def prepare(svc: Service, action: str, directories: bool = True) -> None:
    """Make the directories (if ``directories``), then run the config test; ``action`` says
    what is refused if it fails ("not started", "not restarted: ..."). Exit 6 on failure."""
    if not (svc.check_command or (directories and svc.directories)):
        return
    account = resolve_account(svc)
    if directories:
        make_directories(svc, account)
    if svc.check_command:
        config_test(svc, account, action)


def config_test(svc: Service, account: Account, action: str) -> None:
    """Run ``check_command``; raise ConfigTestFailed (exit 6, with its output) unless it exits
    0 within start_timeout."""
    env = build_environment(svc, account)
    argv = expanded(svc, env).check_command
    assert argv is not None
    shown = " ".join(argv)
    try:
        from servicectl.system.runner import run  # only with a check_command (signal, enum)

        ran = run(svc, argv, env, account, svc.start_timeout)
    except KeyboardInterrupt:
        raise Interrupted(
            f"{svc.name}: interrupted during its config test ({shown}); nothing was stopped, "
            f"started or signalled"
        ) from None
    if ran.code == 0:
        return
    how = (
        f"did not finish within start_timeout {svc.start_timeout:g} s (it was killed)"
        if ran.code is None
        else _exit_text(ran.code)
    )
    refused = f"; {action}" if action else ""
    raise ConfigTestFailed(
        f"{svc.name}: config test failed: {shown} {how}{refused}", detail=ran.detail()
    )


def _exit_text(code: int) -> str:
    if code < 0:
        name = signal_name(-code)
        return f"was killed by signal {name}" if name.isdigit() else f"was killed by SIG{name}"
    return f"exited {code}"
