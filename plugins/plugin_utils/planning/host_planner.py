# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan one host's firewall rules from the catalog, its roles and its cluster profile.

Plain data in and out: no Ansible objects. The caller builds one InventoryIndex and one
Planner per inventory and plans every host with it. The Planner memoizes what hosts of
one inventory share (parsed CIDR lists, matched catalog rules, merged peer sets, rules
of hosts with alike inputs); its caches live as long as it does. Cached values, and the
lists in them, are shared between hosts' plans and never changed in place.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import bisect
import fnmatch
import re
from collections import namedtuple

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.catalog import (
    PORT_VARIABLES, SOURCES, build_rule, INTERFACE_VARIABLES)
from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_index import (
    NODE_ROLES, merge, netaddr, parse_cidr, resolve_cidr_list)
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import (
    ANYONE, PROTOCOLS, check_protocol, format_port, is_anyone, is_whole_family, parse_port, parse_selector, private_ports_hit)
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.profile import (
    condition_holds, resolve)

_SELECTOR = re.compile(r'^([a-z0-9]+)/(.*)$')


# Profile keys that do not decide which catalog rules match (cidr_sets is matched by content).
_NOT_MATCHED = frozenset(('origins', 'notes', 'cidr_sets'))

# One parsed CIDR list: ``token`` (its values as a tuple of strings) identifies its content.
CidrList = namedtuple('CidrList', 'token networks')
# One source set of a rule for one host: ``parts`` are lists of networks (shared with the index,
# never copied); ``signature`` identifies their content, None for "self" (differs per host).
SourceSet = namedtuple('SourceSet', 'signature parts')
# Source sets merged: their signatures, the merged CIDRs as strings, their (version, first, last)
# spans, the CIDRs open to anyone (/0), and the merged networks.
MergedSources = namedtuple('MergedSources', 'signature sources spans public networks')
# The sources of a rule that include a host's own addresses, and those open to anyone (/0).
# ``host_specific`` is False when those addresses lie inside the rule's shared sets (then the
# sources are the shared sets').
OwnSources = namedtuple('OwnSources', 'host_specific sources public')
# A host's own addresses as sorted (version, first, last) spans and as CIDR strings.
OwnAddresses = namedtuple('OwnAddresses', 'spans texts')
# The catalog and extra rules that apply to hosts of one fingerprint: {key: entry}, the keys
# in rule order, and the rules skipped (no members in their source sets or no interfaces).
Match = namedtuple('Match', 'merged order skipped')
# What hosts of one kind (plan's ``alike`` and roles) share: their fingerprint, match and the
# public ports they allow.
PreparedHost = namedtuple('PreparedHost', 'fingerprint merged order skipped allowed')
# A rule planned once for hosts of one fingerprint (the others copy it with their ``host``): the
# rule, its sources' signature (None when open to anyone or the host's own) and its sources open
# to anyone.
SharedRule = namedtuple('SharedRule', 'rule signature public')
# What a rule of the host's own addresses is, but for ``host`` and ``sources``: the shared sets
# merged (or None), the port, the set names, the source_set and the merged catalog rules' about.
OwnRuleShape = namedtuple('OwnRuleShape', 'merged port set_names source_set about')


def _with_isolated(span, text, spans, sources):
    """``sources`` (merged CIDRs, one per span of ``spans``) with one address added, when that
    address touches none of them: then a merge leaves them as they are and adds the address
    as its own CIDR (``text``) in its place. None when the address borders one of them."""
    version, first, last = span
    if first != last or len(sources) != len(spans):
        return None
    index = bisect.bisect_right(spans, (version, first, float('inf')))
    if index > 0 and spans[index - 1][0] == version and spans[index - 1][2] >= first - 1:
        return None
    if index < len(spans) and spans[index][0] == version and spans[index][1] <= last + 1:
        return None
    return sources[:index] + [text] + sources[index:]


def _within(span, spans):
    """True when ``span`` (version, first, last) lies inside one of ``spans`` (sorted, non-overlapping)."""
    version, first, last = span
    index = bisect.bisect_right(spans, (version, first, float('inf'))) - 1
    return index >= 0 and spans[index][0] == version and spans[index][1] <= first and last <= spans[index][2]


def _rule_entry(host, protocol, port, sources, source_set, set_names, about, interfaces=None):
    """One rule of a host as the planner gives it (the rule contract, rule_contract.py)."""
    entry = {
        'host': host,
        'protocol': protocol,
        'port': port,
        'sources': sources,
        'source_set': source_set,
        'source_sets': set_names,
        'description': about['description'],
        'references': about['references'],
        'ids': about['ids'],
        'components': about['components'],
        'to': about['to'],
    }
    if interfaces:
        entry['interfaces'] = list(interfaces)
    return entry


class HostPlan(object):
    """The rules for one host, and the catalog rules that matched but had no sources.

    ``signatures`` has, for each rule, the identity of its sources when other hosts may
    share them (a peer set), or None (anyone, or sources that are the host's own).
    ``shared`` has, for each rule, the planner's rule it was copied from when hosts with
    alike inputs share it (the same in all but ``host``), or None. ``shapes`` has, for each
    rule of the host's own addresses, the OwnRuleShape that rules the same in all but ``host``
    and ``sources`` share, or None.
    """

    def __init__(self, host, roles, rules, skipped, signatures=None, shared=None, shapes=None):
        self.host, self.roles, self.rules, self.skipped = host, roles, rules, skipped
        self.signatures = signatures if signatures is not None else [None] * len(rules)
        self.shared = shared if shared is not None else [None] * len(rules)
        self.shapes = shapes if shapes is not None else [None] * len(rules)

    def as_dict(self):
        return {'host': self.host, 'roles': self.roles, 'rules': self.rules, 'skipped': self.skipped}


def extra_rules(values, source):
    """Validated kubeports_extra_rules."""
    if values in (None, ''):
        return []
    if not isinstance(values, list):
        raise PlanError('kubeports_extra_rules (%s): expected a list of rules, got %r' % (source, values))
    rules = []
    for index, raw in enumerate(values):
        where = 'kubeports_extra_rules[%d] (%s)' % (index, source)
        rule = build_rule(raw, 'extra', where, default_reference='kubeports_extra_rules')
        if not rule.id:
            rule.id = 'extra.%d' % index
        rules.append(rule)
    return rules


def public_ports(values, source):
    """kubeports_public_ports: "protocol/port" selectors that may be open to everyone."""
    if values in (None, ''):
        return []
    where = 'kubeports_public_ports (%s)' % source
    return [parse_selector(value, where) for value in (values if isinstance(values, list) else [values])]


def check_not_public(rule, public, allowed, source):
    """PlanError when a planned rule would open a must-not-be-public port to everyone.

    ``public`` are the rule's sources that are open to anyone (/0)."""
    if not public or rule.get('interfaces'):
        return
    port = parse_port(rule['port'], 'port') if rule['port'] else None
    hits = private_ports_hit(rule['protocol'], port, allowed)
    if hits:
        selector, what = hits[0]
        raise PlanError('%s: %s (%s) would be open to anyone (%s, from the source set(s) %s); see %s. Restrict '
                        'those sources, or name "%s" in kubeports_public_ports to allow it'
                        % (source, selector, what, ', '.join(public), ', '.join(rule['source_sets']),
                           rule['references'][0], selector))


def drop_matchers(values, catalog_ids, source):
    """kubeports_drop_rules: rule ids (glob patterns allowed) or "protocol/port" selectors."""
    if values in (None, ''):
        return []
    if not isinstance(values, list):
        values = [values]
    matchers = []
    for value in values:
        where = 'kubeports_drop_rules (%s)' % source
        text = str(value).strip()
        selector = _SELECTOR.match(text)
        if selector and selector.group(1) in PROTOCOLS:
            protocol = check_protocol(selector.group(1), where)
            port = parse_port(selector.group(2), where) if selector.group(2) else None
            matchers.append(('port', protocol, port))
        elif any(fnmatch.fnmatchcase(rule_id, text) for rule_id in catalog_ids):
            matchers.append(('id', text, None))
        else:
            raise PlanError('%s: %r matches no catalog rule id and is not a "protocol/port" selector'
                            % (where, value))
    return matchers


def _dropped(rule, port, matchers):
    for kind, first, second in matchers:
        if kind == 'id' and fnmatch.fnmatchcase(rule.id, first):
            return True
        if kind == 'port' and rule.protocol == first and (second is None or second == port):
            return True
    return False


class Planner(object):
    """Plans hosts against one catalog and one inventory index, memoizing what they share.

    A fingerprint is what decides a host's matching: its roles, its profile's matched values,
    its CIDR lists' tokens, its extra and drop rules. A kind is plan's ``alike`` and the roles.
    """

    def __init__(self, components, index):
        self.components = components
        self.index = index
        self.catalog_ids = [rule.id for component in components for rule in component.rules]
        self._any = [parse_cidr(item, 'any') for item in ANYONE]
        # {token: CidrList}: CIDR lists (group_vars shared by many hosts) parsed once.
        self._cidr_lists = {}
        # {sorted signatures: MergedSources}: source sets merged once per content.
        self._merged_sources = {}
        # {host: OwnAddresses}, and {(host, signature or None): OwnSources}.
        self._own_addresses = {}
        self._own_sources = {}
        # {tuple of rule ids: about}: catalog and extra rules stay alive with the planner (extra
        # rules in _extra_rules), so their ids are stable keys.
        self._about_by_rules = {}
        self._extra_rules = []
        # {alike: the profile's matched values as text}, {fingerprint: Match} and
        # {(fingerprint, rule key): SharedRule}.
        self._matched_values = {}
        self._matches = {}
        self._shared_rules = {}
        # {kind: PreparedHost}, and {(fingerprint, rule key): OwnRuleShape}.
        self._prepared_kinds = {}
        self._own_rule_shapes = {}

    def plan(self, host, variables, source=None, profile=None, alike=None):
        """Plan ``host``; ``variables`` are its kubeports_* variables (and ansible_port).

        ``profile`` is the host's resolved profile (profile.resolve); without it the profile
        comes from ``variables`` alone. ``alike``: a key that hosts share only when their
        ``variables`` and profiles are equal (but for the CIDR lists' "where"): hosts with the
        same key and roles share all but the rules of their own addresses. Without it, every
        host is planned on its own (matching still shared by equal fingerprints).
        """
        source = source or 'host %s' % host
        roles = self.index.host_roles(host)
        if not roles:
            raise PlanError('host %s: its groups map to no role; add it to a group named in '
                            'kubeports_role_groups or set kubeports_roles' % host)
        kind = (alike, frozenset(roles)) if alike is not None else None
        prepared = self._prepared_kinds.get(kind) if kind is not None else None
        first = prepared is None
        if first:
            prepared = self._prepare(host, roles, variables, source, profile, alike)
        planned = []
        for key in prepared.order:
            entry = prepared.merged[key]
            if entry['own']:
                rule, signature, public, shape = self._own_output(host, prepared.fingerprint, key, entry)
                planned.append((rule, signature, public, None, shape))
                continue
            shared = self._shared_rules.get((prepared.fingerprint, key))
            if shared is None:
                shared = self._shared_rules[(prepared.fingerprint, key)] = self._output(host, key, entry)
            planned.append((dict(shared.rule, host=host), shared.signature, shared.public, shared.rule, None))
        for rule, _signature, public, shared, _shape in planned:
            # A shared rule passed for the first host of its kind.
            if first or shared is None:
                check_not_public(rule, public, prepared.allowed, source)
        if first and kind is not None:
            self._prepared_kinds[kind] = prepared
        return HostPlan(host, sorted(roles), [item[0] for item in planned], [dict(item) for item in prepared.skipped],
                        [item[1] for item in planned], [item[3] for item in planned], [item[4] for item in planned])

    def _prepare(self, host, roles, variables, source, profile, alike):
        """The PreparedHost of a host: its fingerprint, match and public ports allowed."""
        profile = dict(profile or resolve(variables, source))
        if not profile['ip_families']:
            profile['ip_families'] = list(self.index.ip_families) or ['ipv4']
        profile['ip_family'] = profile['ip_families']
        for name in profile['cidr_sets']:
            if name.startswith('extra:') and name[6:] not in SOURCES[2:]:
                raise PlanError('kubeports_peer_cidrs (%s): unknown set %r (choose from %s)'
                                % (source, name[6:], ', '.join(SOURCES[2:])))
        cidr_lists = dict((name, self._parse_cidr_list(values, where)) for name, (where, values) in profile['cidr_sets'].items())
        # Hosts whose inputs are alike (most workers) share the matching of catalog rules.
        matched_values = self._matched_values.get(alike) if alike is not None else None
        if matched_values is None:
            matched_values = repr(sorted((key, value) for key, value in profile.items() if key not in _NOT_MATCHED))
            if alike is not None:
                self._matched_values[alike] = matched_values
        fingerprint = (tuple(sorted(roles)), matched_values,
                       tuple(sorted((name, found.token) for name, found in cidr_lists.items())),
                       repr(variables.get('kubeports_extra_rules')), repr(variables.get('kubeports_drop_rules')))
        match = self._matches.get(fingerprint)
        if match is None:
            match = self._matches[fingerprint] = self._match(host, roles, profile, variables, source, cidr_lists)
        allowed = public_ports(variables.get('kubeports_public_ports'), source)
        return PreparedHost(fingerprint, match.merged, match.order, match.skipped, allowed)

    def _match(self, host, roles, profile, variables, source, cidr_lists):
        """The Match of a fingerprint: the catalog and extra rules that apply, merged by (protocol,
        port), with their SourceSets; the host's own addresses ("self") are taken per host later."""
        extras = extra_rules(variables.get('kubeports_extra_rules'), source)
        self._extra_rules.extend(extras)
        drops = drop_matchers(variables.get('kubeports_drop_rules'), self.catalog_ids, source)
        destinations = set(roles) | {'all'}
        if roles & set(NODE_ROLES) or (profile['distribution'] == 'rke' and 'etcd' in roles):
            destinations.add('node')
        source_sets = {}
        merged, order, skipped = {}, [], []
        candidates = []
        for component in self.components:
            if all(condition_holds(profile, key, value) for key, value in component.applies_when.items()):
                candidates.extend(component.rules)
        candidates.extend(extras)
        for rule in candidates:
            if not destinations.intersection(rule.to):
                continue
            if not all(condition_holds(profile, key, value) for key, value in rule.when.items()):
                continue
            port = self._port(rule, profile)
            if _dropped(rule, port, drops):
                continue
            sources = {}
            for name in rule.sources:
                found = source_sets.get(name)
                if found is None:
                    found = source_sets[name] = self._source(name, host, cidr_lists)
                if any(found.parts):
                    sources[name] = found
            if not sources:
                skipped.append({'id': rule.id, 'protocol': rule.protocol, 'port': format_port(port),
                                'reason': 'no members in source set(s) %s' % ', '.join(rule.sources)})
                continue
            key = (rule.protocol, port)
            if rule.interfaces is not None:
                interfaces = (profile[INTERFACE_VARIABLES[rule.interfaces]] if isinstance(rule.interfaces, str)
                              else rule.interfaces)
                if not interfaces:
                    skipped.append({'id': rule.id, 'protocol': rule.protocol, 'port': format_port(port),
                                    'reason': 'no interfaces in %s' % rule.interfaces})
                    continue
                key = (rule.protocol, port, tuple(interfaces))
            entry = merged.get(key)
            if entry is None:
                entry = merged[key] = {'sets': {}, 'rules': [], 'own': False}
                order.append(key)
            entry['sets'].update(sources)
            entry['rules'].append(rule)
            entry['own'] = entry['own'] or any(found.signature is None for found in sources.values())
        # Ordered as sort_key orders the rules, once per match.
        order.sort(key=lambda key: (key[0], key[1][0] if key[1] else 0, format_port(key[1])))
        return Match(merged, order, skipped)

    @staticmethod
    def _port(rule, profile):
        if isinstance(rule.port, str):
            value = profile[PORT_VARIABLES[rule.port]]
            return parse_port(value, rule.port)
        return rule.port

    def _source(self, name, host, cidr_lists):
        """The SourceSet of one source set for this host.

        Its parts are shared with the index (never copied, so a plan costs the same whatever
        the cluster size). Its signature identifies the set's content for _merged; it is None
        for "self", which differs per host.
        """
        if name == 'any':
            return SourceSet(('any',), (self._any,))
        if name == 'self':
            return SourceSet(None, (self.index.addresses[host],))
        token, extras = cidr_lists.get(name, ((), []))
        extra_token, more = cidr_lists.get('extra:' + name, ((), []))
        members = self.index.role_networks(name) if name in self.index.members else []
        return SourceSet((name, token, extra_token), (members, extras, more))

    def _parse_cidr_list(self, values, where):
        """The CidrList of a list of CIDRs or addresses; equal lists (group_vars shared by many
        hosts) are parsed once."""
        values = values if isinstance(values, (list, tuple)) else [values]
        token = tuple(str(value) for value in values)
        found = self._cidr_lists.get(token)
        if found is None:
            found = self._cidr_lists[token] = CidrList(token, resolve_cidr_list(values, where))
        return found

    def _own(self, host, merged):
        """The OwnSources of the host's own addresses merged with shared sets (MergedSources or
        None), once per host and sets."""
        key = (host, merged.signature if merged else None)
        found = self._own_sources.get(key)
        if found is None:
            own = self.index.addresses[host]
            known = self._own_addresses.get(host)
            if known is None:
                known = self._own_addresses[host] = OwnAddresses([(net.version, net.first, net.last) for net in own],
                                                                 [str(net.cidr) for net in own])
            spans, texts = known
            outside = [index for index, span in enumerate(spans) if not (merged and _within(span, merged.spans))]
            if merged and not outside:
                found = OwnSources(False, merged.sources, merged.public)
            elif merged:
                sources = None
                if len(outside) == 1:
                    # One address of the host's own outside the sets (most hosts): placed, not merged.
                    sources = _with_isolated(spans[outside[0]], texts[outside[0]], merged.spans, merged.sources)
                if sources is None:
                    sources = merge(merged.networks + [own[index] for index in outside])
            elif len(own) == 1:
                sources = [texts[0]]
            else:
                sources = merge(own)
            if found is None:
                found = OwnSources(True, sources, [item for item in sources if is_whole_family(item)])
            self._own_sources[key] = found
        return found

    def _merged(self, sets):
        """The MergedSources of SourceSets, once per content."""
        signature = tuple(sorted(found.signature for found in sets))
        cached = self._merged_sources.get(signature)
        if cached is None:
            networks = [net for found in sets for part in found.parts for net in part]
            # Ordered as (version, network) orders them, each network's key taken once.
            merged = sorted(netaddr.cidr_merge(networks), key=lambda net: (net.version, net.sort_key()))
            sources = [str(net) for net in merged]
            if is_anyone(sources):
                sources = list(ANYONE)
            public = [item for item in sources if is_whole_family(item)]
            spans = [(net.version, net.first, net.last) for net in merged]
            cached = self._merged_sources[signature] = MergedSources(signature, sources, spans, public, merged)
        return cached

    def _about(self, rules):
        """Descriptions, references, ids, components and roles of merged catalog rules, once per combination."""
        key = tuple(id(rule) for rule in rules)
        found = self._about_by_rules.get(key)
        if found is None:
            descriptions, references, ids, components, to = [], [], [], [], []
            for rule in rules:
                for values, value in ((descriptions, rule.description), (ids, rule.id),
                                      (components, rule.component)):
                    if value not in values:
                        values.append(value)
                for reference in rule.references:
                    if reference not in references:
                        references.append(reference)
                for role in rule.to:
                    if role not in to:
                        to.append(role)
            found = self._about_by_rules[key] = {'description': '; '.join(descriptions), 'references': references,
                                                 'ids': ids, 'components': components, 'to': to}
        return found

    def _own_output(self, host, fingerprint, key, entry):
        """(rule, signature, public, shape) of a rule whose sources include the host's own addresses.

        The signature is as _output's; the shape is the rule's OwnRuleShape (see HostPlan; None
        when open to anyone), made once per fingerprint and rule."""
        shape = self._own_rule_shapes.get((fingerprint, key))
        if shape is None:
            shared = [found for found in entry['sets'].values() if found.signature is not None]
            set_names = sorted(entry['sets'])
            shape = self._own_rule_shapes[(fingerprint, key)] = OwnRuleShape(
                self._merged(shared) if shared else None, format_port(key[1]), set_names, '+'.join(set_names),
                self._about(entry['rules']))
        own = self._own(host, shape.merged)
        everyone = is_anyone(own.public)
        return (_rule_entry(host, key[0], shape.port, own.sources, None if everyone else shape.source_set,
                            shape.set_names, shape.about),
                None if everyone or own.host_specific else shape.merged.signature, own.public,
                None if everyone else shape)

    def _output(self, host, key, entry):
        """The SharedRule of one merged rule: the signature of its sources when they are shared
        by other hosts (None when they are the host's own)."""
        protocol, port = key[0], key[1]
        shared = [found for found in entry['sets'].values() if found.signature is not None]
        merged = self._merged(shared) if shared else None
        signature, sources, public = (merged.signature, merged.sources, merged.public) if merged else (None, [], [])
        if any(found.signature is None for found in entry['sets'].values()):
            own = self._own(host, merged)
            sources, public = own.sources, own.public
            if own.host_specific:
                signature = None
        everyone = is_anyone(public)
        about = self._about(entry['rules'])
        set_names = sorted(entry['sets'])
        # Lists shared with other hosts' rules: never changed in place.
        return SharedRule(_rule_entry(host, protocol, format_port(port), sources, None if everyone else '+'.join(set_names),
                                      set_names, about, key[2] if len(key) > 2 else None),
                          None if everyone else signature, public)
