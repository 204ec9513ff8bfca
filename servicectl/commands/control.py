"""The commands that act on services: start, stop, restart, try-restart, reload,
force-reload (one service at a time, or with their dependencies and dependents in order),
startall and stopall.
"""

from __future__ import annotations

from servicectl.commands.resolve import (
    catalog_for,
    explained_interrupt,
    highest_code,
    known_names,
    no_services_dir,
    requested_names,
    valid_names,
)
from servicectl.errors import Exit, ServicectlError
from servicectl.output.face import face, plural

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.service.outcome import Outcome


# ---------------------------------------------------------------------------------------------
# Actions on named services


def _each(names: tuple[str, ...], action_name: str, watched: bool = False) -> int:
    """Run a single-service action on each name; the highest code. ``watched``: the action
    reports progress (restarts), shown live on a terminal when there are several."""
    from servicectl.output import liveview
    from servicectl.supervisor import route

    wanted = requested_names(names)
    catalog = catalog_for(wanted)
    known, code = known_names(catalog, wanted, Exit.NOT_INSTALLED)
    valid, bad = valid_names(catalog, known)
    code = max(code, bad)

    action = getattr(route, action_name)
    with liveview.watching(watched and len(valid) > 1) as watch:
        report = watch.report(face.outcome)
        for name in valid:
            svc = catalog.services[name]
            args = (svc, catalog.dirs, watch.progress) if watched else (svc, catalog.dirs)
            try:
                with explained_interrupt():
                    outcome = action(*args)
            except ServicectlError as exc:
                message = exc.message
                if not message.startswith(f"{name}: "):
                    message = f"{name}: {message}"  # directory-level errors name no service
                watch.done(name)
                face.error(message, exc.detail)
                code = max(code, exc.exit_code)
                continue
            report(outcome)
            code = max(code, outcome.code)
    return code


def start(names: tuple[str, ...], jobs: int) -> int:
    from servicectl.fleet import order, parallel
    from servicectl.output import liveview

    wanted = requested_names(names)
    catalog = catalog_for(wanted)
    known, code = known_names(catalog, wanted, Exit.NOT_INSTALLED)
    several = len(order.dependency_closure(catalog, known)) > 1
    with liveview.watching(several) as watch, explained_interrupt():
        report = watch.report(face.outcome)
        outcomes = parallel.start_ordered(catalog, known, jobs, report, watch.progress)
    return max(code, highest_code(outcomes))


def stop(names: tuple[str, ...], jobs: int) -> int:
    from servicectl.fleet import order, parallel
    from servicectl.output import liveview

    wanted = requested_names(names)
    catalog = catalog_for(dependents=wanted)  # not every definition: what depends on these
    known, code = known_names(catalog, wanted, Exit.NOT_INSTALLED)
    valid, bad = valid_names(catalog, known)
    several = len(order.dependents_closure(catalog, valid)) > 1
    with liveview.watching(several) as watch, explained_interrupt():
        report = watch.report(face.outcome)
        outcomes = parallel.stop_with_dependents(catalog, valid, jobs, report, watch.progress)
    return max(code, bad, highest_code(outcomes))


def restart(names: tuple[str, ...]) -> int:
    return _with_dependents(names, if_running=False)


def try_restart(names: tuple[str, ...]) -> int:
    return _with_dependents(names, if_running=True)


def _with_dependents(names: tuple[str, ...], if_running: bool) -> int:
    """restart/try-restart: the running services that depend on them are restarted too."""
    from servicectl.fleet import order, parallel
    from servicectl.output import liveview

    wanted = requested_names(names)
    catalog = catalog_for(dependents=wanted)
    known, code = known_names(catalog, wanted, Exit.NOT_INSTALLED)
    valid, bad = valid_names(catalog, known)
    several = len(order.dependents_closure(catalog, valid)) > 1
    with liveview.watching(several) as watch, explained_interrupt():
        outcomes = parallel.restart_with_dependents(
            catalog,
            valid,
            report=watch.report(face.outcome),
            if_running=if_running,
            progress=watch.progress,
        )
    return max(code, bad, highest_code(outcomes))


def reload(names: tuple[str, ...]) -> int:
    return _each(names, "reload")


def force_reload(names: tuple[str, ...]) -> int:
    return _each(names, "force_reload", watched=True)


# ---------------------------------------------------------------------------------------------
# The fleet


def startall(jobs: int) -> int:
    return _all("startall", "started", jobs)


def stopall(jobs: int) -> int:
    return _all("stopall", "stopped", jobs)


def _all(action: str, verb: str, jobs: int) -> int:
    import time

    from servicectl.fleet import parallel
    from servicectl.output import liveview

    t0 = time.monotonic()
    catalog = catalog_for()
    if no_services_dir(catalog):
        return Exit.NOT_CONFIGURED
    with liveview.watching(True) as watch, explained_interrupt():
        outcomes = getattr(parallel, action)(catalog, jobs, watch.report(_timed), watch.progress)
    ok = sum(1 for o in outcomes if o.code == Exit.OK)
    failed = len(outcomes) - ok
    text = (
        f"{plural(len(outcomes), 'service')}: {ok} {verb}/ok, {failed} failed or skipped "
        f"in {time.monotonic() - t0:.2f} s"
    )
    if failed:
        face.error(text)
        return Exit.FAILURE
    face.line(text)
    return Exit.OK


def _timed(o: Outcome) -> None:
    if o.elapsed and "(" not in o.message.rsplit(" ", 1)[-1]:
        o.message += f" [{o.elapsed:.2f} s]"
    face.outcome(o)
