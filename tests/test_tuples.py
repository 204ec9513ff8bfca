"""servicectl.tuples.NamedTuple (without importing typing or collections) makes the classes
typing.NamedTuple makes: fields, defaults, methods, docstrings, pickling, copies, errors."""

from __future__ import annotations

import copy
import pickle
import subprocess
import typing

import pytest
from conftest import USER_PYTHON

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
    code = (
        "import sys, servicectl.tuples, servicectl.paths; "
        "print('typing' in sys.modules, 'collections' in sys.modules)"
    )
    # the installed wheel's interpreter: an editable install's import hook loads collections
    res = subprocess.run([USER_PYTHON, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["False", "False"]


def test_calls_bind_as_typings_do() -> None:
    """Positional, by name, defaults, and the errors of a wrong call, as typing's class."""
    for cls in (Point, TypingPoint):
        assert cls(1, tag="q") == (1, 0, "q") and cls(y=2, x=1) == (1, 2, "p")
        for bad_args, bad_kwargs in [((), {}), ((1, 2, "t", 4), {}), ((1,), {"z": 1})]:
            with pytest.raises(TypeError):
                cls(*bad_args, **bad_kwargs)
        with pytest.raises(TypeError):
            cls(1, x=2)
        with pytest.raises(ValueError):
            cls(1)._replace(z=3)
        with pytest.raises(TypeError):
            cls._make([1])
        assert cls._make([1, 2, "t"]) == (1, 2, "t") and cls(1)._replace(y=4).y == 4
        assert copy.deepcopy(cls(1, [2])) == cls(1, [2]) and type(copy.copy(cls(1))) is cls
        assert cls.x.__doc__ == "Alias for field number 0" and cls.__match_args__ == cls._fields
