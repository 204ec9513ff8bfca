"""One command table, two parsers: the fast parser (cli.fast_parse, no typer) may decide a
command line only as typer decides it, and must leave every usage error to typer. Plus: the
help of every command comes from the table, and docs/commands.md cannot drift from it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from servicectl.cli import main, typer_app
from servicectl.commands import grammar, grammar_doc
from servicectl.commands.grammar import COMMANDS, Call

LONG = bool(os.environ.get("SERVICECTL_LONG"))

GLOBAL_TOKENS = [
    ["-d", "s.d"],
    ["--services-dir", "/srv/s"],
    ["--services-dir=/srv/s"],
    ["-ds.d"],
    ["-d=s.d"],
    ["--run-dir", "r"],
    ["--run-dir="],
    ["--log-dir", "l"],
    ["--log-dir=l"],
    ["-d"],
    ["-d", "--run-dir"],
    ["--version"],
    ["-h"],
    ["--help"],
    ["--"],
    ["-x"],
]
COMMAND_WORDS = [*COMMANDS, "frobnicate", "Start", "sta", "", "-", "--"]
TOKENS = [
    ["web"],
    ["db"],
    ["web.yaml"],
    [""],
    ["-"],
    ["--"],
    ["--json"],
    ["--json=1"],
    ["-j", "2"],
    ["-j", "0"],
    ["-j", "²"],
    ["-j", " 3"],
    ["-j", "-1"],
    ["-j2"],
    ["-j=2"],
    ["-j"],
    ["--jobs", "4"],
    ["--jobs=5"],
    ["--jobs="],
    ["--jobs=0"],
    ["-n", "5"],
    ["-n", "0"],
    ["-n5"],
    ["-fn", "3"],
    ["-nf"],
    ["-f"],
    ["-ff"],
    ["--lines=7"],
    ["--follow"],
    ["--all"],
    ["--boot"],
    ["--dir", "/tmp/out"],
    ["--dir=out"],
    ["--dir"],
    ["--stdout"],
    ["--force"],
    ["-h"],
    ["--help"],
    ["--bogus"],
    ["-x"],
    ["--version"],
    ["-d", "after.d"],
    ["--run-dir", "r2"],
    ["--log-dir=l2"],
    ["-dz"],
]

# Odd words too: "-=", "-j=", "--=", "-d-", "²", " 1"...
ODD_WORD = st.text(alphabet="-=jdnfhx0123² /", max_size=5).map(lambda w: [w])
argv_strategy = st.builds(
    lambda before, command, rest: [w for t in before for w in t] + [command] + rest,
    st.lists(st.one_of(st.sampled_from(GLOBAL_TOKENS), ODD_WORD), max_size=3),
    st.sampled_from(COMMAND_WORDS),
    st.lists(st.one_of(st.sampled_from(TOKENS), ODD_WORD), max_size=6).map(
        lambda ts: [w for t in ts for w in t]
    ),
)


def typer_parse(argv: list[str]) -> Call | int:
    """What typer decides (its help and usage text go to the captured output)."""
    return typer_app.parse(argv)


@settings(
    max_examples=2000 if LONG else 300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(argv=argv_strategy)
@example(argv=["start", "web", "-j", "²"])
@example(argv=["status", "-d", "s.d", "web"])
@example(argv=["-d", "a", "status", "-d", "b"])
@example(argv=["logs", "web", "-fn", "3"])
@example(argv=["start", "--", "-h"])
@example(argv=["initd", "--all", "--dir", "/tmp/out"])
def test_fast_parser_decides_only_as_typer_does(argv: list[str]) -> None:
    fast = main.fast_parse(argv)
    slow = typer_parse(argv)
    if fast is not None:
        assert slow == fast, (argv, fast, slow)
    if isinstance(slow, int) and slow != 0:
        assert fast is None  # a usage error is typer's to say (exit 2)


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "web"],
        ["status", "--json"],
        ["status", "-d", "s.d", "web", "--json"],
        ["--run-dir=r", "start", "web", "db", "-j", "2"],
        ["stop", "--jobs=3", "web"],
        ["restart", "web"],
        ["try-restart", "web"],
        ["reload", "web"],
        ["force-reload", "web"],
        ["startall", "-j8"],
        ["stopall"],
        ["list", "--json"],
        ["check"],
        ["logs", "web", "-n", "5", "-f"],
        ["initd", "--all", "--dir", "out", "--force"],
        ["unit", "--boot", "--stdout"],
        ["start", "--", "-web"],
    ],
)
def test_everyday_lines_are_decided_fast(argv: list[str]) -> None:
    fast = main.fast_parse(argv)
    assert fast is not None
    assert typer_parse(argv) == fast


def test_global_options_after_the_command_win() -> None:
    call = main.fast_parse(["-d", "a", "--log-dir", "l", "status", "web", "-d", "b"])
    assert call is not None and call.dirs == ("b", None, "l")
    assert call.arguments() == {"names": ("web",), "as_json": False, "lines": 10}


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_of_every_command_comes_from_the_table(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cmd = COMMANDS[name]
    assert typer_parse([name, "--help"]) == 0
    text = _words(capsys.readouterr().out)
    assert _words(cmd.help) in text
    for arg in cmd.args:
        assert arg.metavar in text and _words(arg.help) in text
    for opt in cmd.opts:
        assert ", ".join(opt.flags) in text and _words(opt.help) in text
        if opt.kind != "flag" and opt.default is not None:
            assert f"default: {opt.default}" in text
    for code, meaning in cmd.exits:
        assert _words(f"{code} {meaning}") in text
    assert typer_parse([name, "-h"]) == 0
    assert _words(capsys.readouterr().out) == text


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert typer_parse(["-h"]) == 0
    text = capsys.readouterr().out
    for name in COMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\s", text, re.M), name
    for opt in grammar.DIR_OPTS:
        assert opt.flags[-1] in text


def test_pre_rendered_help_is_typers() -> None:
    """cli/helptext.py is what typer prints for --help at 80 columns and more; regenerate
    with python -m servicectl.cli.typer_app --write-help servicectl/cli/helptext.py."""
    from servicectl.cli import helptext

    assert typer_app.rendered_help() == helptext.HELP, (
        "servicectl/cli/helptext.py is out of date: python -m servicectl.cli.typer_app "
        "--write-help servicectl/cli/helptext.py (then ruff format it)"
    )
    assert set(helptext.HELP) == {"", *COMMANDS}


def test_commands_md_matches_the_table() -> None:
    """docs/commands.md carries the table's Markdown between its markers; regenerate with
    python -m servicectl.commands.grammar_doc."""
    doc = (ROOT / "docs" / "commands.md").read_text()
    begin = doc.index(grammar_doc.BEGIN) + len(grammar_doc.BEGIN)
    end = doc.index(grammar_doc.END)
    assert doc[begin:end].strip() == grammar_doc.markdown().strip(), (
        "docs/commands.md is out of date: replace its generated part with the output of "
        "python -m servicectl.commands.grammar_doc"
    )
    res = subprocess.run(
        [sys.executable, "-m", "servicectl.commands.grammar_doc"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0 and res.stdout.strip() == grammar_doc.markdown().strip()


def test_the_table_imports_nothing_heavy() -> None:
    code = (
        "import sys, servicectl.cli.main, servicectl.commands.grammar; "
        "print(sorted(m for m in ('typer', 'click', 'rich', 'yaml', 'json', 'psutil', "
        "'servicectl.commands.dispatch', 'servicectl.service.lifecycle', 'inspect') "
        "if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"
