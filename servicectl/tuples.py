"""NamedTuple, built on collections.namedtuple without importing typing.

``class Point(NamedTuple): x: int; y: int = 0`` makes the same class as typing's: the fields
in order, the defaults, the methods, properties and docstring of the body, pickled by name.
What it skips is typing's check of each annotation (with postponed annotations, a ForwardRef
per field: about 1 ms per command for servicectl's value classes, on top of typing's own
import of 4-6 ms). Type checkers see typing.NamedTuple itself.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    from collections import namedtuple

    # What the class body may not define (namedtuple's own), and what it defines that is
    # not copied onto the class (the annotations become the fields).
    _PROHIBITED = frozenset(
        {
            "__new__",
            "__init__",
            "__slots__",
            "__getnewargs__",
            "_fields",
            "_field_defaults",
            "_make",
            "_replace",
            "_asdict",
            "_source",
        }  # fmt: skip
    )
    _SPECIAL = frozenset({"__module__", "__name__", "__annotations__"})

    class _NamedTupleMeta(type):
        def __new__(cls, typename, bases, ns):
            types = ns.get("__annotations__", {})
            defaults = [ns[field] for field in types if field in ns]
            if any(field not in ns for field in list(types)[len(types) - len(defaults) :]):
                raise TypeError(f"{typename}: a field without a default follows one with")
            nt = namedtuple(typename, types, defaults=defaults, module=ns["__module__"])
            nt.__annotations__ = nt.__new__.__annotations__ = dict(types)
            for key, value in ns.items():
                if key in _PROHIBITED:
                    raise AttributeError(f"{typename}: cannot overwrite NamedTuple's {key}")
                if key not in _SPECIAL and key not in nt._fields:
                    setattr(nt, key, value)
            return nt

    def NamedTuple(typename, fields=(), /):  # noqa: N802  (typing's name and functional form)
        """``NamedTuple("Name", [("field", type), ...])``, as typing's functional form."""
        ns = {"__annotations__": dict(fields), "__module__": "servicectl.tuples"}
        return _NamedTupleMeta(typename, (_NamedTuple,), ns)

    _NamedTuple = type.__new__(_NamedTupleMeta, "NamedTuple", (), {})
    NamedTuple.__mro_entries__ = lambda bases: (_NamedTuple,)
