#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: plan_hosts
author: kubeports maintainers (@kubeports)
version_added: 0.2.0
short_description: Plan the firewall rules of Kubernetes hosts in one pass on the controller, and return the plan
description:
  - Plans the given hosts in one pass and returns the plan, the document the
    P(kubeports.firewall.required_ports#lookup) lookup returns with
    O(kubeports.firewall.required_ports#lookup:output=plan), as the task's result. Register it
    on a task with C(run_once) and every host of the play can read its own rules from it, as
    the C(kubeports.firewall.open_ports) and C(kubeports.firewall.audit) roles do.
  - The same plan as the lookup's, at less cost for a large fleet, since a lookup's result passes
    through the template of the task that calls it, which makes every value of the plan once
    more (about 0.7 seconds for 5,000 hosts).
  - A host whose name starts with C(_ansible_) is refused, since Ansible removes such keys from a
    registered result.
  - A group whose name is close to a group the collection knows (C(kube_nodes), C(ectd),
    C(Kube_Node)) is refused before anything is planned when its hosts lack that group's role,
    naming both groups and the hosts.
  - Runs on the controller only (an action plugin) and touches no managed host.
  - Invalid input fails the task with the lookup's message, naming the value and the variable
    it came from.
options:
  play_hosts:
    description:
      - Every host the run applies the plan to (a play's hosts, after C(--limit) or a job slice).
        RV(peers_to_update) then names the planned hosts outside them whose peer sets hold them.
      - Not given, RV(peers_to_update) is not returned.
    type: list
    elements: str
extends_documentation_fragment:
  - kubeports.firewall.planning
attributes:
  check_mode:
    support: full
    description: Plans as it does without check mode; it changes nothing in either.
  diff_mode:
    support: none
    description: Changes nothing, so there is no diff.
  delegation:
    support: none
    description: Always runs on the controller, whatever the host.
seealso:
  - plugin: kubeports.firewall.required_ports
    plugin_type: lookup
  - module: kubeports.firewall.plan_reports
'''

EXAMPLES = r'''
- name: Plan the hosts of the play once
  kubeports.firewall.plan_hosts:
    hosts: "{{ ansible_play_hosts }}"
  register: planned
  run_once: true

- name: Show each host's rule list
  ansible.builtin.debug:
    msg: "{{ planned.rule_lists[planned.hosts[inventory_hostname].rule_list] }}"
  when: inventory_hostname in planned.hosts
'''

RETURN = r'''
peers_to_update:
  description:
    - With O(play_hosts), the planned hosts outside them whose peer sets hold an address of one of
      them (C(hosts)), grouped by what they hold (C(holders), a list of C(hosts) and C(members)),
      those hosts of the run (C(members)) with their addresses (C(addresses)), the peer sets
      (C(sets)), the inventory sources (C(inventories)) and the command that applies every host of
      C(hosts) (C(command); null when none).
    - A node added with C(--limit) is admitted by these hosts only once they are applied with the
      same inventory; that run changes only their sets' members. The C(kubeports.firewall.open_ports)
      role names, after applying, the hosts that lack a host of the run new to its own peer sets
      (P(kubeports.firewall.peer_update_note#filter)).
  returned: when O(play_hosts) is given
  type: dict
  sample: {"hosts": ["cp1", "cp2", "node1"], "members": ["node4"], "sets": ["cluster"],
           "holders": [{"hosts": ["cp1", "cp2", "node1"], "members": ["node4"]}],
           "addresses": {"node4": ["10.0.0.14/32"]}, "inventories": ["/srv/inventory.ini"],
           "command": "ansible-playbook kubeports.firewall.open_ports -i /srv/inventory.ini --limit cp1,cp2,node1"}
clusters:
  description:
    - The resolved profile of each cluster, with where each value came from. C(lines) prints it one
      value per line (key, value, origin in aligned columns), then its notes; C(line) is the same
      on one line, without the values left at the collection's defaults.
  returned: success
  type: list
  elements: dict
sets:
  description: Every peer set once, by its key, as source CIDRs.
  returned: success
  type: dict
rule_lists:
  description: Every distinct rule list once, by its key, with the keys of the sets its rules use.
  returned: success
  type: dict
hosts:
  description: Each planned host's entry, by host name (its roles, the key of its rule list, its own sets).
  returned: success
  type: dict
skipped_hosts:
  description: Requested hosts without a role, left out (O(hosts_without_role=skip)).
  returned: success
  type: list
  elements: str
unplanned:
  description:
    - Every host of the inventory that is planned for nothing (it has no role), to why, whatever
      O(hosts) asks for; every inventory host is either in RV(hosts) or here.
    - The reason is C(in no group) (only C(all) and C(ungrouped)), or the groups the host is in,
      none of which a role maps to (C(kubeports_role_groups)).
  returned: success
  type: dict
  sample: {"bastion1": "in group bastion, which no role maps to (kubeports_role_groups)", "stray": "in no group"}
'''
