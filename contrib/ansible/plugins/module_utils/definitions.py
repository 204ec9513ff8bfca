# -*- coding: utf-8 -*-

# Copyright: servicectl contributors
# MIT License (see the collection's LICENSE file)

"""Service definition files for the servicectl module: block YAML written without a YAML
library (none is needed on the target), the ``enabled`` key edited in place, atomic writes,
and the mirror directory in which ``servicectl check`` judges a definition before it lands."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import math
import os
import re
import shutil
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


def write_atomic(path, data):
    """Write ``data`` to ``path`` by a temporary file in the same directory and a rename. A new
    file gets mode 0644; a replaced one keeps its mode, owner and group."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    try:
        old = os.lstat(path)
    except OSError:
        old = None
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, stat.S_IMODE(old.st_mode) if old else 0o644)
            if old and (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(fd, old.st_uid, old.st_gid)
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
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def mirror_services_dir(real, mirror, skip):
    """Fill ``mirror`` so that servicectl judges a definition there as it would in ``real``:
    copies of the definitions and drop-in directories, symlinks to everything else."""
    try:
        entries = sorted(os.listdir(real))
    except OSError:
        return
    for entry in entries:
        if entry in skip:
            continue
        src = os.path.join(real, entry)
        dst = os.path.join(mirror, entry)
        st = os.lstat(src)
        if stat.S_ISREG(st.st_mode) and entry.endswith((".yaml", ".yml")):
            shutil.copyfile(src, dst)
        elif stat.S_ISDIR(st.st_mode) and entry.endswith(".d"):
            os.mkdir(dst)
            for inner in sorted(os.listdir(src)):
                inner_src = os.path.join(src, inner)
                if os.path.isfile(inner_src) and not os.path.islink(inner_src):
                    shutil.copyfile(inner_src, os.path.join(dst, inner))
                else:
                    os.symlink(inner_src, os.path.join(dst, inner))
        else:
            os.symlink(src, dst)
