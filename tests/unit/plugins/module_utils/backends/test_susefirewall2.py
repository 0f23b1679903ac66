import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import DesiredState
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.susefirewall2 import (
    desired_tokens, parse_config, plan_config, render_config)

CONFIG = '''## Path: Security/SuSEfirewall2
# Comment kept
FW_DEV_EXT="any eth0"
FW_SERVICES_EXT_TCP="ssh 8080"
FW_SERVICES_ACCEPT_EXT="
10.9.0.0/16,tcp,5000
"
FW_ROUTE="no"
FW_LOG_DROP_CRIT=yes # trailing comment
'''


def test_parse_config_multiline_and_comments():
    found = parse_config(CONFIG)
    assert found['FW_SERVICES_EXT_TCP'][2] == 'ssh 8080'
    assert found['FW_SERVICES_ACCEPT_EXT'][2].split() == ['10.9.0.0/16,tcp,5000']
    assert found['FW_SERVICES_ACCEPT_EXT'][:2] == (4, 6)
    assert found['FW_LOG_DROP_CRIT'][2] == 'yes'


def test_render_keeps_everything_else():
    text = render_config(CONFIG, {'FW_SERVICES_EXT_TCP': 'ssh 8080 6443', 'FW_TRUSTED_NETS': '10.233.0.0/17'})
    assert '# Comment kept' in text and 'FW_DEV_EXT="any eth0"' in text
    assert 'FW_SERVICES_EXT_TCP="ssh 8080 6443"' in text
    assert text.rstrip().endswith('FW_TRUSTED_NETS="10.233.0.0/17"')
    assert '10.9.0.0/16,tcp,5000' in text


DESIRED = DesiredState.from_rules([
    {'protocol': 'tcp', 'port': '30000-32767', 'sources': ['0.0.0.0/0', '::/0'], 'source_set': None},
    {'protocol': 'udp', 'port': '8472', 'sources': ['192.0.2.0/31'], 'source_set': 'cluster'},
    {'protocol': 'ipip', 'port': '', 'sources': ['192.0.2.0/31'], 'source_set': 'cluster'},
    {'protocol': 'all', 'port': '', 'sources': ['10.233.0.0/17'], 'source_set': 'pods'},
])


def test_desired_tokens():
    tokens, route = desired_tokens(DESIRED)
    assert route is True
    assert tokens['FW_SERVICES_EXT_TCP'] == ['30000:32767']
    assert tokens['FW_SERVICES_ACCEPT_EXT'] == ['192.0.2.0/31,ipip', '192.0.2.0/31,udp,8472']
    assert tokens['FW_TRUSTED_NETS'] == ['10.233.0.0/17']


@pytest.mark.parametrize('owned, prune, added, removed', [
    ({}, True, ['FW_ROUTE yes', 'FW_SERVICES_ACCEPT_EXT 192.0.2.0/31,ipip',
                'FW_SERVICES_ACCEPT_EXT 192.0.2.0/31,udp,8472', 'FW_SERVICES_EXT_TCP 30000:32767',
                'FW_TRUSTED_NETS 10.233.0.0/17'], []),
    # 8080 was ours and is no longer wanted: pruned; the user's ssh stays.
    ({'FW_SERVICES_EXT_TCP': ['8080']}, True,
     ['FW_ROUTE yes', 'FW_SERVICES_ACCEPT_EXT 192.0.2.0/31,ipip', 'FW_SERVICES_ACCEPT_EXT 192.0.2.0/31,udp,8472',
      'FW_SERVICES_EXT_TCP 30000:32767', 'FW_TRUSTED_NETS 10.233.0.0/17'], ['FW_SERVICES_EXT_TCP 8080']),
    ({'FW_SERVICES_EXT_TCP': ['8080']}, False,
     ['FW_ROUTE yes', 'FW_SERVICES_ACCEPT_EXT 192.0.2.0/31,ipip', 'FW_SERVICES_ACCEPT_EXT 192.0.2.0/31,udp,8472',
      'FW_SERVICES_EXT_TCP 30000:32767', 'FW_TRUSTED_NETS 10.233.0.0/17'], []),
])
def test_plan_config(owned, prune, added, removed):
    tokens, route = desired_tokens(DESIRED)
    text, got_added, got_removed, new_owned = plan_config(CONFIG, tokens, route, owned, prune)
    assert sorted(got_added) == added and got_removed == removed
    assert new_owned['FW_ROUTE_BEFORE'] == 'no'
    assert 'ssh' in parse_config(text)['FW_SERVICES_EXT_TCP'][2].split()
    again = plan_config(text, tokens, route, new_owned, prune)
    assert again[0] == text and again[1] == [] and again[2] == []


def test_route_is_restored_when_no_longer_needed():
    tokens, route = desired_tokens(DESIRED)
    text, _added, _removed, owned = plan_config(CONFIG, tokens, route, {}, True)
    empty = dict((name, []) for name in tokens)
    final, added, removed, owned = plan_config(text, empty, False, owned, True)
    assert 'FW_ROUTE yes' in removed and added == []
    assert parse_config(final)['FW_ROUTE'][2] == 'no'
    assert parse_config(final)['FW_SERVICES_EXT_TCP'][2].split() == ['ssh', '8080']
    assert 'FW_ROUTE_BEFORE' not in owned
