# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: probe_plan
author: kubeports maintainers (@kubeports)
version_added: 0.2.0
short_description: Which host probes which port of which host, and what it should see
description:
  - Plans the rules of every target host (as P(kubeports.firewall.required_ports#lookup)
    does), then lists the probes that prove them. Each TCP or UDP port (both ends of a range)
    of a target is probed from hosts that should reach it and from hosts that should not,
    on every address family the target has.
  - With O(unplanned=true) every other port of the catalog (any component, and the ports
    the cluster opens elsewhere) is probed on each target too, from one host per role,
    expecting it blocked. SSH ports are left out, SSH often being open by the host's own rules.
  - Protocol-only rules (IPIP, ESP, ICMP...), SCTP ports and ports no probing host may reach
    are listed in C(not_probed) with the reason, and so are hosts without a role and without
    a usable address (they do not probe). A rule for protocol V(all) counts for every port.
  - Runs on the controller only; the verify role uses it once per play.
requirements:
  - netaddr (Python library on the controller; see the collection's requirements.txt)
options:
  _terms:
    description:
      - The hosts that can probe (usually the play's hosts). Hosts without a role probe
        only, as outsiders of the cluster.
    type: list
    elements: str
    required: true
  targets:
    description: Hosts whose firewalls are checked. Default is every term that has a role.
    type: list
    elements: str
  sources:
    description:
      - V(all) probes every planned port from every host in the terms; V(per_role) from one
        host per combination of roles on each side (allowed, not allowed), taken in turn.
    type: str
    choices: [all, per_role]
    default: all
    vars:
      - name: kubeports_verify_sources
  unplanned:
    description: Also probe the catalog's other ports on each target, expecting them blocked.
    type: bool
    default: true
    vars:
      - name: kubeports_verify_unplanned
  role_groups:
    description: As for P(kubeports.firewall.required_ports#lookup).
    type: dict
    vars:
      - name: kubeports_role_groups
  catalog_dirs:
    description: As for P(kubeports.firewall.required_ports#lookup).
    type: list
    elements: path
    default: []
    vars:
      - name: kubeports_catalog_dirs
seealso:
  - module: kubeports.firewall.probe_ports
  - module: kubeports.firewall.probe_listeners
'''

EXAMPLES = r'''
- name: Plan the probes of the play once
  ansible.builtin.set_fact:
    probe_plan: "{{ query('kubeports.firewall.probe_plan', *ansible_play_hosts)[0] }}"
  run_once: true
  delegate_to: localhost

- name: Probe from this host
  kubeports.firewall.probe_ports:
    probes: "{{ probe_plan.probes[inventory_hostname] | default([]) }}"
'''

RETURN = r'''
_list:
  description: One dictionary.
  type: list
  elements: dict
  contains:
    listeners:
      description: Per target host, the ports (C(protocol), C(port)) to listen on.
      type: dict
    probes:
      description:
        - Per probing host, its probes. Each has C(id), C(source), C(source_roles),
          C(source_address), C(target), C(target_roles), C(address), C(protocol), C(port),
          C(rule) (the planned port or range), C(planned), C(expected) (V(open) or V(blocked))
          and C(ids) (catalog rule ids).
      type: dict
    not_probed:
      description: Rules or ports that are not probed, with C(reason).
      type: list
      elements: dict
    targets:
      description: Per target host, its C(roles) and C(addresses).
      type: dict
    clusters:
      description:
        - The resolved profile of each cluster, each value with where it came from, as in
          P(kubeports.firewall.required_ports#lookup) with C(output=plan); C(lines) prints it one value per
          line, then its notes.
      type: list
      elements: dict
    flows:
      description:
        - The planned flows between the targets' role boxes and their outsiders (nodes and edges), which
          P(kubeports.firewall.verify_report#filter) colours by what the probes saw and draws in its page.
      type: dict
    run_id:
      description: Identifies this plan; pass it to the modules so the report ignores results of an earlier run.
      type: str
'''

import uuid

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.lookup import LookupBase

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_planner import (
    InventoryPlanner, host_variables)
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_index import host_addresses
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.probe_planner import catalog_ports, plan_probes
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.action_base import planning_inventory
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.flows import plan_flows
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.profile_report import with_lines


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        try:
            with planning_inventory(variables, [to_native(term) for term in terms]) as (groups, hostvars):
                plan = self._plan(terms, groups, hostvars)
        except PlanError as exc:
            raise AnsibleLookupError(to_native(exc))
        # Module results of an earlier run in the same play never pass for this run's.
        plan['run_id'] = uuid.uuid4().hex
        return [plan]

    def _plan(self, terms, groups, hostvars):
        planner = InventoryPlanner(groups, hostvars, self.get_option('role_groups'), self.get_option('catalog_dirs'))
        index = planner.index
        probers = {}
        for term in terms:
            host = to_native(term)
            planner.check_known(host)
            networks = index.addresses.get(host)
            if networks is None:
                try:
                    networks = host_addresses(host, host_variables(hostvars, host))
                except PlanError as exc:
                    # A host outside the cluster without an address cannot probe; the report says so.
                    probers[host] = {'roles': [], 'addresses': [], 'reason': to_native(exc)}
                    continue
            probers[host] = {'roles': sorted(index.host_roles(host)),
                             'addresses': [str(net.ip) for net in networks]}
        targets = self.get_option('targets')
        if targets is None:
            targets = [host for host in probers if index.host_roles(host)]
        plans = []
        for plan in planner.plan([to_native(host) for host in targets]) if targets else ():
            plan = plan.as_dict()
            plan['addresses'] = [str(net.ip) for net in index.addresses[plan['host']]]
            plans.append(plan)
        plan = plan_probes(plans, probers, self.get_option('sources'), self.get_option('unplanned'),
                           catalog_ports(planner.planner.components))
        plan['clusters'] = with_lines(planner.clusters())
        plan['flows'] = plan_flows({'hosts': dict((item['host'], item) for item in plans)})
        return plan
