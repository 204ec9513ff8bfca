"""NamedTuple, built without importing typing or collections.

``class Point(NamedTuple): x: int; y: int = 0`` makes the class typing's NamedTuple makes: a
tuple subclass with the fields in order, their defaults, ``_fields``, ``_field_defaults``,
``_make``, ``_replace``, ``_asdict``, the repr, pickling by name, and the methods, properties
and docstring of the body. Type checkers see typing.NamedTuple itself.

Why not collections.namedtuple: importing collections (with operator, keyword, reprlib) costs
a command 2-3 ms, and namedtuple compiles a ``__new__`` for each class (about 0.1 ms each, 25
of them on the way to a ``status``), where this module makes one ``__new__`` by closure. The
fields are read through ``_collections._tuplegetter``, namedtuple's own C accessor.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    from _collections import _tuplegetter

    # What the class body may not define (the tuple's own), and what it defines that is not
    # copied onto the class (the annotations become the fields).
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
    _SPECIAL = frozenset({"__module__", "__name__", "__qualname__", "__annotations__"})

    def _binder(typename, fields, defaults):
        """The ``__new__`` of a class of ``fields``: positional or by name, the last
        ``len(defaults)`` optional; TypeError as a function's call would raise it."""
        count = len(fields)
        index = {f: i for i, f in enumerate(fields)}
        new = tuple.__new__
        optional = dict(zip(fields[count - len(defaults) :], defaults))

        def __new__(cls, *args, **kwargs):  # noqa: N807
            if not kwargs and len(args) == count:
                return new(cls, args)
            if not args:  # all by name (a record read back): no loop in Python
                given = {**optional, **kwargs}
                if len(given) == count:  # then every field is given, and nothing else
                    try:
                        return new(cls, map(given.__getitem__, fields))
                    except KeyError:
                        pass  # a name that is no field took a missing one's place: say which
            return new(cls, _values(typename, fields, defaults, index, args, kwargs))

        return __new__

    def _values(typename, fields, defaults, index, args, kwargs):
        """The fields' values of a call, or the TypeError a function's call would raise."""
        count, first_default = len(fields), len(fields) - len(defaults)
        if len(args) > count:
            raise TypeError(f"{typename}() takes {count} arguments, {len(args)} given")
        values = list(args) + [_MISSING] * (count - len(args))
        for name, value in kwargs.items():
            i = index.get(name)
            if i is None:
                raise TypeError(f"{typename}() got an unexpected keyword argument {name!r}")
            if values[i] is not _MISSING:
                raise TypeError(f"{typename}() got multiple values for argument {name!r}")
            values[i] = value
        for i in range(len(args), count):
            if values[i] is _MISSING:
                if i < first_default:
                    raise TypeError(f"{typename}() missing argument {fields[i]!r}")
                values[i] = defaults[i - first_default]
        return values

    _MISSING = object()

    def _methods(typename, fields):
        """The methods every such class has (namedtuple's)."""
        count = len(fields)

        @classmethod
        def _make(cls, iterable):
            result = tuple.__new__(cls, iterable)
            if len(result) != count:
                raise TypeError(f"Expected {count} arguments, got {len(result)}")
            return result

        def _replace(self, /, **kwds):
            result = self._make([kwds.pop(f, v) for f, v in zip(fields, self)])
            if kwds:
                raise ValueError(f"Got unexpected field names: {list(kwds)!r}")
            return result

        def __repr__(self):
            shown = ", ".join(f"{f}={v!r}" for f, v in zip(fields, self))
            return f"{self.__class__.__name__}({shown})"

        def _asdict(self):
            return dict(zip(fields, self))

        def __getnewargs__(self):
            return tuple(self)

        return {
            "_make": _make,
            "_replace": _replace,
            "__repr__": __repr__,
            "_asdict": _asdict,
            "__getnewargs__": __getnewargs__,
        }

    def _tuple_class(typename, fields, defaults, module, qualname):
        fields = tuple(fields)
        ns = {
            "__doc__": f"{typename}({', '.join(fields)})",
            "__slots__": (),
            "_fields": fields,
            "_field_defaults": dict(zip(fields[len(fields) - len(defaults) :], defaults)),
            "__new__": _binder(typename, fields, tuple(defaults)),
            "__match_args__": fields,
            "__module__": module,
            "__qualname__": qualname,
        }
        ns.update(_methods(typename, fields))
        for i, name in enumerate(fields):
            ns[name] = _tuplegetter(i, f"Alias for field number {i}")
        return type(typename, (tuple,), ns)

    class _NamedTupleMeta(type):
        def __new__(cls, typename, bases, ns):
            types = ns.get("__annotations__", {})
            defaults = [ns[field] for field in types if field in ns]
            if any(field not in ns for field in list(types)[len(types) - len(defaults) :]):
                raise TypeError(f"{typename}: a field without a default follows one with")
            qualname = ns.get("__qualname__", typename)
            nt = _tuple_class(typename, types, defaults, ns["__module__"], qualname)
            nt.__annotations__ = dict(types)
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
