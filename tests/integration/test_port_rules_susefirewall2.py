"""kubeports.firewall.port_rules on the lab's SuSEfirewall2 host (specs/all-backends.yml).

The lab's SuSEfirewall2 is the real sysconfig file plus a stand-in start script (docs/lab.md
says which variables it turns into iptables rules). Ports 39501-39509 as in test_port_rules.
"""

import json
import re
import sys
from pathlib import Path

import pytest

from test_port_rules import assert_only_peer_reaches, assert_sources_without_a_set_name_admit_those_only, module, rules_for

sys.path.insert(0, str(Path(__file__).resolve().parent / 'lab'))
import cluster  # noqa: E402  pylint: disable=wrong-import-position

CONFIG = '/etc/sysconfig/SuSEfirewall2'
CUSTOM = '/etc/sysconfig/scripts/SuSEfirewall2-kubeports'
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
    # As the real script: FORWARD stays DROP; eth0 (ext) is dispatched to forward_ext, where
    # FW_FORWARD applies; the trusted networks are accepted in input_ext.
    assert ':FORWARD DROP' in rules4 and '-A FORWARD -i eth0 -j forward_ext' in rules4
    assert has_rule(rules4, '-A forward_ext -s %s -m conntrack ' % PODS[0], 'ACCEPT')
    assert has_rule(rules4, '-A forward_ext -d %s -m conntrack --ctstate RELATED,ESTABLISHED' % PODS[0], 'ACCEPT')
    assert has_rule(rules4, '-A input_ext -s %s ' % PODS[0], 'ACCEPT')
    assert any(line.startswith('-A input_ext -s %s/32 -p ' % lab.address(peer)) and
               line.split(' -p ')[1].split()[0] in ('4', 'ipencap', 'ipv4') for line in rules4.splitlines())
    assert has_rule(iptables(lab, host, 6), '-A input_ext -s %s ' % PODS[1], 'ACCEPT')
    assert module(lab, host, {'rules': rules})[0] == 'SUCCESS'
    status, result = module(lab, host, {'rules': []})
    assert status == 'CHANGED' and 'FW_ROUTE yes' in result['diff']['removed'], result
    assert config(lab, host) == original
    assert ':FORWARD DROP' in iptables(lab, host) and '-j forward_ext' not in iptables(lab, host)


def has_rule(saved, start, target):
    return any(line.startswith(start) and line.endswith('-j ' + target) for line in saved.splitlines())


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


# ---------------------------------------------------------------- forwarded pod traffic

OVERLAY_PODS = ['10.244.0.0/16', 'fd00:10:244::/56']
POD_INTERFACES = ['flannel.1', 'flannel-v6.1', 'cni0']


def overlay_rules(lab, node, trusted_interfaces):
    """The rules the planner sends a flannel node: VXLAN and a host port from the other node,
    and the pod network trusted by interface (now) or by source (before)."""
    peer = [lab.address(node) + '/32', lab.address(node, 6) + '/128']
    rules = [{'protocol': proto, 'port': port, 'sources': peer, 'source_set': 'cluster'}
             for proto, port in (('udp', '8472'), ('tcp', '53'), ('udp', '53'))]
    if trusted_interfaces:
        rules.append({'protocol': 'all', 'port': '', 'sources': ['0.0.0.0/0', '::/0'], 'source_set': None,
                      'interfaces': POD_INTERFACES})
    else:
        rules.append({'protocol': 'all', 'port': '', 'sources': OVERLAY_PODS, 'source_set': 'pods'})
    return rules


def ill_routing(lab, host, family=4):
    """Packets counted by the FORWARD rule that logs "SFW2-FWD-ILL-ROUTING"."""
    out = lab.exec(host, ['iptables' if family == 4 else 'ip6tables', '-L', 'FORWARD', '-v', '-x', '-n'],
                   check=True).stdout
    return sum(int(line.split()[0]) for line in out.splitlines() if 'SFW2-FWD-ILL-ROUTING' in line)


def results(report, kind, src=None, dst=None):
    return [r for r in report.get(kind, []) if (src is None or r['src'] == src) and (dst is None or r['dst'] == dst)]


def spoofs(lab, ov, attacker, node, other):
    """An outsider's packets from a pod address of the other node: to a restricted port of the
    node (53, open to the other node only) and, routed through the node, to its pod."""
    sent = []
    for family in ov.families:
        pod_address = ov.pod(other).addr[family]
        sent.append(cluster.attack_direct(lab, ov, attacker, node, 53, proto='udp', family=family, spoof=pod_address))
        sent.append(cluster.attack_direct(lab, ov, attacker, node, ov.echo_port, proto='udp', family=family,
                                          spoof=pod_address, to_pod=True))
    return cluster.wait_arrivals(sent, timeout=3.0)


def test_pod_interfaces_forward_pod_traffic_and_refuse_spoofed_pod_addresses(lab, suse):
    host, _peer, other = suse
    attacker = lab.by_firewall('ufw')[0]
    module(lab, host, {'rules': []})
    original = config(lab, host)
    # Before: the pod network trusted by source (FW_TRUSTED_NETS, FW_FORWARD), the firewall
    # started before the CNI made its devices (as at boot).
    assert module(lab, host, {'rules': overlay_rules(lab, other, False)})[0] == 'CHANGED'
    ov = cluster.overlay_up(lab, [host, other], mode='flannel', pod_cidr4=OVERLAY_PODS[0], pod_cidr6=OVERLAY_PODS[1],
                            nodeport_node=other, lifetime=300)
    try:
        dropped = ill_routing(lab, host)
        report = cluster.prove_overlay(lab, ov, kinds=('pod_to_pod', 'node_to_pod', 'nodeport'))
        # Decapsulated pod traffic arrives on flannel.1, in no zone: dropped as ILL-ROUTING.
        assert not any(r['ok'] for r in results(report, 'pod_to_pod')), report
        assert not any(r['ok'] for r in results(report, 'node_to_pod', src=other)), report
        assert not any(r['ok'] for r in results(report, 'nodeport', dst=host)), report
        assert ill_routing(lab, host) > dropped
        # And a spoofed pod address was trusted on the node network.
        assert any(attack['arrived'] for attack in spoofs(lab, ov, attacker, host, other))
        # Those spoofed flows are conntrack entries now (the attacker's packets reuse their
        # ports): gone, so that the next ones are judged as new.
        for family in ov.families:
            lab.exec(host, ['conntrack', '-D', '-f', 'ipv%d' % family, '-s', ov.pod(other).addr[family]])

        # Now: the CNI's devices trusted, the pod network no longer trusted by source.
        status, result = module(lab, host, {'rules': overlay_rules(lab, other, True), 'allow_restart': True})
        assert status == 'CHANGED', result
        assert set(result['diff']['added']) >= set(['FW_CUSTOMRULES ' + CUSTOM] + [
            '%s trusts interface %s' % (CUSTOM, name) for name in POD_INTERFACES])
        assert 'FW_TRUSTED_NETS %s' % OVERLAY_PODS[0] in result['diff']['removed']
        text = config(lab, host)
        assert value(text, 'FW_CUSTOMRULES') == [CUSTOM] and value(text, 'FW_ROUTE') == ['yes']
        assert value(text, 'FW_TRUSTED_NETS') == [] and value(text, 'FW_FORWARD') == []
        assert lab.exec(host, ['stat', '-c', '%a %u %g', CUSTOM], check=True).stdout.split() == ['644', '0', '0']
        assert state(lab, host)['interfaces'] == sorted(POD_INTERFACES)
        assert module(lab, host, {'rules': overlay_rules(lab, other, True), 'allow_restart': True})[0] == 'SUCCESS'
        for family in (4, 6):
            saved = iptables(lab, host, family)
            for name in POD_INTERFACES:
                assert '-A INPUT -i %s -j ACCEPT' % name in saved and '-A FORWARD -i %s -j ACCEPT' % name in saved
            assert re.search(r'^-A FORWARD -m conntrack --ctstate DNAT -j ACCEPT$', saved, re.M)
        report = cluster.prove_overlay(lab, ov)
        assert cluster.failures(report) == [], report
        arrived = [(attack['kind'], attack['src'], attack['dst'], attack['dport'])
                   for attack in spoofs(lab, ov, attacker, host, other) if attack['arrived']]
        assert arrived == []

        # As at boot: SuSEfirewall2 starts before the CNI makes its devices.
        cluster.overlay_down(lab, ov)
        lab.exec(host, ['SuSEfirewall2', 'start'], check=True)
        ov = cluster.overlay_up(lab, [host, other], mode='flannel', pod_cidr4=OVERLAY_PODS[0],
                                pod_cidr6=OVERLAY_PODS[1], nodeport_node=other, lifetime=300)
        report = cluster.prove_overlay(lab, ov)
        assert cluster.failures(report) == [], report
    finally:
        cluster.overlay_down(lab, ov)
    status, result = module(lab, host, {'rules': []})
    assert status == 'CHANGED' and 'FW_CUSTOMRULES %s' % CUSTOM in result['diff']['removed'], result
    assert config(lab, host) == original
    assert lab.exec(host, ['test', '-e', CUSTOM]).returncode != 0
