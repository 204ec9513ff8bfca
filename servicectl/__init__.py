"""servicectl: start, stop, reload and watch services described by one YAML file each.

The package is layered: cli (the face) over fleet over lifecycle over the mechanisms.
"""

__version__ = "0.1.0"
