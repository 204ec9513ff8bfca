"""servicectl.jsontext.loads (json's C scanner without the json package) gives what json.loads
gives: the same value for every document, a ValueError for every document json refuses."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from conftest import USER_PYTHON
from hypothesis import given, settings
from hypothesis import strategies as st

from servicectl.jsontext import dumps, loads

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=300)
@given(VALUES, st.sampled_from([None, 2]), st.sampled_from(["", " ", "\n\t"]))
def test_every_document_reads_as_json_reads_it(value: Any, indent: int | None, pad: str) -> None:
    text = pad + json.dumps(value, indent=indent) + pad
    assert same(loads(text), json.loads(text))
    assert same(loads(text.encode()), json.loads(text.encode()))


@settings(max_examples=500)
@given(st.text(alphabet='{}[]",:0123456789.eE+- \ntrufalsn\\x"NaInfiy', max_size=30))
def test_what_json_refuses_it_refuses(text: str) -> None:
    agree(text)


def agree(text: str) -> None:
    """loads(text) is json.loads(text), or both raise a ValueError."""
    try:
        expected: Any = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError):
            loads(text)
    else:
        assert same(loads(text), expected)


@pytest.mark.parametrize(
    "text", ["", " ", "[1,]", '{"a":1}x', "\ufeff[]", "NaN", "-Infinity", '"\\ud800"', "1 2"]
)
def test_edges(text: str) -> None:
    agree(text)


def test_it_imports_no_json_package() -> None:
    import subprocess

    code = (
        "import sys; from servicectl.jsontext import loads; "
        "assert loads(b'{\"a\": [1, 2.5, null]}') == {'a': [1, 2.5, None]}; "
        "print(sorted(m for m in ('json', 're', 'enum') if m in sys.modules))"
    )
    res = subprocess.run([USER_PYTHON, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"


@settings(max_examples=300)
@given(VALUES, st.sampled_from([None, 0, 2, 4]), st.booleans())
def test_every_value_is_written_as_json_writes_it(
    value: Any, indent: int | None, sort_keys: bool
) -> None:
    assert dumps(value, indent=indent, sort_keys=sort_keys) == json.dumps(
        value, indent=indent, sort_keys=sort_keys
    )


@pytest.mark.parametrize(
    "value",
    [{1: "a"}, {None: 1, True: 2}, [float("nan"), float("inf"), -0.0], ("t", 1), {"é": "\u2028"}],
)
def test_edges_written(value: Any) -> None:
    assert dumps(value, indent=2) == json.dumps(value, indent=2)
    with pytest.raises(TypeError):
        dumps({"x": object()}, indent=2)
