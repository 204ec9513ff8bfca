"""Text from outside servicectl, made safe to show (docs/security.md R-VIEW-1): one function,
``escape``, for every text another program, user or file chose (argv, comm, socket paths,
STATUS= messages, log lines, definition text, file names), wherever it is shown: the status
block and board, error messages and notes, syslog lines.

Base layer: imports nothing of servicectl.
"""

from __future__ import annotations

# Every C0 control (tab and newline included), DEL, every C1 control, the line and paragraph
# separators, and the bidi controls (ALM, LRM, RLM, the embeddings and overrides, the
# isolates): none of them can start a line, move the cursor, recolour the terminal or
# reorder what is shown once escaped.
_CONTROLS = [
    *range(0x00, 0x20),
    *range(0x7F, 0xA0),
    0x061C,
    0x200E,
    0x200F,
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
]
_ESCAPES = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _CONTROLS}
_ESCAPES[0x09] = "\\t"
_ESCAPES[0x0A] = "\\n"
_ESCAPES[0x0D] = "\\r"


def escape(text: str) -> str:
    """``text`` as one line: every control, separator and bidi character made visible
    (``\\n``, ``\\x1b``, ``\\u202e``); everything else as it is."""
    if text.isascii() and text.isprintable():  # nothing to escape (ASCII but C0 and DEL)
        return text
    return text.translate(_ESCAPES)


def shown(text: str) -> str:
    """A text servicectl composed of lines (a message and its detail, a log tail): its line
    breaks kept, each line escaped as ``escape`` does (a ``\\r`` cannot rewrite a line)."""
    if "\n" not in text:
        return text.translate(_ESCAPES)
    return "\n".join(line.translate(_ESCAPES) for line in text.split("\n"))


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"
