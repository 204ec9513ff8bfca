"""The schema hash: a digest of what a cached definition depends on (definitions/cache.py keys
its cache by it), so that a change to the keys or to the code that reads them never serves a
stale definition.
"""

from __future__ import annotations

import os

from servicectl.definitions.schema import KEYS, Action, Service
from servicectl.definitions.values import Directory, Health, Ready

_HASH: str | None = None
_KEY: str | None = None


# The code that reads a definition: any change to it must not serve a stale cached definition.
SOURCES: tuple[str, ...] = ("schema.py", "names.py", "values.py", "reader.py", "program_keys.py")
SOURCES += ("lifecycle_keys.py", "initd_keys.py")
SOURCES += ("build.py", "catalog.py", "yamlload.py", "dropins.py")


def schema_hash() -> str:
    """A digest of ``schema_key()`` (8 hex digits: what a supervisor's hello says)."""
    global _HASH
    if _HASH is None:
        from servicectl.digests import short

        _HASH = short(schema_key().encode())
    return _HASH


def schema_key() -> str:
    """What a cached definition depends on: the fields of Service and their defaults, the
    declared keys, and the code that reads them (SOURCES, by size and modification time: any
    edit or upgrade changes it), so that a change to parsing never serves a stale definition;
    nothing to bump. The text itself keys the cache (compared whole, it needs no hashing:
    the definition cache then loads no hash module)."""
    global _KEY
    if _KEY is None:
        here = os.path.dirname(__file__)
        code = []
        for module in SOURCES:
            try:
                st = os.stat(os.path.join(here, module))
                code.append((module, st.st_size, st.st_mtime_ns))
            except OSError:  # installed without sources: the version still tells them apart
                code.append((module, 0, 0))
        keys = [(k.name, k.type, k.default, k.parse, k.required) for k in KEYS]  # not the docs
        types = (Ready._fields, Directory._fields, Action._fields, Health._fields)
        fields = (Service._fields, Service._field_defaults, types, keys, code)
        _KEY = repr(fields)
    return _KEY
