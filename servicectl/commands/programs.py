"""``check``'s look at the program a start would run, found exactly as start finds it (its
``$VARIABLES`` expanded, the service's PATH, a relative path from the services directory):
missing, a directory, not executable, or a script whose ``#!`` interpreter is missing is what
start would refuse with exit 5. ``check --run-checks`` (which does what start would) says
the same, with the same message and exit 5; plain ``check``, which validates a definition
that may be written before its package is installed (``import``, the Ansible module), warns.

Where ``check`` runs as a user who may not see what the service's user sees (a non-root user
checking root's definitions, or a service of another user), a program it cannot find is a
warning, not an error. As root, with ``--run-checks``, a service that runs as another user is
asked for real: ``test -x PROGRAM`` runs as that user, so a program in a directory it cannot
enter is found before start fails on it.
"""

from __future__ import annotations

import os

from servicectl.errors import NotInstalledError, ServicectlError
from servicectl.output.face import face

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.definitions.schema import Service
    from servicectl.system.spawn import Account

TEST_TIMEOUT = 10.0  # seconds for ``test -x`` as the service's user


def check_program(
    svc: Service,
    env: dict[str, str],
    account: Account,
    run_checks: bool,
    errors: list[ServicectlError],
) -> bool:
    """Whether the program is usable (or could only be judged by another user: a warning is
    printed). A problem start would have is appended to ``errors`` (exit 5)."""
    from servicectl.definitions.expansion import expanded
    from servicectl.system.interpreter import check_interpreter
    from servicectl.system.spawn import resolve_program

    try:
        program = resolve_program(expanded(svc, env), env)
        check_interpreter(svc.name, program)
    except ServicectlError as exc:
        other = _other_viewer(svc, account)
        if other is not None:
            face.error(f"{exc.message}; warning only: {other}")
        elif not run_checks:  # a definition may be checked before its package is installed
            face.error(
                f"{exc.message}; warning only: start would fail (exit 5); check "
                f"--run-checks makes it an error"
            )
        else:
            errors.append(exc)
            return False
        return True
    if run_checks and account.switch:
        problem = _user_cannot_execute(svc, program, env, account)
        if problem is not None:
            errors.append(problem)
            return False
    return True


def _other_viewer(svc: Service, account: Account) -> str | None:
    """Why this check may not see the program as the service's user does (None: it sees it
    as start would: root, or the very user the service runs as)."""
    euid = os.geteuid()
    if euid == 0:
        return None
    if svc.user is not None and account.uid != euid:
        who = f"user {svc.user}"
    else:
        try:
            owner = os.stat(svc.file).st_uid
        except OSError:
            return None
        if owner == euid:
            return None
        who = "root" if owner == 0 else f"uid {owner}"
    return (
        f"servicectl runs as uid {euid} and may not see what {who}, who runs this service, "
        f"sees (check it as {who} or as root to be sure)"
    )


def _user_cannot_execute(
    svc: Service, program: str, env: dict[str, str], account: Account
) -> ServicectlError | None:
    """As root, for a service of another user: whether that user may execute ``program``
    (``test -x`` run as it: directories it cannot enter and ACLs count, as they will at
    start)."""
    from servicectl.system.runner import run

    try:
        ran = run(svc, ("test", "-x", program), env, account, TEST_TIMEOUT)
    except ServicectlError as exc:
        return exc
    if ran.code == 0:
        return None
    return NotInstalledError(
        f"{svc.name}: user {account.user} cannot execute {program} (a directory on its path "
        f"it may not enter, or the file's mode); start would fail: fix the permissions, or "
        f"user: in {svc.file}"
    )
