"""What people and scripts see: printing that a closed pipe or a full disk never aborts,
escaping, tables (face), the board and the status block (statusview), live progress on a
terminal (liveview). rich is imported here, and only on a terminal.

May import: everything below (base to fleet); never the commands or the entry.
"""
