import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.plan_report import markdown, table_lines

PLAN = {
    'host': 'cp1', 'roles': ['controlplane', 'etcd'],
    'rules': [
        {'protocol': 'tcp', 'port': '6443', 'sources': ['0.0.0.0/0', '::/0'], 'source_set': None,
         'description': 'Kubernetes API server', 'references': ['kubernetes-ports-and-protocols.zh.md#control-plane']},
        {'protocol': 'ipip', 'port': '', 'sources': ['192.0.2.0/31'], 'source_set': 'cluster',
         'description': 'IP-in-IP | encapsulation', 'references': ['a', 'b']},
    ],
    'skipped': [{'id': 'pod-network.pods', 'protocol': 'all', 'port': '', 'reason': 'no members in source set(s) pods'}],
}


@pytest.mark.parametrize('index, expected', [
    (0, 'cp1 (controlplane, etcd): 2 rules'),
    (2, '6443/tcp  anyone                 Kubernetes API server'),
    (3, 'ipip      cluster: 192.0.2.0/31  IP-in-IP | encapsulation'),
    (4, 'skipped pod-network.pods (all): no members in source set(s) pods'),
])
def test_table_lines(index, expected):
    assert table_lines(PLAN)[index] == expected


def test_table_truncates_long_source_lists():
    plan = dict(PLAN, rules=[dict(PLAN['rules'][1], sources=['192.0.2.%d/32' % i for i in range(0, 40, 2)])])
    line = table_lines(plan, width=30)[2]
    assert line.startswith('ipip  cluster: 192.0.2.0/32, 192.')
    assert line[6:36].endswith('...') and line[36:].strip() == 'IP-in-IP | encapsulation'


def test_markdown_escapes_and_lists_references():
    text = markdown([PLAN])
    assert '## cp1' in text
    assert '| tcp | 6443 | anyone | - | Kubernetes API server |' in text
    assert 'IP-in-IP \\| encapsulation' in text
    assert '| a<br>b |' in text
    assert '- `pod-network.pods` all: no members' in text
