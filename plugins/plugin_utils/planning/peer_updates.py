# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hosts outside a run (a --limit, a job slice) whose peer sets hold a host of the run: a
node the run adds is admitted by them only once they are applied with the same inventory."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_index import require_netaddr
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import few

try:
    import netaddr
except ImportError:
    netaddr = None

# Hosts named in a --limit of the suggested command; more are left to a pattern.
LIMIT_HOSTS = 10


def hosts_to_update(planner, run_hosts):
    """The planned hosts outside ``run_hosts`` whose peer sets hold an address of a host of the
    run: {'holders': [{'hosts', 'members'}] (hosts of one kind hold the same members), 'hosts',
    'members', 'sets' (all of them), 'addresses': {member: its addresses}}. Hosts planned alike
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
    holders, names, held = [], set(), {}
    for hosts in kinds.values() if watched else ():
        plan = planner.plan([hosts[0]])[0]
        members = set()
        for rule, signature in zip(plan.rules, plan.signatures):
            if signature is None:
                continue  # open to anyone, or the host's own addresses
            found = held.get(signature)
            if found is None:
                found = held[signature] = _holding(rule['sources'], watched)
            if found:
                members.update(found)
                names.add(rule['source_set'])
        if members:
            holders.append({'hosts': sorted(hosts), 'members': sorted(members)})
    members = sorted(set(member for holder in holders for member in holder['members']))
    return {'holders': holders, 'hosts': sorted(host for holder in holders for host in holder['hosts']),
            'members': members, 'sets': sorted(names),
            'addresses': dict((member, [str(net) for net in index.addresses[member]]) for member in members)}


def _holding(sources, watched):
    """The hosts of ``watched`` ((network, host) pairs) with an address in ``sources`` (CIDR
    strings): most are listed as they are; only the others are looked for in the CIDRs."""
    listed = set(sources)
    found = set(host for net, host in watched if str(net) in listed)
    rest = [(net, host) for net, host in watched if host not in found and str(net) not in listed]
    if rest:
        peers = netaddr.IPSet(sources)
        found.update(host for net, host in rest if net in peers)
    return found


def not_yet_admitting(update, new_members):
    """(hosts outside the run that hold one of ``new_members``, those new members)."""
    new_members = set(new_members)
    hosts, members = set(), set()
    for holder in update.get('holders') or ():
        found = new_members.intersection(holder['members'])
        if found:
            hosts.update(holder['hosts'])
            members.update(found)
    return sorted(hosts), sorted(members)


def update_note(update, new_members, run_hosts):
    """The line that names the hosts outside the run that do not admit its new members yet, with
    the command that updates them; '' when there are none."""
    hosts, members = not_yet_admitting(update, new_members)
    if not hosts:
        return ''
    one = len(members) == 1
    return ('%s %s new to %s own peer sets (first applied, or at a new address). %d host(s) outside this run hold %s '
            'in their plan: %s. They do not admit %s until they are applied with this inventory (unless that '
            'happened after %s joined it). Update their peer sets (only set members change; a host already up to '
            'date does not change): %s'
            % (few(members, 10), 'is' if one else 'are', 'its' if one else 'their', len(hosts), 'it' if one else 'them',
               few(hosts, 10), 'it' if one else 'them', 'it' if one else 'they',
               update_command(hosts, run_hosts, update.get('inventories'))))


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
