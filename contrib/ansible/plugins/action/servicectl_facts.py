# -*- coding: utf-8 -*-

# Copyright: servicectl contributors
# MIT License (see the collection's LICENSE file)

"""The controller's half of servicectl_facts: runs the module on the target, then merges
servicectl's services into ``ansible_facts.services`` (the fact of
ansible.builtin.service_facts, kept as it was for every other service), unless
``merge_service_facts`` is false."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase

SERVICE_FACTS_KEYS = ("name", "state", "status", "source")


class ActionModule(ActionBase):
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict(self._task.args)
        merge = args.get("merge_service_facts", True)
        got = self._execute_module(
            module_name="servicectl.servicectl.servicectl_facts",
            module_args=args,
            task_vars=task_vars,
        )
        result.update(got)
        if got.get("failed") or not self._truthy(merge):
            return result
        ours = (got.get("ansible_facts") or {}).get("servicectl_services") or {}
        seen = (task_vars.get("ansible_facts") or {}).get("services")
        services = dict(seen) if isinstance(seen, dict) else {}
        for name, entry in ours.items():
            services[name] = dict((k, entry.get(k)) for k in SERVICE_FACTS_KEYS)
        result["ansible_facts"]["services"] = services
        return result

    @staticmethod
    def _truthy(value):
        if isinstance(value, str):
            return value.strip().lower() not in ("false", "no", "off", "0", "n")
        return bool(value)
