"""JSON without importing the json package, whose decoder and encoder import ``re`` (and with
it enum: 3-5 ms of a ``status NAME`` that reads a service's state record or prints --json).

``loads`` drives the C scanner json.loads itself uses (``_json.make_scanner``) the way
json.JSONDecoder drives it, so it gives what json.loads gives for every document, and raises
a ValueError (json's JSONDecodeError) where json.loads raises one. ``dumps`` writes what
``json.dumps(value, indent=...)`` writes for data made of dicts (string keys), lists, tuples,
strings, numbers, booleans and None, its strings escaped by json's own C function. Where
``_json`` is missing (another interpreter), each is json's.
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


def dumps(value: Any, indent: int | None = None, sort_keys: bool = False) -> str:
    """``json.dumps(value, indent=indent, sort_keys=sort_keys)``, for plain data (dict keys
    are strings)."""
    try:
        from _json import encode_basestring_ascii as quote
    except ImportError:  # pragma: no cover - another interpreter
        import json

        return json.dumps(value, indent=indent, sort_keys=sort_keys)
    out: list[str] = []
    try:
        _write(value, out, (quote, indent, sort_keys), 0)
    except _NotPlain:  # a key that is not a string, a type json knows or refuses: json's answer
        import json

        return json.dumps(value, indent=indent, sort_keys=sort_keys)
    return "".join(out)


class _NotPlain(Exception):
    pass


def _write(value: Any, out: list[str], how: tuple[Any, int | None, bool], depth: int) -> None:
    """``value`` written to ``out``; ``how``: (quote, indent, sort_keys)."""
    quote = how[0]
    if isinstance(value, str):
        out.append(quote(value))
    elif value is None or value is True or value is False:
        out.append("null" if value is None else "true" if value else "false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_float(value))
    elif isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise _NotPlain
        entries = sorted(value.items()) if how[2] else value.items()
        _items([(quote(k) + ": ", v) for k, v in entries], "{}", out, how, depth)
    elif isinstance(value, (list, tuple)):
        _items([("", v) for v in value], "[]", out, how, depth)
    else:
        raise _NotPlain


def _items(
    items: list[tuple[str, Any]],
    ends: str,
    out: list[str],
    how: tuple[Any, int | None, bool],
    depth: int,
) -> None:
    quote, indent = how[0], how[1]
    if not items:
        out.append(ends)
        return
    if indent is None:
        inner, sep, close = "", ", ", ""
    else:
        inner = "\n" + " " * (indent * (depth + 1))
        sep, close = "," + inner, "\n" + " " * (indent * depth)
    out.append(ends[0] + inner)
    for i, (key, item) in enumerate(items):
        if i:
            out.append(sep)
        kind = type(item)  # the plain values of a status row's thousand: no call each
        if kind is str:
            out.append(key + quote(item))
        elif item is None:
            out.append(key + "null")
        elif kind is int:
            out.append(key + int.__repr__(item))
        else:
            out.append(key)
            _write(item, out, how, depth + 1)
    out.append(close + ends[1])


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)
