# -*- coding: utf-8 -*-

# Copyright: servicectl contributors
# MIT License (see the collection's LICENSE file)

"""Service definition files for the servicectl module: block YAML written without a YAML
library (none is needed on the target), the ``enabled`` key edited in place, files read
without following a symlink, and atomic writes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import math
import os
import re
import stat
import tempfile

from ansible.module_utils.common.text.converters import to_text

# ---------------------------------------------------------------------------------------------
# Definitions as YAML (no YAML library needed on the target)

# A string written unquoted only if YAML reads it back as the same string.
_PLAIN_RE = re.compile(r"\A[A-Za-z_/](?:[A-Za-z0-9_./@+ -]*[A-Za-z0-9_./@+-])?\Z")
_YAML_WORDS = frozenset(["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"])


def _quoted(text):
    """A YAML double-quoted scalar that every YAML reader decodes back to ``text``."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or 0x7F <= code <= 0x9F:
            out.append("\\x%02x" % code)
        elif 0xD800 <= code <= 0xDFFF or code in (0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF):
            out.append("\\u%04x" % code)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _scalar(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        if "." not in text:  # YAML 1.1 floats need a dot: 1e+20 -> 1.0e+20
            mantissa, dummy, exponent = text.partition("e")
            text = mantissa + ".0" + ("e" + exponent if exponent else "")
        return text
    text = to_text(value)
    if _PLAIN_RE.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return _quoted(text)


def _inline(value):
    if isinstance(value, dict) and not value:
        return "{}"
    if isinstance(value, (list, tuple)) and not value:
        return "[]"
    return _scalar(value)


def _block(value, indent, lines):
    """Append the block-style lines of a non-empty mapping or sequence."""
    pad = " " * indent
    nested = (dict, list, tuple)
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, nested) and item:
                lines.append(pad + _scalar(to_text(key)) + ":")
                _block(item, indent + 2, lines)
            else:
                lines.append(pad + _scalar(to_text(key)) + ": " + _inline(item))
        return
    for item in value:
        if isinstance(item, nested) and item:
            sub = []
            _block(item, indent + 2, sub)
            lines.append(pad + "- " + sub[0][indent + 2 :])
            lines.extend(sub[1:])
        else:
            lines.append(pad + "- " + _inline(item))


def to_yaml(data):
    """Block YAML for a mapping made of JSON types, in the mapping's own key order."""
    if not data:
        return "{}\n"
    lines = []
    _block(data, 0, lines)
    return "\n".join(lines) + "\n"


_ENABLED_RE = re.compile(r"^enabled[ \t]*:[ \t]*([^\n#]*?)[ \t]*(?:#[^\n]*)?$", re.M)
_TRUE_WORDS = ("true", "yes", "on", "y")
_FALSE_WORDS = ("false", "no", "off", "n")


def set_enabled(text, enabled):
    """The definition text with its top-level ``enabled`` key saying ``enabled``, edited as
    little as possible (comments and layout kept). servicectl's default is true."""
    want = "true" if enabled else "false"
    found = list(_ENABLED_RE.finditer(text))
    if not found:
        if enabled:
            return text
        sep = "" if not text or text.endswith("\n") else "\n"
        return text + sep + "enabled: false\n"
    words = _TRUE_WORDS if enabled else _FALSE_WORDS
    if all(m.group(1).strip("'\"").lower() in words for m in found):
        return text
    return _ENABLED_RE.sub("enabled: " + want, text)


# ---------------------------------------------------------------------------------------------
# Files


def definition_path(services_dir, name):
    """NAME.yaml, or NAME.yml when only that one exists (servicectl prefers NAME.yaml)."""
    yaml_path = os.path.join(services_dir, name + ".yaml")
    yml_path = os.path.join(services_dir, name + ".yml")
    if not os.path.lexists(yaml_path) and os.path.lexists(yml_path):
        return yml_path
    return yaml_path


class RefusedPath(Exception):
    """A path the module will not read, write or replace (a symlink, not a regular file)."""


def read_regular(path):
    """(bytes, lstat) of a regular file, or (None, None) when there is none. A symlink, a FIFO
    or anything else that is not a regular file raises RefusedPath (never followed, never
    blocked on)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None, None
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise RefusedPath(
                "%s is a symlink; this module never writes through or over one: replace it "
                "with a regular file, or point services_dir at the directory it leads to" % path
            )
        raise RefusedPath("%s cannot be read: %s" % (path, exc.strerror))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RefusedPath("%s is not a regular file; a definition must be one" % path)
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks), st
    finally:
        os.close(fd)


def write_atomic(path, data, like=None):
    """Write ``data`` to ``path`` by a temporary file in the same directory and a rename. The
    file gets the mode, owner and group of ``like`` (a stat result), else of the file it
    replaces, else mode 0644."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    if like is None:
        try:
            like = os.lstat(path)
        except OSError:
            like = None
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, stat.S_IMODE(like.st_mode) if like else 0o644)
            if like and (like.st_uid, like.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(fd, like.st_uid, like.st_gid)
            os.fsync(fd)
        finally:
            os.close(fd)
        if os.path.islink(path):
            raise OSError(errno.ELOOP, "it became a symlink; not replaced", path)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)


def fsync_dir(directory):
    """Make a rename in ``directory`` durable (best effort)."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
