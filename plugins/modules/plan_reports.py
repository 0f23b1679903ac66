#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: plan_reports
author: kubeports maintainers (@kubeports)
version_added: 0.2.0
short_description: Plan the firewall rules of every Kubernetes host and write the plan reports, on the controller
description:
  - Plans the given hosts in one pass, as the P(kubeports.firewall.required_ports#lookup) lookup
    with O(kubeports.firewall.required_ports#lookup:output=plan) does, and writes that plan as
    C(plan.json), C(plan.md) and C(plan.html) into O(report_dir) on the controller. Returns the resolved
    profile of each cluster and the rule tables of the first O(shown_hosts) hosts.
  - Runs on the controller only (an action plugin) and touches no managed host. The plan does
    not pass through the play's variables, so a fleet of thousands of hosts is planned and
    written in one step. This is what the C(kubeports.firewall.plan) playbook runs.
  - Invalid input fails the task with the lookup's message, naming the value and the variable
    it came from, before any report is written.
  - Every host of the inventory is either planned or named with why it is planned for nothing,
    in RV(unplanned) and in the reports.
  - C(plan.html) is one self-contained page (docs/plan.md) with a banner, the inventory, clusters,
    collection version and time, the hosts, a rule lists x ports matrix, and the hosts behind
    every peer set.
  - A report is written only when its content changed (for C(plan.html), more than its time stamp);
    RV(written) names those written.
  - The task never reports a change, whether reports were written or not. It changes no
    managed host, and the reports are its output on the controller (as a debug task's
    message is).
options:
  report_dir:
    description: Directory on the controller for C(plan.json), C(plan.md) and C(plan.html); created when missing.
    type: path
    required: true
  shown_hosts:
    description: How many hosts (in name order) have their rule table in RV(tables).
    type: int
    default: 20
extends_documentation_fragment:
  - kubeports.firewall.planning
attributes:
  check_mode:
    support: full
    description: Plans and says in RV(written) which report would be written, and writes nothing.
  diff_mode:
    support: none
    description: The reports are too large for a diff; check mode says which would change.
  delegation:
    support: none
    description: Always runs on the controller, whatever the host.
seealso:
  - plugin: kubeports.firewall.required_ports
    plugin_type: lookup
'''

EXAMPLES = r'''
- name: Plan every Kubernetes host and write the reports
  kubeports.firewall.plan_reports:
    report_dir: "{{ playbook_dir }}/kubeports-reports"
  register: planned
  run_once: true

- name: Show the resolved profile of each cluster, one value per line
  ansible.builtin.debug:
    msg: "{{ item.lines }}"
  loop: "{{ planned.profiles }}"
  loop_control:
    label: "{{ item.name }}"
  run_once: true
'''

RETURN = r'''
profiles:
  description: The resolved profile of each cluster, as printable lines.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The cluster (C(cluster), or C(outside the cluster) for hosts outside it).
      type: str
    lines:
      description:
        - A heading naming the cluster's hosts, then one line per value in aligned columns (key,
          value, the variable or default it came from), then C(Notes:) and one line per note.
      type: list
      elements: str
      sample: ["Profile: cluster (3 hosts: cp1, node1, node2)", "  KEY        VALUE      ORIGIN",
               "  installer  kubespray  the host is in groups of kubespray"]
written:
  description: The reports written because their content changed (in check mode, those that would be).
  returned: success
  type: list
  elements: str
  sample: [plan.json, plan.md]
tables:
  description: The rule tables of the first O(shown_hosts) hosts, each as its host name and text lines.
  returned: success
  type: list
  elements: dict
  contains:
    host:
      description: The host.
      type: str
    lines:
      description: Its rule table, a heading line then one line per rule.
      type: list
      elements: str
summary:
  description: How many hosts, distinct rule lists and peer sets were planned.
  returned: success
  type: dict
  contains:
    hosts:
      description: Hosts planned.
      type: int
    rule_lists:
      description: Distinct rule lists.
      type: int
    sets:
      description: Peer sets.
      type: int
    skipped_hosts:
      description: Requested hosts without a role, left out (O(hosts_without_role=skip)).
      type: list
      elements: str
    unplanned:
      description: Hosts of the inventory planned for nothing (no role); RV(unplanned) names the first ones.
      type: int
unplanned:
  description:
    - The first O(shown_hosts) hosts of the inventory planned for nothing, each with why, then
      how many more there are. C(plan.json) (key C(unplanned)) and C(plan.md) name them all.
  returned: success
  type: list
  elements: str
  sample: ["bastion1: in group bastion, which no role maps to (kubeports_role_groups)", "stray: in no group"]
reports:
  description: The paths of the reports.
  returned: success
  type: dict
  contains:
    json:
      description: The plan, in the lookup's O(kubeports.firewall.required_ports#lookup:output=plan) shape.
      type: str
    markdown:
      description: The plan as Markdown, with links to every reference.
      type: str
    html:
      description: The plan as one self-contained HTML page, hosts named behind every peer set.
      type: str
'''
