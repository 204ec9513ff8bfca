"""Reading JSON without importing the json package, whose decoder imports ``re`` (and with it
enum: 3-5 ms of a ``status NAME`` that reads a service's state record).

``loads`` drives the C scanner json.loads itself uses (``_json.make_scanner``) the way
json.JSONDecoder drives it, so it gives what json.loads gives for every document, and raises
a ValueError (json's JSONDecodeError) where json.loads raises one. Where ``_json`` is missing
(another interpreter), it is json.loads itself.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_WHITESPACE = " \t\n\r"  # json's own: JSON allows these four between tokens
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Context:
    """What the C scanner reads from a json.JSONDecoder() with its defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo: dict[str, str] = {}


_SCAN: list[Any] = []


def _scanner() -> Any:
    if not _SCAN:
        try:
            from _json import make_scanner

            _SCAN.append(make_scanner(_Context()))  # type: ignore[arg-type]
        except ImportError:
            _SCAN.append(None)
    return _SCAN[0]


def loads(data: str | bytes) -> Any:
    """The value of the JSON document ``data`` (bytes are UTF-8), as json.loads gives it."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    scan = _scanner()
    if scan is None or text.startswith("\ufeff"):
        import json  # the same answer, or json's own error (a byte order mark)

        return json.loads(text)
    start = _skip(text, 0)
    try:
        value, end = scan(text, start)
    except StopIteration:
        return _error(text)
    if _skip(text, end) != len(text):
        return _error(text)
    return value


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _WHITESPACE:
        at += 1
    return at


def _error(text: str) -> Any:
    """json's own error for a document the scanner refused (it imports json: only then)."""
    import json

    return json.loads(text)  # raises
