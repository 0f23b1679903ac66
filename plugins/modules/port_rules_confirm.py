#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: port_rules_confirm
author: kubeports maintainers (@kubeports)
version_added: 0.2.0
short_description: Confirm a change of port_rules, so the host does not roll it back
description:
  - M(kubeports.firewall.port_rules) with C(confirm_timeout) arms a rollback on the host
    before it changes anything. This module, run over a new SSH connection (reset the
    connection first with the C(reset_connection) meta task), stops that rollback
    and makes the change the one a later rollback restores.
  - When the new connection cannot be made, the task fails for that host and the host
    restores its previous rules by itself at the deadline.
  - Runs as root only (C(become=true)); otherwise it fails, naming C(become=true).
options:
  token:
    description: The C(rollback.token) that M(kubeports.firewall.port_rules) returned.
    type: str
    required: true
  state_dir:
    description: The O(kubeports.firewall.port_rules#module:state_dir) the change was applied with.
    type: path
    default: /var/lib/kubeports
attributes:
  check_mode:
    support: none
    description: A change is only ever armed outside check mode.
  diff_mode:
    support: none
    description: Nothing to show.
notes:
  - Fails when the change was already rolled back (too late, or by a later run whose plan
    differs), naming why and the log of the rollback.
  - A change a later run took over (its plan was the same) is confirmed by whichever
    confirmation comes first; the other answers V(already confirmed).
'''

EXAMPLES = r'''
- name: Open the ports, armed to roll back unless confirmed within two minutes
  kubeports.firewall.port_rules:
    rules: "{{ lookup('kubeports.firewall.required_ports', inventory_hostname) }}"
    confirm_timeout: 120
  register: applied

- name: Drop the connection, so that the confirmation needs a new one
  ansible.builtin.meta: reset_connection

- name: Confirm over a new SSH connection
  kubeports.firewall.port_rules_confirm:
    token: "{{ applied.rollback.token }}"
  when: applied.rollback is defined
'''

RETURN = r'''
msg:
  description:
    - V(confirmed), or V(already confirmed) (and by what, when another run confirmed it), or that
      a later run's change took it over.
  returned: success
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubeports.firewall.plugins.module_utils import rollback
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import BackendError
from ansible_collections.kubeports.firewall.plugins.module_utils.privileges import os_error_message, root_required


def main():
    module = AnsibleModule(
        argument_spec=dict(
            token=dict(type='str', required=True, no_log=False),
            state_dir=dict(type='path', default='/var/lib/kubeports'),
        ),
        supports_check_mode=False,
    )
    refused = root_required('port_rules_confirm', 'takes the lock %s, stops the rollback timer and writes the '
                                                  'records in %s' % (rollback.PENDING_LOCK, module.params['state_dir']))
    if refused:
        module.fail_json(msg=refused)
    try:
        changed, message = rollback.confirm(module.params['state_dir'], module.params['token'])
    except BackendError as exc:
        module.fail_json(msg=str(exc))
    except (IOError, OSError) as exc:
        module.fail_json(msg=os_error_message(exc, 'confirm the change:'))
    module.exit_json(changed=changed, msg=message)


if __name__ == '__main__':
    main()
