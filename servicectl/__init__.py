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

__version__ = "0.1.0"
