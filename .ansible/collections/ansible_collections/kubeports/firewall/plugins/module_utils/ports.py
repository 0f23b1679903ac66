# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Protocols and port syntax shared by the planner and the backends."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError

PORT_PROTOCOLS = ('tcp', 'udp', 'sctp')
# Protocol-only rules: no port. IP protocol numbers for backends that need them.
PROTOCOL_NUMBERS = {'icmp': 1, 'ipip': 4, 'gre': 47, 'esp': 50, 'icmpv6': 58, 'all': None}
PROTOCOLS = PORT_PROTOCOLS + tuple(PROTOCOL_NUMBERS)

_RANGE = re.compile(r'^\s*(\d+)\s*-\s*(\d+)\s*$')


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
