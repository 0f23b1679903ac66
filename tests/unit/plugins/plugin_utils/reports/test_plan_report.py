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


def test_table_wraps_long_source_lists_and_says_how_many_more():
    plan = dict(PLAN, rules=[dict(PLAN['rules'][1], sources=['192.0.2.%d/32' % i for i in range(0, 40, 2)])])
    lines = table_lines(plan, width=30)
    assert lines[2] == 'ipip  cluster: 192.0.2.0/32,       IP-in-IP | encapsulation'
    assert [line.strip() for line in lines[3:5]] == ['192.0.2.2/32, 192.0.2.4/32,', '192.0.2.6/32 and 16 more']
    assert all(len(line) <= 6 + 30 for line in lines[3:5])


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
    assert '| udp | 4789 | peer set `cluster` (200 CIDRs) | cluster | VXLAN | r |' in text
    assert "| tcp | 10248 | (the host's own; see Hosts) | self | health | r |" in text
    assert '| w2 | worker | worker | self: 192.0.2.2/32 |' in text
    assert '- `cluster` (200 CIDRs): 192.0.2.1/32, 192.0.2.2/32' in text


def test_table_of_a_plan_host_stops_listing_members_at_the_width():
    lines = table_lines(DOCUMENT['hosts']['w1'], width=40, document=DOCUMENT)
    assert lines[0] == 'w1 (worker): 2 rules'
    assert lines[2].split() == ['4789/udp', 'cluster:', '192.0.2.1/32,', '192.0.2.2/32,', 'VXLAN']
    assert lines[3].split() == ['192.0.2.3/32,', '192.0.2.4/32', 'and', '196', 'more']
    assert lines[4].split()[1] == 'self:' and lines[4].split()[2] == '192.0.2.1/32'


# The same plan with the hosts' addresses: 200 hosts stand behind `cluster`, and admins are a CIDR.
NAMED = dict(DOCUMENT, addresses=dict(('h%03d' % number, ['192.0.2.%d/32' % number]) for number in range(1, 201)),
             sets=dict(DOCUMENT['sets'], admins=['198.51.100.0/24'], **{
                 'api_clients+cluster': ['192.0.2.0/24', '203.0.113.0/24'], 'pods': ['10.233.64.0/18']}),
             clusters=[{'name': 'cluster', 'hosts': [], 'values': {'pod_cidrs': {'value': ['10.233.64.0/18'],
                                                                                 'origin': 'kube_pods_subnet'}}}])
NAMED['rule_lists'] = {'worker': dict(DOCUMENT['rule_lists']['worker'], sets={
    'cluster': 'cluster', 'admins': 'admins', 'api_clients+cluster': 'api_clients+cluster', 'pods': 'pods'},
    rules=DOCUMENT['rule_lists']['worker']['rules'] + [
        dict(DOCUMENT['rule_lists']['worker']['rules'][0], port='22', protocol='tcp', source_set='admins'),
        dict(DOCUMENT['rule_lists']['worker']['rules'][0], port='6443', protocol='tcp',
             source_set='api_clients+cluster'),
        dict(DOCUMENT['rule_lists']['worker']['rules'][0], port='', protocol='all', source_set='pods')])}


@pytest.mark.parametrize('port, who', [
    ('4789/udp', 'cluster: 200 hosts (h001, h002, h003, h004 and 196 more)'),
    ('10248/tcp', 'self: h001'),
    ('22/tcp', 'admins: 198.51.100.0/24 (kubeports_admin_cidrs)'),
    ('6443/tcp', 'api_clients+cluster: 200 hosts (h001, h002, h003, h004 and 196 more); 192.0.2.0/24, '
                 '203.0.113.0/24 (kubeports_api_client_cidrs)'),
    ('all', 'pods: 10.233.64.0/18 (kube_pods_subnet)'),
])
def test_the_console_table_names_the_hosts_behind_a_set(port, who):
    lines = table_lines(NAMED['hosts']['w1'], width=200, document=NAMED)
    row = [line for line in lines if line.startswith(port + ' ')][0]
    assert ' '.join(row.split()[1:]).startswith(who)


@pytest.mark.parametrize('text', [
    '| udp | 4789 | peer set `cluster` (200 hosts) | cluster |',
    '| tcp | 22 | peer set `admins` (1 CIDR of kubeports_admin_cidrs) |',
    '| tcp | 6443 | peer set `api_clients+cluster` (200 hosts, 2 CIDRs of kubeports_api_client_cidrs) |',
    '| w2 | worker | worker | self: h002 |',
    '| `cluster` | 200: h001, h002, h003, ',
    'h049, h050 and 150 more | - | 192.0.2.1/32, ',
    '| `pods` | - | kube_pods_subnet: 10.233.64.0/18 | 10.233.64.0/18 |',
])
def test_markdown_counts_hosts_and_names_them(text):
    assert text in markdown(NAMED['hosts'], document=NAMED)


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
