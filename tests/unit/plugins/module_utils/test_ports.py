import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.module_utils.ports import (
    check_protocol, format_port, parse_port)


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
