"""Boot files for the whole fleet: the LSB init script and the oneshot systemd unit that run
``servicectl startall`` at boot and ``stopall`` at shutdown (``initd --boot``, ``unit --boot``),
and what keeps the supervisor up after a crash: ``servicectl supervise`` restarted by the init
system (a systemd unit with Restart=always, a restart loop in the init script).

The files in contrib/ are this module's output for /usr/local/sbin/servicectl and the default
directories (``contrib_files``), so a ``pip install`` alone is enough to set up boot.
"""

from __future__ import annotations

from pathlib import Path

from servicectl.commands.shims import MARKER, GeneratedFile, _sh, exe_argv
from servicectl.commands.units import _unit_exec
from servicectl.errors import ServicectlError
from servicectl.paths import SYSTEM_SERVICES_DIR, Dirs

CONTRIB_EXE = "/usr/local/sbin/servicectl"
CONTRIB_DIRS = Dirs(SYSTEM_SERVICES_DIR, "/run/servicectl", "/var/log/servicectl")


def _dir_defaults(dirs: Dirs) -> list[tuple[str, str]]:
    """(variable, value) of the directories the boot file passes on: the services dir always,
    the run and log dirs when they were given at generation (by flag or environment)."""
    out = [("SERVICECTL_SERVICES_DIR", str(dirs.services))]
    if dirs.run_given:
        out.append(("SERVICECTL_RUN_DIR", str(dirs.run)))
    if dirs.log_given:
        out.append(("SERVICECTL_LOG_DIR", str(dirs.log)))
    return out


_INITD_HEAD = """\
#!/bin/sh
{marker} Regenerate with: servicectl initd --boot
### BEGIN INIT INFO
# Provides:          servicectl
# Required-Start:    $remote_fs $syslog
# Required-Stop:     $remote_fs $syslog
# Should-Start:      $network $named $time
# Should-Stop:       $network $named $time
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: Start and stop every service managed by servicectl
# Description:       Runs "servicectl startall" at boot (enabled services,
#                    dependencies first) and "servicectl stopall" at shutdown,
#                    and keeps the supervisor of supervised services up.
### END INIT INFO
#
# Boot integration for the whole servicectl fleet (sysvinit, Devuan, busybox rcS).
# Install:  servicectl initd --boot     (writes this script as /etc/init.d/servicectl)
#           update-rc.d servicectl defaults        (Debian, Devuan; or: insserv servicectl)
# Settings: /etc/default/servicectl, plain KEY=VALUE lines, override the values below,
#           for example
#           SERVICECTL=/opt/servicectl/bin/servicectl
#           SERVICECTL_SERVICES_DIR=/etc/servicectl/services.d
#           SERVICECTL_RUN_DIR=/run/servicectl
#           SERVICECTL_LOG_DIR=/var/log/servicectl
# Use either this script or per-service shims (servicectl initd --all), not both:
# both work (start is idempotent), but each service would be started twice over.
#
# This script deliberately does not source /lib/lsb/init-functions: on a systemd host
# that would redirect the call to systemctl. On systemd hosts use the unit written by
# "servicectl unit --boot" instead.
#
# start also runs "servicectl supervise" in a restart loop of its own session (its PID in
# RUN_DIR/.keeper.pid): the supervisor of supervised services comes back a second after a
# crash and adopts them. With an /etc/inittab, a respawn entry does the same:
#   sv:2345:respawn:/usr/local/bin/servicectl supervise

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

"""

_INITD_BODY = """
if [ -r /etc/default/servicectl ]; then
    # shellcheck source=/dev/null
    . /etc/default/servicectl
fi
if [ ! -x "$SERVICECTL" ] && command -v servicectl >/dev/null 2>&1; then
    SERVICECTL=$(command -v servicectl)
fi

# servicectl reads these from its environment.
export SERVICECTL_SERVICES_DIR
if [ -n "${{SERVICECTL_RUN_DIR:-}}" ]; then
    export SERVICECTL_RUN_DIR
fi
if [ -n "${{SERVICECTL_LOG_DIR:-}}" ]; then
    export SERVICECTL_LOG_DIR
fi

usage() {{
    echo "Usage: $0 {{start|stop|restart|force-reload|status}}" >&2
}}

keeper_pidfile="${{SERVICECTL_RUN_DIR:-/run/servicectl}}/.keeper.pid"

# Keep the supervisor up: "servicectl supervise" again a second after it ends (a crash).
keeper_start() {{
    if [ -r "$keeper_pidfile" ] && kill -0 "$(cat "$keeper_pidfile")" 2>/dev/null; then
        return 0
    fi
    mkdir -p "$(dirname "$keeper_pidfile")"
    # shellcheck disable=SC2016
    setsid sh -c 'trap "kill \\$s 2>/dev/null; exit 0" TERM; echo $$ >"$1"; shift
        while :; do "$@" supervise & s=$!; wait "$s"; sleep 1; done' \\
        keeper "$keeper_pidfile" {sc} </dev/null >/dev/null 2>&1 &
}}

keeper_stop() {{
    if [ -r "$keeper_pidfile" ]; then
        kill "$(cat "$keeper_pidfile")" 2>/dev/null
        rm -f "$keeper_pidfile"
    fi
}}

case "${{1:-}}" in
    start|stop|restart|force-reload|status|reload) ;;
    *)
        usage
        exit 2
        ;;
esac

if [ ! -x "$SERVICECTL" ]; then
    echo "$0: $SERVICECTL is missing or not executable; is servicectl installed?" >&2
    if [ "$1" = status ]; then
        exit 4
    fi
    exit 5
fi

case "$1" in
    start)
        keeper_start
        exec {sc} startall
        ;;
    stop)
        {sc} stopall
        stopped=$?
        keeper_stop
        exit "$stopped"
        ;;
    restart|force-reload)
        # force-reload of the whole fleet is a restart: each service that supports reload
        # can be reloaded on its own with "servicectl reload NAME".
        {sc} stopall
        stopped=$?
        {sc} startall
        started=$?
        if [ "$stopped" -ne 0 ] && [ "$started" -eq 0 ]; then
            exit 1
        fi
        exit "$started"
        ;;
    status)
        # 0 only when every defined service runs; a stopped (disabled) one gives 3.
        exec {sc} status
        ;;
    reload)
        echo "$0: reload is not implemented for the whole fleet; use force-reload," \\
            "or: servicectl reload NAME" >&2
        exit 3
        ;;
esac
"""


def initd_file(dirs: Dirs, exe: str) -> GeneratedFile:
    """/etc/init.d/servicectl: start runs startall, stop stopall, status status; servicectl
    by absolute path, the directories given at generation as defaults that
    /etc/default/servicectl (or the caller's environment) may override."""
    program, *extra = exe_argv(exe)
    lines = [f"SERVICECTL=${{SERVICECTL:-{_sh(program)}}}"]
    lines += [f"{var}=${{{var}:-{_sh(value)}}}" for var, value in _dir_defaults(dirs)]
    sc = " ".join(['"$SERVICECTL"', *(_sh(w) for w in extra)])
    text = _INITD_HEAD.format(marker=MARKER) + "\n".join(lines) + "\n" + _INITD_BODY.format(sc=sc)
    return GeneratedFile("servicectl", text, 0o755)


_UNIT_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./@:+,=-")


def _env_assignment(var: str, value: str) -> str:
    """One ``Environment=`` assignment: bare when safe, else double-quoted with C escapes;
    ``%`` doubled (specifiers). Raises when the value holds a control character."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F or 0xDC80 <= ord(c) <= 0xDCFF for c in value):
        raise ServicectlError(
            f"the directory {value!r} contains a control character or a byte that is not "
            "UTF-8; a systemd unit cannot carry it: choose another directory"
        )
    text = f"{var}={value}".replace("%", "%%")
    if all(c in _UNIT_SAFE for c in value):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_UNIT_HEAD = """\
{marker} Regenerate with: servicectl unit --boot
# Boot integration for the whole servicectl fleet on systemd hosts: "servicectl startall"
# at boot, "servicectl stopall" at shutdown. systemd 260 dropped SysV init scripts (and
# distributions such as Ubuntu 26.04 already ship without them), so use this unit, or
# per-service units from "servicectl unit --all", on systemd hosts - not init.d scripts.
#
# Install:  servicectl unit --boot      (writes this file into /etc/systemd/system)
#           systemctl daemon-reload && systemctl enable --now servicectl.service
# Adjust:   the directories below can be overridden in /etc/default/servicectl
#           (SERVICECTL_SERVICES_DIR=..., SERVICECTL_RUN_DIR=..., SERVICECTL_LOG_DIR=...),
#           the same file the init.d boot script reads.
# Use this unit or per-service units, not both: each would start the same services.
# Services started by hand from a login shell live in that session's cgroup; start them
# with systemctl (or this unit) so that they belong to the system and outlive the session.

[Unit]
Description=Services managed by servicectl (startall/stopall)
# servicectl-supervisor.service (written beside this unit): the supervisor, kept up by systemd
Wants=servicectl-supervisor.service
After=network.target remote-fs.target nss-lookup.target time-sync.target {keeper}

[Service]
Type=oneshot
RemainAfterExit=yes
"""

_UNIT_TAIL = """\
# stopall does the stopping (each service's stop_signal, stop_timeout, then KILL);
# systemd then cleans up whatever is still in this unit's cgroup.
KillMode=control-group
# A oneshot start has no timeout by default; startall waits at most each level's
# start_timeout, and stopall each level's stop_timeout. Raise these for long chains.
TimeoutStartSec=15min
TimeoutStopSec=15min

[Install]
WantedBy=multi-user.target
"""


def unit_file(dirs: Dirs, exe: str) -> GeneratedFile:
    """servicectl.service: a oneshot unit (RemainAfterExit) whose ExecStart runs startall and
    ExecStop stopall, servicectl by absolute path; the directories given at generation are
    set with Environment=, which /etc/default/servicectl (EnvironmentFile=) may override."""
    argv = exe_argv(exe)
    assignments = " ".join(_env_assignment(var, value) for var, value in _dir_defaults(dirs))
    lines = [
        f"Environment={assignments}",
        "EnvironmentFile=-/etc/default/servicectl",
        f"ExecStart={_unit_exec([*argv, 'startall'])}",
        f"ExecStop={_unit_exec([*argv, 'stopall'])}",
    ]
    head = _UNIT_HEAD.format(marker=MARKER, keeper="servicectl-supervisor.service")
    text = head + "\n".join(lines) + "\n" + _UNIT_TAIL
    return GeneratedFile("servicectl.service", text, 0o644)


_SUPERVISOR_HEAD = """\
{marker} Regenerate with: servicectl unit --boot
# The supervisor of the services servicectl supervises (restart: on-failure or always), kept
# up by systemd: "servicectl supervise" runs it in the foreground, and if it crashes systemd
# starts it again a second later; it adopts the services the dead one left (they kept
# running). Stopping this unit stops the supervisor only: its services run on, and the next
# supervisor adopts them (KillMode=process). servicectl.service wants it.

[Unit]
Description=servicectl supervisor (respawns, health checks, adoption)
After=local-fs.target

[Service]
Type=notify
NotifyAccess=main
"""

_SUPERVISOR_TAIL = """\
Restart=always
RestartSec=1
KillMode=process
TimeoutStopSec=30

[Install]
WantedBy=multi-user.target
"""


def supervisor_unit_file(dirs: Dirs, exe: str) -> GeneratedFile:
    """servicectl-supervisor.service: ``servicectl supervise``, restarted by systemd."""
    assignments = " ".join(_env_assignment(var, value) for var, value in _dir_defaults(dirs))
    lines = [
        f"Environment={assignments}",
        "EnvironmentFile=-/etc/default/servicectl",
        f"ExecStart={_unit_exec([*exe_argv(exe), 'supervise'])}",
    ]
    text = _SUPERVISOR_HEAD.format(marker=MARKER) + "\n".join(lines) + "\n" + _SUPERVISOR_TAIL
    return GeneratedFile("servicectl-supervisor.service", text, 0o644)


def contrib_files() -> dict[str, GeneratedFile]:
    """What contrib/ carries (path under contrib/ -> file): the boot files for
    /usr/local/sbin/servicectl and the default directories."""
    return {
        "init.d/servicectl": initd_file(CONTRIB_DIRS, CONTRIB_EXE),
        "systemd/servicectl.service": unit_file(CONTRIB_DIRS, CONTRIB_EXE),
        "systemd/servicectl-supervisor.service": supervisor_unit_file(CONTRIB_DIRS, CONTRIB_EXE),
    }


if __name__ == "__main__":  # python -m servicectl.commands.boot CONTRIB_DIR: regenerate contrib/
    import sys

    for rel, f in contrib_files().items():
        path = Path(sys.argv[1]) / rel
        path.write_text(f.content)
        path.chmod(f.mode)
