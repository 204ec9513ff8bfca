"""docs/commands.md's reference, generated from the command table (python -m
servicectl.commands.grammar_doc): global options, then every command with its arguments, options and
exit codes."""

from __future__ import annotations

import sys

from servicectl.commands.grammar import APP_EPILOG, COMMANDS, DEBUG, DIR_OPTS, VERSION, Command, Opt


def _opt_cell(opt: Opt) -> str:
    flags = ", ".join(f"`{f}`" for f in opt.flags)
    return flags if opt.kind == "flag" else f"{flags} `{opt.metavar or opt.kind.upper()}`"


def _default_cell(opt: Opt) -> str:
    if opt.kind == "flag":
        return "off"
    if opt.shown_default:
        return opt.shown_default
    if opt.default is None:
        return "see below"
    text = f"`{opt.default}`"
    return text + (f" (at least {opt.minimum})" if opt.minimum is not None else "")


def usage(cmd: Command) -> str:
    words = ["servicectl", "[GLOBAL OPTIONS]", cmd.name]
    for arg in cmd.args:
        word = f"{arg.metavar}..." if arg.variadic else arg.metavar
        words.append(word if arg.required else f"[{word}]")
    for opt in cmd.opts:
        flag = opt.flags[-1]
        words.append(f"[{flag}]" if opt.kind == "flag" else f"[{flag} {opt.metavar or 'X'}]")
    return " ".join(words)


def markdown() -> str:
    """The generated part of docs/commands.md: global options, then every command."""
    out = ["### Global options", "", "| option | meaning |", "|---|---|"]
    for opt in (*DIR_OPTS, DEBUG, VERSION):
        out.append(f"| {_opt_cell(opt)} | {opt.help} |")
    out += ["| `-h`, `--help` | Show the help of servicectl or of a command, and exit. |", ""]
    out += [APP_EPILOG, ""]
    for cmd in COMMANDS.values():
        out += [f"### {cmd.name}", "", "```", usage(cmd), "```", "", cmd.help, ""]
        if cmd.args:
            out += ["| argument | meaning |", "|---|---|"]
            for arg in cmd.args:
                count = "one or more" if arg.required else "any number"
                count = count if arg.variadic else "exactly one"
                out.append(f"| `{arg.metavar}` ({count}) | {arg.help} |")
            out.append("")
        if cmd.opts:
            out += ["| option | default | meaning |", "|---|---|---|"]
            for opt in cmd.opts:
                out.append(f"| {_opt_cell(opt)} | {_default_cell(opt)} | {opt.help} |")
            out.append("")
        out += ["| exit | meaning |", "|---|---|"]
        out += [f"| {code} | {text} |" for code, text in cmd.exits]
        out.append("")
    return "\n".join(out)


BEGIN = "<!-- BEGIN GENERATED: python -m servicectl.commands.grammar_doc -->"
END = "<!-- END GENERATED -->"


def main(argv: list[str]) -> int:
    if argv not in ([], ["--markdown"]):
        print("usage: python -m servicectl.commands.grammar_doc", file=sys.stderr)
        return 2
    print(markdown(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
