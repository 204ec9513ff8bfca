"""The init.d-script keys through the real CLI: check_command (the config test), actions and the
``action`` command, directories, stop_schedule and $VARIABLE expansion; validation with
file-and-key errors, and the shims that express them."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import DAEMONS, PY, TAG_VAR, Env, alive, assert_ok, tagged_pids, wait_for

RECORDER = DAEMONS / "signal_recorder.py"


def recorder(env: Env, name: str, *flags: str, **extra: Any) -> Path:
    """A service running the signal recorder (``--stubborn``: survives TERM and INT); ready
    once its handlers are set. Returns the file it records signals in."""
    marker = env.root / f"{name}.signals"
    spec: dict[str, Any] = {
        "command": [PY, str(RECORDER), str(marker), *flags],
        "ready": {"file": str(marker)},
    }
    spec.update(extra)
    env.write(name, spec)
    return marker


def got(marker: Path, pid: int) -> list[str]:
    """The signals process ``pid`` recorded, in order."""
    lines = marker.read_text().splitlines() if marker.exists() else []
    return [line.split()[0] for line in lines if line.endswith(f" {pid}") and "ready" not in line]


def steps(signals: list[str]) -> tuple[list[str], int]:
    """The signals of a stop schedule in order, and how many SIGCONTs came with them. Each
    signal is followed by a SIGCONT at once; when both are pending together the kernel hands
    them to the process in either order, so only the schedule's own order is compared."""
    return [s for s in signals if s != "SIGCONT"], signals.count("SIGCONT")


def clear(res: subprocess.CompletedProcess[str], *words: str) -> None:
    text = res.stdout + res.stderr
    assert "Traceback" not in text, text
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"


# ---------------------------------------------------------------------------------------------
# Validation: file-and-key errors, through check


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("stop_schedule: QUIT/5/TERM\n", "stop_schedule", ["SIG/SECS pairs"]),
        ("stop_schedule: QUIT/x\n", "stop_schedule", ["step 1", "'x'", "seconds"]),
        ("stop_schedule: NOPE/5\n", "stop_schedule", ["step 1", "'NOPE'", "signal"]),
        ("stop_schedule: TERM/forever/KILL\n", "stop_schedule", ["forever"]),
        ("stop_schedule: QUIT/5\nstop_signal: INT\n", "stop_schedule", ["not both"]),
        ("stop_schedule: QUIT/5\nstop_timeout: 3\n", "stop_schedule", ["not both"]),
        ("check_command: []\n", "check_command", ["non-empty command"]),
        ("check_command: {a: 1}\n", "check_command", ["command line"]),
        ("directories: [run/x]\n", "directories[0].path", ["absolute path"]),
        ("directories: [/a/../b]\n", "directories[0].path", ["without .."]),
        ("directories: [{path: /a, mdoe: '0755'}]\n", "directories[0]", ["did you mean mode?"]),
        ("directories: [{path: /a, mode: '999'}]\n", "directories[0].mode", ["octal mode"]),
        ("directories: [{path: /a, owner: '-x'}]\n", "directories[0].owner", ["user name"]),
        ("directories: [{mode: '0755'}]\n", "directories[0].path", ["missing"]),
        ("directories: [/a, /a/]\n", "directories[1]", ["listed twice"]),
        ("directories: 5\n", "directories", ["list of paths"]),
        ("actions: [rotate]\n", "actions", ["mapping of verb"]),
        ("actions: {reload: {signal: HUP}}\n", "actions.reload", ["standard verb"]),
        ("actions: {9x: {signal: HUP}}\n", "actions", ["not a verb"]),
        ("actions: {rotate: USR1}\n", "actions.rotate", ["{signal: SIG} or {command: CMD}"]),
        ("actions: {rotate: {signal: NOPE}}\n", "actions.rotate.signal", ["signal name"]),
        ("actions: {t: {command: ''}}\n", "actions.t.command", ["non-empty"]),
        ("actions: {t: {signal: HUP, command: x}}\n", "actions.t", ["{signal: SIG}"]),
    ],
)
def test_bad_values_name_file_and_key(env: Env, text: str, where: str, words: list[str]) -> None:
    env.write("web", "command: sleep 1\n" + text)
    res = assert_ok(env.sc("check", "web"), 6)
    clear(res, f"web.yaml: {where}: ", *words)
    assert_ok(env.sc("start", "web"), 6)


def test_good_values_pass_check(env: Env) -> None:
    env.write(
        "web",
        "command: sleep 1\n"
        "check_command: [sh, -c, 'exit 0']\n"
        "stop_schedule: QUIT/5/TERM/5/KILL/5\n"
        'directories: [/run/x, {path: "{run_dir}/y", mode: "2775", owner: "0", group: "0"}]\n'
        "actions: {rotate: {signal: USR1}, configtest: {command: sh -c 'exit 0'}}\n",
    )
    assert_ok(env.sc("check", "web"))
    env.write("num", "command: sleep 1\nstop_schedule: 3\n")  # --retry 3: TERM/3/KILL/3
    assert_ok(env.sc("check", "num"))


# ---------------------------------------------------------------------------------------------
# stop_schedule


def test_schedule_sends_exactly_its_signals_in_order(env: Env) -> None:
    marker = recorder(env, "rec", "--stubborn", stop_schedule="QUIT/1/TERM/1/KILL/1")
    assert_ok(env.sc("start", "rec"))
    pid = env.pid("rec")
    res = assert_ok(env.sc("stop", "rec"))
    assert res.stdout.strip() == "rec: killed after 2 s"
    assert steps(got(marker, pid)) == (["SIGQUIT", "SIGTERM"], 2)
    assert not alive(pid) and env.files() == []


def test_a_middle_step_ends_the_schedule(env: Env) -> None:
    marker = recorder(env, "rec", stop_schedule="QUIT/5/TERM/5/KILL/5")  # exits on TERM
    assert_ok(env.sc("start", "rec"))
    pid = env.pid("rec")
    res = assert_ok(env.sc("stop", "rec"))
    assert res.stdout.startswith("rec: stopped after TERM (5 s)")
    order, conts = steps(got(marker, pid))
    assert order == ["SIGQUIT", "SIGTERM"] and conts in (1, 2)  # it exits at TERM


def test_stop_signal_and_timeout_mean_signal_then_kill(env: Env) -> None:
    marker = recorder(env, "rec", "--stubborn", stop_signal="USR2", stop_timeout=1)
    assert_ok(env.sc("start", "rec"))
    pid = env.pid("rec")
    res = assert_ok(env.sc("stop", "rec"))
    assert res.stdout.strip() == "rec: killed after 1 s"
    assert steps(got(marker, pid)) == (["SIGUSR2"], 1)


def test_surviving_the_whole_schedule_fails_and_stays_tracked(env: Env) -> None:
    marker = recorder(env, "rec", "--stubborn", stop_schedule="QUIT/0.2/TERM/0.2")
    assert_ok(env.sc("start", "rec"))
    pid = env.pid("rec")
    res = assert_ok(env.sc("stop", "rec"), 1)
    clear(res, "could not be stopped", f"process {pid} survived SIGTERM", "PID file is kept")
    assert alive(pid)
    want = (["SIGQUIT", "SIGTERM"], 2)
    wait_for(lambda: steps(got(marker, pid)) == want, what="the signals to be recorded")
    row = env.status_json("rec")["rec"]
    assert row["state"] == "running" and row["pid"] == pid
    assert_ok(env.sc("start", "rec"))  # still the same, tracked one
    assert env.pid("rec") == pid


# ---------------------------------------------------------------------------------------------
# check_command


def test_a_failed_config_test_refuses_start(env: Env) -> None:
    env.sleeper("web", check_command=["sh", "-c", "echo 'bad line 3' >&2; exit 3"])
    res = assert_ok(env.sc("start", "web"), 6)
    clear(res, "web: config test failed", "exited 3", "not started", "bad line 3")
    assert env.files() == [] and tagged_pids(env.tag) == []


def test_restart_with_a_broken_config_keeps_the_old_instance(env: Env) -> None:
    flag = env.root / "config-ok"
    flag.touch()
    env.sleeper("web", check_command=["test", "-e", str(flag)])
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    flag.unlink()
    res = assert_ok(env.sc("restart", "web"), 6)
    clear(res, "config test failed", f"still running (pid {pid})")
    assert alive(pid) and env.pid("web") == pid
    assert_ok(env.sc("status", "web"))
    flag.touch()
    assert_ok(env.sc("restart", "web"))
    assert env.pid("web") != pid


def test_reload_with_a_broken_config_sends_nothing(env: Env) -> None:
    flag = env.root / "config-ok"
    marker = recorder(env, "rec", check_command=["test", "-e", str(flag)], reload_signal="HUP")
    flag.touch()
    assert_ok(env.sc("start", "rec"))
    pid = env.pid("rec")
    flag.unlink()
    for action in ("reload", "force-reload"):
        res = assert_ok(env.sc(action, "rec"), 6)
        clear(res, "config test failed", "not reloaded")
    assert got(marker, pid) == [] and alive(pid)
    flag.touch()
    assert_ok(env.sc("reload", "rec"))
    wait_for(lambda: got(marker, pid) == ["SIGHUP"], what="the HUP")


def test_the_config_test_runs_as_the_service(env: Env, tmp_path: Path) -> None:
    out = env.root / "seen"
    (env.root / "wd").mkdir()
    (env.root / "web.env").write_text("FROM_FILE=file value\n")
    script = f'echo "$(pwd) $FROM_FILE $GREETING $(umask)" > {out}'
    env.sleeper(
        "web",
        check_command=["sh", "-c", script],
        working_directory=str(env.root / "wd"),
        env_file=str(env.root / "web.env"),
        environment={"GREETING": "hi"},
        umask="027",
    )
    res = assert_ok(env.sc("check", "web", "--run-checks"))
    assert "config test passed" in res.stdout
    assert out.read_text().split() == [str(env.root / "wd"), "file", "value", "hi", "0027"]


def test_the_config_test_runs_as_the_services_user(env: Env, user: Any) -> None:
    from faultkit import reachable_dir

    with reachable_dir() as shared:
        out = shared / "seen"
        os.chown(shared, user.uid, user.gid)
        env.write(
            "web",
            {
                "command": "sleep 300",
                "user": user.name,
                "check_command": ["sh", "-c", f"id -u > {out}; echo $HOME $USER >> {out}"],
            },
        )
        assert_ok(env.sc("check", "--run-checks", "web"))
        assert out.read_text().split()[:1] == [str(user.uid)]
        assert out.stat().st_uid == user.uid


def test_a_hanging_config_test_is_killed_at_start_timeout(env: Env) -> None:
    env.sleeper("web", check_command=["sh", "-c", "sleep 60 & sleep 60"], start_timeout=0.5)
    res = assert_ok(env.sc("start", "web"), 6)
    clear(res, "did not finish within start_timeout 0.5 s")
    wait_for(lambda: tagged_pids(env.tag) == [], what="the config test and its child to go")
    assert env.files() == []


def test_config_test_output_is_bounded(env: Env) -> None:
    noise = "import sys; sys.stdout.write('x' * 50_000_000 + '\\nlast words\\n'); sys.exit(1)"
    env.sleeper("web", check_command=[PY, "-c", noise])
    res = assert_ok(env.sc("start", "web"), 6)
    clear(res, "last words")
    assert len(res.stderr) < 200_000


def test_an_interrupted_restart_leaves_the_old_instance_serving(env: Env) -> None:
    slow, started = env.root / "slow", env.root / "testing"
    test = f"if [ -e {slow} ]; then touch {started}; exec sleep 60; fi"
    env.sleeper("web", check_command=["sh", "-c", test])
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    slow.touch()
    p = env.popen("restart", "web")
    wait_for(started.exists, what="the config test to run")
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130 and "Traceback" not in err
    assert "during its config test" in err and "nothing was stopped" in err
    assert alive(pid) and env.pid("web") == pid
    wait_for(lambda: tagged_pids(env.tag) == [pid], what="the config test to be killed")
    assert_ok(env.sc("status", "web"))


def test_check_run_checks(env: Env) -> None:
    env.sleeper("ok", check_command=["true"])
    env.sleeper("bad", check_command=["false"])
    env.sleeper("plain")
    res = assert_ok(env.sc("check", "--run-checks", "ok", "plain"))
    assert "ok: ok (" in res.stdout and "config test passed" in res.stdout
    assert "nothing to run" in res.stdout
    res = assert_ok(env.sc("check", "--run-checks"), 6)
    clear(res, "bad: config test failed: false exited 1")
    assert_ok(env.sc("check"))  # without --run-checks nothing runs


# ---------------------------------------------------------------------------------------------
# actions and servicectl action


def test_signal_action(env: Env) -> None:
    marker = recorder(env, "rec", actions={"rotate": {"signal": "USR1"}, "dump": {"signal": 12}})
    res = assert_ok(env.sc("action", "rec", "rotate"), 7)
    clear(res, "not running")
    assert_ok(env.sc("start", "rec"))
    pid = env.pid("rec")
    res = assert_ok(env.sc("action", "rec", "rotate"))
    assert res.stdout.strip() == f"rec: rotate: SIGUSR1 sent to pid {pid}"
    wait_for(lambda: got(marker, pid) == ["SIGUSR1"], what="the USR1")  # handled meanwhile
    assert_ok(env.sc("action", "rec", "dump"))
    wait_for(lambda: got(marker, pid) == ["SIGUSR1", "SIGUSR2"], what="the USR2")


def test_unknown_verbs_service_and_definition(env: Env) -> None:
    recorder(env, "rec", actions={"rotate": {"signal": "USR1"}, "upgrade": {"signal": "USR2"}})
    env.sleeper("plain")
    res = assert_ok(env.sc("action", "rec", "nope"), 2)
    clear(res, "no action 'nope'", "its actions: rotate, upgrade")
    res = assert_ok(env.sc("action", "plain", "rotate"), 2)
    clear(res, "it has no actions")
    res = assert_ok(env.sc("action", "ghost", "rotate"), 5)
    clear(res, "no such service")
    env.write("broken", "command: x\nactions: 5\n")
    assert_ok(env.sc("action", "broken", "rotate"), 6)
    assert_ok(env.sc("action", "rec"), 2)  # usage: the verb is missing


def test_signal_action_refuses_a_signal_that_would_kill(env: Env) -> None:
    env.sleeper("web", actions={"rotate": {"signal": "USR1"}})  # the sleeper ignores nothing
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    res = assert_ok(env.sc("action", "web", "rotate"), 1)
    clear(res, f"process {pid} does not handle SIGUSR1")
    assert alive(pid)


def test_signal_action_never_reaches_a_forged_pid_file(env: Env, tmp_path: Path) -> None:
    from faultkit import Recorder

    decoy = Recorder(tmp_path, env.tag)
    try:
        env.sleeper("web", actions={"rotate": {"signal": "USR1"}})
        env.run.mkdir(exist_ok=True)
        (env.run / "web.pid").write_text(f"{decoy.pid}\n")  # no record: user+exe must match
        res = assert_ok(env.sc("action", "web", "rotate"), 7)
        clear(res, "not running")
        decoy.assert_untouched()
    finally:
        decoy.close()


def test_command_action_gets_the_environment_and_mainpid(env: Env) -> None:
    out = env.root / "seen"
    env.sleeper(
        "web",
        environment={"GREETING": "hi"},
        actions={"show": {"command": ["sh", "-c", f'echo "$GREETING ${{MAINPID:-none}}" > {out}']}},
    )
    res = assert_ok(env.sc("action", "web", "show"))  # not running: runs, without MAINPID
    assert out.read_text().split() == ["hi", "none"]
    assert "show: done" in res.stdout
    assert_ok(env.sc("start", "web"))
    pid = env.pid("web")
    assert_ok(env.sc("action", "web", "show"))
    assert out.read_text().split() == ["hi", str(pid)]


def test_command_action_failure_shows_its_output(env: Env) -> None:
    env.sleeper("web", actions={"t": {"command": ["sh", "-c", "echo 'it broke'; exit 4"]}})
    res = assert_ok(env.sc("action", "web", "t"), 1)
    clear(res, "t failed", "exited 4", "it broke")


def test_command_action_runs_as_the_services_user(env: Env, user: Any) -> None:
    from faultkit import reachable_dir

    with reachable_dir() as shared:
        os.chown(shared, user.uid, user.gid)
        out = shared / "seen"
        env.write(
            "web",
            {
                "command": "sleep 300",
                "user": user.name,
                "actions": {
                    "who": {"command": ["sh", "-c", f"id -u > {out}; echo $MAINPID >> {out}"]}
                },
            },
        )
        assert_ok(env.sc("start", "web"))
        pid = env.pid("web")
        assert_ok(env.sc("action", "web", "who"))
        assert out.read_text().split() == [str(user.uid), str(pid)]


# ---------------------------------------------------------------------------------------------
# directories


def _mode(path: Path) -> tuple[int, int, int]:
    st = os.lstat(path)
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def test_directories_are_made_with_owner_and_mode(env: Env, user: Any) -> None:
    from faultkit import reachable_dir

    with reachable_dir() as base:
        a, b = base / "x" / "y" / "a", base / "b"
        env.write(
            "web",
            {
                "command": "sleep 300",
                "user": user.name,
                "directories": [str(a), {"path": str(b), "mode": "2770", "owner": "root"}],
            },
        )
        # servicectl itself under umask 077: the parents are made 0755 all the same
        res = subprocess.run(
            [*env.base_args(), "start", "web"],
            capture_output=True,
            text=True,
            preexec_fn=lambda: os.umask(0o077),  # noqa: PLW1509 - a test's own child
            env={**os.environ, TAG_VAR: env.tag},
        )
        assert_ok(res)
        assert _mode(base / "x") == (0o755, 0, 0) and _mode(base / "x" / "y") == (0o755, 0, 0)
        assert _mode(a) == (0o755, user.uid, user.gid)
        assert _mode(b) == (0o2770, 0, 0)
        os.chmod(a, 0o700)  # an existing one is set right again at the next start
        assert_ok(env.sc("restart", "web"))
        assert _mode(a) == (0o755, user.uid, user.gid)
        assert_ok(env.sc("stop", "web"))
        assert a.is_dir() and b.is_dir()  # never removed


def test_a_symlink_or_file_in_place_is_refused_and_left_alone(env: Env) -> None:
    target = env.root / "elsewhere"
    target.mkdir(mode=0o700)
    link = env.root / "rundir"
    link.symlink_to(target)
    env.sleeper("web", directories=[{"path": str(link), "mode": "0777"}])
    res = assert_ok(env.sc("start", "web"), 6)
    clear(res, f"{link} is a symlink (to {target})", "neither follows nor changes it")
    assert _mode(target)[0] == 0o700 and link.is_symlink()
    assert env.files() == [] and tagged_pids(env.tag) == []
    plain = env.root / "plainfile"
    plain.write_text("x")
    env.sleeper("web", directories=[str(plain)])
    res = assert_ok(env.sc("start", "web"), 6)
    clear(res, "is a regular file, not a directory")
    assert_ok(env.sc("check", "--run-checks", "web"), 6)


def test_a_parent_symlink_only_where_root_alone_could_plant_it(env: Env, user: Any) -> None:
    from faultkit import reachable_dir

    with reachable_dir() as base:
        real = base / "real"
        real.mkdir(mode=0o755)
        (base / "varrun").symlink_to(real)  # root's, like /var/run -> /run
        env.sleeper("ok", directories=[str(base / "varrun" / "svc")])
        assert_ok(env.sc("start", "ok"))
        assert (real / "svc").is_dir()
        theirs = base / "theirs"
        theirs.mkdir()
        os.chown(theirs, user.uid, user.gid)
        victim = base / "victim"
        victim.mkdir(mode=0o700)
        (theirs / "link").symlink_to(victim)
        env.sleeper("bad", directories=[{"path": str(theirs / "link" / "x"), "mode": "0777"}])
        res = assert_ok(env.sc("start", "bad"), 4)
        clear(res, "does not follow it")
        assert list(victim.iterdir()) == [] and _mode(victim)[0] == 0o700


def test_an_existing_directory_planted_by_another_user_is_not_taken(env: Env, user: Any) -> None:
    from faultkit import reachable_dir

    with reachable_dir() as base:
        base.chmod(0o1777)  # like /tmp
        planted = base / "svc"
        planted.mkdir()
        os.chown(planted, user.uid, user.gid)
        env.sleeper("web", directories=[str(planted)])
        res = assert_ok(env.sc("start", "web"), 4)
        clear(res, f"belongs to uid {user.uid}", "does not hand it over")
        assert _mode(planted)[1] == user.uid


# ---------------------------------------------------------------------------------------------
# $VARIABLE expansion


ARGV = (
    "import json, os, sys, time; p = sys.argv[1]; open(p + '.t', 'w').write(json.dumps("
    "sys.argv[2:])); os.rename(p + '.t', p); time.sleep(300)"
)


def test_variables_expand_in_command(env: Env) -> None:
    import json

    out = env.root / "argv"
    (env.root / "web.env").write_text('DAEMON_OPTS="-a -b  c"\nEMPTY=\n')
    env.write(
        "web",
        {
            "command": [
                PY,
                "-c",
                ARGV,
                str(out),
                "$DAEMON_OPTS",
                "$EMPTY",
                "x${WHO}y",
                "a$WHO",
                "$$WHO",
                "${UNSET}",
            ],  # fmt: skip
            "env_file": str(env.root / "web.env"),
            "environment": {"WHO": "me"},
            "ready": {"file": str(out)},
            "start_grace": 0.1,
        },
    )
    res = assert_ok(env.sc("check", "web"))
    clear(res, "warning: command: $UNSET is not set")
    assert_ok(env.sc("start", "web"))
    assert json.loads(out.read_text()) == ["-a", "-b", "c", "xmey", "a$WHO", "$WHO", ""]


def test_variables_expand_in_every_command(env: Env) -> None:
    seen = env.root / "seen"
    env.sleeper(
        "web",
        environment={"WHERE": str(seen), "WORD": "w"},
        check_command=["sh", "-c", "echo check >> $0", "$WHERE"],
        ready={"command": ["sh", "-c", "echo ready${WORD} >> $0", "$WHERE"]},
        reload_command=["sh", "-c", "echo reload >> $0", "$WHERE"],
        actions={"act": {"command": ["sh", "-c", "echo act >> $0", "$WHERE"]}},
    )
    assert_ok(env.sc("start", "web"))
    assert_ok(env.sc("reload", "web"))
    assert_ok(env.sc("action", "web", "act"))
    lines = seen.read_text().split()
    assert lines[0] == "check" and "readyw" in lines and lines[-3:] == ["check", "reload", "act"]


def test_a_command_that_expands_to_nothing(env: Env) -> None:
    env.write("web", "command: $NOTHING\n")
    res = assert_ok(env.sc("check", "web"))
    clear(res, "$NOTHING is not set")
    res = assert_ok(env.sc("start", "web"), 6)
    clear(res, "web.yaml: command: is empty once its variables are expanded (NOTHING not set)")


# ---------------------------------------------------------------------------------------------
# Shims and units


def test_initd_shim_hands_actions_to_servicectl(env: Env, tmp_path: Path) -> None:
    marker = recorder(env, "rec", actions={"rotate": {"signal": "USR1"}})
    out = tmp_path / "initd"
    out.mkdir()
    assert_ok(env.sc("initd", "--dir", str(out), "rec"))
    shim = out / "rec"
    text = shim.read_text()
    assert "start|stop|restart|try-restart|reload|force-reload|status|rotate}" in text
    assert subprocess.run(["sh", "-n", str(shim)]).returncode == 0
    shellcheck = Path(sys.executable).parent / "shellcheck"
    if shellcheck.exists():
        res = subprocess.run([str(shellcheck), str(shim)], capture_output=True, text=True)
        assert res.returncode == 0, res.stdout
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECTL_")}
    assert subprocess.run([str(shim), "start"], env=environ).returncode == 0
    pid = env.pid("rec")
    res = subprocess.run([str(shim), "rotate"], env=environ, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    wait_for(lambda: got(marker, pid) == ["SIGUSR1"], what="the USR1")
    res = subprocess.run([str(shim), "nope"], env=environ, capture_output=True, text=True)
    assert res.returncode == 2 and "|rotate}" in res.stderr
    assert subprocess.run([str(shim), "stop"], env=environ).returncode == 0


def test_unit_expresses_the_config_test_and_the_schedule(env: Env, tmp_path: Path) -> None:
    from test_shims import _systemd_verify

    env.write(
        "web",
        "command: sleep 1\ncheck_command: [nginx, -t]\nstop_schedule: QUIT/20/TERM/20/KILL/5\n"
        "reload: false\nactions: {rotate: {signal: USR1}}\n",
    )
    env.write("plain", "command: sleep 1\n")
    text = assert_ok(env.sc("unit", "--stdout", "web")).stdout
    assert "ExecStartPre=" in text and " check --run-checks web" in text
    assert "ExecReload" not in text.replace("# No ExecReload=", "")
    assert "TimeoutStopSec=55" in text  # 40 s of schedule + 15
    assert "servicectl action web rotate" in text
    plain = assert_ok(env.sc("unit", "--stdout", "plain")).stdout
    assert "ExecStartPre" not in plain and "ExecReload=" in plain
    out = tmp_path / "units"
    out.mkdir()
    assert_ok(env.sc("unit", "--dir", str(out), "web", "plain"))
    _systemd_verify(sorted(out.glob("*.service")))


# ---------------------------------------------------------------------------------------------
# A forking daemon whose parent writes the PID file before the child's setsid (Debian's nginx)

LATE_SETSID = """
import os, sys, time
pid = os.fork()
if pid:
    open(sys.argv[1], "w").write(f"{pid}\\n")  # the parent writes it, as Debian's nginx does
    os._exit(0)
time.sleep(0.2)
os.setsid()
time.sleep(300)
"""


def test_a_late_setsid_is_recorded(env: Env) -> None:
    import json

    pid_file = env.root / "late.pid"
    env.write(
        "late",
        {
            "type": "forking",
            "command": [PY, "-c", LATE_SETSID, str(pid_file)],
            "pid_file": str(pid_file),
            "start_grace": 0.5,
        },  # fmt: skip
    )
    assert_ok(env.sc("start", "late"))
    pid = env.pid("late", pid_file)
    record = json.loads((env.run / "late.state").read_text())
    assert (record["sid"], record["pgid"]) == (pid, pid) == (os.getsid(pid), os.getpgid(pid))
    assert_ok(env.sc("stop", "late"))
    assert not alive(pid)
