# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One apply of a host's rules: lock, choose the backend, check, read, plan, write once,
re-read. Shared by the port_rules module and the host's own rollback (rollback.py).

Runs on the managed host: standard library only.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import fcntl
import os
import platform
import shutil
import time

from ansible_collections.kubeports.firewall.plugins.module_utils import guard
from ansible_collections.kubeports.firewall.plugins.module_utils.privileges import os_error_message
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import BackendError, DesiredState
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.firewalld import FirewalldBackend
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.susefirewall2 import SuseFirewall2Backend
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.ufw import UfwBackend

BACKENDS = (FirewalldBackend, UfwBackend, SuseFirewall2Backend)
LOCK_PATH = '/run/kubeports-firewall.lock'


def command_runner(module):
    """run_command(argv, check=True, data=None) for the backends, from an AnsibleModule;
    with check, a failure is a BackendError naming the command. A command that is not
    installed is rc 127 without check (AnsibleModule would end the module)."""
    found = {}

    def run_command(argv, check=True, data=None):
        if argv[0] not in found:
            found[argv[0]] = shutil.which(argv[0]) is not None
        if not found[argv[0]]:
            if check:
                raise BackendError('%s: command not found on this host (PATH: %s); install it, or choose another '
                                   'backend' % (argv[0], os.environ.get('PATH', '')))
            return 127, '', '%s: command not found' % argv[0]
        rc, out, err = module.run_command(argv, data=data)
        if check and rc != 0:
            raise BackendError('%s failed (rc=%d): %s' % (' '.join(argv), rc, (err or out).strip()))
        return rc, out, err

    return run_command


def acquire_lock(timeout, settle=None):
    """The host's lock, waiting up to ``timeout`` seconds for another run.

    ``settle(give_up)`` runs under the lock before it is returned: False releases the lock and
    waits (another run's change still awaits its confirmation); with ``give_up`` (the time is
    out) it must return True or raise."""
    try:
        handle = open(LOCK_PATH, 'w')  # pylint: disable=consider-using-with
    except (IOError, OSError) as exc:
        raise BackendError('%s; nothing was changed' % os_error_message(exc, 'open the lock file', LOCK_PATH))
    deadline = time.time() + max(0, timeout)
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (IOError, OSError) as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            if time.time() >= deadline:
                handle.close()
                raise BackendError('another kubeports run holds %s; gave up after %d s (lock_timeout)'
                                   % (LOCK_PATH, timeout))
            time.sleep(0.2)
            continue
        try:
            if settle is None or settle(time.time() >= deadline):
                return handle
        except BaseException:
            handle.close()
            raise
        fcntl.flock(handle, fcntl.LOCK_UN)
        time.sleep(0.5)


def choose_backend(name, run_command, options, reading=False):
    """The backend of the firewall ``name``, or with auto of the active one, on this host.

    To change rules, auto takes the first firewall found (``detect``) and fails when there is
    none, and a chosen one must be usable (``check_usable``). With ``reading`` (port_rules_info)
    only a firewall filtering traffic now (``running``) counts, and None means there is none.
    Either way a chosen backend is refused while another firewall is the active one."""
    if name == 'auto':
        for backend in BACKENDS:
            if (backend.running if reading else backend.detect)(run_command):
                return backend(run_command, options)
        if reading:
            return None
        raise BackendError('no active firewall found: looked for a running firewalld, an active ufw and '
                           'a SuSEfirewall2 configuration; choose one with backend')
    for backend in BACKENDS:
        if backend.name == name:
            if not backend.running(run_command):
                active = [other.name for other in BACKENDS if other is not backend and other.running(run_command)]
                if active:
                    raise BackendError('backend %s was chosen but %s is the active firewall on this host; nothing was '
                                       'changed. Choose backend: %s (or auto)' % (name, active[0], active[0]))
                if reading:
                    return None
            instance = backend(run_command, options)
            if not reading:
                instance.check_usable()
            return instance
    raise BackendError('unknown backend %r' % name)


class Applied(object):
    """What one apply found and did."""

    def __init__(self, backend, change, desired):
        self.backend, self.change, self.desired = backend, change, desired

    def result(self, rules):
        return {
            'changed': not self.change.empty,
            'backend': self.backend.name,
            'diff': self.change.diff('%s on %s' % (self.backend.name, platform.node())),
            'summary': {'rules': len(rules), 'peer_sets': len(self.desired.peer_sets),
                        'added': len(self.change.added), 'removed': len(self.change.removed)},
            'messages': list(getattr(self.backend, 'messages', [])),
        }


def apply_rules(run_command, options, rules, check_mode=False, before_write=None, connection=None, sets=None,
                settle=None, locked=False):
    """Plan ``rules`` (with the peer ``sets`` they name) on this host and, unless ``check_mode``, write the change once.

    ``options`` are the module's parameters (backend, prune, state_dir, lockout_guard, ...).
    ``connection`` is the SSH connection the module runs under (guard.ssh_connection): with
    ``lockout_guard``, a change under which a new one would be refused is refused first.
    ``before_write(backend, change)`` runs after planning, before anything is written (the
    module arms its rollback there); nothing is written if it raises.
    ``settle`` is given to acquire_lock (the module settles an earlier run's pending change
    there); ``locked``: the caller holds the lock already (a rollback made while settling).
    The rules are checked before the lock is taken.
    """
    desired = DesiredState.from_rules(rules, options.get('public_ports') or (), sets)
    lock = None if locked else acquire_lock(options.get('lock_timeout', 60), settle)
    try:
        backend = choose_backend(options.get('backend') or 'auto', run_command, options)
        backend.check_state_dir(writable=not check_mode)
        current = backend.read()
        change = backend.compare(desired, current, options.get('prune', True))
        if not change.empty and options.get('lockout_guard'):
            note = guard.check(backend, current, change, connection)
            if note:
                backend.messages.append(note)
        if not change.empty and not check_mode:
            if before_write is not None:
                before_write(backend, change)
            backend.apply(change)
            backend.verify(desired, backend.read(), options.get('prune', True))
    finally:
        if lock is not None:
            lock.close()
    return Applied(backend, change, desired)
