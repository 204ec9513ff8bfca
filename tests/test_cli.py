"""The command-line face: everyday command lines are parsed without typer (for speed), and
everything else (help, usage errors, other commands) still gets typer's full grammar."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import PY, Env, assert_ok

PROBE = """
import sys
from servicectl import cli
code = cli.run(sys.argv[1:])
print("TYPER" if "typer" in sys.modules else "NO-TYPER", code, file=sys.stderr)
"""


def run_probe(env: Env, *args: str) -> tuple[bool, int, str]:
    res = subprocess.run(
        [PY, "-c", PROBE, *env.base_args()[3:], *args],
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
    ],
)
def test_everyday_command_lines_skip_typer(env: Env, args: tuple[str, ...]) -> None:
    env.sleeper("web", "--hup")
    typer_used, code, out = run_probe(env, *args)
    assert not typer_used, out
    assert code in (0, 3, 7), out  # 3: status of a stopped service; 7: reload of one


@pytest.mark.parametrize(
    "args, code",
    [
        (("--help",), 0),
        (("status", "--help"), 0),
        (("start",), 2),  # a name is required
        (("stop", "web", "--jobs", "0"), 2),  # jobs >= 1
        (("status", "--bogus"), 2),
        (("frobnicate",), 2),
        (("check", "web"), 0),
        (("--version",), 0),
    ],
)
def test_everything_else_gets_typers_grammar(env: Env, args: tuple[str, ...], code: int) -> None:
    env.sleeper("web")
    typer_used, got, out = run_probe(env, *args)
    assert typer_used and got == code, out
    if code == 2:
        assert "Usage:" in out


def test_both_paths_print_the_same(env: Env) -> None:
    """The same status through the fast path and through typer (``--`` forces typer)."""
    env.sleeper("web")
    assert_ok(env.sc("start", "web"))
    fast = assert_ok(env.sc("status", "--json", "web"))
    slow = assert_ok(env.sc("status", "--json", "--", "web"))
    strip = [
        {k: v for k, v in r.items() if k not in ("uptime_seconds", "cpu_percent")}
        for r in json.loads(fast.stdout)
    ]
    assert strip == [
        {k: v for k, v in r.items() if k not in ("uptime_seconds", "cpu_percent")}
        for r in json.loads(slow.stdout)
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
