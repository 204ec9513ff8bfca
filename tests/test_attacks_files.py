"""Attacks on servicectl run as root, by a real unprivileged user (docs/security.md).

Each test is named after the rule it attacks, and checks: no root-owned file changed (stat and
content before and after), no signal to a decoy, no hang (every command has a timeout), no
traceback, and the exit code. Rules attacked here:

R-PATH-1, R-OUT-1, R-OUT-2, R-OUT-3, R-OUT-4 (output files), R-ENV-1..4 (env_file),
R-PID-2 (PID files that are not PID files), R-LOCK-1 (read-only run directory),
R-NOTIFY-1..3 (notify socket), R-DEF-1..3 (untrusted services directory and definitions),
R-LOG-1 (bounded tails).
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest
from conftest import DAEMONS, PY, SERVICECTL, Env, alive, assert_ok, tagged_pids, wait_for
from faultkit import (
    USER_PYTHON,
    Recorder,
    User,
    as_user,
    assert_clear,
    chattr,
    owned_by,
    reachable_dir,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: the attacks are on root's servicectl, by another user"
)

SECRET = "root:$6$SECRETHASH$abc:19000:0:99999:7:::\n"


@pytest.fixture
def decoy(env: Env) -> Iterator[Recorder]:
    rec = Recorder(env.root, env.tag)
    try:
        yield rec
    finally:
        rec.close()


def snap(*paths: Path | str) -> dict[str, Any]:
    """Owner, mode, inode, links and content (regular files) of each path, not following links;
    for a directory, the same for each entry."""
    out: dict[str, Any] = {}
    for p in map(Path, paths):
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            out[str(p)] = None
            continue
        body: Any = None
        if stat.S_ISREG(st.st_mode):
            body = p.read_bytes()
        elif stat.S_ISDIR(st.st_mode):
            body = snap(*sorted(p.iterdir()))
        elif stat.S_ISLNK(st.st_mode):
            body = os.readlink(p)
        out[str(p)] = (st.st_uid, st.st_gid, st.st_mode, st.st_ino, st.st_nlink, body)
    return out


def sc(env: Env, *args: str, code: int | None = None, words: tuple[str, ...] = ()) -> Any:
    """Run servicectl (a hang fails the test), check the exit code and that it explains."""
    res = env.sc(*args, timeout=40)
    if code is not None:
        assert_ok(res, code)
    assert_clear(res, *words)
    return res


def nothing_runs(env: Env, decoy: Recorder | None = None) -> None:
    others = {decoy.pid} if decoy else set()
    assert set(tagged_pids(env.tag)) <= others, tagged_pids(env.tag)
    assert [f for f in env.files() if not f.startswith(".definitions-")] == []


def sleeper_as(env: Env, user: User | None, **extra: Any) -> None:
    spec: dict[str, Any] = {"command": "sleep 300", "start_grace": 0.1, **extra}
    if user is not None:
        spec["user"] = user.name
    env.write("web", spec)


# -- R-OUT: output files ------------------------------------------------------------------------


def test_R_OUT_2_root_files_and_devices_are_never_handed_to_the_service(
    env: Env, user: User, decoy: Recorder
) -> None:
    with reachable_dir(owner=user) as theirs:
        mine = env.root / "root.log"
        mine.write_text("root's own log\n")
        in_theirs = theirs / "root.log"  # root's file in the user's directory: still root's
        in_theirs.write_text("root's\n")
        for target in ("/dev/console", "/dev/kmsg", "/dev/./null", "/dev/../dev/null", mine,
                       in_theirs):  # fmt: skip
            real = os.path.normpath(str(target))
            before = snap(real)
            sleeper_as(env, user, stdout=str(target))
            sc(env, "start", "web", code=0)
            assert snap(real)[real][:3] == before[real][:3], target  # owner, group, mode
            sc(env, "stop", "web", code=0)
            if os.path.isfile(real):  # unchanged but for servicectl's start mark (R-LOG-4)
                after = snap(real)[real]
                assert after[:-1] == before[real][:-1]
                assert after[-1].startswith(before[real][-1])
                added = after[-1][len(before[real][-1]) :].decode().splitlines()
                assert len(added) == 1 and added[0].startswith("-- servicectl: starting web at ")
    # The control: a log servicectl creates is the service's, so that it can reopen it.
    sleeper_as(env, user)
    sc(env, "start", "web", code=0)
    assert (env.log / "web.log").stat().st_uid == user.uid
    sc(env, "stop", "web", code=0)
    decoy.assert_untouched()


def test_R_OUT_1_symlinks_in_a_users_directory_are_not_followed(env: Env, user: User) -> None:
    with reachable_dir(owner=user) as theirs, reachable_dir() as roots:
        secret = roots / "secret"
        secret.mkdir()
        (secret / "out.log").write_text("root data\n")
        nested = theirs / "a"
        nested.mkdir()
        owned_by(nested, user)
        links = {
            theirs / "logs": secret,  # the parent is a link to root's directory
            nested / "b": secret,  # deeper
            theirs / "chain": theirs / "chain2",  # a chain
            theirs / "chain2": secret,
            theirs / "up": Path(".."),  # and up: theirs/up/... is roots' sibling
            theirs / "out.log": secret / "out.log",  # the file itself
        }
        for link, to in links.items():
            link.symlink_to(to)
            owned_by(link, user)
        before = snap(secret, roots)
        for stdout in (
            theirs / "logs/out.log",
            theirs / "logs/new.log",
            theirs / "a/b/out.log",
            theirs / "chain/out.log",
            theirs / "up" / roots.name / "secret/out.log",
            theirs / "out.log",
        ):
            sleeper_as(env, user, stdout=str(stdout))
            res = sc(env, "start", "web", code=4, words=("symlink", "stdout:"))
            assert "root data" not in res.stdout + res.stderr
            assert snap(secret, roots) == before, stdout
            nothing_runs(env)
        # The control: a symlink in a directory only root can write is root's, and followed.
        (roots / "link").symlink_to(secret)
        sleeper_as(env, user, stdout=str(roots / "link/new.log"))
        sc(env, "start", "web", code=0)
        assert (secret / "new.log").stat().st_uid == user.uid  # created now, so given
        sc(env, "stop", "web", code=0)


def test_R_OUT_3_a_file_planted_by_another_user_is_not_written(
    env: Env, user: User, decoy: Recorder
) -> None:
    precious = env.root / "precious"
    precious.write_text(SECRET)
    precious.chmod(0o600)
    with reachable_dir() as shared:
        shared.chmod(0o1777)  # like /tmp
        planted = shared / "web.log"
        assert as_user(user, "touch", str(planted)).returncode == 0
        hardlink = shared / "hard.log"
        os.link(precious, hardlink)  # what fs.protected_hardlinks=0 would let a user do
        before = snap(precious, planted)
        for stdout, why in ((planted, f"belongs to uid {user.uid}"), (hardlink, "hard links")):
            sleeper_as(env, None, stdout=str(stdout))  # a root service
            sc(env, "start", "web", code=4, words=(why,))
            assert snap(precious, planted) == before
            nothing_runs(env, decoy)
        # The control: the service's own user may have made its log itself.
        sleeper_as(env, user, stdout=str(planted))
        sc(env, "start", "web", code=0)
        sc(env, "stop", "web", code=0)
    decoy.assert_untouched()


def test_R_OUT_4_fifos_and_special_files_are_refused_without_hanging(env: Env) -> None:
    special = env.root / "special"
    special.mkdir()
    fifo, held, sock, blk = (special / n for n in ("fifo", "held-fifo", "sock", "blk"))
    os.mkfifo(fifo)
    os.mkfifo(held)
    reader = os.open(held, os.O_RDONLY | os.O_NONBLOCK)  # someone reads it: open would succeed
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(sock))
    targets = [fifo, held, sock, special]
    try:
        os.mknod(blk, 0o600 | stat.S_IFBLK, os.makedev(7, 0))
        targets.append(blk)
    except OSError:
        pass
    try:
        for target in targets:
            sleeper_as(env, None, stdout=str(target))
            t0 = time.monotonic()
            sc(env, "start", "web", code=1, words=(str(target), "not a regular file"))
            assert time.monotonic() - t0 < 10
            nothing_runs(env)
        # At boot: the other services start, and startall ends.
        env.sleeper("other")
        sleeper_as(env, None, stdout=str(fifo))
        t0 = time.monotonic()
        res = sc(env, "startall", code=1)
        assert time.monotonic() - t0 < 20 and "other: started" in res.stdout
        assert os.read(reader, 100) == b""
        sc(env, "stop", "other", code=0)
    finally:
        os.close(reader)
        server.close()


# -- R-ENV: env_file ------------------------------------------------------------------------------


def env_service(env: Env, name: str, env_file: Path) -> None:
    env.sleeper(name, env_file=str(env_file))


def test_R_ENV_3_a_broken_env_file_is_a_config_error_of_its_service(env: Env) -> None:
    env.sleeper("good")
    for content, line, what in (
        (b"A=1\nB=caf\xe9\n", 2, "not UTF-8"),
        (b"A=1\n\nB=x\0y\n", 3, "NUL"),
        (b"# hello\nPASSWORD hunter2\n", 2, "KEY=VALUE"),
        (b"1A=hunter2\n", 1, "KEY=VALUE"),
    ):
        env_file = env.root / "bad.env"
        env_file.write_bytes(content)
        env_service(env, "bad", env_file)
        where = f"{env.services / 'bad.yaml'}: env_file: {env_file} line {line}"
        for args, code in ((("start", "bad", "good"), 6), (("startall",), 1)):
            res = sc(env, *args, code=code, words=(where, what, "good: started"))
            assert "hunter2" not in res.stdout + res.stderr
            sc(env, "stop", "good", code=0)
            nothing_runs(env)


def test_R_ENV_3_check_reports_a_broken_env_file(env: Env) -> None:
    env_file = env.root / "bad.env"
    env_file.write_bytes(b"A=\xff\n")
    env_service(env, "bad", env_file)
    sc(env, "check", "bad", code=6, words=("env_file", "line 1", "not UTF-8"))


def test_R_ENV_4_no_message_quotes_an_env_file(env: Env, user: User) -> None:
    with reachable_dir() as roots, reachable_dir(owner=user) as theirs:
        shadow = roots / "shadow"
        shadow.write_text(SECRET)
        shadow.chmod(0o640)
        (roots / "app.env").symlink_to(shadow)  # root's own link: followed, not quoted
        (theirs / "app.env").symlink_to(shadow)  # the user's link: not followed
        owned_by(theirs / "app.env", user)
        before = snap(shadow)
        for env_file, code, words in (
            (roots / "app.env", 6, ("line 1", "KEY=VALUE")),
            (theirs / "app.env", 4, ("symlink", "other users can write")),
        ):
            env_service(env, "web", env_file)
            for args in (("start", "web"), ("restart", "web"), ("startall",)):
                res = sc(env, *args, code=1 if args == ("startall",) else code, words=words)
                assert "SECRETHASH" not in res.stdout + res.stderr and "root:" not in res.stderr
            nothing_runs(env)
        assert snap(shadow) == before


def test_R_ENV_1_an_env_file_others_can_write_is_refused(env: Env, user: User) -> None:
    env_file = env.root / "web.env"
    for owner, mode, fix in ((0, 0o666, "chmod go-w"), (0, 0o620, "chmod go-w"),
                             (user.uid, 0o644, "chown root")):  # fmt: skip
        env_file.write_text("A=1\n")
        os.chown(env_file, owner, -1)
        env_file.chmod(mode)
        env_service(env, "web", env_file)
        sc(env, "start", "web", code=4, words=(str(env_file), fix))
        nothing_runs(env)


def test_R_ENV_2_a_fifo_env_file_never_hangs(env: Env) -> None:
    fifo = env.root / "fifo.env"
    os.mkfifo(fifo)
    env_service(env, "web", fifo)
    env.sleeper("other")
    t0 = time.monotonic()
    sc(env, "start", "web", code=6, words=(str(fifo), "FIFO"))
    res = sc(env, "startall", code=1, words=(str(fifo), "other: started"))
    assert time.monotonic() - t0 < 20, res
    sc(env, "stop", "other", code=0)
    nothing_runs(env)


# -- R-PID-2: a PID file path naming something that is not a PID file ---------------------------


def _not_pid_files(where: Path) -> list[Path]:
    conf = where / "app.conf"
    conf.write_text("listen 80;\nserver_name example.org;\n")
    short = where / "hostname"
    short.write_text("web1\n")  # small, but not a PID
    fifo = where / "fifo"
    os.mkfifo(fifo)
    null = where / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return [conf, short, fifo, null]


def test_R_PID_2_write_and_remove_refuse_what_is_not_a_pid_file(env: Env) -> None:
    """The mechanism (pidfile.write_pidfile, remove_pidfile), called as root."""
    from servicectl.system.pidfile import NotAPidFile, remove_pidfile, write_pidfile

    targets = _not_pid_files(env.root)
    before = snap(*targets)
    for path in targets:
        with pytest.raises(NotAPidFile, match=str(path)):
            write_pidfile(path, 4242)
        with pytest.raises(NotAPidFile):
            remove_pidfile(path)
    assert snap(*targets) == before
    link = env.root / "link.pid"
    link.symlink_to(targets[0])
    for content in ("", "123\n", " 12 34\n", "-5\n"):
        path = env.root / "old.pid"
        path.write_text(content)
        write_pidfile(path, 4242)
        assert path.read_text() == "4242\n"
        assert remove_pidfile(path) and not path.exists()
    write_pidfile(link, 7)  # the link itself is replaced, never its target
    assert not link.is_symlink() and snap(*targets) == before
    env.run.mkdir()
    garbage = env.run / "web.pid"  # in the run directory only servicectl writes
    garbage.write_bytes(b"\x00\xffnot a pid\n")
    with pytest.raises(NotAPidFile):
        write_pidfile(garbage, 1)
    write_pidfile(garbage, 1, run_dir=env.run)
    assert remove_pidfile(garbage, run_dir=env.run)


def test_R_PID_2_start_and_stop_never_delete_a_file_that_is_not_a_pid_file(
    env: Env, decoy: Recorder
) -> None:
    targets = _not_pid_files(env.root)
    before = snap(*targets)
    for path in targets:
        sleeper_as(env, None, pid_file=str(path))
        for args in (("start", "web"), ("stop", "web"), ("restart", "web")):
            sc(env, *args)
        assert snap(*targets) == before, path
        nothing_runs(env, decoy)
    decoy.assert_untouched()


# -- R-LOCK-1: a read-only run directory --------------------------------------------------------


def _mount_read_only(path: Path) -> bool:
    ok = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True)
    if ok.returncode != 0:
        return False
    ro = subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], capture_output=True)
    if ro.returncode != 0:
        subprocess.run(["umount", str(path)], capture_output=True)
        return False
    return True


def test_R_LOCK_1_stop_works_on_a_read_only_run_dir(env: Env, decoy: Recorder) -> None:
    env.sleeper("web")
    sc(env, "start", "web", code=0)
    pid = env.pid("web")
    if not _mount_read_only(env.run):
        pytest.skip("cannot mount a read-only bind mount here")
    try:
        res = sc(env, "stop", "web", words=("web",))
        assert not alive(pid), res.stderr
        assert "lock file" not in res.stderr, res.stderr
    finally:
        subprocess.run(["umount", str(env.run)], check=True)
    sc(env, "stop", "web", code=0)
    nothing_runs(env, decoy)
    # A lock file that is itself immutable: stop works, and cleans up.
    sc(env, "start", "web", code=0)
    pid = env.pid("web")
    lock = env.run / "web.lock"
    if chattr(lock, "+i"):
        try:
            sc(env, "stop", "web", code=0)
            assert not alive(pid)
        finally:
            chattr(lock, "-i")
    else:
        sc(env, "stop", "web", code=0)
    nothing_runs(env, decoy)
    decoy.assert_untouched()


# -- R-NOTIFY: the notify socket ----------------------------------------------------------------

SQUATTER = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
addr = sys.argv[1]
s.bind("\\0" + addr[1:] if addr.startswith("@") else addr)
print("bound", flush=True)
s.settimeout(float(sys.argv[2]))
got = []
try:
    while True:
        got.append(s.recv(4096).decode(errors="replace"))
except OSError:
    pass
print("got", repr(got), flush=True)
"""

SENDER = """
import socket, sys
addr = sys.argv[1]
target = "\\0" + addr[1:] if addr.startswith("@") else addr
for msg in sys.argv[2:]:
    try:
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(msg.encode(), target)
        print("sent", msg)
    except OSError as e:
        print("refused", msg, e.strerror)
"""


def notify_service(env: Env, name: str, *args: str, **extra: Any) -> None:
    env.write(
        name,
        {"command": [PY, str(DAEMONS / "notify_service.py"), *args], "ready": "notify", **extra},
    )


def old_address(run: Path, name: str) -> str:
    return f"@servicectl/{zlib.crc32(str(run).encode()):08x}/{name}"


def sc_run(env: Env, run: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """servicectl with another run directory (one every user can reach)."""
    return env.sc("--run-dir", str(run), *args, timeout=40)


def squatter(user: User, address: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [USER_PYTHON, "-c", SQUATTER, address, "4"],
        user=user.uid,
        group=user.gid,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_R_NOTIFY_1_the_address_cannot_be_taken_first(env: Env, user: User) -> None:
    notify_service(env, "nt", "--delay", "0.2", "--status", "private status")
    with reachable_dir() as run:
        old, new = squatter(user, old_address(run, "nt")), squatter(user, str(run / "nt.notify"))
        assert old.stdout.readline().strip() == "bound"  # type: ignore[union-attr]
        for args in (("start", "nt"), ("reload", "nt")):
            res = sc_run(env, run, *args)
            assert_ok(res)
            assert_clear(res)
        pid = int((run / "nt.pid").read_text())
        assert psutil.Process(pid).environ()["NOTIFY_SOCKET"] == str(run / "nt.notify")
        out, _ = old.communicate(timeout=30)
        assert "READY" not in out and "private" not in out, out
        _, err = new.communicate(timeout=30)
        assert "PermissionError" in err  # only root creates files in the run directory
        # Between start and reload the address is free, but still in root's directory.
        late = squatter(user, str(run / "nt.notify"))
        assert "PermissionError" in late.communicate(timeout=30)[1]
        assert_ok(sc_run(env, run, "reload", "nt"))
        assert_ok(sc_run(env, run, "stop", "nt"))
        assert not (run / "nt.notify").exists()


def test_R_NOTIFY_2_a_long_run_dir_gets_an_unguessable_address(env: Env) -> None:
    notify_service(env, "nt", "--delay", "0.1")
    long_run = env.root / ("r" * 60) / ("u" * 60)
    seen = []
    for _ in range(2):
        assert_ok(sc_run(env, long_run, "start", "nt"))
        pid = int((long_run / "nt.pid").read_text())
        address = psutil.Process(pid).environ()["NOTIFY_SOCKET"]
        assert address.startswith("@servicectl/") and len(address) >= 12 + 32
        seen.append(address)
        assert_ok(sc_run(env, long_run, "stop", "nt"))
    assert seen[0] != seen[1]


def test_R_NOTIFY_3_forged_messages_are_ignored(env: Env, user: User, decoy: Recorder) -> None:
    notify_service(env, "nt", "--never-ready", start_timeout=2)
    with reachable_dir() as run:
        p = subprocess.Popen(
            [*env.base_args(), "--run-dir", str(run), "start", "nt"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        env.commands.append(p)
        wait_for(lambda: (run / "nt.pid").exists(), what="the PID file")
        pid = int((run / "nt.pid").read_text())
        forged = (f"MAINPID={decoy.pid}\nREADY=1", "ERRNO=13", "STATUS=xyzzy-status", "READY=1")
        res = as_user(user, USER_PYTHON, "-c", SENDER, str(run / "nt.notify"), *forged)
        assert res.returncode == 0, res.stderr
        out, err = p.communicate(timeout=30)
        assert p.returncode == 1 and "not ready" in err and "Traceback" not in err, err
        assert "xyzzy" not in out + err and not alive(pid)
    decoy.assert_untouched()


# -- R-DEF: who may write the definitions ---------------------------------------------------------

EVERY = (("status",), ("start", "web"), ("stop", "web"), ("startall",), ("list",), ("check",))


def test_R_DEF_1_a_services_dir_others_can_write_is_refused(
    env: Env, user: User, decoy: Recorder
) -> None:
    env.write("web", {"command": ["/bin/kill", "-TERM", str(decoy.pid)]})
    for owner, mode, fix in (
        (0, 0o777, "chmod go-w"),
        (0, 0o775, "chmod go-w"),
        (0, 0o1777, "chmod go-w"),
        (user.uid, 0o755, "chown root"),
    ):
        os.chown(env.services, owner, -1)
        env.services.chmod(mode)
        for args in EVERY:
            sc(env, *args, code=4, words=(str(env.services), fix))
    os.chown(env.services, 0, -1)
    env.services.chmod(0o755)
    with reachable_dir() as top:
        services = top / "services.d"
        services.mkdir()
        (services / "web.yaml").write_bytes((env.services / "web.yaml").read_bytes())
        top.chmod(0o777)  # anyone may rename services.d away and put their own
        res = env.sc("-d", str(services), "start", "web", timeout=40)
        assert_ok(res, 4)
        assert_clear(res, f"lies in {top}", "chmod go-w")
        top.chmod(0o1777)  # sticky, like /tmp: no one else can rename it
        env.write("web", {"command": "sleep 300", "start_grace": 0.1})
        (services / "web.yaml").write_bytes((env.services / "web.yaml").read_bytes())
        assert_ok(env.sc("-d", str(services), "start", "web", timeout=40))
        assert_ok(env.sc("-d", str(services), "stop", "web", timeout=40))
    decoy.assert_untouched()


def test_R_DEF_2_a_definition_others_can_write_is_refused(
    env: Env, user: User, decoy: Recorder
) -> None:
    env.sleeper("other")
    web = env.write("web", {"command": ["/bin/kill", "-TERM", str(decoy.pid)], "start_grace": 0})
    for owner, mode, fix in ((user.uid, 0o644, "chown root"), (0, 0o666, "chmod go-w"),
                             (0, 0o664, "chmod go-w")):  # fmt: skip
        os.chown(web, owner, -1)
        web.chmod(mode)
        sc(env, "start", "web", code=4, words=(str(web), fix))
        res = sc(env, "startall", code=1, words=(str(web), fix, "other: started"))
        assert "web" in res.stdout + res.stderr
        assert env.status_json("web")["web"]["state"] == "invalid"
        sc(env, "stop", "other", code=0)
    decoy.assert_untouched()
    # A definition that was trusted, and cached, then given away: refused at once.
    os.chown(web, 0, -1)
    web.chmod(0o644)
    env.sleeper("web")
    changed = web.stat().st_ctime
    wait_for(lambda: time.time() - changed > 2.5, what="the definition to be cacheable")
    sc(env, "list", code=0)
    assert any(f.startswith(".definitions-") for f in env.files())
    os.chown(web, user.uid, -1)
    sc(env, "start", "web", code=4, words=("chown root",))
    os.chown(web, 0, -1)
    sc(env, "start", "web", code=0)
    sc(env, "stop", "web", code=0)
    nothing_runs(env, decoy)


def test_R_DEF_3_a_user_runs_their_own_services_as_before(user: User) -> None:
    """As an ordinary user, the services directory is the user's own: nothing is refused."""
    with reachable_dir(owner=user) as home:
        services = home / "services.d"
        services.mkdir()
        owned_by(services, user).chmod(0o777)
        (services / "web.yaml").write_text("command: sleep 300\nstart_grace: 0.1\n")
        owned_by(services / "web.yaml", user).chmod(0o666)
        base = [SERVICECTL, "-d", str(services)]  # the installed one, reachable by the user
        base += ["--run-dir", str(home / "run"), "--log-dir", str(home / "log")]
        env = {"PATH": os.environ["PATH"], "NO_COLOR": "1"}
        for action in ("start", "stop"):
            res = as_user(user, *base, action, "web", env=env, cwd=str(home))
            assert res.returncode == 0, res.stderr


# -- R-LOG-1: bounded tails -----------------------------------------------------------------------

# The peak memory of this process alone (VmHWM): ru_maxrss would start at the RSS of the pytest
# process that spawned it (vfork), whatever tail_lines does.
TAIL = """
import json, re, sys, time
from servicectl.files.safe import tail_lines
t0 = time.monotonic()
lines = tail_lines(sys.argv[1], 5)
seconds = time.monotonic() - t0
hwm = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
print(json.dumps([lines, seconds, hwm]))
"""


def huge_log(path: Path, end: bytes = b"\nthe last line\n", size: int = 1 << 30) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(size)  # 1 GiB without a newline (sparse)
        fh.seek(0, os.SEEK_END)
        fh.write(end)
    return path


def test_R_LOG_1_tail_lines_reads_a_bounded_amount(env: Env) -> None:
    for end, expected in (
        (b"\nthe last line\n", 1),
        (b"", 1),
        (b"\n" + b"x" * 10000 + b"\nz\n", 2),
    ):
        log = huge_log(env.root / "huge.log", end)
        res = subprocess.run([PY, "-c", TAIL, str(log)], capture_output=True, text=True)
        lines, seconds, rss_kib = json.loads(res.stdout)
        assert len(lines) == expected and max(map(len, lines)) < 4200, lines
        assert seconds < 1 and rss_kib < 100_000, (seconds, rss_kib)
        assert lines[-1] in ("the last line", "z") or lines[-1].startswith("[...] ")


def test_R_LOG_1_logs_and_failed_starts_show_a_bounded_tail(env: Env) -> None:
    env.write("web", {"command": "false", "start_grace": 0.5})
    env.log.mkdir()
    huge_log(env.log / "web.log", size=64 << 20)  # 64 MiB: gentle while unfixed
    # The failed start wrote nothing after its start mark: its message says so (R-LOG-4).
    said = (("logs", "web", "-n", "5"), 0, "the last line")
    failed = (("start", "web"), 1, "nothing written by this start; at least 2 earlier lines")
    for args, code, words in (said, failed):
        t0 = time.monotonic()
        res = sc(env, *args, code=code, words=(words,))
        assert time.monotonic() - t0 < 5 and len(res.stdout + res.stderr) < 100_000
