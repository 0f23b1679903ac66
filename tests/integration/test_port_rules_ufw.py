"""kubeports.firewall.port_rules on a real ufw host of the lab (node4), over SSH, with
ufw_peer_sets: rules (one ufw rule per source): what ufw itself holds afterwards (its user
rules files), not only what the module reports. Peer sets as ipsets: test_ufw_peer_sets.py.

Ports 39520-39559 are used only by this file. The generic behaviour shared with firewalld
(idempotence, check mode on drift, prune, probes, locking) is in test_port_rules.py.
"""

import re
import sys
from pathlib import Path

import pytest

from test_port_rules import module, probe

sys.path.insert(0, str(Path(__file__).resolve().parent / 'lab'))
import cluster  # noqa: E402  pylint: disable=wrong-import-position

HOST, PEER, OTHER = 'node4', 'node5', 'node2'
PODS = ['10.244.0.0/16', 'fd85:ee78:d8a6:8607::/108']
TUPLE = re.compile(r'^### tuple ### (route:)?(\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+)(?: comment=([0-9a-f]+))?$')


def tuples(lab, host=HOST):
    """ufw's rules as it stored them: [(file, kind, action, proto, dport, dst, src, direction, comment)]."""
    found = []
    for name in ('user.rules', 'user6.rules'):
        text = lab.exec(host, ['cat', '/etc/ufw/' + name], check=True).stdout
        for line in text.splitlines():
            match = TUPLE.match(line)
            if match:
                route, action, proto, dport, dst, _sport, src, direction, comment = match.groups()
                found.append((name, 'route' if route else 'in', action, proto, dport, dst, src, direction,
                              bytes.fromhex(comment).decode() if comment else ''))
    return found


def ours(lab, host=HOST):
    return [rule for rule in tuples(lab, host) if rule[-1].startswith('kubeports')]


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


# The CNI's devices trusted (pod_interfaces) on both ufw hosts of the lab, with real pod traffic:
# a flannel VXLAN overlay over node3 and node4 (tests/integration/lab/cluster.py: flannel.1,
# flannel-v6.1, cni0, a pod per node, kube-proxy's NodePort DNAT in table ip/ip6 kplab-kubeproxy).
NODES = ['node3', 'node4']
ATTACKER, NODEPORT_CLIENT = 'node2', 'node1'
POD_INTERFACES = ['flannel.1', 'flannel-v6.1', 'cni0']
LIFETIME = 400
DNAT_LINE = '-m conntrack --ctstate DNAT -m comment --comment kubeports:dnat -j ACCEPT'


def cluster_rules(lab, ov, trust):
    """VXLAN and the nodes' DNS port (port 53: where pods reach a node's lab address, masqueraded)
    from the nodes; the pods trusted on the CNI's devices, or, as before, by source."""
    nodes = [lab.address(host) + '/32' for host in NODES] + [lab.address(host, 6) + '/128' for host in NODES]
    rules = [rule('udp', '8472', nodes, 'cluster'), rule('tcp', '53', nodes, 'cluster'),
             rule('udp', '53', nodes, 'cluster')]
    if trust == 'interfaces':
        rules.append(dict(rule('all', '', ['0.0.0.0/0', '::/0'], None), interfaces=POD_INTERFACES))
    else:
        rules.append(rule('all', '', [ov.pod_cidr4, ov.pod_cidr6], 'pods'))
    return rules


def apply_nodes(lab, rules, check=False):
    return dict(zip(NODES, cluster.parallel(
        lambda host: module(lab, host, {'rules': rules, 'backend': 'ufw', 'ufw_peer_sets': 'rules'}, check=check),
        NODES)))


def spoofed_pod_packets(lab, ov):
    """From a host of the node network, packets with a pod's source address (node3's pod) to
    node4: to a port only the nodes may reach, and to node4's pod (node4 as next hop)."""
    return [cluster.attack_direct(lab, ov, ATTACKER, HOST, 53, proto='udp'),
            cluster.attack_direct(lab, ov, ATTACKER, HOST, 53, proto='tcp', family=6),
            cluster.attack_direct(lab, ov, ATTACKER, HOST, ov.echo_port, proto='udp', to_pod=True),
            cluster.attack_direct(lab, ov, ATTACKER, HOST, ov.echo_port, proto='tcp', to_pod=True, family=6)]


def dnat_lines(lab, host):
    """The DNAT line in the running after-forward chains and in the after rules files."""
    found = []
    for command, chain in (('iptables', 'ufw-after-forward'), ('ip6tables', 'ufw6-after-forward')):
        out = lab.exec(host, [command, '-S', chain], check=True).stdout
        found += [(command, line.replace('"', '')) for line in out.splitlines() if 'kubeports' in line]
    for name in ('after.rules', 'after6.rules'):
        text = lab.exec(host, ['cat', '/etc/ufw/' + name], check=True).stdout
        found += [(name, line) for line in text.splitlines() if 'ctstate DNAT' in line]
    return sorted(found)


def summary(results):
    return '\n'.join('%s %s->%s v%s %s %s: %s' % (item['kind'], item['src'], item['dst'], item['family'],
                                                  item['proto'], item['address'], item['error'] or item['served_by'])
                     for item in results)


def pods_to_their_node(lab, ov):
    """Each node's pod to its own node (in on cni0) at the cni0 address, TCP and UDP, both families."""
    results = []
    for node in NODES:
        pod = ov.pod(node)
        targets = [cluster.target(proto, ov.gateway[(node, family)], 53) for family in ov.families
                   for proto in ('tcp', 'udp')]
        results += cluster.probe(lab, node, targets, netns=pod.netns)
    return results


@pytest.fixture(scope='module')
def flannel_on_ufw(lab):
    if set(NODES) - set(lab.by_firewall('ufw')):
        pytest.skip('%s are not ufw hosts in this lab' % ', '.join(NODES))
    ov = cluster.overlay_up(lab, NODES, mode='flannel', lifetime=LIFETIME)
    try:
        yield ov
    finally:
        cluster.overlay_down(lab, ov)
        apply_nodes(lab, [])


def test_pod_interfaces_trusted_forwarded_and_dnat_spoofed_pod_sources_refused(lab, flannel_on_ufw):
    ov = flannel_on_ufw
    kinds = ('pod_to_pod', 'pod_to_host', 'node_to_pod', 'nodeport')
    apply_nodes(lab, [])
    # ufw's defaults (deny incoming, forward DROP): the overlay's traffic does not pass.
    report = cluster.prove_overlay(lab, ov, kinds=('pod_to_pod', 'nodeport'), protos=('tcp',), timeout=1,
                                   client=NODEPORT_CLIENT)
    assert not [item for item in report['pod_to_pod'] + report['nodeport'] if item['ok']], report

    # The former trust by source on every interface: a pod address spoofed from the node
    # network reaches a port only the nodes may reach, and is routed to a pod (so the
    # attacker's packets are real and nothing else, such as rp_filter, drops them).
    for host, (status, result) in apply_nodes(lab, cluster_rules(lab, ov, 'sources')).items():
        assert status == 'CHANGED', (host, result)
    arrived = cluster.wait_arrivals(spoofed_pod_packets(lab, ov), timeout=5)
    assert all(item['arrived'] for item in arrived), arrived

    # The CNI's devices trusted instead: the source-based rules go, the interface rules and the
    # DNAT line come, on both hosts; check mode first reports the same diff and changes nothing.
    before = dict((host, (tuples(lab, host), dnat_lines(lab, host))) for host in NODES)
    checked = apply_nodes(lab, cluster_rules(lab, ov, 'interfaces'), check=True)
    assert dict((host, (tuples(lab, host), dnat_lines(lab, host))) for host in NODES) == before
    results = apply_nodes(lab, cluster_rules(lab, ov, 'interfaces'))
    for host, (status, result) in results.items():
        assert status == 'CHANGED' and checked[host][0] == 'CHANGED', (host, result, checked[host])
        assert (checked[host][1]['diff']['added'], checked[host][1]['diff']['removed']) == (
            result['diff']['added'], result['diff']['removed'])
        added, removed = result['diff']['added'], result['diff']['removed']
        for name in POD_INTERFACES:
            assert added.count('allow in on %s from anywhere to anywhere (kubeports:interface)' % name) == 2
            assert added.count('route allow in on %s from anywhere to anywhere (kubeports:interface)' % name) == 2
        assert "route allow connections this host DNAT'd (kubeports:dnat, after.rules)" in added
        assert "route allow connections this host DNAT'd (kubeports:dnat, after6.rules)" in added
        assert sorted(line for line in removed if 'kubeports:pods' in line) == sorted(
            ['allow from %s to anywhere (kubeports:pods)' % ov.pod_cidr4,
             'allow from %s to anywhere (kubeports:pods)' % ov.pod_cidr6,
             'route allow from %s to anywhere (kubeports:pods)' % ov.pod_cidr4,
             'route allow from %s to anywhere (kubeports:pods)' % ov.pod_cidr6,
             'route allow from anywhere to %s (kubeports:pods)' % ov.pod_cidr4,
             'route allow from anywhere to %s (kubeports:pods)' % ov.pod_cidr6]), result
        mine = [item for item in ours(lab, host) if item[-1] == 'kubeports:interface']
        assert sorted(mine) == sorted(
            (name, kind, 'allow', 'any', 'any', anywhere, anywhere, 'in_' + device, 'kubeports:interface')
            for device in POD_INTERFACES for kind in ('in', 'route')
            for name, anywhere in (('user.rules', '0.0.0.0/0'), ('user6.rules', '::/0')))
        assert not [item for item in ours(lab, host) if item[-1] == 'kubeports:pods']
        assert dnat_lines(lab, host) == [('after.rules', '-A ufw-after-forward ' + DNAT_LINE),
                                         ('after6.rules', '-A ufw6-after-forward ' + DNAT_LINE),
                                         ('ip6tables', '-A ufw6-after-forward ' + DNAT_LINE),
                                         ('iptables', '-A ufw-after-forward ' + DNAT_LINE)]
        # The forward policy is never changed.
        assert 'DEFAULT_FORWARD_POLICY="DROP"' in lab.exec(host, ['cat', '/etc/default/ufw'], check=True).stdout
    # Converged: nothing to do, in a real run or in check mode.
    for host, (status, result) in apply_nodes(lab, cluster_rules(lab, ov, 'interfaces')).items():
        assert status == 'SUCCESS' and (result['diff']['added'], result['diff']['removed']) == ([], []), result
    for host, (status, result) in apply_nodes(lab, cluster_rules(lab, ov, 'interfaces'), check=True).items():
        assert status == 'SUCCESS', (host, result)

    # Pod traffic passes: pod to pod across the nodes and node to pod (forwarded between
    # flannel.1 and cni0), pods to the other node, pods to their own node (in on cni0), and the
    # NodePort from a host outside the cluster, DNAT'd to node4's pod (in on eth0, out on
    # flannel.1 on node3; out on cni0 on node4), over IPv4 and IPv6, TCP and UDP.
    report = cluster.prove_overlay(lab, ov, kinds=kinds, client=NODEPORT_CLIENT)
    assert not cluster.failures(report), summary(cluster.failures(report))
    own = pods_to_their_node(lab, ov)
    assert len(own) == 8 and all(item['ok'] for item in own), own
    assert {item['family'] for item in report['nodeport']} == {4, 6}

    # A spoofed pod source from the node network now reaches neither the port nor the pod. (The
    # attacker's packets use the same ports as before: the connections the former rules let in
    # are forgotten first, else they pass as established.)
    for family in ('ipv4', 'ipv6'):
        lab.exec(HOST, ['conntrack', '-D', '-f', family, '-s', ov.pod(NODES[0]).addr[4 if family == 'ipv4' else 6]])
    arrived = cluster.wait_arrivals(spoofed_pod_packets(lab, ov), timeout=3)
    assert not [item for item in arrived if item['arrived']], arrived

    # The DNAT line is what lets the NodePort through node3 pass: gone from the running chain,
    # the NodePort through node3 stops; the next run puts it back without a reload.
    def nodeport_via_node3():
        return [item for item in cluster.prove_overlay(lab, ov, kinds=('nodeport',), protos=('tcp',), timeout=1,
                                                       client=NODEPORT_CLIENT)['nodeport'] if item['dst'] == 'node3']
    for command, chain in (('iptables', 'ufw-after-forward'), ('ip6tables', 'ufw6-after-forward')):
        lab.exec('node3', [command, '-D', chain] + DNAT_LINE.split(), check=True)
    assert not [item for item in nodeport_via_node3() if item['ok']]
    status, result = module(lab, 'node3', {'rules': cluster_rules(lab, ov, 'interfaces'), 'backend': 'ufw',
                                           'ufw_peer_sets': 'rules'})
    assert status == 'CHANGED' and sorted(result['diff']['added']) == [
        "route allow connections this host DNAT'd (kubeports:dnat, after.rules) (running)",
        "route allow connections this host DNAT'd (kubeports:dnat, after6.rules) (running)"], result
    assert all(item['ok'] for item in nodeport_via_node3())

    # A reboot (netfilter cleared, ufw started by its boot path, kube-proxy's table put back):
    # ufw loads the interface rules and the DNAT line by itself.
    cluster.reboot_firewall(lab, 'node3', [ov])
    assert len(dnat_lines(lab, 'node3')) == 4
    report = cluster.prove_overlay(lab, ov, kinds=kinds, client=NODEPORT_CLIENT)
    assert not cluster.failures(report), summary(cluster.failures(report))

    # Uninstall: every rule of the collection goes, the after rules files keep no block.
    for host, (status, result) in apply_nodes(lab, []).items():
        assert status == 'CHANGED', (host, result)
        assert ours(lab, host) == [] and dnat_lines(lab, host) == []
        assert 'kubeports' not in lab.exec(host, ['cat', '/etc/ufw/after.rules', '/etc/ufw/after6.rules'],
                                           check=True).stdout
