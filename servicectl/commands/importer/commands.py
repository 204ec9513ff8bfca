"""What single commands of an init.d script mean: start-stop-daemon, the LSB and Red Hat
helpers (start_daemon, daemon, killproc), kill, ulimit, mkdir/chown/chmod."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from servicectl.commands.importer.draft import ULIMIT_FLAGS, sig

UTILITIES = {
    "mkdir",
    "chown",
    "chmod",
    "install",
    "ulimit",
    "umask",
    "cd",
    "kill",
    "killproc",
    "killall",
    "pkill",
    "start-stop-daemon",
    "rm",
    "touch",
    "ln",
    "mv",
    "cp",
    "chgrp",
    "su",
    "runuser",
    "sudo",
    "nohup",
    "setsid",
    "exec",
    "env",
    "nice",
    "ionice",
    "chpst",
}
SSD_VALUE = {
    "-x": "exec",
    "--exec": "exec",
    "-a": "startas",
    "--startas": "startas",
    "-p": "pidfile",
    "--pidfile": "pidfile",
    "-c": "chuid",
    "--chuid": "chuid",
    "-u": "user",
    "--user": "user",
    "-g": "group",
    "--group": "group",
    "-n": "name",
    "--name": "name",
    "-d": "chdir",
    "--chdir": "chdir",
    "-N": "nicelevel",
    "--nicelevel": "nicelevel",
    "-k": "umask",
    "--umask": "umask",
    "-R": "retry",
    "--retry": "retry",
    "-s": "signal",
    "--signal": "signal",
    "-r": "chroot",
    "--chroot": "chroot",
    "-I": "iosched",
    "--iosched": "iosched",
    "-P": "procsched",
    "--procsched": "procsched",
    "-O": "output",
    "--output": "output",
    "--pid": "pid",
    "--ppid": "ppid",
    "--notify-timeout": "notify-timeout",
}
SSD_FLAG = {
    "-S": "start",
    "--start": "start",
    "-K": "stop",
    "--stop": "stop",
    "-T": "status",
    "--status": "status",
    "-b": "background",
    "--background": "background",
    "-m": "make-pidfile",
    "--make-pidfile": "make-pidfile",
    "-o": "oknodo",
    "--oknodo": "oknodo",
    "-q": "quiet",
    "--quiet": "quiet",
    "-t": "test",
    "--test": "test",
    "-v": "verbose",
    "--verbose": "verbose",
    "-C": "no-close",
    "--no-close": "no-close",
    "--remove-pidfile": "remove-pidfile",
    "--notify-await": "notify-await",
    "-H": "help",
}


@dataclass
class Launch:
    """How a start line runs the program."""

    tool: str  # start-stop-daemon, start_daemon, daemon, direct
    argv: list[str]
    opts: dict[str, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    unknown_opts: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # what ``env NAME=VALUE`` sets
    env_clear: bool = False  # ``env -i``: the program gets no other variable


WRAPPERS = ("exec", "nohup", "setsid", "env", "nice")
_ENV_WORD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)


def unwrap(argv: list[str]) -> Launch:
    """``argv`` without the wrappers that only run it (``exec``, ``nohup``, ``setsid``,
    ``env [-i] NAME=VALUE...``, ``nice [-n N]``): the program's words, with what ``env`` sets
    and ``nice -n`` asks kept aside."""
    out = Launch("direct", list(argv))
    words = out.argv
    while words and os.path.basename(words[0]) in WRAPPERS:
        tool = os.path.basename(words[0])
        words = words[1:]
        while words and (words[0].startswith("-") or tool == "env" and _ENV_WORD.match(words[0])):
            word = words.pop(0)
            if tool == "env" and word in ("-i", "--ignore-environment", "-"):
                out.env_clear = True
            elif tool == "nice" and word in ("-n", "--adjustment") and words:
                out.opts["nicelevel"] = words.pop(0)
            elif tool == "nice" and re.fullmatch(r"-n?[+-]?[0-9]+", word):
                out.opts["nicelevel"] = word.lstrip("-n") or "10"
            elif tool == "env" and _ENV_WORD.match(word):
                name, value = _ENV_WORD.match(word).groups()  # type: ignore[union-attr]
                out.env[name] = value
    out.argv = words
    return out


def direct(argv: list[str]) -> Launch | None:
    """A line that runs the program itself, through its wrappers and ``su``/``runuser``; None
    if the user or command of ``su`` cannot be told."""
    launch = unwrap(argv)
    if launch.argv and os.path.basename(launch.argv[0]) in ("su", "runuser"):
        user, cmd = _su(launch.argv)
        if user is None or cmd is None:
            return None
        launch.opts["chuid"] = user
        inner = unwrap(cmd)
        launch.argv = inner.argv
        launch.env.update(inner.env)
        launch.env_clear = launch.env_clear or inner.env_clear
    return launch


def _su(words: list[str]) -> tuple[str | None, list[str] | None]:
    """``su [-] [-s SHELL] USER -c "CMD"`` or ``runuser -u USER -- CMD``."""
    import shlex

    if os.path.basename(words[0]) == "runuser" and "-u" in words and "--" in words:
        return words[words.index("-u") + 1], words[words.index("--") + 1 :]
    user = cmd = None
    i = 1
    while i < len(words):
        w = words[i]
        if w in ("-c", "--command") and i + 1 < len(words):
            cmd = words[i + 1]
            i += 2
            continue
        if w in ("-s", "--shell") and i + 1 < len(words):
            i += 2
            continue
        if not w.startswith("-") and user is None:
            user = w
        i += 1
    if cmd is None:
        return user, None
    try:
        return user, shlex.split(cmd)
    except ValueError:
        return user, None


def ssd(argv: list[str]) -> Launch:
    """start-stop-daemon's options; the program's arguments are after ``--``."""
    opts: dict[str, str] = {}
    flags: set[str] = set()
    unknown: list[str] = []
    i = 1
    rest: list[str] = []
    while i < len(argv):
        word = argv[i]
        if word == "--":
            rest = argv[i + 1 :]
            break
        name, eq, val = word.partition("=")
        if name in SSD_VALUE:
            if eq:
                opts[SSD_VALUE[name]] = val
            elif i + 1 < len(argv):
                opts[SSD_VALUE[name]] = argv[i + 1]
                i += 1
        elif word in SSD_FLAG:
            flags.add(SSD_FLAG[word])
        else:
            unknown.append(word)
        i += 1
    program = opts.get("startas") or opts.get("exec")
    return Launch("start-stop-daemon", ([program] if program else []) + rest, opts, flags, unknown)


def start_daemon(argv: list[str]) -> Launch:
    """LSB ``start_daemon [-f] [-n nicelevel] [-p pidfile] program args``."""
    opts: dict[str, str] = {}
    flags: set[str] = set()
    i = 1
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] == "-f":
            flags.add("force")
        elif argv[i] in ("-n", "-p") and i + 1 < len(argv):
            opts["nicelevel" if argv[i] == "-n" else "pidfile"] = argv[i + 1]
            i += 1
        else:
            break
        i += 1
    return Launch("start_daemon", argv[i:], opts, flags)


def rh_daemon(argv: list[str]) -> Launch:
    """Red Hat ``daemon [--check name] [--user u] [--pidfile p] [--force] [+/-nice] prog``."""
    opts: dict[str, str] = {}
    flags: set[str] = set()
    i = 1
    while i < len(argv):
        word = argv[i]
        name, eq, val = word.partition("=")
        if name in ("--check", "--user", "--pidfile"):
            if not eq and i + 1 < len(argv):
                val = argv[i + 1]
                i += 1
            opts[{"--check": "name", "--user": "chuid", "--pidfile": "pidfile"}[name]] = val
        elif word == "--force":
            flags.add("force")
        elif word[:1] in "+-" and word[1:].isdigit():
            opts["nicelevel"] = word
        else:
            break
        i += 1
    return Launch("daemon", argv[i:], opts, flags)


def kill_signal(argv: list[str]) -> str | None:
    """The signal of ``kill -USR1 PID``, ``kill -s HUP PID``, ``killproc -p F prog -HUP``,
    ``killproc prog HUP``; TERM when none is given; None for ``kill -0`` and garbage."""
    tool = os.path.basename(argv[0])
    words = argv[1:]
    found: str | None = None
    i = 0
    while i < len(words):
        w = words[i]
        if w in ("-s", "-n") and i + 1 < len(words):
            found = words[i + 1]
            i += 2
            continue
        if tool == "killproc" and w in ("-p", "-d") and i + 1 < len(words):
            i += 2
            continue
        if w.startswith("-") and len(w) > 1 and w != "--":
            found = w[1:]
        elif tool == "killproc" and i >= 1 and sig(w) and not w.isdigit() and "/" not in w:
            found = w  # LSB: killproc [-p pidfile] pathname [signal]
        i += 1
    if found is None:
        return "TERM"
    if found in ("0", "SIG0"):
        return None
    return sig(found)


def ulimit(argv: list[str]) -> tuple[dict[str, object], str]:
    """``ulimit -n 4096`` (bash units) as limits; ``({}, why)`` when it cannot be."""
    out: dict[str, object] = {}
    flags: list[str] = []
    hard_soft = ""
    for word in argv[1:]:
        if word.startswith("-") and len(word) > 1:
            for ch in word[1:]:
                if ch in "HS":
                    hard_soft += ch
                elif ch in ULIMIT_FLAGS:
                    flags.append(ch)
                else:
                    return {}, f"ulimit -{ch} has no servicectl limit"
            continue
        if not flags:
            flags = ["f"]
        ch = flags.pop(0)
        name, unit = ULIMIT_FLAGS[ch]
        if word == "unlimited":
            out[name] = "unlimited"
        elif word.isdigit() and len(word) < 19:
            out[name] = int(word) * (unit or 1)
        else:
            return {}, f"{word!r} is not a number"
    if hard_soft in ("H", "S"):
        return {}, f"only the {'hard' if hard_soft == 'H' else 'soft'} limit is set"
    if not out:
        return {}, "no limit is set"
    return out, ""


@dataclass
class DirWork:
    """What mkdir/chown/chmod/install do to one path."""

    path: str
    made: bool = False
    owner: str | None = None
    group: str | None = None
    mode: str | None = None
    line: int = 0
    texts: list[str] = field(default_factory=list)


def dir_command(argv: list[str]) -> list[tuple[str, dict[str, str | bool]]] | None:
    """``mkdir -p D``, ``chown u:g D``, ``chmod 2775 D``, ``install -d -o u -g g -m M D``:
    per path, what is done to it; None if the command is none of those."""
    tool = os.path.basename(argv[0])
    args = argv[1:]
    if tool == "mkdir":
        return _mkdir(args)
    if tool == "chmod":
        return _chmod(args)
    if tool == "chown":
        return _chown(args)
    if tool == "install" and ("-d" in args or "--directory" in args):
        return _install_dirs(args)
    return None


def _mkdir(args: list[str]) -> list[tuple[str, dict[str, str | bool]]]:
    """``mkdir [-p] [-m MODE | --mode=MODE] D...``"""
    mode = None
    paths = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-m", "--mode") and i + 1 < len(args):
            mode = args[i + 1]
            i += 2
            continue
        if a.startswith("--mode="):
            mode = a.split("=", 1)[1]
        elif not a.startswith("-"):
            paths.append(a)
        i += 1
    return [(p, {"made": True, **({"mode": mode} if mode else {})}) for p in paths]


def _operands(args: list[str]) -> tuple[str, list[str]] | None:
    """chown's or chmod's first operand (owner or mode) and the paths; None if either lacks."""
    rest = [a for a in args if not a.startswith("-")]
    if len(rest) < 2:
        return None
    return rest[0], rest[1:]


def _chmod(args: list[str]) -> list[tuple[str, dict[str, str | bool]]] | None:
    """``chmod 2775 D...`` (an octal mode only: ``u+x`` is not carried over)."""
    operands = _operands(args)
    if operands is None or not operands[0].isdigit():
        return None
    mode, paths = operands
    return [(p, {"mode": mode}) for p in paths]


def _chown(args: list[str]) -> list[tuple[str, dict[str, str | bool]]] | None:
    """``chown USER[:GROUP] D...`` (or ``USER.GROUP``, ``:GROUP``)."""
    operands = _operands(args)
    if operands is None:
        return None
    what, paths = operands
    owner, _, group = what.replace(".", ":", 1).partition(":")
    info: dict[str, str | bool] = {}
    if owner:
        info["owner"] = owner
    if group:
        info["group"] = group
    return [(p, dict(info)) for p in paths]


_INSTALL_OPTS = {"-o": "owner", "-g": "group", "-m": "mode"}
_INSTALL_LONG = {"--owner": "owner", "--group": "group", "--mode": "mode"}


def _install_dirs(args: list[str]) -> list[tuple[str, dict[str, str | bool]]]:
    """``install -d [-o USER] [-g GROUP] [-m MODE] D...`` (also ``-oUSER``, ``-m750``,
    ``--owner=USER``)."""
    info: dict[str, str | bool] = {"made": True}
    paths = []
    i = 0
    while i < len(args):
        a = args[i]
        name, eq, value = a.partition("=")
        if a in _INSTALL_OPTS and i + 1 < len(args):
            info[_INSTALL_OPTS[a]] = args[i + 1]
            i += 2
            continue
        if a[:2] in _INSTALL_OPTS and len(a) > 2:
            info[_INSTALL_OPTS[a[:2]]] = a[2:]
        elif eq and name in _INSTALL_LONG:
            info[_INSTALL_LONG[name]] = value
        elif not a.startswith("-"):
            paths.append(a)
        i += 1
    return [(p, dict(info)) for p in paths]
