"""SHA-256 for what servicectl fingerprints (definition files, the schema, a run directory's
path), from the bare ``_sha256`` module: hashlib's OpenSSL set-up costs a command 2-3 ms, and
zlib's crc32 one more shared library to load.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def sha256(data: bytes = b"") -> Any:
    """A SHA-256 hash object of ``data`` (hashlib's interface)."""
    try:
        from _sha256 import sha256 as bare  # type: ignore[import-not-found]
    except ImportError:  # an interpreter without it (hashlib has one then)
        from hashlib import sha256 as bare
    return bare(data)


def short(data: bytes) -> str:
    """8 hex digits of ``data``'s SHA-256: a tag for a file name or a cache key."""
    return str(sha256(data).hexdigest()[:8])
