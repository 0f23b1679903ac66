"""kubeports.firewall.port_rules on a real ufw host of the lab (node4), over SSH, with
ufw_peer_sets: rules (one ufw rule per source): what ufw itself holds afterwards (its user
rules files), not only what the module reports. Peer sets as ipsets: test_ufw_peer_sets.py.

Ports 39520-39559 are used only by this file. The generic behaviour shared with firewalld
(idempotence, check mode on drift, prune, probes, locking) is in test_port_rules.py.
"""

import re

import pytest

from test_port_rules import module, probe

HOST, PEER, OTHER = 'node4', 'node5', 'node2'
PODS = ['10.244.0.0/16', 'fd85:ee78:d8a6:8607::/108']
TUPLE = re.compile(r'^### tuple ### (route:)?(\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+)(?: comment=([0-9a-f]+))?$')


def tuples(lab):
    """ufw's rules as it stored them: [(file, kind, action, proto, dport, dst, src, direction, comment)]."""
    found = []
    for name in ('user.rules', 'user6.rules'):
        text = lab.exec(HOST, ['cat', '/etc/ufw/' + name], check=True).stdout
        for line in text.splitlines():
            match = TUPLE.match(line)
            if match:
                route, action, proto, dport, dst, _sport, src, direction, comment = match.groups()
                found.append((name, 'route' if route else 'in', action, proto, dport, dst, src, direction,
                              bytes.fromhex(comment).decode() if comment else ''))
    return found


def ours(lab):
    return [rule for rule in tuples(lab) if rule[-1].startswith('kubeports')]


def files_stamp(lab):
    return lab.exec(HOST, ['stat', '-c', '%n %Y %s', '/etc/ufw/user.rules', '/etc/ufw/user6.rules'],
                    check=True).stdout


def before_input_lo_packets(lab):
    """Packets counted by ufw's "-i lo -j ACCEPT" rule in ufw-before-input: only a ufw
    reload, disable/enable or reset zeroes it (adds and deletes keep it)."""
    out = lab.exec(HOST, ['iptables', '-L', 'ufw-before-input', '-v', '-x', '-n'], check=True).stdout
    for line in out.splitlines():
        words = line.split()
        if len(words) > 5 and words[5] == 'lo':
            return int(words[0])
    raise AssertionError(out)


def loopback_traffic(lab):
    lab.exec(HOST, ['python3', '-c', 'import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n'
                    'for _ in range(20):\n    s.sendto(b"x", ("127.0.0.1", 9))\n'], check=True)


def peers(lab, host=PEER):
    return [lab.address(host) + '/32', lab.address(host, 6) + '/128']


def rule(protocol, port, sources, source_set):
    return {'protocol': protocol, 'port': port, 'sources': sources, 'source_set': source_set}


@pytest.fixture(scope='module')
def ufw_host(lab):
    if HOST not in lab.by_firewall('ufw'):
        pytest.skip('%s is not a ufw host in this lab' % HOST)
    assert module(lab, HOST, {'rules': [], 'backend': 'ufw', 'ufw_peer_sets': 'rules'})[0] in ('SUCCESS', 'CHANGED')
    yield HOST
    module(lab, HOST, {'rules': [], 'backend': 'ufw', 'ufw_peer_sets': 'rules'})


def test_many_ports_in_commented_multiport_rules(lab, ufw_host):
    many = [str(port) for port in range(39520, 39540)]  # 20 ports and a range: three rules per family
    rules = [rule('tcp', port, peers(lab), 'testpeers') for port in many]
    rules += [rule('tcp', '39540-39545', peers(lab), 'testpeers'), rule('tcp', '39546', ['0.0.0.0/0', '::/0'], None),
              rule('udp', '39547', peers(lab), 'testpeers')]
    status, result = module(lab, HOST, {'rules': rules, 'backend': 'ufw', 'ufw_peer_sets': 'rules'})
    assert status == 'CHANGED', result
    # The whole change ran in one process of ufw's Python frontend, not one ufw command each.
    assert not any('one process each' in message for message in result.get('messages') or []), result
    mine = ours(lab)
    assert set(item[-1] for item in mine) == {'kubeports:testpeers', 'kubeports:any'}
    tcp_groups = [item for item in mine if item[3] == 'tcp' and item[-1] == 'kubeports:testpeers']
    for item in tcp_groups:
        assert sum(2 if ':' in port else 1 for port in item[4].split(',')) <= 15, item
    for name, source in (('user.rules', lab.address(PEER)), ('user6.rules', lab.address(PEER, 6))):
        opened = set()
        for item in tcp_groups:
            if item[0] == name:
                assert item[6] == source
                opened.update(item[4].split(','))
        assert opened == set(many) | {'39540:39545'}
    assert ('user.rules', 'in', 'allow', 'tcp', '39546', '0.0.0.0/0', '0.0.0.0/0', 'in', 'kubeports:any') in mine
    assert ('user6.rules', 'in', 'allow', 'tcp', '39546', '::/0', '::/0', 'in', 'kubeports:any') in mine
    # The last port of the second group, and the range, from the peer only (IPv4 and IPv6).
    assert probe(lab, PEER, HOST, 'tcp', 39539)
    assert probe(lab, PEER, HOST, 'tcp', 39543, family=6)
    assert not probe(lab, OTHER, HOST, 'tcp', 39539)
    # Converged: no ufw command writes anything, in a real run or in check mode.
    stamp = files_stamp(lab)
    status, result = module(lab, HOST, {'rules': rules, 'backend': 'ufw', 'ufw_peer_sets': 'rules'})
    assert status == 'SUCCESS' and (result['diff']['added'], result['diff']['removed']) == ([], []), result
    assert module(lab, HOST, {'rules': rules, 'backend': 'ufw', 'ufw_peer_sets': 'rules'}, check=True)[0] == 'SUCCESS'
    assert files_stamp(lab) == stamp


def test_changes_never_reload_ufw(lab, ufw_host):
    rules = [rule('tcp', '39548', peers(lab), 'testpeers'), rule('tcp', '39549', peers(lab), 'testpeers')]
    module(lab, HOST, {'rules': rules[:1], 'backend': 'ufw', 'ufw_peer_sets': 'rules'})
    loopback_traffic(lab)
    counted = before_input_lo_packets(lab)
    assert counted >= 20
    # A new port is one new rule per family: the 39548 rules stay as they are.
    status, result = module(lab, HOST, {'rules': rules, 'backend': 'ufw', 'ufw_peer_sets': 'rules'})
    assert status == 'CHANGED' and result['diff']['removed'] == [], result
    assert sorted(result['diff']['added']) == [
        'allow tcp from %s/32 to anywhere port 39549 (kubeports:testpeers)' % lab.address(PEER),
        'allow tcp from %s/128 to anywhere port 39549 (kubeports:testpeers)' % lab.address(PEER, 6)]
    status, result = module(lab, HOST, {'rules': rules[1:], 'backend': 'ufw', 'ufw_peer_sets': 'rules'})
    assert status == 'CHANGED' and len(result['diff']['removed']) == 2 and result['diff']['added'] == [], result
    assert before_input_lo_packets(lab) >= counted
    assert 'Status: active' in lab.exec(HOST, ['ufw', 'status'], check=True).stdout


def test_the_users_rules_for_the_same_traffic_are_never_touched(lab, ufw_host):
    peer4 = lab.address(PEER)
    # Before: the user already allows 39550 from the peer over IPv4.
    lab.exec(HOST, ['ufw', 'allow', 'proto', 'tcp', 'from', peer4, 'to', 'any', 'port', '39550'], check=True)
    try:
        rules = [rule('tcp', '39550', peers(lab), 'testpeers'), rule('tcp', '39551', peers(lab), 'testpeers')]
        status, result = module(lab, HOST, {'rules': rules, 'backend': 'ufw', 'ufw_peer_sets': 'rules'})
        assert status == 'CHANGED', result
        assert not [line for line in result['diff']['added'] if '39550' in line and peer4 in line], result
        assert [line for line in result['diff']['added'] if '39550' in line and lab.address(PEER, 6) in line]
        # After: the user adds the same rule as the collection's 39551 one; ufw gives it the
        # user's (empty) comment, so it is the user's from now on.
        out = lab.exec(HOST, ['ufw', 'allow', 'proto', 'tcp', 'from', peer4, 'to', 'any', 'port', '39551'],
                       check=True).stdout
        assert 'Rule updated' in out
        status, result = module(lab, HOST, {'rules': [], 'backend': 'ufw', 'ufw_peer_sets': 'rules'})
        assert status == 'CHANGED', result
        left = [item for item in tuples(lab) if item[4] in ('39550', '39551')]
        assert sorted((item[0], item[4], item[6], item[-1]) for item in left) == [
            ('user.rules', '39550', peer4, ''), ('user.rules', '39551', peer4, '')]
        assert module(lab, HOST, {'rules': [], 'backend': 'ufw', 'ufw_peer_sets': 'rules'})[0] == 'SUCCESS'
    finally:
        for port in ('39550', '39551'):
            lab.exec(HOST, ['ufw', '--force', 'delete', 'allow', 'proto', 'tcp', 'from', peer4, 'to', 'any',
                            'port', port])


def test_trusted_networks_get_incoming_and_route_rules(lab, ufw_host):
    rules = [rule('all', '', PODS, 'pods')]
    status, result = module(lab, HOST, {'rules': rules, 'backend': 'ufw', 'ufw_peer_sets': 'rules'})
    assert status == 'CHANGED', result
    mine = set(item[1:7] for item in ours(lab))
    for cidr, anywhere in ((PODS[0], '0.0.0.0/0'), (PODS[1], '::/0')):
        assert ('in', 'allow', 'any', 'any', anywhere, cidr) in mine
        assert ('route', 'allow', 'any', 'any', anywhere, cidr) in mine
        assert ('route', 'allow', 'any', 'any', cidr, anywhere) in mine
    assert module(lab, HOST, {'rules': rules, 'backend': 'ufw', 'ufw_peer_sets': 'rules'})[0] == 'SUCCESS'
    assert module(lab, HOST, {'rules': [], 'backend': 'ufw', 'ufw_peer_sets': 'rules'})[0] == 'CHANGED'
    assert ours(lab) == []


def test_protocol_only_rules(lab, ufw_host):
    rules = [rule('gre', '', peers(lab), 'testpeers'), rule('icmp', '', peers(lab), 'testpeers')]
    status, result = module(lab, HOST, {'rules': rules, 'backend': 'ufw', 'ufw_peer_sets': 'rules'})
    assert status == 'CHANGED', result
    assert set((item[0], item[3], item[6]) for item in ours(lab)) == {
        ('user.rules', 'gre', lab.address(PEER)), ('user6.rules', 'gre', lab.address(PEER, 6))}
    assert any("icmp from peer set 'testpeers'" in line and "ufw's before rules" in line
               for line in result['messages']), result
    # IPIP cannot be expressed with ufw's CLI (and the shipped before.rules do not accept it).
    before = tuples(lab)
    status, result = module(lab, HOST, {'rules': rules + [rule('ipip', '', peers(lab), 'testpeers')],
                                        'backend': 'ufw', 'ufw_peer_sets': 'rules'})
    assert status == 'FAILED!', result
    assert "ufw cannot express ipip from peer set 'testpeers'" in result['msg'] and '"-p 4"' in result['msg']
    assert tuples(lab) == before
