# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe planning: which host probes which port of which host, and what it should see.

Pure functions over plain data (host plans from the planner, addresses as strings). The
verify role runs the probes (modules probe_listeners and probe_ports); verify_report judges
the results.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import bisect

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.catalog import ROLES
from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_index import netaddr, require_netaddr
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import parse_port

PROBED_PROTOCOLS = ('tcp', 'udp')
SOURCE_MODES = ('all', 'per_role')
# Observed results of one probe, and the expectations they satisfy.
OPEN, CLOSED, FILTERED, ERROR = 'open', 'closed', 'filtered', 'error'
BLOCKED = 'blocked'
SATISFIES = {OPEN: (OPEN,), BLOCKED: (CLOSED, FILTERED)}
NO_ROLE = 'none'
# SSH rules only guarantee their sources a way in: SSH open to others by the host's own
# rules (firewalld's ssh service) is left as it is, so SSH ports (the ssh component's and 22)
# are never probed as blocked, planned or not.
ALLOW_ONLY_COMPONENTS = ('ssh',)
SSH = ('tcp', 22)


def role_label(roles):
    """"etcd+controlplane" for a host's roles, in catalog order; "none" for non-cluster hosts."""
    ordered = [role for role in ROLES if role in roles]
    return '+'.join(ordered) if ordered else NO_ROLE


def probe_ports(port):
    """The ports probed for a rule's port: the port, or both ends of a range."""
    low, high = parse_port(port, 'port')
    return [low] if high == low else [low, high]


def address_family(address):
    return 6 if ':' in address else 4


def _covering(rules, protocol, port):
    """The rules of one host that open ``port``, protocol "all" rules included; not those of the
    CNI's devices (``interfaces``), which probes from the node network never arrive on."""
    found = []
    for rule in rules:
        if rule.get('interfaces'):
            continue
        if rule['protocol'] == 'all':
            found.append(rule)
            continue
        if rule['protocol'] != protocol or not rule['port']:
            continue
        low, high = parse_port(rule['port'], 'port')
        if low <= port <= high:
            found.append(rule)
    return found


class _Sides(object):
    """Probing hosts split into allowed and not allowed for one set of rules and one family.

    Built once per distinct set of sources, so the cost of a target grows with its probes,
    not with the number of hosts times its ports.
    """

    def __init__(self, hosts, rules, family):
        # Merged across the rules, so the ranges do not overlap and one bisect finds the match.
        networks = [netaddr.IPNetwork(source) for rule in rules for source in rule['sources']]
        ranges = sorted((net.first, net.last) for net in netaddr.cidr_merge(networks) if net.version == family)
        firsts = [first for first, _last in ranges]
        self.groups = {True: {}, False: {}}
        for host in hosts:
            if family not in host['numbers']:
                continue
            source, number = host['numbers'][family]
            index = bisect.bisect_right(firsts, number) - 1
            allowed = index >= 0 and number <= ranges[index][1]
            self.groups[allowed].setdefault(host['label'], []).append(dict(host, source=source, allowed=allowed))
        self.turn = {}

    def select(self, allowed, mode, excluded):
        """Every host on one side, or one per role label taken in turn, skipping ``excluded``."""
        chosen = []
        for label in sorted(self.groups[allowed]):
            members = self.groups[allowed][label]
            if mode == 'all':
                chosen.extend(host for host in members if host['source'] not in excluded)
                continue
            index = self.turn.get((allowed, label), 0)
            for step in range(min(len(members), len(excluded) + 1)):
                host = members[(index + step) % len(members)]
                if host['source'] not in excluded:
                    self.turn[(allowed, label)] = index + step + 1
                    chosen.append(host)
                    break
        return chosen


def catalog_ports(components):
    """(protocol, port) of every TCP and UDP port the catalog names, both ends of ranges."""
    found = set()
    for component in components:
        for rule in component.rules:
            if rule.protocol in PROBED_PROTOCOLS and isinstance(rule.port, tuple):
                found.update((rule.protocol, port) for port in sorted(set(rule.port)))
    return found


def plan_probes(targets, probers, sources='all', unplanned=True, other_ports=()):
    """The probes and listeners that check every target's firewall.

    ``targets``: host plans ({host, roles, rules}) plus ``addresses`` (strings).
    ``probers``: {host: {roles, addresses}} for every host that can probe, targets included.
    ``sources``: "all" probes each planned port from every prober, "per_role" from one
    prober per role label on each side (allowed and not allowed).
    ``unplanned``: also probe, on each target, the ports the cluster opens elsewhere and
    ``other_ports`` (the catalog's), expecting them blocked, from one prober per role label.
    """
    require_netaddr()
    if sources not in SOURCE_MODES:
        raise PlanError('kubeports_verify_sources: unknown mode %r (choose from %s)'
                        % (sources, ', '.join(SOURCE_MODES)))
    hosts, not_probed = [], []
    for name in sorted(probers):
        info = probers[name]
        addresses = [str(item) for item in info.get('addresses') or ()]
        if not addresses:
            if info.get('roles'):
                raise PlanError('host %s has no address to probe from' % name)
            not_probed.append({'source': name, 'target': '', 'target_roles': '', 'address': '', 'protocol': '',
                               'port': '', 'ids': [], 'reason': '%s does not probe: %s' % (
                                   name, info.get('reason') or 'no address known for it')})
            continue
        numbers = {}
        for address in addresses:
            numbers.setdefault(address_family(address), (address, int(netaddr.IPAddress(address))))
        hosts.append({'host': name, 'label': role_label(info.get('roles') or ()), 'numbers': numbers})
    cluster_ports, allow_only = set(), set()
    for target in targets:
        for rule in target['rules']:
            if rule['protocol'] in PROBED_PROTOCOLS and rule['port']:
                ports = set((rule['protocol'], port) for port in probe_ports(rule['port']))
                cluster_ports.update(ports)
                if _allow_only([rule]):
                    allow_only.update(ports)
    cluster_ports.update((protocol, int(port)) for protocol, port in other_ports)
    allow_only.add(SSH)
    sides_cache = {}
    listeners, probes = {}, {}
    for target in sorted(targets, key=lambda item: item['host']):
        name, rules = target['host'], target['rules']
        label = role_label(target['roles'])
        ports, seen = [], set()
        for rule in rules:
            if rule['protocol'] not in PROBED_PROTOCOLS or not rule['port']:
                not_probed.append(_unprobed(target, rule, label))
                continue
            for port in probe_ports(rule['port']):
                if (rule['protocol'], port) not in seen:
                    seen.add((rule['protocol'], port))
                    ports.append((rule['protocol'], port, True))
        if unplanned:
            ports.extend((protocol, port, False) for protocol, port in sorted(cluster_ports - seen - allow_only))
        listeners[name] = [{'protocol': protocol, 'port': port} for protocol, port, _planned in ports]
        for protocol, port, planned in ports:
            covering = _covering(rules, protocol, port)
            specific = [rule for rule in covering if rule['protocol'] != 'all']
            # A catalog port inside a planned range (a NodePort) follows that range's rule.
            planned = planned or bool(specific)
            signature = tuple(tuple(rule['sources']) for rule in covering)
            excluded = set(target['addresses'])
            for address in target['addresses']:
                family = address_family(address)
                sides = sides_cache.get((signature, family))
                if sides is None:
                    sides = sides_cache[(signature, family)] = _Sides(hosts, covering, family)
                mode = sources if planned else 'per_role'
                allowed = sides.select(True, mode, excluded)
                if specific and not allowed:
                    not_probed.append({
                        'target': name, 'target_roles': label, 'address': address,
                        'protocol': protocol, 'port': str(port), 'ids': _ids(covering),
                        'reason': _no_allowed_prober(covering, target['addresses'])})
                denied = [] if (protocol, port) in allow_only else sides.select(False, mode, excluded)
                for host in allowed + denied:
                    probes.setdefault(host['host'], []).append({
                        'source': host['host'], 'source_roles': host['label'],
                        'source_address': host['source'],
                        'target': name, 'target_roles': label, 'address': address,
                        'protocol': protocol, 'port': port,
                        'rule': _rule_port(covering, port), 'planned': planned,
                        'expected': OPEN if host['allowed'] else BLOCKED,
                        'ids': _ids(covering),
                    })
    number = 0
    for source in sorted(probes):
        for probe in probes[source]:
            number += 1
            probe['id'] = 'p%d' % number
    return {'listeners': listeners, 'probes': probes, 'not_probed': not_probed,
            'targets': dict((target['host'], {'roles': role_label(target['roles']),
                                              'addresses': list(target['addresses'])})
                            for target in targets)}


def _allow_only(rules):
    return any(component in ALLOW_ONLY_COMPONENTS for rule in rules for component in rule.get('components') or ())


def _ids(rules):
    return [rule_id for rule in rules for rule_id in rule.get('ids') or ()]


def _sources(rules):
    return [source for rule in rules for source in rule['sources']]


def _no_allowed_prober(rules, addresses):
    sources = _sources(rules)
    if all(str(netaddr.IPNetwork(item).ip) in addresses and netaddr.IPNetwork(item).size == 1
           for item in sources):
        return 'only the host itself may connect; traffic from a host to itself is not probed'
    return 'no probing host is among the allowed sources (%s)' % ', '.join(sources)


def _rule_port(rules, port):
    return rules[0]['port'] if rules else str(port)


def _unprobed(target, rule, label):
    if rule['port']:
        reason = '%s is not probed (only TCP and UDP are)' % rule['protocol'].upper()
    else:
        reason = 'protocol-only rule: no port to probe; %s traffic is not proven by this check' % rule['protocol']
    return {'target': target['host'], 'target_roles': label, 'address': '', 'protocol': rule['protocol'],
            'port': rule['port'], 'ids': list(rule.get('ids') or ()), 'reason': reason}
