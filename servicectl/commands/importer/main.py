"""``servicectl import PATH...``: an init.d script or a systemd unit read (never run) into the
definition an administrator would have written, with every line it could not carry over
listed at its top and on stderr.

Exit codes: 0 a definition was produced, 5 the file is missing, 6 no program to run was found
(or the file is no script or unit), 1 a definition could not be written.
"""

from __future__ import annotations

import os
import re
import stat
import sys

from servicectl.commands.importer.draft import Draft

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from servicectl.commands.importer.sysfiles import System
    from servicectl.paths import Dirs

MAX_BYTES = 1024 * 1024  # init scripts and units are a few kilobytes; a larger file is cut
NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]+$")
NOT_SERVICE_UNITS = (
    ".socket",
    ".timer",
    ".target",
    ".mount",
    ".path",
    ".automount",
    ".slice",
    ".scope",
    ".swap",
    ".device",
)


class Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _say(message: str) -> None:
    from servicectl.text import shown

    try:
        print(f"servicectl: {shown(message)}", file=sys.stderr, flush=True)
    except (BrokenPipeError, OSError):
        pass


def read_source(path: str) -> tuple[str, list[str], str | None]:
    """The file's text (at most MAX_BYTES), remarks on how it was read, and why the files it
    sources must not be read for it (None: they may). A FIFO, device or directory is never
    opened for reading (O_NONBLOCK, then fstat)."""
    remarks: list[str] = []
    raw, st = _read_bytes(path)
    if len(raw) > MAX_BYTES:
        raw = raw[:MAX_BYTES]
        raw = raw[: raw.rfind(b"\n") + 1] or raw
        remarks.append(
            f"the file is larger than {MAX_BYTES // 1024} KiB: "
            f"only its first {len(raw)} bytes were read"
        )
    if raw.startswith(b"\x7fELF") or (
        b"\0" in raw[:4096] and not raw.startswith((b"#!", b"[", b"#"))
    ):
        raise Refused(6, f"{path}: a binary file, not a script or unit")
    return _decoded(raw, remarks), remarks, _untrusted(path, st)


def _untrusted(path: str, st: os.stat_result) -> str | None:
    """docs/security.md R-IMP-2: a script that someone other than root (or the user importing)
    could have written may not name files for servicectl to read: their values would be
    printed in the definition."""
    if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
        return (
            f"{path} could be written by another user (uid {st.st_uid}, mode "
            f"{stat.S_IMODE(st.st_mode):04o}): the files it sources were not read"
        )
    return None


def _open_source(path: str) -> int:
    """A read-only descriptor that cannot block or become a controlling terminal."""
    try:
        return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        raise Refused(5, f"{path}: no such file") from None
    except PermissionError:
        raise Refused(4, f"{path}: permission denied (run as a user who can read it)") from None
    except OSError as exc:
        raise Refused(5, f"{path}: cannot be opened: {exc.strerror}") from None


def _read_bytes(path: str) -> tuple[bytes, os.stat_result]:
    """Up to MAX_BYTES + 1 bytes of a regular file (one more tells that it was cut), and its
    fstat."""
    fd = _open_source(path)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            what = "a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO, socket or device"
            raise Refused(6, f"{path}: {what}, not a script or unit file: not read")
        return _read_upto(fd, MAX_BYTES + 1), st
    except OSError as exc:
        raise Refused(5, f"{path}: cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)


def _read_upto(fd: int, limit: int) -> bytes:
    """At most ``limit`` bytes; stops early at the end or when a read would block."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        try:
            chunk = os.read(fd, limit - size)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _decoded(raw: bytes, remarks: list[str]) -> str:
    """The bytes as text: undecodable bytes and NULs become U+FFFD, each with a remark."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = raw.decode("utf-8", errors="replace")
        remarks.append(f"not UTF-8 (byte {exc.start}): undecodable bytes were replaced by U+FFFD")
    if "\0" in text:
        text = text.replace("\0", "\ufffd")
        remarks.append("NUL bytes were replaced by U+FFFD")
    return text


def is_unit(path: str, text: str) -> bool:
    if path.endswith(".service"):
        return True
    if path.endswith(".sh"):
        return False
    return bool(
        re.search(r"^\s*\[(Unit|Service|Install)\]\s*$", text[:65536], re.M)
    ) and not text.startswith("#!")


def definition_name(path: str, unit: bool) -> tuple[str, str]:
    """The definition's name from the file's name, and a remark if it had to be changed."""
    base = os.path.basename(path.rstrip("/")) or "imported"
    if unit:
        base = base[: -len(".service")] if base.endswith(".service") else base
    else:
        base = re.sub(r"^[SK][0-9]{2}", "", base)
        base = re.sub(r"\.(sysv|init|initd|rc|sh)$", "", base)
    name = re.sub(r"[^A-Za-z0-9_.@-]", "-", base)[:80].lstrip(".") or "imported"
    remark = (
        "" if name == base else f"the name {base!r} was made {name!r} (letters, digits, - _ . @)"
    )
    return name, remark


def draft_for(
    path: str,
    text: str,
    names: dict[str, str] | None = None,
    exists: Callable[[str], bool] = os.path.lexists,
    system: System | None = None,
) -> Draft:
    """The intermediate result for one file: keys, origins, what was not converted.
    ``system``: the machine's files the import reads (the defaults file and others the script
    sources, tmpfiles.d); by default the machine's own, with ``exists`` saying whether a file
    is there."""
    from servicectl.commands.importer.sysfiles import System

    system = system or System(exists=exists)
    unit = is_unit(path, text)
    name, remark = definition_name(path, unit)
    draft = Draft(name, path, "systemd unit" if unit else "init.d script")
    if remark:
        draft.note(remark)
    names = dict(names or {})
    try:
        if unit:
            from servicectl.commands.importer import unit as unit_reader

            stem = os.path.basename(path)
            stem = stem[: -len(".service")] if stem.endswith(".service") else stem
            unit_reader.convert(stem, text, draft, names, system)
        else:
            from servicectl.commands.importer import initd_map

            initd_map.convert(path, name, text, draft, names, system)
    except RecursionError:
        draft.fatal = "nested too deeply to be read"
    except Exception as exc:  # noqa: BLE001 - a reader's bug must not become a traceback
        draft.fatal = (
            f"could not be read (internal error: {type(exc).__name__}: {exc}); please report it"
        )
    return draft


def _provides(text: str) -> list[str]:
    m = re.search(r"^#\s*Provides:\s*(.*)$", text[:65536], re.M)
    return m.group(1).split() if m else []


def main(paths: list[str], write: bool, force: bool, dirs: Dirs) -> int:
    """Import each path; print the definitions (or write them with ``write``). The exit code
    is the highest of the files'."""
    from servicectl.definitions.catalog import definition_files, services_dir_problem
    from servicectl.paths import untrusted_tree_problem

    if write:
        problem = services_dir_problem(dirs.services)
        if problem:
            _say(f"{problem} (give the right one with -d, or create it)")
            return 6
        untrusted = untrusted_tree_problem(dirs.services, "services directory")
        if untrusted is not None:  # R-IMP-1: root writes definitions where only root can
            _say(f"nothing written: {untrusted.message}")
            return 4
    names = {n: n for n in definition_files(dirs.services)}
    sources: list[tuple[str, str, list[str], str | None]] = []
    code = 0
    for path in paths:
        try:
            text, remarks, unsafe = read_source(path)
        except Refused as exc:
            _say(exc.message)
            code = max(code, exc.code)
            continue
        sources.append((path, text, remarks, unsafe))
        unit = is_unit(path, text)
        name, _ = definition_name(path, unit)
        names.setdefault(name, name)
        if not unit:
            for item in _provides(text):
                names.setdefault(item, name)
    for index, (path, text, remarks, unsafe) in enumerate(sources):
        code = max(code, _one(path, text, remarks, unsafe, names, write, force, dirs, index))
    return code


def _one(
    path: str,
    text: str,
    remarks: list[str],
    untrusted: str | None,
    names: dict[str, str],
    write: bool,
    force: bool,
    dirs: Dirs,
    index: int,
) -> int:
    from servicectl.commands.importer import emit, sysfiles

    system = None
    if untrusted is not None:  # R-IMP-2: only the machine's tmpfiles.d, never what it names
        tmpfiles = tuple(d + "/" for d in sysfiles.TMPFILES_DIRS)
        system = sysfiles.System(
            read=lambda p: sysfiles.read_text(p) if p.startswith(tmpfiles) else None
        )
    draft = draft_for(path, text, names, system=system)
    if untrusted is not None:
        draft.note(untrusted)
    for remark in remarks:
        draft.skipped.insert(0, remark)
    result = None if draft.fatal else emit.finish(draft, dirs.services, dirs.run, dirs.log)
    if result is None:
        _say(f"{draft.name}: {path}: nothing imported: {draft.fatal}")
        for item in draft.skipped:
            _say(f"{draft.name}: not converted: {item}")
        return 6
    for item in draft.skipped:
        _say(f"{draft.name}: not converted: {item}")
    if not write:
        try:
            sys.stdout.write(("---\n" if index else "") + result)
            sys.stdout.flush()
        except BrokenPipeError:
            pass
        return 0
    return _write(draft.name, result, dirs.services, force)


def _write(name: str, text: str, services: str, force: bool) -> int:
    """NAME.yaml in the services directory, atomically; an existing file (or symlink) only
    with ``force``, and then replaced itself, never written through."""
    target = os.path.join(services, f"{name}.yaml")
    other = os.path.join(services, f"{name}.yml")
    for existing in (target, other):
        if os.path.lexists(existing) and not force:
            _say(f"{name}: {existing} already exists; not overwritten (use --force)")
            return 1
    tmp = os.path.join(services, f".{name}.yaml.import-{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, 0o644)
        try:
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if force:
            os.rename(tmp, target)  # replaces a symlink itself, never its target
        else:
            os.link(tmp, target)  # fails if the name was taken meanwhile
            os.unlink(tmp)
    except FileExistsError:
        _say(f"{name}: {target} already exists; not overwritten (use --force)")
        _unlink(tmp)
        return 1
    except OSError as exc:
        _say(f"{name}: cannot write {target}: {exc.strerror}")
        _unlink(tmp)
        return 1
    try:
        print(f"{name}: written to {target}", flush=True)
    except BrokenPipeError:
        pass
    if force and os.path.lexists(other):
        _say(f"{name}: {other} exists too; {name}.yaml is the one servicectl reads")
    return 0


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def command(paths: tuple[str, ...], write: bool, force: bool) -> int:
    """The body of ``servicectl import`` (see the command table in grammar.py)."""
    from servicectl.commands.resolve import dirs

    return main(list(paths), write, force, dirs())
