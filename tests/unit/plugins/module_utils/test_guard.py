"""The lock-out guard: what each backend admits after a change, and the decision."""

import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils import guard
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import Admission, BackendError, Change
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.firewalld import empty_view, simulate
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.susefirewall2 import SuseFirewall2Backend
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.ufw import (
    UfwRule, UfwBackend, parse_input_policy, parse_user_rules)

CLIENT = '198.51.100.1'


@pytest.mark.parametrize('admissions, address, port, expected', [
    ([Admission(None, [(22, 22)], 'a')], CLIENT, 22, 'a'),
    ([Admission(None, [(22, 22)], 'a')], CLIENT, 2222, None),
    ([Admission(['198.51.100.0/24'], [(2000, 3000)], 'b')], CLIENT, 2222, 'b'),
    ([Admission(['203.0.113.0/24'], None, 'c')], CLIENT, 22, None),
    ([Admission(['::/0'], None, 'd')], CLIENT, 22, None),
    ([Admission(['2001:db8::/64'], [(22, 22)], 'e')], '2001:db8::5', 22, 'e'),
    ([Admission(None, None, 'f')], CLIENT, 1, 'f'),
])
def test_admits(admissions, address, port, expected):
    found = guard.admits(admissions, address, port)
    assert (found.what if found else None) == expected


class Backend(object):
    name = 'fake'

    def __init__(self, admissions):
        self.found = admissions

    def admissions_after(self, current, change, client):
        return self.found


def test_check_refuses_naming_client_port_and_variables():
    with pytest.raises(BackendError) as exc:
        guard.check(Backend([Admission(['203.0.113.0/24'], [(22, 22)], 'x')]), {}, Change(),
                    (CLIENT, 40000, '192.0.2.1', 2222))
    message = str(exc.value)
    assert 'would refuse new SSH connections from 198.51.100.1 to port 2222 on this host; nothing was changed' in message
    assert 'kubeports_admin_cidrs' in message and 'kubeports_lockout_guard: false' in message
    assert guard.check(Backend([Admission(None, [(2222, 2222)], 'y')]), {}, Change(),
                       (CLIENT, 40000, '192.0.2.1', 2222)) is None
    assert 'not connected over SSH' in guard.check(Backend([]), {}, Change(), None)
    assert 'cannot read' in guard.check(Backend(None), {}, Change(), (CLIENT, 1, '192.0.2.1', 22))


def test_firewalld_simulate_applies_one_view():
    view = empty_view()
    view['ports'] = {'22/tcp'}
    view['ipsets'] = {'kubeports-admins': {'family': 'inet', 'entries': {'198.51.100.1/32'}}}
    after = simulate(view, [('runtime', 'remove', 'ports', '22/tcp'), ('permanent', 'add', 'ports', '80/tcp'),
                            ('runtime', 'remove_entry', 'kubeports-admins', '198.51.100.1/32'),
                            ('runtime', 'add', 'rich', 'r')], 'runtime')
    assert after['ports'] == set() and after['rich'] == {'r'}
    assert after['ipsets']['kubeports-admins']['entries'] == set()
    assert view['ports'] == {'22/tcp'}  # the current view is left alone


USER_RULES = """
### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in
### tuple ### allow tcp 2200 0.0.0.0/0 any 198.51.100.0/24 in comment=6b756265706f7274733a61646d696e73
### tuple ### allow tcp 8080 0.0.0.0/0 any 0.0.0.0/0 in_eth1
"""


def ufw(tmp_path, monkeypatch, policy='DROP'):
    defaults = tmp_path / 'ufw'
    defaults.write_text('IPV6=yes\nDEFAULT_INPUT_POLICY="%s"\n' % policy)
    monkeypatch.setattr('ansible_collections.kubeports.firewall.plugins.module_utils.backends.ufw.DEFAULTS',
                        str(defaults))
    return UfwBackend(lambda argv, check=True: (0, '', ''), {})


def test_ufw_admissions_after_a_change(tmp_path, monkeypatch):
    backend = ufw(tmp_path, monkeypatch)
    rules = parse_user_rules(USER_RULES)
    current = {'rules': rules, 'before': {'ipv4': [], 'ipv6': []}}
    owned = rules[1].rule
    change = Change(removed=['x'])
    change.rules = ([UfwRule('in', 'tcp', '2200', '203.0.113.0/24', '0.0.0.0/0', 'kubeports:admins')], [owned])
    found = backend.admissions_after(current, change, CLIENT)
    assert guard.admits(found, CLIENT, 22) is not None
    assert guard.admits(found, CLIENT, 2200) is None  # the admins rule went to other CIDRs
    assert guard.admits(found, CLIENT, 8080) is None  # only on eth1
    assert guard.admits(ufw(tmp_path, monkeypatch, 'ACCEPT').admissions_after(current, change, CLIENT),
                        CLIENT, 2200) is not None


@pytest.mark.parametrize('text, expected', [
    ('DEFAULT_INPUT_POLICY="ACCEPT"\n', 'ACCEPT'), ('DEFAULT_INPUT_POLICY=drop # x\n', 'DROP'), ('', 'DROP'),
])
def test_parse_input_policy(text, expected):
    assert parse_input_policy(text) == expected


@pytest.mark.parametrize('config, running, port, admitted', [
    ('FW_SERVICES_EXT_TCP="ssh 6443"\n', True, 22, True),
    ('FW_SERVICES_EXT_TCP="6443"\n', True, 22, False),
    ('FW_SERVICES_EXT_TCP="2000:3000"\n', True, 2222, True),
    ('FW_SERVICES_ACCEPT_EXT="198.51.100.0/24,tcp,22"\n', True, 22, True),
    ('FW_SERVICES_ACCEPT_EXT="203.0.113.0/24,tcp,22"\n', True, 22, False),
    ('FW_TRUSTED_NETS="198.51.100.1"\n', True, 2222, True),
    ('FW_CONFIGURATIONS_EXT="sshd"\n', True, 22, True),
    ('FW_SERVICES_EXT_TCP=""\n', False, 22, True),
])
def test_susefirewall2_admissions(config, running, port, admitted):
    backend = SuseFirewall2Backend(lambda argv, check=True: (0, '', ''), {})
    found = backend.admissions_after({'running': running, 'text': config}, Change(), CLIENT)
    assert (guard.admits(found, CLIENT, port) is not None) is admitted


def test_every_backend_describes_what_it_admits():
    from ansible_collections.kubeports.firewall.plugins.module_utils.apply import BACKENDS
    from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import Backend
    for backend in BACKENDS:
        assert backend.admissions_after is not Backend.admissions_after, backend.name


class FakeZone(object):
    def __init__(self, target='default', services=(), ports=()):
        self.target, self.services, self.ports = target, list(services), list(ports)

    def getTarget(self):
        return self.target

    def getServices(self):
        return self.services

    def getPorts(self):
        return self.ports

    def getProtocols(self):
        return []

    def getRichRules(self):
        return []


class FakeService(object):
    def __init__(self, ports):
        self.ports = ports

    def getPorts(self):
        return self.ports


class FakeFirewalld(object):
    def __init__(self, zones, active, interface_zone=None):
        self.zones, self.active, self.interface_zone = zones, active, interface_zone

    def getActiveZones(self):
        return self.active

    def getZoneOfInterface(self, interface):
        return self.interface_zone

    def getDefaultZone(self):
        return 'public'

    def getZoneSettings(self, zone):
        return self.zones[zone]

    def getServiceSettings(self, name):
        return FakeService({'ssh': [('22', 'tcp')], 'cockpit': [('9090', 'tcp')]}[name])


@pytest.mark.parametrize('zones, active, runtime_ports, trusted, port, admitted', [
    ({'public': FakeZone(services=['ssh'])}, {}, set(), set(), 22, True),
    ({'public': FakeZone(services=['cockpit'])}, {}, set(), set(), 22, False),
    ({'public': FakeZone()}, {}, {'2222/tcp'}, set(), 2222, True),
    ({'public': FakeZone(target='ACCEPT')}, {}, set(), set(), 22, True),
    ({'public': FakeZone(), 'trusted': FakeZone(target='ACCEPT')}, {}, set(), {'198.51.100.0/24'}, 22, True),
    ({'public': FakeZone(services=['ssh']), 'block': FakeZone(target='%%REJECT%%')},
     {'block': {'sources': ['198.51.100.0/24']}}, set(), set(), 22, False),
])
def test_firewalld_admissions(zones, active, runtime_ports, trusted, port, admitted):
    from ansible_collections.kubeports.firewall.plugins.module_utils.backends.firewalld import FirewalldBackend
    backend = FirewalldBackend(lambda argv, check=True: (0, '198.51.100.1 dev eth0 src 192.0.2.1', ''), {})
    backend._fw, backend.zone = FakeFirewalld(zones, active), 'public'
    runtime = empty_view()
    runtime['ports'], runtime['trusted'] = set(runtime_ports), set(trusted)
    found = backend.admissions_after({'runtime': runtime}, Change(), CLIENT)
    assert (guard.admits(found, CLIENT, port) is not None) is admitted
