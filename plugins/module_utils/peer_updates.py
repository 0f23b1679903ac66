# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hosts outside a run (a --limit, a job slice) whose peer sets hold a host of the run: a
node the run adds is admitted by them only once they are applied with the same inventory."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.kubeports.firewall.plugins.module_utils.inventory_index import require_netaddr

try:
    import netaddr
except ImportError:
    netaddr = None

# Hosts named in a --limit of the suggested command; more are left to a pattern.
LIMIT_HOSTS = 10


def hosts_to_update(planner, run_hosts):
    """{'hosts': planned hosts outside ``run_hosts`` whose peer sets hold an address of a host
    of the run, 'members': those hosts of the run, 'sets': the sets' names}. Hosts planned alike
    (InventoryPlanner.kind_of) share their peer sets: one of each kind is planned."""
    require_netaddr()
    index = planner.index
    planner.profiles()
    run = set(run_hosts)
    watched = [(net, host) for host in sorted(run) for net in index.addresses.get(host, ())]
    kinds = {}
    for host in index.planned_hosts():
        if host not in run:
            kind = planner.kind_of(host)
            kinds.setdefault(kind if kind is not None else ('host', host), []).append(host)
    found = {'hosts': [], 'members': set(), 'sets': set()}
    if not watched:
        return _listed(found)
    held = {}
    for hosts in kinds.values():
        plan = planner.plan([hosts[0]])[0]
        holds = False
        for rule, signature in zip(plan.rules, plan.signatures):
            if signature is None:
                continue  # open to anyone, or the host's own addresses
            members = held.get(signature)
            if members is None:
                peers = netaddr.IPSet(rule['sources'])
                members = held[signature] = set(host for net, host in watched if net in peers)
            if members:
                holds = True
                found['members'].update(members)
                found['sets'].add(rule['source_set'])
        if holds:
            found['hosts'].extend(hosts)
    return _listed(found)


def _listed(found):
    return {'hosts': sorted(found['hosts']), 'members': sorted(found['members']), 'sets': sorted(found['sets'])}


def update_command(hosts, run_hosts, inventories, playbook='kubeports.firewall.open_ports'):
    """The command that applies ``hosts``: named in --limit when few, else every host but the
    run's, else every host (hosts already up to date do not change)."""
    command = 'ansible-playbook %s' % playbook
    for source in inventories or ():
        command += ' -i %s' % _quoted(source)
    if len(hosts) <= LIMIT_HOSTS:
        return '%s --limit %s' % (command, _quoted(','.join(hosts)))
    if len(run_hosts) <= LIMIT_HOSTS:
        return '%s --limit %s' % (command, _quoted('all:' + ':'.join('!' + host for host in sorted(run_hosts))))
    return command


def _quoted(text):
    text = str(text)
    if text and all(char.isalnum() or char in '@%+=:,./-_' for char in text):
        return text
    return "'%s'" % text.replace("'", "'\\''")
