# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by the modules that take a host's rules (port_rules, port_rules_info); their argument
spec is module_utils/port_rules_args.py."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options:
  rules:
    description:
      - The host's rules (the rule contract, docs/plan.md).
    type: list
    elements: dict
    suboptions:
      protocol:
        description: V(tcp), V(udp), V(sctp), or a protocol-only rule.
        type: str
        required: true
        choices: [tcp, udp, sctp, icmp, ipip, gre, esp, icmpv6, all]
      port:
        description: A port (V(6443)), a range (V(30000-32767)), or empty for protocol-only rules.
        type: raw
        default: ''
      sources:
        description: CIDRs allowed to connect; V(0.0.0.0/0) and V(::/0) (with no C(source_set)) mean anyone.
        type: list
        elements: str
      source_set:
        description: The peer set's name (firewalld's ipset C(kubeports-<set>)); its members are in O(sets) when C(sources) is not given.
        type: str
      source_sets:
        description: The peer sets merged into this rule (informational).
        type: list
        elements: str
      host:
        description: The inventory host the rule was planned for (informational).
        type: str
      description:
        description: What the port is for (informational).
        type: str
      references:
        description: Where the port is documented (informational).
        type: list
        elements: str
      ids:
        description: Catalog rule ids merged into this rule (informational).
        type: list
        elements: str
      components:
        description: Catalog components of the rule (informational).
        type: list
        elements: str
      to:
        description: Destination roles of the catalog rules (informational).
        type: list
        elements: str
      interfaces:
        description:
          - The CNI's devices (a trailing V(+) matches any suffix, as in V(cali+)); everything arriving on
            them is accepted, to the host and forwarded. Only with O(rules[].protocol=all), C(sources) V(0.0.0.0/0)
            and V(::/0) and no C(source_set).
          - firewalld binds them to its C(trusted) zone; ufw allows and route-allows in on them; SuSEfirewall2
            accepts them in the collection's own C(FW_CUSTOMRULES) file (docs/backends.md).
        type: list
        elements: str
  sets:
    description:
      - Peer set name to its members (CIDRs), for rules that name their C(source_set) without
        C(sources). The open_ports role passes the sets the host's rules use, each once.
    type: dict
    default: {}
  backend:
    description:
      - The firewall to manage. V(auto) picks the active one (firewalld, then ufw, then SuSEfirewall2).
    type: str
    choices: [auto, firewalld, ufw, susefirewall2]
    default: auto
  firewalld_zone:
    description: firewalld zone of the rules. Default is firewalld's default zone.
    type: str
  state_dir:
    description: Directory for the record of what the collection created, one file per backend.
    type: path
    default: /var/lib/kubeports
  public_ports:
    description:
      - C(protocol/port) selectors (for example V(tcp/10250)) that may be open to everyone.
      - A rule open to everyone (sources V(0.0.0.0/0) and V(::/0)) that would expose etcd
        (2379-2381), the kubelet (10250, 10255), kube-controller-manager or kube-scheduler (10257,
        10259), an overlay (4789, 8472, 6081/udp, IP-in-IP), BGP 179, Calico Typha 5473 or a
        health port is refused, before anything changes, unless this names that port.
    type: list
    elements: str
    default: []
'''
