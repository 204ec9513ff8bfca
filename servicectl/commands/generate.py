"""``initd`` and ``unit``: write one service's init.d shim or systemd unit (or, with
``--boot``, the fleet's boot file), atomically, never over a file servicectl did not
write unless ``--force``.
"""

from __future__ import annotations

import os

from servicectl.commands.resolve import (
    catalog_for,
    dirs,
    known_names,
    no_services_dir,
    requested_names,
    valid_names,
)
from servicectl.errors import Exit, ServicectlError
from servicectl.output.face import face
from servicectl.text import escape

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any


# ---------------------------------------------------------------------------------------------
# Generated files


def initd(
    names: tuple[str, ...], all_: bool, boot: bool, directory: Path, stdout: bool, force: bool
) -> int:
    return _generate("initd", requested_names(names), all_, boot, directory, stdout, force)


def unit(
    names: tuple[str, ...], all_: bool, boot: bool, directory: Path, stdout: bool, force: bool
) -> int:
    return _generate("unit", requested_names(names), all_, boot, directory, stdout, force)


def _generate(
    kind: str,
    names: list[str],
    all_: bool,
    boot: bool,
    directory: Path,
    stdout: bool,
    force: bool,
) -> int:
    from servicectl.commands import shims, units

    chosen = sum((bool(names), all_, boot))
    if chosen != 1:
        more = "" if chosen == 0 else " (only one of them)"
        face.error(f"{kind}: name services, or give --all or --boot{more}")
        return Exit.USAGE
    if not stdout and not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        face.error(f"{kind}: the directory {directory} {what}; nothing was written")
        return Exit.FAILURE
    if not stdout and not _writable(directory):
        face.error(
            f"{kind}: cannot write into {directory}: servicectl runs as uid {os.geteuid()}, "
            f"and writing there needs root (run it as root: sudo servicectl {kind} ...; or "
            f"print with --stdout, or give --dir a directory you can write); nothing was written"
        )
        return Exit.PRIVILEGE
    exe = shims.servicectl_executable()
    if boot:
        from servicectl.commands import boot as boot_files

        makers = [boot_files.initd_file]
        if kind == "unit":
            makers = [boot_files.unit_file, boot_files.supervisor_unit_file]
        try:
            files = [make(dirs(), exe) for make in makers]
        except ServicectlError as exc:
            face.error(f"{kind} --boot: {exc.message}")
            return int(exc.exit_code)
        return _write(kind, files, directory, stdout, force, 0)
    catalog = catalog_for(also=names)
    if all_ and no_services_dir(catalog):
        return Exit.NOT_CONFIGURED
    # --all covers every definition: invalid ones are reported (exit 6), not skipped silently.
    known, code = (catalog.names(), 0) if all_ else known_names(catalog, names, Exit.NOT_INSTALLED)
    wanted, bad = valid_names(catalog, known)
    code = max(code, bad)
    make = shims.initd_file if kind == "initd" else units.unit_file
    files = []
    for name in wanted:
        try:
            files.append(make(catalog.services[name], catalog.dirs, exe))
        except ServicectlError as exc:
            face.error(f"{name}: {exc.message}")
            code = max(code, exc.exit_code)
    return _write(kind, files, directory, stdout, force, code)


def _writable(directory: Path) -> bool:
    """Whether servicectl's user may create files in ``directory`` (by its effective ids)."""
    try:
        return os.access(directory, os.W_OK | os.X_OK, effective_ids=True)
    except NotImplementedError:  # effective_ids unsupported: the real ids are servicectl's too
        return os.access(directory, os.W_OK | os.X_OK)


def _write(
    kind: str, files: list[Any], directory: Path, stdout: bool, force: bool, code: int
) -> int:
    from servicectl.commands import shims

    if stdout:
        for f in files:
            face.out(f.content)
        return code
    for f, result in zip(files, shims.write_files(files, directory, force)):
        label = f.name.removesuffix(".service") if kind == "unit" else f.name
        if result.ok:
            face.line(escape(f"{label}: {result.message}"))
        else:
            face.error(f"{f.name}: {result.message}")
            code = max(code, Exit.FAILURE)
    return code
