"""The command-line face of servicectl: parsing, printing and exit codes, no process logic.

Heavy modules (rich, psutil, yaml) are imported only by the commands that need them.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from servicectl import __version__
from servicectl.errors import Exit, ServicectlError, StatusCode

if TYPE_CHECKING:
    from servicectl.config import Catalog
    from servicectl.lifecycle import Outcome, Status
    from servicectl.paths import Dirs

app = typer.Typer(
    name="servicectl",
    help="Start, stop, reload and watch services described by one YAML file each.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

NAMES = typer.Argument(
    ..., help="Service names (file stems in the services directory).", show_default=False
)


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
        line = f"{o.name}: {o.message}"
        if o.ok_line and o.code == Exit.OK:
            print(line, flush=True)
        else:
            print(self.paint("servicectl: " + line, "31", err=True), file=sys.stderr, flush=True)
        if o.detail:
            print(o.detail, file=sys.stderr if o.code else sys.stdout, flush=True)

    def error(self, message: str, detail: str = "") -> None:
        print(self.paint(f"servicectl: {message}", "31", err=True), file=sys.stderr, flush=True)
        if detail:
            print(detail, file=sys.stderr, flush=True)


def _wants_color(stream: object) -> bool:
    if os.environ.get("NO_COLOR") is not None or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


face = Face()


def _version(value: bool) -> None:
    if value:
        print(f"servicectl {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    services_dir: Optional[Path] = typer.Option(
        None,
        "-d",
        "--services-dir",
        help="Service definitions [env SERVICECTL_SERVICES_DIR].",
        show_default=False,
    ),
    run_dir: Optional[Path] = typer.Option(
        None,
        "--run-dir",
        help="PID files, state, locks [env SERVICECTL_RUN_DIR].",
        show_default=False,
    ),
    log_dir: Optional[Path] = typer.Option(
        None, "--log-dir", help="Service output logs [env SERVICECTL_LOG_DIR].", show_default=False
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Start, stop, reload and watch services described by one YAML file each."""
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
        missing = _dir_note(where)
        face.error(f"{name}: no such service: no {name}.yaml in {where}{missing}{hint}")
        code = max(code, unknown_code)
    return known, code


def _dir_note(where: Path) -> str:
    """Why a services directory shows no definitions, when that is not just an empty one."""
    try:
        os.scandir(where).close()
    except FileNotFoundError:
        return " (the directory does not exist)"
    except OSError as exc:
        return f" ({exc.strerror})"
    return ""


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
    raise typer.Exit(int(code))


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
            outcome = action(svc, catalog.dirs)
        except ServicectlError as exc:
            face.error(exc.message, exc.detail)
            code = max(code, exc.exit_code)
            continue
        face.outcome(outcome)
        code = max(code, outcome.code)
    _finish(code)


def _ordered_outcomes(outcomes: list[Outcome]) -> int:
    return max((o.code for o in outcomes), default=0)


@app.command()
def start(
    names: list[str] = NAMES,
    jobs: int = typer.Option(64, "--jobs", "-j", min=1, help="Parallel starts per level."),
) -> None:
    """Start services (their stopped dependencies first); success if already running."""
    from servicectl import fleet

    catalog = _catalog(names)
    known, code = _known(catalog, names, Exit.NOT_INSTALLED)
    outcomes = fleet.start_ordered(catalog, known, jobs, face.outcome)
    _finish(max(code, _ordered_outcomes(outcomes)))


@app.command()
def stop(
    names: list[str] = NAMES,
    jobs: int = typer.Option(64, "--jobs", "-j", min=1, help="Parallel stops per level."),
) -> None:
    """Stop services; running services that depend on them are stopped first."""
    from servicectl import fleet

    catalog = _catalog()
    known, code = _known(catalog, names, Exit.NOT_INSTALLED)
    valid, bad = _invalid(catalog, known)
    outcomes = fleet.stop_with_dependents(catalog, valid, jobs, face.outcome)
    _finish(max(code, bad, _ordered_outcomes(outcomes)))


@app.command()
def restart(names: list[str] = NAMES) -> None:
    """Stop if running, then start."""
    _each(names, "restart")


@app.command("try-restart")
def try_restart(names: list[str] = NAMES) -> None:
    """Restart only services that are running."""
    _each(names, "try_restart")


@app.command()
def reload(names: list[str] = NAMES) -> None:
    """Send reload_signal or run reload_command (3: cannot reload, 7: not running)."""
    _each(names, "reload")


@app.command("force-reload")
def force_reload(names: list[str] = NAMES) -> None:
    """Reload if supported, else restart if running."""
    _each(names, "force_reload")


@app.command()
def status(
    names: Optional[list[str]] = typer.Argument(
        None, help="Services (default: all).", show_default=False
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Show state, PID, uptime, memory, CPU and description (LSB status codes)."""
    from servicectl import lifecycle
    from servicectl.lifecycle import Status

    catalog = _catalog(names or None)
    rows: list[Status] = []
    code = 0
    wanted = names or catalog.names()
    for name in dict.fromkeys(wanted):
        if name in catalog.invalid:
            err = catalog.invalid[name].first_error
            rows.append(Status(name, "invalid", StatusCode.UNKNOWN, error=err.message))
        elif name in catalog.services:
            rows.append(lifecycle.status(catalog.services[name], catalog.dirs))
        else:
            rows.append(
                Status(
                    name,
                    "unknown",
                    StatusCode.UNKNOWN,
                    error=f"no such service in {catalog.dirs.services}",
                )
            )
    code = max((r.code for r in rows), default=0)
    if as_json:
        import json

        print(json.dumps([r.to_dict() for r in rows], indent=2))
    elif not rows:
        where = catalog.dirs.services
        print(f"no services defined in {where}{_dir_note(where)}")
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
    "running": "32",
    "starting": "33",
    "stopped": "2",
    "dead": "31",
    "invalid": "31;1",
    "unknown": "31",
}


def _print_status(rows: list[Status]) -> None:
    header = ("NAME", "STATE", "PID", "UPTIME", "MEMORY", "CPU", "DESCRIPTION")
    table = []
    for r in rows:
        desc = r.error or r.status_text or r.description
        table.append(
            (
                r.name,
                r.state,
                str(r.pid or "-"),
                _fmt_uptime(r.uptime_seconds),
                _fmt_bytes(r.memory_bytes),
                "-" if r.cpu_percent is None else f"{r.cpu_percent:.1f}%",
                desc,
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
            print(f"  {r.name}: {note}")


@app.command()
def startall(
    jobs: int = typer.Option(64, "--jobs", "-j", min=1, help="Parallel starts per level."),
) -> None:
    """Start every enabled service, dependencies first, each level in parallel."""
    import time

    from servicectl import fleet

    t0 = time.monotonic()
    catalog = _catalog()
    outcomes = fleet.startall(catalog, jobs, _timed)
    _summary("started", outcomes, time.monotonic() - t0)
    _finish(Exit.OK if all(o.code == Exit.OK for o in outcomes) else Exit.FAILURE)


@app.command()
def stopall(
    jobs: int = typer.Option(64, "--jobs", "-j", min=1, help="Parallel stops per level."),
) -> None:
    """Stop every running service, dependents first, each level in parallel."""
    import time

    from servicectl import fleet

    t0 = time.monotonic()
    catalog = _catalog()
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


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print a JSON list.")) -> None:
    """List definitions: name, type, enabled, depends, description."""
    catalog = _catalog()
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
    w = max(len(i["name"]) for i in items)  # type: ignore[arg-type]
    print(f"{'NAME'.ljust(w)}  TYPE     ENABLED  DEPENDS  DESCRIPTION")
    for i in items:
        if not i["valid"]:
            print(f"{str(i['name']).ljust(w)}  invalid  -        -        {i['error']}")
            continue
        deps = ",".join(i["depends"]) or "-"  # type: ignore[arg-type]
        print(
            f"{str(i['name']).ljust(w)}  {str(i['type']).ljust(7)}  "
            f"{'yes' if i['enabled'] else 'no':7}  {deps.ljust(7)}  {i['description']}"
        )


@app.command()
def check(
    names: Optional[list[str]] = typer.Argument(
        None, help="Services (default: all).", show_default=False
    ),
) -> None:
    """Validate definitions without touching any process (6 if any is invalid)."""
    catalog = _catalog(use_cache=False)
    code = 0
    wanted = names or catalog.names()
    if names:
        wanted, code = _known(catalog, names, Exit.NOT_INSTALLED)
    if not wanted and not names:
        where = catalog.dirs.services
        face.error(f"no service definitions in {where}{_dir_note(where)}")
        _finish(Exit.NOT_CONFIGURED)
    for name in wanted:
        if name in catalog.invalid:
            for err in catalog.invalid[name].errors:
                face.error(err.message)
            code = max(code, Exit.NOT_CONFIGURED)
        else:
            print(f"{name}: ok ({catalog.services[name].file})")
    _finish(code)


@app.command()
def logs(
    name: str = typer.Argument(..., help="Service name.", show_default=False),
    lines: int = typer.Option(20, "-n", "--lines", min=0, help="How many lines."),
    follow: bool = typer.Option(False, "-f", "--follow", help="Keep printing new lines."),
) -> None:
    """Print the end of the service's output log."""
    from servicectl.lifecycle import tail_file

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
    for text in tail_file(path, lines) if lines else []:
        print(text)
    if not path.exists():
        face.error(f"{name}: no log yet at {path} (has it ever started?)")
        if not follow:
            _finish(Exit.FAILURE)
    if follow:
        sys.stdout.flush()  # the tail first, then what follows
        _follow(path)


def _follow(path: Path) -> None:
    """Print lines appended to ``path`` until interrupted; survives copytruncate and rotation."""
    import time

    # Nothing is under way that would need undoing: Ctrl-C or TERM just end the follow.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    fh = None
    pos = path.stat().st_size if path.exists() else 0
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


@app.command()
def initd(
    names: Optional[list[str]] = typer.Argument(
        None, show_default=False, help="Services (or --all)."
    ),
    all_: bool = typer.Option(False, "--all", help="Every valid service."),
    directory: Path = typer.Option(Path("/etc/init.d"), "--dir", help="Where to write."),
    stdout: bool = typer.Option(False, "--stdout", help="Print instead of writing."),
    force: bool = typer.Option(False, "--force", help="Overwrite files servicectl did not write."),
) -> None:
    """Write LSB init.d shims that hand every action to servicectl."""
    _generate("initd", names, all_, directory, stdout, force)


@app.command()
def unit(
    names: Optional[list[str]] = typer.Argument(
        None, show_default=False, help="Services (or --all)."
    ),
    all_: bool = typer.Option(False, "--all", help="Every valid service."),
    directory: Path = typer.Option(Path("/etc/systemd/system"), "--dir", help="Where to write."),
    stdout: bool = typer.Option(False, "--stdout", help="Print instead of writing."),
    force: bool = typer.Option(False, "--force", help="Overwrite files servicectl did not write."),
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
    face.error(f"interrupted by {name}; undoing what was under way (a half-done start is stopped)")
    raise KeyboardInterrupt


def main() -> None:
    """Console entry point. SIGTERM is handled like Ctrl-C: the action under way undoes what it
    half did (a start kills what it spawned), then servicectl exits 130."""
    signal.signal(signal.SIGTERM, _on_interrupt)
    # File names need not be UTF-8 ("bad\xff.yaml"): show such bytes escaped, never crash on them.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_interrupt)
    try:
        app()
    except ServicectlError as exc:
        face.error(exc.message, exc.detail)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
