"""The command-line face of servicectl: parsing, printing and exit codes, no process logic.

The everyday forms (start/stop/status... NAMES) are parsed here without importing typer, which
costs 20-30 ms per call; anything else (help, completion, other commands, a usage error) goes to
the full typer grammar in cli_typer.py. Heavy modules are imported only where needed.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from servicectl.errors import Exit, ServicectlError, StatusCode
from servicectl.states import DEAD, INVALID, RUNNING, STARTING, STOPPED, UNKNOWN

if TYPE_CHECKING:
    from servicectl.config import Catalog
    from servicectl.observe import Status
    from servicectl.outcome import Outcome
    from servicectl.paths import Dirs


class Face:
    """Where lines go: stdout for what happened, stderr for errors; colour only on a terminal."""

    def __init__(self) -> None:
        self.dirs: Dirs | None = None
        self.color_out = _wants_color(sys.stdout)
        self.color_err = _wants_color(sys.stderr)

    def paint(self, text: str, code: str, err: bool = False) -> str:
        if not (self.color_err if err else self.color_out):
            return text
        return f"\033[{code}m{text}\033[0m"

    def outcome(self, o: Outcome) -> None:
        line = shown(f"{o.name}: {o.message}")
        if o.ok_line and o.code == Exit.OK:
            print(line, flush=True)
        else:
            print(self.paint("servicectl: " + line, "31", err=True), file=sys.stderr, flush=True)
        if o.detail:
            print(shown(o.detail), file=sys.stderr if o.code else sys.stdout, flush=True)

    def error(self, message: str, detail: str = "") -> None:
        line = self.paint(f"servicectl: {shown(message)}", "31", err=True)
        print(line, file=sys.stderr, flush=True)
        if detail:
            print(shown(detail), file=sys.stderr, flush=True)


# C0 and C1 controls (newline and tab excepted), line/paragraph separators and bidi controls:
# a file name, a description or a log line cannot move the cursor, recolour the terminal or
# reorder what is shown.
_UNSHOWN = {
    c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"
    for c in [
        *range(0x00, 0x09),
        *range(0x0B, 0x20),
        *range(0x7F, 0xA0),
        0x2028,
        0x2029,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ]
}


def shown(text: str) -> str:
    """``text`` as printed: control characters escaped (``\\x1b``), newlines kept."""
    return text.translate(_UNSHOWN)


def _wants_color(stream: object) -> bool:
    if os.environ.get("NO_COLOR") is not None or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


face = Face()


def set_dirs(
    services_dir: Path | None = None, run_dir: Path | None = None, log_dir: Path | None = None
) -> None:
    """The global options: where definitions, run state and logs are."""
    from servicectl.paths import resolve_dirs

    face.dirs = resolve_dirs(services_dir, run_dir, log_dir)


def _dirs() -> Dirs:
    assert face.dirs is not None
    return face.dirs


def _catalog(names: list[str] | None = None, use_cache: bool = True) -> Catalog:
    from servicectl.config import load_catalog

    return load_catalog(_dirs(), names, use_cache)


def _known(catalog: Catalog, names: list[str], unknown_code: int) -> tuple[list[str], int]:
    """Names that have a definition; report the others."""
    code = 0
    known = []
    for name in dict.fromkeys(names):
        if name in catalog.services or name in catalog.invalid:
            known.append(name)
            continue
        hint = ""
        import difflib

        near = difflib.get_close_matches(name, catalog.names(), n=1)
        if near:
            hint = f" (did you mean {near[0]}?)"
        where = _dirs().services
        if catalog.problems:
            face.error(f"{name}: no such service: {catalog.problems[0]}{_DIR_HINT}")
        else:
            face.error(f"{name}: no such service: no {name}.yaml in {where}{hint}")
        code = max(code, unknown_code)
    return known, code


_DIR_HINT = " (give the right one with -d, or set SERVICECTL_SERVICES_DIR)"


def _no_services_dir(catalog: Catalog, code: int) -> None:
    """For commands on every service: a services directory that cannot be listed is an error
    (``code``: 4 for status, 6 for the others), not an empty list."""
    if catalog.problems:
        face.error(catalog.problems[0] + _DIR_HINT)
        _finish(code)


def _invalid(catalog: Catalog, names: list[str]) -> tuple[list[str], int]:
    code = 0
    valid = []
    for name in names:
        if name in catalog.invalid:
            err = catalog.invalid[name].first_error
            face.error(f"{name}: invalid definition: {err.message}")
            code = max(code, Exit.NOT_CONFIGURED)
        else:
            valid.append(name)
    return valid, code


def _finish(code: int) -> None:
    sys.exit(int(code))


def _each(names: list[str], action_name: str) -> None:
    """Run a single-service action on each name; exit with the highest code."""
    from servicectl import lifecycle

    catalog = _catalog(names)
    known, code = _known(catalog, names, Exit.NOT_INSTALLED)
    valid, bad = _invalid(catalog, known)
    code = max(code, bad)
    action = getattr(lifecycle, action_name)
    for name in valid:
        svc = catalog.services[name]
        try:
            with _explained_interrupt():
                outcome = action(svc, catalog.dirs)
        except ServicectlError as exc:
            message = exc.message
            if not message.startswith(f"{name}: "):
                message = f"{name}: {message}"  # directory-level errors name no service
            face.error(message, exc.detail)
            code = max(code, exc.exit_code)
            continue
        face.outcome(outcome)
        code = max(code, outcome.code)
    _finish(code)


@contextmanager
def _explained_interrupt() -> Iterator[None]:
    """Say in which state an interrupted action left its service, then let the interruption
    end servicectl (exit 130)."""
    try:
        yield
    except KeyboardInterrupt as exc:
        message = getattr(exc, "message", None)
        for line in message.splitlines() if message else []:
            face.error(line)
        raise


def _ordered_outcomes(outcomes: list[Outcome]) -> int:
    return max((o.code for o in outcomes), default=0)


def start(names: list[str], jobs: int = 64) -> None:
    """Start services (their stopped dependencies first); success if already running."""
    from servicectl import fleet

    catalog = _catalog(names)
    known, code = _known(catalog, names, Exit.NOT_INSTALLED)
    with _explained_interrupt():
        outcomes = fleet.start_ordered(catalog, known, jobs, face.outcome)
    _finish(max(code, _ordered_outcomes(outcomes)))


def stop(names: list[str], jobs: int = 64) -> None:
    """Stop services; running services that depend on them are stopped first."""
    from servicectl import fleet

    catalog = _catalog()
    known, code = _known(catalog, names, Exit.NOT_INSTALLED)
    valid, bad = _invalid(catalog, known)
    with _explained_interrupt():
        outcomes = fleet.stop_with_dependents(catalog, valid, jobs, face.outcome)
    _finish(max(code, bad, _ordered_outcomes(outcomes)))


def restart(names: list[str]) -> None:
    """Stop if running, then start."""
    _each(names, "restart")


def try_restart(names: list[str]) -> None:
    """Restart only services that are running."""
    _each(names, "try_restart")


def reload(names: list[str]) -> None:
    """Send reload_signal or run reload_command (3: cannot reload, 7: not running)."""
    _each(names, "reload")


def force_reload(names: list[str]) -> None:
    """Reload if supported, else restart if running."""
    _each(names, "force_reload")


def status(names: list[str] | None = None, as_json: bool = False) -> None:
    """Show state, PID, uptime, memory, CPU and description (LSB status codes)."""
    from servicectl import observe
    from servicectl.observe import Status
    from servicectl.paths import run_dir_problem

    catalog = _catalog(names or None)
    if not names and catalog.problems:
        if as_json:
            print("[]")
        _no_services_dir(catalog, StatusCode.UNKNOWN)
    problem = run_dir_problem(catalog.dirs.run)
    if problem is not None:
        face.error(f"{problem.message}; the status of services is unknown")
    rows: list[Status] = []
    code = 0
    wanted = names or catalog.names()
    for name in dict.fromkeys(wanted):
        if name in catalog.invalid:
            err = catalog.invalid[name].first_error
            rows.append(Status(name, INVALID, StatusCode.UNKNOWN, error=err.message))
        elif name in catalog.services:
            rows.append(observe.status(catalog.services[name], catalog.dirs))
        else:
            rows.append(
                Status(
                    name,
                    UNKNOWN,
                    StatusCode.UNKNOWN,
                    error=catalog.problems[0]
                    if catalog.problems
                    else f"no such service in {catalog.dirs.services}",
                )
            )
    code = max((r.code for r in rows), default=0)
    if as_json:
        import json

        print(json.dumps([r.to_dict() for r in rows], indent=2))
    elif not rows:
        print(f"no services defined in {catalog.dirs.services}")
    else:
        _print_status(rows)
    _finish(code)


def _fmt_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "K", "M", "G"):
        if n < 1024 or unit == "G":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


STATE_COLOR = {
    RUNNING: "32",
    STARTING: "33",
    STOPPED: "2",
    DEAD: "31",
    INVALID: "31;1",
    UNKNOWN: "31",
}


def _print_status(rows: list[Status]) -> None:
    header = ("NAME", "STATE", "PID", "UPTIME", "MEMORY", "CPU", "DESCRIPTION")
    table = []
    for r in rows:
        desc = r.error or r.status_text or r.description
        table.append(
            (
                shown(r.name),
                r.state,
                str(r.pid or "-"),
                _fmt_uptime(r.uptime_seconds),
                _fmt_bytes(r.memory_bytes),
                "-" if r.cpu_percent is None else f"{r.cpu_percent:.1f}%",
                shown(desc).replace("\n", " "),
            )
        )
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header[:-1])]

    def line(cells: tuple[str, ...], state: str | None = None) -> str:
        parts = [c.ljust(w) for c, w in zip(cells[:-1], widths)]
        if state is not None:
            parts[1] = face.paint(parts[1], STATE_COLOR.get(state, "0"))
        return "  ".join([*parts, cells[-1]]).rstrip()

    print(face.paint(line(header), "1"))
    for r, cells in zip(rows, table):
        print(line(cells, r.state))
    for r in rows:
        for note in r.notes:
            print(shown(f"  {r.name}: {note}"))


def startall(jobs: int = 64) -> None:
    """Start every enabled service, dependencies first, each level in parallel."""
    import time

    from servicectl import fleet

    t0 = time.monotonic()
    catalog = _catalog()
    _no_services_dir(catalog, Exit.NOT_CONFIGURED)
    with _explained_interrupt():
        outcomes = fleet.startall(catalog, jobs, _timed)
    _summary("started", outcomes, time.monotonic() - t0)
    _finish(Exit.OK if all(o.code == Exit.OK for o in outcomes) else Exit.FAILURE)


def stopall(jobs: int = 64) -> None:
    """Stop every running service, dependents first, each level in parallel."""
    import time

    from servicectl import fleet

    t0 = time.monotonic()
    catalog = _catalog()
    _no_services_dir(catalog, Exit.NOT_CONFIGURED)
    with _explained_interrupt():
        outcomes = fleet.stopall(catalog, jobs, _timed)
    _summary("stopped", outcomes, time.monotonic() - t0)
    _finish(Exit.OK if all(o.code == Exit.OK for o in outcomes) else Exit.FAILURE)


def _timed(o: Outcome) -> None:
    if o.elapsed and "(" not in o.message.rsplit(" ", 1)[-1]:
        o.message += f" [{o.elapsed:.2f} s]"
    face.outcome(o)


def _summary(verb: str, outcomes: list[Outcome], elapsed: float) -> None:
    ok = sum(1 for o in outcomes if o.code == Exit.OK)
    failed = len(outcomes) - ok
    text = (
        f"{len(outcomes)} services: {ok} {verb}/ok, {failed} failed or skipped in {elapsed:.2f} s"
    )
    if failed:
        face.error(text)
    else:
        print(text)


def list_(as_json: bool = False) -> None:
    """List definitions: name, type, enabled, depends, description."""
    catalog = _catalog()
    if catalog.problems and as_json:
        print("[]")
    _no_services_dir(catalog, Exit.NOT_CONFIGURED)
    items: list[dict[str, Any]] = []
    for name in catalog.names():
        svc = catalog.services.get(name)
        if svc is None:
            err = catalog.invalid[name].first_error.message
            items.append(
                {
                    "name": name,
                    "type": None,
                    "enabled": None,
                    "depends": [],
                    "description": "",
                    "valid": False,
                    "error": err,
                }
            )
        else:
            items.append(
                {
                    "name": name,
                    "type": svc.type,
                    "enabled": svc.enabled,
                    "depends": list(svc.depends),
                    "description": svc.description,
                    "valid": True,
                    "error": None,
                }
            )
    if as_json:
        import json

        print(json.dumps(items, indent=2))
        return
    if not items:
        print(f"no services defined in {catalog.dirs.services}")
        return
    w = max(len(shown(str(i["name"]))) for i in items)
    print(f"{'NAME'.ljust(w)}  TYPE     ENABLED  DEPENDS  DESCRIPTION")
    for i in items:
        name = shown(str(i["name"])).ljust(w)
        if not i["valid"]:
            print(shown(f"{name}  invalid  -        -        {i['error']}").replace("\n", " "))
            continue
        deps = ",".join(i["depends"]) or "-"  # type: ignore[arg-type]
        print(
            shown(
                f"{name}  {str(i['type']).ljust(7)}  "
                f"{'yes' if i['enabled'] else 'no':7}  {deps.ljust(7)}  {i['description']}"
            ).replace("\n", " ")
        )


def check(names: list[str] | None = None) -> None:
    """Validate definitions without touching any process (6 if any is invalid)."""
    catalog = _catalog(use_cache=False)
    if not names:
        _no_services_dir(catalog, Exit.NOT_CONFIGURED)
    code = 0
    wanted = names or catalog.names()
    if names:
        wanted, code = _known(catalog, names, Exit.NOT_INSTALLED)
    if not wanted and not names:
        where = catalog.dirs.services
        face.error(f"no service definitions in {where}")
        _finish(Exit.NOT_CONFIGURED)
    for name in wanted:
        if name in catalog.invalid:
            for err in catalog.invalid[name].errors:
                face.error(err.message)
            code = max(code, Exit.NOT_CONFIGURED)
        else:
            print(f"{name}: ok ({catalog.services[name].file})")
    _finish(code)


def logs(name: str, lines: int = 20, follow: bool = False) -> None:
    """Print the end of the service's output log."""
    from servicectl.outcome import tail_file

    catalog = _catalog([name])
    known, code = _known(catalog, [name], Exit.NOT_INSTALLED)
    valid, bad = _invalid(catalog, known)
    if not valid:
        _finish(max(code, bad))
    svc = catalog.services[name]
    if svc.stdout is None:
        face.error(f"{name}: output is discarded (stdout: null in {svc.file}); no log to show")
        _finish(Exit.FAILURE)
    path = svc.stdout
    assert path is not None
    if path.is_symlink():
        face.error(f"{name}: the log file {path} is a symlink; servicectl does not follow it")
        _finish(Exit.FAILURE)
    try:
        end = path.stat().st_size  # the tail ends here and the follow starts here: no gap
    except OSError:
        end = 0
    for text in tail_file(path, lines, end) if lines else []:
        print(text)
    if not path.exists():
        face.error(f"{name}: no log yet at {path} (has it ever started?)")
        if not follow:
            _finish(Exit.FAILURE)
    if follow:
        sys.stdout.flush()  # the tail first, then what follows
        _follow(path, end)


def _follow(path: Path, pos: int) -> None:
    """Print lines appended to ``path`` until interrupted; survives copytruncate and rotation."""
    import time

    # Nothing is under way that would need undoing: Ctrl-C or TERM just end the follow.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    fh = None
    ino = None
    try:
        while True:
            try:
                st = path.stat()
            except FileNotFoundError:
                st = None
            if st is not None and (fh is None or st.st_ino != ino):
                if fh:
                    fh.close()
                fh = open(path, "rb")  # noqa: SIM115
                ino = st.st_ino
                fh.seek(pos if pos <= st.st_size else 0)
            if fh is not None and st is not None:
                if st.st_size < fh.tell():
                    fh.seek(0)  # truncated
                chunk = fh.read()
                if chunk:
                    sys.stdout.write(chunk.decode("utf-8", "replace"))
                    sys.stdout.flush()
                pos = 0
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        if fh:
            fh.close()


def initd(
    names: list[str] | None,
    all_: bool = False,
    directory: Path = Path("/etc/init.d"),
    stdout: bool = False,
    force: bool = False,
) -> None:
    """Write LSB init.d shims that hand every action to servicectl."""
    _generate("initd", names, all_, directory, stdout, force)


def unit(
    names: list[str] | None,
    all_: bool = False,
    directory: Path = Path("/etc/systemd/system"),
    stdout: bool = False,
    force: bool = False,
) -> None:
    """Write native systemd units that hand every action to servicectl."""
    _generate("unit", names, all_, directory, stdout, force)


def _generate(
    kind: str, names: list[str] | None, all_: bool, directory: Path, stdout: bool, force: bool
) -> None:
    from servicectl import shims

    if bool(names) == all_:
        face.error(f"{kind}: name services, or give --all (not both)")
        _finish(Exit.USAGE)
    catalog = _catalog()
    if all_:
        _no_services_dir(catalog, Exit.NOT_CONFIGURED)
    # --all covers every definition: invalid ones are reported (exit 6), not skipped silently.
    known, code = (catalog.names(), 0) if all_ else _known(catalog, names or [], Exit.NOT_INSTALLED)
    wanted, bad = _invalid(catalog, known)
    code = max(code, bad)
    make = shims.initd_file if kind == "initd" else shims.unit_file
    exe = shims.servicectl_executable()
    files = []
    for name in wanted:
        try:
            files.append(make(catalog.services[name], catalog.dirs, exe))
        except ServicectlError as exc:
            face.error(f"{name}: {exc.message}")
            code = max(code, exc.exit_code)
    if stdout:
        for f in files:
            sys.stdout.write(f.content)
        _finish(code)
    for f, result in zip(files, shims.write_files(files, directory, force)):
        if result.ok:
            print(f"{Path(f.name).stem if kind == 'unit' else f.name}: {result.message}")
        else:
            face.error(f"{f.name}: {result.message}")
            code = max(code, Exit.FAILURE)
    _finish(code)


def _on_interrupt(signum: int, frame: object) -> None:
    name = signal.Signals(signum).name
    face.error(
        f"interrupted by {name}; finishing safely (a half-done start is undone; a service "
        f"being stopped stays tracked)"
    )
    raise KeyboardInterrupt


_GLOBAL_OPTIONS = {"-d": 0, "--services-dir": 0, "--run-dir": 1, "--log-dir": 2}
_WITH_NAMES = {
    "start": start,
    "stop": stop,
    "restart": restart,
    "try-restart": try_restart,
    "reload": reload,
    "force-reload": force_reload,
}
_WITH_JOBS = ("start", "stop", "startall", "stopall")


def _fast_path(argv: list[str]) -> Callable[[], None] | None:
    """The call for an everyday command line (global options, then start/stop/restart/
    try-restart/reload/force-reload NAME..., status [NAME...] [--json], list [--json],
    startall/stopall [-j N]), or None: typer parses everything else, errors included."""
    dirs: list[str | None] = [None, None, None]
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        opt, eq, value = argv[i].partition("=")
        if opt not in _GLOBAL_OPTIONS or (eq and opt == "-d"):
            return None
        if not eq:
            i += 1
            if i == len(argv):
                return None
            value = argv[i]
        if not value:
            return None
        dirs[_GLOBAL_OPTIONS[opt]] = value
        i += 1
    if i == len(argv):
        return None
    command, rest = argv[i], argv[i + 1 :]
    names: list[str] = []
    as_json = False
    jobs = 64
    k = 0
    while k < len(rest):
        arg = rest[k]
        opt, eq, value = arg.partition("=")
        if arg == "--json" and command in ("status", "list"):
            as_json = True
        elif opt in ("-j", "--jobs") and command in _WITH_JOBS and not (eq and opt == "-j"):
            if not eq:
                k += 1
                value = rest[k] if k < len(rest) else ""
            if not value.isdigit() or int(value) < 1:
                return None
            jobs = int(value)
        elif arg.startswith("-") or arg == "":
            return None
        else:
            names.append(arg)
        k += 1
    set_dirs(*(Path(d) if d is not None else None for d in dirs))
    if command in _WITH_NAMES and names:
        action = _WITH_NAMES[command]
        if command in _WITH_JOBS:
            return lambda: action(names, jobs)  # type: ignore[call-arg]
        return lambda: action(names)
    if command == "status":
        return lambda: status(names or None, as_json)
    if command == "list" and not names:
        return lambda: list_(as_json)
    if command in ("startall", "stopall") and not names:
        return lambda: (startall if command == "startall" else stopall)(jobs)
    return None


def run(argv: list[str]) -> int:
    """Parse ``argv`` (without the program name), do the command, and return its exit code.
    SIGTERM is handled like Ctrl-C: the action under way undoes what it half did (a start
    kills what it spawned), then the code is 130."""
    signal.signal(signal.SIGTERM, _on_interrupt)
    # File names need not be UTF-8 ("bad\xff.yaml"): show such bytes escaped, never crash on them.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_interrupt)
    try:
        completing = any(k.startswith("_SERVICECTL_COMPLETE") for k in os.environ)
        call = None if completing else _fast_path(argv)
        if call is not None:
            call()
        else:
            from servicectl.cli_typer import app

            app(args=argv, prog_name="servicectl")
    except SystemExit as exc:
        code = exc.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except ServicectlError as exc:
        face.error(exc.message, exc.detail)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return 130  # what was left is already said (_on_interrupt, _explained_interrupt)
    return 0


def main() -> None:
    """Console entry point: run the command, flush the output, and leave at once. Everything
    servicectl writes goes through os-level calls, locks are the kernel's, and no atexit work
    is needed, so the interpreter's teardown (about 6 ms here) is skipped."""
    code = run(sys.argv[1:])
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 1  # stdout closed or a broken pipe: the output was lost
    os._exit(code)


if __name__ == "__main__":
    main()
