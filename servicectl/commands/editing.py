"""``enable``, ``disable``, ``cat`` and ``edit``: a service's drop-ins, written and shown.

enable/disable write ``NAME.d/50-enabled.yaml``; edit installs ``NAME.d/override.yaml`` only
once the edited copy makes a valid definition; cat prints the definition and its drop-ins,
each under a ``# /path`` header, as ``systemctl cat`` does. Files are written atomically
(a temp file in the same directory, fsync, rename), never through a symlink.
"""

from __future__ import annotations

import errno
import os
import stat

from servicectl.commands import resolve
from servicectl.definitions.dropins import (
    ENABLED_FILE,
    MAX_FILE_BYTES,
    OVERRIDE_FILE,
    dropin_dirs,
    listing,
    read_document,
)
from servicectl.errors import ConfigError, Exit, PrivilegeError, ServicectlError
from servicectl.output.face import face
from servicectl.paths import untrusted_problem
from servicectl.text import escape, shown

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.definitions.catalog import Catalog
    from servicectl.definitions.schema import Service

O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Unusable(ServicectlError):
    """A drop-in directory or file that servicectl will not write (exit 1, or 4 for rights)."""


# ---------------------------------------------------------------------------------------------
# Finding the definition


def _definition(catalog: Catalog, name: str) -> tuple[str | None, int, str]:
    """The file that defines ``name`` (a template, NAME@, counts: its drop-ins apply to every
    instance), or None with the exit code and the reason."""
    from servicectl.definitions.catalog import definition_files, definition_of, template_problem

    if not name.endswith("@"):
        why = template_problem(catalog, name)
        if why is not None:
            return None, Exit.USAGE, why
    file = definition_of(definition_files(catalog.dirs.services), name)
    if file is None:
        return None, Exit.NOT_INSTALLED, f"no such service: {resolve.unknown_reason(catalog, name)}"
    return file, Exit.OK, ""


# ---------------------------------------------------------------------------------------------
# Writing into a drop-in directory


def _open_dir(directory: str, create: bool) -> tuple[int, bool]:
    """An fd of the drop-in directory (made 0755 if missing and ``create``), and whether it was
    made now. Never through a symlink; as root, refused if another user could write it."""
    sfd = os.open(os.path.dirname(directory), O_DIR)
    made = False
    try:
        try:
            fd = os.open(os.path.basename(directory), O_DIR, dir_fd=sfd)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(os.path.basename(directory), 0o755, dir_fd=sfd)
            made = True
            fd = os.open(os.path.basename(directory), O_DIR, dir_fd=sfd)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            st = os.stat(os.path.basename(directory), dir_fd=sfd, follow_symlinks=False)
            kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
            raise Unusable(
                f"{directory} is {kind}; servicectl writes drop-ins only into a real "
                f"directory (remove it, or write the file by hand)"
            ) from None
    finally:
        os.close(sfd)
    problem = untrusted_problem(directory, "drop-in directory", os.fstat(fd))
    if problem is not None:
        os.close(fd)
        raise PrivilegeError(problem)
    return fd, made


def _write(dfd: int, directory: str, fname: str, data: bytes) -> None:
    """Replace ``fname`` in the directory open as ``dfd`` atomically and durably: a temp file
    (O_EXCL|O_NOFOLLOW, mode 0644), fsync, rename over it (a symlink there is replaced, not
    followed), fsync of the directory."""
    from servicectl.files.atomic import atomic_write_at

    atomic_write_at(dfd, os.path.join(directory, fname), data, 0o644, durable=True)


def _os_failure(name: str, exc: OSError) -> int:
    """Say why a file could not be read or written; 4 when rights were missing."""
    where = f" {exc.filename}" if exc.filename else ""
    face.error(f"{name}: cannot write{where}: {exc.strerror}")
    return Exit.PRIVILEGE if isinstance(exc, PermissionError) else Exit.FAILURE


# ---------------------------------------------------------------------------------------------
# enable, disable


def enable(names: tuple[str, ...]) -> int:
    return _set_enabled(names, True)


def disable(names: tuple[str, ...]) -> int:
    return _set_enabled(names, False)


def _set_enabled(names: tuple[str, ...], value: bool) -> int:
    wanted = resolve.requested_names(names)
    catalog = resolve.catalog_for(also=wanted)
    code = 0
    for name in wanted:
        code = max(code, _set_one(catalog, name, value))
    return code


def _set_one(catalog: Catalog, name: str, value: bool) -> int:
    word = "enabled" if value else "disabled"
    file, code, why = _definition(catalog, name)
    if file is None:
        face.error(f"{name}: {why}")
        return code
    if name in catalog.invalid:
        err = catalog.invalid[name].first_error
        face.error(f"{name}: invalid definition: {err.message} (fix it first: servicectl edit)")
        return int(err.exit_code)
    svc = catalog.services.get(name) or catalog.templates[name]
    if svc.enabled == value:
        face.line(escape(f"{name}: already {word}{_unlisted_note(svc, value)}"))
        return Exit.OK
    directory = dropin_dirs(name, file)[-1]
    text = f"# Written by servicectl {word[:-1]}: whether startall starts {name}.\n"
    try:
        dfd, _ = _open_dir(directory, create=True)
        try:
            _write(dfd, directory, ENABLED_FILE, f"{text}enabled: {str(value).lower()}\n".encode())
        finally:
            os.close(dfd)
    except ServicectlError as exc:
        face.error(f"{name}: {exc.message}")
        return int(exc.exit_code)
    except OSError as exc:
        return _os_failure(name, exc)
    return _confirm(catalog, name, value, os.path.join(directory, ENABLED_FILE))


def _confirm(catalog: Catalog, name: str, value: bool, written: str) -> int:
    """Check that the drop-in just written decides: a later drop-in may set enabled again."""
    from servicectl.definitions.catalog import load_catalog

    word = "enabled" if value else "disabled"
    again = load_catalog(catalog.dirs, [name], use_cache=False)
    svc = again.services.get(name) or again.templates.get(name)
    if svc is None or svc.enabled != value:
        later = [p for p in (svc.dropins if svc else ()) if _sets_enabled(p) and p != written]
        by = f": {later[-1]} sets enabled after it" if later else ""
        face.error(f"{name}: wrote {written}, but it is still not {word}{by}")
        return Exit.FAILURE
    face.line(escape(f"{name}: {word} ({written}){_unlisted_note(svc, value)}"))
    return Exit.OK


def _sets_enabled(path: str) -> bool:
    try:
        data = read_document(path, "drop-in")
    except ConfigError:
        return False
    return isinstance(data, dict) and "enabled" in data


def _unlisted_note(svc: Service, value: bool) -> str:
    if not value or svc.instance is None or svc.instance in svc.instances:
        return ""
    return (
        f"; startall starts only the instances listed in {os.path.basename(svc.file)} (instances:)"
    )


# ---------------------------------------------------------------------------------------------
# cat


def cat(names: tuple[str, ...]) -> int:
    wanted = resolve.requested_names(names)
    catalog = resolve.catalog_for(wanted)
    code = 0
    first = True
    for name in wanted:
        file, bad, why = _definition(catalog, name)
        if file is None:
            face.error(f"{name}: {why}")
            code = max(code, bad)
            continue
        paths = [file]
        for directory in dropin_dirs(name, file):
            try:
                paths += [os.path.join(directory, n) for n in listing(directory)]
            except FileNotFoundError:
                continue
            except OSError as exc:
                face.error(f"{name}: the drop-in directory {directory}: {exc.strerror}")
                code = max(code, _read_code(exc))
        for path in paths:
            try:
                text = _read_text(path)
            except OSError as exc:
                face.error(f"{name}: cannot read {path}: {exc.strerror}")
                code = max(code, _read_code(exc))
                continue
            face.out(("" if first else "\n") + shown(f"# {path}\n{text}"))
            first = False
    return code


def _read_code(exc: OSError) -> int:
    return Exit.PRIVILEGE if isinstance(exc, PermissionError) else Exit.FAILURE


def _read_text(path: str) -> str:
    """A definition or drop-in as text: a regular file (opened non-blocking), at most 1 MiB,
    undecodable bytes replaced; ends with a newline."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        raw = os.read(fd, MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    text = raw[:MAX_FILE_BYTES].decode("utf-8", "replace")
    if len(raw) > MAX_FILE_BYTES:
        text += "\n# ... (cut at 1 MiB)"
    return text if text.endswith("\n") or not text else text + "\n"


# ---------------------------------------------------------------------------------------------
# edit

HEADER = (
    "# Drop-in for {name}: the keys written here replace those of {file}\n"
    "# and of earlier drop-ins; environment merges by variable. servicectl cat {name}\n"
    "# shows every file.\n"
)


def edit(name: str) -> int:
    """$VISUAL, $EDITOR, editor or vi on a copy of NAME.d/override.yaml; the copy is
    installed only if the definition it makes is valid."""
    from servicectl.errors import UntrustedError

    [name] = resolve.requested_names([name])
    catalog = resolve.catalog_for([name], use_cache=False)
    file, code, why = _definition(catalog, name)
    if file is None:
        face.error(f"{name}: {why}")
        return code
    bad = catalog.invalid.get(name)
    if bad is not None and isinstance(bad.first_error, UntrustedError):
        face.error(f"{name}: {bad.first_error.message}")
        return Exit.PRIVILEGE
    directory = dropin_dirs(name, file)[-1]
    try:
        dfd, made = _open_dir(directory, create=True)
    except ServicectlError as exc:
        face.error(f"{name}: {exc.message}")
        return int(exc.exit_code)
    except OSError as exc:
        return _os_failure(name, exc)
    try:
        return _edit_in(catalog, name, file, directory, dfd, made)
    except ServicectlError as exc:
        face.error(f"{name}: {exc.message}")
        return int(exc.exit_code)
    except OSError as exc:
        return _os_failure(name, exc)
    finally:
        os.close(dfd)


def _edit_in(catalog: Catalog, name: str, file: str, directory: str, dfd: int, made: bool) -> int:
    target = os.path.join(directory, OVERRIDE_FILE)
    original = _read_at(dfd, directory, OVERRIDE_FILE)
    start = original if original is not None else HEADER.format(name=name, file=file).encode()
    temp = _make_temp(dfd, directory, start)
    status = _run_editor(name, temp)
    edited = _read_at(dfd, directory, os.path.basename(temp)) if status is not None else None
    if edited is None or edited == start:
        _forget(dfd, temp, directory if made else None)
        if status == 0 and edited is not None:
            face.line(escape(f"{name}: unchanged; nothing written"))
            return Exit.OK
        if status == 0:
            face.error(f"{name}: the edited copy {temp} is gone; nothing written")
        elif status is not None:
            face.error(f"{name}: the editor exited with status {status}; nothing written")
        return Exit.FAILURE
    if status != 0:
        face.error(
            f"{name}: the editor exited with status {status}; nothing installed, the edited "
            f"copy is kept in {temp}"
        )
        return Exit.FAILURE
    errors = _validate(catalog, name, target, temp)
    if errors:
        for message in errors:
            face.error(message)
        face.error(
            f"{name}: the edited copy is not valid and is kept in {temp}; {target} is "
            f"unchanged (servicectl edit {name} starts again from it)"
        )
        return Exit.NOT_CONFIGURED
    if edited.strip():
        _write(dfd, directory, OVERRIDE_FILE, edited)
        said = f"installed {target}"
    elif original is not None:
        os.unlink(OVERRIDE_FILE, dir_fd=dfd)
        said = f"the override is empty: removed {target}"
    else:
        said = "the override is empty; nothing written"
    _forget(dfd, temp, directory if made and original is None and not edited.strip() else None)
    face.line(escape(f"{name}: {said}"))
    return Exit.OK


def _read_at(dfd: int, directory: str, fname: str) -> bytes | None:
    """A drop-in's bytes (None if missing): a regular file, never through a symlink."""
    path = os.path.join(directory, fname)
    try:
        fd = os.open(fname, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise Unusable(
            f"{path} is a symlink; servicectl does not edit through symlinks (remove it, or "
            f"edit its target by hand)"
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Unusable(f"{path} is not a regular file; remove it first")
        raw = os.read(fd, MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > MAX_FILE_BYTES:
        raise Unusable(f"{path} is larger than 1 MiB")
    return raw


def _make_temp(dfd: int, directory: str, data: bytes) -> str:
    """A private copy to edit, hidden in the drop-in directory (a name starting with . is never
    read as a drop-in), ending in .yaml for the editor's syntax colouring."""
    import secrets

    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fname = f".{OVERRIDE_FILE.removesuffix('.yaml')}.{secrets.token_hex(4)}.yaml"
    fd = os.open(fname, flags, 0o600, dir_fd=dfd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    return os.path.join(directory, fname)


def _forget(dfd: int, temp: str, made: str | None) -> None:
    """Remove the edited copy, and the drop-in directory if edit made it and it is empty."""
    try:
        os.unlink(os.path.basename(temp), dir_fd=dfd)
    except FileNotFoundError:
        pass
    if made is not None:
        try:
            os.rmdir(made)
        except OSError:
            pass


def _editor() -> list[str]:
    """$VISUAL, else $EDITOR (split like a shell: "code --wait" works), else editor, else vi."""
    import shlex
    import shutil

    for var in ("VISUAL", "EDITOR"):
        value = os.environ.get(var, "").strip()
        if value:
            try:
                return shlex.split(value) or [value]
            except ValueError:
                return [value]
    return ["editor"] if shutil.which("editor") else ["vi"]


def _run_editor(name: str, temp: str) -> int | None:
    """Run the editor on ``temp`` in the foreground; its exit status, or None if it could not
    be run (said). Ctrl-C goes to the editor alone meanwhile, as with systemctl edit."""
    import signal
    import subprocess

    argv = [*_editor(), str(temp)]
    previous = signal.signal(signal.SIGINT, lambda *_: None)  # not SIG_IGN: exec resets it
    try:
        return subprocess.run(argv, check=False).returncode
    except OSError as exc:
        face.error(
            f"{name}: cannot run the editor {argv[0]}: {exc.strerror} (set VISUAL or EDITOR)"
        )
        return None
    finally:
        signal.signal(signal.SIGINT, previous)


def _validate(catalog: Catalog, name: str, target: str, temp: str) -> list[str]:
    """Why the definition would be invalid with ``temp`` as ``target`` (for a template: the
    template or one of its instances), each error once; [] if valid."""
    from servicectl.definitions.catalog import load_catalog

    template = name.endswith("@")
    again = load_catalog(catalog.dirs, None if template else [name], False, {target: temp}, [name])
    names = [n for n in again.names() if n == name or (template and n.startswith(name))]
    errors = [e.message for n in names if n in again.invalid for e in again.invalid[n].errors]
    return list(dict.fromkeys(errors))
