# -*- coding: utf-8 -*-

# Copyright: servicectl contributors
# MIT License (see the collection's LICENSE file)

"""A service's files (its definition and drop-ins) changed the safe way: written first into a
staging copy of the services directory, judged there by ``servicectl check --run-checks`` (the
config test, run by servicectl as the service's user), and only then moved into place, each by
an atomic rename; a timestamped backup of what they replace; and a rollback."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import shutil
import stat
import tempfile

from ansible_collections.servicectl.servicectl.plugins.module_utils.definitions import (
    RefusedPath,
    fsync_dir,
    write_atomic,
)

STAGING_PREFIX = ".servicectl-staging-"
# In check mode, the staged definition makes no directories (a drop-in that sorts last).
CHECK_MODE_DROPIN = "zzzz-servicectl-check-mode.yaml"


class Change(object):
    """One file of the service: ``new`` bytes to write, or None to remove it; ``old`` bytes and
    ``old_stat`` of what is there (None: nothing)."""

    def __init__(self, path, new, old, old_stat):
        self.path = path
        self.new = new
        self.old = old
        self.old_stat = old_stat
        self.backup = None

    @property
    def verb(self):
        return "remove" if self.new is None else "write"


class Staging(object):
    """A private copy of the services directory: made inside it (hidden, so servicectl ignores
    it, on the same file system, so that a staged file is installed by a rename), root's, mode
    0711 (others may pass through it to the programs a relative path names, as they may in the
    services directory, but not list it); every copied or staged file is mode 0600. Other
    definitions and drop-in directories are copied; everything else is a symlink to the real
    entry, so that ``depends``, relative paths and drop-ins are judged as they will be in
    place."""

    def __init__(self, services_dir, fallback_parent):
        self.services_dir = services_dir
        parent = services_dir if os.path.isdir(services_dir) else fallback_parent
        self.root = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=parent)
        os.chmod(self.root, 0o711)
        self.run_dir = os.path.join(self.root, STAGING_PREFIX + "run")

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def staged(self, path):
        return os.path.join(self.root, os.path.relpath(path, self.services_dir))

    def fill(self, changes, check_mode_dropin=None):
        """Mirror the services directory, then apply ``changes``; ``check_mode_dropin``: the
        service's drop-in directory, to get CHECK_MODE_DROPIN."""
        _mirror(self.services_dir, self.root)
        for change in changes:
            staged = self.staged(change.path)
            _remove(staged)
            if change.new is not None:
                _private_dir(os.path.dirname(staged))
                _write_private(staged, change.new)
        if check_mode_dropin:
            staged_dir = self.staged(check_mode_dropin)
            _private_dir(staged_dir)
            _write_private(os.path.join(staged_dir, CHECK_MODE_DROPIN), b"directories: []\n")

    def shown(self, text, changes):
        """servicectl's words about the staging copy, about the real files: a staged file that
        carries new content is named as such."""
        for change in sorted(changes, key=lambda c: -len(c.path)):
            if change.new is not None:
                text = text.replace(
                    self.staged(change.path), "%s (new content; not installed)" % change.path
                )
        return text.replace(self.root, self.services_dir)

    def install(self, change):
        """Move the staged file into place (mode, owner and group of the file it replaces, or
        0644), or remove the file; never through or over a symlink."""
        if change.new is None:
            _remove(change.path)
            return
        staged = self.staged(change.path)
        directory = os.path.dirname(change.path)
        _real_dir(directory)
        like = change.old_stat
        os.chmod(staged, stat.S_IMODE(like.st_mode) if like else 0o644)
        if like and (like.st_uid, like.st_gid) != (os.geteuid(), os.getegid()):
            os.chown(staged, like.st_uid, like.st_gid)
        if os.path.islink(change.path):
            raise RefusedPath("%s became a symlink; not replaced" % change.path)
        os.rename(staged, change.path)
        fsync_dir(directory)


def restore(changes):
    """Put back what ``changes`` replaced or removed, and remove what they added (in reverse
    order). Returns the errors (strings); what could be restored is."""
    errors = []
    for change in reversed(changes):
        try:
            if change.old is None:
                _remove(change.path)
            else:
                write_atomic(change.path, change.old, like=change.old_stat)
        except (OSError, RefusedPath) as exc:
            errors.append("%s: %s" % (change.path, exc))
    return errors


def remove_tree(path):
    """Remove a drop-in directory and what is in it (a symlink in its place: the link only)."""
    if os.path.islink(path) or not os.path.isdir(path):
        _remove(path)
    else:
        shutil.rmtree(path)


def _mirror(real, mirror):
    try:
        entries = sorted(os.listdir(real))
    except OSError:
        return
    for entry in entries:
        if entry.startswith(STAGING_PREFIX):
            continue
        src = os.path.join(real, entry)
        dst = os.path.join(mirror, entry)
        st = os.lstat(src)
        if stat.S_ISREG(st.st_mode) and entry.endswith((".yaml", ".yml")):
            _copy_private(src, dst)
        elif stat.S_ISDIR(st.st_mode) and entry.endswith(".d"):
            _private_dir(dst)
            for inner in sorted(os.listdir(src)):
                inner_src = os.path.join(src, inner)
                if os.path.isfile(inner_src) and not os.path.islink(inner_src):
                    _copy_private(inner_src, os.path.join(dst, inner))
                else:
                    os.symlink(inner_src, os.path.join(dst, inner))
        else:
            os.symlink(src, dst)


def _private_dir(path):
    if not os.path.isdir(path):
        os.mkdir(path, 0o700)
        os.chmod(path, 0o711)


def _write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_private(src, dst):
    with open(src, "rb") as fh:
        _write_private(dst, fh.read())


def _remove(path):
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def _real_dir(path):
    """The directory a file is installed in exists (made 0755), and is no symlink."""
    if os.path.islink(path):
        raise RefusedPath(
            "%s is a symlink; this module never writes through one: replace it with a "
            "directory" % path
        )
    if not os.path.isdir(path):
        os.makedirs(path, 0o755)
        os.chmod(path, 0o755)
