"""A tolerant reader of POSIX shell scripts: tokens, then a tree of commands with line numbers.

It never runs anything. It knows enough of the grammar (quotes, ``$(...)``, here-documents,
``if``/``case``/loops, functions, ``&&``/``||``/``|``/``&``) to find the commands of an
init.d script; anything it does not understand is skipped, never an error. Every loop consumes
input, and nesting is bounded, so hostile input cannot hang or crash it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TYPE_CHECKING = False

MAX_DEPTH = 40  # nesting of compound commands; deeper ones are skipped whole

RESERVED_END = {"then", "elif", "else", "fi", "do", "done", "esac", "}"}


@dataclass
class Tok:
    kind: str  # "word", "op", "nl", "redir"
    text: str
    line: int


@dataclass
class Cmd:
    """A simple command: leading assignments, words, and where it is in the file."""

    words: list[str]
    assigns: list[tuple[str, str]]
    line: int
    end: int
    background: bool = False
    guarded: bool = False  # after && or ||, or in a condition: may not run
    redirects: list[str] = field(default_factory=list)
    negated: bool = False  # ``! cmd``: its failure is what counts
    aborts: bool = False  # the script gives up when it fails (``if ! cmd; then exit 1``)
    piped_to: list[str] = field(default_factory=list)  # the next command of its pipeline


@dataclass
class If:
    branches: list[tuple[list[Node], list[Node]]]
    otherwise: list[Node]
    line: int


@dataclass
class Case:
    word: str
    arms: list[tuple[list[str], list[Node], int]]
    line: int


@dataclass
class Loop:
    kind: str
    header: list[str]
    body: list[Node]
    line: int
    test: list[Node] = field(default_factory=list)  # while/until: the commands of the test


@dataclass
class Group:
    body: list[Node]
    line: int
    subshell: bool = False
    background: bool = False


@dataclass
class Func:
    name: str
    body: list[Node]
    line: int


Node = Cmd | If | Case | Loop | Group | Func

_OPS = ("&&", "||", ";;&", ";;", ";&", "|&", ";", "&", "|", "(", ")")
_REDIR_RE = re.compile(r"[0-9]*(?:>>|>&|<&|&>>|&>|>\||<<<|<<-|<<|<>|>|<)")
_HEREDOC_RE = re.compile(r"<<-?\s*(['\"]?)([A-Za-z0-9_.-]+)\1")
_META = set(" \t\n;&|()<>")
_ARRAY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\+?=$")


def _skip_balanced(text: str, i: int, open_: str, close: str) -> int:
    """Index after the ``close`` matching the ``open_`` at ``text[i]`` (quotes respected)."""
    depth = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "'" and open_ == "(":
            j = text.find("'", i + 1)
            i = n if j < 0 else j + 1
            continue
        if c == '"':
            i = _skip_dquote(text, i)
            continue
        if c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _skip_dquote(text: str, i: int) -> int:
    """Index after the double-quoted string starting at ``text[i]``."""
    n = len(text)
    i += 1
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        if c == "$" and i + 1 < n and text[i + 1] in "({":
            i = _skip_balanced(text, i + 1, text[i + 1], ")" if text[i + 1] == "(" else "}")
            continue
        if c == "`":
            j = text.find("`", i + 1)
            i = n if j < 0 else j + 1
            continue
        i += 1
    return n


def _word_end(text: str, i: int) -> int:
    """Index after the word starting at ``text[i]``."""
    n = len(text)
    while i < n:
        c = text[i]
        if c in _META:
            return i
        if c == "\\":
            i += 2
        elif c == "'":
            j = text.find("'", i + 1)
            i = n if j < 0 else j + 1
        elif c == '"':
            i = _skip_dquote(text, i)
        elif c == "`":
            j = text.find("`", i + 1)
            i = n if j < 0 else j + 1
        elif c == "$" and i + 1 < n and text[i + 1] in "({":
            i = _skip_balanced(text, i + 1, text[i + 1], ")" if text[i + 1] == "(" else "}")
        else:
            i += 1
    return min(i, n)


def tokenize(text: str) -> list[Tok]:
    """Tokens with their line numbers (1-based). Comments and here-document bodies are dropped."""
    toks: list[Tok] = []
    i, n, line = 0, len(text), 1
    pending_heredocs: list[str] = []
    at_word_start = True
    while i < n:
        if text[i] == "\n":
            toks.append(Tok("nl", "\n", line))
            i, line = i + 1, line + 1
            if pending_heredocs:
                i, line = _skip_heredocs(text, i, line, pending_heredocs)
                pending_heredocs = []
            at_word_start = True
            continue
        gap = _gap(text, i, at_word_start)
        if gap is not None:
            i, crossed, at_word_start = gap
            line += crossed
            continue
        redir = _redirection(text, i, line, toks, pending_heredocs)
        if redir is not None:
            i, word_may_start = redir
            at_word_start = at_word_start or word_may_start
            continue
        matched = next((op for op in _OPS if text.startswith(op, i)), None)
        if matched:
            toks.append(Tok("op", matched, line))
            i += len(matched)
            at_word_start = True
            continue
        j = _word_or_array_end(text, i)
        word = text[i:j]
        toks.append(Tok("word", word, line))
        line += word.count("\n")
        i = j
        at_word_start = False
    return toks


def _gap(text: str, i: int, at_word_start: bool) -> tuple[int, int, bool] | None:
    """A blank, a line continuation or a comment at ``text[i]``: the index after it, the
    newlines it crossed, and whether a word (and so a comment) may start there; else None."""
    c = text[i]
    if c in " \t\r":
        return i + 1, 0, True
    if c == "\\" and text.startswith("\\\n", i):
        return i + 2, 1, at_word_start
    if c == "#" and at_word_start:
        j = text.find("\n", i)
        return (len(text) if j < 0 else j), 0, at_word_start
    return None


def _redirection(
    text: str, i: int, line: int, toks: list[Tok], heredocs: list[str]
) -> tuple[int, bool] | None:
    """A redirection at ``text[i]``, added to ``toks`` (a here-document's end word to
    ``heredocs``): the index after it, and whether a word starts after it (not after a
    descriptor copy such as ``>&2``, which is whole). None if there is no redirection."""
    m = _redir_at(text, i)
    if m is None:
        return None
    op = m.group(0)
    j = m.end()
    n = len(text)
    if op.endswith("&") and j < n and (text[j].isdigit() or text[j] == "-"):
        while j < n and (text[j].isdigit() or text[j] == "-"):
            j += 1
        toks.append(Tok("redir", text[i:j], line))
        return j, False
    if op.lstrip("0123456789") in ("<<", "<<-"):
        hd = _HEREDOC_RE.match(text, i + len(op) - len(op.lstrip("0123456789")))
        if hd:
            heredocs.append(hd.group(2))
    toks.append(Tok("redir", op, line))
    return j, True


def _word_or_array_end(text: str, i: int) -> int:
    """Index after the word at ``text[i]`` (at least one character); a bash array assignment
    ``NAME=(a b c)`` is one word."""
    j = max(_word_end(text, i), i + 1)
    if j < len(text) and text[j] == "(" and _ARRAY_RE.match(text[i:j]):
        j = _skip_balanced(text, j, "(", ")")
    return j


def _redir_at(text: str, i: int) -> re.Match[str] | None:
    """A redirection operator at ``text[i]`` (``>``, ``2>&1``, ``&>``, ``<<-``...), or None."""
    c = text[i]
    if c in "<>" or (c == "&" and text.startswith("&>", i)):
        return _REDIR_RE.match(text, i)
    if c.isdigit():
        m = _REDIR_RE.match(text, i)
        if m and m.group(0).lstrip("0123456789")[:1] in ("<", ">"):
            return m
    return None


def _skip_heredocs(text: str, i: int, line: int, ends: list[str]) -> tuple[int, int]:
    """Skip here-document bodies after a line; each ends with a line that is its word."""
    n = len(text)
    for end in ends:
        while i < n:
            j = text.find("\n", i)
            j = n if j < 0 else j
            body_line = text[i:j]
            i = min(j + 1, n)
            line += 1
            if body_line.strip() == end:
                break
    return i, line


class Parser:
    """Recursive descent over the tokens; tolerant of anything it does not expect."""

    def __init__(self, toks: list[Tok]) -> None:
        self.toks = toks
        self.pos = 0
        self.depth = 0
        self._last_pipeline: list[Node] = []

    def peek(self) -> Tok | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def at(self, kind: str, text: str | None = None) -> bool:
        t = self.peek()
        return t is not None and t.kind == kind and (text is None or t.text == text)

    def at_word(self, *texts: str) -> bool:
        t = self.peek()
        return t is not None and t.kind == "word" and t.text in texts

    def skip_nl(self) -> None:
        while self.at("nl") or self.at("op", ";"):
            self.pos += 1

    def parse_all(self) -> list[Node]:
        out: list[Node] = []
        while self.pos < len(self.toks):
            before = self.pos
            out += self.parse_list(set(), set())
            if self.pos == before:
                self.pos += 1  # an unexpected token (a stray ``fi`` or ``)``): skip it
        return out

    def parse_list(self, words: set[str], ops: set[str]) -> list[Node]:
        out: list[Node] = []
        while True:
            self.skip_nl()
            t = self.peek()
            if (
                t is None
                or (t.kind == "word" and t.text in words)
                or (t.kind == "op" and (t.text in ops or t.text == ")"))
            ):
                return out
            if t.kind == "word" and t.text in RESERVED_END:
                return out
            before = self.pos
            out += self.parse_and_or()
            if self.pos == before:
                return out

    def parse_and_or(self) -> list[Node]:
        nodes = self.parse_pipeline(False)
        while self.at("op", "&&") or self.at("op", "||"):
            either = self.at("op", "||")
            self.pos += 1
            while self.at("nl"):
                self.pos += 1
            more = self.parse_pipeline(True)
            if either and aborts(more):  # cmd || exit 1
                _mark_aborts(nodes[-1:], negated=False)
            nodes += more
        if self.at("op", "&"):
            self.pos += 1
            for node in self._last_pipeline:  # a whole pipeline runs in the background
                if isinstance(node, (Cmd, Group)):
                    node.background = True
        return nodes

    def parse_pipeline(self, guarded: bool) -> list[Node]:
        negated = False
        if self.at_word("!"):
            self.pos += 1
            guarded = negated = True
        nodes = self.parse_command(guarded)
        members = list(nodes)
        while self.at("op", "|") or self.at("op", "|&"):
            self.pos += 1
            while self.at("nl"):
                self.pos += 1
            more = self.parse_command(guarded)
            if members and more and isinstance(members[-1], Cmd) and isinstance(more[0], Cmd):
                members[-1].piped_to = list(more[0].words)
            members += more
            nodes += more
        if negated and nodes and isinstance(nodes[0], Cmd):
            nodes[0].negated = True
        self._last_pipeline = members
        return nodes

    def parse_command(self, guarded: bool) -> list[Node]:
        t = self.peek()
        if t is None:
            return []
        if t.kind == "word" and t.text in ("if", "case", "for", "select", "while", "until", "{"):
            if self.depth >= MAX_DEPTH:
                return self._skip_compound()
            self.depth += 1
            try:
                return [self._compound(t)]
            finally:
                self.depth -= 1
        if t.kind == "op" and t.text == "(":
            self.pos += 1
            body = self.parse_list(set(), {")"})
            if self.at("op", ")"):
                self.pos += 1
            self._redirects()
            return [Group(body, t.line, subshell=True)]
        if t.kind == "word" and t.text == "function":
            self.pos += 1
            name = self.peek()
            if name is not None and name.kind == "word":
                self.pos += 1
                if self.at("op", "(") and self._at_offset(1, "op", ")"):
                    self.pos += 2
                return [self._func_body(name.text, t.line)]
            return []
        if t.kind == "word" and self._at_offset(1, "op", "(") and self._at_offset(2, "op", ")"):
            self.pos += 3
            return [self._func_body(t.text, t.line)]
        return self._simple(guarded)

    def _at_offset(self, k: int, kind: str, text: str) -> bool:
        j = self.pos + k
        return j < len(self.toks) and self.toks[j].kind == kind and self.toks[j].text == text

    def _func_body(self, name: str, line: int) -> Func:
        while self.at("nl"):
            self.pos += 1
        body = self.parse_command(False)
        return Func(name, body, line)

    def _skip_compound(self) -> list[Node]:
        """Too deep: skip tokens to the end of the line (keeps the walk bounded)."""
        while self.peek() is not None and not self.at("nl"):
            self.pos += 1
        return []

    def _compound(self, t: Tok) -> Node:
        self.pos += 1
        kw = t.text
        if kw == "if":
            return self._if(t.line)
        if kw == "case":
            return self._case(t.line)
        if kw == "{":
            body = self.parse_list({"}"}, set())
            if self.at_word("}"):
                self.pos += 1
            self._redirects()
            return Group(body, t.line)
        header: list[str] = []
        test: list[Node] = []
        if kw == "for" and self.at("op", "("):  # for ((i=0; ...)): skip the header
            while self.peek() is not None and not self.at_word("do"):
                self.pos += 1
        elif kw in ("for", "select"):
            while self.peek() is not None and not (self.at("nl") or self.at("op", ";")):
                tok = self.peek()
                assert tok is not None
                if tok.kind == "word" and tok.text == "do":
                    break
                header.append(tok.text)
                self.pos += 1
        else:
            test = self.parse_list({"do"}, set())
            header = [c.words[0] for c in test if isinstance(c, Cmd) and c.words]
        self.skip_nl()
        if self.at_word("do"):
            self.pos += 1
        body = self.parse_list({"done"}, set())
        if self.at_word("done"):
            self.pos += 1
        self._redirects()
        return Loop(kw, header, body, t.line, test)

    def _if(self, line: int) -> If:
        branches: list[tuple[list[Node], list[Node]]] = []
        otherwise: list[Node] = []
        while True:
            cond = self.parse_list({"then"}, set())
            for node in cond:
                if isinstance(node, Cmd):
                    node.guarded = True
            if self.at_word("then"):
                self.pos += 1
            body = self.parse_list({"elif", "else", "fi"}, set())
            if aborts(body):  # if ! cmd; then exit 1; fi
                _mark_aborts(cond, negated=True)
            branches.append((cond, body))
            if self.at_word("elif"):
                self.pos += 1
                continue
            if self.at_word("else"):
                self.pos += 1
                otherwise = self.parse_list({"fi"}, set())
                if aborts(otherwise):  # if cmd; then ...; else exit 1; fi
                    _mark_aborts(branches[-1][0], negated=False)
            if self.at_word("fi"):
                self.pos += 1
            self._redirects()
            return If(branches, otherwise, line)

    def _case(self, line: int) -> Case:
        word_tok = self.peek()
        word = word_tok.text if word_tok is not None and word_tok.kind == "word" else ""
        if word_tok is not None and word_tok.kind == "word":
            self.pos += 1
        while self.at("nl"):
            self.pos += 1
        if self.at_word("in"):
            self.pos += 1
        arms: list[tuple[list[str], list[Node], int]] = []
        while True:
            while self.at("nl") or self.at("op", ";"):
                self.pos += 1
            t = self.peek()
            if t is None:
                break
            if t.kind == "word" and t.text == "esac":
                self.pos += 1
                break
            arm = self._case_arm(t.line)
            if arm is not None:
                arms.append(arm)
        self._redirects()
        return Case(word, arms, line)

    def _case_arm(self, line: int) -> tuple[list[str], list[Node], int] | None:
        """One ``(PATTERN|PATTERN) commands ;;``; None if the line is no pattern line (its
        words are skipped)."""
        if self.at("op", "("):
            self.pos += 1
        patterns: list[str] = []
        while self.peek() is not None and not self.at("op", ")") and not self.at("nl"):
            tok = self.peek()
            assert tok is not None
            if tok.kind == "word":
                patterns.append(tok.text)
            self.pos += 1
        if not self.at("op", ")"):
            return None
        self.pos += 1
        body = self.parse_list({"esac"}, {";;", ";&", ";;&"})
        nxt = self.peek()
        if nxt is not None and nxt.kind == "op" and nxt.text in (";;", ";&", ";;&"):
            self.pos += 1
        return patterns, body, line

    def _redirects(self) -> list[str]:
        out = []
        while self.at("redir"):
            tok = self.peek()
            assert tok is not None
            self.pos += 1
            out.append(tok.text)
            if not tok.text[-1].isdigit() and not tok.text.endswith("-") and self.at("word"):
                nxt = self.peek()
                assert nxt is not None
                out.append(nxt.text)
                self.pos += 1
        return out

    def _simple(self, guarded: bool) -> list[Node]:
        t = self.peek()
        assert t is not None
        words: list[str] = []
        assigns: list[tuple[str, str]] = []
        redirects: list[str] = []
        line = end = t.line
        while True:
            tok = self.peek()
            if tok is None or tok.kind in ("nl", "op"):
                break
            if tok.kind == "redir":
                redirects += self._redirects()
                continue
            end = tok.line + tok.text.count("\n")
            self.pos += 1
            m = ASSIGN_RE.match(tok.text)
            if m and not words:
                assigns.append((m.group(1), tok.text[m.end() :]))
            else:
                words.append(tok.text)
        if not words and not assigns:
            if self.peek() is not None and self.at("word"):
                self.pos += 1
            return []
        return [Cmd(words, assigns, line, end, guarded=guarded, redirects=redirects)]


def aborts(nodes: list[Node]) -> bool:
    """Whether these commands give up: ``exit N`` or ``return N`` with N not 0 among them."""
    for node in nodes:
        if isinstance(node, Group) and aborts(node.body):
            return True
        if isinstance(node, Cmd) and node.words[:1] in (["exit"], ["return"]):
            code = node.words[1] if len(node.words) > 1 else ""
            if re.fullmatch(r"-?[1-9][0-9]*", code):
                return True
    return False


def _mark_aborts(cond: list[Node], negated: bool) -> None:
    """The test of an ``if`` (or the command before ``||``) whose failure makes the script give
    up: ``if ! cmd; then exit 1`` (``negated``) or ``if cmd; then ...; else exit 1``."""
    cmds = [n for n in cond if isinstance(n, Cmd)]
    if len(cmds) == 1 and cmds[0].negated == negated:
        cmds[0].aborts = True


ASSIGN_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[[^\]]*\])?\+?=")


def parse(text: str) -> list[Node]:
    """The tree of a whole script."""
    return Parser(tokenize(text)).parse_all()
