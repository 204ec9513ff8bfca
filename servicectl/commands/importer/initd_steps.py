"""One step of an init.d script read as servicectl would run it: its words expanded (an
unknown word drops the step, or leniently becomes UNKNOWN), whether it launches the daemon
(start-stop-daemon, start_daemon, daemon, or the program itself) and the config test a step
names. Shared by the start mapping (initd_map.py) and the other verbs (initd_verbs.py).
"""

from __future__ import annotations

from servicectl.commands.importer import commands as C
from servicectl.commands.importer.commands import UTILITIES
from servicectl.commands.importer.initd import Script, Step, is_noise, program_of
from servicectl.commands.importer.initd_env import command_words
from servicectl.commands.importer.words import Unknown

TYPE_CHECKING = False
if TYPE_CHECKING:
    from servicectl.commands.importer.draft import Draft


def step_words(
    st: Step, script: Script, draft: Draft, lenient: bool = False, quiet: bool = False
) -> list[str] | None:
    """A step's words; an unknown word drops the step (or, ``lenient``, becomes UNKNOWN)."""
    out: list[str] = []
    for word in st.cmd.words:
        try:
            out += st.expand(word)
        except Unknown as exc:
            if not lenient:
                draft.skip(st.line, st.text(script.lines), exc.why)
                return None
            if not quiet:
                draft.skip(st.line, st.text(script.lines), f"left out {word}: {exc.why}")
            out.append(UNKNOWN)
    return out


UNKNOWN = "\ue004"  # a word whose value is not known (lenient expansion)


def drop_unknown(launch: C.Launch) -> C.Launch | None:
    """Options whose value is unknown are left out; an unknown program is no launch."""
    for key in [k for k, v in launch.opts.items() if UNKNOWN in v]:
        del launch.opts[key]
    if not launch.argv or UNKNOWN in launch.argv[0]:
        return None
    launch.argv = [a for a in launch.argv if UNKNOWN not in a]
    return launch


def launcher(script: Script, st: Step, argv: list[str]) -> C.Launch | None:
    tool = program_of(argv)
    if tool == "start-stop-daemon":
        launch = C.ssd(argv)
        if "start" in launch.flags and "test" not in launch.flags:
            return launch
        return None
    if tool == "start_daemon":
        return C.start_daemon(argv)
    if tool == "daemon" and script.family != "lsb":
        return C.rh_daemon(argv)
    return None


def direct_launch(script: Script, st: Step, argv: list[str]) -> C.Launch | None:
    """A start line that runs the program itself (``$DAEMON $ARGS``, ``nohup X &``,
    ``su -c "X" user``, ``env -i LANG=C X``)."""
    launch = C.direct(argv)
    if launch is None or not launch.argv:
        return None
    tool = program_of(launch.argv)
    if tool in UTILITIES or script.is_function(tool) or is_noise(st, launch.argv):
        return None
    return launch


def set_check(draft: Draft, st: Step, script: Script, argv: list[str]) -> None:
    if "check_command" in draft.values:
        return
    text = st.text(script.lines)
    words = command_words(draft, argv, st.line, text)
    if words != draft.values.get("command"):
        draft.set("check_command", words, st.line, text)
