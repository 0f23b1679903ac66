# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judging one host's firewall against its plan (the audit; docs/audit.md).

An *exposure* (backends/base.py ``exposure``) is something the firewall admits, read from its
whole effective state by a backend's ``exposures``. What
is admitted on some interfaces only (the CNI's devices) is judged against the planned rules
with ``interfaces``, never as open to the node network. ``judge`` sorts them, with the planned rules, into
missing, extra, over_exposed and foreign findings.

Runs on the managed host: standard library only.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import binascii
import ipaddress
import sys

from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import exposure, protocol_name
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import (
    ANYONE, EVERY_PORT, PORT_PROTOCOLS, is_anyone, is_whole_family, parse_port, parse_selector, private_ports_hit)

CATEGORIES = ('missing', 'extra', 'over_exposed', 'foreign')
SEVERITIES = ('critical', 'high', 'medium', 'info')
# Control messages, not services: the audit does not judge them.
UNJUDGED_PROTOCOLS = ('icmp', 'icmpv6')


def interface_matches(name, pattern):
    """Does interface ``name`` (itself maybe a wildcard such as cali+) fall under ``pattern``?"""
    if pattern.endswith('+'):
        return name.rstrip('+').startswith(pattern[:-1])
    return name == pattern


def _span(port):
    return EVERY_PORT if port in (None, '') else parse_port(port, 'port')


def _everyone():
    return [ipaddress.ip_network(item) for item in ANYONE]


def _network(item):
    """A source as a network; an ipset entry with a port ("10.0.0.1,tcp:80") by its address;
    anything else (a MAC address, an unknown set) as everyone, which over-states, never hides."""
    text = str(item).strip()
    for candidate in (text, text.split(',', 1)[0]):
        try:
            return [ipaddress.ip_network(candidate, strict=False)]
        except ValueError:
            continue
    return _everyone()


def _networks(sources):
    """Collapsed networks of a source list; None (anyone) is both families' everyone."""
    if sources is None:
        return _everyone()
    networks = [net for item in sources for net in _network(item)]
    return _collapsed(networks)


def _collapsed(networks):
    out = []
    for version in (4, 6):
        out.extend(ipaddress.collapse_addresses(net for net in networks if net.version == version))
    return out


def _inside(networks, allowed):
    """Is every network of ``networks`` inside the union ``allowed`` (collapsed)?"""
    return all(any(allow.version == net.version and net.subnet_of(allow) for allow in allowed) for net in networks)


def _shown(networks):
    return None if is_anyone(networks) else [str(net) for net in networks]


def _meet(first, second):
    return first[0] <= second[1] and second[0] <= first[1]


def _takes_all_of(entry, protocol, span):
    """Does ``entry`` (planned or exposed) take all of protocol/span?"""
    return ((entry['protocol'] == protocol or entry['protocol'] == 'all')
            and entry['span'][0] <= span[0] and span[1] <= entry['span'][1])


def _admitted(protocol, span, entries):
    """[(segment, union of sources)] of ``span``: split wherever an entry's ports begin or
    end, each segment with the sources of the entries that take all of it."""
    cuts = set([span[0], span[1] + 1])
    for entry in entries:
        if entry['protocol'] in (protocol, 'all') and _meet(entry['span'], span):
            cuts.add(max(span[0], entry['span'][0]))
            cuts.add(min(span[1], entry['span'][1]) + 1)
    edges = sorted(cuts)
    out = []
    for low, after in zip(edges, edges[1:]):
        segment = (low, after - 1)
        union = [net for entry in entries if _takes_all_of(entry, protocol, segment) for net in entry['networks']]
        out.append((segment, _collapsed(union)))
    return out


def judge(rules, exposures, extra=(), public_ports=()):
    """Findings {category: [entries]} of one host.

    ``rules``: the host's planned rules with their ``sources`` (the rule contract);
    ``exposures``: what its firewall admits; ``extra``: the collection's own items the plan
    no longer wants (the backend's comparison with prune), as readable strings. The plan is
    judged as a whole: what several planned rules admit together counts, port by port.
    """
    allowed_public = [parse_selector(item, 'public_ports') for item in public_ports or ()]
    findings = dict((category, []) for category in CATEGORIES)
    rules, exposures = _judge_interfaces(rules, exposures, findings)
    planned = []
    for rule in rules:
        protocol = protocol_name(rule['protocol'])
        if protocol in UNJUDGED_PROTOCOLS:
            continue
        span = _span(rule.get('port')) if protocol in PORT_PROTOCOLS else EVERY_PORT
        planned.append({'protocol': protocol, 'span': span, 'port': str(rule.get('port') or ''),
                        'networks': _networks(rule.get('sources')), 'rule': rule})
    found = []
    for item in exposures:
        protocol = protocol_name(item['protocol'])
        if protocol in UNJUDGED_PROTOCOLS:
            continue
        span = _span(item['port']) if protocol in PORT_PROTOCOLS else EVERY_PORT
        found.append(dict(item, protocol=protocol, span=span, networks=_networks(item['sources'])))
    for entry in planned:
        findings['missing'].extend(_missing(entry, found))
    for text in extra:
        findings['extra'].append({'protocol': None, 'port': None, 'sources': None, 'description': text,
                                  'reference': None, 'severity': 'medium'})
    for item in found:
        if item['owned']:
            # The collection's own items are either planned or listed as extra.
            continue
        entry = _over_exposed(item, planned, allowed_public)
        if entry is not None:
            findings['over_exposed'].append(entry)
        elif not all(_inside(item['networks'], union) for _segment, union in
                     _admitted(item['protocol'], item['span'], planned)):
            findings['foreign'].append({
                'protocol': item['protocol'], 'port': item['port'], 'sources': _shown(item['networks']),
                'description': item['what'], 'reference': None, 'severity': 'info', 'scope': item['scope']})
    for category in CATEGORIES:
        findings[category] = _distinct(findings[category])
    findings['over_exposed'].sort(key=lambda entry: (SEVERITIES.index(entry['severity']), entry['description']))
    return findings


def _judge_interfaces(rules, exposures, findings):
    """Judges what is admitted on some interfaces only against the planned rules with
    ``interfaces``; returns the other rules and exposures, judged by their sources."""
    planned = [rule for rule in rules if rule.get('interfaces')]
    found = [item for item in exposures if item.get('interfaces')]
    # Everything admitted from anyone on every interface (no firewall, an ACCEPT zone) covers the devices.
    everywhere = any(protocol_name(item['protocol']) == 'all' and not item.get('interfaces')
                     and is_anyone(_networks(item['sources'])) for item in exposures)
    for rule in planned:
        admitted = [name for item in found if item['protocol'] == 'all' for name in item['interfaces']]
        unadmitted = [] if everywhere else [name for name in rule['interfaces'] if name not in admitted]
        if unadmitted:
            findings['missing'].append({'protocol': 'all', 'port': '', 'sources': None,
                                        'interfaces': unadmitted, 'description': '%s (interfaces %s)'
                                        % (rule.get('description') or '', ', '.join(unadmitted)),
                                        'reference': _reference(rule), 'severity': 'high'})
    wanted = [name for rule in planned for name in rule['interfaces']]
    for item in found:
        if item['owned'] or all(any(interface_matches(name, pattern) for pattern in wanted)
                                for name in item['interfaces']):
            continue
        findings['foreign'].append({'protocol': item['protocol'], 'port': item['port'], 'sources': item['sources'],
                                    'interfaces': item['interfaces'], 'description': item['what'],
                                    'reference': None, 'severity': 'info', 'scope': item['scope']})
    return ([rule for rule in rules if not rule.get('interfaces')],
            [item for item in exposures if not item.get('interfaces')])


def _distinct(entries):
    """Entries without repeats (ufw lists a rule from anywhere once per family)."""
    seen, out = set(), []
    for entry in entries:
        key = (entry['protocol'], entry['port'], tuple(entry['sources'] or ()), entry['sources'] is None,
               tuple(entry.get('interfaces') or ()), entry['description'])
        if key not in seen:
            seen.add(key)
            out.append(entry)
    return out


def _reference(rule):
    return (rule.get('references') or [None])[0]


def _missing(entry, found):
    """The planned rule's sources that no exposure admits, on any of its ports."""
    unadmitted = []
    for _segment, union in _admitted(entry['protocol'], entry['span'], found):
        for network in entry['networks']:
            if not _inside([network], union) and network not in unadmitted:
                unadmitted.append(network)
    if not unadmitted:
        return []
    rule = entry['rule']
    return [{'protocol': entry['protocol'], 'port': entry['port'], 'sources': _shown(unadmitted),
             'description': rule.get('description') or '', 'reference': _reference(rule), 'severity': 'high'}]


def _over_exposed(item, planned, allowed_public):
    """A finding when ``item`` lets more sources reach a planned port than the plan allows, or
    opens a must-not-be-public port to anyone (of either family); None otherwise."""
    targets = [entry for entry in planned if entry['protocol'] != 'all'
               and (item['protocol'] in (entry['protocol'], 'all')) and _meet(item['span'], entry['span'])]
    if any(is_whole_family(net) for net in item['networks']):
        span = item['span'] if item['protocol'] in PORT_PROTOCOLS and item['port'] else None
        hits = private_ports_hit(item['protocol'], span, allowed_public)
        if hits:
            references = [_reference(entry['rule']) for entry in targets if _reference(entry['rule'])]
            return {'protocol': item['protocol'], 'port': item['port'], 'sources': _shown(item['networks']),
                    'description': '%s: %s open to anyone (%s)' % (item['what'], hits[0][1], hits[0][0]),
                    'reference': references[0] if references else None, 'severity': 'critical',
                    'scope': item['scope']}
    wider = []
    for target in targets:
        shared = (max(item['span'][0], target['span'][0]), min(item['span'][1], target['span'][1]))
        if not all(_inside(item['networks'], union) for _segment, union in
                   _admitted(target['protocol'], shared, planned)):
            wider.append(target)
    if not wider:
        return None
    ports = sorted(set('%s/%s' % (entry['protocol'], entry['port']) if entry['port'] else entry['protocol']
                       for entry in wider))
    return {'protocol': item['protocol'], 'port': item['port'], 'sources': _shown(item['networks']),
            'description': '%s: admits more sources than the plan allows to %s' % (item['what'], ', '.join(ports)),
            'reference': _reference(wider[0]['rule']), 'severity': 'high', 'scope': item['scope']}


# /proc/net files: (file, protocol, family, the state of a socket that accepts traffic).
PROC_NET = (('tcp', 'tcp', 4, '0A'), ('tcp6', 'tcp', 6, '0A'), ('udp', 'udp', 4, '07'), ('udp6', 'udp', 6, '07'))


def _proc_address(text, family):
    """The address of a /proc/net/* local_address field ("0100007F:0016")."""
    raw = binascii.unhexlify(text)
    # The kernel prints each 32-bit word in the host's byte order.
    if sys.byteorder == 'little':
        raw = b''.join(raw[index:index + 4][::-1] for index in range(0, len(raw), 4))
    return ipaddress.ip_address(raw)


def listening_sockets(proc='/proc'):
    """[(protocol, address, port)] of the sockets that take traffic from the network (not
    bound to loopback), from /proc/net."""
    found = set()
    for name, protocol, family, state in PROC_NET:
        try:
            with open('%s/net/%s' % (proc, name)) as handle:
                lines = handle.read().splitlines()[1:]
        except (IOError, OSError):
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 4 or fields[3] != state:
                continue
            address, _sep, port = fields[1].partition(':')
            ip = _proc_address(address, family)
            if ip.is_loopback or (family == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback):
                continue
            found.add((protocol, str(ip), int(port, 16)))
    return sorted(found, key=lambda item: (item[0], item[2], item[1]))


def listening_exposures(proc='/proc'):
    """With no firewall: every port is open to anyone (one zone entry), and each listening
    socket is a service anyone reaches."""
    found = [exposure('all', '', None, 'no active firewall: every port is open to anyone', scope='zone')]
    for protocol, address, port in listening_sockets(proc):
        found.append(exposure(protocol, str(port), None, 'listening on %s port %d/%s (no active firewall)'
                              % (address, port, protocol)))
    return found


def summarize(hosts):
    """{category: count, hosts, clean_hosts, critical} of {host: findings}."""
    summary = dict((category, sum(len(findings[category]) for findings in hosts.values())) for category in CATEGORIES)
    summary['hosts'] = len(hosts)
    summary['clean_hosts'] = sum(1 for findings in hosts.values()
                                 if not any(findings[category] for category in CATEGORIES[:3]))
    summary['critical'] = sum(1 for findings in hosts.values() for category in CATEGORIES
                              for entry in findings[category] if entry['severity'] == 'critical')
    return summary
