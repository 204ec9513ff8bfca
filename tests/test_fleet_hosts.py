"""The Ansible collection over ssh on three real, isolated hosts built on this machine.

Each host is a network namespace (veth to a bridge in a fourth namespace, the controller's, on
a subnet that exists only inside them) running its own sshd, hostname, host key and private
/etc, /opt, /usr/local, /var/log, /root (overlays over the machine's, upper layers in this
test's temporary directory) and /run (a tmpfs). ansible-playbook runs in the controller's
namespace and logs in as root with a throwaway key. The web services on the hosts are asked,
over HTTP from the controller's namespace, which definition they run. At the end every process
in those namespaces is killed by PID and the namespaces are deleted.

What it costs (2 cores): building the hosts about 1 s; the rolling update and its reruns
about 40 s; the role (three offline pip installs in parallel) about 30 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from conftest import DAEMONS, ROOT, SERVICECTL, TAG_VAR, alive, kill_pids, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator

pytest.importorskip("ansible", reason="ansible-core is not installed (pip install -e '.[test]')")

from test_ansible import ansible_env, doc_playbook, tool  # noqa: E402

NET = "10.213.57"  # exists only inside the test's namespaces
CONTROLLER_IP = f"{NET}.1"
HOST_PYTHON = "/usr/bin/python3"  # the hosts' python: Ansible runs its modules with it
GROUP = "group/servicectl.servicectl.all"
SERVER = str(DAEMONS / "version_server.py")
OVERLAID = ("etc", "opt", "usr/local", "var/log", "root")
SSHD = "/usr/sbin/sshd"


def run(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: exit {res.returncode}\n{res.stdout}{res.stderr}")
    return res


def why_not() -> str | None:
    """Why three hosts cannot be built here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, mounts, sshd)"
    for prog in ("ip", "unshare", "nsenter", "ssh", "ssh-keygen"):
        if shutil.which(prog) is None:
            return f"{prog} is not installed (.ci/run installs openssh-server and iproute2)"
    if not os.access(SSHD, os.X_OK):
        return f"{SSHD} is not installed (openssh-server; .ci/run installs it)"
    probe = f"scf-probe-{os.getpid()}"
    made = run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"network namespaces cannot be made here: {made.stderr.strip()}"
    try:
        bridge = run("ip", "-n", probe, "link", "add", "br0", "type", "bridge", check=False)
        if bridge.returncode != 0:
            return f"no bridge in a network namespace: {bridge.stderr.strip()}"
    finally:
        run("ip", "netns", "del", probe, check=False)
    with tempfile.TemporaryDirectory() as tmp:
        for d in ("lower", "upper", "work", "merged"):
            os.mkdir(os.path.join(tmp, d))
        opts = f"lowerdir={tmp}/lower,upperdir={tmp}/upper,workdir={tmp}/work"
        probe_mount = f"mount -t overlay overlay -o {opts} {tmp}/merged && touch {tmp}/merged/x"
        mount = run("unshare", "--mount", "sh", "-c", probe_mount, check=False)
    if mount.returncode != 0:
        return f"mount namespaces or overlayfs cannot be had: {mount.stderr.strip()}"
    return None


# ---------------------------------------------------------------------------------------------
# The hosts


@dataclass
class Host:
    name: str
    ns: str
    ip: str
    root: Path
    sshd: subprocess.Popen[bytes] | None = None

    def path(self, path: str) -> Path:
        """``path`` as the host sees it (through its sshd's mount namespace)."""
        assert self.sshd is not None
        return Path(f"/proc/{self.sshd.pid}/root") / path.lstrip("/")

    def on(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command on the host (its mount, UTS and network namespaces)."""
        assert self.sshd is not None
        pid = str(self.sshd.pid)
        return run("nsenter", "-t", pid, "-m", "-u", "-n", "--", *argv, check=check)

    def status(self, name: str) -> dict[str, Any]:
        out = self.on(SERVICECTL, "status", "--json", name, check=False).stdout
        return {row["name"]: row for row in json.loads(out)}[name]


@dataclass
class Fleet:
    base: Path
    tag: str
    suffix: str = field(default_factory=lambda: f"{os.getpid()}-{uuid.uuid4().hex[:6]}")
    hosts: list[Host] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    control: Path = Path()

    @property
    def controller(self) -> str:
        return f"scf-{self.suffix}-c"

    def build(self) -> None:
        self._netns(self.controller)
        c = ("ip", "-n", self.controller)
        run(*c, "link", "set", "lo", "up")
        run(*c, "link", "add", "br0", "type", "bridge")
        run(*c, "addr", "add", f"{CONTROLLER_IP}/24", "dev", "br0")
        run(*c, "link", "set", "br0", "up")
        keys = self.base / "keys"
        keys.mkdir()
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "id"))
        (keys / "authorized_keys").write_text((keys / "id.pub").read_text())
        (keys / "authorized_keys").chmod(0o600)
        for i in (1, 2, 3):
            host = Host(f"fleet{i}", f"scf-{self.suffix}-{i}", f"{NET}.1{i}", self.base / f"h{i}")
            self._netns(host.ns)
            run(
                *c, "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0", "netns", host.ns
            )
            run(*c, "link", "set", f"v{i}", "master", "br0", "up")
            h = ("ip", "-n", host.ns)
            run(*h, "link", "set", "lo", "up")
            run(*h, "addr", "add", f"{host.ip}/24", "dev", "eth0")
            run(*h, "link", "set", "eth0", "up")
            self._sshd(host, keys)
            self.hosts.append(host)
        for host in self.hosts:
            wait_for(lambda h=host: self._listening(h), 10, f"sshd of {host.name}")
        # ssh's control sockets: a short path (108 bytes at most for a unix socket).
        self.control = Path(f"/tmp/scf-{self.suffix}")
        self.control.mkdir(mode=0o700)

    def _netns(self, name: str) -> None:
        run("ip", "netns", "add", name)
        self.namespaces.append(name)

    def _sshd(self, host: Host, keys: Path) -> None:
        root = host.root
        root.mkdir()
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "host_key"))
        (root / "sshd_config").write_text(
            f"ListenAddress {host.ip}:22\nHostKey {root / 'host_key'}\nPidFile none\n"
            f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            # the keys live under /tmp, which any user can write: StrictModes would refuse them
            "StrictModes no\nUseDNS no\nPrintMotd no\nPrintLastLog no\nLogLevel ERROR\n"
            "MaxStartups 50\nMaxSessions 50\nSubsystem sftp internal-sftp\n"
        )
        mounts = []
        for d in OVERLAID:
            upper, work = root / "upper" / d, root / "work" / d
            upper.mkdir(parents=True)
            work.mkdir(parents=True)
            mounts.append(
                f"mount -t overlay overlay -o lowerdir=/{d},upperdir={upper},workdir={work} /{d}"
            )
        for dotfile in (".bashrc", ".profile"):  # a fresh host's root: the skeleton's own
            skel = Path("/etc/skel") / dotfile
            (root / "upper/root" / dotfile).write_text(skel.read_text() if skel.exists() else "")
        script = "\n".join(
            [
                "set -e",
                *mounts,
                "mount -t tmpfs -o mode=0755 tmpfs /run",
                "mkdir -p /run/sshd /run/ansible-tmp",
                "chmod 0700 /run/ansible-tmp",
                f"hostname {host.name}",
                f"exec {SSHD} -D -e -f {root / 'sshd_config'}",
            ]
        )
        log = open(root / "sshd.log", "wb")  # noqa: SIM115 - sshd's stderr, kept open by it
        host.sshd = subprocess.Popen(
            ["ip", "netns", "exec", host.ns, "unshare", "--mount", "--uts", "sh", "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def _listening(self, host: Host) -> bool:
        assert host.sshd is not None
        if host.sshd.poll() is not None:
            raise AssertionError(
                f"sshd of {host.name} exited {host.sshd.returncode}: "
                + (host.root / "sshd.log").read_text()
            )
        a, b, c, d = (int(x) for x in host.ip.split("."))
        want = f"{d:02X}{c:02X}{b:02X}{a:02X}:0016"
        try:
            lines = Path(f"/proc/{host.sshd.pid}/net/tcp").read_text().splitlines()[1:]
        except OSError:
            return False
        return any(line.split()[1] == want and line.split()[3] == "0A" for line in lines)

    def close(self) -> None:
        """Kill, by PID, every process in the test's namespaces; delete them."""
        inodes = set()
        for ns in self.namespaces:
            try:
                inodes.add(os.stat(f"/run/netns/{ns}").st_ino)
            except OSError:
                pass
        kill_pids(pids_in(inodes))
        for host in self.hosts:
            if host.sshd is not None:
                host.sshd.wait(timeout=10)
        for ns in self.namespaces:
            run("ip", "netns", "del", ns, check=False)
        if self.control != Path():
            shutil.rmtree(self.control, ignore_errors=True)

    # -- the controller -----------------------------------------------------------------------

    def inventory(self, path: Path) -> Path:
        lines = ["[web_servers]"]
        lines += [f"{h.name} ansible_host={h.ip}" for h in self.hosts]
        keys = self.base / "keys"
        lines += [
            "[web_servers:vars]",
            "ansible_user=root",
            f"ansible_ssh_private_key_file={keys / 'id'}",
            "ansible_ssh_common_args='-F /dev/null -o StrictHostKeyChecking=no "
            "-o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null "
            "-o LogLevel=ERROR -o IdentitiesOnly=yes'",
            f"ansible_python_interpreter={HOST_PYTHON}",
            "ansible_remote_tmp=/run/ansible-tmp",
            # root logs in: no become (su, the only one here, would turn pipelining off)
            "ansible_become=false",
            "[all:vars]",
            f"tag={self.tag}",
        ]
        path.write_text("\n".join(lines) + "\n")
        return path

    def environ(self, base: Path) -> dict[str, str]:
        collections = base / "collections"
        link = collections / "ansible_collections" / "servicectl" / "servicectl"
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(ROOT / "contrib" / "ansible")
        env = ansible_env(base, collections)
        (base / "ansible.cfg").write_text(
            "[defaults]\nforks = 5\ntimeout = 10\n"
            f"[ssh_connection]\npipelining = True\ncontrol_path_dir = {self.control}\n"
            "ssh_args = -o ControlMaster=auto -o ControlPersist=120s\n"
        )
        env[TAG_VAR] = self.tag  # ssh's control masters carry it
        env["ANSIBLE_PYTHON_INTERPRETER"] = sys.executable  # the controller's (localhost)
        return env

    def playbook(
        self, base: Path, plays: list[dict[str, Any]], *args: str, name: str = "play"
    ) -> subprocess.CompletedProcess[str]:
        """ansible-playbook, in the controller's namespace, on ``plays``."""
        book = base / f"{name}.yml"
        book.write_text(yaml.safe_dump(plays, sort_keys=False))
        res = subprocess.run(
            ["ip", "netns", "exec", self.controller, tool("ansible-playbook")]
            + ["-i", str(self.inventory(base / "inventory")), *args, str(book)],
            capture_output=True,
            text=True,
            env=self.environ(base),
            cwd=base,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        assert "Traceback" not in res.stdout + res.stderr, res.stdout + res.stderr
        return res

    def fetch(self, host: Host, port: int = 8080) -> str | None:
        """What the host's web answers, asked over the private subnet; None if nothing does."""
        code = (
            "import sys, urllib.request\n"
            "try:\n"
            "    print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().strip())\n"
            "except OSError as exc:\n"
            "    sys.exit(str(exc))\n"
        )
        url = f"http://{host.ip}:{port}/"
        res = run(
            "ip", "netns", "exec", self.controller, sys.executable, "-c", code, url, check=False
        )
        return res.stdout.strip() if res.returncode == 0 else None


def pids_in(inodes: set[int]) -> list[int]:
    """Every process whose network namespace is one of ``inodes``."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            link = os.readlink(f"/proc/{name}/ns/net")
        except OSError:
            continue
        if link.startswith("net:[") and int(link[5:-1]) in inodes:
            out.append(int(name))
    return out


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    reason = why_not()
    if reason:
        pytest.skip(reason)
    f = Fleet(tmp_path, uuid.uuid4().hex)
    try:
        started = time.monotonic()
        f.build()
        print(f"three hosts built in {time.monotonic() - started:.1f} s")  # noqa: T201
        yield f
    finally:
        f.close()


# ---------------------------------------------------------------------------------------------
# The web service, in the playbook directory as docs/fleet.md has it

WEB_TEMPLATE = f"""\
description: web {{{{ web_version }}}}
command:
  - {HOST_PYTHON}
  - {SERVER}
  - --bind
  - "{{{{ ansible_host }}}}"
{{% if web_version != 'v1' %}}
  - --require
  - /etc/servicectl/web-{{{{ web_version }}}}.data
check_command: [{HOST_PYTHON}, {SERVER}, --check, /etc/servicectl/web.conf]
{{% endif %}}
user: nobody
environment:
  VERSION: "{{{{ web_version }}}}"
  {TAG_VAR}: "{{{{ tag }}}}"
ready: {{tcp: "{{{{ ansible_host }}}}:8080"}}
start_timeout: 10
stop_timeout: 5
"""


def playbook_dir(base: Path) -> Path:
    (base / "services").mkdir(parents=True, exist_ok=True)
    (base / "services" / "web.yaml.j2").write_text(WEB_TEMPLATE)
    return base


def roll_play(executable: str) -> dict[str, Any]:
    """docs/fleet.md's roll-web.yml, with servicectl's executable given (the one under test)."""
    (play,) = doc_playbook("roll-web.yml")
    assert play["serial"] == 1 and play["max_fail_percentage"] == 0
    play["module_defaults"] = {GROUP: {"executable": executable}}
    return play  # type: ignore[no-any-return]


def web_file(host: Host) -> Path:
    return host.path("/etc/servicectl/services.d/web.yaml")


def recap(res: subprocess.CompletedProcess[str]) -> dict[str, dict[str, int]]:
    """PLAY RECAP, per host: ok, changed, failed..."""
    out: dict[str, dict[str, int]] = {}
    for line in res.stdout.split("PLAY RECAP")[-1].splitlines()[1:]:
        if ":" not in line:
            continue
        host, counts = line.split(":", 1)
        out[host.strip()] = {k: int(v) for k, v in (c.split("=") for c in counts.split())}
    return out


@pytest.mark.timeout(400)
def test_rolling_update_stops_at_a_refusing_host_rolls_back_and_resumes(fleet: Fleet) -> None:
    """docs/fleet.md's roll-web.yml (serial 1) over ssh on three hosts: deployed; a --check
    of a definition whose config test fails on host 2 fails there; the real roll stops at host 2
    (nothing lands there, web keeps serving the old definition), host 3 untouched; with host
    2's configuration fixed the new definition starts nowhere on host 2 (a file is missing), so
    host 2 is rolled back and serves the old one again, and a rerun tries again; once fixed,
    the roll goes through; again, nothing changes; --check --diff shows and changes nothing."""
    base = playbook_dir(fleet.base / "ansible")
    play = [roll_play(SERVICECTL)]
    h1, h2, h3 = fleet.hosts
    for host in fleet.hosts:  # what v2 needs: hosts 1 and 3 have it, host 2 not yet
        host.path("/etc/servicectl").mkdir(exist_ok=True)
        conf = host.path("/etc/servicectl/web.conf")
        conf.write_text("ok\n")
        conf.chmod(0o600 if host is h2 else 0o644)  # host 2: nobody cannot read it
        if host is not h2:
            host.path("/etc/servicectl/web-v2.data").write_text("data\n")
    timings = {}

    def roll(version: str, *args: str, name: str) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        res = fleet.playbook(base, play, "-e", f"web_version={version}", *args, name=name)
        timings[name] = time.monotonic() - started
        return res

    # 0. v1 everywhere.
    res = roll("v1", name="deploy")
    assert res.returncode == 0, res.stdout + res.stderr
    assert [fleet.fetch(h) for h in fleet.hosts] == ["v1"] * 3
    assert [h.on("hostname").stdout.strip() for h in fleet.hosts] == ["fleet1", "fleet2", "fleet3"]
    v1_pids = [h.status("web")["pid"] for h in fleet.hosts]
    v1_text = [web_file(h).read_bytes() for h in fleet.hosts]

    # 1. --check --diff of v2 already fails on host 2 (its config test, as nobody), shows host
    # 1's diff, and changes nothing anywhere.
    res = roll("v2", "--check", "--diff", name="check")
    assert res.returncode != 0
    assert "+description: web v2" in res.stdout and "-description: web v1" in res.stdout
    assert "fatal: [fleet2]" in res.stdout and "config test failed" in res.stdout
    assert "Permission denied" in res.stdout and "fleet3" not in res.stdout.split("PLAY RECAP")[0]
    assert [web_file(h).read_bytes() for h in fleet.hosts] == v1_text
    assert [h.status("web")["pid"] for h in fleet.hosts] == v1_pids

    # 2. v2 for real: host 1 takes it; host 2 refuses it before anything lands (keeps serving
    # v1, same process); the roll stops; host 3 is untouched.
    res = roll("v2", name="refused")
    assert res.returncode != 0
    assert fleet.fetch(h1) == "v2"
    assert fleet.fetch(h2) == "v1" and h2.status("web")["pid"] == v1_pids[1]
    assert web_file(h2).read_bytes() == v1_text[1]
    assert "refused; nothing was installed" in res.stdout
    assert fleet.fetch(h3) == "v1" and h3.status("web")["pid"] == v1_pids[2]
    assert web_file(h3).read_bytes() == v1_text[2]
    assert "fleet3" not in res.stdout.split("PLAY RECAP")[0]

    # 3. Host 2's configuration fixed; but the file v2's program needs is missing there: the
    # config test passes, the restart fails, host 2 is rolled back and serves v1 again.
    h2.path("/etc/servicectl/web.conf").chmod(0o644)
    for attempt in ("rollback", "rerun"):  # and a rerun tries again: it never passes over it
        res = roll("v2", name=attempt)
        assert res.returncode != 0, res.stdout
        assert "so it was rolled back" in res.stdout and '"rolled_back": true' in res.stdout
        assert "web-v2.data is missing" in res.stdout
        assert fleet.fetch(h2) == "v1", attempt
        row = h2.status("web")
        assert row["state"] == "running" and row["definition_changed"] is False
        assert row["pid"] != v1_pids[1] and not alive(v1_pids[1])
        assert web_file(h2).read_bytes() == v1_text[1]
        assert recap(res)["fleet1"]["changed"] == 0
        assert fleet.fetch(h3) == "v1" and h3.status("web")["pid"] == v1_pids[2]
        assert "fleet3" not in res.stdout.split("PLAY RECAP")[0]
    backups = sorted(h2.path("/etc/servicectl/services.d").glob("web.yaml.*~"))
    assert len(backups) == 2 and all(b.read_bytes() == v1_text[1] for b in backups)

    # 4. Fixed: the rerun goes through; every host serves v2.
    h2.path("/etc/servicectl/web-v2.data").write_text("data\n")
    res = roll("v2", name="fixed")
    assert res.returncode == 0, res.stdout + res.stderr
    assert [fleet.fetch(h) for h in fleet.hosts] == ["v2"] * 3
    counts = recap(res)
    assert counts["fleet1"]["changed"] == 0
    assert counts["fleet2"]["changed"] >= 1 and counts["fleet3"]["changed"] >= 1
    v2_pids = [h.status("web")["pid"] for h in fleet.hosts]

    # 5. Idempotence: nothing changes.
    res = roll("v2", name="idempotent")
    assert res.returncode == 0, res.stdout + res.stderr
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in recap(res).values()), res.stdout
    assert [h.status("web")["pid"] for h in fleet.hosts] == v2_pids

    # 6. --check --diff of v3: every host would change (diff shown), nothing does.
    v2_text = [web_file(h).read_bytes() for h in fleet.hosts]
    res = roll("v3", "--check", "--diff", name="check_v3")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count('+  VERSION: "v3"') == 3 or res.stdout.count("+  VERSION: v3") == 3
    assert all(c["changed"] >= 1 for c in recap(res).values())
    assert [web_file(h).read_bytes() for h in fleet.hosts] == v2_text
    assert [h.status("web")["pid"] for h in fleet.hosts] == v2_pids
    assert [fleet.fetch(h) for h in fleet.hosts] == ["v2"] * 3
    print("playbook runs:", {k: round(v, 1) for k, v in timings.items()})  # noqa: T201


# ---------------------------------------------------------------------------------------------
# The role: servicectl from wheels (offline), its boot hook, services, handlers


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """servicectl's wheel, built from this tree, and a directory of its dependencies'."""
    base = tmp_path_factory.mktemp("wheels")
    own, deps = base / "own", base / "deps"
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check"]
    for args in (
        [*pip, "--no-deps", "-w", str(own), str(ROOT)],
        [*pip, "-w", str(deps), str(ROOT)],
    ):
        res = subprocess.run(args, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
    (wheel,) = own.glob("*.whl")
    for ours in deps.glob(wheel.name):
        ours.unlink()
    return wheel, deps


@pytest.mark.timeout(600)
def test_role_installs_servicectl_offline_with_its_boot_hook_and_handlers(
    fleet: Fleet, wheels: tuple[Path, Path]
) -> None:
    """docs/fleet.md's site.yml on the three hosts: servicectl installed from copied wheels
    with no index (the hosts have no route beyond the private subnet), linked into
    /usr/local/sbin; the init.d boot hook written and linked into the runlevels (startall
    brings web back); web deployed from the variable; the handler restarts it when its
    configuration changes, and nothing else changes on the second run."""
    wheel, deps = wheels
    base = playbook_dir(fleet.base / "ansible")
    (play,) = doc_playbook("site.yml")
    extra = ["-e", f"servicectl_wheel={wheel}", "-e", f"servicectl_wheelhouse={deps}"]
    extra += ["-e", "web_version=v1"]
    started = time.monotonic()
    res = fleet.playbook(base, [play], *extra, "-e", "web_config=ok", name="site")
    took = time.monotonic() - started
    assert res.returncode == 0, res.stdout + res.stderr
    for host in fleet.hosts:
        link = host.path("/usr/local/sbin/servicectl")
        assert os.readlink(link) == "/opt/servicectl/venv/bin/servicectl"
        assert (host.root / "upper/opt/servicectl/venv/bin/servicectl").exists()
        assert host.path(f"/opt/servicectl/wheels/{wheel.name}").exists()
        assert not Path("/opt/servicectl").exists()  # the machine's own /opt is untouched
        boot = host.path("/etc/init.d/servicectl").read_text()
        assert "startall" in boot
        assert list(host.path("/etc/rc2.d").glob("S*servicectl"))
        assert fleet.fetch(host) == "v1"
        row = json.loads(host.on("/usr/local/sbin/servicectl", "status", "--json", "web").stdout)[0]
        assert row["state"] == "running"
    # Installed from the copied wheels, exactly: every distribution in the venv is one of them.
    wanted = {w.name.split("-")[0].lower().replace("_", "-") for w in [wheel, *deps.glob("*.whl")]}
    site = next(fleet.hosts[0].path("/opt/servicectl/venv/lib").glob("python3*/site-packages"))
    installed = {
        d.name.split("-")[0].lower().replace("_", "-") for d in site.glob("*.dist-info")
    } - {"pip", "setuptools"}
    assert installed == wanted, (installed, wanted)
    # The handler ran once, after web.conf was written: web was restarted by it.
    assert (
        "RUNNING HANDLER [servicectl.servicectl.servicectl : Restart servicectl services]"
        in res.stdout
    )

    # The boot hook works: web stopped, then the init.d script's start (startall) brings it back.
    h1 = fleet.hosts[0]
    h1.on("/usr/local/sbin/servicectl", "stop", "web")
    assert fleet.fetch(h1) is None
    boot = h1.on("/etc/init.d/servicectl", "start")
    assert "web" in boot.stdout + boot.stderr
    assert fleet.fetch(h1) == "v1"

    # A second run, with web's configuration changed: the handler restarts web, and nothing
    # else changes (the installation, the boot hook and web's definition are as they were).
    pids = [h.status("web")["pid"] for h in fleet.hosts]
    res = fleet.playbook(base, [play], *extra, "-e", "web_config=changed", name="site-config")
    assert res.returncode == 0, res.stdout + res.stderr
    assert all(c["changed"] == 2 for c in recap(res).values()), res.stdout  # copy + handler
    assert "Install servicectl from the wheels] ***\nok: " in res.stdout
    after = [h.status("web")["pid"] for h in fleet.hosts]
    assert all(a != b for a, b in zip(after, pids))
    assert [fleet.fetch(h) for h in fleet.hosts] == ["v1"] * 3
    print(f"the role on three hosts (offline pip installs): {took:.1f} s")  # noqa: T201
