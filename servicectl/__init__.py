"""servicectl: start, stop, reload and watch services described by one YAML file each.

The package is layered; each layer is a subpackage whose docstring says what it owns and what
it may import, and imports only run downward (tests/test_structure.py holds the code to it).
From the top:

- cli          the entry point: main (fast parser), typer_app (help, completion)
- commands     the command table (grammar) and each command's body
- output       printing, escaping, the board, the status block, live progress
- fleet        dependency order, parallel startall/stopall
- supervisor   the supervisor process, respawn, and its client
- service      one service's lifecycle: start, stop, reload, observe, identity
- system       mechanisms: /proc, locks, PID files, records, spawn, readiness
- definitions  schema, parsing, catalog, cache of a services directory
- files        safe opens as root, atomic writes
- base         paths, errors (messages and exit codes), states (these top-level modules)

docs/design.md walks through it with a picture.
"""

__version__ = "0.2.0"  # the one place: pyproject.toml reads it (dynamic version)

DISTRIBUTION = "servicectl-sysv"
"""The name servicectl is installed under (``servicectl`` on PyPI is somebody else's)."""


def version() -> str:
    """The version of the installed distribution this code came from: the ``Version`` of the
    ``servicectl_sysv-*.dist-info`` beside this package (what importlib.metadata reads,
    without the 20 ms of importing it); ``__version__`` where there is none (a source tree,
    an editable install)."""
    import os

    site = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    prefix = DISTRIBUTION.replace("-", "_") + "-"
    try:
        infos = [n for n in os.listdir(site) if n.startswith(prefix) and n.endswith(".dist-info")]
        if len(infos) == 1:
            with open(os.path.join(site, infos[0], "METADATA"), encoding="utf-8") as fh:
                for line in fh:
                    if line.startswith("Version:"):
                        return line.partition(":")[2].strip()
                    if not line.strip():
                        break  # the end of the headers
    except OSError:
        pass
    return __version__
