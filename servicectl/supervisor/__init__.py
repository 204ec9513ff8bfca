"""The supervisor: one process per run directory, parent of every supervised service and the
only actor on it.

Owns the supervisor process (daemon: its poll loop; start: its lock, socket and log), the
table of a supervised service's states and events (machine) and what each entry does (steps),
the work done in worker threads (jobs: the lifecycle's actions with the supervisor's Actor,
exits, respawns), health probes (health), adoption and hand-overs (adopt, legacy), the
versioned protocol (protocol), and the commands' side: the client that asks it (client) and
where an action goes (route).

May import: the base, files, definitions, system, service.
"""
