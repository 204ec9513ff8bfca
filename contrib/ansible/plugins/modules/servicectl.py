#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: servicectl contributors
# MIT License (see the collection's LICENSE file)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: servicectl
short_description: Manage services run by servicectl, the replacement for init.d scripts
version_added: "0.1.0"
description:
  - Start, stop, restart and reload services managed by C(servicectl), enable them for
    C(servicectl startall) at boot, and install their YAML definitions.
  - A O(definition) is written into the services directory only after C(servicectl check) has
    accepted it, and only when it differs from the file in place. The file is written
    atomically (a temporary file in the same directory, then a rename), never through or over a
    symlink.
  - The module runs the C(servicectl) executable on the target and reads its C(--json)
    output. It does not import servicectl's Python package, so it works with whatever Python
    Ansible uses on the target.
  - Every result carries the service's C(servicectl status --json) entry in RV(status).
  - A failure returns servicectl's own message in C(msg) and its LSB exit code in C(rc).
author:
  - servicectl contributors (@servicectl)
options:
  name:
    description:
      - The service's name, that is, the stem of its definition file C(NAME.yaml) in the
        services directory (letters, digits, C(-), C(_), C(.), C(@); not starting with C(.)).
    type: str
    required: true
    aliases: [service]
  state:
    description:
      - V(started) starts the service if it is not running (C(servicectl start)); a service
        already running or still starting is left alone.
      - V(stopped) stops it if it is not stopped (C(servicectl stop)). A service that is
        C(dead) (its PID file left behind) is stopped too, which cleans the stale PID file.
      - V(restarted) always restarts it (C(servicectl restart)); running services that depend
        on it are restarted as well, as servicectl does.
      - "V(reloaded) always reloads it (C(servicectl reload)). The service must be running:
        a reload of a stopped service fails with rc 7, and of a service whose definition says
        C(reload: false) with rc 3."
      - When omitted, no process is touched.
    type: str
    choices: [started, stopped, restarted, reloaded]
  enabled:
    description:
      - Whether C(servicectl startall) (the boot script) starts the service.
      - Set with C(servicectl enable NAME) or C(servicectl disable NAME). When the installed
        servicectl has no such commands (exit 2), the C(enabled) key of the definition file is
        set instead, after the result has passed C(servicectl check).
      - Whether anything changes is decided from C(servicectl list --json).
    type: bool
  definition:
    description:
      - The service's definition, as YAML text or as a mapping (written out as block YAML).
      - It is validated with C(servicectl check) in a temporary services directory that holds a
        copy of the other definitions and drop-ins, symlinks to everything else in the services
        directory (so that relative paths and C(depends) are judged as in place), and the same
        run and log directories.
      - It is written to O(services_dir)/NAME.yaml (or NAME.yml if only that file exists) only
        when it differs from the file in place. A new file gets mode 0644; a replaced file keeps
        its mode, owner and group. A symlink in its place is refused. The services directory is
        created (mode 0755) when missing.
      - Nothing is written into a services directory that C(servicectl) would refuse as root
        (exit code 4), such as one another user could write or replace, or one reached through
        a symlink another user could have made.
      - Changing the definition of a running service does not restart it; notify a handler
        with O(state=restarted), or use O(state=restarted) when the result is changed.
    type: raw
  services_dir:
    description:
      - The directory of service definitions (C(servicectl -d)).
      - Defaults to E(SERVICECTL_SERVICES_DIR) when set on the target, else
        C(/etc/servicectl/services.d). It is always passed to servicectl explicitly.
    type: path
  run_dir:
    description:
      - The directory of PID files, state records and locks (C(servicectl --run-dir)).
      - When omitted, servicectl's own default applies (E(SERVICECTL_RUN_DIR), else
        C(/run/servicectl) as root).
    type: path
  log_dir:
    description:
      - The directory of the services' output logs (C(servicectl --log-dir)).
      - When omitted, servicectl's own default applies (E(SERVICECTL_LOG_DIR), else
        C(/var/log/servicectl) as root).
    type: path
  executable:
    description:
      - The servicectl program to run, by path or by name.
      - When omitted, C(servicectl) is looked up on E(PATH) (and the usual sbin directories).
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
notes:
  - With no O(state), O(enabled) or O(definition), the module only reports the service's
    status.
  - O(definition), O(enabled) and O(state) are applied in that order.
  - V(restarted) and V(reloaded) always report a change.
requirements:
  - servicectl on the target (C(pip install servicectl)).
seealso:
  - module: ansible.builtin.service
  - module: ansible.builtin.sysvinit
"""

EXAMPLES = r"""
- name: Install the web service's definition and start it
  servicectl.servicectl.servicectl:
    name: web
    definition:
      description: Demo HTTP server
      command: python3 -m http.server 8080 --bind 127.0.0.1
      user: www-data
      ready:
        http: http://127.0.0.1:8080/
    state: started
    enabled: true

- name: Install a definition from a file of the playbook, restart when it changed
  servicectl.servicectl.servicectl:
    name: worker
    definition: "{{ lookup('ansible.builtin.file', 'services/worker.yaml') }}"
  notify: Restart worker

- name: Reload the web service
  servicectl.servicectl.servicectl:
    name: web
    state: reloaded

- name: Keep a service out of startall, and stopped
  servicectl.servicectl.servicectl:
    name: legacy
    enabled: false
    state: stopped

- name: Read the status, then act on it
  servicectl.servicectl.servicectl:
    name: web
    services_dir: /srv/app/services.d
    run_dir: /run/app
  register: web

- name: Fail unless it runs
  ansible.builtin.assert:
    that: web.status.state == "running"
    fail_msg: "web is {{ web.status.state }}"
"""

RETURN = r"""
name:
  description: The service's name.
  returned: always
  type: str
  sample: web
status:
  description:
    - The service's entry of C(servicectl status --json NAME) after the task (in check mode,
      the status before it).
    - Which keys it has depends on the servicectl version; these are always there.
  returned: success
  type: dict
  contains:
    name:
      description: The service's name.
      type: str
      returned: always
    state:
      description:
        - C(running), C(starting), C(stopped), C(dead) (PID file left, process gone),
          C(failed) (supervisor gave up), C(invalid) (broken definition) or C(unknown).
      type: str
      returned: always
    pid:
      description: The main PID, or null.
      type: int
      returned: always
    uptime_seconds:
      description: Seconds since the service started, or null.
      type: float
      returned: always
    exit_code:
      description: The LSB status code (0 running, 1 dead, 3 stopped, 4 unknown or invalid).
      type: int
      returned: always
  sample:
    name: web
    state: running
    pid: 4242
    uptime_seconds: 0.31
    exit_code: 0
    description: Demo HTTP server
    notes: []
    error: null
enabled:
  description: Whether startall starts the service, after the task.
  returned: when O(enabled) is given
  type: bool
  sample: true
definition_file:
  description: The definition file written or compared.
  returned: when O(definition) is given, or O(enabled) was set in the file
  type: str
  sample: /etc/servicectl/services.d/web.yaml
actions:
  description: The servicectl commands that ran, or would have run in check mode, in order.
  returned: always
  type: list
  elements: str
  sample: [write /etc/servicectl/services.d/web.yaml, enable, start]
msg:
  description: What servicectl said about the actions (its output lines), or its error message.
  returned: always
  type: str
  sample: "web: started (pid 4242)"
rc:
  description: On failure, servicectl's exit code (LSB). 5 unknown service or program, 6
    invalid definition, 7 not running, 1 any other failure.
  returned: failure
  type: int
  sample: 6
stdout:
  description: On failure, the standard output of the servicectl command that failed.
  returned: failure
  type: str
stderr:
  description: On failure, the standard error of the servicectl command that failed.
  returned: failure
  type: str
  sample: "servicectl: /etc/servicectl/services.d/web.yaml: stop_timout: unknown key"
cmd:
  description: On failure, the servicectl command line that failed.
  returned: failure
  type: list
  elements: str
"""

import errno
import json
import os
import re
import shutil
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from ansible_collections.servicectl.servicectl.plugins.module_utils.definitions import (
    definition_path,
    mirror_services_dir,
    set_enabled,
    to_yaml,
    write_atomic,
)

DEFAULT_SERVICES_DIR = "/etc/servicectl/services.d"
NAME_RE = re.compile(r"\A[A-Za-z0-9_@-][A-Za-z0-9_.@-]*\Z")
RUNNING_STATES = ("running", "starting")
ACTIONS = {"restarted": "restart", "reloaded": "reload"}

# ---------------------------------------------------------------------------------------------
# Files


def read_definition(module, path):
    """The file's bytes, or None when there is none; a symlink or non-regular file fails."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        if exc.errno == errno.ELOOP or os.path.islink(path):
            module.fail_json(
                msg="%s is a symlink; this module never writes through or over one: replace it "
                "with a regular file, or point services_dir at the directory it leads to" % path
            )
        module.fail_json(msg="%s cannot be read: %s" % (path, to_native(exc.strerror)))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            module.fail_json(msg="%s is not a regular file; a definition must be one" % path)
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# servicectl


class Servicectl(object):
    """Runs the servicectl executable with the task's directories."""

    def __init__(self, module):
        self.module = module
        self.name = module.params["name"]
        self.exe = self._find_executable(module.params["executable"])
        services_dir = module.params["services_dir"]
        if not services_dir:
            services_dir = os.environ.get("SERVICECTL_SERVICES_DIR") or DEFAULT_SERVICES_DIR
        self.services_dir = os.path.abspath(services_dir)
        self.run_dir = module.params["run_dir"]
        self.log_dir = module.params["log_dir"]
        self._has_enable = None

    def _find_executable(self, exe):
        if exe and "/" in exe:
            if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
                self.module.fail_json(msg="executable %s is not an executable file" % exe, rc=5)
            return exe
        return self.module.get_bin_path(exe or "servicectl", required=True)

    def argv(self, args, services_dir=None, run_dir=None):
        cmd = [self.exe, "-d", services_dir or self.services_dir]
        run_dir = run_dir or self.run_dir
        if run_dir:
            cmd += ["--run-dir", run_dir]
        if self.log_dir:
            cmd += ["--log-dir", self.log_dir]
        return cmd + list(args)

    def run(self, args, **dirs):
        cmd = self.argv(args, **dirs)
        rc, out, err = self.module.run_command(cmd, environ_update={"NO_COLOR": "1"})
        return cmd, rc, out, err

    def fail(self, cmd, rc, out, err, **extra):
        """Fail the task with servicectl's own message and exit code."""
        msg = (err or out or "").strip() or "%s exited %d" % (cmd[0], rc)
        self.module.fail_json(msg=msg, rc=rc, stdout=out, stderr=err, cmd=cmd, **extra)

    def json(self, args, **dirs):
        cmd, rc, out, err = self.run(args, **dirs)
        try:
            return json.loads(out)
        except ValueError:
            self.fail(cmd, rc or 1, out, err)

    def status(self):
        """The service's ``status --json`` entry (its exit code is the LSB status code)."""
        for entry in self.json(["status", "--json", self.name]) or []:
            if isinstance(entry, dict) and entry.get("name") == self.name:
                return entry
        cmd, rc, out, err = self.run(["check", self.name])
        self.fail(cmd, rc or 1, out, err)

    def listing(self, **dirs):
        """The service's ``list --json`` entry, or None when it has no definition."""
        for entry in self.json(["list", "--json"], **dirs) or []:
            if isinstance(entry, dict) and entry.get("name") == self.name:
                return entry
        return None

    def refuse_untrusted_dir(self):
        """Fail unless servicectl would act on the services directory (or, while it is missing,
        the directory it is to be made in): as root, one another user could write or replace
        (servicectl's exit 4) never receives a definition written by root."""
        path = self.services_dir
        while not os.path.isdir(path) and os.path.dirname(path) != path:
            path = os.path.dirname(path)
        cmd, rc, out, err = self.run(["list", "--json"], services_dir=path)
        if rc == 4:
            self.fail(cmd, rc, out, err)

    def fail_with_check(self):
        """Why the service cannot be acted on, in servicectl's words (``check NAME``)."""
        cmd, rc, out, err = self.run(["check", self.name])
        if rc == 0:
            rc, err = 1, "%s: servicectl reports nothing about this service" % self.name
        self.fail(cmd, rc, out, err)

    def has_enable(self):
        """Whether this servicectl has ``enable``/``disable`` (older ones answer 2, usage)."""
        if self._has_enable is None:
            rc = self.run(["enable", "--help"])[1]
            self._has_enable = rc == 0
        return self._has_enable


# ---------------------------------------------------------------------------------------------
# The three steps: definition, enabled, state


def render_definition(module, definition):
    if isinstance(definition, dict):
        return to_yaml(definition)
    if isinstance(definition, (str, bytes)):
        return to_text(definition)
    module.fail_json(msg="definition must be YAML text or a mapping, not %s" % type(definition))


def validate(sc, path, content, want_enabled):
    """Run ``servicectl check NAME`` on ``content`` in a mirror of the services directory.
    Returns the ``list --json`` entry seen there when ``want_enabled``."""
    module = sc.module
    tmp = tempfile.mkdtemp(prefix="servicectl-check-", dir=module.tmpdir)
    try:
        mirror = os.path.join(tmp, "services.d")
        os.mkdir(mirror)
        skip = (sc.name + ".yaml", sc.name + ".yml")
        try:
            mirror_services_dir(sc.services_dir, mirror, skip)
            with open(os.path.join(mirror, os.path.basename(path)), "wb") as fh:
                fh.write(content)
        except OSError as exc:
            module.fail_json(
                msg="%s: cannot prepare its check in %s: %s" % (sc.name, tmp, to_native(exc)),
                rc=1,
            )
        cmd, rc, out, err = sc.run(["check", sc.name], services_dir=mirror)
        if rc != 0:
            out, err = (s.replace(mirror, sc.services_dir) for s in (out, err))
            sc.fail(cmd, rc, out, err, definition_file=path)
        if want_enabled:
            return sc.listing(services_dir=mirror, run_dir=os.path.join(tmp, "run"))
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def apply_definition(sc, res, want_text, fallback_enabled, want_listing):
    """Write the definition when it differs. Returns, when check mode leaves it unwritten and
    ``want_listing``, the ``list --json`` entry it would give, else None."""
    module = sc.module
    path = definition_path(sc.services_dir, sc.name)
    current = read_definition(module, path)
    if want_text is None:
        if current is None:
            return None
        want_text = to_text(current, errors="surrogate_or_replace")
    if fallback_enabled is not None:
        want_text = set_enabled(want_text, fallback_enabled)
    content = to_bytes(want_text, errors="surrogate_or_strict")
    res["definition_file"] = path
    if content == current:
        return None
    sc.refuse_untrusted_dir()
    listing = validate(sc, path, content, want_listing and module.check_mode)
    res["changed"] = True
    res["actions"].append("write " + path)
    res["diff"].append(
        {
            "before": to_text(current or b"", errors="surrogate_or_replace"),
            "after": want_text,
            "before_header": path if current is not None else path + " (absent)",
            "after_header": path,
        }
    )
    if not module.check_mode:
        try:
            write_atomic(path, content)
        except OSError as exc:
            module.fail_json(msg="%s cannot be written: %s" % (path, to_native(exc)), rc=1)
        return None
    return listing


def apply_enabled(sc, res, enabled, prospective):
    """Bring ``enabled`` to the wanted value (``prospective``: what check mode's unwritten
    definition would say)."""
    module = sc.module
    entry = prospective or sc.listing()
    if entry is None or not entry.get("valid", True) or entry.get("enabled") is None:
        sc.fail_with_check()
    res["enabled"] = entry["enabled"]
    if entry["enabled"] == enabled:
        return
    if not sc.has_enable():
        # The definition file already says it: something else (a drop-in) decides.
        module.fail_json(
            msg="%s: still %s after setting enabled in %s: a drop-in in %s.d decides; "
            "change it there"
            % (
                sc.name,
                "enabled" if entry["enabled"] else "disabled",
                res.get("definition_file"),
                sc.name,
            ),
            rc=1,
        )
    verb = "enable" if enabled else "disable"
    res["changed"] = True
    res["actions"].append(verb)
    res["diff"].append(
        {
            "before": "enabled: %s\n" % ("true" if entry["enabled"] else "false"),
            "after": "enabled: %s\n" % ("true" if enabled else "false"),
            "before_header": "%s (servicectl list)" % sc.name,
            "after_header": "%s (servicectl %s)" % (sc.name, verb),
        }
    )
    res["enabled"] = enabled
    if not module.check_mode:
        cmd, rc, out, err = sc.run([verb, sc.name])
        if rc != 0:
            sc.fail(cmd, rc, out, err)
        res["messages"].append(out.strip())


def needed_action(sc, state, entry, new_definition):
    """The servicectl command that brings the service to ``state``, or None."""
    current = entry.get("state")
    if current in ("invalid", "unknown"):
        if not (sc.module.check_mode and new_definition):
            sc.fail_with_check()
        current = "stopped"  # check mode: the definition would be written first
    if state == "started":
        return None if current in RUNNING_STATES else "start"
    if state == "stopped":
        return None if current == "stopped" else "stop"
    return ACTIONS[state]


def apply_state(sc, res, state, new_definition):
    """Run the action ``state`` needs. Returns the status entry when nothing ran (it is still
    current), else None."""
    module = sc.module
    entry = sc.status()
    action = needed_action(sc, state, entry, new_definition)
    if action is None:
        return entry
    res["changed"] = True
    res["actions"].append(action)
    if module.check_mode:
        return entry
    cmd, rc, out, err = sc.run([action, sc.name])
    if rc != 0:
        sc.fail(cmd, rc, out, err, status=sc.status(), actions=res["actions"])
    res["messages"].append(out.strip())
    return None


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["service"]),
            state=dict(type="str", choices=["started", "stopped", "restarted", "reloaded"]),
            enabled=dict(type="bool"),
            definition=dict(type="raw"),
            services_dir=dict(type="path"),
            run_dir=dict(type="path"),
            log_dir=dict(type="path"),
            executable=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    name = params["name"]
    if not NAME_RE.match(name):
        module.fail_json(
            msg="%r is not a service name (letters, digits, -, _, ., @; not starting with .)"
            % name,
            rc=2,
        )
    sc = Servicectl(module)
    res = dict(changed=False, name=name, actions=[], diff=[], messages=[])
    enabled = params["enabled"]
    fallback = enabled if enabled is not None and not sc.has_enable() else None
    want_text = None
    if params["definition"] is not None:
        want_text = render_definition(module, params["definition"])
    prospective = None
    if want_text is not None or fallback is not None:
        prospective = apply_definition(sc, res, want_text, fallback, enabled is not None)
    new_definition = bool(res["actions"])
    if enabled is not None:
        apply_enabled(sc, res, enabled, prospective)
    entry = None
    if params["state"]:
        entry = apply_state(sc, res, params["state"], new_definition)
    res["status"] = entry or sc.status()
    res["msg"] = "\n".join(m for m in res.pop("messages") if m)
    diff = res.pop("diff")
    if module._diff and diff:
        res["diff"] = diff
    module.exit_json(**res)


def main():
    run_module()


if __name__ == "__main__":
    main()
