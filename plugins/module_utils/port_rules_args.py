# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options the modules that take a host's rules (port_rules, port_rules_info) share, defined
once, with the check of them the argument spec cannot express. Their documentation is the
doc fragment kubeports.firewall.rules (plugins/doc_fragments/rules.py).

Runs on the managed host: standard library only.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy

from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import RULE_OPTIONS

BACKEND_CHOICES = ['auto', 'firewalld', 'ufw', 'susefirewall2']

RULES_ARG_SPEC = dict(
    rules=dict(type='list', elements='dict', options=RULE_OPTIONS),
    sets=dict(type='dict', default={}),
    backend=dict(type='str', default='auto', choices=BACKEND_CHOICES),
    firewalld_zone=dict(type='str'),
    state_dir=dict(type='path', default='/var/lib/kubeports'),
    public_ports=dict(type='list', elements='str', default=[]),
)


def argument_spec(**own):
    """The shared options (a copy) with the module's ``own`` options added."""
    spec = copy.deepcopy(RULES_ARG_SPEC)
    spec.update(own)
    return spec


def invalid_sets(sets):
    """The message for the first peer set whose members are not a list of strings, else None."""
    for name, members in sets.items():
        if not isinstance(members, list) or not all(isinstance(item, str) for item in members):
            return 'sets.%s: expected a list of CIDRs, got %r' % (name, members)
    return None
