# Connection plugin bundled with anklume. It lets the
# generated tree provision Incus instances with ansible-core >= 2.14 alone:
# no collection is needed. The incus CLI is always started with an argument
# vector, never through a local shell.

from __future__ import annotations

DOCUMENTATION = r"""
name: anklume_incus
author: anklume
short_description: Run tasks in Incus instances with the incus CLI (bundled with anklume)
description:
  - Runs commands in, and copies files to and from, an existing Incus instance
    with C(incus exec), C(incus file push) and C(incus file pull).
  - The incus CLI is started with an argument vector, never through a local
    shell; the command Ansible hands over is one argument of
    C(<executable> -c <command>) inside the instance.
  - It reads the same variables as community.general.incus, so the two can
    replace each other.
options:
  remote_addr:
    description:
      - The name of the instance, as Incus knows it (with the nesting prefix).
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_incus_host
  executable:
    description:
      - The shell that runs the command inside the instance.
    type: str
    default: /bin/sh
    vars:
      - name: ansible_executable
      - name: ansible_incus_executable
  remote:
    description:
      - The Incus remote the instance lives on, as configured in the incus CLI.
    type: str
    default: local
    vars:
      - name: ansible_incus_remote
  project:
    description:
      - The Incus project of the instance.
    type: str
    default: default
    vars:
      - name: ansible_incus_project
"""

import os
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.process import get_bin_path
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

display = Display()

# Messages of the incus CLI that mean the instance cannot be reached.
_UNREACHABLE = ("Error: Instance not found", "Error: Instance is not running")


class Connection(ConnectionBase):
    """Run tasks in Incus instances through the incus CLI."""

    transport = "anklume_incus"
    has_pipelining = True

    def __init__(self, play_context, new_stdin, *args, **kwargs):
        super().__init__(play_context, new_stdin, *args, **kwargs)
        self._incus = None

    def _connect(self):
        """Find the incus CLI; there is no session to open."""
        if not self._connected:
            try:
                self._incus = get_bin_path("incus")
            except ValueError as e:
                raise AnsibleError("anklume_incus: the incus command was not found in PATH") from e
            display.vvv("ESTABLISH INCUS CONNECTION TO %s" % self._target(), host=self._instance())
            self._connected = True
        return self

    def _instance(self):
        return self.get_option("remote_addr")

    def _target(self):
        """Return <remote>:<instance>."""
        return "%s:%s" % (self.get_option("remote"), self._instance())

    def _argv(self, *args):
        """Return the incus argument vector for a subcommand."""
        return [self._incus, "--project", self.get_option("project")] + list(args)

    def _run(self, argv, in_data=None):
        """Start incus with argv (no shell) and return rc, stdout, stderr."""
        display.vvvv("EXEC %s" % argv, host=self._instance())
        args = [to_bytes(a, errors="surrogate_or_strict") for a in argv]
        try:
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:
            raise AnsibleConnectionFailure("anklume_incus: cannot run %s: %s" % (self._incus, e)) from e
        stdout, stderr = proc.communicate(in_data)
        return proc.returncode, stdout, stderr

    def _check_reachable(self, rc, stderr):
        """Turn the incus errors that mean "no such instance" into a failure
        Ansible reports as unreachable."""
        if rc == 0:
            return
        text = to_text(stderr, errors="surrogate_or_strict")
        for msg in _UNREACHABLE:
            if msg in text:
                raise AnsibleConnectionFailure(
                    "anklume_incus: instance %s in project %s: %s"
                    % (self._target(), self.get_option("project"), text.strip())
                )

    def exec_command(self, cmd, in_data=None, sudoable=True):
        """Run cmd in the instance: incus --project <p> exec <remote>:<name> -- <shell> -c <cmd>."""
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        self._connect()
        argv = self._argv("exec", self._target(), "--", self.get_option("executable"), "-c", cmd)
        display.vvv("EXEC %s" % cmd, host=self._instance())
        rc, stdout, stderr = self._run(argv, in_data)
        self._check_reachable(rc, stderr)
        return rc, stdout, stderr

    def _instance_path(self, path):
        """Return <remote>:<name>/<path> for incus file push and pull."""
        path = to_text(path, errors="surrogate_or_strict")
        if not path.startswith("/"):
            path = "/" + path
        return self._target() + path

    def put_file(self, in_path, out_path):
        """Copy the local file in_path to out_path in the instance."""
        super().put_file(in_path, out_path)
        self._connect()
        display.vvv("PUT %s TO %s" % (in_path, out_path), host=self._instance())
        if not os.path.isfile(to_bytes(in_path, errors="surrogate_or_strict")):
            raise AnsibleFileNotFound("anklume_incus: input path is not a file: %s" % in_path)
        rc, _, stderr = self._run(self._argv("file", "push", in_path, self._instance_path(out_path)))
        self._check_reachable(rc, stderr)
        if rc != 0:
            raise AnsibleError(
                "anklume_incus: incus file push %s %s failed: %s"
                % (in_path, self._instance_path(out_path), to_text(stderr, errors="surrogate_or_strict").strip())
            )

    def fetch_file(self, in_path, out_path):
        """Copy in_path of the instance to the local file out_path."""
        super().fetch_file(in_path, out_path)
        self._connect()
        display.vvv("FETCH %s TO %s" % (in_path, out_path), host=self._instance())
        rc, _, stderr = self._run(self._argv("file", "pull", self._instance_path(in_path), out_path))
        self._check_reachable(rc, stderr)
        if rc != 0:
            raise AnsibleError(
                "anklume_incus: incus file pull %s %s failed: %s"
                % (self._instance_path(in_path), out_path, to_text(stderr, errors="surrogate_or_strict").strip())
            )

    def close(self):
        """Nothing stays open between commands."""
        self._connected = False
