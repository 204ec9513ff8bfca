"""What an administrator sees: the ``status NAME`` block (piped and on a pseudo-terminal, checked
against what psutil and the kernel say of real daemons), the board, the live progress of
startall/stopall on a terminal (and Ctrl-C under it), syslog lines, and shell completion."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import termios
import threading
import time
from typing import TYPE_CHECKING, Any

import psutil
import pytest
from conftest import (
    DAEMONS,
    PY,
    SERVICECTL,
    USER_PYTHON,
    Env,
    alive,
    assert_ok,
    tagged_pids,
    wait_for,
)
from test_real_daemons import free_port, get, need, shared, start_nginx, user_or_none  # noqa: F401

if TYPE_CHECKING:
    from pathlib import Path

ESC = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
MOVE = re.compile(r"\x1b\[[0-9]*[AK]")  # cursor up, erase line: a live display redrawn


class Pty:
    """servicectl run on a fresh pseudo-terminal (its controlling terminal, 120x40), as a person
    at a terminal runs it; its output is collected as it comes."""

    def __init__(self, env: Env, *args: str, extra_env: dict[str, str] | None = None) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "NOTIFY_SOCKET")}
        environ.update({"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"})
        environ.update(extra_env or {})
        self.master = master
        self.chunks: list[bytes] = []
        self.proc = subprocess.Popen(
            [*env.base_args(), *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=environ,
            cwd=env.root,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        env.commands.append(self.proc)  # type: ignore[arg-type]  # killed at teardown
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 1 << 16)
            except OSError:  # EIO: servicectl and everything it left on the terminal are gone
                return
            if not data:
                return
            self.chunks.append(data)

    @property
    def raw(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace")

    @property
    def text(self) -> str:
        """What was written as lines: a redraw of the live display starts a new line, and
        colours and other escape sequences are removed."""
        text = MOVE.sub("\n", self.raw.replace("\r\n", "\n"))
        return ESC.sub("", text).replace("\r", "\n")

    def ctrl_c(self) -> None:
        os.write(self.master, b"\x03")  # the terminal sends SIGINT to its foreground group

    def wait(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        self.reader.join(10)
        os.close(self.master)
        return code


def on_pty(env: Env, *args: str, extra_env: dict[str, str] | None = None) -> tuple[int, Pty]:
    term = Pty(env, *args, extra_env=extra_env)
    return term.wait(), term


def field(text: str, label: str) -> list[str]:
    """The lines of one field of a block (``Memory:``), continuation lines included."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(f"{label}:"):
            width = line.index(f"{label}:") + len(label) + 2
            out = [line[width:].strip()]
            for more in lines[i + 1 :]:
                if not more.startswith(" " * width) or not more.strip():
                    break
                out.append(more.strip())
            return out
    raise AssertionError(f"no {label}: field in\n{text}")


def tree_pids(text: str) -> set[int]:
    return {int(re.search(r"(\d+) ", line).group(1)) for line in field(text, "Processes")}  # type: ignore[union-attr]


def megabytes(cell: str) -> float:
    number, unit = re.match(r"([\d.]+)([BKMG])", cell).groups()  # type: ignore[union-attr]
    return float(number) * {"B": 1 / 1024 / 1024, "K": 1 / 1024, "M": 1, "G": 1024}[unit]


# -- the block, piped --------------------------------------------------------------------------


def test_block_piped_says_what_systemctl_would(env: Env) -> None:
    definition = env.sleeper("web", "--print", "hello from web", description="the web sleeper")
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    wait_for(lambda: "hello from web" in (env.log / "web.log").read_text(), what="the log line")
    res = assert_ok(env.sc("status", "web"))
    out = res.stdout
    assert out.splitlines()[0] == "● web - the web sleeper"
    assert field(out, "Loaded") == [f"{definition} (enabled; simple)"]
    state = field(out, "State")[0]
    assert re.fullmatch(
        r"running since \w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+; [\d.]+s ago", state
    )
    assert field(out, "Main PID") == [f"{pid} (python3)"] or field(out, "Main PID")[0].startswith(
        f"{pid} ("
    )
    assert "sleeper.py --print" in field(out, "Command")[0]
    assert tree_pids(out) == {pid}
    assert field(out, "Listening") == ["none"]
    assert field(out, "CPU")[0].endswith(("ms", "s"))
    log = re.escape(str(env.log / "web.log"))
    assert re.search(rf"^Log {log} \(this run: last 2 lines, started \d\d:\d\d:\d\d\):$", out, re.M)
    assert out.rstrip().endswith("hello from web")
    assert "\x1b" not in out  # piped: no colour, no cursor movement
    none = assert_ok(env.sc("status", "-n", "0", "web")).stdout
    assert not re.search("^Log ", none, re.M) and "Processes:" in none.splitlines()[-1]
    one = assert_ok(env.sc("status", "web", "--lines", "1")).stdout
    assert re.search(r"\(last 1 line of this run, started \d\d:\d\d:\d\d\):", one)


def test_blocks_of_stopped_unknown_and_invalid_services(env: Env) -> None:
    env.sleeper("off")
    env.write("broken", "command: [unclosed\n", tag=False)
    res = assert_ok(env.sc("status", "off", "nosuch", "broken"), 4)
    blocks = res.stdout.split("\n\n")
    assert blocks[0].startswith("● off - test sleeper off") and field(res.stdout, "State")[0] == (
        "stopped"
    )
    assert "Main PID" not in blocks[0] and f"Log {env.log / 'off.log'}: none yet" in res.stdout
    assert "● nosuch\n" in res.stdout and "no such service: no nosuch.yaml" in res.stdout
    assert "● broken\n" in res.stdout and "invalid" in res.stdout
    assert_ok(env.sc("status", "off"), 3)


def test_block_lists_the_group_member_a_crashed_parent_left(env: Env) -> None:
    """The tree is the main process, its descendants, and the rest of its own process group (a
    child whose parent exited is re-parented away, yet still the service's)."""
    env.write(
        "fam",
        {"command": ["sh", "-c", "(sleep 300 &); exec sleep 301"], "start_grace": 0.3},
    )
    assert_ok(env.sc("start", "fam"))
    main = env.pid("fam")
    orphan = wait_for(
        lambda: [p.pid for p in psutil.process_iter() if _pgid(p.pid) == main and p.pid != main],
        what="the orphaned sleep",
    )
    assert psutil.Process(orphan[0]).ppid() != main  # not a descendant any more
    out = assert_ok(env.sc("status", "fam")).stdout
    assert tree_pids(out) == {main, orphan[0]}
    assert field(out, "Memory")[0].endswith("(resident, 2 processes)")


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


# -- the block on a terminal ---------------------------------------------------------------------


def test_block_on_a_pty_in_colour_and_without(env: Env) -> None:
    env.sleeper("web")
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    code, term = on_pty(env, "status", "web")
    assert code == 0, term.text
    assert "\x1b[32m" in term.raw  # running, in green
    assert f"Main PID: {pid} (" in term.text and "● web - test sleeper web" in term.text
    assert "Traceback" not in term.text
    code, term = on_pty(env, "status", "web", extra_env={"NO_COLOR": "1"})
    assert code == 0 and "\x1b[32m" not in term.raw and f"Main PID: {pid} (" in term.text
    code, term = on_pty(env, "status", "web", extra_env={"TERM": "dumb"})
    assert code == 0 and "\x1b" not in term.raw and f"Main PID: {pid} (" in term.text


# -- real daemons: tree, memory and sockets as the kernel and psutil see them --------------------


def test_block_of_nginx_shows_its_workers_memory_and_socket(env: Env, shared: Path) -> None:  # noqa: F811
    port = start_nginx(env, shared)
    master = psutil.Process(env.pid("web", env.run / "web-nginx.pid"))
    workers = master.children()
    assert len(workers) == 2
    out = assert_ok(env.sc("status", "web")).stdout
    assert tree_pids(out) == {master.pid, *(w.pid for w in workers)}
    tree = field(out, "Processes")
    assert tree[0].startswith(f"{master.pid} nginx: master process")
    assert all(line.startswith(("├─", "└─")) for line in tree[1:])
    rss = sum(p.memory_info().rss for p in (master, *workers)) / 1024 / 1024
    shown_mb = megabytes(field(out, "Memory")[0])
    assert abs(shown_mb - rss) <= max(0.5, 0.1 * rss), (shown_mb, rss)
    assert field(out, "Memory")[0].endswith("(resident, 3 processes)")
    assert f"tcp 127.0.0.1:{port}" in field(out, "Listening")
    assert_ok(env.sc("stop", "web"))


def test_block_of_redis_shows_its_sockets_and_status_text(env: Env, shared: Path) -> None:  # noqa: F811
    need("redis-server")
    port = free_port()
    user = user_or_none("redis")
    data = shared / "redis"
    data.mkdir()
    unix = shared / "redis.sock"
    if user:
        shutil.chown(data, user)
        shutil.chown(shared, user)
    spec: dict[str, Any] = {
        "command": f'redis-server --port {port} --bind 127.0.0.1 --save "" --appendonly no '
        f"--supervised systemd --dir {data} --unixsocket {unix} --unixsocketperm 700",
        "ready": "notify",
        "start_timeout": 20,
    }
    if user:
        spec["user"] = user
    env.write("redis", spec)
    assert_ok(env.sc("start", "redis"))
    pid = env.status_json("redis")["redis"]["pid"]
    out = assert_ok(env.sc("status", "redis")).stdout
    listening = field(out, "Listening")
    assert f"tcp 127.0.0.1:{port}" in listening and f"unix {unix} (stream)" in listening
    kernel = {
        f"tcp {c.laddr.ip}:{c.laddr.port}"
        for c in psutil.Process(pid).net_connections("inet")
        if c.status == psutil.CONN_LISTEN
    }
    assert kernel <= set(listening)
    assert field(out, "Status")[0].startswith('"') and "ready" in out.lower()
    assert_ok(env.sc("stop", "redis"))


NOT_VISIBLE = """
import json, sys
from servicectl.output import statusview
from servicectl.system import process_tree
m = process_tree.collect(int(sys.argv[1]))
print(json.dumps([len(m.members), m.hidden, [list(s) for s in m.listeners], statusview._sockets(m),
                  m.memory is not None]))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: another user looks at root's service")
def test_another_user_is_told_the_sockets_are_not_visible(env: Env) -> None:
    from faultkit import unix_user

    port = free_port()
    env.write(
        "web",
        {
            "command": [PY, str(DAEMONS / "port_listener.py"), "--port", str(port)],
            "ready": {"tcp": f"127.0.0.1:{port}"},
        },
    )
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    with unix_user() as user:
        res = subprocess.run(  # the installed servicectl, with its psutil and rich
            [USER_PYTHON, "-c", NOT_VISIBLE, str(pid)],
            user=user.uid,
            group=user.gid,
            extra_groups=[],
            cwd="/",
            env={"PATH": os.environ["PATH"]},
            capture_output=True,
            text=True,
            timeout=30,
        )
    if res.returncode != 0 and "No module named" in res.stderr:
        pytest.skip(f"the system python cannot import this venv's packages: {res.stderr[-200:]}")
    import json

    members, hidden, listeners, lines, memory = json.loads(res.stdout)
    assert members == 1 and hidden == 1 and listeners == [] and memory
    assert lines == ["(not visible to this user)"]
    root_view = assert_ok(env.sc("status", "web")).stdout
    assert f"tcp 127.0.0.1:{port}" in field(root_view, "Listening")


# -- a definition changed since start ------------------------------------------------------------


def test_a_definition_changed_on_disk_since_start_is_said(env: Env) -> None:
    path = env.sleeper("web")
    assert_ok(env.sc("start", "web"))
    assert "changed on disk" not in assert_ok(env.sc("status", "web")).stdout
    os.utime(path, ns=(time.time_ns() + 5_000_000_000,) * 2)  # touched: not changed
    assert "changed on disk" not in assert_ok(env.sc("status", "web")).stdout
    env.sleeper("web", stop_timeout=7)
    out = assert_ok(env.sc("status", "web")).stdout
    assert field(out, "Warning") == ["definition changed on disk since start; restart to apply"]
    row = env.status_json("web")["web"]
    assert "definition changed on disk since start; restart to apply" in row["notes"]
    board = env.sc("status")
    assert "web: definition changed on disk" in board.stderr
    assert "changed on disk" not in board.stdout  # the board stays one line per service
    assert_ok(env.sc("restart", "web"))
    assert "changed on disk" not in assert_ok(env.sc("status", "web")).stdout


# -- the board -----------------------------------------------------------------------------------


def _starts(line: str) -> list[int]:
    return [m.start() for m in re.finditer(r"(?:(?<=  )|^)\S", line)]


def test_board_piped_is_aligned_and_awk_readable(env: Env) -> None:
    long_name = "a-service-with-a-really-quite-long-name"
    env.sleeper(long_name, description="a description with several words in it")
    env.sleeper("w", description="")
    env.sleeper("mid-name", description="x " * 60)
    assert_ok(env.sc("start", "w", long_name))
    res = assert_ok(env.sc("status"), 3)  # one is stopped
    lines = res.stdout.splitlines()
    assert len(lines) == 4  # the header and one line per service
    header = _starts(lines[0])
    for line in lines[1:]:
        assert _starts(line)[:6] == header[:6], res.stdout
    awk = subprocess.run(
        ["awk", "NR > 1 {print $1, $2, (NF >= 7)}"],
        input=res.stdout,
        capture_output=True,
        text=True,
        check=True,
    )
    assert awk.stdout.splitlines() == [
        f"{long_name} running 1",
        "mid-name stopped 1",
        "w running 1",
    ]
    w = next(line for line in lines if line.startswith("w "))
    assert w.split()[-1] == "-"  # no description: "-", never an empty column


def test_board_on_a_pty_is_a_coloured_table(env: Env) -> None:
    env.sleeper("up", description="the one that runs")
    env.sleeper("down", description="the one that does not")
    assert_ok(env.sc("start", "up"))
    code, term = on_pty(env, "status")
    assert code == 3, term.text
    text = term.text
    assert re.search(r"NAME\s+STATE\s+PID\s+UPTIME\s+MEMORY\s+CPU\s+DESCRIPTION", text)
    assert re.search(rf"up\s+running\s+{env.pid('up')}\s", text)
    assert re.search(r"down\s+stopped\s+-", text)
    assert "\x1b[32mrunning" in term.raw


# -- live progress -------------------------------------------------------------------------------


def _slow(env: Env, name: str, marker: Path, **extra: Any) -> None:
    env.sleeper(name, ready={"file": str(marker)}, start_timeout=60, **extra)


def test_startall_on_a_pty_shows_what_each_service_waits_for(env: Env) -> None:
    ready = env.root / "slow.ready"
    _slow(env, "slow", ready)
    env.sleeper("quick")
    env.sleeper("after", depends=["slow"])
    term = Pty(env, "startall")
    wait_for(lambda: f"slow: ready: file {ready}" in term.text, 30, "the wait shown")
    wait_for(lambda: "quick: started (pid" in term.text, 30, "quick's line")
    assert re.search(r"slow: ready: file \S+, \d+\.\d s of 60 s", term.text)
    assert "after: started" not in term.text  # it waits for its dependency
    ready.touch()
    assert term.wait() == 0, term.text
    text = term.text
    for name in ("slow", "quick", "after"):
        assert re.search(rf"^{name}: started \(pid \d+\)", text, re.M), text
    assert "3 services: 3 started/ok, 0 failed or skipped" in text
    assert term.raw.rstrip().endswith("s") and "\x1b[?25h" in term.raw  # the cursor is back
    assert_ok(env.sc("stopall"))


def test_startall_piped_is_one_line_per_service(env: Env) -> None:
    env.sleeper("a")
    env.sleeper("b")
    res = assert_ok(env.sc("startall"))
    lines = res.stdout.splitlines()
    assert sorted(line.split(":")[0] for line in lines[:2]) == ["a", "b"]  # as each finished
    assert all(re.fullmatch(r"\w: started \(pid \d+\) \[\d+\.\d\d s\]", line) for line in lines[:2])
    assert re.fullmatch(r"2 services: 2 started/ok, 0 failed or skipped in [\d.]+ s", lines[2])
    assert "\x1b" not in res.stdout + res.stderr
    assert_ok(env.sc("stopall"))


def test_no_color_and_dumb_terminals_are_respected_by_the_live_display(env: Env) -> None:
    env.sleeper("a")
    env.sleeper("b")
    code, term = on_pty(env, "startall", extra_env={"NO_COLOR": "1"})
    assert code == 0 and "a: started" in term.text
    assert not re.search(r"\x1b\[[0-9;]*3[0-9]m", term.raw)  # no colour (bold may stay)
    assert_ok(env.sc("stopall"))
    code, term = on_pty(env, "startall", extra_env={"TERM": "dumb"})
    assert code == 0 and "\x1b" not in term.raw  # no display: the lines as when piped
    assert re.search(r"^a: started \(pid \d+\) \[[\d.]+ s\]$", term.text, re.M), term.text
    assert_ok(env.sc("stopall"))


def test_stopall_on_a_pty_shows_the_stop_signal_and_its_clock(env: Env) -> None:
    env.write(
        "stub",
        {"command": [PY, str(DAEMONS / "stubborn.py")], "stop_timeout": 3, "start_grace": 0.2},
    )
    env.sleeper("plain")
    assert_ok(env.sc("startall"))
    term = Pty(env, "stopall")
    wait_for(lambda: re.search(r"stub: TERM sent, \d\.\d s of 3 s", term.text), 20, "TERM shown")
    assert term.wait() == 0, term.text
    assert re.search(r"^stub: killed after 3 s", term.text, re.M), term.text


@pytest.mark.parametrize("how", ["ctrl-c", "SIGTERM"])
def test_interrupting_the_live_display_undoes_half_done_starts(env: Env, how: str) -> None:
    for name in ("s1", "s2", "s3"):
        _slow(env, name, env.root / "never")
    term = Pty(env, "startall")
    wait_for(
        lambda: all(f"{n}: ready: file" in term.text for n in ("s1", "s2", "s3")), 30, "the waits"
    )
    pids = tagged_pids(env.tag)
    assert len(pids) == 3
    if how == "ctrl-c":
        term.ctrl_c()
    else:
        term.proc.send_signal(signal.SIGTERM)
    assert term.wait(30) == 130, term.text
    assert "interrupted" in term.text and "Traceback" not in term.text
    assert "\x1b[?25h" in term.raw  # the display was closed: the cursor is back
    assert not any(alive(p) for p in pids)
    assert tagged_pids(env.tag) == []
    assert [f for f in env.files() if not f.startswith(".definitions-")] == []
    assert_ok(env.sc("status", "s1"), 3)


# -- syslog --------------------------------------------------------------------------------------


@pytest.fixture
def syslog(tmp_path: Path) -> Any:
    path = tmp_path / "log.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    try:
        yield path, sock
    finally:
        sock.close()


def _messages(sock: socket.socket, n: int) -> list[str]:
    return [sock.recv(4096).decode() for _ in range(n)]


def test_actions_are_told_to_syslog(env: Env, syslog: tuple[Path, socket.socket]) -> None:
    path, sock = syslog
    on = {"SERVICECTL_SYSLOG_SOCKET": str(path)}
    env.sleeper("web", "--hup", actions={"rotate": {"signal": "HUP"}})
    env.sleeper("bad", "--exit-code", "3", start_grace=20)  # its crash falls inside
    assert_ok(env.sc("start", "web", extra_env=on))
    pid = env.pid("web")
    assert_ok(env.sc("start", "web", extra_env=on))  # already running: nothing done, nothing said
    assert_ok(env.sc("reload", "web", extra_env=on))
    assert_ok(env.sc("action", "web", "rotate", extra_env=on))
    assert_ok(env.sc("action", "web", "nosuch", extra_env=on), 2)  # a usage error: not told
    assert_ok(env.sc("restart", "web", extra_env=on))
    new = env.pid("web")
    assert_ok(env.sc("stop", "web", extra_env=on))
    assert_ok(env.sc("start", "bad", extra_env=on), 1)
    got = _messages(sock, 6)
    uid = os.getuid()
    head = r"<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d servicectl\[\d+\]: "
    expected = [
        (29, rf"web: started \(pid {pid}\) by uid {uid}"),
        (29, rf"web: reloaded \(SIGHUP sent to pid {pid}\) by uid {uid}"),
        (29, rf"web: rotate: SIGHUP sent to pid {pid} by uid {uid}"),
        (29, rf"web: restarted \(was pid {pid}, now pid {new}\) by uid {uid}"),
        (29, rf"web: stopped after TERM \([\d.]+ s\) by uid {uid}"),
        (28, rf"bad: failed to start: .* \(by uid {uid}\)"),
    ]
    for line, (pri, text) in zip(got, expected):
        m = re.fullmatch(head + text, line, re.S)
        assert m and int(m.group(1)) == pri, (line, text)
    sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        sock.recv(4096)  # nothing more (the second start did nothing)


def test_a_full_or_missing_syslog_never_holds_an_action(
    env: Env, syslog: tuple[Path, socket.socket]
) -> None:
    path, _ = syslog  # bound, never read: its queue fills up
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    filler.setblocking(False)
    with pytest.raises(BlockingIOError):
        for _ in range(10_000):
            filler.sendto(b"x" * 1024, str(path))
    filler.close()
    env.sleeper("web", start_grace=0)
    for where in (str(path), str(env.root / "missing.sock"), str(env.root)):
        t0 = time.monotonic()
        assert_ok(env.sc("start", "web", extra_env={"SERVICECTL_SYSLOG_SOCKET": where}))
        assert_ok(env.sc("stop", "web", extra_env={"SERVICECTL_SYSLOG_SOCKET": where}))
        assert time.monotonic() - t0 < 20


# -- completion ----------------------------------------------------------------------------------


def _complete(env: Env, shell: str, words: str, extra: dict[str, str] | None = None) -> str:
    """Ask the real CLI for completions as the shell's completion script does."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECTL_")}
    environ["_SERVICECTL_COMPLETE"] = f"complete_{shell}"
    if shell == "bash":
        environ["COMP_WORDS"] = words
        environ["COMP_CWORD"] = str(len(words.split()) - (0 if words.endswith(" ") else 1))
    else:
        environ["_TYPER_COMPLETE_ARGS"] = words
        environ["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    environ.update(extra or {})
    res = subprocess.run(
        [SERVICECTL],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=env.root,
    )
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    return res.stdout


def test_completion_of_commands_and_service_names(env: Env) -> None:
    env.sleeper("web", description="the web server")
    env.sleeper("worker", description="the queue worker")
    env.sleeper("db")
    d = str(env.services)
    got = _complete(env, "bash", "servicectl st").split()
    assert {"start", "stop", "status", "startall", "stopall"} <= set(got)
    assert _complete(env, "bash", f"servicectl -d {d} start w").split() == ["web", "worker"]
    assert _complete(env, "bash", f"servicectl status -d {d} web ").split() == ["db", "worker"]
    by_env = {"SERVICECTL_SERVICES_DIR": d}
    assert _complete(env, "bash", "servicectl stop ", by_env).split() == ["db", "web", "worker"]
    zsh = _complete(env, "zsh", "servicectl restart w", by_env)
    assert '"web":"the web server"' in zsh and '"worker":"the queue worker"' in zsh
    fish = _complete(env, "fish", f"servicectl -d {d} status w")
    assert fish.splitlines() == ["web\tthe web server", "worker\tthe queue worker"]
    # The default directory (./services.d as non-root, or /etc/servicectl/services.d): none here.
    assert "web" not in _complete(env, "bash", "servicectl start ", {"HOME": str(env.root)})


def test_completion_scripts_for_bash_zsh_and_fish(env: Env) -> None:
    for shell in ("bash", "zsh", "fish"):
        res = subprocess.run(
            [SERVICECTL, "--show-completion", shell],
            env=dict(os.environ, _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0 and "_SERVICECTL_COMPLETE" in res.stdout, res.stderr
        assert f"complete_{shell}" in res.stdout


def test_the_piped_block_needs_no_rich(env: Env) -> None:
    """rich is imported only to draw on a terminal; psutil never (the block reads /proc with
    bounds itself: docs/security.md R-VIEW-2, R-VIEW-3)."""
    env.sleeper("web")
    assert_ok(env.sc("start", "web"))
    base = env.base_args()  # the installed servicectl script, run by its python
    for args, loaded in (
        (["status", "web"], set()),
        (["status"], set()),
        (["stop", "web"], set()),
    ):
        res = subprocess.run(
            [USER_PYTHON, "-X", "importtime", *base, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ, NO_COLOR="1"),
        )
        imported = set(re.findall(r"\|\s+(rich|psutil|typer)$", res.stderr, re.M))
        assert imported == loaded, (args, imported)
