"""A command of an init.d script as a definition runs it: without the wrappers that only run it
(``env -i LANG=C``, ``exec``, ``nohup``), whose variables go to ``environment``, and with the
script's exported variables (``export HOME=/etc/mysql``) there too: servicectl gives every
command of the service the same environment."""

from __future__ import annotations

from servicectl.commands.importer.commands import unwrap
from servicectl.commands.importer.words import LOOP, SPLIT, WHOLE, to_servicectl

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.commands.importer.draft import Draft
    from servicectl.commands.importer.initd import Script

SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Set for the script, not for the daemon: servicectl's clean environment has its own.
NOT_PASSED = {"PATH", "PWD", "SHELL", "IFS", "PS1", "PS4", "TERM", "OLDPWD", "SHLVL"}


def command_words(draft: Draft, argv: list[str], line: int, text: str) -> list[str]:
    """``argv`` as a definition's command: wrappers removed (what ``env`` sets goes to
    ``environment``), markers written the servicectl way."""
    launch = unwrap(argv)
    add_environment(draft, launch.env, line, text)
    return [to_servicectl(a) for a in launch.argv]


def add_environment(draft: Draft, env: dict[str, str], line: int, text: str) -> None:
    merged = dict(draft.values.get("environment") or {})
    added = False
    for name, value in env.items():
        if name == "PATH" and value == SERVICE_PATH or name in NOT_PASSED and name != "PATH":
            continue
        if any(m in value for m in (SPLIT, WHOLE, LOOP)):
            draft.skip(line, text, f"{name}={value!r} depends on the defaults file: not set")
            continue
        if merged.get(name, value) != value:
            draft.skip(line, text, f"{name} is set to {merged[name]!r} elsewhere: kept")
            continue
        merged[name] = value
        added = True
    if added:
        draft.set("environment", merged, line, text)


def exported_environment(script: Script, draft: Draft, cleared: bool) -> None:
    """The variables the script exports (``export HOME=/etc/mysql/``, ``export LANG``): the
    daemon inherits them, unless it runs under ``env -i`` (``cleared``)."""
    if cleared:
        return
    env: dict[str, str] = {}
    first = 0
    for name, line in sorted(script.exported.items(), key=lambda item: item[1]):
        value = script.vars.values.get(name)
        if name in NOT_PASSED or value is None or value.text is None:
            continue
        if value.source == "defaults":
            continue  # env_file sets it
        env[name] = value.text
        first = first or line
    if env:
        add_environment(draft, env, first, f"export {' '.join(env)}")
