"""Reading one YAML document safely: the safe loader (the C one when present), made strict.

Duplicate keys are refused, merge keys (``<<``) are built once (no "billion laughs"), a tag
the safe loader does not know is refused, a scalar that cannot be built is an error with its
place, nesting is bounded before the document is composed, and every failure becomes a
ConfigError naming the file (and the key, where it is known). yaml itself is imported only
when a document is parsed: commands whose definitions are all cached never import it.
"""

from __future__ import annotations

import re

from servicectl.definitions.reader import show
from servicectl.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

MAX_DEPTH = 100  # nesting levels of a definition (it needs 3)
MAX_NUMBER_CHARS = 300  # longer integers are refused by the loader (sexagesimal 1:2:3... is slow)
YAML_TAG = "tag:yaml.org,2002:"


def _merge_into(loader: Any, merged: dict[Any, Any], value_node: Any) -> None:
    """Expand the value of one ``<<`` key: merged mappings are built as objects (each anchor
    once), so repeated aliases cost nothing, unlike PyYAML's node-level flattening, which
    doubles per level. The first mapping listed wins."""
    from yaml.constructor import ConstructorError
    from yaml.nodes import MappingNode, SequenceNode

    sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
    for source in sources:
        if not isinstance(source, MappingNode):
            problem = "<<: expected a mapping or a list of mappings to merge"
            raise ConstructorError(None, None, problem, source.start_mark)
        mapping = loader.construct_object(source, deep=True)
        if not isinstance(mapping, dict):  # a !!set or !!omap
            raise ConstructorError(None, None, "<<: expected a plain mapping", source.start_mark)
        for key, value in mapping.items():
            merged.setdefault(key, value)


def _construct_mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
    from yaml.constructor import ConstructorError
    from yaml.nodes import MappingNode

    if not isinstance(node, MappingNode):
        raise ConstructorError(None, None, f"expected a mapping, found {node.id}", node.start_mark)
    merged: dict[Any, Any] = {}
    own: dict[Any, Any] = {}
    merge_seen = False
    for key_node, value_node in node.value:
        if key_node.tag == YAML_TAG + "merge":
            if merge_seen:
                raise ConstructorError(None, None, "duplicate key '<<'", key_node.start_mark)
            merge_seen = True
            _merge_into(loader, merged, value_node)
            continue
        if key_node.tag == YAML_TAG + "value":
            key_node.tag = YAML_TAG + "str"
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            problem = "a mapping key must be a plain value"
            raise ConstructorError(None, None, problem, key_node.start_mark) from None
        if key in own:
            raise ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        try:
            own[key] = loader.construct_object(value_node, deep=deep)
        except ConstructorError as exc:  # remember under which key, for the message
            exc.key_path = [str(key), *getattr(exc, "key_path", [])]  # type: ignore[attr-defined]
            raise
    return {**merged, **own} if merged else own  # keys written here override merged ones


def _checked(construct: Callable[[Any, Any], Any], expected: str) -> Callable[[Any, Any], Any]:
    """A scalar constructor whose failures (of any kind) become errors with their place."""
    from yaml.constructor import ConstructorError

    def wrapper(loader: Any, node: Any) -> Any:
        text = loader.construct_scalar(node)
        if expected == "a whole number" and len(text) > MAX_NUMBER_CHARS:
            problem = f"a number of {len(text)} characters, expected at most {MAX_NUMBER_CHARS}"
            raise ConstructorError(None, None, problem, node.start_mark)
        try:
            return construct(loader, node)
        except ConstructorError:
            raise
        except Exception:
            problem = f"found {show(text)}, expected {expected}"
            raise ConstructorError(None, None, problem, node.start_mark) from None

    return wrapper


def _undefined(loader: Any, node: Any) -> Any:
    from yaml.constructor import ConstructorError

    tag = str(node.tag)
    if tag.startswith(YAML_TAG):
        tag = "!!" + tag[len(YAML_TAG) :]
    tag = tag if len(tag) <= 80 else tag[:77] + "..."
    problem = f"the tag {tag} is not allowed (a definition is plain YAML)"
    raise ConstructorError(None, None, problem, node.start_mark)


def _yaml_loader() -> type:
    """The strict safe loader class (the C one when present)."""
    import yaml
    from yaml.constructor import SafeConstructor

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class StrictLoader(base):  # type: ignore[valid-type, misc]
        pass

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    StrictLoader.add_constructor(None, _undefined)
    for tag, construct, expected in (
        ("int", SafeConstructor.construct_yaml_int, "a whole number"),
        ("float", SafeConstructor.construct_yaml_float, "a number"),
        ("bool", SafeConstructor.construct_yaml_bool, "true or false"),
        ("timestamp", SafeConstructor.construct_yaml_timestamp, "a date or time"),
    ):
        StrictLoader.add_constructor(YAML_TAG + tag, _checked(construct, expected))
    return StrictLoader


_LOADER: type | None = None


def _check_depth(text: str, loader: type) -> None:
    """Refuse nesting deeper than MAX_DEPTH before composing: the C loader's composer recurses
    in C and crashes the interpreter (SIGSEGV) at some 30,000 levels of ``[``."""
    import yaml

    # Each level needs one of these indicators, so fewer of them means no need to look.
    if sum(text.count(c) for c in "[{-?:") <= MAX_DEPTH:
        return
    depth = 0
    for event in yaml.parse(text, Loader=loader):  # events come from a loop, not recursion
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark  # the C parser's Mark type is not in the stubs
                problem = f"nested more than {MAX_DEPTH} levels deep"
                raise yaml.constructor.ConstructorError(None, None, problem, mark)  # type: ignore[arg-type]
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


LINE_BREAK_RE = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")  # what YAML counts as a line break
TOP_KEY_RE = re.compile(r"""^(?:"([^"]+)"|'([^']+)'|([^\s#'"\-?:[{][^:#]*?))\s*:(?:\s|$)""")


def _tab_problem(text: str, line: int, column: int) -> tuple[str | None, str] | None:
    """When YAML stopped at a tab: the top-level key it belongs to (if any) and a message that
    says so; None when the character there is not a tab."""
    lines = LINE_BREAK_RE.split(text)
    if not 0 <= line < len(lines) or not 0 <= column < len(lines[line]):
        return None
    if lines[line][column] != "\t":
        return None
    key = None
    for number in range(line, -1, -1):  # the nearest key written at the left margin
        match = TOP_KEY_RE.match(lines[number])
        if match:
            key = next(g for g in match.groups() if g is not None).strip()
            break
    else:
        match = TOP_KEY_RE.match(lines[line].lstrip(" \t"))
        key = next(g for g in match.groups() if g is not None).strip() if match else None
    where = f"line {line + 1}, column {column + 1}"
    return key, f"a tab character at {where}: YAML indents with spaces, not tabs"


def parse_yaml(text: str, file: str) -> Any:
    """Parse one YAML document safely; any failure becomes a ConfigError naming the file."""
    global _LOADER
    import yaml

    if _LOADER is None:
        _LOADER = _yaml_loader()
    try:
        _check_depth(text, _LOADER)
        return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        tab = _tab_problem(text, mark.line, mark.column) if mark else None
        if tab is not None:
            raise ConfigError(file, tab[0], f"not valid YAML: {tab[1]}") from None
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = exc.problem or exc.context or "not valid YAML"
        key = ".".join(getattr(exc, "key_path", [])) or None
        raise ConfigError(file, key, f"not valid YAML{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, None, f"not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(file, None, "not valid YAML: nested too deeply") from None
    except Exception as exc:  # a constructor's own failure: still this file's error, not ours
        raise ConfigError(file, None, f"not valid YAML: {type(exc).__name__}: {exc}") from None
