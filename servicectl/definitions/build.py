"""Building a Service from a parsed document: every declared key read by its parser (reader.py,
program_keys.py, lifecycle_keys.py, initd_keys.py), then the checks that involve several keys.
Imported only when a definition file must be parsed (the definition cache spares it otherwise).
"""

from __future__ import annotations

from servicectl.definitions import initd_keys, lifecycle_keys, program_keys, reader
from servicectl.definitions.reader import Reader, hint, show
from servicectl.definitions.schema import _BY_NAME, KEYS, KNOWN_KEYS, Service
from servicectl.errors import ConfigError
from servicectl.paths import Dirs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _parser(name: str) -> Any:
    """The parser a declaration names (``parse_<name>``), from the module of its kind."""
    for module in (reader, program_keys, lifecycle_keys, initd_keys):
        found = getattr(module, "parse_" + name, None)
        if found is not None:
            return found
    raise LookupError(f"no parser parse_{name}")


def parsed_defaults(name: str = "NAME", dirs: Dirs | None = None) -> dict[str, Any]:
    """What each key that is not required stands for when absent, as a Service field (for a
    service ``name`` in ``dirs``, root's directories by default)."""
    dirs = dirs or Dirs("/etc/servicectl/services.d", "/run/servicectl", "/var/log/servicectl")
    r = Reader({}, "(defaults)", name, dirs)
    for k in KEYS:
        if not k.required:
            r.values[k.name] = _parser(k.parse)(r, k, k.default)
    assert not r.errors, r.errors
    return r.values


# A oneshot runs a task to its end: there is no process to track, reload or respawn.
ONESHOT_REFUSES = {
    "ready": "start waits for the task to end; no readiness to wait for",
    "pid_file": "it leaves no process to track",
    "reload_signal": "there is no process to reload (restart runs it again)",
    "reload_command": "there is no process to reload (restart runs it again)",
}


def _oneshot_keys(r: Reader, data: dict[str, Any]) -> None:
    """``type: oneshot`` and the keys that go with it (docs/configuration.md, type)."""
    if r.values["type"] != "oneshot":
        if "stop_command" in data:
            r.error("stop_command", "only a type: oneshot service has one (others stop by signal)")
        return
    for key, why in ONESHOT_REFUSES.items():
        if key in data:
            r.error(key, f"not for a type: oneshot service: {why}")
    if r.values["restart"] != "no":
        r.error("restart", 'a type: oneshot service is not respawned: use restart: "no"')
    if data.get("reload") is True:
        r.error("reload", "a type: oneshot service cannot be reloaded (restart runs it again)")
    r.values["reload"] = False


def build(
    name: str,
    file: str,
    data: Any,
    dirs: Dirs,
    instance: str | None = None,
    template: bool = False,
    dropins: tuple[str, ...] = (),
) -> Service | list[ConfigError]:
    """Validate one parsed document (drop-ins already merged into it): the Service, or every
    error found in it. ``instance`` replaces {instance}; ``template``: the document is a
    template (NAME@.yaml), built for itself or for one of its instances."""
    label = str(file)
    if data is None:
        return [ConfigError(label, None, "the file is empty; it needs at least a command: key")]
    if not isinstance(data, dict):
        return [ConfigError(label, None, f"found {show(data)}, expected a mapping of keys")]
    r = Reader(data, label, name, dirs, instance, template)
    if instance is None:
        initd_keys.instance_outside_template(r)
    for key in data:
        if key not in _BY_NAME:
            r.error(str(key), f"unknown key{hint(str(key), KNOWN_KEYS)}")
    for k in KEYS:
        parse = _parser(k.parse)
        r.values[k.name] = parse(r, k, data.get(k.name, k.default))
    if r.values["type"] == "forking" and not r.given("pid_file"):
        r.error("pid_file", "missing: a forking service must say where its daemon writes its PID")
    if "reload_command" in data and "reload_signal" in data:
        r.error("reload_command", "give reload_signal or reload_command, not both")
    if r.given("stop_schedule") and ("stop_signal" in data or "stop_timeout" in data):
        r.error(
            "stop_schedule",
            "give stop_schedule or stop_signal/stop_timeout, not both "
            "(stop_signal: S with stop_timeout: T means S/T/KILL/5)",
        )
    _oneshot_keys(r, data)
    if r.errors:
        return r.errors
    return Service(
        name=name,
        file=file,
        **r.values,
        stderr_same=not r.given("stderr"),
        pid_file_given=r.given("pid_file"),
        dropins=dropins,
    )
