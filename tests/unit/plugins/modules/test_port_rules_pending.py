"""port_rules finding a change of an earlier run that awaits confirmation: its input is checked
first, then the change is taken over (the same plan), waited for, or rolled back, and the
result says which. In-process, with a fake backend; no firewall is read or changed."""

import json
import os
import threading
import time

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.kubeports.firewall.plugins.module_utils import apply, rollback
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import Backend, Change
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import RULE_OPTIONS
from ansible_collections.kubeports.firewall.plugins.modules import port_rules

GIVEN = {'protocol': 'tcp', 'port': '6443', 'sources': ['10.0.0.0/24'], 'source_set': 'cluster'}
# As the module's argument spec hands it on (and so as a pending change records it).
RULE = dict((name, GIVEN.get(name, spec.get('default'))) for name, spec in RULE_OPTIONS.items())


class FakeBackend(Backend):
    """Stands in for a firewall: the wanted rule is there unless ``missing``."""

    name = 'fake'
    missing = False

    def read(self):
        return {}

    def compare(self, desired, current, prune):
        return Change(added=['tcp/6443'] if self.missing else [])

    def apply(self, change):
        pass

    def verify(self, desired, current, prune):
        pass


@pytest.fixture
def host(tmp_path, monkeypatch):
    """Locks and state_dir under tmp_path, the fake backend, the pending change's timer alive
    and its module gone; returns the state_dir."""
    monkeypatch.setattr(apply, 'LOCK_PATH', str(tmp_path / 'kubeports-firewall.lock'))
    monkeypatch.setattr(rollback, 'PENDING_LOCK', str(tmp_path / 'kubeports-pending.lock'))
    monkeypatch.setattr(apply, 'choose_backend', lambda name, run_command, options: FakeBackend(run_command, options))
    monkeypatch.setattr(rollback, 'alive', lambda pid, token: True)
    monkeypatch.setattr(rollback, 'group_alive', lambda group: False)
    FakeBackend.missing = False
    state_dir = tmp_path / 'state'
    state_dir.mkdir()
    return str(state_dir)


def run(args, capsys):
    with patch_module_args(dict(args, lockout_guard=False, lock_timeout=2)):
        with pytest.raises(SystemExit):
            port_rules.main()
    return json.loads(capsys.readouterr().out)


def pending(state_dir, rules, applied=1.0):
    record = {'token': 'earlier', 'deadline': time.time() + 30, 'timeout': 30, 'applied': applied,
              'previous': {'rules': [], 'sets': {}, 'public_ports': []},
              'new': {'rules': rules, 'sets': {}, 'public_ports': []},
              'options': {'backend': 'fake', 'state_dir': state_dir, 'lock_timeout': 5}, 'faults': [], 'pid': None}
    rollback.write_json(os.path.join(state_dir, rollback.PENDING), record)
    return record


@pytest.mark.parametrize('rule, named', [
    (dict(RULE, port='2379', sources=['0.0.0.0/0', '::/0'], source_set=None), 'tcp/2379'),
    (dict(RULE, sources=['10.0.0.300/32']), '10.0.0.300/32'),
])
def test_bad_input_is_refused_naming_it_while_a_change_is_pending(capsys, host, rule, named):
    pending(host, [RULE])
    result = run({'rules': [rule], 'state_dir': host, 'confirm_timeout': 30}, capsys)
    assert result['failed'] and named in result['msg'], result['msg']
    assert 'awaits confirmation' not in result['msg']
    assert rollback.read_json(os.path.join(host, rollback.PENDING))['token'] == 'earlier'


def test_the_same_plan_takes_the_pending_change_over(capsys, host, monkeypatch):
    warnings = []
    # In-process the warning goes to the controller's display; collect it instead.
    monkeypatch.setattr(port_rules.AnsibleModule, 'warn', lambda self, text: warnings.append(text))
    pending(host, [RULE])
    result = run({'rules': [RULE], 'state_dir': host, 'confirm_timeout': 30}, capsys)
    assert not result.get('failed') and not result['changed'], result
    assert result['rollback']['token'] == 'earlier' and result['rollback']['taken_over'] is True
    assert result['rollback']['deadline'] > time.time() + 25
    assert any('token earlier' in line and 'took it over' in line for line in result['messages'])
    assert any('token earlier' in warning for warning in warnings), warnings
    # Nothing is recorded as applied before a confirmation.
    assert rollback.read_json(os.path.join(host, rollback.APPLIED)) is None


def test_a_change_its_module_left_incomplete_is_rolled_back_then_applied(capsys, host):
    pending(host, [RULE], applied=None)
    FakeBackend.missing = True
    result = run({'rules': [RULE], 'state_dir': host, 'confirm_timeout': 0}, capsys)
    assert not result.get('failed') and result['changed'], result
    assert 'rollback' not in result
    assert any('token earlier' in line and 'rolled back earlier' in line for line in result['messages'])
    assert not os.path.exists(os.path.join(host, rollback.PENDING))
    assert rollback.read_json(os.path.join(host, rollback.APPLIED))['rules'][0]['port'] == '6443'


def test_check_mode_settles_nothing_and_says_so(capsys, host):
    pending(host, [RULE], applied=None)
    result = run({'rules': [RULE], 'state_dir': host, '_ansible_check_mode': True}, capsys)
    assert any('token earlier' in line and 'a real run settles it first' in line for line in result['messages'])
    assert rollback.read_json(os.path.join(host, rollback.PENDING))['token'] == 'earlier'


def test_a_second_run_waits_under_the_lock_timeout_for_the_confirmation(host):
    """The lock is let go while waiting, so the first run's confirmation (and the host's own
    rollback) can come; the second run goes on once the change is settled."""
    pending(host, [RULE])
    settler = rollback.Settler(host, rollback.plan_of([dict(RULE, port='6444')], {}, []), 30)
    confirmer = threading.Timer(0.8, rollback.confirm, (host, 'earlier'))
    confirmer.start()
    started = time.monotonic()
    try:
        handle = apply.acquire_lock(10, settler)
    finally:
        confirmer.join(timeout=10)
    handle.close()
    assert 0.7 < time.monotonic() - started < 5
    assert settler.notes == [] and not settler.rolled_back
    assert rollback.read_json(os.path.join(host, rollback.APPLIED))['token'] == 'earlier'
