# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rule contract, from the planner to the modules: fields, protocols, ports, "anyone".

One rule is a dictionary: ``protocol``, ``port`` ("6443", "30000-32767", "" for
protocol-only rules), and who may connect, given either as ``sources`` (CIDRs) or as
``source_set``, the name of a peer set whose members a plan lists once under ``sets``
(a plan also lists each distinct rule list once; host_view gives one host's view).
The sources decide: when both are given they must agree. Anyone is 0.0.0.0/0 and ::/0
with a null ``source_set``. A rule with ``interfaces`` (protocol all, from anyone) accepts
everything that arrives on those interfaces, to the host and forwarded: the CNI's devices.
The other fields say where the rule comes from.

Standard library only: the modules run it on the managed hosts.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import re

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError

PORT_PROTOCOLS = ('tcp', 'udp', 'sctp')
# Protocol-only rules: no port. IP protocol numbers for backends that need them.
PROTOCOL_NUMBERS = {'icmp': 1, 'ipip': 4, 'gre': 47, 'esp': 50, 'icmpv6': 58, 'all': None}
PROTOCOL_ONLY = tuple(PROTOCOL_NUMBERS)
PROTOCOLS = PORT_PROTOCOLS + PROTOCOL_ONLY
# Anyone: every address of both families. A rule open to anyone has exactly these sources.
ANYONE = ('0.0.0.0/0', '::/0')
ANYONE_BY_FAMILY = {'ipv4': ANYONE[0], 'ipv6': ANYONE[1]}
# Every port, where a rule or a firewall's entry names none.
EVERY_PORT = (1, 65535)
# ICMP rules are for ICMP echo (health checks); each ICMP protocol belongs to one family.
FAMILY_OF_PROTOCOL = {'icmp': 'ipv4', 'icmpv6': 'ipv6'}

# The fields of a rule, as an AnsibleModule argument spec (port_rules' ``rules`` options).
RULE_OPTIONS = {
    'protocol': {'type': 'str', 'required': True, 'choices': list(PROTOCOLS)},
    'port': {'type': 'raw', 'default': ''},
    'sources': {'type': 'list', 'elements': 'str'},
    'source_set': {'type': 'str'},
    'source_sets': {'type': 'list', 'elements': 'str'},
    'host': {'type': 'str'},
    'description': {'type': 'str'},
    'references': {'type': 'list', 'elements': 'str'},
    'ids': {'type': 'list', 'elements': 'str'},
    'components': {'type': 'list', 'elements': 'str'},
    'to': {'type': 'list', 'elements': 'str'},
    'interfaces': {'type': 'list', 'elements': 'str'},
}
# An interface name as iptables, nftables and firewalld take it; a trailing + matches any suffix.
_INTERFACE = re.compile(r'^[A-Za-z0-9_.@=-]{1,15}\+?$')

_RANGE = re.compile(r'^\s*(\d+)\s*-\s*(\d+)\s*$')

# Ports that must never be open to everyone (0.0.0.0/0 or ::/0): protocol, first, last, what.
# Protocol-only entries have no ports. kubeports_public_ports names exceptions, by port.
PRIVATE_PORTS = (
    ('all', None, None, 'every port'),
    ('tcp', 2379, 2381, 'etcd'),
    ('tcp', 10250, 10250, 'the kubelet API'),
    ('tcp', 10255, 10255, 'the kubelet read-only API'),
    ('tcp', 10257, 10257, 'kube-controller-manager'),
    ('tcp', 10259, 10259, 'kube-scheduler'),
    ('udp', 4789, 4789, 'a VXLAN overlay'),
    ('udp', 8472, 8472, 'a VXLAN overlay'),
    ('udp', 6081, 6081, 'a Geneve overlay'),
    ('tcp', 179, 179, 'BGP'),
    ('tcp', 5473, 5473, 'Calico Typha'),
    ('tcp', 9098, 9098, 'the Calico Typha health port'),
    ('tcp', 9099, 9099, 'a CNI health port'),
    ('tcp', 4240, 4240, 'the Cilium health port'),
    ('tcp', 10248, 10248, 'the kubelet health port'),
    ('tcp', 10256, 10256, 'the kube-proxy health port'),
    ('tcp', 10254, 10254, 'the ingress controller health port'),
    ('tcp', 20244, 20244, 'the kube-router health port'),
    ('ipip', None, None, 'the IP-in-IP overlay'),
)


def parse_port(value, where):
    """Return (low, high) for a port or "low-high" range; PlanError names bad values."""
    if isinstance(value, bool):
        raise PlanError('%s: invalid port %r (expected 1-65535 or "low-high")' % (where, value))
    if isinstance(value, int):
        low = high = value
    else:
        text = str(value).strip()
        match = _RANGE.match(text)
        if match:
            low, high = int(match.group(1)), int(match.group(2))
        elif text.isdigit():
            low = high = int(text)
        else:
            raise PlanError('%s: invalid port %r (expected 1-65535 or "low-high")' % (where, value))
    for number in (low, high):
        if not 1 <= number <= 65535:
            raise PlanError('%s: invalid port %r (ports are 1-65535)' % (where, value))
    if low > high:
        raise PlanError('%s: invalid port range %r (start is above end)' % (where, value))
    return low, high


def parse_ports(text, where='port'):
    """(low, high) spans of a port list as rules and firewalls write it: "22", "30000-32767",
    "8000:8100", "80,443"; [EVERY_PORT] for none ('', None, "any")."""
    if text in (None, '', 'any'):
        return [EVERY_PORT]
    return [parse_port(part.replace(':', '-'), where) for part in str(text).split(',')]


def rule_port(rule, where):
    """(low, high) of a rule's port, None for protocol-only rules; PlanError names bad values."""
    protocol = check_protocol(rule.get('protocol', ''), where)
    port = rule.get('port')
    if protocol in PORT_PROTOCOLS:
        if port in (None, ''):
            raise PlanError('%s: protocol %s needs a port or range' % (where, protocol))
        return parse_port(port, where)
    if port not in (None, ''):
        raise PlanError('%s: protocol %s takes no port, got %r' % (where, protocol, port))
    return None


def check_interfaces(names, where):
    """The interface names of a rule or a profile value; PlanError names a bad one."""
    names = [str(item).strip() for item in names]
    for name in names:
        if not _INTERFACE.match(name) or len(name.rstrip('+')) > 15:
            raise PlanError('%s: invalid interface name %r (at most 15 letters, digits or _.@=-, a trailing '
                            '+ for any suffix)' % (where, name))
    return names


def is_whole_family(source):
    """Is one source (CIDR text or network) every address of its family (0.0.0.0/0, ::/0)?"""
    text = str(source)
    if not text.endswith('/0'):
        return False  # the common case, without parsing: planners ask for every source
    try:
        return ipaddress.ip_network(text, strict=False).prefixlen == 0
    except ValueError:
        return False


def is_anyone(sources):
    """Do the sources (CIDR texts or networks) hold every address of both families?"""
    versions = set()
    for source in sources:
        if is_whole_family(source):
            versions.add(ipaddress.ip_network(str(source), strict=False).version)
    return versions == set((4, 6))


def rule_sources(rule, sets, where):
    """The source CIDRs of a rule: its own ``sources``, else the members of its ``source_set``.

    ``sets`` maps set names to members. A rule with neither, or naming a set that ``sets``
    lacks, is a PlanError; so are sources that disagree with the named set's members.
    """
    sources = rule.get('sources')
    name = rule.get('source_set')
    if sources:
        if name is not None and name in (sets or {}) and set(sets[name]) != set(sources):
            raise PlanError('%s: source_set %r disagrees with the rule\'s sources (%s, the set has %s); give '
                            'the set\'s members, or no source_set' % (where, name, few(sources), few(sets[name])))
        return sources
    if name is None:
        raise PlanError('%s: no sources and no source_set; give the CIDRs allowed to connect' % where)
    if name not in (sets or {}):
        raise PlanError('%s: source_set %r is not among the sets given (%s)'
                        % (where, name, ', '.join(sorted(sets or {})) or 'none'))
    return sets[name]


def host_view(document, entry):
    """One host of a plan document (required_ports output=plan) as {host, roles, rules, sets,
    skipped}, ``sets`` mapping each set name its rules use to the members: what port_rules
    takes. An entry that already has its ``rules`` (output=hosts) is returned as it is."""
    if 'rule_list' not in entry:
        return entry
    listed = document['rule_lists'][entry['rule_list']]
    sets = dict((name, document['sets'][key]) for name, key in listed['sets'].items())
    sets.update(entry.get('own_sets') or {})
    return {'host': entry['host'], 'roles': entry['roles'], 'rules': listed['rules'], 'sets': sets,
            'skipped': listed['skipped']}


def few(items, shown=3):
    """"a, b, c and 3 more": the first ``shown`` items and how many more (all of them when one
    more would be left), for messages and reports."""
    items = [str(item) for item in items]
    if len(items) <= shown + 1:
        return ', '.join(items)
    return '%s and %d more' % (', '.join(items[:shown]), len(items) - shown)


def sort_key(rule):
    """Rules ordered by protocol, then port."""
    port = str(rule.get('port') or '')
    return (rule['protocol'], parse_port(port, 'port')[0] if port else 0, port)


def format_port(port_range):
    """"6443", "30000-32767", or "" for protocol-only rules (None)."""
    if port_range is None:
        return ''
    low, high = port_range
    return str(low) if low == high else '%d-%d' % (low, high)


def check_protocol(value, where):
    protocol = str(value).strip().lower()
    if protocol not in PROTOCOLS:
        raise PlanError('%s: unknown protocol %r (choose from %s)'
                        % (where, value, ', '.join(PROTOCOLS)))
    return protocol


def parse_selector(value, where):
    """(protocol, (low, high) or None) of a "protocol/port" selector such as "tcp/10250"."""
    text = str(value).strip().lower()
    protocol, _sep, port = text.partition('/')
    protocol = check_protocol(protocol, where)
    if protocol in PORT_PROTOCOLS:
        if not port:
            raise PlanError('%s: %r needs a port, e.g. "%s/10250"' % (where, value, protocol))
        return protocol, parse_port(port, where)
    if port:
        raise PlanError('%s: protocol %s takes no port, got %r' % (where, protocol, value))
    return protocol, None


def private_ports_hit(protocol, port_range, allowed=()):
    """What a rule open to everyone would expose of PRIVATE_PORTS, minus ``allowed``.

    ``port_range`` is (low, high) or None; ``allowed`` holds parse_selector results.
    Returns [(selector text, what)].
    """
    if protocol == 'all' and ('all', None) in allowed:
        return []
    hits = []
    for private, first, last, what in PRIVATE_PORTS:
        if private == 'all':
            if protocol == 'all' and ('all', None) not in allowed:
                hits.append(('all', what))
            continue
        if protocol not in (private, 'all'):
            continue
        if first is None:
            selector, span = private, None
        else:
            low, high = port_range if port_range else EVERY_PORT
            if high < first or low > last:
                continue
            span = (max(low, first), min(high, last))
            # What the allowed selectors leave of it, together (tcp/2379 and tcp/2380-2381 cover 2379-2381).
            span = _uncovered(span, [item[1] for item in allowed if item[0] == private and item[1] is not None])
            if span is None:
                continue
            selector = '%s/%s' % (private, format_port(span))
        if any(_selector_covers(item, private, span) for item in allowed):
            continue
        hits.append((selector, what))
    return hits


def _uncovered(span, ranges):
    """The first part of ``span`` that no range of ``ranges`` covers, or None."""
    low = span[0]
    for first, last in sorted(ranges):
        if first > low:
            break
        low = max(low, last + 1)
        if low > span[1]:
            return None
    end = min([first - 1 for first, _last in ranges if first > low] + [span[1]])
    return (low, end)


def _selector_covers(allowed, protocol, span):
    allowed_protocol, allowed_range = allowed
    if allowed_protocol != protocol:
        return False
    if span is None or allowed_range is None:
        return span is None and allowed_range is None
    return allowed_range[0] <= span[0] and span[1] <= allowed_range[1]
