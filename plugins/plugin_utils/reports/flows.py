# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster's flows as a graph: who may connect to whom, on which ports.

``plan_flows(document)`` derives the graph from a plan document; ``verify_flows`` and
``audit_flows`` colour its edges with what the verify role's probes and the audit observed.
``flow_diagram.svg(graph)`` draws it. Pure functions over plain data, on the controller.

The graph (plain dicts and lists, JSON-friendly)::

    {'mode': 'plan' | 'verify' | 'audit',
     'nodes': [{'id': 'role:etcd+controlplane', 'label': 'etcd+controlplane',
                'kind': 'role' | 'group' | 'outsider',
                'hosts': ['cp1', 'cp2'],        # inventory hosts (role, group) or CIDRs (outsider)
                'local': ['tcp/10248 Kubelet health endpoint (local checks)'],   # from the host itself only
                'status': 'ok', 'problems': {'cp1': ['over-exposed: tcp/2379 ...']}}],
     'edges': [{'id': 'e3', 'source': 'outsider:admins', 'target': 'role:worker',
                'ports': ['tcp/22'],            # compact: ranges merged, sorted
                'label': 'tcp/22',              # at most MAX_LABEL_PORTS ports, "+N more"
                'details': ['tcp/22 SSH (Ansible, administrators)'],
                'spans': [['tcp', 22, 22]],     # protocol, first and last port (0, 0 without ports)
                'status': 'planned', 'counts': {}, 'observed_only': False}]}

Boxes are the distinct role combinations of the planned hosts (``probe_planner.role_label``,
the labels the verify report uses), the group ``cluster`` (every Kubernetes node: etcd,
controlplane, worker, route_reflector), and outsiders: the source selectors that are no
inventory host (``any``, the CIDR sets of ``profile.CIDR_SETS``, the pods on the CNI's
devices). A rule from ``self`` is not a flow between boxes; it is listed in the box's
``local``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy

from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import (
    host_view, is_anyone, is_whole_family, parse_port)
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.catalog import ROLES
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_index import (
    CLUSTER_ROLES, netaddr)
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.probe_planner import role_label

MAX_LABEL_PORTS = 3
# Edge statuses, worst first. "planned": nothing was observed (the plan page);
# "unobserved": a verify or audit page that has no observation for the edge.
STATUSES = ('over_exposed', 'mismatch', 'missing', 'ok', 'unobserved', 'planned')
STATUS_TEXT = {
    'over_exposed': 'over-exposed: admitted from more sources than planned',
    'mismatch': 'mismatch: some probes did not see what the plan expects',
    'missing': 'missing: planned, not open to every source that needs it',
    'ok': 'ok: every observation matches the plan',
    'unobserved': 'not observed',
    'planned': 'planned',
}
ANYONE_ID = 'outsider:any'
OTHER_SOURCES_ID = 'outsider:other_sources'
POD_DEVICES_ID = 'outsider:pod_devices'
CLUSTER_ID = 'group:cluster'
OUTSIDER_LABELS = {
    'any': 'anyone',
    'admins': 'admins',
    'api_clients': 'API clients',
    'api_loadbalancers': 'API load balancers',
    'loadbalancers': 'load balancers',
    'ui_clients': 'UI clients',
    'workload_clients': 'workload clients',
    'bgp_peers': 'BGP peers',
    'pods': 'pod network',
    'services': 'service network',
    'dce5_global_cluster': 'DCE 5 global cluster',
    'dce5_member_clusters': 'DCE 5 member clusters',
    'pod_devices': "pods (CNI's devices)",
    'other_sources': 'other sources (observed)',
}
# Outsiders top to bottom: people first, then machines, then networks.
OUTSIDER_ORDER = ('any', 'admins', 'api_clients', 'ui_clients', 'workload_clients', 'api_loadbalancers',
                  'loadbalancers', 'bgp_peers', 'dce5_global_cluster', 'dce5_member_clusters', 'pods', 'services',
                  'pod_devices', 'other_sources')


def _role_id(label):
    return 'role:%s' % label


def _outsider_id(name):
    return 'outsider:%s' % name


def _span(rule):
    """(protocol, low, high) of a rule; (protocol, 0, 0) for protocol-only rules."""
    if not rule.get('port'):
        return (rule['protocol'], 0, 0)
    low, high = parse_port(rule['port'], 'port')
    return (rule['protocol'], low, high)


def _span_text(span):
    protocol, low, high = span
    if not low:
        return protocol
    return '%s/%s' % (protocol, low if low == high else '%d-%d' % (low, high))


def compact_ports(spans):
    """Sorted port texts of (protocol, low, high) spans, adjacent and overlapping ranges of a
    protocol merged: [('tcp', 2379, 2379), ('tcp', 2380, 2381)] -> ['tcp/2379-2381']."""
    merged = []
    for span in sorted(set(tuple(item) for item in spans)):
        last = merged[-1] if merged else None
        if last and last[0] == span[0] and span[1] and last[1] and span[1] <= last[2] + 1:
            merged[-1] = (last[0], last[1], max(last[2], span[2]))
        elif not (last and last[0] == span[0] and not span[1] and not last[1]):
            merged.append(span)
    return [_span_text(span) for span in merged]


def port_label(ports, shown=MAX_LABEL_PORTS):
    """The first ``shown`` ports and "+N more"."""
    ports = list(ports)
    if len(ports) <= shown:
        return ', '.join(ports)
    return '%s +%d more' % (', '.join(ports[:shown]), len(ports) - shown)


def _covers(spans, protocol, port):
    for item_protocol, low, high in spans:
        if item_protocol == 'all' or (item_protocol == protocol and (not low or low <= port <= high)):
            return True
    return False


def _overlaps(spans, protocol, low, high):
    for item_protocol, first, last in spans:
        # A finding of every protocol touches every edge; an edge of every protocol only such a finding.
        if protocol == 'all' or (item_protocol == protocol and (
                not first or not low or (first <= high and low <= last))):
            return True
    return False


def _networks(items):
    if netaddr is None:
        return None
    try:
        return netaddr.IPSet(netaddr.IPNetwork(str(item)) for item in items)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None


def _members_of(selector, rule_sets, document):
    """The members of a selector's own set, when the plan has one by that name."""
    if selector in rule_sets:
        return rule_sets[selector]
    return (document.get('sets') or {}).get(selector)


def _outsider_members(selector, rule, sets, document):
    """What stands behind an outsider in one rule: "anyone", its CIDRs, or where they are."""
    if rule.get('source_set') is None and is_anyone(rule.get('sources') or ()):
        return ['anyone (0.0.0.0/0, ::/0)']
    selectors = list(rule.get('source_sets') or ())
    if selectors == [selector]:
        return list(rule.get('sources') or sets.get(rule.get('source_set')) or ())
    own = _members_of(selector, sets, document)
    if own is not None:
        return list(own)
    members = list(rule.get('sources') or sets.get(rule.get('source_set')) or ())
    others = [_members_of(other, sets, document) for other in selectors if other != selector]
    if all(other is not None for other in others):
        # The entries that are exactly another selector's (the host itself, a role) left out.
        taken = set(item for other in others for item in other)
        rest = [item for item in members if item not in taken]
        if rest:
            return rest
    return ['within %s: %s' % (rule.get('source_set'), ', '.join(members))]


def _order_key(node):
    kind_rank = {'outsider': 0, 'group': 1, 'role': 2}[node['kind']]
    if node['kind'] == 'outsider':
        name = node['id'].split(':', 1)[1]
        rank = OUTSIDER_ORDER.index(name) if name in OUTSIDER_ORDER else len(OUTSIDER_ORDER)
        return (kind_rank, rank, name)
    if node['kind'] == 'role':
        roles = node['label'].split('+')
        return (kind_rank, [ROLES.index(role) if role in ROLES else len(ROLES) for role in roles], node['label'])
    return (kind_rank, 0, node['label'])


def plan_flows(document):
    """The graph (see the module's docstring) of a plan document: the output=plan form of the
    ``kubeports.firewall.required_ports`` lookup, the ``plan_hosts`` action's plan, or
    ``plan.json`` ({sets, rule_lists, hosts: {host: {host, roles, rule_list, own_sets}}}).
    Hosts given with their ``rules`` (output=hosts) are taken as they are. Every edge has
    status "planned"."""
    hosts = document.get('hosts') or {}
    nodes, edges = {}, {}

    def node(node_id, label, kind):
        if node_id not in nodes:
            nodes[node_id] = {'id': node_id, 'label': label, 'kind': kind, 'hosts': [], 'local': [],
                              'status': 'planned', 'problems': {}}
        return nodes[node_id]

    boxes = {}
    for name in sorted(hosts):
        label = role_label(hosts[name].get('roles') or ())
        boxes[name] = _role_id(label)
        node(_role_id(label), label, 'role')['hosts'].append(name)
    cluster_hosts = sorted(name for name in hosts if set(hosts[name].get('roles') or ()) & set(CLUSTER_ROLES))
    labels_with = {}
    for name in hosts:
        for role in hosts[name].get('roles') or ():
            labels_with.setdefault(role, set()).add(boxes[name])

    def add_edge(source, target, span, description):
        edge = edges.setdefault((source, target, False), {'source': source, 'target': target, 'spans': set(),
                                                          'details': set()})
        edge['spans'].add(span)
        edge['details'].add(('%s %s' % (_span_text(span), description)).strip())

    seen_lists = set()
    for name in sorted(hosts):
        view = host_view(document, hosts[name])
        target = boxes[name]
        key = (hosts[name].get('rule_list'), target) if 'rule_list' in hosts[name] else None
        if key in seen_lists:
            continue
        if key is not None:
            seen_lists.add(key)
        for rule in view['rules']:
            span = _span(rule)
            description = rule.get('description') or ''
            if rule.get('interfaces'):
                devices = node(POD_DEVICES_ID, OUTSIDER_LABELS['pod_devices'], 'outsider')
                devices['hosts'] = sorted(set(devices['hosts']) | set(rule['interfaces']))
                add_edge(POD_DEVICES_ID, target, span, '%s (on %s)' % (description, ', '.join(rule['interfaces'])))
                continue
            for selector in rule.get('source_sets') or ['any']:
                if selector == 'self':
                    local = '%s %s' % (_span_text(span), description)
                    if local not in nodes[target]['local']:
                        nodes[target]['local'].append(local)
                elif selector == 'cluster':
                    node(CLUSTER_ID, 'cluster (every node)', 'group')['hosts'] = cluster_hosts
                    add_edge(CLUSTER_ID, target, span, description)
                elif selector in ROLES:
                    for source in sorted(labels_with.get(selector) or ()):
                        add_edge(source, target, span, description)
                else:
                    outsider = node(_outsider_id(selector), OUTSIDER_LABELS.get(selector, selector), 'outsider')
                    members = _outsider_members(selector, rule, view.get('sets') or {}, document)
                    outsider['hosts'] = sorted(set(outsider['hosts']) | set(members))
                    add_edge(outsider['id'], target, span, description)
    return _graph('plan', nodes, edges)


def _detail_key(text):
    """Details ordered by protocol and first port, then text."""
    protocol, _slash, port = text.split(' ', 1)[0].partition('/')
    first = port.split('-')[0]
    return (protocol, int(first) if first.isdigit() else 0, text)


def _graph(mode, nodes, edges):
    """The graph of nodes {id: node} and edges {(source, target, observed_only): edge}, ordered."""
    ordered = sorted(nodes.values(), key=_order_key)
    for item in ordered:
        item['local'] = sorted(item['local'], key=_detail_key)
    rank = dict((item['id'], index) for index, item in enumerate(ordered))
    out = []
    for key in sorted(edges, key=lambda triple: (rank[triple[0]], rank[triple[1]], triple[2])):
        edge = edges[key]
        spans = sorted(edge['spans'])
        ports = compact_ports(spans)
        out.append({'id': 'e%d' % (len(out) + 1), 'source': edge['source'], 'target': edge['target'],
                    'ports': ports, 'label': port_label(ports),
                    'details': sorted(edge['details'], key=_detail_key),
                    'spans': [list(span) for span in spans], 'status': edge.get('status', 'planned'),
                    'counts': dict(edge.get('counts') or {}), 'observed_only': key[2]})
    return {'mode': mode, 'nodes': ordered, 'edges': out}


def worst(statuses):
    """The worst of some statuses (STATUSES order); "unobserved" for none."""
    ranks = [STATUSES.index(status) for status in statuses if status in STATUSES]
    return STATUSES[min(ranks)] if ranks else 'unobserved'


def _editable(graph):
    """Nodes by id and edges by (source, target, observed_only) as _graph takes them, observations reset."""
    nodes = dict((item['id'], copy.deepcopy(item)) for item in graph['nodes'])
    edges = {}
    for edge in graph['edges']:
        edges[(edge['source'], edge['target'], edge['observed_only'])] = {
            'source': edge['source'], 'target': edge['target'], 'spans': set(tuple(span) for span in edge['spans']),
            'details': set(edge['details']), 'status': 'unobserved', 'counts': {}, 'observed_only': edge['observed_only']}
    for item in nodes.values():
        item['status'], item['problems'] = 'unobserved', {}
    return nodes, edges


def _host_nodes(nodes):
    """{host: [node ids]} of the role boxes and the cluster group."""
    found = {}
    for item in nodes.values():
        if item['kind'] in ('role', 'group'):
            for host in item['hosts']:
                found.setdefault(host, []).append(item['id'])
    return found


def _observed_edge(nodes, edges, source, target, span, text, status):
    """Adds an observed flow the plan does not have (drawn apart from a planned edge of the same boxes)."""
    if source not in nodes:
        name = source.split(':', 1)[1]
        nodes[source] = {'id': source, 'label': OUTSIDER_LABELS.get(name, name), 'kind': 'outsider', 'hosts': [],
                         'local': [], 'status': 'unobserved', 'problems': {}}
    edge = edges.setdefault((source, target, True), {'source': source, 'target': target, 'spans': set(),
                                                     'details': set(), 'status': status, 'counts': {},
                                                     'observed_only': True})
    edge['spans'].add(span)
    edge['details'].add(('%s %s' % (_span_text(span), text)).strip())
    edge['counts'][status] = edge['counts'].get(status, 0) + 1
    edge['status'] = worst([edge['status'], status])


def _problem(nodes, host_nodes, host, text, status):
    for node_id in host_nodes.get(host) or ():
        if nodes[node_id]['kind'] != 'role':
            continue
        nodes[node_id]['problems'].setdefault(host, [])
        listed = nodes[node_id]['problems'][host]
        if text not in listed:
            # The worst first: the diagram shows each host's first problem.
            listed.insert(0 if status == 'over_exposed' else len(listed), text)
        nodes[node_id]['status'] = worst([nodes[node_id]['status'], status])


def _finish(mode, nodes, edges, observed_hosts):
    for item in nodes.values():
        if item['kind'] == 'role' and item['status'] == 'unobserved' and set(item['hosts']) & observed_hosts:
            item['status'] = 'ok'
    return _graph(mode, nodes, edges)


def verify_flows(graph, report):
    """The graph of ``plan_flows`` coloured by a verify report (``verify_report.build_report``:
    ``probes``, each {source, target, protocol, port (int), expected: open|blocked,
    result: ok|mismatch}).

    A probe expected open counts on the planned edges into the target's box that carry its
    port from a box holding its source (the source's role box, the cluster group), else from
    an outsider (a CIDR set or anyone holding the source). An edge is "mismatch" when one of
    its probes is, "ok" when all are, else "unobserved". A probe expected blocked that got
    through adds an "over_exposed" edge from the source's role box. A box's status is its worst
    host's; ``problems`` lists each host's mismatches.
    """
    nodes, edges = _editable(graph)
    host_nodes = _host_nodes(nodes)
    observed_hosts = set()
    for record in report.get('probes') or ():
        source, target, protocol, port = record['source'], record['target'], record['protocol'], int(record['port'])
        observed_hosts.update((source, target))
        status = 'ok' if record.get('result') == 'ok' else 'mismatch'
        targets = [node_id for node_id in host_nodes.get(target) or () if nodes[node_id]['kind'] == 'role']
        seen = '%s -> %s: expected %s, observed %s' % (source, target, record.get('expected'), record.get('observed'))
        where = '%s/%d %s' % (protocol, port, seen)
        if record.get('expected') == 'blocked':
            if status == 'mismatch':
                for box in targets:
                    for origin in [node_id for node_id in host_nodes.get(source) or ()
                                   if nodes[node_id]['kind'] == 'role'][:1]:
                        _observed_edge(nodes, edges, origin, box, (protocol, port, port), seen, 'over_exposed')
                _problem(nodes, host_nodes, target, 'over-exposed: ' + where, 'over_exposed')
            continue
        candidates = [edge for edge in edges.values() if edge['target'] in targets and not edge['observed_only']
                      and _covers(edge['spans'], protocol, port)]
        matched = [edge for edge in candidates if edge['source'] in (host_nodes.get(source) or ())]
        matched = matched or [edge for edge in candidates if nodes[edge['source']]['kind'] == 'outsider']
        for edge in matched:
            edge['counts'][status] = edge['counts'].get(status, 0) + 1
        if status == 'mismatch':
            _problem(nodes, host_nodes, target, 'mismatch: ' + where, 'mismatch')
    for edge in edges.values():
        if not edge['observed_only']:
            counts = edge['counts']
            edge['status'] = 'mismatch' if counts.get('mismatch') else 'ok' if counts.get('ok') else 'unobserved'
    return _finish('verify', nodes, edges, observed_hosts)


def _finding_span(entry):
    protocol = entry.get('protocol') or 'all'
    if not entry.get('port') or protocol not in ('tcp', 'udp', 'sctp'):
        return (protocol, 0, 0)
    low, high = parse_port(entry['port'], 'port')
    return (protocol, low, high)


def audit_flows(graph, report):
    """The graph of ``plan_flows`` coloured by an audit report (``audit_report.build_report``,
    audit.json: ``hosts`` {host: {missing, extra, over_exposed, foreign: [{protocol, port,
    sources (null: anyone), description, severity}]}} and ``unaudited`` {host: why}).

    An edge into a box is "missing" when a host of the box misses one of its ports (from
    sources that may be the edge's: its source's CIDRs when the plan knows them, else any),
    "ok" when the box's audited hosts miss none, "unobserved" when none of them was audited.
    Each over-exposed finding adds an "over_exposed" edge from "anyone" (sources null or every
    address) or from "other sources". Extra findings mark the host's box; foreign ones (not
    judged) are left out. A box's status is its worst host's; ``problems`` lists the findings.
    """
    nodes, edges = _editable(graph)
    host_nodes = _host_nodes(nodes)
    audited = set(report.get('hosts') or {})
    for host, why in sorted((report.get('unaudited') or {}).items()):
        _problem(nodes, host_nodes, host, 'not audited: %s' % why, 'mismatch')
    planned = [edge for edge in edges.values() if not edge['observed_only']]
    for edge in planned:
        edge['status'] = 'ok' if set(nodes[edge['target']]['hosts']) & audited else 'unobserved'
    for host in sorted(audited):
        findings = report['hosts'][host]
        boxes = [node_id for node_id in host_nodes.get(host) or () if nodes[node_id]['kind'] == 'role']
        for entry in findings.get('missing') or ():
            span = _finding_span(entry)
            missing_from = _networks(entry.get('sources') or ())
            for edge in planned:
                if edge['target'] not in boxes or not _overlaps(edge['spans'], *span):
                    continue
                if entry.get('interfaces') and edge['source'] != POD_DEVICES_ID:
                    continue
                known = _networks(nodes[edge['source']]['hosts']) if nodes[edge['source']]['kind'] == 'outsider' else None
                if known is not None and missing_from is not None and not (known & missing_from):
                    continue
                edge['status'] = 'missing'
                edge['counts']['missing'] = edge['counts'].get('missing', 0) + 1
            _problem(nodes, host_nodes, host, 'missing: %s' % _finding_text(entry), 'missing')
        for entry in findings.get('over_exposed') or ():
            sources = entry.get('sources')
            source = ANYONE_ID if sources is None or any(is_whole_family(item) for item in sources) else OTHER_SOURCES_ID
            for box in boxes:
                _observed_edge(nodes, edges, source, box, _finding_span(entry), '%s: %s' % (host, entry['description']),
                               'over_exposed')
            if source == OTHER_SOURCES_ID and boxes:
                nodes[source]['hosts'] = sorted(set(nodes[source]['hosts']) | set(sources))
            _problem(nodes, host_nodes, host, 'over-exposed: %s' % _finding_text(entry), 'over_exposed')
        for entry in findings.get('extra') or ():
            _problem(nodes, host_nodes, host, 'extra: %s' % entry['description'], 'missing')
    return _finish('audit', nodes, edges, audited)


def _finding_text(entry):
    port = '%s/%s' % (entry['protocol'], entry['port'] or 'every port') if entry.get('protocol') else ''
    sources = 'anyone' if entry.get('sources') is None else ', '.join(entry['sources'][:3]) + (
        ' and %d more' % (len(entry['sources']) - 3) if len(entry['sources']) > 3 else '')
    return '%s from %s: %s' % (port, sources, entry.get('description') or '')
