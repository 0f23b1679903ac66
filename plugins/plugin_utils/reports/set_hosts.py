# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hosts behind a peer set: a set's members are merged CIDRs (192.0.2.12/31); the
reports name the inventory hosts whose addresses (the plan's ``addresses``) they hold, and
the members that are no inventory host by their CIDR and the variable they came from.

Runs on the controller.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import bisect
import ipaddress

from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import few
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.profile import CIDR_SETS, VARIABLE_PREFIX

# Host names shown before "and N more".
SHOWN = 4


def _span(text):
    """(version, first, last) of an address or CIDR as integers; ValueError if it is neither."""
    address, _slash, prefix = str(text).strip().partition('/')
    try:
        # The common "address/length" form, without building a network object (5,000 at a time).
        ip = ipaddress.ip_address(address)
        bits = 32 if ip.version == 4 else 128
        length = int(prefix) if prefix else bits
        if 0 <= length <= bits:
            hostmask = (1 << (bits - length)) - 1
            return ip.version, int(ip) & ~hostmask, (int(ip) & ~hostmask) | hostmask
    except ValueError:
        pass
    network = ipaddress.ip_network(str(text).strip(), strict=False)
    return network.version, int(network.network_address), int(network.broadcast_address)


class SetHosts(object):
    """Names the members of the sets of one plan document (output=plan, or plan.json)."""

    # The last document's instance: a report names the sets of one plan host after host.
    _last = (None, None)

    @classmethod
    def of(cls, document):
        """The instance for ``document``, made once while the same document object is asked for."""
        found, names = cls._last
        if found is not document or names is None:
            names = cls(document)
            cls._last = (document, names)
        return names

    def __init__(self, document):
        document = document or {}
        # Every host address by version, sorted by where it starts: a set's hosts are found by
        # bisecting its intervals, not by scanning the fleet for each set.
        self.addresses = {}
        for host, addresses in (document.get('addresses') or {}).items():
            for item in addresses or ():
                try:
                    version, low, high = _span(item)
                except ValueError:
                    continue
                self.addresses.setdefault(version, []).append((low, high, host))
        for entries in self.addresses.values():
            entries.sort()
        self._starts = dict((version, [entry[0] for entry in entries]) for version, entries in self.addresses.items())
        # The profile records where the pod and service CIDRs came from (an installer's variable).
        self.origins = {}
        for cluster in document.get('clusters') or ():
            for key, item in (cluster.get('values') or {}).items():
                if isinstance(item, dict) and item.get('origin'):
                    self.origins.setdefault(key, item['origin'])
        self._cache = {}

    def variable_of(self, name):
        """The variable(s) the CIDRs of set ``name`` come from ("admins+cluster" -> kubeports_admin_cidrs), or None."""
        found = []
        for part in name.split('@')[0].split('+'):
            if part in CIDR_SETS:
                variable = CIDR_SETS[part][0]
                origin = self.origins.get(variable)
                found.append(origin if origin and origin != 'default' else VARIABLE_PREFIX + variable)
        return ' or '.join(found) or None

    def members(self, name, members):
        """{hosts: [host names], cidrs: [CIDR], variable: where the CIDRs came from or None}: the
        inventory hosts whose addresses ``members`` hold, and the members that are no host's."""
        key = (name, tuple(members or ()))
        if key in self._cache:
            return self._cache[key]
        spans = []
        for item in members or ():
            try:
                spans.append((str(item), _span(item)))
            except ValueError:
                spans.append((str(item), None))
        union = _Intervals(span for _text, span in spans if span)
        hosts, covered = set(), []
        for version, (starts, ends) in union.intervals.items():
            entries, entry_starts = self.addresses.get(version) or [], self._starts.get(version) or []
            for low, high in zip(starts, ends):
                for start, end, host in entries[bisect.bisect_left(entry_starts, low):bisect.bisect_right(entry_starts, high)]:
                    if end <= high:
                        hosts.add(host)
                        covered.append((version, start, end))
        hosts = sorted(hosts)
        covered = _Intervals(covered)
        cidrs = [text for text, span in spans if span is None or not covered.holds(span)]
        result = {'hosts': hosts, 'cidrs': cidrs, 'variable': self.variable_of(name) if cidrs else None}
        self._cache[key] = result
        return result

    def count(self, name, members):
        """How many hosts, and how many CIDRs that are no host, stand behind the set."""
        found = self.members(name, members)
        return len(found['hosts']), len(found['cidrs'])

    def describe(self, name, members, shown=SHOWN):
        """Who stands behind the set, short: "6 hosts (cp1, cp2, cp3, cp4 and 2 more); 203.0.113.5/32 (kubeports_admin_cidrs)"."""
        found = self.members(name, members)
        parts = []
        hosts = found['hosts']
        if hosts:
            parts.append(few(hosts, shown) if len(hosts) <= shown + 1 else '%d hosts (%s)' % (len(hosts), few(hosts, shown)))
        if found['cidrs']:
            where = found['variable'] or 'not an inventory host'
            parts.append('%s (%s)' % (few(found['cidrs'], shown), where))
        return '; '.join(parts) or 'nobody'

    def counted(self, name, members):
        """"6 hosts", "6 hosts, 2 CIDRs of kubeports_api_client_cidrs", "1 CIDR of kubeports_admin_cidrs"."""
        hosts, cidrs = self.count(name, members)
        parts = []
        if hosts or not cidrs:
            parts.append('%d host%s' % (hosts, '' if hosts == 1 else 's'))
        if cidrs:
            parts.append('%d CIDR%s of %s' % (cidrs, '' if cidrs == 1 else 's',
                                              self.members(name, members)['variable'] or 'no inventory host'))
        return ', '.join(parts)


class _Intervals(object):
    """A union of address spans as disjoint sorted intervals per IP version, adjacent ones
    joined: a span is inside the union when one interval holds all of it (bisect, not a scan)."""

    def __init__(self, spans):
        by_version = {}
        for version, low, high in sorted(spans):
            merged = by_version.setdefault(version, [])
            if merged and low <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], high)
            else:
                merged.append([low, high])
        self.intervals = dict((version, ([item[0] for item in merged], [item[1] for item in merged]))
                              for version, merged in by_version.items())

    def holds(self, span):
        version, low, high = span
        starts, ends = self.intervals.get(version, ((), ()))
        index = bisect.bisect_right(starts, low) - 1
        return index >= 0 and ends[index] >= high
