"""Walking a parsed script in the order it runs: each simple command with whether it runs only
under a condition. Conditions and ``case`` words the import can decide (conditions.py) take only
their branch; a ``for`` loop gives its variable the words it takes (see initd_source.assign).
"""

from __future__ import annotations

from servicectl.commands.importer.shell import Case, Cmd, Func, Group, If, Loop

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from servicectl.commands.importer.shell import Node
    from servicectl.commands.importer.words import Vars


def ordered(
    nodes: list[Node], skip: Node | None, cond: bool = False, v: Vars | None = None
) -> Iterator[tuple[Cmd, bool]]:
    """Simple commands in order, each with whether it runs only under a condition. With the
    variables ``v`` (as they are when each node is reached: this is a generator), conditions
    and ``case`` words the import can decide take only their branch, and a ``for`` loop gives
    its variable a value (conditions.py)."""
    for node in nodes:
        if node is skip or isinstance(node, Func):
            continue
        if isinstance(node, Cmd):
            yield node, cond or node.guarded
        elif isinstance(node, If):
            yield from _ordered_if(node, skip, cond, v)
        elif isinstance(node, Case):
            yield from _ordered_case(node, skip, cond, v)
        elif isinstance(node, Loop):
            if node.kind == "for" and node.header:
                yield _loop_assignment(node), cond
            yield from ordered(node.test, skip, True, v)
            yield from ordered(node.body, skip, True, v)
        elif isinstance(node, Group):
            yield from ordered(node.body, skip, cond, v)


def _ordered_if(
    node: If, skip: Node | None, cond: bool, v: Vars | None
) -> Iterator[tuple[Cmd, bool]]:
    """An ``if``: the tests in order and the branch they select; from the first test that
    cannot be decided, every branch under a condition, those whose assignments are all known
    first (under a condition the first known value of a variable stands: so the variables
    keep the values of one branch, not a mix)."""
    from servicectl.commands.importer.conditions import decide

    for index, (test, body) in enumerate(node.branches):
        verdict = decide(test, v) if v is not None else None
        yield from ordered(test, skip, True, v)
        if verdict is None:
            rest = [b for _, b in node.branches[index:]] + [node.otherwise]
            for part in sorted(rest, key=_computed_assignments):
                yield from ordered(part, skip, True, v)
            return
        if verdict:
            yield from ordered(body, skip, cond, v)
            return
    yield from ordered(node.otherwise, skip, cond, v)


def _computed_assignments(body: list[Node]) -> int:
    """How many of a branch's own assignments take a command's output."""
    return sum(
        1
        for n in body
        if isinstance(n, Cmd) and not n.words
        for _, raw in n.assigns
        if "$(" in raw or "`" in raw
    )


def _ordered_case(
    node: Case, skip: Node | None, cond: bool, v: Vars | None
) -> Iterator[tuple[Cmd, bool]]:
    from servicectl.commands.importer.conditions import choose_arm

    arm = choose_arm(node.word, [p for p, _, _ in node.arms], v) if v is not None else None
    if arm is not None:
        if arm >= 0:
            yield from ordered(node.arms[arm][1], skip, cond, v)
        return
    for _, body, _ in node.arms:
        yield from ordered(body, skip, True, v)


LOOP_VALUE = "\ue010"  # a loop variable's assignment: the words it takes, after this mark


def _loop_assignment(node: Loop) -> Cmd:
    """``for NAME in WORDS``: an assignment of NAME (see words.py: a loop variable)."""
    name = node.header[0]
    words = node.header[2:] if node.header[1:2] == ["in"] else ['"$@"']
    return Cmd([], [(name, LOOP_VALUE + "\x1f".join(words))], node.line, node.line)
