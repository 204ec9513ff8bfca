"""Mechanisms on processes and run-directory files, for one definition at a time.

Owns /proc and pidfds (proc), locks (lock), PID files (pidfile), the state record beside them
(record), the note a failed start leaves (failure), the start mark in a log (logmark),
spawning a program with a clean environment, user and limits (spawn), running a
service's short commands as its user (runner), readiness probes and the notify socket
(ready), and what psutil says of a process tree (process_tree). Nothing here decides what to
do with a service: it only does what it is asked and reports what it sees.

May import: the base, files, definitions.
"""
