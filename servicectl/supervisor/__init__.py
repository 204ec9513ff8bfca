"""The supervisor: one process per run directory, parent of every supervised service.

Owns the supervisor process (daemon), its respawn and exit bookkeeping (respawn), and the
client commands use to reach it (client).

May import: the base, files, definitions, system, service.
"""
