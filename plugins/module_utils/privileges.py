# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the modules that read or change a host's firewall need from the host (root), and
messages a user can act on for the operating system errors a run can meet.

Runs on the managed host: standard library only.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os

BECOME = 'set become: true on the play or the task (the collection\'s playbooks do)'


def is_root():
    return os.geteuid() == 0


def root_required(module_name, needs):
    """The message for ``module_name`` run without root, or None as root. ``needs``: what it does that takes root."""
    if is_root():
        return None
    return '%s must run as root: it %s, and it runs as uid %d. Run it as root: %s' % (
        module_name, needs, os.geteuid(), BECOME)


def os_error_message(exc, doing, path=None):
    """A message for an OSError met while ``doing`` something (with ``path``, default the error's file)."""
    path = path or getattr(exc, 'filename', None)
    text = 'cannot %s%s: %s' % (doing, ' %s' % path if path else '', exc.strerror or exc)
    if exc.errno in (errno.EACCES, errno.EPERM):
        if is_root():
            text += ' even as root (a read-only mount, SELinux or AppArmor?)'
        else:
            text += '. Run it as root: %s' % BECOME
    elif exc.errno == errno.EROFS:
        text += ' (the file system is mounted read-only)'
    elif exc.errno == errno.ENOSPC:
        text += ' (the file system is full)'
    return text
