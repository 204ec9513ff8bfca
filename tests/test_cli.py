"""The command-line face: everyday command lines are parsed without typer (for speed), and
everything else (help, usage errors) still gets typer's full grammar; plus the papercuts of
the face: usage errors without tracebacks, -h, global options after the command, did-you-mean,
NAME.yaml, the generators' refusals, aligned tables and plurals."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import SERVICECTL, USER_PYTHON, Env, assert_ok, wait_for

PROBE = """
import sys
from servicectl.cli import main
from servicectl.output import face
face.install_streams()
if sys.argv[1] == "--typer":
    from servicectl.cli import typer_app
    from servicectl.commands import dispatch
    call = typer_app.parse(sys.argv[2:])
    code = call if isinstance(call, int) else dispatch.execute(call)
else:
    code = main.run(sys.argv[1:])
face.flush()
print("TYPER" if "typer" in sys.modules else "NO-TYPER", code, file=sys.stderr)
"""


def run_probe(env: Env, *args: str) -> tuple[bool, int, str]:
    res = subprocess.run(
        [USER_PYTHON, "-c", PROBE, *args[:1], *env.dir_args(), *args[1:]]
        if args[:1] == ("--typer",)
        else [USER_PYTHON, "-c", PROBE, *env.dir_args(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=env.root,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    *_, last = res.stderr.strip().splitlines()
    used, code = last.split()
    return used == "TYPER", int(code), res.stdout + res.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("status", "web"),
        ("status", "--json"),
        ("status", "web", "--json"),
        ("start", "web", "-j", "2"),
        ("stop", "--jobs=3", "web"),
        ("restart", "web"),
        ("try-restart", "web"),
        ("reload", "web"),
        ("force-reload", "web"),
        ("list", "--json"),
        ("check", "web"),
        ("logs", "web", "-n", "3"),
        ("status", "web", "-d", "services.d"),
    ],
)
def test_everyday_command_lines_skip_typer(env: Env, args: tuple[str, ...]) -> None:
    env.sleeper("web", "--hup")
    typer_used, code, out = run_probe(env, *args)
    assert not typer_used, out
    assert code in (0, 1, 3, 7), out  # 3: status of a stopped service; 7: reload; 1: no log


@pytest.mark.parametrize(
    "args, code",
    [
        (("--help", "-d", "services.d"), 0),  # help with other words after it: typer's
        (("status", "web", "-h"), 0),
        (("start",), 2),  # a name is required
        (("stop", "web", "--jobs", "0"), 2),  # jobs >= 1
        (("start", "web", "-j", "²"), 2),
        (("status", "--bogus"), 2),
        (("frobnicate",), 2),
        (("--version",), 0),
    ],
)
def test_everything_else_gets_typers_grammar(env: Env, args: tuple[str, ...], code: int) -> None:
    env.sleeper("web")
    typer_used, got, out = run_probe(env, *args)
    assert typer_used and got == code, out
    assert "Traceback" not in out
    if code == 2:
        assert "Usage:" in out


@pytest.mark.parametrize("args", [("--help",), ("-h",), ("status", "--help"), ("logs", "-h")])
def test_help_is_typers_words_without_typer(env: Env, args: tuple[str, ...]) -> None:
    """``--help`` of servicectl or of a command is printed from cli/helptext.py (typer's own
    output, test_grammar checks it) without importing typer; a terminal narrower than 80
    columns gets typer's, wrapped to it."""
    typer_used, code, out = run_probe(env, *args)
    assert not typer_used and code == 0, out
    wide = subprocess.run(
        [SERVICECTL, *args], capture_output=True, text=True, timeout=60, env={"COLUMNS": "120"}
    )
    typers = subprocess.run(
        [USER_PYTHON, "-c", "import sys; from servicectl.cli import typer_app; "
         "typer_app.parse(sys.argv[1:])", *args],
        capture_output=True, text=True, timeout=60, env={"COLUMNS": "80"},
    )  # fmt: skip
    assert (
        wide.returncode == 0 and wide.stdout == typers.stdout and "Usage: servicectl" in wide.stdout
    )
    narrow = subprocess.run(
        [SERVICECTL, *args], capture_output=True, text=True, timeout=60, env={"COLUMNS": "60"}
    )
    assert narrow.returncode == 0 and "Usage: servicectl" in narrow.stdout
    assert narrow.stdout != wide.stdout  # wrapped to 58 columns: typer's own


def test_both_paths_print_the_same(env: Env) -> None:
    """The same status through the fast path and through typer."""
    env.sleeper("web")
    assert_ok(env.sc("start", "web"))
    fast = assert_ok(env.sc("status", "--json", "web"))
    typer_used, code, slow = run_probe(env, "--typer", "status", "--json", "web")
    assert typer_used and code == 0, slow
    slow_json = slow[: slow.rindex("]") + 1]
    strip = [
        {k: v for k, v in r.items() if k not in ("uptime_seconds", "cpu_percent")}
        for r in json.loads(fast.stdout)
    ]
    assert strip == [
        {k: v for k, v in r.items() if k not in ("uptime_seconds", "cpu_percent")}
        for r in json.loads(slow_json)
    ]
    assert_ok(env.sc("stop", "web"))


def test_control_characters_are_never_printed_raw(env: Env) -> None:
    """A file name, a description or a log line cannot drive the terminal: control and bidi
    characters are printed escaped (JSON output escapes them anyway)."""
    env.sleeper("web", description="plain \x1b[2J\u202etext")
    (env.services / "evil\x1b[31m.yaml").write_text("command: [/bin/true]\n")
    for args in (["status"], ["list"], ["check"], ["status", "evil\x1b[31m"]):
        res = env.sc(*args)
        assert "Traceback" not in res.stderr
        out = res.stdout + res.stderr
        assert "\x1b" not in out and "\u202e" not in out, (args, out)
        assert "\\x1b" in out, (args, out)


# ---------------------------------------------------------------------------------------------
# Papercuts


def test_non_ascii_digits_are_a_usage_error(env: Env) -> None:
    env.sleeper("web")
    for args in (["start", "web", "-j", "²"], ["logs", "web", "-n", "²"], ["stopall", "-j²"]):
        res = env.sc(*args)
        assert res.returncode == 2, res.stderr
        assert "Usage:" in res.stderr and "Traceback" not in res.stderr
    assert not (env.run / "web.pid").exists()


def test_dash_h_is_help(env: Env) -> None:
    for where in ([], ["status"], ["initd"], ["logs"]):
        long = assert_ok(env.sc(*where, "--help"))
        short = assert_ok(env.sc(*where, "-h"))
        assert short.stdout == long.stdout and "Usage:" in short.stdout


def _bare(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    """servicectl without the directories in front (the test puts them after the command)."""
    return subprocess.run(
        [SERVICECTL, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=env.root,
        env=dict(os.environ, NO_COLOR="1"),
        stdin=subprocess.DEVNULL,
    )


def test_global_options_after_the_command(env: Env) -> None:
    env.sleeper("web")
    dirs = ["-d", str(env.services), "--run-dir", str(env.run), "--log-dir", str(env.log)]
    assert_ok(_bare(env, "start", "web", *dirs))
    pid = env.pid("web")
    rows = json.loads(assert_ok(_bare(env, "status", "--json", *dirs, "web")).stdout)
    assert rows[0]["pid"] == pid and rows[0]["state"] == "running"
    # Through typer too (--help is typer's; a usage error would be 2).
    assert_ok(_bare(env, "logs", "web", "-n", "1", *dirs))
    assert_ok(_bare(env, "stop", *dirs, "--", "web"))
    assert not (env.run / "web.pid").exists()


def test_did_you_mean_looks_at_every_definition(env: Env) -> None:
    env.sleeper("web")
    env.sleeper("database")
    res = env.sc("start", "webb")
    assert res.returncode == 5
    assert "did you mean web?" in res.stderr
    res = env.sc("status", "databse")
    assert res.returncode == 4 and "did you mean database?" in res.stdout


def test_name_given_as_its_file(env: Env) -> None:
    env.sleeper("web")
    res = assert_ok(env.sc("start", "web.yaml"))
    assert res.stdout.startswith("web: started")
    assert (env.run / "web.pid").exists()
    assert_ok(env.sc("status", "web.yaml"))
    res = env.sc("start", "web.yml")  # the file is web.yaml: not what was asked
    assert res.returncode == 5
    assert "neither web.yml nor web.yml.yaml" in res.stderr and "did you mean web?" in res.stderr
    assert_ok(env.sc("stop", "web.yaml"))
    assert not (env.run / "web.pid").exists()


@pytest.mark.parametrize("kind", ["initd", "unit"])
def test_generators_want_names_or_all(env: Env, kind: str) -> None:
    env.sleeper("web")
    res = env.sc(kind)
    assert res.returncode == 2
    assert "name services, or give --all" in res.stderr and "not both" not in res.stderr
    res = env.sc(kind, "web", "--all", "--stdout")
    assert res.returncode == 2 and "only one" in res.stderr


@pytest.mark.parametrize("kind", ["initd", "unit"])
@pytest.mark.parametrize("what", [["web"], ["--all"], ["--boot"]])
def test_generators_refuse_a_missing_directory(env: Env, kind: str, what: list[str]) -> None:
    env.sleeper("web")
    missing = env.root / "nonexistent" / "x"
    res = env.sc(kind, *what, "--dir", str(missing))
    assert res.returncode == 1, res.stderr
    assert f"{missing} does not exist" in res.stderr and "wrote" not in res.stdout
    assert not (env.root / "nonexistent").exists()


def _columns(line: str) -> list[int]:
    """Start offsets of the words of ``line``."""
    out, prev = [], " "
    for i, c in enumerate(line):
        if c != " " and prev == " ":
            out.append(i)
        prev = c
    return out


def test_tables_are_aligned_whatever_the_widths(env: Env) -> None:
    long_dep = "a-dependency-with-a-long-name"
    env.sleeper(long_dep, description="")
    env.sleeper("w", depends=[long_dep], description="short")
    env.sleeper("a-service-with-a-very-long-name", enabled=False, description="two words")
    env.write("broken", "command: [unclosed\n", tag=False)
    for args, fields in ((["list"], 5), (["status"], 7)):
        res = env.sc(*args)
        lines = res.stdout.splitlines()
        header = _columns(lines[0])
        for line in lines[1:]:
            if line.startswith("broken"):
                continue  # an error message as description: its words are free text
            assert _columns(line)[: fields - 1] == header[: fields - 1], (args, res.stdout)
    awk = subprocess.run(
        ["awk", "NR > 1 {print $1, $2, $3}"],
        input=env.sc("list").stdout,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "w simple yes" in awk.stdout
    assert "a-service-with-a-very-long-name simple no" in awk.stdout
    assert "broken invalid -" in awk.stdout


def test_one_service_is_singular(env: Env) -> None:
    env.sleeper("web")
    res = assert_ok(env.sc("startall"))
    assert "1 service: 1 started/ok" in res.stdout
    wait_for(lambda: (env.run / "web.pid").exists(), 10, "web's PID file")
    res = assert_ok(env.sc("stopall"))
    assert "1 service: 1 stopped/ok" in res.stdout


LOADED = """
import sys
from servicectl.cli import main
from servicectl.output import face
face.install_streams()
code = main.run(sys.argv[1:])
face.flush()
print(code, " ".join(sorted(sys.modules)), file=sys.stderr)
"""


def _loaded(env: Env, *args: str) -> tuple[int, set[str]]:
    """The exit code of a command line and the modules it loaded (run as `python -c`)."""
    res = subprocess.run(
        [USER_PYTHON, "-c", LOADED, *env.dir_args(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=env.root,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin", "COLUMNS": "100"},
    )
    code, _, names = res.stderr.strip().splitlines()[-1].partition(" ")
    return int(code), set(names.split())


def test_start_up_loads_only_what_the_command_needs(env: Env) -> None:
    """What the start-up of everyday commands leaves out (docs/benchmarks.md): typing and
    threading nowhere on these paths, nor subprocess (a root service's gate is forked by
    system/child.py); socket, hashlib's OpenSSL and typer only where used; --help without
    pathlib or re either (signal brings enum)."""
    env.sleeper("web")
    idle = env.sleeper("idle")
    never = {"typing", "threading", "socket", "_hashlib", "typer", "click", "rich", "psutil"}
    code, mods = _loaded(env, "--help")
    unwanted = never | {"pathlib", "re", "servicectl.paths"}
    assert code == 0 and not mods & unwanted, mods & unwanted
    code, mods = _loaded(env, "status", "idle")
    unwanted = never | {"subprocess", "servicectl.system.spawn"}  # (yaml: files this new)
    assert code == 3 and not mods & unwanted, mods & unwanted
    code, mods = _loaded(env, "start", "web")
    unwanted = never | {"subprocess"}  # a root service's gate is forked without Popen
    assert code == 0 and not mods & unwanted, mods & unwanted
    code, mods = _loaded(env, "status", "web")
    assert code == 0 and not mods & never, mods & never
    code, mods = _loaded(env, "stop", "web")
    assert code == 0 and not mods & never, mods & never
    # status NAME of a stopped service whose definition is cached (its file older than the
    # cache's window, RACY_NS): none of the modules whose import costs more than the start of
    # the interpreter allows (docs/benchmarks.md: 2x `python -c pass`), the command script's
    # own included (bin/servicectl: no generated wrapper importing re).
    wait_for(lambda: time.time() - os.stat(idle).st_ctime > 2.2, what="a definition 2 s old")
    _loaded(env, "status", "idle")  # writes the cache
    lean = {"re", "enum", "pathlib", "pickle", "contextlib", "functools", "importlib", "signal"}
    lean |= {"zlib", "json", "urllib.parse", "ipaddress", "fnmatch", "datetime", "yaml"}
    code, mods = _loaded(env, "status", "idle")
    assert code == 3 and not mods & (never | lean), mods & (never | lean)
    # a start and a stop of a cached definition: nothing of subprocess's chain either
    # (signal, enum, re, contextlib, threading...), no json package
    _loaded(env, "status", "web")  # its definition cached too (status NAME caches its own)
    code, mods = _loaded(env, "stop", "web")
    assert code == 0 and not mods & (never | lean | {"subprocess"}), mods & (never | lean)
    code, mods = _loaded(env, "start", "web")
    assert code == 0 and not mods & (never | lean | {"subprocess"}), mods & (never | lean)
    assert_ok(env.sc("stop", "web"))
    script = Path(SERVICECTL).read_text()
    assert "import re" not in script and "from servicectl.cli.main import main" in script
