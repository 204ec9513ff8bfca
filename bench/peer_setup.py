"""Getting the peers and servicectl ready for the side-by-side section (bench/peers.py):
s6 installed with apt-get; runit and OpenRC unpacked from their packages into a cache dir (not
installed: neither replaces init, nor writes to /etc, /run or /var); supervisor in its own venv;
servicectl as a wheel of the tree being measured, in a throwaway venv (an editable install's
.pth hook costs the interpreter's start-up ~30 ms)."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from common import PY, VENV, log

CACHE = Path("/tmp/servicectl-bench-peers")


@dataclass
class Peers:
    sc_venv: Path  # bin/servicectl, bin/python
    sup_venv: Optional[Path]
    runit_bin: Optional[Path]
    sd: Optional[str]  # supervise-daemon
    sd_libs: str
    ssd: Optional[str]
    s6: bool
    versions: dict[str, str]
    why: dict[str, str]  # tool -> why it is missing


def sh(cmd: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def tree_digest(tree: Path) -> str:
    h = hashlib.sha256()
    files = sorted(glob.glob(f"{tree}/servicectl/**/*.py", recursive=True))
    for f in [*files, str(tree / "pyproject.toml")]:
        h.update(f.encode())
        h.update(Path(f).read_bytes())
    return h.hexdigest()[:12]


def wheel_venv(tree: Path) -> Path:
    """A venv holding a wheel of ``tree`` (and its dependencies), nothing else: no pip, no
    setuptools and so no .pth hook. Reused while the tree's sources are unchanged."""
    digest = tree_digest(tree)
    venv = CACHE / f"wheel-{digest}"
    if (venv / "bin" / "servicectl").exists():
        return venv
    log(f"building a wheel of {tree} and a venv for it ({venv})")
    wheels = CACHE / f"wheels-{digest}"
    shutil.rmtree(wheels, ignore_errors=True)
    shutil.rmtree(venv, ignore_errors=True)
    steps = [
        [PY, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(tree)],
        [PY, "-m", "venv", "--without-pip", str(venv)],
    ]
    for cmd in steps:
        p = sh(cmd)
        if p.returncode != 0:
            sys.exit(f"`{' '.join(cmd)}` failed: {p.stderr[-800:]}")
    whl = next(wheels.glob("servicectl*.whl"))
    cmd = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
           str(whl)]  # fmt: skip
    p = sh(cmd)
    if p.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        sys.exit(f"`{' '.join(cmd)}` failed: {p.stderr[-800:]}")
    return venv


def supervisor_venv() -> tuple[Optional[Path], str]:
    sd, ctl = VENV / "bin" / "supervisord", VENV / "bin" / "supervisorctl"
    if sd.exists() and ctl.exists():
        return VENV, ""
    log(f"creating {VENV} and installing supervisor")
    for cmd in ([PY, "-m", "venv", str(VENV)], [str(VENV / "bin" / "pip"), "install", "-q",
                                                "supervisor"]):  # fmt: skip
        p = sh(cmd)
        if p.returncode != 0:
            return None, f"`{' '.join(cmd)}` exited {p.returncode}: {p.stderr.strip()[-300:]}"
    return VENV, ""


def unpack(pkgs: list[str]) -> tuple[Optional[Path], str]:
    """apt-get download the packages and dpkg-deb -x them into one cache dir."""
    root = CACHE / "-".join(pkgs[:1])
    stamp = root / ".unpacked"
    if stamp.exists():
        return root, ""
    dl = CACHE / "debs"
    dl.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["apt-get", "download", *pkgs], cwd=dl, capture_output=True, text=True)
    if p.returncode != 0:
        return None, f"apt-get download {' '.join(pkgs)}: {p.stderr.strip()[-300:]}"
    for pkg in pkgs:
        deb = sorted(dl.glob(f"{pkg}_*.deb"))[-1]
        p = sh(["dpkg-deb", "-x", str(deb), str(root)])
        if p.returncode != 0:
            return None, f"dpkg-deb -x {deb.name}: {p.stderr.strip()[-300:]}"
    stamp.touch()
    return root, ""


def deb_version(pkg: str) -> str:
    debs = sorted((CACHE / "debs").glob(f"{pkg}_*.deb"))
    return debs[-1].name.split("_")[1] if debs else "?"


def get_peers(tree: Path) -> Peers:
    why: dict[str, str] = {}
    versions: dict[str, str] = {}
    CACHE.mkdir(parents=True, exist_ok=True)
    if not shutil.which("s6-svscan"):
        log("apt-get install s6")
        p = sh(["apt-get", "install", "-y", "-q", "s6"])
        if p.returncode != 0:
            why["s6"] = f"apt-get install s6: {p.stderr.strip()[-300:]}"
    s6 = bool(shutil.which("s6-svscan"))
    if s6:
        versions["s6"] = sh(["dpkg-query", "-W", "-f", "${Version}", "s6"]).stdout.strip()
    runit, err = unpack(["runit"])
    runit_bin = runit / "usr" / "bin" if runit else None
    if err:
        why["runit"] = err
    else:
        versions["runit"] = f"{deb_version('runit')} (unpacked from the .deb, not installed)"
    openrc, err = unpack(["openrc", "librc1", "libeinfo1"])
    sd = str(openrc / "sbin" / "supervise-daemon") if openrc else None
    libs = str(openrc / "lib" / "x86_64-linux-gnu") if openrc else ""
    if err:
        why["supervise-daemon"] = err
    else:
        versions["openrc"] = f"{deb_version('openrc')} (unpacked from the .deb, not installed)"
    if not (shutil.which("unshare") and shutil.which("nsenter")):
        why["supervise-daemon"] = "unshare/nsenter (util-linux) not found"
        sd = None
    ssd = shutil.which("start-stop-daemon") or (
        "/usr/sbin/start-stop-daemon" if os.access("/usr/sbin/start-stop-daemon", os.X_OK) else None
    )
    if ssd:
        versions["start-stop-daemon"] = sh([ssd, "--version"]).stdout.splitlines()[0]
    sup, err = supervisor_venv()
    if err:
        why["supervisord"] = err
    else:
        assert sup is not None
        v = sh([str(sup / "bin" / "supervisord"), "--version"]).stdout.strip()
        versions["supervisor"] = f"{v} (pip, in {sup})"
    return Peers(wheel_venv(tree), sup, runit_bin, sd, libs, ssd, s6, versions, why)
