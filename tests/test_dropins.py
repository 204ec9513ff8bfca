"""Drop-ins (NAME.d/*.yaml), enable, disable, cat and edit, through the real CLI: merging key
by key and environment by variable, errors naming the drop-in, the cache keyed on drop-ins,
startall following enable/disable, edit with a scripted editor, and the trust rule."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

import pytest
from conftest import DAEMONS, PY, TAG_VAR, Env, assert_ok, wait_for

from servicectl.definitions.catalog import load_catalog

if TYPE_CHECKING:
    from pathlib import Path


def dropin(env: Env, name: str, fname: str, text: str) -> Path:
    directory = env.services / f"{name}.d"
    directory.mkdir(exist_ok=True)
    path = directory / fname
    path.write_text(text)
    return path


def described(env: Env) -> dict[str, Any]:
    return {r["name"]: r for r in json.loads(assert_ok(env.sc("list", "--json")).stdout)}


def states(env: Env) -> dict[str, str]:
    return {n: row["state"] for n, row in env.status_json().items()}


def editor(env: Env, body: str) -> dict[str, str]:
    """An EDITOR that edits its file argument without a terminal ($1)."""
    script = env.root / f"editor-{len(list(env.root.glob('editor-*')))}.sh"
    script.write_text(f"#!/bin/sh\nset -e\n{body}\n")
    script.chmod(0o755)
    return {"EDITOR": str(script), "VISUAL": ""}


def test_a_dropin_changes_a_key_and_cat_shows_both(env: Env) -> None:
    web = env.write("web", "description: packaged\ncommand: sleep 100\nstop_timeout: 9\n")
    assert described(env)["web"]["description"] == "packaged"
    first = dropin(env, "web", "20-desc.yaml", "description: local\n")
    dropin(env, "web", "10-desc.yaml", "description: overridden by 20\n")
    dropin(env, "web", ".hidden.yaml", "description: hidden files are ignored\n")
    dropin(env, "web", "30-backup.yaml~", "description: so are backups\n")
    assert described(env)["web"]["description"] == "local"
    out = assert_ok(env.sc("cat", "web")).stdout
    assert out == (
        f"# {web}\n{web.read_text()}\n"
        f"# {env.services}/web.d/10-desc.yaml\ndescription: overridden by 20\n\n"
        f"# {first}\ndescription: local\n"
    )
    res = assert_ok(env.sc("check", "web"))
    assert str(first) in res.stdout
    assert_ok(env.sc("cat", "nosuch"), 5)


def test_environment_merges_by_variable(env: Env) -> None:
    dump = env.root / "env.json"
    env.write(
        "web",
        {
            "command": [PY, str(DAEMONS / "sleeper.py"), "--env-dump", str(dump)],
            "start_grace": 0.1,
            "environment": {"A": "1", "B": "2"},
        },
    )
    dropin(env, "web", "10.yaml", "environment: {B: '3', C: '4'}\n")
    dropin(env, "web", "20.yaml", "environment: {A: null}\n")
    assert_ok(env.sc("start", "web"))
    environ = json.loads(wait_for(dump.exists) and dump.read_text().splitlines()[0])
    assert "A" not in environ and environ["B"] == "3" and environ["C"] == "4"
    assert environ[TAG_VAR] == env.tag  # the definition's own variable is kept
    assert_ok(env.sc("stop", "web"))


def test_errors_name_the_dropin_and_key(env: Env) -> None:
    env.write("web", "command: sleep 100\nenvironment: {A: '1'}\n")
    env.sleeper("other")
    typo = dropin(env, "web", "10-typo.yaml", "stop_timout: 5\n")
    res = assert_ok(env.sc("check", "web"), 6)
    assert f"{typo}: stop_timout: unknown key (did you mean stop_timeout?)" in res.stderr
    assert_ok(env.sc("start", "web"), 6)
    typo.write_text("environment: {B: yes}\n")
    res = assert_ok(env.sc("check", "web"), 6)
    assert f"{typo}: environment.B: found true" in res.stderr
    typo.write_text("ready: {tcp: nowhere}\n")
    assert f"{typo}: ready.tcp:" in assert_ok(env.sc("check", "web"), 6).stderr
    typo.write_text("stop_timeout: [1\n")
    assert f"{typo}: not valid YAML" in assert_ok(env.sc("check", "web"), 6).stderr
    typo.write_text("- a list\n")
    assert f"{typo}: found a list, expected a mapping" in assert_ok(env.sc("check"), 6).stderr
    typo.unlink()
    os.mkfifo(typo)  # a FIFO never hangs a command
    assert f"{typo}: not a regular file" in assert_ok(env.sc("check", "web"), 6).stderr
    typo.unlink()
    (env.services / "web.d").rmdir()
    (env.services / "web.d").write_text("not a directory\n")
    assert "not a directory" in assert_ok(env.sc("check", "web"), 6).stderr
    assert "other: ok" in assert_ok(env.sc("check", "other")).stdout  # the others work


def test_a_changed_dropin_is_never_served_stale(env: Env) -> None:
    """The definition cache keys on the drop-ins: with web.yaml unchanged and cached, an edited
    drop-in is seen at once (through the real CLI, with files old enough to be cached)."""
    env.run.mkdir()  # the cache lives there
    env.write("web", "command: sleep 100\n")
    path = dropin(env, "web", "10.yaml", "description: one\n")
    changed = max(path.stat().st_ctime, path.parent.stat().st_ctime)
    wait_for(lambda: time.time() - changed > 2.5, what="the files to be cacheable")
    assert described(env)["web"]["description"] == "one"
    assert any(p.name.startswith(".definitions-") for p in env.run.iterdir())
    assert described(env)["web"]["description"] == "one"  # from the cache
    path.write_text("description: two\n")  # the same size
    assert described(env)["web"]["description"] == "two"


def test_the_cache_keys_on_every_dropin(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Added, edited, removed drop-ins and drop-in directories, and a template's drop-ins
    for its instances, each change what is loaded at once; unchanged, nothing is parsed."""
    from servicectl.definitions import cache, catalog

    monkeypatch.setattr(cache, "RACY_NS", 0)
    env.run.mkdir()
    env.write("web", "command: sleep 1\nstop_timeout: 5\n")
    env.write("t@", "command: sleep 1\ninstances: [a]\n")

    def loaded() -> tuple[float, float]:
        cat = load_catalog(env.dirs)
        return cat.services["web"].stop_timeout, cat.services["t@a"].stop_timeout

    assert loaded() == (5, 30)
    real = catalog.load_file
    monkeypatch.setattr(catalog, "load_file", lambda *a: pytest.fail("parsed"))
    assert loaded() == (5, 30)
    monkeypatch.setattr(catalog, "load_file", real)
    path = dropin(env, "web", "10.yaml", "stop_timeout: 6\n")
    assert loaded() == (6, 30)
    path.write_text("stop_timeout: 7\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # past any coarse clock tick
    assert loaded() == (7, 30)
    dropin(env, "web", "20.yaml", "stop_timeout: 8\n")
    assert loaded() == (8, 30)
    (env.services / "web.d" / "20.yaml").unlink()
    assert loaded() == (7, 30)
    path.unlink()
    (env.services / "web.d").rmdir()
    assert loaded() == (5, 30)
    dropin(env, "t@", "10.yaml", "stop_timeout: 11\n")
    assert loaded() == (5, 11)
    dropin(env, "t@a", "10.yaml", "stop_timeout: 12\n")
    assert loaded() == (5, 12)


def test_template_and_instance_dropins_apply_in_order(env: Env) -> None:
    template = env.write("t@", "command: sleep 100\ndescription: template\ninstances: [a, b]\n")
    shared = dropin(env, "t@", "10.yaml", "description: shared\n")
    own = dropin(env, "t@a", "10.yaml", "description: own\n")
    rows = described(env)
    assert rows["t@a"]["description"] == "own" and rows["t@b"]["description"] == "shared"
    out = assert_ok(env.sc("cat", "t@a")).stdout
    assert out.index(str(template)) < out.index(str(shared)) < out.index(str(own))
    assert str(own) not in assert_ok(env.sc("cat", "t@b")).stdout


def test_disable_removes_from_startall_and_enable_puts_back(env: Env) -> None:
    env.sleeper("a")
    env.sleeper("b")
    res = assert_ok(env.sc("disable", "b"))
    written = env.services / "b.d" / "50-enabled.yaml"
    assert str(written) in res.stdout and "enabled: false" in written.read_text()
    assert oct(written.stat().st_mode & 0o777) == "0o644"
    assert "already disabled" in assert_ok(env.sc("disable", "b")).stdout
    assert described(env)["b"]["enabled"] is False
    assert_ok(env.sc("startall"))
    assert states(env) == {"a": "running", "b": "stopped"}
    assert_ok(env.sc("enable", "b"))
    assert "enabled: true" in written.read_text()
    assert "already enabled" in assert_ok(env.sc("enable", "b", "a")).stdout
    res = assert_ok(env.sc("startall"))
    assert "b: started" in res.stdout
    assert states(env) == {"a": "running", "b": "running"}
    assert_ok(env.sc("disable", "a"))  # a running service keeps running
    assert states(env)["a"] == "running"
    assert_ok(env.sc("enable", "nosuch"), 5)
    env.write("bad", "command: sleep 1\nstop_timout: 1\n")
    assert_ok(env.sc("disable", "bad"), 6)
    assert not (env.services / "bad.d").exists()
    assert_ok(env.sc("stopall"))


def test_enable_and_disable_of_templates_and_instances(env: Env) -> None:
    env.write("t@", {"command": [PY, str(DAEMONS / "sleeper.py")], "instances": ["a", "b"]})
    assert_ok(env.sc("disable", "t@"))  # every instance out of startall
    assert_ok(env.sc("enable", "t@a"))  # the instance's own drop-in applies after
    assert (env.services / "t@.d" / "50-enabled.yaml").exists()
    assert (env.services / "t@a.d" / "50-enabled.yaml").exists()
    assert_ok(env.sc("startall"))
    assert states(env) == {"t@a": "running", "t@b": "stopped"}
    res = assert_ok(env.sc("enable", "t@c"))
    assert "startall starts only the instances listed" in res.stdout
    assert_ok(env.sc("disable", "t@a/b"), 2)
    assert_ok(env.sc("stopall"))


def test_a_later_dropin_wins_over_enable(env: Env) -> None:
    env.sleeper("web")
    later = dropin(env, "web", "90-off.yaml", "enabled: false\n")
    res = assert_ok(env.sc("enable", "web"), 1)
    assert str(later) in res.stderr and "still not enabled" in res.stderr


def test_enable_never_writes_through_a_symlink(env: Env) -> None:
    env.sleeper("web")
    elsewhere = env.root / "elsewhere"
    elsewhere.mkdir()
    (env.services / "web.d").symlink_to(elsewhere)
    res = assert_ok(env.sc("disable", "web"), 1)
    assert "is a symlink" in res.stderr and not list(elsewhere.iterdir())
    (env.services / "web.d").unlink()
    (env.services / "web.d").mkdir()
    victim = env.root / "victim"
    victim.write_text("enabled: true  # precious\n")
    (env.services / "web.d" / "50-enabled.yaml").symlink_to(victim)
    res = assert_ok(env.sc("disable", "web"))  # the link is replaced, its target untouched
    assert victim.read_text() == "enabled: true  # precious\n"
    assert not (env.services / "web.d" / "50-enabled.yaml").is_symlink()
    assert described(env)["web"]["enabled"] is False


def test_edit_installs_a_valid_override(env: Env) -> None:
    env.sleeper("web")
    change = editor(env, 'printf "description: edited\\nstop_timeout: 3\\n" >> "$1"')
    res = assert_ok(env.sc("edit", "web", extra_env=change))
    override = env.services / "web.d" / "override.yaml"
    assert f"installed {override}" in res.stdout
    assert "description: edited" in override.read_text()
    assert described(env)["web"]["description"] == "edited"
    assert [p.name for p in override.parent.iterdir()] == ["override.yaml"]  # no copy left
    again = editor(env, "sed -i 's/edited/edited twice/' \"$1\"")
    assert_ok(env.sc("edit", "web", extra_env=again))
    assert described(env)["web"]["description"] == "edited twice"
    res = assert_ok(env.sc("edit", "web", extra_env={"EDITOR": "true", "VISUAL": ""}))
    assert "unchanged" in res.stdout
    emptied = editor(env, ': > "$1"')
    assert "removed" in assert_ok(env.sc("edit", "web", extra_env=emptied)).stdout
    assert not override.exists()
    assert described(env)["web"]["description"] == "test sleeper web"


def test_edit_keeps_an_invalid_copy_and_the_installed_override(env: Env) -> None:
    env.sleeper("web")
    override = dropin(env, "web", "override.yaml", "description: good\n")
    before = override.read_bytes()
    typo = editor(env, 'printf "stop_timout: 3\\n" >> "$1"')
    res = assert_ok(env.sc("edit", "web", extra_env=typo), 6)
    copies = [p for p in override.parent.iterdir() if p.name != "override.yaml"]
    assert len(copies) == 1 and copies[0].name.startswith(".")
    assert f"{copies[0]}: stop_timout: unknown key" in res.stderr
    assert f"kept in {copies[0]}" in res.stderr
    assert override.read_bytes() == before and "stop_timout" in copies[0].read_text()
    assert described(env)["web"]["description"] == "good"
    assert_ok(env.sc("check", "web"))  # the hidden copy is not a drop-in
    cycle = editor(env, 'printf "depends: [web]\\n" >> "$1"')
    assert "cannot depend on itself" in assert_ok(env.sc("edit", "web", extra_env=cycle), 6).stderr
    failing = editor(env, 'printf "x: 1\\n" >> "$1"; exit 3')
    res = assert_ok(env.sc("edit", "web", extra_env=failing), 1)
    assert "status 3" in res.stderr and override.read_bytes() == before
    res = assert_ok(env.sc("edit", "web", extra_env={"EDITOR": "/nonexistent/ed", "VISUAL": ""}), 1)
    assert "cannot run the editor" in res.stderr and "Traceback" not in res.stderr


def test_edit_of_a_new_override_and_of_an_instance(env: Env) -> None:
    env.write("t@", {"command": [PY, str(DAEMONS / "sleeper.py")], "instances": ["a"]})
    res = assert_ok(env.sc("edit", "t@a", extra_env={"EDITOR": "true", "VISUAL": ""}))
    assert "unchanged" in res.stdout and not (env.services / "t@a.d").exists()
    change = editor(env, 'printf "description: instance a\\n" >> "$1"')
    assert_ok(env.sc("edit", "t@a", extra_env=change))
    assert (env.services / "t@a.d" / "override.yaml").exists()
    assert described(env)["t@a"]["description"] == "instance a"
    bad = editor(env, 'printf "ready: {tcp: \\"x:{instance}\\"}\\n" >> "$1"')
    res = assert_ok(env.sc("edit", "t@", extra_env=bad), 6)  # invalid for every instance
    assert "ready.tcp" in res.stderr and not (env.services / "t@.d" / "override.yaml").exists()
    assert_ok(env.sc("edit", "nosuch", extra_env=change), 5)
    assert_ok(env.sc("edit", "t@a/b", extra_env=change), 2)


@pytest.mark.skipif(os.geteuid() != 0, reason="the trust rule applies to root")
def test_dropins_others_could_write_are_refused(env: Env) -> None:
    """As root, a drop-in directory or file that another user could write makes the service
    unusable (4), with the fix; the other services work, and enable/edit refuse to write."""
    env.sleeper("web")
    env.sleeper("other")
    path = dropin(env, "web", "10.yaml", "description: local\n")
    for target, mode in ((path, 0o664), (path.parent, 0o777), (path.parent, 0o775)):
        target.chmod(mode)
        res = assert_ok(env.sc("start", "web"), 4)
        assert str(target) in res.stderr and "chmod go-w" in res.stderr
        assert env.status_json("web")["web"]["state"] == "invalid"
        if target == path.parent:
            assert_ok(env.sc("disable", "web"), 4)
            assert_ok(env.sc("edit", "web", extra_env={"EDITOR": "true", "VISUAL": ""}), 4)
        target.chmod(0o755 if target == path.parent else 0o644)
    os.chown(path, 1, -1)
    assert "chown root" in assert_ok(env.sc("start", "web"), 4).stderr
    os.chown(path, 0, -1)
    assert_ok(env.sc("start", "other"))
    assert_ok(env.sc("start", "web"))
    assert_ok(env.sc("stopall"))
