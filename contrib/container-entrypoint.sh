#!/bin/sh
# Container entrypoint for servicectl: keep the supervisor up, start every enabled service,
# wait, and on SIGTERM or SIGINT (docker stop, Ctrl-C) stop them all, dependents first, then
# exit.
#
# Run it under a real init that reaps orphans and forwards signals, because the services
# are detached and get re-parented to PID 1:
#   ENTRYPOINT ["tini", "--", "/usr/local/bin/container-entrypoint.sh"]
#   (or: docker run --init ...; or dumb-init)
# Give "docker stop" enough time for stopall: docker run --stop-timeout 60, or
# stop_grace_period in compose, at least the longest stop_timeout plus a few seconds.
#
# Environment: SERVICECTL (default: servicectl from PATH), SERVICECTL_SERVICES_DIR,
# SERVICECTL_RUN_DIR, SERVICECTL_LOG_DIR (read by servicectl itself), and
# SERVICECTL_KEEP_GOING=1 to keep the container up when some service failed to start
# (by default the container stops them all and exits 1, so the orchestrator notices).
#
# cgroups: with a cgroup namespace of its own and /sys/fs/cgroup a writable cgroup v2 (docker
# run --cgroupns=private with a writable cgroup mount, podman, a delegated systemd-nspawn...),
# servicectl gives every service a cgroup of its own beneath the container's, as on a host
# (docs/guarantees.md, "Tracking"). The processes of the container's root cgroup (its init and
# this script) are first moved into a leaf, /sys/fs/cgroup/init, so that controllers (memory,
# pids, cpu for memory_max, pids_max, cpu_weight) can be enabled below the root: a cgroup that
# holds processes cannot hand controllers to its children. Done only at the root of a cgroup
# namespace (/proc/self/cgroup says "0::/") and as PID 1 or its child, never on a host's real
# root; SERVICECTL_CGROUP_INIT=0 turns it off.

SERVICECTL=${SERVICECTL:-servicectl}
sleeper=
keeper=

leave_root_cgroup() {
    cg=/sys/fs/cgroup
    [ "${SERVICECTL_CGROUP_INIT:-1}" = 1 ] || return 0
    [ "$$" = 1 ] || [ "$PPID" = 1 ] || return 0
    grep -qx '0::/' /proc/self/cgroup 2>/dev/null || return 0
    [ -f "$cg/cgroup.subtree_control" ] && [ -w "$cg/cgroup.procs" ] || return 0
    mkdir -p "$cg/init" 2>/dev/null || return 0
    # Each process of the root cgroup (this script, its init, anything they started so far).
    while read -r pid; do
        echo "$pid" >"$cg/init/cgroup.procs" 2>/dev/null
    done <"$cg/cgroup.procs"
    return 0
}

leave_root_cgroup

shutdown() {
    trap '' TERM INT
    if [ -n "$sleeper" ]; then
        kill "$sleeper" 2>/dev/null
    fi
    "$SERVICECTL" stopall
    stopped=$?
    if [ -n "$keeper" ]; then
        kill "$keeper" 2>/dev/null
    fi
    exit "$stopped"
}

# The supervisor of supervised services (restart: on-failure or always), kept up: if it
# crashes, "servicectl supervise" runs again a second later and adopts what it left.
keep_supervisor() {
    supervisor=
    trap 'if [ -n "$supervisor" ]; then kill "$supervisor" 2>/dev/null; fi; exit 0' TERM
    while :; do
        "$SERVICECTL" supervise &
        supervisor=$!
        wait "$supervisor"
        sleep 1
    done
}

trap shutdown TERM INT
keep_supervisor &
keeper=$!

# A signal that arrives during startall runs the trap as soon as startall returns.
if ! "$SERVICECTL" startall; then
    if [ "${SERVICECTL_KEEP_GOING:-0}" != 1 ]; then
        echo "container-entrypoint: some services failed to start; stopping all" >&2
        "$SERVICECTL" stopall
        exit 1
    fi
    echo "container-entrypoint: some services failed to start; going on" \
        "(SERVICECTL_KEEP_GOING=1)" >&2
fi

# Wait in a way a trapped signal interrupts at once: the shell's "wait" returns when a
# signal arrives, and the trap runs. "sleep infinity" is not POSIX, so sleep a day at a time.
while :; do
    sleep 86400 &
    sleeper=$!
    wait "$sleeper"
done
