"""system/halves.py: the board's rows read in two processes give the rows read in one, in
order, whatever the forked half does (answers marshal cannot carry, a child that dies, a
child that writes garbage): then the parent computes that half itself."""

from __future__ import annotations

import json
import os
import subprocess

from conftest import USER_PYTHON, Env, assert_ok

CODE = r"""
import os, sys
from servicectl.system import halves
items = list(range(101))
parent = os.getpid()
print(halves.in_two(items, lambda i: i * i, lambda a: a, lambda a: a) == [i * i for i in items])
# an answer marshal cannot carry: the parent computes the second half
class Odd:
    def __init__(self, i): self.i = i
    def __eq__(self, other): return self.i == other.i
got = halves.in_two(items, Odd, lambda a: a, lambda a: a)
print(got == [Odd(i) for i in items])
# the child dies half way (its compute kills it): the same answers, computed here
def dying(i):
    if os.getpid() != parent and i == 80:
        os.kill(os.getpid(), 9)
    return -i
print(halves.in_two(items, dying, lambda a: a, lambda a: a) == [-i for i in items])
# garbage decoded: refused, computed here
print(halves.in_two(items, str, lambda a: a, lambda a: int("x")) == [str(i) for i in items])
# nothing the child prints reaches the parent's stdout
sys.stdout.write("held-")
def chatty(i):
    if os.getpid() != parent:
        print("child says", i)
        sys.stdout.flush()
    return i
print(halves.in_two(items, chatty, lambda a: a, lambda a: a) == items)
kids = [p for p in os.listdir("/proc") if p.isdigit() and os.path.exists(f"/proc/{p}/stat")
        and open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1] == str(parent)]
print("children", kids)
print(halves.worth_splitting(halves.MIN_ITEMS - 1))
"""


def test_in_two_gives_what_one_process_gives() -> None:
    res = subprocess.run([USER_PYTHON, "-c", CODE], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[:4] == ["True"] * 4, res.stdout
    assert lines[4] == "held-True"  # the parent's buffered text written once, by the parent
    assert "child says" not in res.stdout
    assert lines[5] == "children []" and lines[6] == "False"


def test_the_board_in_two_halves_is_the_board_of_each(env: Env) -> None:
    """60 services (above MIN_ITEMS: two halves on a machine with two CPUs), some running,
    one stopped, one invalid: the board's rows are those of status of each name, in order."""
    for i in range(60):
        env.write(f"s{i:02d}", {"command": ["/bin/sleep", "300"], "start_grace": 0})
    (env.services / "bad.yaml").write_text("command: [\n")
    for i in range(0, 60, 7):
        assert_ok(env.sc("start", f"s{i:02d}"))
    board = env.sc("status", "--json")
    each = env.sc("status", "--json", "bad", *(f"s{i:02d}" for i in range(60)))
    assert board.returncode == each.returncode == 4
    volatile = {"uptime_seconds", "cpu_percent", "memory_bytes", "cgroup_memory"}

    def rows(text: str) -> list[dict[str, object]]:
        return [{k: v for k, v in r.items() if k not in volatile} for r in json.loads(text)]

    assert rows(board.stdout) == rows(each.stdout)
    for text in (board.stdout, each.stdout):  # each half writes its items as json.dumps would
        assert text == json.dumps(json.loads(text), indent=2) + "\n"
    assert [r["name"] for r in json.loads(board.stdout)][:2] == ["bad", "s00"]
    running = [r for r in json.loads(board.stdout) if r["state"] == "running"]
    assert len(running) == 9 and all(os.path.exists(f"/proc/{r['pid']}") for r in running)
    assert_ok(env.sc("stopall"))
