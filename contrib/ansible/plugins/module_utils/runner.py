# -*- coding: utf-8 -*-

# Copyright: servicectl contributors
# MIT License (see the collection's LICENSE file)

"""Running the servicectl executable on the target for the collection's modules: the task's
directories passed on every call, ``--json`` output parsed, and a failure reported with
servicectl's own message and exit code."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

DEFAULT_SERVICES_DIR = "/etc/servicectl/services.d"
RUNNING_STATES = ("running", "starting")
UNTRUSTED_ENV = ("PYTHON", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT")
# What `status` said of a drifted service before servicectl had `definition_changed`.
DRIFT_NOTE = "definition changed on disk since start; restart to apply"


class Servicectl(object):
    """Runs the servicectl executable with the task's directories (``services_dir``,
    ``run_dir``, ``log_dir``, ``executable`` of the module's parameters)."""

    def __init__(self, module, name=None):
        self.module = module
        self.name = name
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
        return self.module.get_bin_path(
            exe or "servicectl", required=True, opt_dirs=["/usr/local/sbin", "/usr/sbin", "/sbin"]
        )

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
        # R-ANS-3: servicectl runs as root from "/", with no PYTHON* variable (an empty one is
        # ignored) and no loader variable the task's login environment may have brought: it
        # resolves code from its installation alone, never from the task's directory.
        clean = dict((k, "") for k in os.environ if k.startswith(UNTRUSTED_ENV))
        clean["NO_COLOR"] = "1"
        rc, out, err = self.module.run_command(cmd, environ_update=clean, cwd="/")
        return cmd, rc, out, err

    def fail(self, cmd, rc, out, err, msg=None, **extra):
        """Fail the task with servicectl's own message (or ``msg``) and exit code."""
        said = (err or out or "").strip() or "%s exited %d" % (cmd[0], rc)
        self.module.fail_json(msg=msg or said, rc=rc, stdout=out, stderr=err, cmd=cmd, **extra)

    def json(self, args, **dirs):
        cmd, rc, out, err = self.run(args, **dirs)
        try:
            return json.loads(out)
        except ValueError:
            self.fail(cmd, rc or 1, out, err)

    def status_all(self):
        """Every ``status --json`` entry (a list)."""
        return [e for e in self.json(["status", "--json"]) or [] if isinstance(e, dict)]

    def listing_all(self, **dirs):
        """Every ``list --json`` entry, by name."""
        entries = self.json(["list", "--json"], **dirs) or []
        return dict((e.get("name"), e) for e in entries if isinstance(e, dict))

    def status(self):
        """The service's ``status --json`` entry (its exit code is the LSB status code)."""
        for entry in self.json(["status", "--json", self.name]) or []:
            if isinstance(entry, dict) and entry.get("name") == self.name:
                return entry
        self.fail_with_check()

    def listing(self, **dirs):
        """The service's ``list --json`` entry, or None when it has no definition."""
        return self.listing_all(**dirs).get(self.name)

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

    def fail_with_check(self, **extra):
        """Why the service cannot be acted on, in servicectl's words (``check NAME``)."""
        cmd, rc, out, err = self.run(["check", self.name])
        if rc == 0:
            rc, err = 1, "%s: servicectl reports nothing about this service" % self.name
        self.fail(cmd, rc, out, err, **extra)

    def has_enable(self):
        """Whether this servicectl has ``enable``/``disable`` (older ones answer 2, usage)."""
        if self._has_enable is None:
            rc = self.run(["enable", "--help"])[1]
            self._has_enable = rc == 0
        return self._has_enable


def drifted(entry):
    """Whether a running service runs another definition than the one on disk: servicectl's
    ``definition_changed`` (parsed definitions compared, ``enabled`` aside), or, from a
    servicectl that predates it, its note."""
    if "definition_changed" in entry:
        return bool(entry["definition_changed"])
    return DRIFT_NOTE in (entry.get("notes") or [])


def supervised(entry):
    """Whether a supervisor watches the service now (status's ``supervisor``)."""
    who = entry.get("supervisor")
    return bool(who) and not str(who).startswith("unsupervised")
