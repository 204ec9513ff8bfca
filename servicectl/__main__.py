"""Entry point for ``python -m servicectl``.

Delegates to the command-line face.
"""

from servicectl.cli.main import main

main()
