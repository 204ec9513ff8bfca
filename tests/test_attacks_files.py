"""Attacks on the files root writes or opens for a service (docs/security.md): its output files
(R-OUT-1..4, with R-PATH-1), a PID file path that names something else (R-PID-2), the lock in a
read-only run directory (R-LOCK-1), the logs root reads back and shows (R-LOG-1..3), and the
directories it makes (R-DIR-5, R-DIR-6).

The attacker is a real unprivileged user made for the test (the service's own ``user:`` or
another one): a symlink, hard link, FIFO, device or file of theirs where root writes, or a log
that grows to gigabytes or holds terminal controls. Each test runs the real CLI as root and
checks: no root-owned file changed nor was handed over (owner, mode, inode and content before
and after), no decoy got a signal, nothing hung (every command has a timeout), what root read
is bounded, no traceback, and the exit code.
"""

from __future__ import annotations

import json
import os
import select
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import PY, Env, alive, wait_for
from faultkit import (
    SECRET,
    USER_PYTHON,
    Recorder,
    User,
    as_user,
    chattr,
    nothing_runs,
    owned_by,
    reachable_dir,
    sc,
    snap,
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: the attacks are on root's servicectl, by another user"
)


# -- R-OUT: output files ---------------------------------------------------------------------------


def sleeper_as(env: Env, user: User | None, **extra: Any) -> None:
    spec: dict[str, Any] = {"command": "sleep 300", "start_grace": 0.1, **extra}
    if user is not None:
        spec["user"] = user.name
    env.write("web", spec)


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


# -- R-PID-2: a PID file path naming something that is not a PID file ------------------------------


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


# -- R-LOCK-1: a read-only run directory -----------------------------------------------------------


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


# -- R-LOG: the logs root reads back and shows -----------------------------------------------------


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


def test_R_LOG_2_logs_follow_never_reopens_through_a_symlink(env: Env) -> None:
    secret = env.root / "shadow"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    env.sleeper("web")
    env.log.mkdir()
    log = env.log / "web.log"
    log.write_text("first line\n")
    p = env.popen("logs", "web", "-f")
    try:
        assert p.stdout is not None and p.stdout.readline() == "first line\n"
        log.rename(env.log / "web.log.1")
        log.symlink_to(secret)
        time.sleep(1.5)  # several polls of the follower (it polls every 0.2 s)
    finally:
        p.terminate()
        out, err = p.communicate(timeout=30)
    assert "99999" not in out + err  # any part of it (a reopen may start mid-file)
    assert secret.read_text() == SECRET
    assert Path(secret).stat().st_mode & 0o777 == 0o600


GROWER = """
import os, sys, time
os.write(1, b"start \\x1b]0;owned\\x07 \\x1b[2J\\xe2\\x80\\xae\\n")
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
os.ftruncate(1, 1 << 34)  # a sparse 16 GiB, in one call
os.write(1, b"the end\\n")
time.sleep(300)
"""


def read_until(fd: int, word: bytes, limit: int, timeout: float = 20) -> bytes:
    """What ``fd`` gives until ``word`` appears (or ``limit`` bytes, or the deadline)."""
    data = b""
    deadline = time.monotonic() + timeout
    while word not in data and len(data) < limit and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            data += chunk
    return data


def test_R_LOG_3_what_a_service_wrote_cannot_drive_the_terminal_nor_flood_it(
    env: Env, user: User
) -> None:
    with reachable_dir() as top:
        go = top / "go"
        env.write(
            "web",
            {
                "command": [USER_PYTHON, "-c", GROWER, str(go)],
                "user": user.name,
                "start_grace": 0.1,
            },
        )
        sc(env, "start", "web", code=0)
        wait_for(lambda: b"start" in (env.log / "web.log").read_bytes(), what="the first line")
        res = sc(env, "logs", "web", code=0)
        assert "\x1b" not in res.stdout and "\u202e" not in res.stdout
        assert "\\x1b]0;owned\\x07" in res.stdout and "\\u202e" in res.stdout
        p = env.popen("logs", "web", "-n", "1", "-f")  # its line, not servicectl's start mark
        assert p.stdout is not None
        fd = p.stdout.fileno()
        first = read_until(fd, b"\n", 1 << 20)
        assert first.startswith(b"start \\x1b") and b"\x1b" not in first, first
        go.touch()
        data = read_until(fd, b"the end", 4 << 20)
        p.kill()
        p.communicate()
        assert b"the end" in data, data[-200:]
        assert len(data) < 1 << 20 and b"bytes skipped" in data, len(data)
        assert b"\x00" not in data and b"\x1b" not in data
        sc(env, "stop", "web", code=0)


# -- R-DIR: the directories root makes -------------------------------------------------------------


def test_R_DIR_5_a_directory_path_has_no_dot_components(env: Env) -> None:
    for path in ("/srv/x/.", "/srv/./x", "/srv/x/..", "/srv/../x", "//", "/./"):
        env.write("d", {"command": "sleep 1", "directories": [path]})
        sc(env, "check", "d", code=6, words=("directories[0].path",))
    env.write("d", {"command": "sleep 1", "directories": ["/srv/x/", "/srv//y"]})
    sc(env, "check", "d", code=0)


CHRONY = """[Unit]
Description=chrony, an NTP client/server

[Service]
Type=simple
ExecStart=/bin/sleep 300
User={user}
ConfigurationDirectory={name}
StateDirectory={name}
"""


def test_R_DIR_6_import_and_start_never_hand_a_configuration_directory_over(
    env: Env, user: User
) -> None:
    """The known hole: ``import`` of chrony.service made /etc/chrony the daemon's user's, and the
    first start chowned it. The import now keeps it root's (as systemd does: ConfigurationDirectory
    is never chowned), and ``directories:`` refuses to hand over an existing directory outside
    the state, runtime, log and cache trees unless the entry names its owner."""
    unit = env.root / "chronyd.service"
    unit.write_text(CHRONY.format(user=user.name, name="chrony"))
    res = sc(env, "import", str(unit), code=0)
    assert "path: /etc/chrony\n  owner: root\n  group: root" in res.stdout, res.stdout
    assert "- /var/lib/chrony" in res.stdout
    with reachable_dir() as etc:
        conf = etc / "chrony"
        conf.mkdir(mode=0o750)
        (conf / "chrony.conf").write_text("server pool.example\n")
        base = {"command": "sleep 300", "user": user.name, "start_grace": 0.1}
        for entry in (
            [str(conf)],
            [{"path": str(conf), "mode": "0750"}],
            [{"path": str(conf), "group": user.name}],
        ):
            env.write("chrony", {**base, "directories": entry})
            res = sc(env, "start", "chrony", code=6, words=("R-DIR-6", str(conf), "owner:"))
            st = conf.stat()
            assert (st.st_uid, st.st_gid) == (0, 0)
        env.write(
            "chrony",
            {**base, "directories": [{"path": str(conf), "owner": "root", "mode": "0750"}]},
        )
        sc(env, "start", "chrony", code=0)
        assert conf.stat().st_uid == 0
        sc(env, "stop", "chrony", code=0)
        env.write("chrony", {**base, "directories": [{"path": str(conf), "owner": user.name}]})
        sc(env, "start", "chrony", code=0)  # named: the administrator's explicit choice
        assert conf.stat().st_uid == user.uid
        sc(env, "stop", "chrony", code=0)
        fresh = etc / "fresh"
        env.write("chrony", {**base, "directories": [str(fresh)]})
        sc(env, "start", "chrony", code=0)  # made now: the service's, as always
        assert fresh.stat().st_uid == user.uid
        sc(env, "stop", "chrony", code=0)


# ---------------------------------------------------------------------------------------------
# R-RUN-4: the definition cache


def _cached(env: Env) -> Path:
    """The definition cache of ``env``, written by a status once the definition is 2 s old."""
    from servicectl.definitions import cache

    env.run.mkdir(exist_ok=True)  # (a status makes no run directory; the cache needs one)
    changed = os.stat(env.services / "web.yaml").st_ctime
    wait_for(lambda: time.time() - changed > cache.RACY_NS / 1e9 + 0.2, what="a cacheable file")
    assert env.sc("status", "web").returncode == 3
    [path] = env.run.glob(".definitions-*.cache")
    return path


@pytest.mark.parametrize("forgery", ["other-type", "extra-field", "garbage", "not-marshal"])
def test_R_RUN_4_the_definition_cache_makes_only_definition_types(env: Env, forgery: str) -> None:
    """A cache entry naming a type that is not a definition's (here an exception that would
    say anything, or subprocess.Popen), a record with a field too many, or damage: the whole
    cache is ignored (the definition is read again) and rebuilt; nothing else is made."""
    import marshal

    from servicectl.definitions import cache, catalog

    env.write("web", f"command: [{PY}, -c, 'pass']\ndescription: the real one\n")
    path = _cached(env)
    context, entries, _ = cache.parse(path.read_bytes())
    [(name, (key, blob))] = entries.items()
    value = marshal.loads(blob)
    if forgery == "other-type":
        value = ["Popen", ["touch", str(env.root / "pwned")]]
    elif forgery == "extra-field":
        value = [*value, "one more"]
    if forgery == "garbage":
        payload = b"\x00garbage" * 64
    elif forgery == "not-marshal":
        payload = json.dumps({"context": list(context)}).encode()
    else:
        blob = marshal.dumps(value)
        index = {name: (key, 0, len(blob), ())}
        header = marshal.dumps({"format": cache.FORMAT, "context": context, "index": index})
        payload = len(header).to_bytes(cache.HEAD, "little") + header + blob
        assert cache.made(blob, catalog.record_types()) is None  # servicectl makes nothing
    path.write_bytes(payload)
    res = env.sc("status", "web")
    assert res.returncode == 3 and "the real one" in res.stdout + res.stderr, res.stdout
    assert not (env.root / "pwned").exists()
    _, rebuilt, _ = cache.parse(path.read_bytes())  # by that status, from the definition
    [(_, blob)] = rebuilt.values()
    entry = marshal.loads(blob)
    assert entry[0] == "Service" and "the real one" in entry


@pytest.mark.parametrize("damage", ["not-a-tuple", "not-names", "short-entry"])
def test_R_RUN_4_a_damaged_dependency_list_in_the_index_is_read_from_the_definition(
    env: Env, damage: str
) -> None:
    """The cache index's ``depends`` of an entry (what a stop reads instead of making every
    definition) that is not a tuple of names: that definition is made (from its entry) to
    read them; an index entry without it: the whole cache is ignored and rebuilt. Either way
    a stop still stops the dependent first."""
    import marshal

    from servicectl.definitions import cache

    env.write("db", f"command: [{PY}, -c, 'import time; time.sleep(300)']\nstart_grace: 0\n")
    env.write("web", f"command: [{PY}, -c, 'import time; time.sleep(300)']\ndepends: [db]\n")
    path = _cached(env)
    raw = path.read_bytes()
    size = int.from_bytes(raw[: cache.HEAD], "little")
    header = marshal.loads(raw[cache.HEAD : cache.HEAD + size])
    key, start, end, deps = header["index"]["web"]
    assert deps == ("db",)
    forged = {"not-a-tuple": (key, start, end, 7), "not-names": (key, start, end, (1, 2))}
    header["index"]["web"] = forged.get(damage, (key, start, end))
    head = marshal.dumps(header)
    body = raw[cache.HEAD + size :]
    path.write_bytes(len(head).to_bytes(cache.HEAD, "little") + head + body)
    assert "web: started" in env.sc("start", "web").stdout
    pids = (env.pid("db"), env.pid("web"))
    res = env.sc("stop", "db")
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if ": stopped" in line]
    assert lines[0].startswith("web: stopped") and "(it depends on db)" in lines[0], res.stdout
    assert lines[1].startswith("db: stopped")
    assert not any(alive(pid) for pid in pids)


@pytest.mark.parametrize("kind", ["symlink", "fifo", "group-writable", "another-owner"])
def test_R_RUN_4_a_cache_servicectl_did_not_write_is_not_read(env: Env, kind: str) -> None:
    """A symlink or a FIFO where the cache is (never followed, never blocking), a cache others
    could write or another user's: ignored; status answers from the definition itself."""
    env.write("web", f"command: [{PY}, -c, 'pass']\ndescription: the real one\n")
    path = _cached(env)
    good = path.read_bytes()
    path.unlink()
    if kind == "symlink":
        forged = env.root / "forged.cache"
        forged.write_bytes(good)
        path.symlink_to(forged)
    elif kind == "fifo":
        os.mkfifo(path, 0o600)
    else:
        path.write_bytes(good)
        if kind == "group-writable":
            path.chmod(0o620)
        else:
            os.chown(path, 65534, 65534)
    res = env.sc("status", "web")
    assert res.returncode == 3 and "the real one" in res.stdout + res.stderr, res.stdout
    if kind == "symlink":  # replaced by a cache of its own (a rename: the link's target is
        assert (env.root / "forged.cache").read_bytes() == good  # never written through)
    assert stat.S_ISREG(path.lstat().st_mode) and path.stat().st_uid == os.geteuid()
