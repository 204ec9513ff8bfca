"""Where an action on a service goes: to its supervisor, the only actor on a supervised
service (it carries the action out with the lifecycle's code and answers when done), or to the
lifecycle itself, in this process, for a service nothing of servicectl supervises. The
commands (commands/control.py, commands/actions.py) and the fleet (fleet/parallel.py) act
through here.
"""

from __future__ import annotations

from servicectl.service.waits import Progress, silent

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.definitions.schema import Service
    from servicectl.paths import Dirs
    from servicectl.service.outcome import Outcome


def supervised_here(svc: Service, dirs: Dirs) -> bool:
    """Whether ``svc`` is its supervisor's: its definition asks for supervision, or its record
    says a supervisor of servicectl has it."""
    from servicectl.service.supervised import delegated, routed

    if delegated(svc):
        return True
    from servicectl.system.record import read_record

    record, _ = read_record(dirs.run, svc.name)
    return routed(svc, record)


def _ask(op: str, svc: Service, dirs: Dirs, progress: Progress, verb: str = "") -> Outcome:
    from servicectl.supervisor import client

    return client.ask(op, svc, dirs, progress, verb)


def start(svc: Service, dirs: Dirs, progress: Progress = silent) -> Outcome:
    from servicectl.service import lifecycle

    if supervised_here(svc, dirs):
        from servicectl.supervisor import client

        try:
            return _ask("start", svc, dirs, progress)
        except client.Lost:  # it died mid-start: this command sees the start through,
            outcome = lifecycle.finish_start(svc, dirs, progress)
        except client.SupervisorError as exc:  # no supervisor could take it: a failed start
            from servicectl.service import failed

            failed.note(svc, dirs, exc)
            raise
        return _supervised_again(svc, dirs, outcome)  # and a new supervisor takes it
    return lifecycle.start(svc, dirs, progress)


def _supervised_again(svc: Service, dirs: Dirs, outcome: Outcome) -> Outcome:
    from servicectl.errors import ServicectlError

    try:
        again = _ask("start", svc, dirs, silent)
    except ServicectlError as exc:
        outcome.message += f"; not supervised: {exc.message.removeprefix(svc.name + ': ')}"
        return outcome
    note = again.message.partition(")")[2]  # already running (pid N); supervised again...
    outcome.message = outcome.message.replace("; unsupervised", "") + note
    return outcome


def stop(svc: Service, dirs: Dirs, progress: Progress = silent) -> Outcome:
    if supervised_here(svc, dirs):
        return _ask("stop", svc, dirs, progress)
    from servicectl.service import lifecycle

    return lifecycle.stop(svc, dirs, progress)


def restart(svc: Service, dirs: Dirs, progress: Progress = silent) -> Outcome:
    if supervised_here(svc, dirs):
        return _ask("restart", svc, dirs, progress)
    from servicectl.service import lifecycle

    return lifecycle.restart(svc, dirs, progress)


def try_restart(svc: Service, dirs: Dirs, progress: Progress = silent) -> Outcome:
    if supervised_here(svc, dirs):
        return _ask("try-restart", svc, dirs, progress)
    from servicectl.service import lifecycle

    return lifecycle.try_restart(svc, dirs, progress)


def force_reload(svc: Service, dirs: Dirs, progress: Progress = silent) -> Outcome:
    if supervised_here(svc, dirs):
        return _ask("force-reload", svc, dirs, progress)
    from servicectl.service import lifecycle

    return lifecycle.force_reload(svc, dirs, progress)


def reload(svc: Service, dirs: Dirs) -> Outcome:
    if supervised_here(svc, dirs):
        return _ask("reload", svc, dirs, silent)
    from servicectl.service import lifecycle

    return lifecycle.reload(svc, dirs)  # a oneshot has nothing to reload: said there


def action(svc: Service, dirs: Dirs, verb: str) -> Outcome:
    """One of the service's actions (a verb it does not have is said here: exit 2)."""
    from servicectl.service import action as actions

    if verb in dict(svc.actions) and supervised_here(svc, dirs):
        return _ask("action", svc, dirs, silent, verb)
    return actions.run(svc, dirs, verb)


def ensure_supervisor(dirs: Dirs) -> None:
    """Supervised services without a live supervisor: start one, which adopts them."""
    from servicectl.supervisor.protocol import marked

    if marked(dirs.run):
        from servicectl.supervisor import client

        client.ensure(dirs)
