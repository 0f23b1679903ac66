"""When port_rules reloads firewalld (a new peer set) and when it refuses to, on the lab's real
firewalld: the reload loses nothing and leaves one rule per set and port however many peers;
an iptables chain, a runtime-only rule of someone else's or firewalld_reload=never keep the
runtime at one rule per source, say why, and leave the foreign state as it was.

Ports 39521-39529 are used only by this file.
"""

import random
import re
import time
import uuid

import pytest

from conftest import CONNECTIONS
from test_port_rules import LISTENER, module, probe

HOST, PEER, OTHER = 'node1', 'node5', 'node2'
PORTS = ('39521', '39522-39523')
FOREIGN_PORT = '39529/tcp'
# Tables a reload must keep: kube-proxy in nftables mode.
NFT_TABLE = ['sh', '-c', 'nft add table inet kptest-proxy && '
             'nft add chain inet kptest-proxy input "{ type filter hook input priority -5; }"']


def scattered(count, seed):
    generator = random.Random(seed)
    chosen = set()
    while len(chosen) < count:
        chosen.add(generator.randrange(1, 2 ** 24 - 1))
    return ['10.%d.%d.%d/32' % (n >> 16, (n >> 8) & 255, n & 255) for n in sorted(chosen)]


def arguments(lab, name, peers, **options):
    rules = [{'protocol': 'tcp', 'port': port, 'source_set': name} for port in PORTS]
    args = {'rules': rules, 'sets': {name: [lab.address(PEER) + '/32'] + peers}, 'firewalld_reload': 'auto'}
    args.update(options)
    return args


def runtime_rich(lab):
    return lab.exec(HOST, ['firewall-cmd', '--list-rich-rules'], check=True).stdout.splitlines()


def new_ssh_works(lab):
    proc = lab.ssh(HOST, 'echo ssh-ok')
    return proc.returncode == 0 and proc.stdout.strip() == 'ssh-ok'


@pytest.fixture
def clean(lab):
    """node1 with a runtime equal to its permanent configuration, nothing of the collection's."""
    module(lab, HOST, {'rules': []})
    lab.exec(HOST, ['firewall-cmd', '--reload'], check=True)
    yield
    module(lab, HOST, {'rules': []})
    lab.exec(HOST, ['sh', '-c', 'nft delete table inet kptest-proxy; iptables -D INPUT -j KPTEST-SERVICES; '
                                'iptables -X KPTEST-SERVICES; firewall-cmd --remove-port=' + FOREIGN_PORT])


def test_new_peer_set_reloads_once_and_rules_do_not_grow_with_peers(lab, clean):
    lab.exec(HOST, NFT_TABLE, check=True)
    name = 'reload' + uuid.uuid4().hex[:6]
    status, result = module(lab, HOST, arguments(lab, name, scattered(300, 1)), check=True)
    assert status == 'CHANGED' and 'firewalld reload, bringing the new peer sets into the runtime: kubeports-%s' % name \
        in result['diff']['added']
    assert not any('kubeports' in rule for rule in runtime_rich(lab)), 'check mode changed the runtime'

    status, result = module(lab, HOST, arguments(lab, name, scattered(300, 1)))
    assert status == 'CHANGED', result
    assert any('reloaded once' in message for message in result['messages']), result['messages']
    ours = [rule for rule in runtime_rich(lab) if 'kubeports' in rule or 'source address' in rule]
    assert len(ours) == len(PORTS) and all('ipset="kubeports-%s"' % name in rule for rule in ours), ours
    # What a reload must keep, and what it opened, proven by a new connection and by probes.
    assert 'kptest-proxy' in lab.exec(HOST, ['nft', 'list', 'tables']).stdout
    assert new_ssh_works(lab)
    assert probe(lab, PEER, HOST, 'tcp', 39521) and not probe(lab, OTHER, HOST, 'tcp', 39521)

    # More peers: the ipset grows, the rules stay, no second reload.
    status, result = module(lab, HOST, arguments(lab, name, scattered(1000, 2)))
    assert status == 'CHANGED' and not any('reload' in message for message in result['messages']), result
    ours = [rule for rule in runtime_rich(lab) if 'kubeports' in rule or 'source address' in rule]
    assert len(ours) == len(PORTS), ours
    entries = lab.exec(HOST, ['firewall-cmd', '--ipset=kubeports-' + name, '--get-entries']).stdout.split()
    assert len(entries) == 1001
    status, _result = module(lab, HOST, arguments(lab, name, scattered(1000, 2)))
    assert status == 'SUCCESS'


BLOCKERS = {
    'iptables chain': (['sh', '-c', 'iptables -N KPTEST-SERVICES && iptables -I INPUT -j KPTEST-SERVICES'], {},
                       r'No reload, because a reload flushes iptables filter/INPUT, iptables filter/KPTEST-SERVICES'),
    'runtime-only port': (['firewall-cmd', '--add-port=' + FOREIGN_PORT], {},
                          r'No reload, because zone public: ports only in the runtime: 39529/tcp'),
    'never': (['true'], {'firewalld_reload': 'never'}, r'No reload, because firewalld_reload is never'),
}


@pytest.mark.parametrize('blocker', sorted(BLOCKERS))
def test_no_reload_when_it_would_lose_something(lab, clean, blocker):
    setup, options, reason = BLOCKERS[blocker]
    lab.exec(HOST, setup, check=True)
    foreign = lab.exec(HOST, ['sh', '-c', 'iptables -S; firewall-cmd --list-ports']).stdout
    name = 'keep' + uuid.uuid4().hex[:6]
    status, result = module(lab, HOST, arguments(lab, name, scattered(5, 3), **options))
    assert status == 'CHANGED', result
    assert any(re.search(reason, message) for message in result['messages']), result['messages']
    assert lab.exec(HOST, ['sh', '-c', 'iptables -S; firewall-cmd --list-ports']).stdout == foreign
    # One rule per source and port in the runtime, the ipset waiting in the permanent configuration.
    per_source = [rule for rule in runtime_rich(lab) if 'source address' in rule]
    assert len(per_source) == 6 * len(PORTS), per_source
    assert 'kubeports-' + name in lab.exec(HOST, ['firewall-cmd', '--permanent', '--get-ipsets']).stdout
    assert probe(lab, PEER, HOST, 'tcp', 39522) and not probe(lab, OTHER, HOST, 'tcp', 39522)
    assert new_ssh_works(lab)


STOP = '/tmp/kubeports-reload-connections-stop'


def test_reload_delays_new_connections_but_refuses_none(lab, clean):
    """During the reload firewalld holds new connections (its policy while it reloads); they get
    through on their retransmission, none is refused, established ones carry on."""
    stays = [{'protocol': 'tcp', 'port': '39524', 'sources': ['0.0.0.0/0', '::/0'], 'source_set': None}]
    assert module(lab, HOST, {'rules': stays})[0] == 'CHANGED'
    listener = lab.spawn(HOST, ['python3', '-c', LISTENER, 'tcp', '39524', 'nonce', '60'])
    client = None
    try:
        assert listener.stdout.readline().strip() == 'ready'
        lab.exec(PEER, ['rm', '-f', STOP])
        client = lab.spawn(PEER, ['python3', '-c', CONNECTIONS, lab.address(HOST), '39524', '3', STOP])
        time.sleep(1)
        args = arguments(lab, 'delay' + uuid.uuid4().hex[:6], scattered(50, 4))
        args['rules'] += stays
        status, result = module(lab, HOST, args)
        assert status == 'CHANGED' and any('reloaded once' in message for message in result['messages']), result
        time.sleep(1)
        lab.exec(PEER, ['touch', STOP])
        out, _err = client.communicate(timeout=120)
        done, attempts, failures, slowest = out.split()
        print("connections during the reload (attempts, failures, slowest s):", out)
        assert done == 'done' and int(attempts) > 20 and int(failures) == 0, out
        assert float(slowest) < 3.0, out
    finally:
        for proc in (listener, client):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        lab.exec(PEER, ['rm', '-f', STOP])
