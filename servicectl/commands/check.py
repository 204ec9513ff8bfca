"""``check``: validate definitions without touching a process, and with ``--run-checks`` also
make their directories and run their config tests.
"""

from __future__ import annotations

from servicectl.commands.resolve import catalog_for, known_names, no_services_dir, requested_names
from servicectl.errors import Exit, ServicectlError
from servicectl.output.face import face
from servicectl.service.preflight import prepare
from servicectl.system.spawn import (
    Account,
    build_environment,
    resolve_account,
)
from servicectl.text import escape

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _typeshed import StrPath

    from servicectl.definitions.schema import Service


# ---------------------------------------------------------------------------------------------
# check --run-checks


def check_more(svc: Service, run_checks: bool, errors: list[ServicectlError]) -> str:
    """What ``check`` says beyond validation: a warning for each unset variable a command uses;
    with ``run_checks``, the directories and the config test, as start would (their failure
    is added to ``errors``). A note for the "ok" line."""
    from servicectl.definitions.expansion import unset_variables
    from servicectl.output.face import face

    try:
        account = resolve_account(svc)
    except ServicectlError:  # a user of another machine: its variables are set all the same
        account = Account(svc.user or "", -1, -1, "", (), False)
    env = build_environment(svc, account)
    for key, name in unset_variables(svc, env):
        face.error(
            f"{svc.name}: warning: {key}: ${name} is not set (neither by env_file nor by "
            f"environment in {svc.file}); it expands to nothing"
        )
    from servicectl.commands.programs import check_program

    if not check_program(svc, env, account, run_checks, errors):
        return ""
    if not run_checks:
        return ""
    try:
        prepare(svc, "")
    except ServicectlError as exc:
        errors.append(exc)
        return ""
    done = [
        what
        for what, given in (
            ("directories", svc.directories),
            ("config test passed", svc.check_command),
        )
        if given
    ]
    return "; " + ", ".join(done) if done else "; nothing to run"


def limit_problems(svc: Service, run: StrPath) -> list[ServicectlError]:
    """A cgroup limit (memory_max, pids_max, cpu_weight) this machine cannot apply: exit 6,
    as start would say it; nothing is made. Run as another user than root, which may not
    write the cgroups root would, ``check`` cannot tell: it warns instead."""
    if not (svc.memory_max or svc.pids_max or svc.cpu_weight):
        return []
    import os

    from servicectl.system.cgroup_limits import plan

    try:
        plan(svc, str(run))
    except ServicectlError as exc:
        if _own_services(run):
            return [exc]
        face.error(
            f"{svc.name}: warning: servicectl runs as uid {os.geteuid()} and cannot tell "
            f"whether its limits can be applied; as its user could not: {exc.message}"
        )
    return []


def _own_services(run: StrPath) -> bool:
    """Whether the services checked are servicectl's user's own (root, or the run directory's
    owner): it would start them with the rights it has now."""
    import os

    try:
        return os.geteuid() in (0, os.stat(run).st_uid)
    except OSError:
        return True


def check(names: tuple[str, ...], run_checks: bool = False) -> int:
    asked = requested_names(names)
    catalog = catalog_for(use_cache=False, also=asked)
    code = 0
    templates = {
        n for n in asked if n in catalog.templates or (n.endswith("@") and n in catalog.invalid)
    }
    if asked:  # a template is checked on its own here (elsewhere it is not a service)
        known, code = known_names(
            catalog, [n for n in asked if n not in templates], Exit.NOT_INSTALLED
        )
        wanted = [n for n in asked if n in known or n in templates]
    else:
        if no_services_dir(catalog):
            return Exit.NOT_CONFIGURED
        wanted = sorted({*catalog.names(), *catalog.templates})
        if not wanted:
            face.error(f"no service definitions in {catalog.dirs.services}")
            return Exit.NOT_CONFIGURED
    from servicectl.system.spawn import env_file_problems

    for name in wanted:
        errors: list[ServicectlError] = (
            list(catalog.invalid[name].errors) if name in catalog.invalid else []
        )
        svc = catalog.templates.get(name) or catalog.services.get(name)
        done = ""
        if not errors and name not in catalog.templates:
            errors += env_file_problems(catalog.services[name])
            errors += limit_problems(catalog.services[name], catalog.dirs.run)
            if not errors:  # unset $VARIABLES (warnings), --run-checks
                done = check_more(catalog.services[name], run_checks, errors)
        for err in errors:
            face.error(err.message, err.detail)
            code = max(code, err.exit_code)
        if not errors and svc is not None:
            files = ", ".join(map(str, (svc.file, *svc.dropins)))
            face.line(escape(f"{name}: ok ({files}{done})"))
    return code
