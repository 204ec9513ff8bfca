"""Mechanisms on processes and run-directory files, for one definition at a time.

Owns /proc and pidfds (proc), locks (lock), PID files (pidfile), the state record beside them
(record), the note a failed start leaves (failure), the start mark in a log (logmark), spawning
a program with a clean environment, user and limits (spawn), a gate forked without subprocess
(child), cgroups: where they go, making, joining, killing and removing them (cgroup), a
service's cgroups and limits (cgroup_limits), a short command in a cgroup of its own
(confined), running a service's short commands as its user (runner), readiness probes and the
notify socket (ready), the process tree of a service (process_tree), and work in two processes
at once (halves). Nothing here decides what to do with a service: it only does what it is asked
and reports what it sees.

May import: the base, files, definitions.
"""
