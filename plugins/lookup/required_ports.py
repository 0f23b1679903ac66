# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: required_ports
author: kubeports maintainers (@kubeports)
version_added: 0.1.0
short_description: The firewall rules a Kubernetes node needs, with their allowed sources
description:
  - Computes, for each host given, the ports it must open and who may connect, from its
    inventory groups (mapped to roles by O(role_groups)), its cluster profile (the
    C(kubeports_*) variables of that host) and the collection's port catalog.
  - Sources are peer sets (the inventory addresses of the hosts in a role, or CIDR
    variables) aggregated with C(netaddr). Rules with the same protocol and port merge;
    their sources are united and all references kept.
  - Runs on the controller only and touches no host. To plan many hosts, pass them all in
    one call (for example with C(run_once)); the inventory is indexed once per call.
  - Invalid input (unknown distribution, CNI, add-on or role, a bad port or CIDR, a host
    without a usable address or whose groups map to no role, a malformed extra rule) fails
    the lookup with one message naming the value and the variable it came from.
requirements:
  - netaddr (Python library on the controller; see the collection's requirements.txt)
options:
  _terms:
    description:
      - Inventory host names to plan.
      - With no terms, every inventory host that has a role is planned.
    type: list
    elements: str
    required: false
  role_groups:
    description:
      - Mapping of role (V(etcd), V(controlplane), V(worker), V(registry), V(bootstrap),
        V(rancher)) to the inventory groups whose hosts have it.
      - The default understands kubespray and Kubean (C(kube_control_plane), C(kube_node),
        C(etcd)), Rancher and RKE (C(etcd), C(controlplane), C(worker)), RKE2 and K3s
        (C(server), C(agent), C(rke2_servers), C(rke2_agents), C(masters), C(workers)),
        and C(registry), C(bootstrap) (or C(seed)), C(rancher).
      - A host variable C(kubeports_roles) overrides the groups for that host.
    type: dict
    vars:
      - name: kubeports_role_groups
  catalog_dirs:
    description:
      - Extra catalog directories, read after the collection's own catalog. Each YAML file
        there is one component; rule ids must be unique across all directories.
    type: list
    elements: path
    default: []
    vars:
      - name: kubeports_catalog_dirs
  details:
    description:
      - Return one dictionary per host (C(host), C(roles), C(rules), C(skipped)) instead of
        the flat list of rules. C(skipped) lists catalog rules that applied but whose source
        sets had no members (for example no C(rancher) hosts and no CIDRs for them).
      - The same as O(output=hosts).
    type: bool
    default: false
  output:
    description:
      - V(rules) returns the flat list of rules, V(hosts) one dictionary per host (as
        O(details=true)).
      - V(plan) returns one dictionary with every peer set and every distinct rule list listed
        once, linear in the number of hosts (the form C(plan.yml) writes and the roles get from
        the M(kubeports.firewall.plan_hosts) action), with
        C(clusters) (the resolved profile of each cluster, with C(name), C(hosts), C(values)
        holding each value and its C(origin), and a printable C(line)), C(sets) (set key to
        members), C(rule_lists) (key to C(rules), C(sets) mapping the name of each shared set
        the rules use to its key in C(sets), and C(skipped)), C(hosts) (planned host name to
        its C(host), C(roles), C(rule_list) and C(own_sets), the members of the sets that are
        the host's own) and C(skipped_hosts) (requested hosts without a role,
        with O(hosts_without_role=skip)).
      - In that form a restricted rule names its set in C(source_set) and has no C(sources);
        rules open to anyone keep C(sources). Keys are the set's name (the hosts' roles for
        rule lists), with C(@) and a digest of the content when one name has several.
      - V(rules) and V(hosts) carry the members in every rule's C(sources).
    type: str
    choices: [rules, hosts, plan]
    default: rules
  hosts_without_role:
    description:
      - What to do with requested hosts whose groups map to no role. V(skip) leaves them
        out (listed in C(skipped_hosts) with O(output=plan)); a host of a known installer
        group (for example C(k8s_cluster)) without a role always fails the lookup.
    type: str
    choices: [fail, skip]
    default: fail
notes:
  - Profile variables are read from each planned host's own variables (C(hostvars)), so
    group_vars per cluster work. See the collection's C(docs/profile.md) for the list.
  - The installer's own variables are read too (kubespray and Kubean, k3s-ansible,
    rke2-ansible, ansible-role-rke2; recognised from the inventory groups or set with
    C(kubeports_installer)); an explicit C(kubeports_*) variable wins. See
    C(docs/installers.md).
  - Before any rule is computed, an unknown C(kubeports_*) variable, an unknown installer
    value, or hosts of one cluster that disagree on what peers depend on (CNI and its
    mode, API port, pod and service networks) fail the lookup naming the variable and
    the hosts.
  - Addresses come from C(kubeports_address) (an address or a list, IPv4 and IPv6), else
    C(ip) (kubespray, plus C(ip6)), else C(ansible_host), else the host name if it is an
    address.
seealso:
  - name: Port matrix
    description: Every catalog rule by role and component, with references.
    link: https://github.com/kubeports/kubeports.firewall/blob/main/docs/port-matrix.md
'''

EXAMPLES = r'''
- name: Rules of the current host
  ansible.builtin.debug:
    msg: "{{ lookup('kubeports.firewall.required_ports', inventory_hostname) }}"

- name: Plan every host of the play once, on the controller
  ansible.builtin.set_fact:
    # Not kubeports_plan: kubeports_* names are the collection's settings, and the planner refuses
    # one it does not know.
    planned_hosts: "{{ query('kubeports.firewall.required_ports', *ansible_play_hosts_all, details=true) }}"
  run_once: true
  delegate_to: localhost

- name: The plan of the play's hosts with the resolved cluster profile
  ansible.builtin.debug:
    msg: "{{ (query('kubeports.firewall.required_ports', *ansible_play_hosts, output='plan')[0]).clusters | map(attribute='line') }}"
  run_once: true

- name: Plan every host once, each peer set listed once
  ansible.builtin.set_fact:
    plan: "{{ query('kubeports.firewall.required_ports', *ansible_play_hosts, output='plan')[0] }}"
  run_once: true

- name: Apply the host's rules with the members of the sets they name
  kubeports.firewall.port_rules:
    rules: "{{ listed.rules }}"
    sets: "{{ dict(listed.sets | list | zip(listed.sets.values() | map('extract', plan.sets))) | combine(entry.own_sets) }}"
  vars:
    entry: "{{ plan.hosts[inventory_hostname] }}"
    listed: "{{ plan.rule_lists[entry.rule_list] }}"

- name: Only the ports open to everyone
  ansible.builtin.debug:
    msg: "{{ lookup('kubeports.firewall.required_ports', inventory_hostname) | selectattr('source_set', 'none') }}"
'''

RETURN = r'''
_list:
  description:
    - One dictionary per rule (or per host with O(details=true), or the plan with O(output=plan)).
  type: list
  elements: dict
  contains:
    host:
      description: The inventory host the rule is for.
      type: str
    protocol:
      description: V(tcp), V(udp), V(sctp), or a protocol-only rule (V(icmp), V(icmpv6), V(ipip), V(esp), V(gre), V(all)).
      type: str
    port:
      description: A port (V(6443)), a range (V(30000-32767)), or an empty string for protocol-only rules.
      type: str
    sources:
      description:
        - CIDRs allowed to connect, aggregated; V(0.0.0.0/0) and V(::/0) mean anyone.
        - Absent from restricted rules of O(output=plan), whose C(source_set) names their set.
      type: list
      elements: str
    source_set:
      description: Name of the peer set (set names joined with C(+) after a merge), or null when anyone may connect.
      type: str
    source_sets:
      description: The peer set names that contributed sources.
      type: list
      elements: str
    description:
      description: What the port is for (descriptions of merged rules joined with C(; )).
      type: str
    references:
      description: Seed document and section, or upstream URL, for every merged rule.
      type: list
      elements: str
    ids:
      description: Catalog rule ids merged into this rule.
      type: list
      elements: str
    components:
      description: Catalog components the rule comes from.
      type: list
      elements: str
    to:
      description: Destination roles of the merged catalog rules.
      type: list
      elements: str
'''

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.lookup import LookupBase

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_planner import plan_request
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.action_base import planning_inventory


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        output = 'hosts' if self.get_option('details') else self.get_option('output')
        try:
            with planning_inventory(variables) as (groups, hostvars):
                planned = plan_request(groups, hostvars, self.get_option('role_groups'), self.get_option('catalog_dirs'),
                                       [to_native(term) for term in terms or ()],
                                       self.get_option('hosts_without_role'), 'plan' if output == 'plan' else 'hosts')
        except PlanError as exc:
            raise AnsibleLookupError(to_native(exc))
        if output == 'plan':
            return [planned]
        if output == 'hosts':
            return [plan.as_dict() for plan in planned]
        return [rule for plan in planned for rule in plan.rules]
