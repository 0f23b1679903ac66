import pytest

from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.plan_report import (
    markdown, table_lines, unplanned_lines)

PLAN = {
    'host': 'cp1', 'roles': ['controlplane', 'etcd'],
    'rules': [
        {'protocol': 'tcp', 'port': '6443', 'sources': ['0.0.0.0/0', '::/0'], 'source_set': None,
         'description': 'Kubernetes API server', 'references': ['https://kubernetes.io/zh-cn/docs/reference/networking/ports-and-protocols/#control-plane']},
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


DOCUMENT = {
    'clusters': [],
    'sets': {'cluster': ['192.0.2.%d/32' % number for number in range(1, 201)]},
    'rule_lists': {'worker': {
        'rules': [{'protocol': 'udp', 'port': '4789', 'source_set': 'cluster', 'description': 'VXLAN',
                   'references': ['r']},
                  {'protocol': 'tcp', 'port': '10248', 'source_set': 'self', 'description': 'health',
                   'references': ['r']}],
        'sets': {'cluster': 'cluster'}, 'skipped': []}},
    'hosts': dict(('w%d' % number, {'host': 'w%d' % number, 'roles': ['worker'], 'rule_list': 'worker',
                                    'own_sets': {'self': ['192.0.2.%d/32' % number]}}) for number in range(1, 4)),
}


def test_markdown_of_a_plan_lists_each_rule_list_and_peer_set_once():
    text = markdown(DOCUMENT['hosts'], document=DOCUMENT)
    assert text.count('192.0.2.150/32') == 1
    assert text.count('| udp | 4789 |') == 1
    assert '## Rule list worker' in text and 'Hosts (3): w1, w2, w3' in text
    assert '| udp | 4789 | peer set `cluster` (200) | cluster | VXLAN | r |' in text
    assert "| tcp | 10248 | (the host's own; see Hosts) | self | health | r |" in text
    assert '| w2 | worker | worker | self: 192.0.2.2/32 |' in text
    assert '- `cluster` (200): 192.0.2.1/32, 192.0.2.2/32' in text


def test_table_of_a_plan_host_stops_listing_members_at_the_width():
    lines = table_lines(DOCUMENT['hosts']['w1'], width=40, document=DOCUMENT)
    assert lines[0] == 'w1 (worker): 2 rules'
    assert 'and 19' in lines[2] or '...' in lines[2]
    assert lines[3].split()[1] == 'self:' and lines[3].split()[2] == '192.0.2.1/32'


UNPLANNED = {'bastion1': 'in group bastion, which no role maps to (kubeports_role_groups)', 'stray': 'in no group',
             'lb|1': 'in groups lb, proxy, which no role maps to (kubeports_role_groups)'}


def test_markdown_names_every_host_planned_for_nothing_with_why():
    text = markdown(DOCUMENT['hosts'], document=dict(DOCUMENT, unplanned=UNPLANNED))
    section = text[text.index('## Hosts planned for nothing'):]
    assert '| bastion1 | in group bastion, which no role maps to (kubeports_role_groups) |' in section
    assert '| stray | in no group |' in section
    assert '| lb\\|1 | in groups lb, proxy, which no role maps to (kubeports_role_groups) |' in section
    assert '## Hosts planned for nothing' not in markdown(DOCUMENT['hosts'], document=dict(DOCUMENT, unplanned={}))
    assert '## Hosts planned for nothing' not in markdown(DOCUMENT['hosts'], document=DOCUMENT)


@pytest.mark.parametrize('shown, expected', [
    (5, ['bastion1: in group bastion, which no role maps to (kubeports_role_groups)',
         'lb|1: in groups lb, proxy, which no role maps to (kubeports_role_groups)', 'stray: in no group']),
    (1, ['bastion1: in group bastion, which no role maps to (kubeports_role_groups)',
         'and 2 more (plan.md and plan.json name them all)']),
    (0, ['and 3 more (plan.md and plan.json name them all)']),
])
def test_unplanned_lines_name_the_first_hosts_and_count_the_rest(shown, expected):
    assert unplanned_lines({'unplanned': UNPLANNED}, shown) == expected
    assert unplanned_lines({'unplanned': {}}, shown) == []


def test_rules_of_the_cnis_devices_say_so_never_anyone():
    rule = {'protocol': 'all', 'port': '', 'sources': ['0.0.0.0/0', '::/0'], 'source_set': None,
            'interfaces': ['flannel.1', 'cni0'], 'description': 'Pod traffic', 'references': ['https://kubernetes.io/']}
    plan = dict(PLAN, rules=[rule], skipped=[])
    assert table_lines(plan)[2].split(None, 1)[1].startswith('anything arriving on flannel.1, cni0')
    assert 'anything arriving on flannel.1, cni0' in markdown([plan])
    assert 'anyone' not in table_lines(plan)[2]
