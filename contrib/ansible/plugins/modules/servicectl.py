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
    C(servicectl startall) at boot, install their YAML definitions and drop-ins, and remove
    them.
  - A new O(definition) or O(dropins) lands only after its config test passed. The files are
    first written into a private staging copy of the services directory, where
    C(servicectl check --run-checks NAME) validates them and runs the service's
    C(check_command) as the service's user, as servicectl does before a start. Only then is
    each staged file moved into place by an atomic rename, never through or over a symlink.
    Check mode runs the same validation and config test.
  - O(state=started) means running the definition that is on disk. A service that runs but was
    started with another definition (the parsed definitions differ; O(enabled) never counts) is
    restarted.
  - When a start, restart or reload fails after this task changed the files, and O(backup) is
    on (the default when the service runs), the previous files are put back and a service that
    ran is started again under them. The task still fails, with servicectl's message and exit
    code, and says that it rolled back. A rerun tries again.
  - The module runs the C(servicectl) executable on the target and reads its C(--json)
    output. It does not import servicectl's Python package, so it works with whatever Python
    Ansible uses on the target.
  - Every result carries the service's C(servicectl status --json) entry in RV(status).
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
      - V(started) starts the service if it is not running (C(servicectl start)). A service
        that runs the definition on disk is left alone; one that runs another definition (its
        RV(definition_changed) is true, for example after this task wrote a new one) is
        restarted.
      - V(stopped) stops it if it is not stopped (C(servicectl stop)). A service that is
        C(dead) (its PID file left behind) is stopped too, which cleans the stale PID file.
      - V(restarted) always restarts it (C(servicectl restart)); running services that depend
        on it are restarted as well, as servicectl does.
      - "V(reloaded) always reloads it (C(servicectl reload)). The service must be running:
        a reload of a stopped service fails with rc 7, and of a service whose definition says
        C(reload: false) with rc 3."
      - V(absent) stops the service, then removes its definition file and its drop-in
        directory C(NAME.d) (which takes it out of C(startall) too). With O(backup=true), the
        definition is kept as a timestamped copy and the drop-in directory is renamed to one.
      - When omitted, no process is touched.
    type: str
    choices: [started, stopped, restarted, reloaded, absent]
  enabled:
    description:
      - Whether C(servicectl startall) (the boot script) starts the service.
      - Set with C(servicectl enable NAME) or C(servicectl disable NAME), which write the
        drop-in C(NAME.d/50-enabled.yaml). When the installed servicectl has no such commands
        (exit 2), the C(enabled) key of the definition file is set instead.
      - Never counts as a change of the running service's definition (no restart).
    type: bool
  definition:
    description:
      - The service's definition, as YAML text or as a mapping (written out as block YAML),
        for O(services_dir)/NAME.yaml (or NAME.yml if only that file exists).
      - Written only when it differs from the file in place, and only after it passed
        C(servicectl check --run-checks) in a staging copy of the services directory (see the
        description). A new file gets mode 0644; a replaced file keeps its mode, owner and
        group. A symlink in its place is refused. The services directory is created (mode
        0755) when missing.
      - Nothing is written into a services directory that C(servicectl) would refuse as root
        (exit code 4), such as one another user could write or replace.
    type: raw
  dropins:
    description:
      - Drop-ins of the service, C(NAME.d/FILE), as a mapping of file name to content (YAML
        text or a mapping), or to V(null) to remove that drop-in. C(.yaml) is added to a name
        without C(.yaml) or C(.yml).
      - Validated and installed the same way as O(definition), together with it.
      - Drop-ins not named here are left alone. C(50-enabled.yaml) belongs to O(enabled).
    type: dict
    version_added: "0.2.0"
  backup:
    description:
      - Keep a timestamped copy of every definition file or drop-in this task replaces or
        removes, named as M(ansible.builtin.template) names its backups
        (C(FILE.PID.YYYY-MM-DD@HH:MM:SS~), which servicectl ignores), and roll the files back
        when the start, restart or reload that follows fails.
      - Default V(true) when the service runs at the start of the task, else V(false); with
        O(state=absent) the default is V(false).
    type: bool
    version_added: "0.2.0"
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
      - When omitted, C(servicectl) is looked up on E(PATH) and in C(/usr/local/sbin),
        C(/usr/sbin) and C(/sbin).
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Validation and the config test run in check mode too (in the staging copy, whose
        C(directories) are not made), so a refused definition fails the check run.
      - A running service whose files would change is reported as to be restarted with
        O(state=started); whether the parsed definition really differs is known once the
        files are written.
  diff_mode:
    support: full
  platform:
    platforms: posix
notes:
  - With no O(state), O(enabled), O(definition) or O(dropins), the module only reports the
    service's status.
  - O(definition) and O(dropins), then O(enabled), then O(state) are applied in that order.
  - V(restarted) and V(reloaded) always report a change.
  - The staging copy is a hidden directory C(.servicectl-staging-*) in the services directory,
    removed at the end of the task; servicectl ignores it.
requirements:
  - servicectl on the target, from the C(servicectl-sysv) wheel you built (the role
    C(servicectl.servicectl.servicectl) installs it; C(servicectl) on PyPI is an unrelated
    project).
seealso:
  - module: ansible.builtin.service
  - module: ansible.builtin.sysvinit
  - module: ansible.builtin.template
  - module: servicectl.servicectl.servicectl_facts
"""

EXAMPLES = r"""
- name: Install the web service's definition and run it (restarted when it changed)
  servicectl.servicectl.servicectl:
    name: web
    definition:
      description: Demo HTTP server
      command: python3 -m http.server 8080 --bind 127.0.0.1
      user: www-data
      check_command: [python3, -c, "import http.server"]
      ready:
        http: http://127.0.0.1:8080/
    state: started
    enabled: true

- name: A drop-in raises the file limit; another one goes away
  servicectl.servicectl.servicectl:
    name: web
    dropins:
      10-limits:
        limits: {nofile: 65536}
      20-old: null
    state: started

- name: Install a definition from a file of the playbook, restart through a handler
  servicectl.servicectl.servicectl:
    name: worker
    definition: "{{ lookup('ansible.builtin.file', 'services/worker.yaml') }}"
  notify: Restart worker

- name: Reload the web service
  servicectl.servicectl.servicectl:
    name: web
    state: reloaded

- name: Remove a service (stopped, definition and drop-ins gone)
  servicectl.servicectl.servicectl:
    name: legacy
    state: absent

- name: Read the status, then act on it
  servicectl.servicectl.servicectl:
    name: web
    services_dir: /srv/app/services.d
    run_dir: /run/app
  register: web

- name: Say so when web runs an older definition than the one on disk
  ansible.builtin.debug:
    msg: "web runs an older definition: {{ web.definition_changes | join(', ') }}"
  when: web.definition_changed
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
  returned: success, and failures of an action or a rollback
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
    definition_changed: false
    definition_changes: []
definition_changed:
  description:
    - Whether the running service runs another definition than the one on disk (its parsed
      definition, drop-ins merged, compared with what was recorded at its start; O(enabled)
      never counts). False when it does not run. After a successful task with
      O(state=started), always false.
  returned: success
  type: bool
  sample: false
definition_changes:
  description:
    - The keys that differ between the running definition and the one on disk, in the
      definition's order (C(environment.FOO) for one variable), or null when the servicectl
      that started the service did not keep its definition.
  returned: success
  type: list
  elements: str
  sample: [command, environment.FOO]
enabled:
  description: Whether startall starts the service, after the task.
  returned: when O(enabled) is given
  type: bool
  sample: true
definition_file:
  description: The definition file written, compared or removed.
  returned: when O(definition) or O(dropins) is given, or with O(state=absent)
  type: str
  sample: /etc/servicectl/services.d/web.yaml
backup_file:
  description:
    - The backup of the definition file (or, when only drop-ins changed, of the first drop-in)
      this task replaced or removed.
  returned: when a file was backed up (O(backup))
  type: str
  sample: /etc/servicectl/services.d/web.yaml.4242.2025-01-31@12:00:00~
backup_files:
  description: Every backup this task made, the definition's first.
  returned: when a file was backed up (O(backup))
  type: list
  elements: str
rolled_back:
  description:
    - True when the files were put back after the start, restart or reload that followed
      their change failed. The task has failed then.
  returned: always
  type: bool
  sample: false
actions:
  description: What ran, or would have run in check mode, in order.
  returned: always
  type: list
  elements: str
  sample: [write /etc/servicectl/services.d/web.yaml, enable, restart]
msg:
  description: What servicectl said about the actions (its output lines), or its error message.
  returned: always
  type: str
  sample: "web: started (pid 4242)"
rc:
  description: On failure, servicectl's exit code (LSB). 5 unknown service or program, 6
    invalid definition or failed config test, 7 not running, 1 any other failure.
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
  sample: "servicectl: /etc/servicectl/services.d/web.yaml (new content; not installed):
    stop_timout: unknown key (did you mean stop_timeout?)"
cmd:
  description: On failure, the servicectl command line that failed.
  returned: failure
  type: list
  elements: str
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from ansible_collections.servicectl.servicectl.plugins.module_utils.definitions import (
    RefusedPath,
    definition_path,
    read_regular,
    set_enabled,
    to_yaml,
)
from ansible_collections.servicectl.servicectl.plugins.module_utils.runner import (
    RUNNING_STATES,
    Servicectl,
    drifted,
)
from ansible_collections.servicectl.servicectl.plugins.module_utils.staging import (
    Change,
    Staging,
    remove_tree,
    restore,
)

NAME_RE = re.compile(r"\A[A-Za-z0-9_@-][A-Za-z0-9_.@-]*\Z")
DROPIN_RE = re.compile(r"\A[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*\Z")
ENABLED_DROPIN = "50-enabled.yaml"
DONE_STATES = ("running", "starting", "exited")  # state=started needs nothing more
ACTIONS = {"restarted": "restart", "reloaded": "reload"}


# ---------------------------------------------------------------------------------------------
# What the files should hold


def render(module, value, what):
    if isinstance(value, dict):
        return to_yaml(value)
    if isinstance(value, (str, bytes)):
        return to_text(value)
    module.fail_json(msg="%s must be YAML text or a mapping, not %s" % (what, type(value)))


def read_or_fail(module, path):
    try:
        return read_regular(path)
    except RefusedPath as exc:
        module.fail_json(msg=to_native(exc), rc=1)


def dropin_file(module, name, file_name):
    if not file_name.endswith((".yaml", ".yml")):
        file_name += ".yaml"
    if not DROPIN_RE.match(file_name) or file_name.endswith("~"):
        module.fail_json(
            msg="%s.d/%s is not a drop-in name (letters, digits, -, _, ., @, +; not starting "
            "with .)" % (name, file_name),
            rc=2,
        )
    if file_name == ENABLED_DROPIN:
        module.fail_json(
            msg="%s.d/%s belongs to servicectl enable/disable: use the enabled option"
            % (name, file_name),
            rc=2,
        )
    return file_name


def plan(sc, want_text, dropins, fallback_enabled):
    """The Changes that bring the service's files to what the task asks."""
    module, name = sc.module, sc.name
    path = definition_path(sc.services_dir, name)
    current, current_st = read_or_fail(module, path)
    if want_text is None and fallback_enabled is not None and current is not None:
        want_text = to_text(current, errors="surrogate_or_replace")
    if want_text is not None and fallback_enabled is not None:
        want_text = set_enabled(want_text, fallback_enabled)
    changes = []
    if want_text is not None:
        content = to_bytes(want_text, errors="surrogate_or_strict")
        if content != current:
            changes.append(Change(path, content, current, current_st))
    directory = os.path.join(sc.services_dir, name + ".d")
    for file_name, value in sorted((dropins or {}).items()):
        dropin = os.path.join(directory, dropin_file(module, name, to_text(file_name)))
        old, old_st = read_or_fail(module, dropin)
        new = None
        if value is not None:
            new = to_bytes(render(module, value, "a drop-in"), errors="surrogate_or_strict")
        if new != old:
            changes.append(Change(dropin, new, old, old_st))
    return path, changes


# ---------------------------------------------------------------------------------------------
# Files: staged, checked, backed up, installed


def apply_files(sc, res, changes, backup, want_listing):
    """Stage ``changes``, have servicectl check them there (validation and config test), then
    back up and install them. Returns, in check mode with ``want_listing``, the ``list --json``
    entry the staged definition gives, else None."""
    module = sc.module
    sc.refuse_untrusted_dir()
    if not module.check_mode and not os.path.isdir(sc.services_dir):
        os.makedirs(sc.services_dir, 0o755)
        os.chmod(sc.services_dir, 0o755)
    try:
        staging = Staging(sc.services_dir, module.tmpdir)
    except OSError as exc:
        module.fail_json(msg="%s: cannot make its staging copy: %s" % (sc.name, exc), rc=1)
    try:
        listing = check_staged(sc, staging, changes, want_listing)
        for change in changes:
            res["actions"].append("%s %s" % (change.verb, change.path))
            res["diff"].append(diff_of(change))
        res["changed"] = True
        if module.check_mode:
            return listing
        if backup:
            for change in changes:
                if change.old is not None:
                    change.backup = module.backup_local(change.path)
            kept = [c.backup for c in changes if c.backup]
            if kept:
                res["backup_file"], res["backup_files"] = kept[0], kept
        for done, change in enumerate(changes):
            try:
                staging.install(change)
            except (OSError, RefusedPath) as exc:
                restore(changes[:done])
                module.fail_json(
                    msg="%s cannot be installed: %s; nothing was changed"
                    % (change.path, to_native(exc)),
                    rc=1,
                )
        return None
    finally:
        staging.cleanup()


def check_staged(sc, staging, changes, want_listing):
    """``servicectl check --run-checks NAME`` on the staging copy; a refusal fails the task
    with servicectl's words (naming the new content as such) and exit code."""
    module = sc.module
    name = sc.name
    dropin_dir = os.path.join(sc.services_dir, name + ".d") if module.check_mode else None
    try:
        staging.fill(changes, dropin_dir)
    except OSError as exc:
        module.fail_json(
            msg="%s: cannot prepare its check in %s: %s" % (name, staging.root, to_native(exc)),
            rc=1,
        )
    steps = [["check", name], ["check", "--run-checks", name]]
    if not module.check_mode:
        steps = steps[1:]  # one run: validation, directories, config test
    for args in steps:
        cmd, rc, out, err = sc.run(args, services_dir=staging.root)
        if rc != 0:
            out, err = (staging.shown(s, changes) for s in (out, err))
            said = (err or out).strip() or "servicectl check exited %d" % rc
            sc.fail(
                cmd,
                rc,
                out,
                err,
                msg="%s\n%s: refused; nothing was installed (the files in place are unchanged)"
                % (said, name),
                definition_file=res_file(sc),
            )
    if want_listing:
        return sc.listing(services_dir=staging.root, run_dir=staging.run_dir)
    return None


def res_file(sc):
    return definition_path(sc.services_dir, sc.name)


def diff_of(change):
    def text(data):
        return to_text(data or b"", errors="surrogate_or_replace")

    return {
        "before": text(change.old),
        "after": text(change.new),
        "before_header": change.path if change.old is not None else change.path + " (absent)",
        "after_header": change.path if change.new is not None else change.path + " (absent)",
    }


# ---------------------------------------------------------------------------------------------
# enabled


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


# ---------------------------------------------------------------------------------------------
# state


def needed_action(sc, state, entry, files_changed):
    """The servicectl command that brings the service to ``state``, or None."""
    current = entry.get("state")
    if current in ("invalid", "unknown"):
        if not (sc.module.check_mode and files_changed):
            sc.fail_with_check(status=entry)
        current = "stopped"  # check mode: the files would be written first
    if state == "started":
        if current not in DONE_STATES:
            return "start"
        if current in RUNNING_STATES and (
            drifted(entry) or (sc.module.check_mode and files_changed)
        ):
            return "restart"
        return None
    if state == "stopped":
        return None if current == "stopped" else "stop"
    return ACTIONS[state]


def apply_state(sc, res, state, changes, backup, was_running, entry=None):
    """Run the action ``state`` needs; when it fails after this task changed the files, roll
    them back (with ``backup``). ``entry``: the status, when it is still current. Returns the
    status entry when nothing ran, else None."""
    module = sc.module
    entry = entry or sc.status()
    action = needed_action(sc, state, entry, bool(changes))
    if action is None:
        return entry
    res["changed"] = True
    res["actions"].append(action)
    if module.check_mode:
        return entry
    cmd, rc, out, err = sc.run([action, sc.name])
    if rc != 0:
        if changes and backup:
            roll_back(sc, res, changes, was_running, action, (cmd, rc, out, err))
        sc.fail(cmd, rc, out, err, status=sc.status(), actions=res["actions"])
    res["messages"].append(out.strip())
    return None


def roll_back(sc, res, changes, was_running, action, failed):
    """Put the previous files back; a service that ran before the task runs again under them.
    Then fail the task with servicectl's message and exit code, saying what was done."""
    cmd, rc, out, err = failed
    name = sc.name
    said = (err or out or "").strip() or "%s exited %d" % (cmd[0], rc)
    problems = restore(changes)
    res["actions"].append("roll back")
    entry = sc.status()
    restarted = ""
    if was_running and entry.get("state") not in RUNNING_STATES and not problems:
        res["actions"].append("start")
        start = sc.run(["start", name])
        if start[1] != 0:
            restarted = "; starting it again failed too: %s" % (start[3] or start[2]).strip()
        entry = sc.status()
    if problems:
        how = "but could not restore %s" % "; ".join(problems)
    elif all(c.old is None for c in changes):
        how = "the new files were removed again; the service is %s%s" % (
            entry.get("state"),
            restarted,
        )
    elif entry.get("state") in RUNNING_STATES:
        how = "the previous definition is back in place and the service runs it (pid %s)" % (
            entry.get("pid"),
        )
    else:
        how = "the previous definition is back in place; the service is %s%s" % (
            entry.get("state"),
            restarted,
        )
    backups = [c.backup for c in changes if c.backup]
    extra = dict(backup_file=backups[0], backup_files=backups) if backups else {}
    sc.fail(
        cmd,
        rc,
        out,
        err,
        msg="%s\n%s: the %s failed under the new definition, so it was rolled back: %s"
        % (said, name, action, how),
        status=entry,
        actions=res["actions"],
        rolled_back=True,
        **extra,
    )


# ---------------------------------------------------------------------------------------------
# state=absent


def apply_absent(sc, res, backup):
    """Stop the service, then remove its definition and its drop-in directory."""
    module, name = sc.module, sc.name
    path = definition_path(sc.services_dir, name)
    dropin_dir = os.path.join(sc.services_dir, name + ".d")
    res["definition_file"] = path
    entry = sc.status()
    if entry.get("state") not in ("stopped", "unknown", "invalid"):
        res["changed"] = True
        res["actions"].append("stop")
        if not module.check_mode:
            cmd, rc, out, err = sc.run(["stop", name])
            if rc != 0:
                sc.fail(cmd, rc, out, err, status=sc.status(), actions=res["actions"])
            res["messages"].append(out.strip())
    current, dummy = read_or_fail(module, path)
    for target, is_dir in ((dropin_dir, True), (path, False)):
        if not os.path.lexists(target):
            continue
        res["changed"] = True
        res["actions"].append("remove " + target)
        if not is_dir:
            res["diff"].append(diff_of(Change(target, None, current, None)))
        if module.check_mode:
            continue
        try:
            if backup:
                kept = module.backup_local(target) if not is_dir else _keep_dir(target)
                res.setdefault("backup_files", []).append(kept)
                if not is_dir:
                    res["backup_file"] = kept
            elif is_dir:
                remove_tree(target)
            if not is_dir:
                os.unlink(target)
        except OSError as exc:
            module.fail_json(msg="%s cannot be removed: %s" % (target, to_native(exc)), rc=1)
    return entry if module.check_mode else sc.status()


def _keep_dir(path):
    """Rename a drop-in directory to a timestamped backup name, as backup_local names files."""
    import time

    kept = "%s.%s.%s" % (path, os.getpid(), time.strftime("%Y-%m-%d@%H:%M:%S~"))
    os.rename(path, kept)
    return kept


# ---------------------------------------------------------------------------------------------


def parse_args():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["service"]),
            state=dict(
                type="str", choices=["started", "stopped", "restarted", "reloaded", "absent"]
            ),
            enabled=dict(type="bool"),
            definition=dict(type="raw"),
            dropins=dict(type="dict"),
            backup=dict(type="bool"),
            services_dir=dict(type="path"),
            run_dir=dict(type="path"),
            log_dir=dict(type="path"),
            executable=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not NAME_RE.match(params["name"]):
        module.fail_json(
            msg="%r is not a service name (letters, digits, -, _, ., @; not starting with .)"
            % params["name"],
            rc=2,
        )
    if params["state"] == "absent":
        given = [k for k in ("definition", "dropins") if params[k] is not None]
        if params["enabled"]:
            given.append("enabled=true")
        if given:
            module.fail_json(msg="state=absent removes the service: drop %s" % ", ".join(given))
    return module


def run_module():
    module = parse_args()
    params = module.params
    name = params["name"]
    sc = Servicectl(module, name)
    res = dict(changed=False, name=name, actions=[], diff=[], messages=[], rolled_back=False)
    if params["state"] == "absent":
        res["status"] = apply_absent(sc, res, bool(params["backup"]))
        finish(module, res)
    before = sc.status()
    was_running = before.get("state") in RUNNING_STATES
    backup = was_running if params["backup"] is None else params["backup"]
    enabled = params["enabled"]
    want_text = None
    if params["definition"] is not None:
        want_text = render(module, params["definition"], "definition")
    files_asked = want_text is not None or bool(params["dropins"])
    listed = sc.listing() if enabled is not None else None
    changes = []
    if files_asked:
        res["definition_file"], changes = plan(sc, want_text, params["dropins"], None)
    if (
        enabled is not None
        and (changes or listed is None or listed.get("enabled") != enabled)
        and not sc.has_enable()
    ):  # a servicectl without enable/disable: the key is set in the definition file
        res["definition_file"], changes = plan(sc, want_text, params["dropins"], enabled)
    prospective = None
    if changes:
        prospective = apply_files(sc, res, changes, backup, enabled is not None)
    if enabled is not None:
        apply_enabled(sc, res, enabled, prospective if changes else listed)
    entry = None
    if params["state"]:
        current = before if not res["changed"] else None
        entry = apply_state(sc, res, params["state"], changes, backup, was_running, current)
    res["status"] = entry or sc.status()
    finish(module, res)


def finish(module, res):
    status = res["status"]
    drift = bool(status.get("state") in RUNNING_STATES and drifted(status))
    res["definition_changed"] = drift
    res["definition_changes"] = status.get("definition_changes") if drift else []
    res["msg"] = "\n".join(m for m in res.pop("messages") if m)
    diff = res.pop("diff")
    if module._diff and diff:
        res["diff"] = diff
    module.exit_json(**res)


def main():
    run_module()


if __name__ == "__main__":
    main()
