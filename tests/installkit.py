"""The servicectl the tests run is the one a user installs: the sdist and the wheel are built
from this tree once per run, and the wheel is installed (not editable) into a fresh venv under
a directory every user can traverse, beside copies of the helper programs (tests/daemons/).

Nothing handed to another user lies inside the clone, so the tests pass wherever the clone
sits: under a 0700 directory (``mktemp -d``, a Debian 12 home), or on a path with a space.
The editable install in .venv stays for development: pytest imports servicectl from the tree.
"""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "servicectl-sysv"
# What the sdist is built from: the build writes its egg-info and build/ into the copy only.
# The run's directory, for the workers of a parallel run (set by the process that made it).
SHARED_VAR = "SERVICECTL_TEST_INSTALL"
SOURCE_FILES = ("pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE", "MANIFEST.in")


def unreachable_part(path: str | os.PathLike[str]) -> Path | None:
    """The first directory on the way to ``path`` that a user who owns none of them cannot
    traverse (no o+x), checked along the path as written and along its resolved form (a
    venv's python is a link to its base interpreter); None when every user can reach it."""
    written = Path(os.path.abspath(path))
    for way in (written, Path(os.path.realpath(written))):
        for directory in reversed(way.parents):
            try:
                mode = os.stat(directory).st_mode
            except OSError:
                return directory
            if not mode & stat.S_IXOTH:
                return directory
    return None


def _traversable_base() -> Path:
    """Where the run's directory goes: the temporary directory if every user can reach it,
    else the first of /tmp, /var/tmp, /dev/shm that they can (TMPDIR may be private)."""
    for candidate in (tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"):
        path = Path(candidate)
        if path.is_dir() and unreachable_part(path / "x") is None:
            return path
    raise RuntimeError(
        "no temporary directory that every user can traverse (tried TMPDIR, /tmp, /var/tmp, "
        "/dev/shm): the tests run servicectl as other users from there"
    )


def _python_facts(python: str) -> tuple[tuple[int, int], str] | None:
    """((major, minor), stdlib directory) of an interpreter, or None if it does not run."""
    code = "import sys, sysconfig; print(*sys.version_info[:2], sysconfig.get_path('stdlib'))"
    try:
        out = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    if out.returncode != 0:
        return None
    major, minor, stdlib = out.stdout.split(maxsplit=2)
    return (int(major), int(minor)), stdlib.strip()


def base_python() -> str:
    """The interpreter the venv is made from: one that every user can run, with its standard
    library (the one behind this venv, unless it lives under a private directory such as
    pyenv's under /root; then the system's, the same minor version first)."""
    found = [getattr(sys, "_base_executable", ""), os.path.realpath(sys.executable)]
    for directory in ("/usr/local/bin", "/usr/bin", "/bin"):
        for name in (f"python3.{sys.version_info[1]}", "python3"):
            found.append(os.path.join(directory, name))
    seen: list[tuple[bool, str]] = []
    for python in dict.fromkeys(p for p in found if p and os.access(p, os.X_OK)):
        facts = _python_facts(python)
        if facts is None or facts[0] < (3, 9):
            continue
        if unreachable_part(python) is None and unreachable_part(facts[1]) is None:
            seen.append((facts[0] != sys.version_info[:2], python))
    if not seen:
        raise RuntimeError(
            "no Python >= 3.9 that every user can run (with its standard library) was found "
            "for the test install; the tests run servicectl as other users: install python3"
        )
    return min(seen, key=lambda s: s[0])[1]


def _run(argv: list[str], what: str, **kw: object) -> None:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)  # type: ignore[call-overload]
    if res.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {res.returncode}): {' '.join(argv)}\n"
                           f"{res.stdout[-4000:]}\n{res.stderr[-4000:]}")  # fmt: skip


def _constraints(path: Path) -> Path:
    """Pins of every distribution in this venv but servicectl, so that the test install gets
    the same versions (from the same index, and pip's cache)."""
    from importlib import metadata

    pins = sorted(
        {
            f"{d.metadata['Name']}=={d.version}"
            for d in metadata.distributions()
            if d.metadata["Name"] and d.metadata["Name"].lower() not in (DISTRIBUTION, "servicectl")
        }
    )
    path.write_text("\n".join(pins) + "\n")
    return path


def _pip_has_python_option() -> bool:
    """pip >= 22.3 installs into another interpreter's environment (``--python``)."""
    from importlib import metadata

    major, minor = (int(x) for x in metadata.version("pip").split(".")[:2])
    return (major, minor) >= (22, 3)


class Install:
    """The run's directory (mode 0755 under a directory every user can traverse) and what is
    in it: the built sdist and wheel, the venv the wheel is installed into, the helpers."""

    def __init__(self) -> None:
        shared = os.environ.get(SHARED_VAR)
        # A worker of a parallel run (pytest-xdist) uses the install its controller built.
        self.owner = not (shared and os.environ.get("PYTEST_XDIST_WORKER"))
        if self.owner:
            self.top = Path(tempfile.mkdtemp(prefix="servicectl-tests-", dir=_traversable_base()))
            self.top.chmod(0o755)
            os.environ[SHARED_VAR] = str(self.top)  # what the workers started later inherit
            atexit.register(self.remove)  # even when pytest stops before its unconfigure hook
        else:
            self.top = Path(str(shared))
        self.dist = self.top / "dist"
        self.venv = self.top / "venv"
        self.daemons = self.top / "daemons"
        self.python = str(self.venv / "bin" / "python")
        self.servicectl = str(self.venv / "bin" / "servicectl")
        self.built = not self.owner

    def copy_helpers(self) -> Path:
        """tests/daemons/*.py and the demo's forkingd.py, readable and runnable by anyone."""
        if not self.owner:
            return self.daemons
        self.daemons.mkdir(exist_ok=True)
        self.daemons.chmod(0o755)
        helpers = [*sorted((ROOT / "tests" / "daemons").glob("*.py"))]
        helpers.append(ROOT / "services.d" / "bin" / "forkingd.py")
        for script in helpers:
            copy = self.daemons / script.name
            shutil.copyfile(script, copy)
            copy.chmod(0o755)
        return self.daemons

    @property
    def wheel(self) -> Path:
        [wheel] = self.dist.glob("*.whl")
        return wheel

    @property
    def sdist(self) -> Path:
        [sdist] = self.dist.glob("*.tar.gz")
        return sdist

    def site_packages(self) -> Path:
        [site] = self.venv.glob("lib/python3.*/site-packages")
        return site

    def build(self) -> None:
        """Build the sdist, then the wheel from it (``python -m build``, isolated as pip's
        own builds are), make the venv, install the wheel: once per run."""
        if self.built:
            return
        umask = os.umask(0o022)  # what the venv holds is for every user to read
        try:
            self._build()
        finally:
            os.umask(umask)
        self.built = True

    def _build(self) -> None:
        source = self.top / "source"
        source.mkdir()
        for name in SOURCE_FILES:
            if (ROOT / name).is_file():
                shutil.copyfile(ROOT / name, source / name)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
        shutil.copytree(ROOT / "servicectl", source / "servicectl", ignore=ignore)
        shutil.copytree(ROOT / "bin", source / "bin")  # the command (pyproject's script-files)
        _run([sys.executable, "-m", "build", "--outdir", str(self.dist), str(source)],
             "building the sdist and the wheel (python -m build)")  # fmt: skip
        shutil.rmtree(source)
        pins = _constraints(self.top / "constraints.txt")
        install = ["install", "-q", "-c", str(pins), str(self.wheel)]
        if _pip_has_python_option():  # the venv needs no pip of its own (faster)
            _run([base_python(), "-m", "venv", "--without-pip", str(self.venv)], "making a venv")
            pip = [sys.executable, "-m", "pip", "--python", self.python]
        else:
            _run([base_python(), "-m", "venv", str(self.venv)], "making a venv")
            pip = [self.python, "-m", "pip"]
        _run([*pip, *install], "installing the wheel into the venv")

    def remove(self) -> None:
        if not self.owner:
            return
        shutil.rmtree(self.top, ignore_errors=True)
