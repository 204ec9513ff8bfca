"""A script's ``#!`` interpreter: a script whose interpreter does not exist cannot be executed.

execve(2) says ENOENT for such a script, as for a missing program; when the program is entered
through a shell (the start gate, the user switch) that shell only says "not found" and exits
127 after the start has begun. Looked at before every start and by ``check``, it is exit 5
with the interpreter named. Only a regular file is opened (a device could act on open), without
blocking, and a file swapped for another kind between stat and open is not read.
"""

from __future__ import annotations

import os

from servicectl.errors import NotInstalledError


def shebang(program: str) -> list[str] | None:
    """The words of ``program``'s ``#!`` line, or None: not a regular file, unreadable, not a
    script. Never blocks (a FIFO or a device is not opened for reading)."""
    from servicectl.files.safe import read_if_regular

    got = read_if_regular(program, 256, whole=False)
    if got is None:
        return None
    head = got[0]
    if not head.startswith(b"#!"):
        return None
    return [os.fsdecode(w) for w in head[2:].split(b"\n", 1)[0].split()]


def check_interpreter(name: str, program: str) -> None:
    """Raise NotInstalledError (exit 5) when ``program`` is a script whose absolute ``#!``
    interpreter does not exist; anything else (unreadable, not a script, a relative
    interpreter) is left for execve to judge."""
    words = shebang(program)
    if not words:
        return
    interpreter = words[0]
    if interpreter.startswith("/") and not os.path.exists(interpreter):
        raise NotInstalledError(
            f"{name}: {program} is a script whose interpreter {interpreter} (its #! "
            f"line) does not exist (install it, or fix the #! line)"
        )
