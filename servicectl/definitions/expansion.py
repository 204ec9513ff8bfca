"""Environment expansion in a service's commands, as systemd does in ``ExecStart=``.

In ``command``, ``reload_command``, ``check_command``, action and readiness commands:
``${VAR}`` is replaced by the variable's value inside its word; ``$VAR`` standing alone as a
whole word becomes zero or more words (its value split on white space: the
``/etc/default/nginx`` ``DAEMON_OPTS`` idiom); ``$$`` is a literal ``$``. A ``$VAR`` inside a
longer word, and a ``$`` before anything else, are kept as written (``sh -c 'echo $HOME'``
keeps working). Values come from the service's final environment at the time of use; an
unset variable expands to nothing (``check`` warns about it).
"""

from __future__ import annotations

import os

from servicectl.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Iterable, Mapping
    from typing import Any

    from servicectl.definitions.schema import Service

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PATTERNS: list[re.Pattern[str]] = []  # compiled when a command has a "$" (re: 3 ms)


def _patterns() -> list[re.Pattern[str]]:
    """[a token (``$$``, ``${VAR}``, ``$VAR``), a word that is ``$VAR`` alone]."""
    if not _PATTERNS:
        import re

        _PATTERNS.append(re.compile(rf"\$(?:\$|\{{({_NAME})\}}|{_NAME})"))
        _PATTERNS.append(re.compile(rf"\$({_NAME})\Z"))
    return _PATTERNS


def expand_words(argv: Iterable[str], env: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """``argv`` expanded from ``env``, and the names of the unset variables it used."""
    out: list[str] = []
    unset: list[str] = []

    def value(name: str) -> str:
        if name not in env:
            unset.append(name)
        return env.get(name, "")

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return value(m.group(1)) if m.group(1) else m.group(0)

    for word in argv:
        if "$" not in word:
            out.append(word)
            continue
        token, alone = _patterns()
        whole = alone.match(word)
        if whole:
            out += value(whole.group(1)).split()
        else:
            out.append(token.sub(sub, word))
    return out, list(dict.fromkeys(unset))


def expand_command(
    svc: Service, key: str, argv: tuple[str, ...], env: Mapping[str, str]
) -> tuple[str, ...]:
    """One command of ``svc`` (named ``key`` in its file) expanded: a program that became a
    relative path is taken relative to the services directory, like a written one; a command
    that expands to nothing is a configuration error (exit 6)."""
    words, unset = expand_words(argv, env)
    if not words or not words[0]:
        why = f" ({', '.join(unset)} not set)" if unset else ""
        raise ConfigError(str(svc.file), key, f"is empty once its variables are expanded{why}")
    if "/" in words[0] and not os.path.isabs(words[0]) and words[0] != argv[0]:
        words[0] = os.path.join(os.path.dirname(str(svc.file)), words[0])
    return tuple(words)


def expanded(svc: Service, env: Mapping[str, str]) -> Service:
    """``svc`` with its command, reload_command, check_command and readiness command
    expanded from ``env`` (actions are expanded when they run)."""
    if not any("$" in w for w in _commands(svc)):
        return svc
    changes: dict[str, Any] = {"command": expand_command(svc, "command", svc.command, env)}
    for key in ("reload_command", "check_command"):
        argv = getattr(svc, key)
        if argv:
            changes[key] = expand_command(svc, key, argv, env)
    if svc.ready is not None and svc.ready.kind == "command":
        target = svc.ready.target
        assert isinstance(target, tuple)
        changes["ready"] = svc.ready._replace(
            target=expand_command(svc, "ready.command", target, env)
        )
    return svc._replace(**changes)


def unset_variables(svc: Service, env: Mapping[str, str]) -> list[tuple[str, str]]:
    """(key, variable) for every unset variable a command of ``svc`` uses."""
    out = []
    for key, argv in _named_commands(svc):
        for name in expand_words(argv, env)[1]:
            out.append((key, name))
    return out


def _named_commands(svc: Service) -> list[tuple[str, tuple[str, ...]]]:
    found = [("command", svc.command)]
    found += [(k, getattr(svc, k)) for k in ("reload_command", "check_command") if getattr(svc, k)]
    if svc.ready is not None and svc.ready.kind == "command":
        assert isinstance(svc.ready.target, tuple)
        found.append(("ready.command", svc.ready.target))
    found += [(f"actions.{verb}.command", a.command) for verb, a in svc.actions if a.command]
    return found


def _commands(svc: Service) -> Iterable[str]:
    for _, argv in _named_commands(svc):
        yield from argv
