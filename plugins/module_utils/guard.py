# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lock-out guard: before a change, would the resulting firewall admit a new SSH connection
from the client this module runs for, to the port sshd answered it on?

Each backend describes what admits TCP traffic after the change (its own rules and the
pre-existing ones it can read) as a list of Admission entries (backends/base.py); ``admits``
decides.
Runs on the managed host: standard library only.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import os

from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import BackendError


def admits(admissions, address, port):
    """The first Admission that lets ``address`` reach TCP ``port``, or None."""
    address = ipaddress.ip_address(address)
    for admission in admissions:
        if admission.matches(address, port):
            return admission
    return None


def check(backend, current, change, connection):
    """Refuse a change under which a new connection like this one would be refused.

    ``connection`` is (client, client port, server address, server port) or None (not over
    SSH: nothing to check). Returns a note for the result's messages.
    """
    if connection is None:
        return 'not connected over SSH: the lock-out guard had no connection to check'
    client, _client_port, _server, port = connection
    admissions = backend.admissions_after(current, change, client)
    if admissions is None:
        return 'the lock-out guard cannot read everything %s admits; it did not check' % backend.name
    found = admits(admissions, client, port)
    if found is None:
        raise BackendError(
            'this change would refuse new SSH connections from %s to port %d on this host; nothing was changed. '
            'Allow %s in kubeports_admin_cidrs, keep kubeports_manage_ssh on, or set kubeports_ssh_port to the '
            'port sshd listens on (%d); with a bastion or out-of-band access, set kubeports_lockout_guard: false '
            '(lockout_guard)' % (client, port, client, port))
    return None


def ssh_connection(environ=None, proc='/proc'):
    """(client address, client port, server address, server port) of the SSH connection this
    process runs under, from SSH_CONNECTION here or in an ancestor (sudo drops it); or None."""
    value = (os.environ if environ is None else environ).get('SSH_CONNECTION')
    pid = os.getppid()
    for _step in range(32):
        if value or pid <= 1:
            break
        try:
            with open(os.path.join(proc, str(pid), 'environ'), 'rb') as handle:
                for item in handle.read().split(b'\0'):
                    if item.startswith(b'SSH_CONNECTION='):
                        value = item.split(b'=', 1)[1].decode('ascii', 'replace')
            with open(os.path.join(proc, str(pid), 'stat')) as handle:
                pid = int(handle.read().rsplit(')', 1)[1].split()[1])
        except (IOError, OSError, ValueError, IndexError):
            break
    parts = (value or '').split()
    if len(parts) != 4 or not parts[1].isdigit() or not parts[3].isdigit():
        return None
    return parts[0], int(parts[1]), parts[2], int(parts[3])
