"""kubeports.firewall.port_rules on the lab's SuSEfirewall2 host (specs/all-backends.yml).

The lab's SuSEfirewall2 is the real sysconfig file plus a stand-in start script (docs/lab.md
says which variables it turns into iptables rules). Ports 39501-39509 as in test_port_rules.
"""

import pytest

from test_port_rules import module, probe, rules_for

CONFIG = '/etc/sysconfig/SuSEfirewall2'


@pytest.fixture(scope='module')
def suse(lab):
    hosts = lab.by_firewall('susefirewall2')
    if not hosts:
        pytest.skip('no susefirewall2 host in this lab (run with KPLAB_SPEC=.../all-backends.yml)')
    host = hosts[0]
    peer = lab.by_firewall('firewalld')[0]
    other = lab.by_firewall('none')[0]
    yield host, peer, other
    module(lab, host, {'rules': []})


def config(lab, host):
    return lab.exec(host, ['cat', CONFIG], check=True).stdout


def value(text, name):
    for line in text.splitlines():
        if line.startswith(name + '='):
            return line.split('=', 1)[1].strip('"').split()
    return []


def test_apply_keeps_user_tokens_and_is_idempotent(lab, suse):
    host, peer, _other = suse
    before = config(lab, host)
    user_tcp = value(before, 'FW_SERVICES_EXT_TCP')
    status, result = module(lab, host, {'rules': rules_for(lab, peer)})
    assert status == 'CHANGED', result
    assert result['backend'] == 'susefirewall2'
    assert result['diff']['before'] == before and result['diff']['after'] != before
    after = config(lab, host)
    assert value(after, 'FW_SERVICES_EXT_TCP') == user_tcp + ['39501']
    accept = value(after, 'FW_SERVICES_ACCEPT_EXT')
    assert '%s/32,tcp,39502' % lab.address(peer) in accept
    assert '%s/32,udp,39503' % lab.address(peer) in accept
    assert '%s/32,tcp,39504:39505' % lab.address(peer) in accept
    status, result = module(lab, host, {'rules': rules_for(lab, peer)})
    assert status == 'SUCCESS', result
    assert config(lab, host) == after


def test_probes_allowed_peer_only(lab, suse):
    host, peer, other = suse
    module(lab, host, {'rules': rules_for(lab, peer)})
    assert probe(lab, peer, host, 'tcp', 39502)
    assert probe(lab, other, host, 'tcp', 39501)
    assert not probe(lab, other, host, 'tcp', 39502)


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


def test_prune_removes_only_own_tokens(lab, suse):
    host, peer, _other = suse
    rules = rules_for(lab, peer)
    module(lab, host, {'rules': rules})
    lab.exec(host, ['sed', '-i', 's#^FW_SERVICES_EXT_UDP="#FW_SERVICES_EXT_UDP="39509 #', CONFIG], check=True)
    status, result = module(lab, host, {'rules': rules[:2]})
    assert status == 'CHANGED', result
    assert set(result['diff']['removed']) == {
        'FW_SERVICES_ACCEPT_EXT %s/32,udp,39503' % lab.address(peer),
        'FW_SERVICES_ACCEPT_EXT %s/128,udp,39503' % lab.address(peer, 6),
        'FW_SERVICES_ACCEPT_EXT %s/32,tcp,39504:39505' % lab.address(peer),
        'FW_SERVICES_ACCEPT_EXT %s/128,tcp,39504:39505' % lab.address(peer, 6)}
    assert '39509' in value(config(lab, host), 'FW_SERVICES_EXT_UDP')


def test_refuses_restart_on_a_kubernetes_host(lab, suse):
    host, peer, _other = suse
    module(lab, host, {'rules': []})
    before = config(lab, host)
    lab.exec(host, ['iptables', '-t', 'nat', '-N', 'KUBE-SERVICES'], check=True)
    try:
        status, result = module(lab, host, {'rules': rules_for(lab, peer)})
        assert status == 'FAILED!' and 'allow_restart' in result['msg'], result
        assert config(lab, host) == before
        status, result = module(lab, host, {'rules': rules_for(lab, peer), 'allow_restart': True})
        assert status == 'CHANGED', result
    finally:
        lab.exec(host, ['iptables', '-t', 'nat', '-X', 'KUBE-SERVICES'])
