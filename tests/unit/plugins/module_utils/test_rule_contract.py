import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import (
    check_protocol, format_port, parse_port, parse_selector, private_ports_hit)


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
    ('tcp', (2000, 3000), [('tcp', (2379, 2379))], [('tcp/2379-2381', 'etcd')]),
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
