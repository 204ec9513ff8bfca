"""The full command-line grammar of servicectl, in typer: help, completion, every command and
option. Each command hands its arguments to the implementation of the same name in cli.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from servicectl import __version__, cli

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
SOME_NAMES = typer.Argument(None, help="Services (default: all).", show_default=False)
GEN_NAMES = typer.Argument(None, show_default=False, help="Services (or --all).")
JSON = typer.Option(False, "--json", help="Print a JSON list.")
ALL = typer.Option(False, "--all", help="Every valid service.")
STDOUT = typer.Option(False, "--stdout", help="Print instead of writing.")
FORCE = typer.Option(False, "--force", help="Overwrite files servicectl did not write.")


def _jobs(what: str) -> int:
    opt: int = typer.Option(64, "--jobs", "-j", min=1, help=f"Parallel {what} per level.")
    return opt


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
    cli.set_dirs(services_dir, run_dir, log_dir)


@app.command()
def start(names: list[str] = NAMES, jobs: int = _jobs("starts")) -> None:
    """Start services (their stopped dependencies first); success if already running."""
    cli.start(names, jobs)


@app.command()
def stop(names: list[str] = NAMES, jobs: int = _jobs("stops")) -> None:
    """Stop services; running services that depend on them are stopped first."""
    cli.stop(names, jobs)


@app.command()
def restart(names: list[str] = NAMES) -> None:
    """Stop if running, then start."""
    cli.restart(names)


@app.command("try-restart")
def try_restart(names: list[str] = NAMES) -> None:
    """Restart only services that are running."""
    cli.try_restart(names)


@app.command()
def reload(names: list[str] = NAMES) -> None:
    """Send reload_signal or run reload_command (3: cannot reload, 7: not running)."""
    cli.reload(names)


@app.command("force-reload")
def force_reload(names: list[str] = NAMES) -> None:
    """Reload if supported, else restart if running."""
    cli.force_reload(names)


@app.command()
def status(names: Optional[list[str]] = SOME_NAMES, as_json: bool = JSON) -> None:
    """Show state, PID, uptime, memory, CPU and description (LSB status codes)."""
    cli.status(names, as_json)


@app.command()
def startall(jobs: int = _jobs("starts")) -> None:
    """Start every enabled service, dependencies first, each level in parallel."""
    cli.startall(jobs)


@app.command()
def stopall(jobs: int = _jobs("stops")) -> None:
    """Stop every running service, dependents first, each level in parallel."""
    cli.stopall(jobs)


@app.command("list")
def list_(as_json: bool = JSON) -> None:
    """List definitions: name, type, enabled, depends, description."""
    cli.list_(as_json)


@app.command()
def check(names: Optional[list[str]] = SOME_NAMES) -> None:
    """Validate definitions without touching any process (6 if any is invalid)."""
    cli.check(names)


@app.command()
def logs(
    name: str = typer.Argument(..., help="Service name.", show_default=False),
    lines: int = typer.Option(20, "-n", "--lines", min=0, help="How many lines."),
    follow: bool = typer.Option(False, "-f", "--follow", help="Keep printing new lines."),
) -> None:
    """Print the end of the service's output log."""
    cli.logs(name, lines, follow)


@app.command()
def initd(
    names: Optional[list[str]] = GEN_NAMES,
    all_: bool = ALL,
    directory: Path = typer.Option(Path("/etc/init.d"), "--dir", help="Where to write."),
    stdout: bool = STDOUT,
    force: bool = FORCE,
) -> None:
    """Write LSB init.d shims that hand every action to servicectl."""
    cli.initd(names, all_, directory, stdout, force)


@app.command()
def unit(
    names: Optional[list[str]] = GEN_NAMES,
    all_: bool = ALL,
    directory: Path = typer.Option(Path("/etc/systemd/system"), "--dir", help="Where to write."),
    stdout: bool = STDOUT,
    force: bool = FORCE,
) -> None:
    """Write native systemd units that hand every action to servicectl."""
    cli.unit(names, all_, directory, stdout, force)


@app.command("import")
def import_(
    paths: list[str] = typer.Argument(
        ...,
        help="init.d scripts or systemd .service units to read (never run).",
        show_default=False,
    ),
    write: bool = typer.Option(False, "--write", help="Write NAME.yaml into the services dir."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing NAME.yaml."),
) -> None:
    """Turn init.d scripts and systemd units into definitions; list what was not converted."""
    from servicectl import importer

    raise typer.Exit(importer.main(paths, write, force, cli._dirs()))
