"""One service's lifecycle: start, stop, restart, reload and observe, composed from the
mechanisms.

Owns the identity rules (identity: is this process the service?), observation (observe,
observation), the start (launch, preflight, directories), the stop schedule (terminate), its
cgroup (tracked), reload (reload), a service's extra verbs (action), their results (outcome),
what a record says of its supervision (supervised), who acts (actor: the command, or a
supervisor's Actor passed down), the failed state of a failed start (failed), log tails of the
last run (logtail), syslog (audit) and the waits an action reports (waits).
lifecycle composes them into the actions on one service.

May import: the base, files, definitions, system.
"""
