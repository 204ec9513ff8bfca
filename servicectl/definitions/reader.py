"""How a definition is read: the Reader every key's parser records its errors on (the file,
the key, what was found and what was expected, a typo's nearest key), and the parsers of plain
values (text, a line, a path, seconds, a boolean, a choice, a signal) the others build on.

A parser takes (reader, key, value), where value is the key's declared default when the document
does not give it, and returns the Service field. On an error it records it on the reader and
returns something harmless: a definition with errors never becomes a Service.
"""

from __future__ import annotations

import math
import os

from servicectl.definitions.names import expand
from servicectl.definitions.schema import (
    Key,
    parse_signal,
)
from servicectl.errors import ConfigError
from servicectl.paths import pure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    from servicectl.paths import Dirs


MAX_SECONDS = 7 * 24 * 3600  # a week: anything longer is a typo


def show(value: Any) -> str:
    """A short rendering of a found value for an error message."""
    if isinstance(value, str):
        text = repr(value)
    elif value is None:
        text = "nothing (null)"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = str(value)
    elif isinstance(value, list):
        text = "a list"
    elif isinstance(value, dict):
        text = "a mapping"
    else:
        text = type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def close_matches(word: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """Did-you-mean candidates (difflib is imported only when a definition is parsed)."""
    import difflib

    return difflib.get_close_matches(word, list(choices), n=n, cutoff=cutoff)


def hint(word: str, choices: Iterable[str]) -> str:
    near = close_matches(word, choices)
    return f" (did you mean {near[0]}?)" if near else ""


DOTS_EXPECTED = "a path to which its {placeholders} add no . or .. component"


def dots_added(written: str, text: str) -> bool:
    """R-INST-2: whether replacing the placeholders of ``written`` gave ``text`` a . or ..
    component it did not have (a value that would turn a path into its parent's)."""

    def dots(path: str) -> int:
        return sum(part in (".", "..") for part in path.split("/"))

    return dots(text) > dots(written)


def resolve(base: str, value: str) -> str:
    """``value`` (``~`` expanded) relative to ``base``, spelled as pathlib spells it."""
    return pure(os.path.join(base, os.path.expanduser(value)))


class Reader:
    """One parsed document being read: its data, where relative paths and placeholders point,
    the fields parsed so far, and every error found (reading goes on after an error)."""

    __slots__ = ("data", "file", "name", "dirs", "values", "errors", "instance", "template")

    def __init__(
        self,
        data: Mapping[Any, Any],
        file: str,
        name: str,
        dirs: Dirs,
        instance: str | None = None,
        template: bool = False,
    ) -> None:
        self.data = data
        self.file = file
        self.name = name
        self.dirs = dirs
        self.values: dict[str, Any] = {}
        self.errors: list[ConfigError] = []
        self.instance = instance  # replaces {instance} (a template's instance, or NAME@INSTANCE)
        self.template = template  # the document is a template (NAME@.yaml) or one of its instances

    def given(self, key: str) -> bool:
        """Whether the document gives ``key`` a value (not absent, null or empty)."""
        return self.data.get(key) not in (None, "")

    def error(self, key: str | None, problem: str) -> None:
        self.errors.append(ConfigError(self.file, key, problem))

    def wrong(self, key: str, value: Any, expected: str) -> None:
        self.error(key, f"found {show(value)}, expected {expected}")

    def expand(self, text: str) -> str:
        return expand(text, self.name, self.dirs, self.instance)


def parse_text(r: Reader, k: Key, value: Any, one_line: bool = False) -> str | None:
    """A string (numbers are taken as written), placeholders replaced; null means the default."""
    if value is None:
        value = k.default
        if value is None:
            return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        r.wrong(k.name, value, "a string")
        return None
    text = r.expand(str(value))
    if one_line and ("\n" in text or "\r" in text):
        r.error(k.name, "found several lines, expected one line")
        return None
    if "\0" in text:
        r.error(k.name, "contains a NUL character")
        return None
    return text


def parse_line(r: Reader, k: Key, value: Any) -> str:
    return parse_text(r, k, value, one_line=True) or ""


def parse_path(r: Reader, k: Key, value: Any) -> str | None:
    """A path, relative to the services directory; null or empty means the default."""
    text = parse_text(r, k, value)
    written = k.default if value is None else value
    if not text and k.default:
        written, text = k.default, r.expand(str(k.default))
    if text and dots_added(str(written), text):
        r.wrong(k.name, written, DOTS_EXPECTED)
        return None
    return resolve(r.dirs.services, text) if text else None


def parse_seconds(r: Reader, k: Key, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        r.wrong(k.name, value, "a number of seconds")
    elif (isinstance(value, float) and math.isnan(value)) or value < 0:
        r.wrong(k.name, value, "a number of seconds, 0 or more")
    elif value > MAX_SECONDS:
        r.wrong(k.name, value, f"at most {MAX_SECONDS} seconds (a week)")
    else:
        return float(value)
    return 0.0


BOOL_WORDS = ("true", "false")


def parse_bool(r: Reader, k: Key, value: Any) -> bool:
    if not isinstance(value, bool):
        word = {"yes": "true", "on": "true", "no": "false", "off": "false"}.get(
            str(value).strip().lower(), str(value).strip().lower()
        )
        unquoted = f" (unquoted: {word})" if isinstance(value, str) and word in BOOL_WORDS else ""
        r.wrong(k.name, value, "true or false" + unquoted)
        return False
    return value


def parse_choice(r: Reader, k: Key, value: Any) -> str:
    choices = k.type.split(" or ")
    if not isinstance(value, str) or value not in choices:
        r.wrong(k.name, value, " or ".join(choices))
        return str(k.default)
    return value


def parse_signal_key(r: Reader, k: Key, value: Any) -> int:
    number = parse_signal(value)
    if number is None:
        r.wrong(k.name, value, "a signal name such as TERM, SIGINT or HUP, or a number 1-64")
        return 0
    return number
