"""Shell words to plain strings, following the script's own variables (never running anything).

A variable's value is what its plain assignment says. A variable the script never sets but
that its sourced defaults file (``/etc/default/NAME``) may set is kept as a reference that
servicectl expands at start from the service's environment: ``$VAR`` (a whole unquoted word:
zero or more words) or ``${VAR}`` (inside a word). Anything computed by a command
(``$(...)``, backquotes, arithmetic) is unknown.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

# Private-use characters mark a kept reference inside a value: SPLIT + NAME + END (an unquoted
# reference: field-split at start) or WHOLE + NAME + END (quoted: one word).
SPLIT, WHOLE, END = "\ue000", "\ue002", "\ue001"
# LOOP + NAME + END: the variable of a ``for`` loop over several or computed values (a script
# that starts one daemon per value: a template, the value being {instance}).
LOOP = "\ue005"
_REF_RE = re.compile(f"[{SPLIT}{WHOLE}]([A-Za-z_][A-Za-z0-9_]*){END}")
LOOP_RE = re.compile(f"{LOOP}([A-Za-z_][A-Za-z0-9_]*){END}")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Value:
    text: str | None  # None: computed by a command, unknown
    line: int
    overridable: bool = False  # set before a defaults file was sourced: that file may change it
    how: str = ""  # the assignment as written, for messages
    source: str = ""  # "defaults": set by the defaults file (env_file); "loop", "temp"


@dataclass
class Vars:
    """The variables of a script as the analysis walks it."""

    values: dict[str, Value] = field(default_factory=dict)
    env_sourced: bool = False  # a defaults file was sourced: unset variables may come from it
    script: str = ""  # $0
    service: str = ""  # the definition's name: the fallback for an unknown $NAME
    used: set[str] = field(default_factory=set)  # variables read, for notes
    unknown: dict[str, Value] = field(default_factory=dict)  # unknown variables that were read
    defaulted: set[str] = field(default_factory=set)  # ${VAR:-x} used x; the env file may not
    fallbacks: list[tuple[str, Value, Value]] = field(default_factory=list)
    opaque: str = ""  # a sourced file not followed: unset variables may come from it
    defaults_read: bool = False  # the defaults file was read: what it does not set is unset
    args: list[str | None] | None = None  # the positional parameters $1... (None: not known)
    resolve: bool = False  # deciding (a test, a case word): the defaults file's own values
    unset: set[str] = field(default_factory=set)  # read, but set nowhere: expanded to nothing
    # The variables of ``for`` loops over several or computed values: line, the loop as
    # written, and its values when they are literal words.
    loops: dict[str, tuple[int, str, list[str] | None]] = field(default_factory=dict)
    in_verb: bool = False  # walking a verb (a loop there may start one daemon per value)
    sourced_at: int = 0  # the line the defaults file was sourced at (0: never)
    # The defaults file's on/off switches a condition reads (ENABLED=false): name -> value.
    switches: dict[str, str] = field(default_factory=dict)

    def copy(self) -> Vars:
        return Vars(
            dict(self.values),
            self.env_sourced,
            self.script,
            self.service,
            self.used,
            self.unknown,
            self.defaulted,
            self.fallbacks,
            self.opaque,
            self.defaults_read,
            None if self.args is None else list(self.args),
            self.resolve,
            self.unset,
            self.loops,
            self.in_verb,
            self.sourced_at,
            self.switches,
        )


class Unknown(Exception):
    """A word whose value depends on a command's output or something else not known."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


OPTION_VAR_RE = re.compile(r"^(?:[A-Z0-9_]*_)?(?:OPTS|OPTIONS|ARGS|FLAGS|PARAMS|EXTRAOPTS)$|^EXTRA")


def is_option_var(name: str) -> bool:
    """DAEMON_OPTS, DAEMON_ARGS, SSHD_OPTS, OPTIONS, EXTRA_OPTS...: extra arguments an
    administrator sets in the defaults file."""
    return bool(OPTION_VAR_RE.match(name))


def _positional(name: str, v: Vars) -> str:
    """``$1``..., ``$@``, ``$*``, ``$#``: the arguments of the verb or of the function called
    (a verb has only itself: what else ``service NAME VERB`` passes is nothing at boot)."""
    if v.args is None:
        raise Unknown(f"${name} is known only when the script runs")
    if name == "#":
        return str(len(v.args))
    if name in ("@", "*"):
        return " ".join(_known_args(v.args, name))
    index = int(name) - 1
    if index >= len(v.args):
        return ""
    found = v.args[index]
    if found is None:
        raise Unknown(f"${name} is known only when the script runs")
    return found


def _known_args(args: list[str | None], name: str) -> list[str]:
    if any(a is None for a in args):
        raise Unknown(f"${name} is known only when the script runs")
    return [a for a in args if a is not None]


def _lookup(name: str, v: Vars) -> str:
    """A variable's text (references kept as markers); raises Unknown."""
    v.used.add(name)
    if name == "0":
        return v.script
    if name.isdigit() or name in ("@", "*", "#"):
        return _positional(name, v)
    if name in ("$", "!", "?", "-"):
        raise Unknown(f"${name} is known only when the script runs")
    val = v.values.get(name)
    if val is None and name == "NAME" and v.service:
        return v.service
    if val is not None:
        return _value(name, val, v)
    if v.opaque and name.isupper():
        raise Unknown(f"{name} may be set by {v.opaque}, which is not followed")
    if v.env_sourced and not v.defaults_read and v.resolve:
        raise Unknown(f"{name} may be set by the defaults file, which was not read")
    if v.env_sourced and (not v.defaults_read or is_option_var(name)) and not v.resolve:
        return SPLIT + name + END  # an administrator's knob stays one, set or not
    v.unset.add(name)
    return ""


def _value(name: str, val: Value, v: Vars) -> str:
    """The text of a variable that was assigned (a reference for one the defaults file sets,
    unless deciding)."""
    if val.text is None:
        if name == "NAME" and v.service:
            return v.service
        v.unknown[name] = val
        if val.source == "loop":
            raise Unknown(f"{name} takes each value of a loop (line {val.line}: {val.how})")
        if val.source == "read":
            raise Unknown(f"{name} is read when the script runs (line {val.line})")
        raise Unknown(f"{name} is computed by a command (line {val.line})")
    if val.source == "defaults" and not v.resolve:
        return SPLIT + name + END
    before = not v.sourced_at or val.line < v.sourced_at  # the defaults file may set it
    if is_option_var(name) and val.overridable and not val.text.strip() and before:
        return SPLIT + name + END
    return val.text


def _param(expr: str, v: Vars) -> str:
    """``${...}`` contents: NAME, NAME:-word, NAME-word, NAME:=word, NAME:+word, #NAME,
    NAME#pat, NAME##pat, NAME%pat, NAME%%pat."""
    if expr.startswith("#") and _NAME_RE.fullmatch(expr[1:]):
        length = _lookup(expr[1:], v)
        if SPLIT in length or WHOLE in length:
            raise Unknown(f"${{{expr}}} depends on the defaults file")
        return str(len(length))
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*|[0-9]|[@*#?$!-])(.*)$", expr, re.S)
    if not m:
        raise Unknown(f"${{{expr}}} is not understood")
    name, rest = m.group(1), m.group(2)
    if not rest:
        return _lookup(name, v)
    sliced = re.fullmatch(r":([0-9]{1,2})", rest)
    if name in ("@", "*") and sliced:
        _lookup(name, v)  # raises when the arguments are not known
        assert v.args is not None
        return " ".join(_known_args(v.args[max(0, int(sliced.group(1)) - 1) :], name))
    op_m = re.match(r"(:?[-=+?]|##|#|%%|%)(.*)$", rest, re.S)
    if not op_m:
        raise Unknown(f"${{{expr}}} is not understood")
    op, arg = op_m.group(1), op_m.group(2)
    if name == "0" and op in ("##", "#", "%%", "%"):
        return _trim(v.script, op, expand_text(arg, v))
    return _operation(expr, name, op, arg, v)


def _operation(expr: str, name: str, op: str, arg: str, v: Vars) -> str:
    """``${NAME<op>arg}``: a default (``-``, ``=``), an alternative (``+``), ``?``, or a
    pattern trimmed (``#``, ``##``, ``%``, ``%%``)."""
    kind = op.lstrip(":")
    try:
        text: str | None = _lookup(name, v)
    except Unknown:
        if kind not in ("-", "="):
            raise
        text = None
    is_ref = text is not None and (text.startswith(SPLIT) and text.endswith(END))
    if text is not None and LOOP in text and kind not in ("-", "="):
        raise Unknown(f"${{{expr}}} depends on the value of a loop ({name})")
    if kind in ("-", "="):
        return _with_default(name, op, arg, text, is_ref, v)
    if kind == "+":
        if is_ref:
            raise Unknown(f"${{{expr}}} depends on whether the defaults file sets {name}")
        return expand_text(arg, v) if text else ""
    if kind == "?":
        return text or ""
    if is_ref or text is None:
        raise Unknown(f"${{{expr}}} depends on the defaults file")
    return _trim(text, op, expand_text(arg, v))


def _with_default(name: str, op: str, arg: str, text: str | None, is_ref: bool, v: Vars) -> str:
    """``${NAME-word}``, ``${NAME:-word}`` (and ``=``): an unknown or kept variable takes the
    script's default (noted: the defaults file may set it); ``:`` also replaces an empty one."""
    if is_ref or text is None:
        v.defaulted.add(name)
        return expand_text(arg, v)
    if text == "" and op.startswith(":"):
        return expand_text(arg, v)
    return text


def _trim(text: str, op: str, pattern: str) -> str:
    """``${x#p}`` and friends, with shell patterns."""
    indices = range(len(text) + 1)
    if op in ("#", "##"):
        cands = indices if op == "#" else reversed(indices)
        for i in cands:
            if fnmatch.fnmatchcase(text[:i], pattern):
                return text[i:]
        return text
    cands = reversed(indices) if op == "%" else indices
    for i in cands:
        if fnmatch.fnmatchcase(text[i:], pattern):
            return text[:i]
    return text


def _dollar(word: str, i: int, v: Vars, quoted: bool) -> tuple[str, int]:
    """The expansion of the ``$`` at ``word[i]``, and the index after it."""
    n = len(word)
    if i + 1 >= n:
        return "$", i + 1
    c = word[i + 1]
    if word.startswith("$((", i):
        raise Unknown("arithmetic is not followed")
    if c == "(":
        raise Unknown(f"{_short(word)} is computed by a command")
    if c == "{":
        depth, j = 0, i + 1
        while j < n:
            if word[j] == "{":
                depth += 1
            elif word[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        text = _param(word[i + 2 : j], v)
        return (_whole(text) if quoted else text), j + 1
    if c == "'" and not quoted:  # $'...' (bash): the quoted text, escapes not interpreted
        j = word.find("'", i + 2)
        j = n if j < 0 else j
        return word[i + 2 : j], j + 1
    m = _NAME_RE.match(word, i + 1)
    if m:
        text = _lookup(m.group(0), v)
        return (_whole(text) if quoted else text), m.end()
    if c.isdigit() or c in "@*#?$!-":
        return _lookup(c, v), i + 2
    return "$", i + 1


def _whole(text: str) -> str:
    """A reference in double quotes is one word at start."""
    return text.replace(SPLIT, WHOLE)


def _short(word: str) -> str:
    return word if len(word) <= 60 else word[:57] + "..."


def expand_text(word: str, v: Vars, quoted: bool = False) -> str:
    """One shell word with quotes removed and variables replaced (no field splitting).

    Unquoted text keeps a marker in front of each literal character that must not be split:
    callers that split use :func:`expand_words`.
    """
    out: list[str] = []
    i, n = 0, len(word)
    while i < n:
        c = word[i]
        if c == "\\":
            if i + 1 < n:
                out.append(_escaped(word[i + 1], quoted))
            i += 2
        elif c == "'" and not quoted:
            j = word.find("'", i + 1)
            j = n if j < 0 else j
            out.append(_lit(word[i + 1 : j]))
            i = j + 1
        elif c == '"' and not quoted:
            j = _dquote_end(word, i)
            out.append(_lit(expand_text(word[i + 1 : j], v, quoted=True)))
            i = j + 1
        elif c == "`":
            raise Unknown(f"{_short(word)} is computed by a command")
        elif c == "$":
            text, i = _dollar(word, i, v, quoted)
            out.append(text)
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _escaped(ch: str, quoted: bool) -> str:
    """The character after a backslash: literal, except that in double quotes a backslash
    escapes only a dollar, backquote, double quote, backslash or newline (else it stays)."""
    if not quoted or ch in '$`"\\\n':
        return _lit(ch)
    return "\\" + ch


def _dquote_end(word: str, i: int) -> int:
    """Index of the ``"`` closing the one at ``word[i]`` (past the end if none); quotes
    inside ``$(...)`` or ``${...}`` do not close it."""
    n = len(word)
    j, depth = i + 1, 0
    while j < n:
        if word[j] == "\\":
            j += 2
            continue
        if word[j] == "$" and j + 1 < n and word[j + 1] in "({":
            depth += 1
        elif word[j] in ")}" and depth:
            depth -= 1
        elif word[j] == '"' and not depth:
            break
        j += 1
    return j


_LIT = "\ue003"  # marks the start of quoted text that must not be split


def _lit(text: str) -> str:
    return "".join(_LIT + ch if ch in " \t\n" else ch for ch in text)


_ALL_ARGS_RE = re.compile(r'^"\$(?:@|\{@(?::[0-9]{1,2})?\})"$')


def expand_words(word: str, v: Vars) -> list[str]:
    """An unquoted word after expansion and field splitting (empty unquoted values vanish, and
    so does ``"$@"`` when there are no arguments: one word per argument otherwise)."""
    if _ALL_ARGS_RE.match(word):
        return plain(word, v).split()
    text = expand_text(word, v)
    fields: list[str] = []
    cur: list[str] = []
    had_quotes = "'" in word or '"' in word
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == _LIT and i + 1 < len(text):
            cur.append(text[i + 1])
            i += 2
            continue
        if ch in " \t\n":
            if cur:
                fields.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
        i += 1
    if cur or (had_quotes and not fields):
        fields.append("".join(cur))
    return fields


def plain(word: str, v: Vars) -> str:
    """A word as one string (assignments, paths): no splitting, markers removed."""
    return expand_text(word, v).replace(_LIT, "")


def has_ref(text: str) -> bool:
    return SPLIT in text or WHOLE in text


def refs(text: str) -> list[str]:
    return _REF_RE.findall(text)


def to_servicectl(word: str) -> str:
    """A field as servicectl writes it: a literal ``$`` doubled, kept references as ``$VAR``
    (standing alone, unquoted in the script) or ``${VAR}``, a loop variable as {instance}."""
    word = LOOP_RE.sub("{instance}", word)
    m = _REF_RE.fullmatch(word)
    if m and word[0] == SPLIT:
        return "$" + m.group(1)
    escaped = word.replace("$", "$$")
    return _REF_RE.sub(lambda mm: "${" + mm.group(1) + "}", escaped)


def shown(text: str) -> str:
    """A value with its markers as the script wrote them, for messages."""
    text = LOOP_RE.sub(lambda m: "$" + m.group(1), text)
    return _REF_RE.sub(lambda m: "$" + m.group(1), text).replace(_LIT, "")
