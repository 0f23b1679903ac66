# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judging one host's firewall against its plan (the audit; docs/audit.md).

An *exposure* is something the firewall admits, read from its whole effective state by a
backend's ``exposures``: {protocol, port ('' for every port), sources (None for anyone),
what, owned, scope ('rule' or 'zone')}. ``judge`` sorts them, with the planned rules, into
missing, extra, over_exposed and foreign findings.

Runs on the managed host: standard library only.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import binascii
import ipaddress

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import (
    PORT_PROTOCOLS, format_port, parse_port, parse_selector, private_ports_hit)

CATEGORIES = ('missing', 'extra', 'over_exposed', 'foreign')
SEVERITIES = ('critical', 'high', 'medium', 'info')
EVERYONE = (ipaddress.ip_network('0.0.0.0/0'), ipaddress.ip_network('::/0'))
# Control messages, not services: the audit does not judge them.
UNJUDGED_PROTOCOLS = ('icmp', 'icmpv6', 'ipv6-icmp')


def exposure(protocol, port, sources, what, owned=False, scope='rule'):
    """One exposure entry (see the module docstring); ``port`` '' or None is every port."""
    return {'protocol': str(protocol).lower(), 'port': '' if port in (None, '', 'any') else str(port),
            'sources': None if sources is None else [_cidr(item) for item in sources],
            'what': what, 'owned': bool(owned), 'scope': scope}


def _cidr(source):
    """A source as a CIDR ("10.0.0.1" is 10.0.0.1/32); text that is none is kept as it is."""
    try:
        return str(ipaddress.ip_network(str(source), strict=False))
    except ValueError:
        return str(source)


def _span(port):
    return None if port in (None, '') else parse_port(port, 'port')


def _networks(sources):
    """Collapsed networks of a source list; None (anyone) stays None, as does a list
    holding everyone of both families."""
    if sources is None:
        return None
    networks = []
    for item in sources:
        try:
            networks.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            raise PlanError('invalid source %r' % (item,))
    if all(any(net.version == everyone.version and net.prefixlen == 0 for net in networks) for everyone in EVERYONE):
        return None
    collapsed = []
    for version in (4, 6):
        collapsed.extend(ipaddress.collapse_addresses(net for net in networks if net.version == version))
    return collapsed


def _inside(network, allowed):
    """Is ``network`` inside the collapsed networks ``allowed`` (None: anyone)?"""
    if allowed is None:
        return True
    return any(net.version == network.version and network.subnet_of(net) for net in allowed)


def _protocols_meet(first, second):
    return first == second or 'all' in (first, second)


def _spans_meet(first, second):
    if first is None or second is None:
        return True
    return first[0] <= second[1] and second[0] <= first[1]


def _span_covers(outer, inner):
    if outer is None:
        return True
    if inner is None:
        return False
    return outer[0] <= inner[0] and inner[1] <= outer[1]


def _covers(found, protocol, span, network):
    """Does the exposure ``found`` admit ``network`` (None: anyone) to all of protocol/span?"""
    if not (found['protocol'] == protocol or found['protocol'] == 'all'):
        return False
    if not _span_covers(found['span'], span):
        return False
    if found['networks'] is None:
        return True
    if network is None:
        return False
    return _inside(network, found['networks'])


def _shown(networks):
    return None if networks is None else [str(net) for net in networks]


def judge(rules, exposures, extra=(), public_ports=()):
    """Findings {category: [entries]} of one host.

    ``rules``: the host's planned rules with their ``sources`` (the rule contract);
    ``exposures``: what its firewall admits; ``extra``: the collection's own items the plan
    no longer wants (the backend's comparison with prune), as readable strings.
    """
    allowed_public = [parse_selector(item, 'public_ports') for item in public_ports or ()]
    planned = []
    for rule in rules:
        protocol = str(rule['protocol']).lower()
        if protocol in UNJUDGED_PROTOCOLS:
            continue
        span = _span(rule.get('port')) if protocol in PORT_PROTOCOLS else None
        planned.append({'protocol': protocol, 'span': span, 'port': rule.get('port') or '',
                        'networks': _networks(rule.get('sources')), 'rule': rule})
    found = []
    for item in exposures:
        if item['protocol'] in UNJUDGED_PROTOCOLS:
            continue
        found.append(dict(item, span=_span(item['port']), networks=_networks(item['sources'])))
    findings = dict((category, []) for category in CATEGORIES)
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
        elif not _within_plan(item, planned):
            findings['foreign'].append({
                'protocol': item['protocol'], 'port': item['port'], 'sources': _shown(item['networks']),
                'description': item['what'], 'reference': None, 'severity': 'info', 'scope': item['scope']})
    findings['over_exposed'].sort(key=lambda entry: (SEVERITIES.index(entry['severity']), entry['description']))
    return findings


def _reference(rule):
    return (rule.get('references') or [None])[0]


def _missing(entry, found):
    """The planned rule's sources that no exposure admits."""
    protocol, span = entry['protocol'], entry['span']
    wanted = [None] if entry['networks'] is None else entry['networks']
    unadmitted = [network for network in wanted
                  if not any(_covers(item, protocol, span, network) for item in found)]
    if not unadmitted:
        return []
    rule = entry['rule']
    return [{'protocol': protocol, 'port': entry['port'],
             'sources': None if unadmitted == [None] else [str(net) for net in unadmitted],
             'description': rule.get('description') or '', 'reference': _reference(rule), 'severity': 'high'}]


def _over_exposed(item, planned, allowed_public):
    """A finding when ``item`` lets more sources reach a planned port than the plan allows, or
    opens a must-not-be-public port to anyone; None otherwise."""
    meeting = [entry for entry in planned
               if _protocols_meet(item['protocol'], entry['protocol']) and _spans_meet(item['span'], entry['span'])]
    if item['networks'] is None:
        hits = private_ports_hit(item['protocol'], item['span'], allowed_public)
        if hits:
            references = [_reference(entry['rule']) for entry in meeting if _reference(entry['rule'])]
            return {'protocol': item['protocol'], 'port': item['port'], 'sources': None,
                    'description': '%s: %s open to anyone (%s)' % (item['what'], hits[0][1], hits[0][0]),
                    'reference': references[0] if references else None, 'severity': 'critical',
                    'scope': item['scope']}
    wider = []
    for entry in meeting:
        if entry['networks'] is None:
            continue
        if item['networks'] is None or any(not _inside(net, entry['networks']) for net in item['networks']):
            wider.append(entry)
    if not wider:
        return None
    ports = sorted(set('%s/%s' % (entry['protocol'], format_port(entry['span']) if entry['span'] else '')
                       for entry in wider))
    return {'protocol': item['protocol'], 'port': item['port'], 'sources': _shown(item['networks']),
            'description': '%s: admits more sources than the plan allows to %s' % (item['what'], ', '.join(ports)),
            'reference': _reference(wider[0]['rule']), 'severity': 'high', 'scope': item['scope']}


def _within_plan(item, planned):
    """Does the plan already admit everything ``item`` admits?"""
    wanted = [None] if item['networks'] is None else item['networks']
    for network in wanted:
        if not any(_covers(entry, item['protocol'], item['span'], network) for entry in planned):
            return False
    return True


# /proc/net files: (file, protocol, family, the state of a socket that accepts traffic).
PROC_NET = (('tcp', 'tcp', 4, '0A'), ('tcp6', 'tcp', 6, '0A'), ('udp', 'udp', 4, '07'), ('udp6', 'udp', 6, '07'))


def _proc_address(text, family):
    """The address of a /proc/net/* local_address field ("0100007F:0016")."""
    raw = binascii.unhexlify(text)
    if family == 4:
        return ipaddress.ip_address(raw[::-1])
    # IPv6: four 32-bit words, each in host (little-endian) order.
    return ipaddress.ip_address(b''.join(raw[index:index + 4][::-1] for index in range(0, 16, 4)))


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
