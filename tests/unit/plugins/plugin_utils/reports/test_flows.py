"""The cluster's flows as a graph (reports/flows.py): edges and ports of a plan, statuses
from verify and audit results."""

import pytest

from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.flows import (
    audit_flows, compact_ports, plan_flows, port_label, verify_flows)

CP, WORKER, CLUSTER = 'role:etcd+controlplane', 'role:worker', 'group:cluster'


def edges_of(graph):
    return dict(((edge['source'], edge['target'], edge['observed_only']), edge) for edge in graph['edges'])


@pytest.mark.parametrize('spans, expected', [
    ([('tcp', 2379, 2379), ('tcp', 2380, 2380), ('tcp', 2381, 2381)], ['tcp/2379-2381']),
    ([('tcp', 2379, 2380), ('tcp', 2380, 2381), ('udp', 4789, 4789)], ['tcp/2379-2381', 'udp/4789']),
    ([('tcp', 22, 22), ('tcp', 6443, 6443)], ['tcp/22', 'tcp/6443']),
    ([('tcp', 30000, 32767), ('udp', 30000, 32767), ('ipip', 0, 0), ('all', 0, 0)],
     ['all', 'ipip', 'tcp/30000-32767', 'udp/30000-32767']),
    ([('ipip', 0, 0), ('ipip', 0, 0)], ['ipip']),
])
def test_ports_are_merged_into_ranges(spans, expected):
    assert compact_ports(spans) == expected


@pytest.mark.parametrize('ports, expected', [
    (['tcp/22'], 'tcp/22'),
    (['tcp/22', 'tcp/80', 'tcp/443'], 'tcp/22, tcp/80, tcp/443'),
    (['tcp/22', 'tcp/80', 'tcp/443', 'udp/53', 'udp/4789'], 'tcp/22, tcp/80, tcp/443 +2 more'),
])
def test_a_label_shows_a_few_ports(ports, expected):
    assert port_label(ports) == expected


@pytest.mark.parametrize('source, target, ports', [
    ('outsider:admins', CP, ['tcp/22']),
    ('outsider:admins', WORKER, ['tcp/22']),
    ('outsider:api_clients', CP, ['tcp/6443']),
    ('outsider:workload_clients', WORKER, ['tcp/30000-32767']),
    ('outsider:pod_devices', WORKER, ['all']),
    (CLUSTER, CP, ['tcp/2381', 'tcp/6443', 'udp/4789']),
    (CLUSTER, WORKER, ['udp/4789']),
    (CP, CP, ['tcp/2379-2380', 'tcp/10250']),
    (CP, WORKER, ['tcp/10250']),
])
def test_edges_of_a_small_plan(small_plan, source, target, ports):
    edge = edges_of(plan_flows(small_plan))[(source, target, False)]
    assert edge['ports'] == ports
    assert edge['status'] == 'planned'
    assert all(any(detail.startswith(port.split('-')[0]) for detail in edge['details']) for port in ports)


def test_nodes_of_a_small_plan(small_plan):
    graph = plan_flows(small_plan)
    nodes = dict((node['id'], node) for node in graph['nodes'])
    assert nodes[CP]['hosts'] == ['cp1', 'cp2'] and nodes[CP]['kind'] == 'role'
    assert nodes[WORKER]['hosts'] == ['w1', 'w2']
    assert nodes[CLUSTER]['kind'] == 'group' and nodes[CLUSTER]['hosts'] == ['cp1', 'cp2', 'w1', 'w2']
    assert nodes['outsider:admins']['hosts'] == ['192.0.2.10/32']
    assert nodes['outsider:api_clients']['hosts'] == ['anyone (0.0.0.0/0, ::/0)']
    # pods+self: the host's own address is not the pod network.
    assert nodes['outsider:pods']['hosts'] == ['10.233.64.0/18']
    # Rules from the host itself are no flow between boxes.
    assert any(item.startswith('tcp/10257 ') for item in nodes[CP]['local'])
    assert all(edge['source'] != edge['target'] or edge['source'] == CP for edge in graph['edges'])
    # Outsiders first, then the cluster group, then roles.
    assert [node['kind'] for node in graph['nodes']] == sorted(
        (node['kind'] for node in graph['nodes']), key=['outsider', 'group', 'role'].index)


def test_ten_role_plan_has_a_box_per_role_combination(ten_role_plan):
    roles = [node for node in plan_flows(ten_role_plan)['nodes'] if node['kind'] == 'role']
    assert len(roles) == 10


def probe(source, target, protocol, port, expected, result):
    observed = {('open', 'ok'): 'open', ('open', 'mismatch'): 'filtered',
                ('blocked', 'ok'): 'filtered', ('blocked', 'mismatch'): 'open'}[(expected, result)]
    return {'source': source, 'target': target, 'protocol': protocol, 'port': port, 'expected': expected,
            'observed': observed, 'result': result, 'planned': True}


@pytest.mark.parametrize('probes, expected', [
    # Nothing probed: every planned edge unobserved.
    ([], {(CP, CP, False): 'unobserved', (CLUSTER, WORKER, False): 'unobserved'}),
    # etcd peers ok from the role box; the cluster group's VXLAN to workers ok.
    ([probe('cp1', 'cp2', 'tcp', 2380, 'open', 'ok'), probe('cp1', 'w1', 'udp', 4789, 'open', 'ok')],
     {(CP, CP, False): 'ok', (CLUSTER, WORKER, False): 'ok', (CP, WORKER, False): 'unobserved'}),
    # One mismatch among oks: the edge is a mismatch.
    ([probe('cp1', 'cp2', 'tcp', 2380, 'open', 'ok'), probe('cp2', 'cp1', 'tcp', 2379, 'open', 'mismatch')],
     {(CP, CP, False): 'mismatch'}),
    # NodePorts from a cluster host: counted on the edge of the outsider that holds it.
    ([probe('w1', 'w2', 'tcp', 30000, 'open', 'ok')], {('outsider:workload_clients', WORKER, False): 'ok'}),
    # A worker reached etcd: an observed edge, over-exposed.
    ([probe('w1', 'cp1', 'tcp', 2379, 'blocked', 'mismatch')],
     {(WORKER, CP, True): 'over_exposed', (CP, CP, False): 'unobserved'}),
    # Blocked as planned: no edge.
    ([probe('w1', 'cp1', 'tcp', 2379, 'blocked', 'ok')], {(CP, CP, False): 'unobserved'}),
])
def test_verify_statuses(small_plan, probes, expected):
    graph = verify_flows(plan_flows(small_plan), {'probes': probes})
    assert graph['mode'] == 'verify'
    edges = edges_of(graph)
    assert dict((key, edges[key]['status']) for key in expected) == expected
    if not any(item['expected'] == 'blocked' and item['result'] == 'mismatch' for item in probes):
        assert not any(edge['observed_only'] for edge in graph['edges'])


def test_verify_names_the_host_in_trouble(small_plan):
    probes = [probe('w1', 'cp1', 'tcp', 2379, 'blocked', 'mismatch'), probe('cp1', 'w2', 'tcp', 10250, 'open', 'ok')]
    graph = verify_flows(plan_flows(small_plan), {'probes': probes})
    nodes = dict((node['id'], node) for node in graph['nodes'])
    assert nodes[CP]['status'] == 'over_exposed' and list(nodes[CP]['problems']) == ['cp1']
    assert nodes[WORKER]['status'] == 'ok' and not nodes[WORKER]['problems']


def finding(protocol, port, sources=None, description='x', severity='high'):
    return {'protocol': protocol, 'port': port, 'sources': sources, 'description': description, 'reference': None,
            'severity': severity}


def audit(hosts, unaudited=None):
    categories = ('missing', 'extra', 'over_exposed', 'foreign')
    return {'hosts': dict((host, dict((name, findings.get(name, [])) for name in categories))
                          for host, findings in hosts.items()), 'unaudited': unaudited or {}}


CLEAN = {'cp1': {}, 'cp2': {}, 'w1': {}, 'w2': {}}


@pytest.mark.parametrize('report, expected', [
    (audit(CLEAN), {(CP, CP, False): 'ok', (CLUSTER, WORKER, False): 'ok', ('outsider:admins', CP, False): 'ok'}),
    # Workers not audited: edges into them unobserved.
    (audit({'cp1': {}}, {'w1': 'unreachable'}), {(CP, CP, False): 'ok', (CP, WORKER, False): 'unobserved'}),
    # etcd peers missing on cp2: only the edge that carries 2380.
    (audit(dict(CLEAN, cp2={'missing': [finding('tcp', '2380', ['10.0.0.1/32'])]})),
     {(CP, CP, False): 'missing', (CLUSTER, CP, False): 'ok', ('outsider:admins', CP, False): 'ok',
      ('outsider:pod_devices', CP, False): 'ok'}),
    # The CNI's devices not admitted: the pods' edge only.
    (audit(dict(CLEAN, w1={'missing': [dict(finding('all', ''), interfaces=['cali+'])]})),
     {('outsider:pod_devices', WORKER, False): 'missing', (CLUSTER, WORKER, False): 'ok'}),
    # SSH missing from an address that is not the admins': the admins' edge stays ok.
    (audit(dict(CLEAN, w1={'missing': [finding('tcp', '22', ['198.51.100.9/32'])]})),
     {('outsider:admins', WORKER, False): 'ok'}),
    (audit(dict(CLEAN, w1={'missing': [finding('tcp', '22', ['192.0.2.10/32'])]})),
     {('outsider:admins', WORKER, False): 'missing'}),
    # etcd open to anyone: an observed edge from anyone.
    (audit(dict(CLEAN, cp1={'over_exposed': [finding('tcp', '2379', None, 'etcd open to anyone', 'critical')]})),
     {('outsider:any', CP, True): 'over_exposed', (CP, CP, False): 'ok'}),
    (audit(dict(CLEAN, w2={'over_exposed': [finding('tcp', '10250', ['198.51.100.0/24'])]})),
     {('outsider:other_sources', WORKER, True): 'over_exposed'}),
    # Foreign findings are not judged.
    (audit(dict(CLEAN, w2={'foreign': [finding('tcp', '9090', None, 'cockpit', 'info')]})),
     {(CP, WORKER, False): 'ok'}),
])
def test_audit_statuses(small_plan, report, expected):
    graph = audit_flows(plan_flows(small_plan), report)
    assert graph['mode'] == 'audit'
    edges = edges_of(graph)
    assert dict((key, edges[key]['status']) for key in expected) == expected


def test_audit_marks_the_worst_host(small_plan):
    report = audit(dict(CLEAN, cp1={'missing': [finding('tcp', '2380', ['10.0.0.2/32'])],
                                    'over_exposed': [finding('tcp', '2379', None, 'etcd open to anyone', 'critical')]},
                        w1={'extra': [finding(None, None, None, 'old rule')]}))
    nodes = dict((node['id'], node) for node in audit_flows(plan_flows(small_plan), report)['nodes'])
    assert nodes[CP]['status'] == 'over_exposed'
    assert nodes[CP]['problems']['cp1'][0].startswith('over-exposed: tcp/2379 from anyone')
    assert nodes[WORKER]['problems'] == {'w1': ['extra: old rule']}
    assert nodes['outsider:any']['label'] == 'anyone'
