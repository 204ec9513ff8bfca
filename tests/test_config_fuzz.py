"""Config fuzz tests: hypothesis-generated broken YAML definitions go through the real CLI
(check, status, status --json, list, start) and load_catalog; none may crash, hang or harm others.

Generated: random YAML structures, valid definitions with one key mutated to a wrong type, huge
numbers, unicode (keys, values, names, RTL, NUL, surrogates), duplicate keys, anchors, aliases and
merge-key bombs, deep nesting, binary junk and BOMs, python/* tags, and files that are no file
(a directory, a FIFO, a symlink loop, /dev/zero), with odd names. Each CLI example writes many
files into one services directory next to a running service and calls each command once.

Example counts are bounded so that this file runs in well under 40 s. Set SERVICECTL_LONG=1 for
a long run with many more examples (minutes).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from conftest import PY, Env, assert_ok, dirs_for, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servicectl.definitions.catalog import MAX_NAME, Invalid, load_catalog
from servicectl.definitions.schema import KNOWN_KEYS, Service
from servicectl.definitions.yamlload import MAX_DEPTH
from servicectl.output.face import cell
from servicectl.paths import Dirs, resolve_dirs
from servicectl.text import escape as cli_escape

if TYPE_CHECKING:
    from collections.abc import Callable

LONG = os.environ.get("SERVICECTL_LONG") == "1"


def examples(default: int, long: int) -> Callable[[Any], Any]:
    """Hypothesis settings: ``default`` examples, or ``long`` (and no 120 s timeout) when long."""

    def wrap(test: Any) -> Any:
        test = settings(
            max_examples=long if LONG else default,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )(test)
        return pytest.mark.timeout(3600)(test) if LONG else test

    return wrap


def shown(path: Path | str) -> str:
    """A path as servicectl prints it: one line, every control character escaped (cli.escape,
    docs/security.md R-VIEW-1), bytes that are not UTF-8 backslash-escaped, read back as
    text."""
    text = cli_escape(str(path)).encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def no_crash(res: subprocess.CompletedProcess[str], codes: set[int]) -> None:
    out = res.stdout + res.stderr
    assert "Traceback" not in out, out
    assert res.returncode in codes, f"exit {res.returncode}\n{out}"


# ---------------------------------------------------------------------------------------------
# What goes into a file


TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\u202eevil\u202c",  # RTL override
        "שלום",
        "مرحبا بالعالم",
        "a\0b",
        "\x1b[2J",
        "line\nbreak",
        "\u2028",
        "~",
        "~nosuchuser/x",
        "{name}",
        "{run_dir}/../x",
        "null",
        "yes",
        "NO",
        "0x1F",
        "1:30",
        "TERM",
        "SIGKILL",
        "SIG_IGN",
        "²",
        "٣",
        "9" * 50,
        "notify",
        "127.0.0.1:0",
        ":65536",
        "http://",
        "'unclosed",
        "x" * 5000,
    ]
)
HUGE_INTS = st.sampled_from(
    [0, -1, -20, 19, 2**31, 2**63, 2**63 - 1, 2**64, -(2**63), 10**100, -(10**100), 10**299]
)
HUGE_FLOATS = st.sampled_from([1e308, -1e308, 5e-324, 1e-300, float("inf"), float("-inf")])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HUGE_INTS,
    st.floats(),
    HUGE_FLOATS,
    TEXT,
    ODD_TEXT,
)
KEYS = st.one_of(TEXT, ODD_TEXT, st.sampled_from(KNOWN_KEYS), st.integers(), st.booleans())
VALUES = st.recursive(
    SCALARS,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(KEYS, kids, max_size=4),
    max_leaves=12,
)


def dump(doc: Any, unicode: bool = True) -> str:
    return yaml.safe_dump(doc, allow_unicode=unicode, sort_keys=False, width=10_000)


@st.composite
def random_structure(draw: st.DrawFn) -> bytes:
    """Any YAML value at the top: scalar, list or a mapping of random keys."""
    return dump(draw(VALUES), draw(st.booleans())).encode()


SUB_KEYS = {
    "environment": st.one_of(TEXT, ODD_TEXT, st.just("PATH")),
    "limits": st.sampled_from(["nofile", "core", "nofiles", "stack", "as", ""]),
    "ready": st.sampled_from(["tcp", "unix", "file", "http", "command", "notify", "timeout"]),
}


@st.composite
def mutated_definition(draw: st.DrawFn) -> bytes:
    """A valid-looking definition with one key (or sub-key) set to something random."""
    doc: dict[Any, Any] = {"command": "false", "description": "fuzzed"}
    key = draw(st.sampled_from(KNOWN_KEYS))
    value = draw(VALUES)
    if key in SUB_KEYS and draw(st.booleans()):
        value = {draw(SUB_KEYS[key]): value}
    doc[key] = value
    if draw(st.booleans()):  # a typo of a known key too
        known = draw(st.sampled_from(KNOWN_KEYS))
        i = draw(st.integers(0, len(known) - 1))
        doc[known[:i] + known[i + 1 :]] = draw(SCALARS)
    return dump(doc, draw(st.booleans())).encode()


NUMBER_TEXTS = st.sampled_from(
    [
        "1e308",
        "-1e308",
        "1e999",
        "1e-400",
        ".inf",
        "-.inf",
        "+.inf",
        ".nan",
        ".NaN",
        "-1",
        "-0",
        "1" + "0" * 100,
        "1" + "0" * 299,
        "1" + "0" * 400,
        "9" * 4400,
        "0x" + "f" * 5000,
        "0b" + "1" * 2000,
        "0o777",
        "0777",
        "0999",
        "1:2:3",
        "1" + ":1" * 3000,
        "1:2:3.5",
        "1_000_000",
        "!!int ''",
        "!!int 'x'",
        "!!int 0x",
        "!!float ''",
        "!!float 1:x",
        "!!bool maybe",
        "!!timestamp soon",
        "!!timestamp 2021-02-30",
        "!!binary '%%%'",
        "!!null nothing",
        "!!str",
        "!!map x",
        "!!seq x",
        "!!set [a]",
        "!!omap x",
        "!!pairs [a]",
        "!nonsense x",
        "!<tag:example.com,2000:x> y",
    ]
)
NUMBER_KEYS = st.sampled_from(
    [
        "stop_timeout",
        "start_timeout",
        "start_grace",
        "nice",
        "umask",
        "stop_signal",
        "reload_signal",
        "enabled",
        "description",
        "command",
        "depends",
        "limits: {nofile",
        "limits: {core: [0",
        "ready: {timeout",
        "ready: {tcp",
        "environment: {X",
    ]
)


@st.composite
def huge_number(draw: st.DrawFn) -> bytes:
    key = draw(NUMBER_KEYS)
    value = draw(NUMBER_TEXTS)
    closing = "]" * key.count("[") + "}" * key.count("{")
    if closing == "}" and key.startswith("ready"):
        value += ", notify: true" if "timeout" in key else ""
    return f"command: /bin/false\n{key}: {value}{closing}\n".encode()


@st.composite
def unicode_definition(draw: st.DrawFn) -> bytes:
    """Unicode keys and values, escapes YAML turns into NUL and controls, surrogates encoded as
    they would be by a broken editor (invalid UTF-8), BOMs and UTF-16."""
    key = draw(st.one_of(TEXT, ODD_TEXT, st.sampled_from(KNOWN_KEYS)))
    value = draw(st.one_of(TEXT, ODD_TEXT))
    escape = draw(
        st.sampled_from(
            ["", "\\0", "\\x1b", "\\u202e", "\\N", "\\L", "\\P", "\\ud800", "\\U0010ffff"]
        )
    )
    text = f'command: /bin/false\n{json.dumps(key)}: {json.dumps(value)[:-1]}{escape}"\n'
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1"]))
    if draw(st.booleans()):
        text += f"description: {draw(st.characters(categories=('Cs',)))}\n"
        return text.encode("utf-8", "surrogatepass")
    return text.encode(encoding, "replace")


@st.composite
def duplicate_keys(draw: st.DrawFn) -> bytes:
    key = draw(st.one_of(st.sampled_from(KNOWN_KEYS), TEXT, ODD_TEXT))
    quoted = json.dumps(key)
    lines = ["command: /bin/false", f"{quoted}: 1", f"{quoted}: 2"]
    if draw(st.booleans()):  # duplicates inside a nested mapping
        lines = ["command: /bin/false", f"environment: {{A: x, {quoted}: 1, {quoted}: 2}}"]
    return ("\n".join(draw(st.permutations(lines))) + "\n").encode()


@st.composite
def alias_bomb(draw: st.DrawFn) -> bytes:
    """Billion laughs (lists), merge-key bombs (<<) and long alias chains."""
    kind = draw(st.sampled_from(["laughs", "merge", "chain", "self"]))
    levels = draw(st.integers(1, 40))
    if kind == "laughs":
        fan = draw(st.integers(2, 10))
        lines = ['l0: &l0 ["lol"]']
        for i in range(1, levels):
            lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * fan) + "]")
        key = draw(st.sampled_from(["command", "depends", "environment", "limits", "ready"]))
        lines.append(f"{key}: *l{levels - 1}")
        return ("\n".join(lines) + "\n").encode()
    if kind == "merge":
        node = "&m0 {k0: 0}"
        for i in range(1, levels):
            node = f"&m{i} {{<<: [{node}, *m{i - 1}]}}"
        return f"<<: {node}\ncommand: /bin/false\n".encode()
    if kind == "chain":
        n = draw(st.sampled_from([10, 500, 3000]))
        lines = ["c0: &c0 {x: 1}"] + [f"c{i}: &c{i} {{x: *c{i - 1}}}" for i in range(1, n)]
        return ("\n".join(lines) + f"\ncommand: /bin/false\nenvironment: *c{n - 1}\n").encode()
    return b"command: &a [false, *a]\n"


@st.composite
def deep_nesting(draw: st.DrawFn) -> bytes:
    n = draw(st.sampled_from([MAX_DEPTH - 2, MAX_DEPTH + 1, 1000, 10_000, 40_000, 300_000]))
    kind = draw(st.sampled_from(["[", "{a: ", "- ", "? ", "block"]))
    closed = draw(st.booleans())
    if kind == "[":
        body = "[" * n + ("]" * n if closed else "")
    elif kind == "{a: ":
        body = "{a: " * n + ("1" + "}" * n if closed else "")
    elif kind == "block":
        n = min(n, 1000)
        return (
            "command: /bin/false\nx:\n" + "".join(" " * i + "- \n" for i in range(1, n))
        ).encode()
    else:
        return (kind * n + "\n").encode()  # a block sequence or key at the top
    return f"command: {body}\n".encode()


@st.composite
def binary_junk(draw: st.DrawFn) -> bytes:
    bom = draw(
        st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff"])
    )
    junk = draw(st.binary(max_size=300))
    where = draw(st.sampled_from(["alone", "before", "after", "inside"]))
    good = b"command: /bin/false\ndescription: x\n"
    if where == "alone":
        return bom + junk
    if where == "before":
        return bom + junk + good
    if where == "after":
        return bom + good + junk
    return (
        bom + b"command: fa" + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + b"lse\n"
    )


def python_tags(marker: Path) -> list[bytes]:
    cmd = f"touch {marker}"
    texts = [
        f'command: !!python/object/apply:os.system ["{cmd}"]\n',
        f'!!python/object/apply:os.system ["{cmd}"]\n',
        f'description: !!python/object/apply:subprocess.call [["touch", "{marker}"]]\n',
        f'command: !!python/object/new:os.system ["{cmd}"]\n',
        f"command: /bin/false\nx: !!python/object/apply:builtins.open ['{marker}', w]\n",
        "command: !!python/name:os.system\n",
        "command: !!python/module:os\n",
        f'command: !<tag:yaml.org,2002:python/object/apply:os.system> ["{cmd}"]\n',
        f'%TAG !p! tag:yaml.org,2002:python/\n---\ncommand: !p!object/apply:os.system ["{cmd}"]\n',
        "command: /bin/false\nx: !!python/tuple [1, 2]\n",
    ]
    return [t.encode() for t in texts]


SMALL_CASES = [b"", b"\n", b"   \n\t\n", b"# only a comment\n", b"---\n", b"...\n", b"~\n"]
SMALL_CASES += [b"a: 1\n---\nb: 2\n", b"command: /bin/false\n---\n", b"- a\n- b\n", b"just text\n"]
SMALL_CASES += [b"command:\n", b"command: /bin/false\ncommand: true\n", b"? [a]\n: b\n", b"{}\n"]


def broken_files(marker: Path) -> st.SearchStrategy[bytes]:
    return st.one_of(
        random_structure(),
        mutated_definition(),
        huge_number(),
        unicode_definition(),
        duplicate_keys(),
        alias_bomb(),
        deep_nesting(),
        binary_junk(),
        st.sampled_from(python_tags(marker) + SMALL_CASES),
    )


# ---------------------------------------------------------------------------------------------
# In process: load_catalog on many examples


def check_catalog(dirs: Dirs, names: list[str]) -> dict[str, Service | Invalid]:
    """Load the catalog and check every definition comes out valid or invalid with errors that
    name its file, what was wrong, and a key that is in the file (or is a required one)."""
    catalog = load_catalog(dirs, use_cache=False)
    out: dict[str, Service | Invalid] = {}
    for name in names:
        path = Path(dirs.services) / f"{name}.yaml"
        # NAME@.yaml is a template: valid ones are in catalog.templates (not services).
        result = (
            catalog.services.get(name) or catalog.invalid.get(name) or catalog.templates.get(name)
        )
        assert result is not None, f"{name} is missing from the catalog"
        if isinstance(result, Invalid):
            assert result.errors
            for err in result.errors:
                assert err.file == str(path) and err.message.startswith(f"{path}: ")
                assert err.problem.strip()
                assert "Traceback" not in err.message
        out[name] = result
    return out


@examples(150, 3000)
@given(st.lists(broken_files(Path("/nonexistent/fuzz-marker")), min_size=1, max_size=8))
def test_load_catalog_never_raises(tmp_path: Path, files: list[bytes]) -> None:
    """Every generated file comes out as a Service or an Invalid, quickly, from load_catalog."""
    services = tmp_path / "services.d"
    services.mkdir(exist_ok=True)
    for old in services.iterdir():
        old.unlink()
    names = [f"f{i}" for i in range(len(files))]
    for name, data in zip(names, files):
        (services / f"{name}.yaml").write_bytes(data)
    t0 = time.monotonic()
    check_catalog(resolve_dirs(services, tmp_path / "run", tmp_path / "log"), names)
    assert time.monotonic() - t0 < 10


@examples(200, 5000)
@given(key=st.sampled_from(KNOWN_KEYS), value=VALUES)
def test_wrong_types_name_the_key(tmp_path: Path, key: str, value: Any) -> None:
    """A definition with one key set to anything: valid, or invalid with an error naming that key
    (a forking type also needs pid_file; the file as a whole when YAML itself refuses it)."""
    services = tmp_path / "services.d"
    services.mkdir(exist_ok=True)
    path = services / "web.yaml"
    path.write_text(dump({"command": "false", key: value}))
    result = check_catalog(resolve_dirs(services, tmp_path / "run", tmp_path / "log"), ["web"])
    web = result["web"]
    if isinstance(web, Invalid):
        allowed = {key, "pid_file"} if key == "type" else {key}
        for err in web.errors:
            if err.key is None:
                assert err.problem.startswith("not valid YAML"), err.message
            else:
                assert re.split(r"[.\[]", err.key)[0] in allowed, err.message  # a.b, a[0]


# ---------------------------------------------------------------------------------------------
# Through the CLI, next to a running service


def start_good(env: Env) -> int:
    if not (env.run / "good.pid").exists():
        env.sleeper("good")
        assert_ok(env.sc("start", "good"))
    return env.pid("good")


def parallel(*calls: Callable[[], Any]) -> list[Any]:
    """Run independent CLI calls at once (each is a subprocess)."""
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def assert_cli_properties(env: Env, bad: list[str], good_pid: int) -> None:
    """The CLI properties for a services dir holding ``bad`` (some names, all generated) and the
    running service ``good``: no traceback, spec exit codes, every invalid file named by check,
    listed as invalid by status (code 4), JSON valid, and good untouched."""
    truth = check_catalog(dirs_for(env), [*bad, "good"])
    assert isinstance(truth["good"], Service)
    invalid = [n for n in bad if isinstance(truth[n], Invalid)]
    one = invalid[0] if invalid else None
    check_all, check_good, status_all, status_json, listing, status_one, check_one, start_one = (
        parallel(
            lambda: env.sc("check"),
            lambda: env.sc("check", "good"),
            lambda: env.sc("status"),
            lambda: env.sc("status", "--json"),
            lambda: env.sc("list", "--json"),
            lambda: env.sc("status", "--", one) if one else None,
            lambda: env.sc("check", "--", one) if one else None,
            lambda: env.sc("start", "--", one) if one else None,
        )
    )
    # a valid definition whose env_file cannot be read fails check too, naming the service
    unreadable = [
        n for n in bad if n not in invalid and f"servicectl: {n}: env_file " in check_all.stderr
    ]
    assert all(getattr(truth[n], "env_file", None) for n in unreadable), check_all.stderr
    no_crash(check_all, {6} if invalid or unreadable else {0})
    for name in invalid:
        assert f"servicectl: {shown(env.services / name)}.yaml: " in check_all.stderr
    for name in bad:
        if name not in invalid and name not in unreadable:
            assert f"{name}: ok (" in check_all.stdout
    assert f"good: ok ({env.services / 'good.yaml'})" in check_all.stdout

    no_crash(check_good, {0})

    no_crash(status_all, {4} if invalid else {0, 1, 3})  # the highest of the services' codes
    lines = status_all.stdout.splitlines()
    assert any(
        ln.split()[:3] == ["good", "running", str(good_pid)] for ln in lines if ln.strip()
    ), status_all.stdout
    for name in invalid:  # every row splits into the same columns, as awk splits (on blanks)
        rows = [[f for f in ln.split(" ") if f] for ln in lines if ln.strip()]
        printed = cell(name).encode("utf-8", "backslashreplace").decode("utf-8")  # not UTF-8
        assert any(row[:2] == [printed, "invalid"] for row in rows), status_all.stdout

    no_crash(status_json, {4} if invalid else {0, 1, 3})
    rows = {r["name"]: r for r in json.loads(status_json.stdout)}
    assert rows["good"]["state"] == "running" and rows["good"]["pid"] == good_pid
    assert rows["good"]["exit_code"] == 0
    for name in invalid:
        assert rows[name]["state"] == "invalid" and rows[name]["exit_code"] == 4
        assert rows[name]["error"].startswith(f"{env.services / name}.yaml: ")

    no_crash(listing, {0})
    items = {i["name"]: i for i in json.loads(listing.stdout)}
    assert {n for n in items if not items[n]["valid"]} == set(invalid)

    if one is not None:
        no_crash(status_one, {4})
        assert shown(one) in status_one.stdout and "invalid" in status_one.stdout
        no_crash(check_one, {6})
        assert f"servicectl: {shown(env.services / one)}.yaml: " in check_one.stderr
        if one.endswith("@"):  # a template: start names an instance, or it is a usage error
            no_crash(start_one, {2})
            assert "template" in start_one.stderr
        else:
            no_crash(start_one, {6})
            assert f"{shown(env.services / one)}.yaml: " in start_one.stderr
    assert env.pid("good") == good_pid and os.path.exists(f"/proc/{good_pid}")


def clear_except_good(env: Env) -> None:
    for p in env.services.iterdir():
        if p.name != "good.yaml":
            if p.is_dir() and not p.is_symlink():
                p.rmdir()
            else:
                p.unlink()


@examples(6, 300)
@given(data=st.data())
def test_cli_broken_files_next_to_a_running_service(env: Env, data: st.DataObject) -> None:
    """Many generated broken files in one services directory, each CLI command run once on the
    lot: no traceback, spec exit codes, each broken file named, the running service unaffected,
    and nothing of a python/* tag executed."""
    good_pid = start_good(env)
    clear_except_good(env)
    marker = env.root / "executed"
    files = data.draw(st.lists(broken_files(marker), min_size=5, max_size=30), label="files")
    names = [f"b{i}" for i in range(len(files))]
    for name, content in zip(names, files):
        (env.services / f"{name}.yaml").write_bytes(content)
    assert_cli_properties(env, names, good_pid)
    assert not marker.exists()


NAME_CHARS = st.characters(exclude_characters="/\0", exclude_categories=("Cs",))


@examples(5, 100)
@given(
    names=st.lists(
        st.text(NAME_CHARS, min_size=1, max_size=60).filter(
            lambda n: not n.startswith(".") and len(n.encode()) < 240
        ),
        min_size=1,
        max_size=6,
        unique=True,
    ),
    content=st.sampled_from([b"command: /bin/false\n", b"command: [\n", b""]),
)
def test_cli_odd_file_names(env: Env, names: list[str], content: bytes) -> None:
    """Unicode, RTL, control characters, spaces in file names: a name outside letters, digits,
    - _ . @ is an invalid definition, reported like any other; the rest behave."""
    good_pid = start_good(env)
    clear_except_good(env)
    stems = [n for n in names if n != "good" and ".dpkg-" not in n]
    for stem in stems:
        (env.services / f"{stem}.yaml").write_bytes(content)
    assert_cli_properties(env, stems, good_pid)


# ---------------------------------------------------------------------------------------------
# Fixed cases that must hold on every run


FORK_AND_EXEC = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write("\\nPEAK-KIB %d\\n" % usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""


def sc_measured(env: Env, *args: str, timeout: float = 30) -> tuple[Any, float, float]:
    """Run the CLI; return (result, seconds, its peak RSS in MiB), failing on a hang."""
    out = env.root / "out.txt"
    err = env.root / "err.txt"
    t0 = time.monotonic()
    with open(out, "w") as fo, open(err, "w") as fe:
        # Through a small forking wrapper: a child's ru_maxrss also counts the memory of the
        # process that forked it (exec carries the old address space's peak over), and this
        # pytest process may be large; the wrapper is a fresh, small interpreter.
        p = subprocess.Popen(
            [PY, "-S", "-c", FORK_AND_EXEC, *env.base_args(), *args],
            stdout=fo,
            stderr=fe,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ, NO_COLOR="1"),
            cwd=env.root,
            start_new_session=True,
        )
        timer = threading.Timer(timeout, os.killpg, (p.pid, signal.SIGKILL))
        timer.start()
        try:
            p.wait()
        finally:
            timer.cancel()
    elapsed = time.monotonic() - t0
    assert elapsed < timeout, f"servicectl {' '.join(args)} hung (killed after {timeout} s)"
    stderr, _, peak = err.read_text().rpartition("\nPEAK-KIB ")
    res = subprocess.CompletedProcess(args, p.returncode, out.read_text(), stderr)
    return res, elapsed, int(peak) / 1024


def test_bombs_and_deep_nesting_are_cheap(env: Env) -> None:
    """Billion laughs, merge-key bombs and 300,000 levels of ``[`` are refused or read in
    bounded time and memory (the C loader used to segfault on deep nesting), by every command."""
    laughs = ['l0: &l0 ["lol"]'] + [
        f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 12)
    ]
    merge = "&m0 {k0: 0}"
    for i in range(1, 40):
        merge = f"&m{i} {{<<: [{merge}, *m{i - 1}]}}"
    cases = {
        "laughs": "\n".join(laughs) + "\ncommand: *l11\n",
        "merge": f"<<: {merge}\ncommand: /bin/false\n",
        "deep": "command: " + "[" * 300_000 + "]" * 300_000 + "\n",
        "deepopen": "command: " + "[" * 500_000 + "\n",
        "deepmap": "command: " + "{a: " * 200_000 + "\n",
        "deepblock": "- " * 400_000 + "\n",
        "sexagesimal": "command: /bin/false\nnice: 1" + ":1" * 300_000 + "\n",
        "hex": "command: /bin/false\ndescription: 0x" + "f" * 900_000 + "\n",
    }
    for name, text in cases.items():
        env.write(name, text)
    good_pid = start_good(env)
    for args in (["check"], ["status", "--json"], ["status"], ["list"], ["start", "deep"]):
        res, seconds, mib = sc_measured(env, *args)
        no_crash(res, {4, 6} | ({0} if args == ["list"] else set()))
        assert seconds < 10 and mib < 200, (args, seconds, mib)
    res, _, _ = sc_measured(env, "check")
    for name in cases:
        assert f"servicectl: {env.services / name}.yaml: " in res.stderr
    for name in ("deep", "deepopen", "deepmap", "deepblock"):
        # Whichever refuses it (servicectl's depth check, or libyaml's own limit in PyYAML
        # 6.0.3+), the line names the file and says it is not valid YAML, with the place.
        assert f"servicectl: {env.services / name}.yaml: not valid YAML (line " in res.stderr
    assert_cli_properties(env, list(cases), good_pid)


def test_python_tags_are_refused_and_never_run(env: Env) -> None:
    """yaml is read with the safe loader only: every python/* tag is an invalid definition
    (exit 6, naming the file and the tag) and nothing it names is executed or imported."""
    marker = env.root / "executed"
    cases = python_tags(marker)
    names = [f"py{i}" for i in range(len(cases))]
    for name, text in zip(names, cases):
        (env.services / f"{name}.yaml").write_bytes(text)
    res = env.sc("check", *names)
    no_crash(res, {6})
    for name in names:
        assert f"servicectl: {env.services / name}.yaml: " in res.stderr
    assert f"{env.services / 'py0'}.yaml: command: not valid YAML (line 1, column 10)" in res.stderr
    assert "the tag !!python/object/apply:os.system is not allowed" in res.stderr
    for args in (["status"], ["start", "py0"], ["list"]):
        no_crash(env.sc(*args), {0, 4, 6})
    assert not marker.exists()
    # The same file without the tag does run the command: the marker proves the test can see it.
    env.write("ok", {"command": ["touch", str(marker)], "start_grace": 0})
    no_crash(env.sc("start", "ok"), {0, 1})
    wait_for(marker.exists, 10, "the marker from the untagged definition")


def test_files_that_are_not_files(env: Env, tmp_path: Path) -> None:
    """A directory, FIFO, symlink loop, dangling symlink, /dev/zero, an unreadable file and odd
    names: each an invalid definition naming the file; a FIFO does not hang any command."""
    s = env.services
    (s / "dir.yaml").mkdir()
    os.mkfifo(s / "fifo.yaml")
    (s / "loop.yaml").symlink_to("loop.yaml")
    (s / "dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (s / "zero.yaml").symlink_to("/dev/zero")
    (s / "null.yaml").symlink_to("/dev/null")
    (s / "unreadable.yaml").write_text("command: /bin/false\n")
    os.chmod(s / "unreadable.yaml", 0)
    long = "a" * (MAX_NAME + 1)
    (s / f"{long}.yaml").write_text("command: /bin/false\n")
    (s / f"{'b' * 250}.yaml").write_text("command: /bin/false\n")
    (s / "rtl\u202eevil.yaml").write_text("command: /bin/false\n")
    os.close(os.open(os.fsencode(s) + b"/bad\xff\xfe.yaml", os.O_CREAT | os.O_WRONLY, 0o644))
    (s / "new\nline.yaml").write_text("command: /bin/false\n")
    good_pid = start_good(env)
    names = ["dir", "fifo", "loop", "dangling", "zero", "null", long, "b" * 250, "rtl\u202eevil"]
    names += [os.fsdecode(b"bad\xff\xfe"), "new\nline"]
    try:
        (s / "unreadable.yaml").read_bytes()  # root may still read it (CAP_DAC_OVERRIDE)
    except PermissionError:
        names.append("unreadable")
    for args in (["check"], ["status"], ["status", "--json"], ["list"]):
        res, seconds, _ = sc_measured(env, *args, timeout=20)
        no_crash(res, {0, 4, 6})
    assert_cli_properties(env, names, good_pid)
    res = env.sc("check")
    assert f"{s / 'fifo.yaml'}: not a regular file" in res.stderr
    assert f"{s / 'dir.yaml'}: cannot be read: Is a directory" in res.stderr
    assert f"{s / 'loop.yaml'}: cannot be read: Too many levels of symbolic links" in res.stderr
    assert f"{s / long}.yaml: the service name is {MAX_NAME + 1} characters long" in res.stderr
    # The longest name allowed works all the way: started, its files fit in the run dir.
    longest = "c" * MAX_NAME
    env.sleeper(longest)
    assert_ok(env.sc("check", longest))
    assert_ok(env.sc("start", longest))
    assert env.status_json(longest)[longest]["state"] == "running"
    assert_ok(env.sc("stop", longest))


@pytest.mark.parametrize("kind", ["file", "loop", "missing"])
def test_services_dir_that_is_no_directory(env: Env, tmp_path: Path, kind: str) -> None:
    """-d naming a file, a symlink loop or nothing: every command says so, no traceback."""
    where = tmp_path / "not-a-dir"
    if kind == "file":
        where.write_text("command: /bin/false\n")
    elif kind == "loop":
        where.symlink_to(where)
    reason = {
        "file": "is not a directory",
        "loop": "cannot be read: Too many levels of symbolic links",
        "missing": "does not exist",
    }[kind]
    res = env.sc("-d", str(where), "check")
    no_crash(res, {6})
    assert f"the services directory {where} {reason}" in res.stderr
    for args, codes in ((["status"], {4}), (["status", "--json"], {4}), (["list"], {6})):
        no_crash(env.sc("-d", str(where), *args), codes)
    res = env.sc("-d", str(where), "status", "web")
    no_crash(res, {4})
    res = env.sc("-d", str(where), "start", "web")
    no_crash(res, {5})


def test_non_utf8_file_name_with_a_strict_terminal(env: Env) -> None:
    """A file name that is not UTF-8 is shown escaped even when stdout is strict UTF-8 (it used
    to crash status and list with UnicodeEncodeError)."""
    s = os.fsencode(env.services)
    os.close(os.open(s + b"/x\xff.yaml", os.O_CREAT | os.O_WRONLY, 0o644))
    strict = {"PYTHONIOENCODING": "utf-8:strict", "LC_ALL": "C.UTF-8"}
    for args in (["status"], ["list"], ["check"], ["status", "--json"]):
        res = env.sc(*args, extra_env=strict)
        no_crash(res, {0, 4, 6})
    assert "x\\udcff" in env.sc("status", extra_env=strict).stdout


# ---------------------------------------------------------------------------------------------
# Regressions: one focused case per bug the fuzzing found


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        # A scalar tag the safe constructor cannot build raised AttributeError/KeyError/IndexError.
        (
            "command: x\ndescription: !!timestamp x\n",
            "description",
            "found 'x', expected a date or time",
        ),
        ("command: x\nenabled: !!bool x\n", "enabled", "found 'x', expected true or false"),
        ("command: x\nnice: !!int ''\n", "nice", "found '', expected a whole number"),
        ("command: x\nnice: !!float ''\n", "nice", "found '', expected a number"),
        # Integers that Python cannot print (> 4300 digits) or that take seconds to compute.
        (
            "command: x\ndescription: 0x" + "f" * 5000 + "\n",
            "description",
            "a number of 5002 characters",
        ),
        ("command: x\nnice: 1" + ":1" * 300_000 + "\n", "nice", "expected at most 300"),
        ("command: x\nnice: " + "9" * 4400 + "\n", "nice", "a number of 4400 characters"),
        # math.isnan() of an int too large for a float.
        ("command: x\nstop_timeout: 0x" + "f" * 298 + "\n", "stop_timeout", "at most 604800"),
        # int() of a digit that is not 0-9, or of thousands of digits.
        ('command: x\nstop_signal: "²"\n', "stop_signal", "found '²', expected a signal"),
        ('command: x\nreload_signal: "' + "9" * 5000 + '"\n', "reload_signal", "a signal name"),
        ('command: x\nready: {tcp: "h:²"}\n', "ready.tcp", '"HOST:PORT"'),
        # Deep nesting crashed the C loader (SIGSEGV). Refused, by servicectl's own depth check
        # or (newer libyaml) by the parser first: only the outcome is servicectl's to promise.
        ("command: " + "[" * 100_000 + "\n", None, "not valid YAML (line 1, column "),
        ("- " * 100_000 + "\n", None, "not valid YAML (line 1, column "),
        # Deeper than servicectl allows, well within any libyaml limit: servicectl's own words.
        ("command: " + "[" * 150 + "]" * 150 + "\n", None, "nested more than 100 levels deep"),
    ],
    ids=lambda v: repr(v)[:40] if isinstance(v, str) else str(v),
)
def test_regressions(env: Env, text: str, key: str | None, words: str) -> None:
    env.write("web", text)
    res = env.sc("check", "web")
    no_crash(res, {6})
    prefix = f"servicectl: {env.services / 'web.yaml'}: " + (f"{key}: " if key else "")
    assert prefix in res.stderr and words in res.stderr, res.stderr


def test_regression_merge_keys(env: Env) -> None:
    """Keys written in a mapping override merged ones (was: "duplicate key"), the first mapping
    listed in ``<<: [...]`` wins, and a 40-level merge bomb costs nothing (was: exponential)."""
    env.write(
        "web",
        "defaults: &d {stop_timeout: 5, nice: 1}\n"
        "other: &o {stop_timeout: 9, start_grace: 0.1}\n"
        "<<: [*d, *o]\n"
        "nice: 2\ncommand: x\n",
    )
    cat = load_catalog(dirs_for(env), use_cache=False)
    errors = [e.message for e in cat.invalid["web"].errors]
    assert all(": unknown key" in m for m in errors), errors  # defaults, other
    text = "<<: {stop_timeout: 5, nice: 1}\nnice: 2\ncommand: x\n"
    env.write("web", text)
    svc = load_catalog(dirs_for(env), use_cache=False).services["web"]
    assert (svc.stop_timeout, svc.nice) == (5.0, 2)
    env.write("web", "<<: [{stop_timeout: 5}, {stop_timeout: 9, nice: 3}]\ncommand: x\n")
    svc = load_catalog(dirs_for(env), use_cache=False).services["web"]
    assert (svc.stop_timeout, svc.nice) == (5.0, 3)
    env.write("web", "<<: {a: 1}\n<<: {b: 2}\ncommand: x\n")  # two << keys: a duplicate key
    err = load_catalog(dirs_for(env), use_cache=False).invalid["web"].first_error
    assert "duplicate key '<<'" in err.message
    merge = "&m0 {nice: 1}"
    for i in range(1, 40):
        merge = f"&m{i} {{<<: [{merge}, *m{i - 1}]}}"
    env.write("web", f"<<: {merge}\ncommand: x\n")
    t0 = time.monotonic()
    assert load_catalog(dirs_for(env), use_cache=False).services["web"].nice == 1
    assert time.monotonic() - t0 < 1


class Counted(dict):  # type: ignore[type-arg]
    """A mapping that counts how often its values are looked into."""

    looks = 0

    def values(self) -> Any:
        Counted.looks += 1
        return super().values()


def test_regression_alias_chains_are_looked_into_once(env: Env) -> None:
    """c1: &c1 {x: *c0}, c2: &c2 {x: *c1}... (3000 keys, 75 kB): the {instance} check looked
    into every link again for each key, 4.5 million steps and 3.5 s for every command that read
    the file (found by test_load_catalog_never_raises, whose time it made vary from 3 to 200 s).
    Each mapping is now looked into once for the whole definition, the word found or not."""
    from servicectl.definitions.initd_keys import _mentions

    for word in ("plain", "{instance}"):
        chain = [Counted(x=word)]
        for _ in range(2999):
            chain.append(Counted(x=chain[-1]))
        Counted.looks = 0
        known: dict[int, bool] = {}
        found = [_mentions(c, ("{instance}", "{prefix}"), known) for c in reversed(chain)]
        assert found == [word == "{instance}"] * 3000 and Counted.looks <= 3000, Counted.looks
    # A mapping that holds itself ends the walk, with or without the word.
    loop: list[Any] = ["{prefix}"]
    loop.append([loop])
    assert _mentions(loop[1], ("{prefix}",), {}) and _mentions(loop, ("{prefix}",), {})
    # Through the loader: each key of the chain is named once, quickly.
    links = [f"c{i}: &c{i} {{x: *c{i - 1}}}" for i in range(1, 3000)]
    lines = ["c0: &c0 {x: '{instance}'}", *links]
    env.write("web", "\n".join(lines) + "\ncommand: /bin/false\n")
    t0 = time.monotonic()
    errors = load_catalog(dirs_for(env), use_cache=False).invalid["web"].errors
    assert sum("{instance}" in e.message for e in errors) == 3000
    assert time.monotonic() - t0 < 10


def test_regression_fifo_and_long_name(env: Env) -> None:
    """A FIFO as NAME.yaml hung every command; a 250-character name passed check, then start
    died with a traceback (ENAMETOOLONG for its state file)."""
    os.mkfifo(env.services / "fifo.yaml")
    name = "n" * 250
    env.write(name, "command: /bin/false\n")
    res, seconds, _ = sc_measured(env, "status", "fifo", timeout=10)
    no_crash(res, {4})
    res = env.sc("start", name)
    no_crash(res, {6})
    assert "characters long, at most 80" in res.stderr
