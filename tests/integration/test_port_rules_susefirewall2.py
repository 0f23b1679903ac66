"""kubeports.firewall.port_rules on the lab's SuSEfirewall2 host (specs/all-backends.yml).

The lab's SuSEfirewall2 is the real sysconfig file plus a stand-in start script (docs/lab.md
says which variables it turns into iptables rules). Ports 39501-39509 as in test_port_rules.
"""

import json

import pytest

from test_port_rules import assert_only_peer_reaches, assert_sources_without_a_set_name_admit_those_only, module, rules_for

CONFIG = '/etc/sysconfig/SuSEfirewall2'
STATE = '/var/lib/kubeports/susefirewall2.json'
PODS = ['10.244.0.0/16', 'fd85:ee78:d8a6:8607::/108']


@pytest.fixture(scope='module')
def suse(lab):
    hosts = lab.by_firewall('susefirewall2')
    if not hosts:
        pytest.skip('no susefirewall2 host in this lab (run with KPLAB_SPEC=.../all-backends.yml)')
    host = hosts[0]
    peer = lab.by_firewall('firewalld')[0]
    other = lab.by_firewall('none')[0]
    original = config(lab, host)
    yield host, peer, other
    module(lab, host, {'rules': []})
    assert config(lab, host) == original


def config(lab, host):
    return lab.exec(host, ['cat', CONFIG], check=True).stdout


def state(lab, host):
    out = lab.exec(host, ['cat', STATE]).stdout
    return json.loads(out) if out else None


def value(text, name):
    for line in text.splitlines():
        if line.startswith(name + '='):
            return line.split('=', 1)[1].split('#')[0].strip().strip('"').split()
    return []


def iptables(lab, host, family=4):
    return lab.exec(host, ['iptables-save' if family == 4 else 'ip6tables-save'], check=True).stdout


def test_apply_keeps_user_tokens_and_is_idempotent(lab, suse):
    host, peer, _other = suse
    before = config(lab, host)
    user_tcp = value(before, 'FW_SERVICES_EXT_TCP')
    status, result = module(lab, host, {'rules': rules_for(lab, peer)})
    assert status == 'CHANGED', result
    assert result['backend'] == 'susefirewall2'
    assert result['diff']['before'] == before and result['diff']['after'] == config(lab, host)
    assert 'SuSEfirewall2 restarted with the new configuration' in result['messages']
    after = config(lab, host)
    assert value(after, 'FW_SERVICES_EXT_TCP') == user_tcp + ['39501']
    accept = value(after, 'FW_SERVICES_ACCEPT_EXT')
    assert '%s/32,tcp,39502' % lab.address(peer) in accept
    assert '%s/32,udp,39503' % lab.address(peer) in accept
    assert '%s/32,tcp,39504:39505' % lab.address(peer) in accept
    assert '%s/128,tcp,39502' % lab.address(peer, 6) in accept
    assert state(lab, host)['pending_start'] is False
    status, result = module(lab, host, {'rules': rules_for(lab, peer)})
    assert status == 'SUCCESS', result
    assert config(lab, host) == after


def test_probes_allowed_peer_only(lab, suse):
    host, peer, other = suse
    module(lab, host, {'rules': rules_for(lab, peer)})
    assert_only_peer_reaches(lab, host, peer, other)


def test_sources_without_a_set_name_admit_those_sources_only(lab, suse):
    host, peer, other = suse
    assert_sources_without_a_set_name_admit_those_only(lab, host, peer, other)


def test_check_mode_on_drift_reports_and_touches_nothing(lab, suse):
    host, peer, _other = suse
    module(lab, host, {'rules': rules_for(lab, peer)})
    token = '%s/32,tcp,39502' % lab.address(peer)
    lab.exec(host, ['sed', '-i', 's#%s##' % token, CONFIG], check=True)
    drifted = config(lab, host)
    status, result = module(lab, host, {'rules': rules_for(lab, peer)}, check=True)
    assert status == 'CHANGED'
    assert result['diff']['added'] == ['FW_SERVICES_ACCEPT_EXT ' + token]
    assert config(lab, host) == drifted
    assert module(lab, host, {'rules': rules_for(lab, peer)})[0] == 'CHANGED'
    assert module(lab, host, {'rules': rules_for(lab, peer)})[0] == 'SUCCESS'


def test_prune_removes_only_own_tokens_and_keeps_comments(lab, suse):
    host, peer, _other = suse
    rules = rules_for(lab, peer)
    module(lab, host, {'rules': []})
    original = config(lab, host)
    # The user's own token with a trailing comment, and a comment line.
    lab.exec(host, ['sed', '-i', '-e', 's@^FW_SERVICES_EXT_UDP=""@FW_SERVICES_EXT_UDP="39509" # syslog relay@',
                    '-e', '1a # kept: a note of the user', CONFIG], check=True)
    edited = config(lab, host)
    assert edited != original
    module(lab, host, {'rules': rules})
    status, result = module(lab, host, {'rules': rules[:2]})
    assert status == 'CHANGED', result
    assert set(result['diff']['removed']) == {
        'FW_SERVICES_ACCEPT_EXT %s/32,udp,39503' % lab.address(peer),
        'FW_SERVICES_ACCEPT_EXT %s/128,udp,39503' % lab.address(peer, 6),
        'FW_SERVICES_ACCEPT_EXT %s/32,tcp,39504:39505' % lab.address(peer),
        'FW_SERVICES_ACCEPT_EXT %s/128,tcp,39504:39505' % lab.address(peer, 6)}
    text = config(lab, host)
    assert 'FW_SERVICES_EXT_UDP="39509" # syslog relay' in text and '# kept: a note of the user' in text
    # Everything the collection added goes: the user's file is back byte for byte.
    assert module(lab, host, {'rules': []})[0] == 'CHANGED'
    assert config(lab, host) == edited
    lab.exec(host, ['sh', '-c', 'cat > %s' % CONFIG], input=original, check=True)
    lab.exec(host, ['SuSEfirewall2', 'start'], check=True)


def test_trusted_networks_turn_routing_on_and_back_off(lab, suse):
    host, peer, _other = suse
    module(lab, host, {'rules': []})
    original = config(lab, host)
    assert value(original, 'FW_ROUTE') == ['no']
    rules = [{'protocol': 'all', 'port': '', 'sources': PODS, 'source_set': 'pods'},
             {'protocol': 'ipip', 'port': '', 'sources': [lab.address(peer) + '/32'], 'source_set': 'cluster'}]
    status, result = module(lab, host, {'rules': rules})
    assert status == 'CHANGED', result
    text = config(lab, host)
    assert value(text, 'FW_ROUTE') == ['yes']
    assert value(text, 'FW_TRUSTED_NETS') == PODS
    assert value(text, 'FW_FORWARD') == ['%s,0/0' % PODS[0], '0/0,%s' % PODS[0], '%s,::/0' % PODS[1],
                                         '::/0,%s' % PODS[1]]
    # IPIP is IP protocol 4 (iptables' "ipip" would be protocol 94).
    assert value(text, 'FW_SERVICES_ACCEPT_EXT') == ['%s/32,4' % lab.address(peer)]
    rules4 = iptables(lab, host)
    assert ':FORWARD ACCEPT' in rules4 and '-A input_ext -s %s -j ACCEPT' % PODS[0] in rules4
    assert any(line.startswith('-A input_ext -s %s/32 -p ' % lab.address(peer)) and
               line.split(' -p ')[1].split()[0] in ('4', 'ipencap', 'ipv4') for line in rules4.splitlines())
    assert '-A input_ext -s %s -j ACCEPT' % PODS[1] in iptables(lab, host, 6)
    assert module(lab, host, {'rules': rules})[0] == 'SUCCESS'
    status, result = module(lab, host, {'rules': []})
    assert status == 'CHANGED' and 'FW_ROUTE yes' in result['diff']['removed'], result
    assert config(lab, host) == original
    assert ':FORWARD DROP' in iptables(lab, host)


def test_a_stopped_susefirewall2_is_written_but_not_started(lab, suse):
    host, peer, _other = suse
    module(lab, host, {'rules': []})
    lab.exec(host, ['SuSEfirewall2', 'stop'], check=True)
    try:
        status, result = module(lab, host, {'rules': rules_for(lab, peer)})
        assert status == 'CHANGED', result
        assert any('SuSEfirewall2 is not running' in line for line in result['messages']), result
        assert '39501' in value(config(lab, host), 'FW_SERVICES_EXT_TCP')
        assert lab.exec(host, ['SuSEfirewall2', 'status']).returncode != 0
        assert ':INPUT ACCEPT' in iptables(lab, host)
    finally:
        lab.exec(host, ['SuSEfirewall2', 'start'], check=True)
    assert module(lab, host, {'rules': rules_for(lab, peer)})[0] == 'SUCCESS'


def test_refuses_restart_on_a_kubernetes_host(lab, suse):
    host, peer, _other = suse
    module(lab, host, {'rules': []})
    before = config(lab, host)
    record = state(lab, host)
    lab.exec(host, ['iptables', '-t', 'nat', '-N', 'KUBE-SERVICES'], check=True)
    try:
        status, result = module(lab, host, {'rules': rules_for(lab, peer)}, check=True)
        assert status == 'CHANGED' and any('refused on this host' in line for line in result['messages']), result
        status, result = module(lab, host, {'rules': rules_for(lab, peer)})
        assert status == 'FAILED!' and 'allow_restart' in result['msg'], result
        assert 'did not create (KUBE-SERVICES)' in result['msg'] and 'nothing was written' in result['msg']
        assert config(lab, host) == before and state(lab, host) == record
        status, result = module(lab, host, {'rules': rules_for(lab, peer), 'allow_restart': True})
        assert status == 'CHANGED', result
        assert any('because allow_restart is true' in line for line in result['messages']), result
    finally:
        lab.exec(host, ['iptables', '-t', 'nat', '-X', 'KUBE-SERVICES'])
