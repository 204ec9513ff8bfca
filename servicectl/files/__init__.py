"""Files as root: safe opens and atomic writes.

Owns the walk that opens a path without following what another user could swap (safefile:
R-PATH-1, non-blocking opens, bounded reads, log tails) and the atomic write of a file by temp
file, fsync and rename (atomic). Knows nothing of services or definitions.

May import: the base (servicectl.paths, .errors, .states).
"""
