"""Kernel tunnel devices, port owners and probes through the overlay (plugins/module_utils/probe_tunnels.py)."""

import os
import socket
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils import probe_sockets, probe_tunnels
from ansible_collections.kubeports.firewall.plugins.module_utils.probe_tunnels import (
    overlay_plan, owner_text, parse_tunnels, socket_owners, tunnel_for)


def link(name, kind, data, addresses=(), flags=('BROADCAST', 'UP', 'LOWER_UP'), mac='0e:6b:70:00:01:04'):
    """One device as ``ip -d -j addr show`` prints it (iproute2 6.1)."""
    return {'ifname': name, 'flags': list(flags), 'address': mac,
            'linkinfo': {'info_kind': kind, 'info_data': data},
            'addr_info': [{'family': 'inet6' if ':' in address else 'inet', 'local': address,
                           'prefixlen': 128 if ':' in address else 32, 'scope': 'global'} for address in addresses]}


FLANNEL4 = link('flannel.1', 'vxlan', {'id': 1, 'local': '198.51.100.15', 'link': 'eth0', 'port': 8472,
                                       'learning': False}, ['10.244.1.0', 'fe80::c:1'])
FLANNEL6 = link('flannel-v6.1', 'vxlan', {'id': 1, 'local6': '2001:db8::15', 'port': 8472},
                ['fe80::c:2', 'fd00:10:244:100::'])
CILIUM = link('cilium_vxlan', 'vxlan', {'external': True, 'id': 0, 'port': 8472})
GENEVE = link('genev_sys_6081', 'geneve', {'external': True, 'port': 6081})
GENEVE_OLD = link('gnv0', 'geneve', {'id': 5, 'remote': '198.51.100.16', 'dstport': 6081}, ['10.9.0.1'])
CALICO = link('vxlan.calico', 'vxlan', {'id': 4096, 'local': '198.51.100.15', 'port': 4789}, ['10.245.1.192'])
OTHERS = [
    {'ifname': 'lo', 'flags': ['LOOPBACK', 'UP'], 'addr_info': [{'family': 'inet', 'local': '127.0.0.1'}]},
    link('cni0', 'bridge', {}, ['10.244.1.1']),
    link('broken', 'vxlan', {'id': 3}),
    'garbage',
]


@pytest.mark.parametrize('links, expected', [
    ([FLANNEL4], [('flannel.1', 'vxlan', 8472, '198.51.100.15', 4, False, [('10.244.1.0', 4), ('fe80::c:1', 6)])]),
    # Link-local addresses last, whatever the order the kernel lists them in.
    ([FLANNEL6], [('flannel-v6.1', 'vxlan', 8472, '2001:db8::15', 6, False,
                   [('fd00:10:244:100::', 6), ('fe80::c:2', 6)])]),
    ([CILIUM, GENEVE], [('cilium_vxlan', 'vxlan', 8472, None, None, True, []),
                        ('genev_sys_6081', 'geneve', 6081, None, None, True, [])]),
    # Older iproute2 spelling of the port; the underlay family from the remote address.
    ([GENEVE_OLD], [('gnv0', 'geneve', 6081, None, 4, False, [('10.9.0.1', 4)])]),
    # Devices of other kinds, devices without a port and junk are left out.
    (OTHERS + [CALICO], [('vxlan.calico', 'vxlan', 4789, '198.51.100.15', 4, False, [('10.245.1.192', 4)])]),
    ([], []),
    ('not a list', []),
])
def test_parse_tunnels(links, expected):
    parsed = parse_tunnels(links)
    assert [(t['device'], t['kind'], t['port'], t['local'], t['family'], t['external'],
             [(a['address'], a['family']) for a in t['addresses']]) for t in parsed] == expected


def test_parse_tunnels_flags_and_identity():
    down = link('flannel.1', 'vxlan', {'id': 1, 'local': '198.51.100.15', 'port': 8472}, flags=['BROADCAST'])
    parsed = parse_tunnels([down])[0]
    assert (parsed['up'], parsed['id'], parsed['mac']) == (False, 1, '0e:6b:70:00:01:04')
    assert owner_text(parsed) == 'kernel vxlan device flannel.1, port 8472'


TUNNELS = parse_tunnels([FLANNEL4, FLANNEL6, CALICO, GENEVE])


@pytest.mark.parametrize('port, address, device', [
    (8472, '198.51.100.15', 'flannel.1'),
    (8472, '2001:db8::15', 'flannel-v6.1'),
    # Another address of the host: the kernel's socket holds the port on every address.
    (8472, '192.0.2.15', 'flannel.1'),
    (4789, '2001:db8::15', None),
    (4789, '198.51.100.15', 'vxlan.calico'),
    (6081, '198.51.100.15', 'genev_sys_6081'),
    (6081, '2001:db8::15', 'genev_sys_6081'),
    (53, '198.51.100.15', None),
])
def test_tunnel_for_port_and_address(port, address, device):
    found = tunnel_for(TUNNELS, port, address)
    assert (found and found['device']) == device


def own(*links):
    return parse_tunnels(list(links))


PROBER4 = link('flannel.1', 'vxlan', {'id': 1, 'local': '198.51.100.14', 'port': 8472}, ['10.244.0.0'])
PROBER6 = link('flannel-v6.1', 'vxlan', {'id': 1, 'local6': '2001:db8::14', 'port': 8472}, ['fd00:10:244::'])


def probe(address='198.51.100.15', source_address='198.51.100.14'):
    return {'id': 'p1', 'source': 'node4', 'target': 'node5', 'address': address, 'protocol': 'udp', 'port': 8472,
            'source_address': source_address}


@pytest.mark.parametrize('the_probe, target, mine, expected', [
    (probe(), FLANNEL4, own(PROBER4, PROBER6),
     {'how': 'overlay', 'device': 'flannel.1', 'source': '10.244.0.0', 'destination': '10.244.1.0'}),
    (probe('2001:db8::15', '2001:db8::14'), FLANNEL6, own(PROBER4, PROBER6),
     {'how': 'overlay', 'device': 'flannel-v6.1', 'source': 'fd00:10:244::', 'destination': 'fd00:10:244:100::'}),
    # Not in the overlay: no device of that port (an outsider), or only of another family.
    (probe(), FLANNEL4, own(), {'how': 'datagram', 'why': 'node4 has no vxlan device on port 8472 over IPv4: it '
                                                          'is not in this overlay'}),
    (probe(), FLANNEL4, own(PROBER6), {'how': 'datagram'}),
    (probe(), FLANNEL4, own(CALICO), {'how': 'datagram'}),
    # A device of the port without an address of the target device's family.
    (probe(), FLANNEL4, own(link('flannel.1', 'vxlan', {'id': 1, 'local': '198.51.100.14', 'port': 8472})),
     {'how': 'datagram', 'why': 'flannel.1 on node4 has no address of the family of 10.244.1.0'}),
    # A device driven by the CNI's datapath, or without an address, cannot be sent to by address.
    (probe(), CILIUM, own(PROBER4), {'how': 'datagram', 'why': "cilium_vxlan is driven by its CNI's datapath "
                                                               "(external), so traffic cannot be sent through it "
                                                               "by address"}),
    (probe(), link('flannel.1', 'vxlan', {'id': 1, 'local': '198.51.100.15', 'port': 8472}), own(PROBER4),
     {'how': 'datagram', 'why': 'flannel.1 on node5 has no address to send traffic to'}),
])
def test_overlay_plan(the_probe, target, mine, expected):
    plan = overlay_plan(the_probe, parse_tunnels([target])[0], mine)
    assert plan['owner'].startswith('kernel ')
    assert dict((key, plan[key]) for key in expected) == expected


def test_socket_owners_names_processes_and_kernel_sockets(tmp_path):
    net = tmp_path / 'net'
    net.mkdir()
    header = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n'
    (net / 'udp').write_text(header + textwrap.dedent('''\
        1: 00000000:2118 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 1111 2 0 0
        2: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 2222 2 0 0
        3: 0100007F:0036 0200007F:0035 01 00000000:00000000 00:00000000 00000000 0 0 3333 2 0 0
        '''))
    (net / 'tcp').write_text(header + '0: 00000000:094B 00000000:0000 0A 0:0 00:0 0 0 0 4444 1 0\n')
    for pid, name, inode in (('812', 'etcd', '4444'), ('90', 'dnsmasq', '2222')):
        (tmp_path / pid / 'fd').mkdir(parents=True)
        (tmp_path / pid / 'comm').write_text(name + '\n')
        os.symlink('socket:[%s]' % inode, str(tmp_path / pid / 'fd' / '7'))
        os.symlink('/dev/null', str(tmp_path / pid / 'fd' / '0'))
    owners = socket_owners([('udp', 8472), ('udp', 53), ('tcp', 2379), ('udp', 54), ('tcp', 10250)],
                           proc=str(tmp_path))
    assert owners == {('udp', 8472): 'a kernel socket (no process holds it)', ('udp', 53): 'process dnsmasq (pid 90)',
                      ('tcp', 2379): 'process etcd (pid 812)', ('udp', 54): 'an unknown owner',
                      ('tcp', 10250): 'an unknown owner'}
    assert socket_owners([]) == {}


def test_name_owners_prefers_the_tunnel_device(monkeypatch):
    monkeypatch.setattr(probe_tunnels, 'read_tunnels', lambda: (TUNNELS, None))
    monkeypatch.setattr(probe_tunnels, 'socket_owners', lambda wanted: dict(
        (item, 'a kernel socket (no process holds it)') for item in wanted))
    in_use = [{'protocol': 'udp', 'port': 8472, 'family': 6, 'address': '2001:db8::15'},
              {'protocol': 'udp', 'port': 53, 'family': 4, 'address': '198.51.100.15'},
              {'protocol': 'tcp', 'port': 8472, 'family': 4, 'address': '198.51.100.15'}]
    tunnels, error = probe_tunnels.name_owners(in_use)
    # Only the devices holding a port the listeners could not bind go to the probers.
    assert ([t['device'] for t in tunnels], error) == (['flannel.1', 'flannel-v6.1'], None)
    assert [(item['owner'], item.get('device')) for item in in_use] == [
        ('kernel vxlan device flannel-v6.1, port 8472', 'flannel-v6.1'),
        ('a kernel socket (no process holds it)', None), ('a kernel socket (no process holds it)', None)]


def test_tunnels_are_read_only_when_a_udp_port_is_held(monkeypatch):
    monkeypatch.setattr(probe_tunnels, 'read_tunnels', lambda: pytest.fail('read without a held UDP port'))
    assert probe_tunnels.name_owners([]) == ([], None)


@pytest.mark.parametrize('family, raw, reply, parsed', [
    (4, False, b'\x00\x00\x00\x00\x12\x34\x00\x01payload', (0x1234, b'payload')),
    (4, True, b'\x45' + b'\x00' * 19 + b'\x00\x00\x00\x00\x12\x34\x00\x01payload', (0x1234, b'payload')),
    (4, False, b'\x08\x00\x00\x00\x12\x34\x00\x01payload', None),
    (6, True, b'\x81\x00\x00\x00\x00\x07\x00\x01x', (7, b'x')),
    (6, True, b'\x87\x00\x00\x00\x00\x07\x00\x01x', None),
    (4, True, b'\x45\x00', None),
])
def test_echo_reply_parsing(family, raw, reply, parsed):
    assert probe_tunnels._echo_reply(family, reply, raw) == parsed


def test_echo_request_checksum():
    packet = probe_tunnels._echo_request(4, 0x1234, 1, b'abc')
    assert packet[0] == 8 and probe_tunnels._checksum(packet) == 0


class Plans(object):
    """overlay_echo stand-in: records its calls, answers as told."""

    def __init__(self, answer):
        self.answer, self.calls = answer, []

    def __call__(self, device, source, destination, timeout, attempts=3):
        self.calls.append((device, source, destination))
        return self.answer


OVERLAY_PLAN = {'how': 'overlay', 'owner': 'kernel vxlan device flannel.1, port 8472', 'device': 'flannel.1',
                'source': '10.244.0.0', 'destination': '10.244.1.0', 'local': '198.51.100.14', 'up': True}


@pytest.mark.parametrize('expected, answer, observed, method, detail', [
    ('open', (True, 'echo answered through flannel.1 (10.244.0.0 -> 10.244.1.0)'), 'open', 'overlay',
     'echo answered through flannel.1 (10.244.0.0 -> 10.244.1.0): proves 8472/udp of node5 from node4 and '
     '8472/udp of node4 from node5'),
    ('open', (False, 'no echo through flannel.1 to 10.244.1.0 in 0.2s'), 'filtered', 'overlay',
     'no echo through flannel.1 to 10.244.1.0 in 0.2s: 8472/udp of node5 from node4 or 8472/udp of node4 from '
     'node5 is closed, or the overlay does not carry traffic between them'),
    ('blocked', (True, 'echo answered through flannel.1 (10.244.0.0 -> 10.244.1.0)'), 'open', 'overlay', None),
    ('open', (None, 'cannot send an ICMP echo through flannel.1'), 'error', 'overlay',
     'cannot send an ICMP echo through flannel.1'),
])
def test_probe_through_overlay(monkeypatch, expected, answer, observed, method, detail):
    monkeypatch.setattr(probe_tunnels, 'overlay_echo', Plans(answer))
    the_probe = dict(probe(), expected=expected)
    result = probe_sockets.probe_through_overlay(the_probe, OVERLAY_PLAN, 0.2)
    assert (result['observed'], result['method'], result['owner'], result['via']) == (
        observed, method, OVERLAY_PLAN['owner'], 'flannel.1')
    if detail:
        assert result['detail'] == detail


def test_a_blocked_probe_without_an_echo_falls_back_to_a_datagram(monkeypatch):
    monkeypatch.setattr(probe_tunnels, 'overlay_echo', Plans((False, 'no echo through flannel.1 to 10.244.1.0')))
    monkeypatch.setattr(probe_sockets, 'probe_one', lambda probe, timeout, attempts: {
        'id': probe['id'], 'observed': 'filtered', 'detail': 'no echo in 0.2s', 'method': 'echo', 'silent': True})
    result = probe_sockets.probe_through_overlay(dict(probe(), expected='blocked'), OVERLAY_PLAN, 0.2)
    assert (result['observed'], result['method'], result['silent']) == ('filtered', 'echo', True)
    assert result['detail'] == 'no echo in 0.2s; no echo through flannel.1 to 10.244.1.0'
    assert result['owner'] == OVERLAY_PLAN['owner']


def test_probe_all_sends_through_the_overlay_only_for_ports_a_tunnel_holds(monkeypatch):
    monkeypatch.setattr(probe_tunnels, 'read_tunnels', lambda: (own(PROBER4, PROBER6), None))
    echo = Plans((True, 'echo answered through flannel.1 (10.244.0.0 -> 10.244.1.0)'))
    monkeypatch.setattr(probe_tunnels, 'overlay_echo', echo)
    monkeypatch.setattr(probe_sockets, 'probe_one', lambda probe, timeout, attempts: {
        'id': probe['id'], 'observed': 'open', 'detail': 'plain', 'method': 'echo'})
    probes = [dict(probe(), id='vxlan'), dict(probe(), id='other', port=4789), dict(probe(), id='tcp', protocol='tcp'),
              dict(probe(), id='no-target', target=None)]
    results = probe_sockets.probe_all(probes, 0.2, 4, tunnels={'node5': TUNNELS})
    assert [(r['id'], r['method']) for r in results] == [
        ('vxlan', 'overlay'), ('other', 'echo'), ('tcp', 'echo'), ('no-target', 'echo')]
    assert echo.calls == [('flannel.1', '10.244.0.0', '10.244.1.0')]


# Two nodes (network namespaces of their own, joined by a veth pair) with flannel-style VXLAN
# devices; node B drops 8472/udp from A when asked. Runs the real ICMP echo through flannel.1.
OVERLAY_LAB = r'''
set -e
ip link set lo up
ip link add eth0 type veth peer name eth0b
unshare --net sh -c 'echo $$ > "$0/b.pid"; exec sleep 30' "$WORK" >/dev/null 2>&1 &
for i in $(seq 100); do [ -s "$WORK/b.pid" ] && break; sleep 0.05; done
B=$(cat "$WORK/b.pid")
trap 'kill "$B"' EXIT
ip link set eth0b netns "$B"
ip addr add 198.51.100.14/24 dev eth0 && ip link set eth0 up
ip link add flannel.1 type vxlan id 1 local 198.51.100.14 dev eth0 dstport 8472 nolearning
ip link set flannel.1 address 0e:6b:70:00:00:04 && ip addr add 10.244.0.0/32 dev flannel.1 && ip link set flannel.1 up
ip route add 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink
ip neigh replace 10.244.1.0 lladdr 0e:6b:70:00:01:04 dev flannel.1 nud permanent
bridge fdb append 0e:6b:70:00:01:04 dev flannel.1 dst 198.51.100.15
nsenter -t "$B" -n sh -ec "
ip link set lo up
ip link set eth0b name eth0
ip addr add 198.51.100.15/24 dev eth0 && ip link set eth0 up
ip link add flannel.1 type vxlan id 1 local 198.51.100.15 dev eth0 dstport 8472 nolearning
ip link set flannel.1 address 0e:6b:70:00:01:04 && ip addr add 10.244.1.0/32 dev flannel.1 && ip link set flannel.1 up
ip route add 10.244.0.0/24 via 10.244.0.0 dev flannel.1 onlink
ip neigh replace 10.244.0.0 lladdr 0e:6b:70:00:00:04 dev flannel.1 nud permanent
bridge fdb append 0e:6b:70:00:00:04 dev flannel.1 dst 198.51.100.14
if [ \"\$DROP\" = 1 ]; then
  nft add table inet kptest
  nft add chain inet kptest input '{ type filter hook input priority 0; }'
  nft add rule inet kptest input udp dport 8472 drop
fi"
"$PYTHON" -c "$SCRIPT"
'''
OVERLAY_SCRIPT = r'''
from ansible_collections.kubeports.firewall.plugins.module_utils import probe_sockets
probes = [{'id': 'p1', 'source': 'node4', 'target': 'node5', 'address': '198.51.100.15', 'protocol': 'udp',
           'port': 8472, 'source_address': '198.51.100.14', 'expected': 'open'}]
tunnels, error = probe_sockets.probe_tunnels.read_tunnels()
assert error is None, error
print(sorted(t['device'] for t in tunnels))
result = probe_sockets.probe_all(probes, 1.0, 4, tunnels={'node5': [{
    'device': 'flannel.1', 'kind': 'vxlan', 'port': 8472, 'local': '198.51.100.15', 'family': 4, 'external': False,
    'addresses': [{'family': 4, 'address': '10.244.1.0', 'prefixlen': 32}]}]})[0]
print(result['observed'], result['method'], result['via'])
print(result['detail'])
'''


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists('/usr/bin/unshare') or not os.path.exists('/usr/bin/nsenter'),
                    reason='needs root to make private network namespaces')
@pytest.mark.parametrize('drop, observed', [('0', 'open overlay flannel.1'), ('1', 'filtered overlay flannel.1')])
def test_echo_through_a_real_vxlan_device(tmp_path, drop, observed):
    if not hasattr(socket, 'AF_NETLINK'):
        pytest.skip('no netlink')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), WORK=str(tmp_path), DROP=drop,
               PYTHON=sys.executable, SCRIPT=OVERLAY_SCRIPT)
    proc = subprocess.run(['/usr/bin/unshare', '--net', 'bash', '-c', OVERLAY_LAB], capture_output=True, text=True,
                          timeout=60, check=False, env=env)
    if proc.returncode != 0 and 'Unknown device type' in proc.stderr:
        pytest.skip('no vxlan in this kernel')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "['flannel.1']"
    assert lines[1] == observed, proc.stdout
    if drop == '0':
        assert lines[2] == ('echo answered through flannel.1 (10.244.0.0 -> 10.244.1.0): proves 8472/udp of node5 '
                            'from node4 and 8472/udp of node4 from node5')
    else:
        assert lines[2].startswith('no echo through flannel.1 to 10.244.1.0 in 1s: ')


OWNER_SCRIPT = r'''
from ansible_collections.kubeports.firewall.plugins.module_utils import probe_sockets, probe_tunnels
sockets, listening, in_use, errors = probe_sockets.open_listeners(
    [{'protocol': 'udp', 'port': 8472}, {'protocol': 'udp', 'port': 8473}], ['198.51.100.15', '2001:db8::15'])
tunnels, error = probe_tunnels.name_owners(in_use)
print([(item['family'], item['port'], item['owner']) for item in in_use])
print([(item['family'], item['port']) for item in listening])
print([(t['device'], t['addresses'][0]['address']) for t in tunnels], error)
'''


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists('/usr/bin/unshare'),
                    reason='needs root to make a private network namespace')
def test_listener_names_the_kernel_vxlan_device_holding_the_port():
    script = '''set -e
ip link add eth0 type veth peer name eth1
ip addr add 198.51.100.15/24 dev eth0 && ip -6 addr add 2001:db8::15/64 dev eth0 nodad && ip link set eth0 up
ip link add flannel.1 type vxlan id 1 local 198.51.100.15 dev eth0 dstport 8472 nolearning
ip addr add 10.244.1.0/32 dev flannel.1 && ip link set flannel.1 up
ip link add flannel-v6.1 type vxlan id 1 local 2001:db8::15 dev eth0 dstport 8472 nolearning
ip -6 addr add fd00:10:244:100::/128 dev flannel-v6.1 nodad && ip link set flannel-v6.1 up
exec "$PYTHON" -c "$SCRIPT"
'''
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), PYTHON=sys.executable, SCRIPT=OWNER_SCRIPT)
    proc = subprocess.run(['/usr/bin/unshare', '--net', 'sh', '-c', script], capture_output=True, text=True,
                          timeout=60, check=False, env=env)
    if proc.returncode != 0 and 'Unknown device type' in proc.stderr:
        pytest.skip('no vxlan in this kernel')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        "[(4, 8472, 'kernel vxlan device flannel.1, port 8472'), (6, 8472, 'kernel vxlan device flannel-v6.1, "
        "port 8472')]",
        '[(4, 8473), (6, 8473)]',
        "[('flannel.1', '10.244.1.0'), ('flannel-v6.1', 'fd00:10:244:100::')] None"]
