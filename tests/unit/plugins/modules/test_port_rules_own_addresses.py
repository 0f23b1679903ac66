"""port_rules' own_addresses: whether the host is new to its own peer sets, read from its record
of the sets last applied (the module in-process, a fake backend standing in for the firewall)."""

import pytest

# The fixtures host and fake_backend, and the helpers of the module tests.
from test_port_rules_errors import RULE, fake_backend, host, run  # pylint: disable=unused-import

from ansible_collections.kubeports.firewall.plugins.modules import port_rules

SELF = {'protocol': 'tcp', 'port': '10248', 'sources': ['10.0.0.5/32'], 'source_set': 'self',
        'description': 'Kubelet health endpoint'}


def apply_once(capsys, state_dir, sets, own, check_mode=False):
    rules = [dict(RULE, sources=sets['cluster']), dict(SELF, sources=sets['self'])]
    args = {'rules': rules, 'sets': sets, 'state_dir': state_dir, 'lockout_guard': False,
            'own_addresses': own, '_ansible_check_mode': check_mode}
    return run(port_rules, args, capsys)


@pytest.mark.parametrize('steps', [
    # First apply of a new node: new; the same again: not new.
    [({'cluster': ['10.0.0.0/24'], 'self': ['10.0.0.5/32']}, True), ({'cluster': ['10.0.0.0/24'],
                                                                      'self': ['10.0.0.5/32']}, False)],
    # Its sets did not hold it at first (it was not in the inventory when last applied here).
    [({'cluster': ['10.0.0.1/32'], 'self': ['10.0.0.9/32']}, False),
     ({'cluster': ['10.0.0.1/32', '10.0.0.5/32'], 'self': ['10.0.0.5/32']}, True),
     ({'cluster': ['10.0.0.1/32', '10.0.0.5/32'], 'self': ['10.0.0.5/32']}, False)],
])
def test_new_to_peer_sets_follows_the_applied_record(capsys, host, fake_backend, steps):
    for sets, new in steps:
        result = apply_once(capsys, host, sets, ['10.0.0.5/32'])
        assert not result.get('failed'), result
        assert result['new_to_peer_sets'] is new, (sets, result)


def test_check_mode_reports_it_and_records_nothing(capsys, host, fake_backend):
    sets = {'cluster': ['10.0.0.0/24'], 'self': ['10.0.0.5/32']}
    assert apply_once(capsys, host, sets, ['10.0.0.5/32'], check_mode=True)['new_to_peer_sets'] is True
    assert apply_once(capsys, host, sets, ['10.0.0.5/32'], check_mode=True)['new_to_peer_sets'] is True


def test_without_own_addresses_nothing_is_said(capsys, host, fake_backend):
    result = apply_once(capsys, host, {'cluster': ['10.0.0.0/24'], 'self': ['10.0.0.5/32']}, [])
    assert 'new_to_peer_sets' not in result
