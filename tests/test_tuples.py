"""servicectl.tuples.NamedTuple (collections.namedtuple, without importing typing) makes the
classes typing.NamedTuple makes: fields, defaults, methods, docstrings, pickling, errors."""

from __future__ import annotations

import pickle
import subprocess
import sys
import typing

import pytest

from servicectl.tuples import NamedTuple


class Point(NamedTuple):
    """A point."""

    x: int
    y: int = 0
    tag: str = "p"

    @property
    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)

    def moved(self, dx: int) -> Point:
        return self._replace(x=self.x + dx)


class TypingPoint(typing.NamedTuple):
    """A point."""

    x: int
    y: int = 0
    tag: str = "p"


def test_the_same_class_as_typings() -> None:
    p = Point(1)
    assert p == (1, 0, "p") and p == TypingPoint(1)
    assert Point._fields == TypingPoint._fields == ("x", "y", "tag")
    assert Point._field_defaults == TypingPoint._field_defaults == {"y": 0, "tag": "p"}
    assert list(Point.__annotations__) == list(TypingPoint.__annotations__)
    assert Point.__doc__ == "A point." and Point.__qualname__ == "Point"
    assert Point.__module__ == __name__ and repr(p) == "Point(x=1, y=0, tag='p')"
    assert p.norm1 == 1 and p.moved(2) == Point(3) and isinstance(p.moved(2), Point)
    assert Point(1, y=2)._asdict() == {"x": 1, "y": 2, "tag": "p"}
    assert pickle.loads(pickle.dumps(Point(5, 6))) == Point(5, 6)
    assert isinstance(p, tuple) and Point.__mro__[1] is tuple
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]


def test_what_typing_refuses_it_refuses() -> None:
    with pytest.raises(TypeError):

        class Bad(NamedTuple):
            x: int = 0
            y: int  # type: ignore[misc]

    with pytest.raises(AttributeError):

        class Worse(NamedTuple):
            x: int

            def _asdict(self) -> dict[str, int]:  # type: ignore[override]
                return {}


def test_functional_form() -> None:
    Pair = NamedTuple("Pair", [("a", int), ("b", str)])
    assert Pair(1, "x") == (1, "x") and Pair._fields == ("a", "b")


def test_servicectl_tuples_import_no_typing() -> None:
    code = "import sys, servicectl.tuples, servicectl.paths; print('typing' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"
