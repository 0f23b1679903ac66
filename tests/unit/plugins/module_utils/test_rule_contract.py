import ipaddress

import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import (
    ANYONE, EVERY_PORT, RULE_OPTIONS, check_protocol, few, format_port, host_view, is_anyone, is_whole_family, parse_port,
    parse_ports, parse_selector, private_ports_hit, rule_port, rule_sources, sort_key)


@pytest.mark.parametrize('value, expected', [
    (6443, (6443, 6443)),
    ('6443', (6443, 6443)),
    ('30000-32767', (30000, 32767)),
    (' 2379 - 2380 ', (2379, 2380)),
    (1, (1, 1)),
    (65535, (65535, 65535)),
    ('8472-8472', (8472, 8472)),
])
def test_parse_port_valid(value, expected):
    assert parse_port(value, 'here') == expected


@pytest.mark.parametrize('value, message', [
    (0, 'ports are 1-65535'),
    (65536, 'ports are 1-65535'),
    ('32767-30000', 'start is above end'),
    ('http', "invalid port 'http'"),
    ('', "invalid port ''"),
    (True, 'invalid port True'),
    ('1-2-3', "invalid port '1-2-3'"),
    ('-5', "invalid port '-5'"),
    (None, 'invalid port'),
])
def test_parse_port_invalid_names_value(value, message):
    with pytest.raises(PlanError) as exc:
        parse_port(value, 'kubeports_api_port (host cp1)')
    assert message in str(exc.value)
    assert 'kubeports_api_port (host cp1)' in str(exc.value)


@pytest.mark.parametrize('value, expected', [
    (None, ''), ((6443, 6443), '6443'), ((30000, 32767), '30000-32767'),
])
def test_format_port(value, expected):
    assert format_port(value) == expected


@pytest.mark.parametrize('value, expected', [('TCP', 'tcp'), ('ipip', 'ipip'), (' udp ', 'udp')])
def test_check_protocol(value, expected):
    assert check_protocol(value, 'x') == expected


def test_check_protocol_unknown():
    with pytest.raises(PlanError, match="unknown protocol 'tpc'"):
        check_protocol('tpc', 'x')


@pytest.mark.parametrize('protocol, port, allowed, expected', [
    ('tcp', (2379, 2379), [], [('tcp/2379', 'etcd')]),
    ('tcp', (2000, 3000), [], [('tcp/2379-2381', 'etcd')]),
    ('tcp', (2000, 3000), [('tcp', (2379, 2381))], []),
    # What the allowed selectors leave, together.
    ('tcp', (2000, 3000), [('tcp', (2379, 2379))], [('tcp/2380-2381', 'etcd')]),
    ('tcp', (2000, 3000), [('tcp', (2380, 2380))], [('tcp/2379', 'etcd')]),
    ('tcp', (2000, 3000), [('tcp', (2379, 2379)), ('tcp', (2380, 2381))], []),
    ('tcp', (6443, 6443), [], []),
    ('tcp', (30000, 32767), [], []),
    ('udp', (8472, 8472), [], [('udp/8472', 'a VXLAN overlay')]),
    ('udp', (1, 65535), [], [('udp/4789', 'a VXLAN overlay'), ('udp/8472', 'a VXLAN overlay'),
                             ('udp/6081', 'a Geneve overlay')]),
    ('tcp', (10250, 10250), [('tcp', (10250, 10250))], []),
    ('ipip', None, [], [('ipip', 'the IP-in-IP overlay')]),
    ('icmp', None, [], []),
    ('all', None, [], [('all', 'every port')]),
    ('all', None, [('all', None)], []),
])
def test_private_ports_hit(protocol, port, allowed, expected):
    hits = private_ports_hit(protocol, port, allowed)
    if protocol == 'all' and not allowed:
        assert hits[0] == expected[0] and len(hits) > 10
    else:
        assert hits == expected


@pytest.mark.parametrize('value, expected', [
    ('tcp/10250', ('tcp', (10250, 10250))),
    ('UDP/4789', ('udp', (4789, 4789))),
    ('tcp/2379-2381', ('tcp', (2379, 2381))),
    ('ipip', ('ipip', None)),
])
def test_parse_selector(value, expected):
    assert parse_selector(value, 'x') == expected


@pytest.mark.parametrize('value, message', [
    ('tcp', 'needs a port'), ('ipip/4', 'takes no port'), ('foo/1', "unknown protocol 'foo'"),
    ('tcp/0', 'invalid port'),
])
def test_parse_selector_rejects(value, message):
    with pytest.raises(PlanError, match=message):
        parse_selector(value, 'x')


@pytest.mark.parametrize('rule, expected', [
    ({'protocol': 'tcp', 'port': '6443'}, (6443, 6443)),
    ({'protocol': 'udp', 'port': 8472}, (8472, 8472)),
    ({'protocol': 'tcp', 'port': '30000-32767'}, (30000, 32767)),
    ({'protocol': 'ipip', 'port': ''}, None),
    ({'protocol': 'esp'}, None),
    ({'protocol': 'all', 'port': None}, None),
])
def test_rule_port(rule, expected):
    assert rule_port(rule, 'here') == expected


@pytest.mark.parametrize('rule, message', [
    ({'protocol': 'tcp', 'port': ''}, 'protocol tcp needs a port'),
    ({'protocol': 'sctp'}, 'protocol sctp needs a port'),
    ({'protocol': 'icmp', 'port': '8'}, 'protocol icmp takes no port'),
    ({'protocol': 'tcp', 'port': '6443/tcp'}, "invalid port '6443/tcp'"),
    ({'protocol': 'http', 'port': '80'}, "unknown protocol 'http'"),
])
def test_rule_port_rejects(rule, message):
    with pytest.raises(PlanError, match='^here: .*' + message.replace('/', '.')):
        rule_port(rule, 'here')


SETS = {'etcd': ['10.0.0.1/32', '10.0.0.2/32']}


@pytest.mark.parametrize('rule, expected', [
    ({'sources': ['10.9.0.0/16'], 'source_set': None}, ['10.9.0.0/16']),
    ({'sources': ['10.9.0.0/16'], 'source_set': 'admins'}, ['10.9.0.0/16']),
    ({'sources': ['10.0.0.2/32', '10.0.0.1/32'], 'source_set': 'etcd'}, ['10.0.0.2/32', '10.0.0.1/32']),
    ({'source_set': 'etcd'}, SETS['etcd']),
    ({'sources': None, 'source_set': 'etcd'}, SETS['etcd']),
    ({'sources': list(ANYONE), 'source_set': None}, list(ANYONE)),
])
def test_rule_sources(rule, expected):
    assert rule_sources(rule, SETS, 'here') == expected


@pytest.mark.parametrize('rule, sets, message', [
    ({'source_set': 'workers'}, SETS, "source_set 'workers' is not among the sets given (etcd)"),
    ({'source_set': 'workers'}, None, "source_set 'workers' is not among the sets given (none)"),
    ({'sources': [], 'source_set': None}, SETS, 'no sources and no source_set'),
    ({'sources': ['10.0.0.1/32'], 'source_set': 'etcd'}, SETS,
     "source_set 'etcd' disagrees with the rule's sources (10.0.0.1/32, the set has 10.0.0.1/32, 10.0.0.2/32)"),
])
def test_rule_sources_rejects(rule, sets, message):
    with pytest.raises(PlanError) as exc:
        rule_sources(rule, sets, 'here')
    assert str(exc.value).startswith('here: ' + message)


@pytest.mark.parametrize('sources, expected', [
    (list(ANYONE), True),
    (['::/0', '0.0.0.0/0'], True),
    (['0.0.0.0/0'], False),
    (['10.0.0.0/8', '::/0'], False),
    ([], False),
    # Networks as backends read them, and anyone next to narrower sources.
    ([ipaddress.ip_network('0.0.0.0/0'), ipaddress.ip_network('::/0')], True),
    (['10.0.0.0/8', '0.0.0.0/0', '::/0'], True),
    (['0.0.0.0/0', '0.0.0.0/0'], False),
    (['not a cidr', '::/0'], False),
])
def test_is_anyone(sources, expected):
    assert is_anyone(sources) is expected


def test_host_view_maps_set_names_to_the_plans_members():
    rules = [{'protocol': 'tcp', 'port': '22', 'source_set': 'admin'}]
    document = {'sets': {'cluster': ['10.0.0.0/24'], 'admin@1a2b3c4d': ['192.0.2.1/32'],
                         'admin@99999999': ['192.0.2.2/32']},
                'rule_lists': {'worker@1': {'rules': rules, 'sets': {'admin': 'admin@1a2b3c4d'}, 'skipped': []}}}
    entry = {'host': 'w1', 'roles': ['worker'], 'rule_list': 'worker@1', 'own_sets': {'self': ['10.0.0.5/32']}}
    assert host_view(document, entry) == {'host': 'w1', 'roles': ['worker'], 'rules': rules,
                                          'sets': {'admin': ['192.0.2.1/32'], 'self': ['10.0.0.5/32']},
                                          'skipped': []}
    expanded = {'host': 'w2', 'roles': ['worker'], 'rules': [], 'skipped': []}
    assert host_view(document, expanded) is expanded


def test_sort_key_orders_by_protocol_then_port_number():
    rules = [{'protocol': 'tcp', 'port': '10250'}, {'protocol': 'tcp', 'port': '2379-2380'},
             {'protocol': 'ipip', 'port': ''}, {'protocol': 'tcp', 'port': '22'}]
    assert [rule['port'] for rule in sorted(rules, key=sort_key)] == ['', '22', '2379-2380', '10250']


def test_the_argument_spec_names_every_field_the_planner_emits(plan):
    emitted = set()
    hosts = plan({'kube_control_plane': ['cp1'], 'etcd': ['cp1'], 'kube_node': ['w1']},
                 {'cp1': '10.0.0.1', 'w1': '10.0.0.2'}, {'kubeports_cni': 'calico'}, 'cp1')
    for rule in hosts.rules:
        emitted.update(rule)
    assert emitted <= set(RULE_OPTIONS)
    assert RULE_OPTIONS['protocol']['required'] and RULE_OPTIONS['protocol']['type'] == 'str'


@pytest.mark.parametrize('source, expected', [
    ('0.0.0.0/0', True), ('::/0', True), (ipaddress.ip_network('::/0'), True),
    ('10.0.0.0/8', False), ('0.0.0.0/1', False), ('anywhere', False),
])
def test_is_whole_family(source, expected):
    assert is_whole_family(source) is expected


@pytest.mark.parametrize('text, expected', [
    ('22', [(22, 22)]), ('30000-32767', [(30000, 32767)]), ('8000:8100', [(8000, 8100)]),
    ('80,443', [(80, 80), (443, 443)]), ('80,30000:32767', [(80, 80), (30000, 32767)]),
    ('any', [EVERY_PORT]), ('', [EVERY_PORT]), (None, [EVERY_PORT]),
])
def test_parse_ports(text, expected):
    assert parse_ports(text) == expected


@pytest.mark.parametrize('text', ['0', '80,', 'http', '443:80'])
def test_parse_ports_refuses(text):
    with pytest.raises(PlanError, match='port'):
        parse_ports(text)


@pytest.mark.parametrize('names, shown, text', [
    ([], 4, ''), (['a'], 4, 'a'), (['a', 'b', 'c', 'd', 'e'], 4, 'a, b, c, d, e'),
    (['a', 'b', 'c', 'd', 'e', 'f'], 4, 'a, b, c, d and 2 more'), (['a', 'b', 'c'], 1, 'a and 2 more'),
])
def test_few_names_say_how_many_more(names, shown, text):
    assert few(names, shown) == text
