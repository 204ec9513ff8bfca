#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: servicectl contributors
# MIT License (see the collection's LICENSE file)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: servicectl_facts
short_description: Return the state of every service servicectl manages, as facts
version_added: "0.2.0"
description:
  - Gathers every service of a services directory, as M(ansible.builtin.service_facts) does for
    the init system's services, from C(servicectl status --json) and C(servicectl list --json).
  - The facts go to RV(ansible_facts.servicectl_services), keyed by service name. The keys
    C(name), C(state), C(status) and C(source) of each entry mean what they mean in
    M(ansible.builtin.service_facts).
  - With O(merge_service_facts), servicectl's services are also merged into
    RV(ansible_facts.services), the fact of M(ansible.builtin.service_facts), with those four
    keys, so that tasks written for it see them; the other services found there (by an
    earlier M(ansible.builtin.service_facts)) are kept as they were.
  - Changes nothing on the target.
author:
  - servicectl contributors (@servicectl)
options:
  services_dir:
    description:
      - The directory of service definitions (C(servicectl -d)).
      - Defaults to E(SERVICECTL_SERVICES_DIR) when set on the target, else
        C(/etc/servicectl/services.d).
    type: path
  run_dir:
    description:
      - The directory of PID files and state records (C(servicectl --run-dir)); servicectl's
        default when omitted.
    type: path
  log_dir:
    description:
      - The directory of the services' logs (C(servicectl --log-dir)); servicectl's default when
        omitted.
    type: path
  executable:
    description:
      - The servicectl program to run, by path or by name (default C(servicectl) on E(PATH) or
        in the usual sbin directories).
    type: path
  merge_service_facts:
    description:
      - Also merge servicectl's services into RV(ansible_facts.services) (done on the
        controller, by the action plugin of this module).
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: posix
notes:
  - As with M(ansible.builtin.service_facts), read an entry with the name as a key
    (C(ansible_facts.servicectl_services['web-1'])), since names may hold C(-) or C(@).
requirements:
  - servicectl on the target.
seealso:
  - module: ansible.builtin.service_facts
  - module: servicectl.servicectl.servicectl
"""

EXAMPLES = r"""
- name: Gather servicectl's services
  servicectl.servicectl.servicectl_facts:

- name: List the services that run an older definition than the one on disk
  ansible.builtin.debug:
    msg: "{{ ansible_facts.servicectl_services | dict2items
             | selectattr('value.definition_changed') | map(attribute='key') | list }}"

- name: Restart web only if it runs
  servicectl.servicectl.servicectl:
    name: web
    state: restarted
  when: ansible_facts.servicectl_services['web'].state == 'running'
"""

RETURN = r"""
ansible_facts:
  description: Facts added to C(ansible_facts).
  returned: always
  type: complex
  contains:
    services:
      description:
        - The fact of M(ansible.builtin.service_facts), with servicectl's services merged in
          (C(name), C(state), C(status), C(source)); the other services in it are left as they
          were.
      returned: when O(merge_service_facts) is true
      type: dict
    servicectl_services:
      description: Every service of the services directory (and every running instance of a
        template), by name.
      returned: always
      type: dict
      contains:
        name:
          description: The service's name.
          returned: always
          type: str
          sample: web
        source:
          description: Always C(servicectl) (as C(sysv) or C(systemd) in service_facts).
          returned: always
          type: str
          sample: servicectl
        state:
          description:
            - servicectl's state, C(running), C(starting), C(stopped), C(dead), C(failed),
              C(invalid), C(exited) or C(unknown).
          returned: always
          type: str
          sample: running
        status:
          description: C(enabled) or C(disabled) (in or out of startall), or C(unknown)
            for an invalid definition, as in service_facts.
          returned: always
          type: str
          sample: enabled
        enabled:
          description: Whether startall starts it; null when its definition is invalid.
          returned: always
          type: bool
          sample: true
        pid:
          description: The main PID, or null.
          returned: always
          type: int
          sample: 4242
        supervised:
          description: Whether a servicectl supervisor (or the one named by C(supervisor))
            watches it now.
          returned: always
          type: bool
          sample: false
        supervisor:
          description: What supervises it, as C(status) says, or null.
          returned: always
          type: str
        definition_changed:
          description: Whether it runs another definition than the one on disk (parsed
            definitions compared; C(enabled) never counts).
          returned: always
          type: bool
          sample: false
        definition_changes:
          description: The keys that differ (C(environment.FOO) for one variable); null when
            not known.
          returned: always
          type: list
          elements: str
        health:
          description: The health of a supervised service with a C(health) probe, as
            C(status --json) reports it; null when servicectl reports none.
          returned: always
          type: raw
        uptime_seconds:
          description: Seconds since it started, or null.
          returned: always
          type: float
        exit_code:
          description: The LSB status code (0 running, 1 dead, 3 stopped, 4 unknown).
          returned: always
          type: int
        restarts:
          description: Respawns since its last start (supervised services), or null.
          returned: always
          type: int
        last_exit:
          description: "How its last process ended (C({code: N}) or C({signal: NAME}), with
            C(at)), or null."
          returned: always
          type: dict
        description:
          description: Its description.
          returned: always
          type: str
        error:
          description: Why it is invalid or unknown, or null.
          returned: always
          type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.servicectl.servicectl.plugins.module_utils.runner import (
    RUNNING_STATES,
    Servicectl,
    drifted,
    supervised,
)


def fact(entry, listed):
    """One service's facts from its ``status --json`` and ``list --json`` entries."""
    enabled = listed.get("enabled") if listed and listed.get("valid", True) else None
    running = entry.get("state") in RUNNING_STATES
    changed = bool(running and drifted(entry))
    return {
        "name": entry.get("name"),
        "source": "servicectl",
        "state": entry.get("state"),
        "status": "unknown" if enabled is None else ("enabled" if enabled else "disabled"),
        "enabled": enabled,
        "pid": entry.get("pid"),
        "supervised": supervised(entry),
        "supervisor": entry.get("supervisor"),
        "definition_changed": changed,
        "definition_changes": entry.get("definition_changes") if changed else [],
        "health": entry.get("health"),
        "uptime_seconds": entry.get("uptime_seconds"),
        "exit_code": entry.get("exit_code"),
        "restarts": entry.get("restarts"),
        "last_exit": entry.get("last_exit"),
        "description": entry.get("description"),
        "error": entry.get("error"),
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            services_dir=dict(type="path"),
            run_dir=dict(type="path"),
            log_dir=dict(type="path"),
            executable=dict(type="path"),
            merge_service_facts=dict(type="bool", default=True),  # the action plugin's
        ),
        supports_check_mode=True,
    )
    sc = Servicectl(module)
    listed = sc.listing_all()
    services = {}
    for entry in sc.status_all():
        name = entry.get("name")
        if name:
            services[name] = fact(entry, listed.get(name))
    module.exit_json(changed=False, ansible_facts=dict(servicectl_services=services))


if __name__ == "__main__":
    main()
