"""A Draft written as a commented definition: only the keys servicectl's schema has (read at
run time), each under a comment saying where it came from, and at the top every line that
was not converted and why. The result is validated by servicectl's own loader."""

from __future__ import annotations

import os
import re
import shlex

from servicectl.commands.importer.draft import Draft, schedule_as_signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

ORDER = (
    "description",
    "command",
    "type",
    "stop_command",
    "pid_file",
    "ready",
    "user",
    "group",
    "working_directory",
    "umask",
    "env_file",
    "environment",
    "stdout",
    "stderr",
    "nice",
    "limits",
    "directories",
    "check_command",
    "stop_schedule",
    "stop_signal",
    "stop_timeout",
    "kill_mode",
    "reload_signal",
    "reload_command",
    "reload",
    "start_timeout",
    "actions",
    "restart",
    "restart_delay",
    "start_limit",
    "depends",
    "enabled",
    "instances",
)
FLOW = {"limits", "start_limit", "depends", "ready"}
COMMAND_KEYS = {"command", "check_command", "reload_command", "stop_command"}
_SAFE_WORD = re.compile(r"^[A-Za-z0-9_@%+=:,./${}-]+$")


def known_keys() -> set[str]:
    """The keys servicectl's definition schema has."""
    from servicectl.definitions.schema import KNOWN_KEYS

    return set(KNOWN_KEYS)


def join(argv: list[str]) -> str:
    """A command line servicectl splits back into ``argv`` (quotes only where needed)."""
    return " ".join(w if _SAFE_WORD.match(w) else shlex.quote(w) for w in argv)


def fit(draft: Draft, allowed: set[str]) -> dict[str, Any]:
    """The values servicectl can take, in a natural order; what it cannot is listed."""
    values = {k: v for k, v in draft.values.items() if not k.startswith("_")}
    if "stop_schedule" in values and "stop_schedule" in allowed:
        _one_stop_form(draft, values)
    if "stop_schedule" in values and "stop_schedule" not in allowed:
        schedule = values.pop("stop_schedule")
        origin = draft.origins.get("stop_schedule", "")
        simple = schedule_as_signal(schedule)
        if simple:
            values["stop_signal"], values["stop_timeout"] = simple[0], _num(simple[1])
            draft.origins["stop_signal"] = draft.origins["stop_timeout"] = (
                f"{origin} (= {schedule})"
            )
        else:
            draft.skip(
                None,
                f"stop_schedule: {schedule} (from {origin})",
                "needs key stop_schedule, which this servicectl does not have yet",
            )
    out: dict[str, Any] = {}
    for key in ORDER + tuple(k for k in values if k not in ORDER):
        if key not in values:
            continue
        if key not in allowed:
            shown = _flat(values[key])
            draft.skip(
                None,
                f"{key}: {shown} (from {draft.origins.get(key, 'the file')})",
                f"needs key {key}, which this servicectl does not have yet",
            )
            continue
        out[key] = values[key]
    if out.get("stop_signal") == "TERM" and "stop_timeout" not in out:
        del out["stop_signal"]  # the default: say nothing
    return out


def _one_stop_form(draft: Draft, values: dict[str, Any]) -> None:
    """servicectl takes stop_schedule or stop_signal + stop_timeout, not both: a schedule that
    means S/T/KILL/5 is written as stop_signal S + stop_timeout T, any other replaces them
    (what they said went into the schedule)."""
    schedule = str(values["stop_schedule"])
    parts = schedule.split("/")
    if len(parts) == 4 and parts[2:] == ["KILL", "5"] and parts[1].isdigit():
        del values["stop_schedule"]
        origin = draft.origins.get("stop_schedule", "")
        values["stop_signal"], values["stop_timeout"] = parts[0], int(parts[1])
        draft.origins["stop_signal"] = draft.origins["stop_timeout"] = f"{origin} (= {schedule})"
        return
    for key in ("stop_signal", "stop_timeout"):
        if key in values:
            draft.notes.append(
                f"{key}: {values.pop(key)} ({draft.origins.get(key, 'the file')}) is part of "
                f"stop_schedule: {schedule}"
            )


def _num(x: float) -> float | int:
    return int(x) if x == int(x) else x


def _flat(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return join(value)
    return " ".join(_dump("x", value).split(":", 1)[1].split())


def _prepare(key: str, value: Any) -> Any:
    if key in COMMAND_KEYS and isinstance(value, list):
        return join(value)
    if key == "actions" and isinstance(value, dict):
        return {
            verb: {k: join(v) if isinstance(v, list) else v for k, v in spec.items()}
            for verb, spec in value.items()
        }
    return value


def _dump(key: str, value: Any) -> str:
    import yaml

    value = _prepare(key, value)
    if key in FLOW and isinstance(value, (dict, list)):
        flow = yaml.safe_dump(value, default_flow_style=True, allow_unicode=False, width=100000)
        return f"{key}: {flow.strip()}\n"
    return yaml.safe_dump(
        {key: value}, default_flow_style=False, sort_keys=False, allow_unicode=False, width=100000
    )


def comment(text: str) -> str:
    """Text fit for a YAML comment: one line, ASCII, controls escaped."""
    text = text.encode("ascii", "backslashreplace").decode("ascii")
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m.group(0)):02x}", text)


def render(draft: Draft, data: dict[str, Any]) -> str:
    """The definition's text: header, the not-converted list, then each key under its origin."""
    head = [
        f"# {draft.name}.yaml: imported by `servicectl import` from {draft.source} ({draft.kind}).",
        f"# Review it, then run `servicectl check {draft.name}`.",
    ]
    if draft.skipped:
        head += ["#", "# Not converted (finish these by hand):"]
        head += [f"#   {item}" for item in draft.skipped]
    if draft.notes:
        head += ["#", "# Notes:"]
        head += [f"#   {item}" for item in draft.notes]
    body: list[str] = []
    for key, value in data.items():
        origin = draft.origins.get(key)
        if origin:
            body.append(f"# from {draft.source} {origin}")
        body.append(_dump(key, value).rstrip("\n"))
    return (
        "\n".join(comment(h) if h.startswith("#") else h for h in head)
        + "\n"
        + "\n".join(comment(b) if b.startswith("# from") else b for b in body)
        + "\n"
    )


def validate(
    name: str, text: str, services: str, run: str, log: str
) -> list[tuple[str | None, str]]:
    """servicectl's own loader on the text: (key, problem) per error; [] if it is valid."""
    from servicectl.definitions import catalog as config
    from servicectl.errors import ConfigError
    from servicectl.paths import Dirs

    parse_yaml = getattr(config, "parse_yaml", None)
    build = getattr(config, "collect_errors_and_build", None)
    if parse_yaml is None or build is None:
        return []
    file = os.path.join(services, f"{name}.yaml")
    try:
        data = parse_yaml(text, str(file))
        result = build(name, file, data, Dirs(services, run, log))
    except ConfigError as err:
        return [(err.key, err.problem)]
    except Exception as exc:  # noqa: BLE001 - a loader of another shape: say so, never crash
        return [(None, f"could not be validated here ({type(exc).__name__})")]
    if isinstance(result, list):
        return [(getattr(e, "key", None), getattr(e, "problem", str(e))) for e in result]
    return []


def finish(
    draft: Draft, services: str, run: str, log: str, allowed: Iterable[str] | None = None
) -> str | None:
    """The definition's text, checked; keys servicectl refuses are dropped and listed. None
    (and draft.fatal) if even the command is refused."""
    data = fit(draft, set(allowed) if allowed is not None else known_keys())
    for _ in range(len(data) + 1):
        text = render(draft, data)
        errors = validate(draft.name, text, services, run, log)
        if not errors:
            return text
        dropped = False
        for key, problem in errors:
            top = (key or "").split(".")[0]
            if top == "command" or not top:
                draft.fatal = f"the command found is not valid: {problem}"
                return None
            if top in data:
                draft.skip(
                    None,
                    f"{top}: {_flat(data.pop(top))}",
                    f"refused by servicectl check: {problem}",
                )
                dropped = True
        if not dropped:
            draft.fatal = f"the result is not a valid definition: {errors[0][1]}"
            return None
    draft.fatal = "the result could not be made valid"
    return None
