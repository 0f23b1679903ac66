"""The flows diagram as SVG (reports/flow_diagram.py): well-formed, complete, deterministic,
escaped."""

from xml.etree import ElementTree

import pytest

from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.flow_diagram import svg
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.flows import (
    audit_flows, plan_flows, verify_flows)

SVG = '{http://www.w3.org/2000/svg}'


def groups(root, kind, attribute):
    return [element.get(attribute) for element in root.iter(SVG + 'g') if element.get('class') == kind]


def graphs(plan):
    graph = plan_flows(plan)
    probes = [{'source': 'w1', 'target': 'cp1', 'protocol': 'tcp', 'port': 2379, 'expected': 'blocked',
               'observed': 'open', 'result': 'mismatch', 'planned': True}]
    findings = {'missing': [], 'extra': [], 'foreign': [],
                'over_exposed': [{'protocol': 'tcp', 'port': '2379', 'sources': None, 'severity': 'critical',
                                  'description': 'etcd open to anyone'}]}
    return [graph, verify_flows(graph, {'probes': probes}), audit_flows(graph, {'hosts': {'cp1': findings}})]


@pytest.mark.parametrize('which', [0, 1, 2])
@pytest.mark.parametrize('plan_name', ['small_plan', 'ten_role_plan'])
def test_every_node_and_edge_is_drawn(request, plan_name, which):
    graph = graphs(request.getfixturevalue(plan_name))[which]
    text = svg(graph)
    root = ElementTree.fromstring(text)
    assert root.tag == SVG + 'svg'
    drawn_edges = groups(root, 'kp-edge', 'data-edge')
    assert sorted(drawn_edges) == sorted(edge['id'] for edge in graph['edges'])
    drawn_nodes = set(groups(root, 'kp-node', 'data-node'))
    assert drawn_nodes == set(node['id'] for node in graph['nodes'])
    for element in root.iter(SVG + 'g'):
        if element.get('class') in ('kp-edge', 'kp-node'):
            assert element.find(SVG + 'title').text
    # No script, no external reference.
    assert '<script' not in text and 'href' not in text


def test_the_same_graph_draws_the_same_svg(ten_role_plan):
    assert svg(plan_flows(ten_role_plan)) == svg(plan_flows(ten_role_plan))


def test_tooltips_list_hosts_and_every_port(small_plan):
    root = ElementTree.fromstring(svg(plan_flows(small_plan)))
    titles = dict((element.get('data-node') or element.get('data-edge'), element.find(SVG + 'title').text)
                  for element in root.iter(SVG + 'g') if element.get('class') in ('kp-edge', 'kp-node'))
    assert 'hosts: cp1, cp2' in titles['role:etcd+controlplane']
    assert 'hosts: cp1, cp2, w1, w2' in titles['group:cluster']
    cluster_to_cp = [edge for edge in plan_flows(small_plan)['edges']
                     if (edge['source'], edge['target']) == ('group:cluster', 'role:etcd+controlplane')][0]
    for detail in cluster_to_cp['details']:
        assert detail in titles[cluster_to_cp['id']]


@pytest.mark.parametrize('mode, texts', [
    ('plan', ['planned']),
    ('verify', ['ok: every observation', 'mismatch:', 'over-exposed:', 'not observed', 'dashed:']),
    ('audit', ['ok: every observation', 'missing:', 'over-exposed:', 'not observed']),
])
def test_the_legend_names_the_colours_of_the_mode(mode, texts):
    root = ElementTree.fromstring(svg({'mode': mode, 'nodes': [], 'edges': []}))
    legend = ' '.join(element.text for element in root.iter(SVG + 'text') if element.get('class') == 'kp-legend-text')
    for text in texts:
        assert text in legend


def test_text_is_escaped():
    nodes = [{'id': 'outsider:<x>', 'label': 'a <b> & "c"', 'kind': 'outsider', 'hosts': ["it's & <that>"],
              'local': [], 'status': 'planned', 'problems': {}},
             {'id': 'role:w&1', 'label': 'w&1', 'kind': 'role', 'hosts': ['h<1>'], 'local': ['tcp/1 a<b'],
              'status': 'planned', 'problems': {'h<1>': ['bad & worse']}}]
    edges = [{'id': 'e1', 'source': 'outsider:<x>', 'target': 'role:w&1', 'ports': ['tcp/1'], 'label': 'tcp/1 <&>',
              'details': ['tcp/1 "quoted" <&>'], 'spans': [['tcp', 1, 1]], 'status': 'planned', 'counts': {},
              'observed_only': False}]
    text = svg({'mode': 'plan', 'nodes': nodes, 'edges': edges}, title='<title> & more')
    root = ElementTree.fromstring(text)
    everything = ' '.join(element.text or '' for element in root.iter())
    for raw in ('a <b> & "c"', "it's & <that>", 'tcp/1 <&>', 'tcp/1 "quoted" <&>', 'bad & worse', '<title> & more'):
        assert raw in everything
