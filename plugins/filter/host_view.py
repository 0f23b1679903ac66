# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: host_view
author: kubeports maintainers (@kubeports)
version_added: 0.2.0
short_description: One host's rules and the members of the peer sets they name, from a plan
description:
  - Takes the plan of P(kubeports.firewall.plan_hosts#module) (or of
    P(kubeports.firewall.required_ports#lookup) with C(output=plan)), which lists every peer set
    and every distinct rule list once, and returns one host's view of it, what
    P(kubeports.firewall.port_rules#module) and P(kubeports.firewall.port_rules_info#module) take
    as O(kubeports.firewall.port_rules#module:rules) and O(kubeports.firewall.port_rules#module:sets).
  - The view is C(rule_contract.host_view) of the collection's module_utils, the one definition
    the plan reports use as well.
options:
  _input:
    description: The whole plan, with its C(hosts), C(rule_lists) and C(sets).
    type: dict
    required: true
  host:
    description: The host's inventory name, one of the plan's C(hosts).
    type: str
    required: true
'''

EXAMPLES = r'''
- name: Plan the hosts of the play once
  kubeports.firewall.plan_hosts:
    hosts: "{{ ansible_play_hosts }}"
  register: plan
  run_once: true

- name: Open exactly the planned ports of this host
  kubeports.firewall.port_rules:
    rules: "{{ view.rules }}"
    sets: "{{ view.sets }}"
  vars:
    view: "{{ plan | kubeports.firewall.host_view(inventory_hostname) }}"
  when: inventory_hostname in plan.hosts
'''

RETURN = r'''
_value:
  description: The host's view of the plan.
  type: dict
  contains:
    host:
      description: The host's inventory name.
      type: str
    roles:
      description: The host's roles.
      type: list
      elements: str
    rules:
      description: The host's rules, the restricted ones naming a peer set in C(source_set).
      type: list
      elements: dict
    sets:
      description: Each peer set the rules name, to its members (CIDRs), the host's own sets included.
      type: dict
    skipped:
      description: The rules not opened because their peer sets have no members.
      type: list
      elements: dict
'''

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_string

from ansible_collections.kubeports.firewall.plugins.module_utils import rule_contract
from ansible_collections.kubeports.firewall.plugins.module_utils.errors import dict_without, kind_of


def host_view(plan, host):
    """One host of a plan as {host, roles, rules, sets, skipped}: rule_contract.host_view."""
    if not isinstance(plan, dict) or not isinstance(plan.get('hosts'), dict):
        got = dict_without(plan, ('hosts',))
        if isinstance(plan, dict) and 'hosts' in plan:
            got = 'a dict whose hosts are %s' % kind_of(plan['hosts'])
        raise AnsibleFilterError('host_view expects the plan of plan_hosts or of required_ports(output=plan) (a dict), '
                                 'got %s' % got)
    if not is_string(host):
        raise AnsibleFilterError('host_view: host must be a host name (a string), got %s' % kind_of(host))
    if host not in plan['hosts']:
        raise AnsibleFilterError('host_view: %s is not planned (%s)'
                                 % (host, (plan.get('unplanned') or {}).get(host) or 'not among the plan\'s hosts'))
    try:
        return rule_contract.host_view(plan, plan['hosts'][host])
    except KeyError as exc:
        raise AnsibleFilterError('host_view: %s is missing from the plan for %s (give the whole plan, with its '
                                 'rule_lists and sets)' % (exc, host))


class FilterModule(object):

    def filters(self):
        return {'host_view': host_view}
