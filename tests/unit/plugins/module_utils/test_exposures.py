"""What each backend says its firewall admits (the audit's input): exposures()."""

import sys

import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.backends.firewalld import (
    FirewalldBackend, empty_view)
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.susefirewall2 import SuseFirewall2Backend
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.ufw import parse_user_rules

from test_guard import FakeFirewalld, FakeZone, ufw

OWNED = '6b756265706f7274733a61646d696e73'  # "kubeports:admins"


def seen(found):
    return sorted((item['protocol'], item['port'], tuple(item['sources'] or ('anyone',)), item['owned'], item['scope'])
                  for item in found)


def test_ufw_exposures(tmp_path, monkeypatch):
    rules = parse_user_rules(
        '### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n'
        '### tuple ### allow tcp 2379 0.0.0.0/0 any 10.0.0.1 in comment=%s\n'
        '### tuple ### allow udp 30000:32767 0.0.0.0/0 any 0.0.0.0/0 in\n'
        '### tuple ### deny tcp 10250 0.0.0.0/0 any 0.0.0.0/0 in\n'
        '### tuple ### allow any any 0.0.0.0/0 any 10.9.0.0/16 in\n' % OWNED)
    before = {'ipv4': tmp_path / 'before.rules', 'ipv6': tmp_path / 'before6.rules'}
    before['ipv4'].write_text('-A ufw-before-input -i lo -j ACCEPT\n'
                              '-A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n'
                              '-A ufw-before-input -p icmp --icmp-type echo-request -j ACCEPT\n'
                              '-A ufw-before-input -p 4 -s 10.0.0.0/8 -j ACCEPT\n'
                              '-A ufw-before-input -p tcp -m multiport --dports 80,8443:8445 -j ACCEPT\n'
                              '-A ufw-before-input -p tcp --dport 9000 -j DROP\n')
    before['ipv6'].write_text('-A ufw6-before-input -i eth1 -j ACCEPT\n')
    monkeypatch.setattr('ansible_collections.kubeports.firewall.plugins.module_utils.backends.ufw.BEFORE_RULES',
                        dict((family, str(path)) for family, path in before.items()))
    current = {'rules': rules, 'before': {}}
    assert seen(ufw(tmp_path, monkeypatch).exposures(current)) == [
        ('all', '', ('10.9.0.0/16',), False, 'rule'),
        ('all', '', ('::/0',), False, 'rule'),
        ('icmp', '', ('0.0.0.0/0',), False, 'rule'),
        ('ipip', '', ('10.0.0.0/8',), False, 'rule'),
        ('tcp', '22', ('anyone',), False, 'rule'),
        ('tcp', '2379', ('10.0.0.1/32',), True, 'rule'),
        ('tcp', '80', ('0.0.0.0/0',), False, 'rule'),
        ('tcp', '8443-8445', ('0.0.0.0/0',), False, 'rule'),
        ('udp', '30000-32767', ('anyone',), False, 'rule'),
    ]
    for path in before.values():
        path.write_text('')
    accepting = ufw(tmp_path, monkeypatch, 'ACCEPT').exposures({'rules': [], 'before': {}})
    assert seen(accepting) == [('all', '', ('anyone',), False, 'zone')]


class Zone(FakeZone):
    def __init__(self, target='default', services=(), ports=(), protocols=(), rich=()):
        FakeZone.__init__(self, target, services, ports)
        self.protocols, self.rich = list(protocols), list(rich)

    def getProtocols(self):
        return self.protocols

    def getRichRules(self):
        return self.rich


class Service(object):
    def __init__(self, ports):
        self.ports = ports

    def getPorts(self):
        return self.ports

    def getProtocols(self):
        return []


class Firewalld(FakeFirewalld):
    def getServiceSettings(self, name):
        return Service({'ssh': [('22', 'tcp')], 'cockpit': [('9090', 'tcp')],
                        'dhcpv6-client': [('546', 'udp')]}[name])

    def getEntries(self, ipset):
        return ['192.0.2.7']


@pytest.mark.parametrize('zones, active, owned, expected', [
    ({'public': Zone(services=['ssh', 'dhcpv6-client'], ports=[('6443', 'tcp'), ('2379', 'tcp')])}, {},
     {'ports': ['6443/tcp']},
     [('tcp', '22', ('anyone',), False, 'rule'), ('tcp', '2379', ('anyone',), False, 'rule'),
      ('tcp', '6443', ('anyone',), True, 'rule'), ('udp', '546', ('anyone',), False, 'rule')]),
    ({'public': Zone(target='ACCEPT')}, {}, {}, [('all', '', ('anyone',), False, 'zone')]),
    ({'public': Zone(), 'work': Zone(services=['cockpit'])}, {'work': {'sources': ['198.51.100.0/24']}}, {},
     [('tcp', '9090', ('198.51.100.0/24',), False, 'rule')]),
    ({'public': Zone(), 'trusted': Zone(target='ACCEPT')}, {'trusted': {'interfaces': ['eth9']}}, {},
     [('all', '', ('anyone',), False, 'zone')]),
    ({'public': Zone(), 'trusted': Zone(target='ACCEPT')}, {'trusted': {'sources': ['10.244.0.0/16', '10.9.0.0/16']}},
     {'trusted': ['10.244.0.0/16']},
     [('all', '', ('10.244.0.0/16',), True, 'zone'), ('all', '', ('10.9.0.0/16',), False, 'zone')]),
    ({'public': Zone(rich=['rule family="ipv4" source ipset="kubeports-etcd" port port="2379" protocol="tcp" accept',
                           'rule family="ipv4" source address="10.1.0.0/16" port port="10250" protocol="tcp" accept',
                           'rule family="ipv4" source ipset="other" service name="ssh" accept',
                           'rule family="ipv4" source address="10.1.0.0/16" port port="80" protocol="tcp" drop'])},
     {}, {},
     [('tcp', '10250', ('10.1.0.0/16',), False, 'rule'), ('tcp', '22', ('192.0.2.7/32',), False, 'rule'),
      ('tcp', '2379', ('10.0.0.1/32',), True, 'rule')]),
])
def test_firewalld_exposures(zones, active, owned, expected, monkeypatch):
    # firewalld's rich rule parser, from Debian's python3-firewall (make apt installs it).
    monkeypatch.setattr(sys, 'path', sys.path + ['/usr/lib/python3/dist-packages'])
    backend = FirewalldBackend(lambda argv, check=True: (0, '', ''), {})
    backend._fw, backend.zone = Firewalld(zones, active), 'public'
    runtime = empty_view()
    runtime['ipsets'] = {'kubeports-etcd': {'family': 'inet', 'entries': {'10.0.0.1/32'}}}
    assert seen(backend.exposures({'runtime': runtime, 'owned': owned})) == expected


def test_susefirewall2_exposures():
    backend = SuseFirewall2Backend(lambda argv, check=True: (0, '', ''), {})
    text = ('FW_SERVICES_EXT_TCP="ssh 6443 30000:32767"\nFW_SERVICES_EXT_UDP="8472"\nFW_SERVICES_EXT_IP="4"\n'
            'FW_SERVICES_ACCEPT_EXT="10.0.0.1,tcp,2379 10.0.0.0/8,udp"\nFW_TRUSTED_NETS="10.244.0.0/16"\n')
    owned = {'tokens': {'FW_SERVICES_EXT_TCP': ['6443'], 'FW_SERVICES_ACCEPT_EXT': ['10.0.0.1,tcp,2379']}}
    assert seen(backend.exposures({'text': text, 'owned': owned})) == [
        ('all', '', ('10.244.0.0/16',), False, 'rule'),
        ('ipip', '', ('anyone',), False, 'rule'),
        ('tcp', '22', ('anyone',), False, 'rule'),
        ('tcp', '2379', ('10.0.0.1/32',), True, 'rule'),
        ('tcp', '30000-32767', ('anyone',), False, 'rule'),
        ('tcp', '6443', ('anyone',), True, 'rule'),
        ('udp', '', ('10.0.0.0/8',), False, 'rule'),
        ('udp', '8472', ('anyone',), False, 'rule'),
    ]


@pytest.mark.parametrize('rich, admitted', [
    ('rule family="ipv4" source address="198.51.100.1" service name="ssh" accept', True),
    ('rule family="ipv4" source address="198.51.100.1" service name="ssh" drop', False),
    ('rule family="ipv4" source address="198.51.100.1" service name="ssh" reject', False),
    ('rule family="ipv4" source address="198.51.100.1" source-port port="22" protocol="tcp" accept', False),
])
def test_the_lockout_guard_counts_only_accepting_rich_rules(rich, admitted, monkeypatch):
    from ansible_collections.kubeports.firewall.plugins.module_utils import guard
    from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import Change
    monkeypatch.setattr(sys, 'path', sys.path + ['/usr/lib/python3/dist-packages'])
    backend = FirewalldBackend(lambda argv, check=True: (0, '198.51.100.1 dev eth0 src 192.0.2.1', ''), {})
    backend._fw, backend.zone = Firewalld({'public': Zone()}, {}), 'public'
    runtime = empty_view()
    runtime['rich'] = {rich}
    found = backend.admissions_after({'runtime': runtime}, Change(), '198.51.100.1')
    assert (guard.admits(found, '198.51.100.1', 22) is not None) is admitted
