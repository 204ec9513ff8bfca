"""The fleet in action: services in dependency order (order.py), each level in parallel
(startall, stopall, and restarts or stops that carry dependents with them).

Built only from lifecycle actions (through supervisor/route.py: a supervised service's are its
supervisor's); a failure skips the failed service's dependents, nothing else.
"""

from __future__ import annotations

import time

from servicectl import lastresort
from servicectl.errors import Exit, Interrupted, ServicectlError
from servicectl.fleet.order import dependency_closure, dependents_closure, levels
from servicectl.service import lifecycle, observe, supervised
from servicectl.service.outcome import Outcome
from servicectl.service.waits import Progress, silent
from servicectl.states import EXITED
from servicectl.supervisor import route
from servicectl.system import cancel, turns
from servicectl.system.lock import is_locked

TYPE_CHECKING = False
if TYPE_CHECKING:  # (collections.abc and functools are not imported: 2-3 ms of a stop)
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from typing import Any

    from servicectl.definitions.catalog import Catalog

    Report = Callable[[Outcome], None]
else:
    Report = "Report"


def _bound(action: Any, *args: Any) -> Callable[[], Outcome]:
    """``action`` with ``args`` bound (functools.partial, without importing functools)."""
    return lambda: action(*args)  # type: ignore[no-any-return]


DEFAULT_JOBS = 64


class _Pool:
    """A bounded pool of worker threads, started on first use (an action on one service at a
    time never imports threading or starts a thread), fed through one queue and answering
    through another: no Future, no lock and event per outcome. At a fleet of 1,000 the
    futures' bookkeeping (a lock and an event set for each outcome, taken by 64 threads
    against the one waiting) cost about a tenth of a startall's CPU time."""

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, jobs)
        self.tasks: Any = None  # queue.SimpleQueue of (name, action, results) or None: leave
        self.threads: list[Any] = []

    def run(self, calls: Sequence[tuple[str, Callable[[], Outcome | None]]], results: Any) -> None:
        """Queue ``calls``; each one's (outcome, None) or (None, exception) goes to ``results``."""
        import queue
        import threading

        if self.tasks is None:
            lastresort.install_thread_hook()
            turns.setup(self.jobs)
            self.tasks = queue.SimpleQueue()
        for name, action in calls:
            self.tasks.put((name, action, results))
        while len(self.threads) < min(self.jobs, len(calls)):
            worker = threading.Thread(target=_work, args=(self.tasks,), daemon=True)
            worker.start()
            self.threads.append(worker)

    def withdraw(self) -> int:
        """Take back the calls no worker has begun; how many."""
        import queue

        n = 0
        while True:
            try:
                self.tasks.get_nowait()
            except queue.Empty:
                return n
            n += 1

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        for _ in self.threads:
            self.tasks.put(None)
        for worker in self.threads:
            worker.join()


def _work(tasks: Any) -> None:
    """A worker: run queued calls until told to leave (None)."""
    while True:
        item = tasks.get()
        if item is None:
            return
        name, action, results = item
        turns.take()  # as many act at once as there are CPUs; any number wait (turns.py)
        try:
            results.put((_run(action, name), None))
        except BaseException as exc:  # an interruption (cancel.CANCEL): said by _parallel
            results.put((None, exc))
        finally:
            turns.give()


def _parallel(
    pool: _Pool, calls: Sequence[tuple[str, Callable[[], Outcome | None]]]
) -> Iterator[Outcome]:
    """Run one level's actions: in this thread when there is one, else on the pool. Each
    outcome is yielded the moment it is known (the order they finish in, not the order of
    ``calls``): a quick service is never reported behind a slow one. A call that returns None
    had nothing to do (stopall's service that was not running): nothing is yielded for it.

    On interruption, worker threads are told to stop waiting (cancel.CANCEL) so that each
    undoes its half-done action before servicectl exits.
    """
    if len(calls) == 1:
        name, action = calls[0]
        one = _run(action, name)
        if one is not None:
            yield one
        return
    import queue

    results: Any = queue.SimpleQueue()
    pool.run(calls, results)
    pending = len(calls)
    errors: list[BaseException] = []
    try:
        while pending:
            outcome, error = results.get()
            pending -= 1
            if error is not None:
                raise error
            if outcome is not None:
                yield outcome
    except BaseException as exc:
        cancel.CANCEL.set()
        pending -= pool.withdraw()
        if not isinstance(exc, KeyboardInterrupt):
            raise
        # Wait for the workers to undo or leave their actions, and say what each left.
        for _ in range(pending):
            errors.append(results.get()[1])
        said = [getattr(exc, "message", None)]
        said += [getattr(e, "message", None) for e in errors if e is not None]
        messages = list(dict.fromkeys(m for m in said if m))
        if not messages:
            raise
        raise Interrupted("\n".join(messages)) from None


def _run(action: Callable[[], Outcome | None], name: str) -> Outcome | None:
    t0 = time.monotonic()
    try:
        outcome = action()
        if outcome is None:
            return None
    except ServicectlError as exc:
        outcome = Outcome(
            name,
            exc.exit_code,
            exc.message.removeprefix(f"{name}: "),
            detail=exc.detail,
            ok_line=False,
        )
    except Exception as exc:  # R-VIEW-4: this service's internal error is said; the others go on
        outcome = Outcome(name, 1, lastresort.in_action(exc), ok_line=False)
    if not outcome.elapsed:
        outcome.elapsed = time.monotonic() - t0
    return outcome


def start_ordered(
    catalog: Catalog,
    names: Iterable[str],
    jobs: int = DEFAULT_JOBS,
    report: Report | None = None,
    progress: Progress = silent,
) -> list[Outcome]:
    """Start ``names`` with their dependencies first, level by level, in parallel.

    A service whose dependency failed (or is invalid, or missing) is skipped with the reason.
    """
    outcomes: list[Outcome] = []
    with _Pool(jobs) as pool:
        emit = _emitter(outcomes, report)
        _start_levels(catalog, dependency_closure(catalog, names), pool, emit, progress=progress)
    return outcomes


def _emitter(outcomes: list[Outcome], report: Report | None) -> Report:
    def emit(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if report:
            report(outcome)

    return emit


def _start_levels(
    catalog: Catalog,
    wanted: set[str],
    pool: _Pool,
    emit: Report,
    failed: dict[str, str] | None = None,
    action: Callable[..., Outcome] = route.start,
    progress: Progress = silent,
) -> None:
    """Run ``action`` (start) on exactly ``wanted``, dependencies first, level by level; a
    service whose dependency failed (in ``failed``, updated here), is invalid or is missing is
    skipped with the reason."""
    failed = {} if failed is None else failed
    for name in sorted(wanted):
        if name in catalog.invalid:
            failed[name] = "is invalid"
            err = catalog.invalid[name].first_error
            emit(Outcome(name, err.exit_code, f"invalid definition: {err.message}", ok_line=False))
    for level in levels(catalog, [n for n in wanted if n in catalog.services]):
        batch: list[tuple[str, Callable[[], Outcome]]] = []
        for name in level:
            svc = catalog.services[name]
            bad = [d for d in svc.depends if d in failed or d not in catalog.services]
            if bad:
                why = failed.get(bad[0], "is not defined")
                failed[name] = "was skipped"
                message = f"skipped: dependency {bad[0]} {_failure_phrase(why)}"
                emit(Outcome(name, Exit.FAILURE, message, ok_line=False))
                continue
            batch.append((name, _bound(action, svc, catalog.dirs, progress)))
        for outcome in _parallel(pool, batch):
            if outcome.code != Exit.OK:
                failed[outcome.name] = "failed to start"
            emit(outcome)


def _failure_phrase(why: str) -> str:
    return "failed to start" if why == "failed to start" else why


def stop_ordered(
    catalog: Catalog,
    names: Iterable[str],
    jobs: int = DEFAULT_JOBS,
    report: Report | None = None,
    progress: Progress = silent,
) -> list[Outcome]:
    """Stop ``names``, dependents before their dependencies, each level in parallel."""
    outcomes: list[Outcome] = []
    with _Pool(jobs) as pool:
        _stop_levels(catalog, names, pool, _emitter(outcomes, report), progress)
    return outcomes


def _stop_levels(
    catalog: Catalog,
    names: Iterable[str],
    pool: _Pool,
    emit: Report,
    progress: Progress = silent,
    if_running: bool = False,
) -> None:
    """Stop ``names``, dependents first, each level in parallel; with ``if_running``, each
    worker first looks whether its service runs (running_names) and leaves it, unsaid, if
    not: stopall's look at every service is made by the pool, beside the stops, not in a
    serial pass before them (at 1,000 services that pass was a fifth of a stopall)."""
    chosen = [n for n in names if n in catalog.services]
    action = _bound_stop_if_running if if_running else _bound_stop
    for level in reversed(levels(catalog, chosen)):
        calls = [(n, action(catalog, n, progress)) for n in level]
        for outcome in _parallel(pool, calls):
            emit(outcome)


def _bound_stop(catalog: Catalog, name: str, progress: Progress) -> Callable[[], Outcome]:
    return _bound(route.stop, catalog.services[name], catalog.dirs, progress)


def _bound_stop_if_running(
    catalog: Catalog, name: str, progress: Progress
) -> Callable[[], Outcome | None]:
    def stop_if_running() -> Outcome | None:
        if not running_names(catalog, [name]):
            return None
        return route.stop(catalog.services[name], catalog.dirs, progress)

    return stop_if_running


def running_names(catalog: Catalog, names: Iterable[str]) -> list[str]:
    """Which of ``names`` are running now (by inspection, without locks), or may be brought back
    by their supervisor (an exit it is handling, a respawn it has scheduled)."""
    out = []
    for name in names:
        svc = catalog.services.get(name)
        if svc is None:
            continue
        obs = observe.inspect(svc, catalog.dirs)
        if obs.running or supervised.pending(obs.record) or is_locked(catalog.dirs.run, name):
            out.append(name)  # locked: a start (or a respawn) may be under way
        elif obs.state == EXITED:
            out.append(name)  # a oneshot that ran: its stop_command is due
    return out


def stop_with_dependents(
    catalog: Catalog,
    names: list[str],
    jobs: int = DEFAULT_JOBS,
    report: Report | None = None,
    progress: Progress = silent,
) -> list[Outcome]:
    """Stop ``names``; running services that depend on them are stopped first, and say so."""
    extra_running = _running_dependents(catalog, names)
    tag = _tagger(catalog, set(names), extra_running, report)
    return stop_ordered(catalog, sorted(set(names) | extra_running), jobs, tag, progress)


def _running_dependents(catalog: Catalog, names: list[str]) -> set[str]:
    """The running services that depend on ``names`` (transitively), but not ``names``."""
    extra = dependents_closure(catalog, names) - set(names)
    return set(running_names(catalog, sorted(extra)))


def _tagger(catalog: Catalog, asked: set[str], extra: set[str], report: Report | None) -> Report:
    """A report that says, on the line of each of ``extra``, which service it depends on
    (one acted on, else the one through which it depends on them: a stopped middle one)."""
    within = dependents_closure(catalog, asked)

    def tag(outcome: Outcome) -> None:
        if outcome.name in extra and outcome.name not in asked:
            depends = set(catalog.services[outcome.name].depends)
            deps = sorted(depends & (asked | extra)) or sorted(depends & within)
            outcome.message += f" (it depends on {', '.join(deps)})"
        if report:
            report(outcome)

    return tag


def restart_with_dependents(
    catalog: Catalog,
    names: list[str],
    jobs: int = DEFAULT_JOBS,
    report: Report | None = None,
    if_running: bool = False,
    progress: Progress = silent,
) -> list[Outcome]:
    """``restart NAME...`` (``try-restart`` with ``if_running``: only those that run), as
    systemd's Requires= would: the running services that depend on them are stopped first,
    the stopped services they depend on are started, they are restarted, and the dependents
    are started again; each dependent's line says which service it depends on. A service
    that could not start again (its user, program or working directory is missing) is left
    running as it is, and so are its dependents."""
    outcomes: list[Outcome] = []
    emit = _emitter(outcomes, report)
    chosen, ready = [], []
    for name in names:
        if name not in catalog.services:
            continue
        svc = catalog.services[name]
        obs = observe.inspect(svc, catalog.dirs) if if_running else None
        if obs is not None and not obs.running and obs.state != EXITED:
            pending = supervised.respawn_pending(obs.record)
            emit(Outcome(name, Exit.OK, f"not running{pending}; not started (try-restart)"))
        else:
            chosen.append(name)
    with _Pool(jobs) as pool:
        for name in chosen:
            try:
                lifecycle.preflight(catalog.services[name])
                ready.append(name)
            except ServicectlError:  # restart says why, and that it still runs
                said = _run(
                    _bound(route.restart, catalog.services[name], catalog.dirs, progress), name
                )
                if said is not None:
                    emit(said)
        extra = _running_dependents(catalog, ready)
        tag = _tagger(catalog, set(ready), extra, emit)
        _stop_levels(catalog, extra, pool, tag, progress)
        needed = dependency_closure(catalog, ready) - set(ready)
        stopped = needed - set(running_names(catalog, needed))
        failed: dict[str, str] = {}
        _start_levels(catalog, stopped, pool, emit, failed, progress=progress)
        _start_levels(catalog, set(ready), pool, emit, failed, route.restart, progress)
        _start_levels(catalog, extra, pool, tag, failed, progress=progress)
    return outcomes


def startall(
    catalog: Catalog,
    jobs: int = DEFAULT_JOBS,
    report: Report | None = None,
    progress: Progress = silent,
) -> list[Outcome]:
    """Start every enabled service (for a template, its listed instances) and what they
    depend on, dependencies first."""
    enabled = [n for n, s in catalog.services.items() if s.in_startall]
    invalid = list(catalog.invalid)
    return start_ordered(catalog, enabled + invalid, jobs, report, progress)


def stopall(
    catalog: Catalog,
    jobs: int = DEFAULT_JOBS,
    report: Report | None = None,
    progress: Progress = silent,
) -> list[Outcome]:
    """Stop every running service, enabled or not, dependents first (the order of all the
    services' dependencies: a running service is stopped before what it depends on, even
    through one that is not running). Whether each runs is looked at by the workers."""
    outcomes: list[Outcome] = []
    with _Pool(jobs) as pool:
        _stop_levels(catalog, catalog.services, pool, _emitter(outcomes, report), progress, True)
    return outcomes
