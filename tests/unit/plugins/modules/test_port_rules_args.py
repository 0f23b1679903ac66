"""port_rules and port_rules_info share their options (port_rules_args) and their choice of
backend (apply.choose_backend): given the same shared input, both accept it as the same values
or refuse it with the same message. In-process, with fake firewalls; nothing is read or changed."""

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.kubeports.firewall.plugins.module_utils import apply, rollback
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import Backend, BackendError, Change
from ansible_collections.kubeports.firewall.plugins.module_utils.port_rules_args import RULES_ARG_SPEC
from ansible_collections.kubeports.firewall.plugins.modules import port_rules, port_rules_info

RULE = {'protocol': 'tcp', 'port': '6443', 'sources': ['10.0.0.0/24'], 'source_set': 'cluster'}
# What each module needs beside the shared input to get as far as its backend.
OWN_ARGS = {port_rules: {'lockout_guard': False}, port_rules_info: {}}
PORT_RULES_OWN = {'state', 'prune', 'allow_restart', 'lock_timeout', 'confirm_timeout', 'lockout_guard',
                  'firewalld_reload', 'ufw_peer_sets', 'own_addresses'}
CHOSEN_AGAINST_ACTIVE = ('backend ufw was chosen but firewalld is the active firewall on this host; nothing was '
                         'changed. Choose backend: firewalld (or auto)')


class FakeFirewall(Backend):
    """Stands in for one firewall: found (``detected``) and filtering traffic (``running``) as the
    test says; records the options it was made with."""

    detected = frozenset()
    active = frozenset()
    made = []

    def __init__(self, run_command, options):
        super(FakeFirewall, self).__init__(run_command, options)
        FakeFirewall.made.append(self)

    @classmethod
    def detect(cls, run_command):
        return cls.name in FakeFirewall.detected or cls.name in FakeFirewall.active

    @classmethod
    def running(cls, run_command):
        return cls.name in FakeFirewall.active

    def read(self):
        return {}

    def compare(self, desired, current, prune):
        return Change()

    def apply(self, change):
        raise AssertionError('nothing changes')

    def verify(self, desired, current, prune):
        pass

    def exposures(self, current):
        return []


class FakeFirewalld(FakeFirewall):
    name = 'firewalld'


class FakeUfw(FakeFirewall):
    name = 'ufw'


class FakeSuse(FakeFirewall):
    name = 'susefirewall2'


@pytest.fixture
def host(tmp_path, monkeypatch):
    """The fake firewalls in place of the real ones (none found), the locks under tmp_path;
    returns a writable state_dir."""
    monkeypatch.setattr(apply, 'BACKENDS', (FakeFirewalld, FakeUfw, FakeSuse))
    monkeypatch.setattr(apply, 'LOCK_PATH', str(tmp_path / 'kubeports-firewall.lock'))
    monkeypatch.setattr(rollback, 'PENDING_LOCK', str(tmp_path / 'kubeports-pending.lock'))
    monkeypatch.setattr(FakeFirewall, 'detected', frozenset())
    monkeypatch.setattr(FakeFirewall, 'active', frozenset())
    monkeypatch.setattr(FakeFirewall, 'made', [])
    state_dir = tmp_path / 'state'
    state_dir.mkdir()
    return str(state_dir)


def run(module, args, capsys):
    """The module's result (its JSON on stdout), after main() exits."""
    with patch_module_args(dict(OWN_ARGS[module], **args)):
        with pytest.raises(SystemExit):
            module.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    assert 'Traceback' not in out and 'exception' not in result, out
    return result


def run_both(args, capsys):
    return [run(module, args, capsys) for module in (port_rules, port_rules_info)]


@pytest.mark.parametrize('module', [port_rules, port_rules_info])
def test_each_module_takes_the_shared_options_and_adds_only_its_own(monkeypatch, module):
    class Built(Exception):
        pass

    def capture(argument_spec, **_):
        raise Built(argument_spec)
    monkeypatch.setattr(module, 'AnsibleModule', capture)
    with pytest.raises(Built) as built:
        module.main()
    spec = built.value.args[0]
    assert dict((name, spec[name]) for name in RULES_ARG_SPEC) == RULES_ARG_SPEC
    assert set(spec) - set(RULES_ARG_SPEC) == (PORT_RULES_OWN if module is port_rules else set())


@pytest.mark.parametrize('args, message', [
    ({'rules': [RULE], 'sets': {'cluster': '10.0.0.0/24'}}, "sets.cluster: expected a list of CIDRs, got '10.0.0.0/24'"),
    ({'rules': [RULE], 'sets': {'cluster': ['10.0.0.0/24', 10]}}, "sets.cluster: expected a list of CIDRs, got ['10.0.0.0/24', 10]"),
    ({'rules': [RULE], 'sets': {'cluster': None}}, 'sets.cluster: expected a list of CIDRs, got None'),
    ({'rules': [RULE], 'backend': 'nftables'}, 'value of backend must be one of: auto, firewalld, ufw, susefirewall2, got: nftables'),
    ({'rules': [dict(RULE, sorces=['10.0.0.1/32'])]}, 'sorces'),
    ({'rules': [{'port': '6443'}]}, 'missing required arguments: protocol'),
    ({'rules': [dict(RULE, protocol='tcpp')]}, 'value of protocol must be one of'),
    ({'rules': 'tcp/6443'}, 'dictionary requested, could not parse JSON or key=value'),
    ({'rules': [RULE], 'sets': ['10.0.0.0/24']}, 'sets'),
])
def test_both_modules_refuse_the_same_shared_input_with_the_same_message(capsys, host, args, message):
    refused = run_both(args, capsys)
    assert [result.get('failed') for result in refused] == [True, True], refused
    assert refused[0]['msg'] == refused[1]['msg']
    assert message in refused[0]['msg']
    assert FakeFirewall.made == []


@pytest.mark.parametrize('args, shared', [
    ({}, {'sets': {}, 'backend': 'auto', 'firewalld_zone': None, 'public_ports': []}),
    ({'sets': {'cluster': ['10.0.0.0/24']}, 'backend': 'firewalld', 'firewalld_zone': 'internal',
      'public_ports': ['tcp/10250']},
     {'sets': {'cluster': ['10.0.0.0/24']}, 'backend': 'firewalld', 'firewalld_zone': 'internal',
      'public_ports': ['tcp/10250']}),
    ({'public_ports': 'tcp/10250,udp/8472', 'sets': {'other': []}},
     {'public_ports': ['tcp/10250', 'udp/8472'], 'sets': {'other': []}, 'backend': 'auto'}),
])
def test_both_modules_accept_the_same_shared_input_as_the_same_values(capsys, host, args, shared):
    FakeFirewall.active = frozenset(['firewalld'])
    accepted = run_both(dict({'rules': [RULE], 'state_dir': host}, **args), capsys)
    assert [result.get('failed') for result in accepted] == [None, None], accepted
    assert [result['backend'] for result in accepted] == ['firewalld', 'firewalld']
    seen = [dict((name, made.options[name]) for name in RULES_ARG_SPEC) for made in FakeFirewall.made]
    assert len(seen) == 2 and seen[0] == seen[1]
    assert seen[0]['state_dir'] == host and seen[0]['rules'][0]['port'] == '6443'
    assert dict((name, seen[0][name]) for name in shared) == shared


@pytest.mark.parametrize('backend, active, detected, chosen', [
    ('auto', ['ufw'], [], ['ufw', 'ufw']),
    ('auto', ['firewalld', 'ufw'], [], ['firewalld', 'firewalld']),
    ('ufw', ['ufw'], [], ['ufw', 'ufw']),
    ('ufw', ['firewalld'], [], [CHOSEN_AGAINST_ACTIVE, CHOSEN_AGAINST_ACTIVE]),
    ('ufw', ['firewalld'], ['ufw'], [CHOSEN_AGAINST_ACTIVE, CHOSEN_AGAINST_ACTIVE]),
    # Where they differ on purpose: a change needs a firewall, a reading of none is an answer.
    ('auto', [], [], ['no active firewall found: looked for a running firewalld, an active ufw and a '
                      'SuSEfirewall2 configuration; choose one with backend', 'none']),
    ('auto', [], ['susefirewall2'], ['susefirewall2', 'none']),
    ('susefirewall2', [], ['susefirewall2'], ['susefirewall2', 'none']),
    ('ufw', [], [], ['ufw is not installed or not active on this host', 'none']),
])
def test_both_modules_choose_the_backend_with_one_function(capsys, host, backend, active, detected, chosen):
    FakeFirewall.active, FakeFirewall.detected = frozenset(active), frozenset(detected)
    results = run_both({'rules': [RULE], 'state_dir': host, 'backend': backend}, capsys)
    assert [result['msg'] if result.get('failed') else result['backend'] for result in results] == chosen


@pytest.mark.parametrize('backend, active, detected, manage, read', [
    ('auto', [], [], BackendError, None),
    ('auto', ['ufw', 'susefirewall2'], [], 'ufw', 'ufw'),
    ('auto', [], ['ufw'], 'ufw', None),
    ('firewalld', ['firewalld'], [], 'firewalld', 'firewalld'),
    ('firewalld', [], ['firewalld'], 'firewalld', None),
    ('firewalld', ['ufw'], ['firewalld'], BackendError, BackendError),
    ('nftables', [], [], BackendError, BackendError),
])
def test_choose_backend_to_manage_and_to_read(host, backend, active, detected, manage, read):
    FakeFirewall.active, FakeFirewall.detected = frozenset(active), frozenset(detected)
    for reading, expected in ((False, manage), (True, read)):
        if expected is BackendError:
            with pytest.raises(BackendError):
                apply.choose_backend(backend, None, {}, reading=reading)
            continue
        chosen = apply.choose_backend(backend, None, {}, reading=reading)
        assert (chosen.name if chosen is not None else None) == expected
