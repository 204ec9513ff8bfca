"""Many services at once: dependency order (order) and parallel start and stop by level
(parallel), for startall, stopall, and restarts that carry their dependents.

May import: the base, files, definitions, system, service, supervisor.
"""
