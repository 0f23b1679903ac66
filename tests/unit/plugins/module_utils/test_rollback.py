"""The commit-confirmed state machine: pending record, confirmation, the host's own rollback."""

import json
import os
import time

import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils import guard, rollback
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import BackendError

PREVIOUS = [{'protocol': 'tcp', 'port': '22', 'sources': ['0.0.0.0/0', '::/0'], 'source_set': None}]
NEW = PREVIOUS + [{'protocol': 'tcp', 'port': '6443', 'sources': ['0.0.0.0/0', '::/0'], 'source_set': None}]


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(rollback, 'PENDING_LOCK', str(tmp_path / 'pending.lock'))
    directory = tmp_path / 'state'
    directory.mkdir()
    return str(directory)


def pending(state_dir, **fields):
    record = {'token': 't1', 'deadline': time.time() + 60, 'timeout': 60,
              'previous': {'rules': PREVIOUS, 'public_ports': []}, 'new': {'rules': NEW, 'public_ports': []},
              'options': {'backend': 'firewalld', 'state_dir': state_dir, 'lock_timeout': 5},
              'faults': [], 'pid': None}
    record.update(fields)
    rollback.write_json(os.path.join(state_dir, rollback.PENDING), record)
    return record


class FakeApplied(object):
    class change(object):
        added = ['port 6443/tcp']
        removed = []


@pytest.fixture
def applies(monkeypatch):
    calls = []

    def fake(run_command, options, rules, check_mode=False, before_write=None, sets=None, locked=False):
        calls.append((options, rules))
        return FakeApplied()
    monkeypatch.setattr(rollback, 'apply_rules', fake)
    monkeypatch.setattr(rollback, 'run_command', lambda argv, check=True, data=None: calls.append(argv) or (0, '', ''))
    return calls


@pytest.mark.parametrize('environ, expected', [
    ({'SSH_CONNECTION': '198.51.100.1 40222 192.0.2.11 2222'}, ('198.51.100.1', 40222, '192.0.2.11', 2222)),
    ({'SSH_CONNECTION': '2001:db8::1 40222 2001:db8::11 22'}, ('2001:db8::1', 40222, '2001:db8::11', 22)),
    ({'SSH_CONNECTION': 'garbage'}, None),
])
def test_ssh_connection_from_the_environment(environ, expected, tmp_path):
    assert guard.ssh_connection(environ, proc=str(tmp_path)) == expected


def test_ssh_connection_from_an_ancestor_when_sudo_dropped_it(tmp_path):
    parent = tmp_path / str(os.getppid())
    parent.mkdir()
    (parent / 'environ').write_bytes(b'PATH=/bin\0SSH_CONNECTION=198.51.100.1 5 192.0.2.1 22\0')
    (parent / 'stat').write_text('%d (sudo) S 1 1 1' % os.getppid())
    assert guard.ssh_connection({}, proc=str(tmp_path)) == ('198.51.100.1', 5, '192.0.2.1', 22)
    assert guard.ssh_connection({}, proc=str(tmp_path / 'none')) is None


def test_confirm_makes_the_change_the_applied_one(state_dir):
    pending(state_dir)
    assert rollback.confirm(state_dir, 't1') == (True, 'confirmed')
    applied = rollback.read_json(os.path.join(state_dir, rollback.APPLIED))
    assert applied == {'rules': NEW, 'public_ports': [], 'token': 't1'}
    assert not os.path.exists(os.path.join(state_dir, rollback.PENDING))
    assert rollback.confirm(state_dir, 't1') == (False, 'already confirmed')
    with pytest.raises(BackendError, match='no pending change with token t2 .* the host rolled it back'):
        rollback.confirm(state_dir, 't2')


def test_confirm_during_a_rollback_fails(state_dir):
    pending(state_dir, rolling_back=True)
    with pytest.raises(BackendError, match='came too late'):
        rollback.confirm(state_dir, 't1')


def test_rollback_restores_the_previous_rules_and_removes_faults(state_dir, applies):
    record = pending(state_dir, faults=['kptestfault'])
    line = rollback.roll_back(record, 'not confirmed within 60 s')
    assert 'rolled back t1 (not confirmed within 60 s): 0 added, 1 removed back' in line
    assert ['nft', 'delete', 'table', 'inet', 'kptestfault'] in applies
    options, rules = [call for call in applies if isinstance(call, tuple)][0]
    assert rules == PREVIOUS and options['prune'] is True and options['backend'] == 'firewalld'
    assert not os.path.exists(os.path.join(state_dir, rollback.PENDING))
    with open(os.path.join(state_dir, rollback.LOG)) as handle:
        assert 'rolled back t1' in handle.read()


def test_rollback_after_a_confirmation_does_nothing(state_dir, applies):
    record = pending(state_dir)
    rollback.confirm(state_dir, 't1')
    assert rollback.roll_back(record, 'late') is None
    assert applies == []


def test_timer_rolls_back_at_the_deadline_unless_confirmed(state_dir, applies):
    pending(state_dir, deadline=time.time() + 0.2)
    path = os.path.join(state_dir, rollback.PENDING)
    assert rollback.timer_main(path, 't1') == 0
    assert [call for call in applies if isinstance(call, tuple)][0][1] == PREVIOUS
    applies[:] = []
    pending(state_dir, deadline=time.time() + 0.2)
    rollback.confirm(state_dir, 't1')
    assert rollback.timer_main(path, 't1') == 0
    assert applies == []


PLAN = rollback.plan_of(NEW, {}, [])
OTHER = rollback.plan_of(PREVIOUS, {}, [])
APPLIED_RECORD = {'token': 't1', 'applied': 1.0, 'new': {'rules': NEW, 'sets': {}, 'public_ports': []}}


@pytest.mark.parametrize('record, plan, timer, applier, give_up, expected', [
    (None, PLAN, False, False, False, ('proceed', None)),
    # The module that armed it still runs (it is between its apply and marking it applied).
    (dict(APPLIED_RECORD, applied=None), PLAN, True, True, False, ('wait', 'still applying')),
    # The module was killed before the change was complete: rolled back at once, whatever the plan.
    (dict(APPLIED_RECORD, applied=None), PLAN, True, False, False, ('roll back', 'ended before the change was complete')),
    # The timer is gone (a restart): rolled back at once.
    (APPLIED_RECORD, PLAN, False, False, False, ('roll back', 'timer was gone')),
    # The timer is rolling it back: wait; its rollback interrupted: rolled back again.
    (dict(APPLIED_RECORD, rolling_back=True), PLAN, True, False, False, ('wait', 'rolling it back')),
    (dict(APPLIED_RECORD, rolling_back=True), PLAN, False, False, False, ('roll back', 'interrupted')),
    # Applied completely, the same plan: taken over (a killed controller, two runs at once).
    (APPLIED_RECORD, PLAN, True, False, False, ('adopt', 'plan is the same')),
    (dict(APPLIED_RECORD, new={'rules': NEW}), PLAN, True, False, True, ('adopt', 'plan is the same')),
    # Another plan: wait for its own run's confirmation, then roll it back.
    (APPLIED_RECORD, OTHER, True, False, False, ('wait', 'may still confirm it')),
    (APPLIED_RECORD, OTHER, True, False, True, ('roll back', 'plan differs')),
    # Uninstall takes nothing over.
    (APPLIED_RECORD, None, True, False, True, ('roll back', 'plan differs')),
])
def test_decide(record, plan, timer, applier, give_up, expected):
    action, why = rollback.decide(record, plan, timer, applier, give_up)
    assert action == expected[0]
    assert why == expected[1] if expected[1] is None else expected[1] in why


@pytest.fixture
def timer(monkeypatch):
    """Whether the pending change's timer runs, and the applying module's process group."""
    state = {'timer': True, 'group': False}
    monkeypatch.setattr(rollback, 'alive', lambda pid, token: state['timer'])
    monkeypatch.setattr(rollback, 'group_alive', lambda group: state['group'])
    return state


def test_the_same_plan_is_taken_over_and_either_confirmation_confirms_it(state_dir, timer, applies):
    pending(state_dir, applied=1.0, deadline=time.time() + 2)
    settler = rollback.Settler(state_dir, PLAN, 60)
    assert settler(False) is True
    assert settler.adopted['token'] == 't1' and settler.adopted['deadline'] > time.time() + 50
    assert 'token t1' in settler.notes[0] and 'took it over' in settler.notes[0]
    assert not settler.rolled_back and applies == []
    assert rollback.confirm(state_dir, 't1') == (True, 'confirmed')
    # A later change replaced the applied record: the other run's confirmation is still answered.
    rollback.record_applied(state_dir, PREVIOUS, [])
    assert rollback.confirm(state_dir, 't1')[0] is False


def test_the_same_plan_without_confirmation_is_confirmed_at_once(state_dir, timer, applies):
    pending(state_dir, applied=1.0)
    settler = rollback.Settler(state_dir, PLAN, 0)
    assert settler(False) is True and settler.adopted is None
    assert 'confirmed' in settler.notes[0]
    assert rollback.read_json(os.path.join(state_dir, rollback.APPLIED))['rules'] == NEW
    assert rollback.confirm(state_dir, 't1') == (False, 'already confirmed (by a later run without confirmation '
                                                        '(confirm_timeout 0))')


def test_another_plan_waits_for_its_confirmation_then_rolls_it_back(state_dir, timer, applies):
    pending(state_dir, applied=1.0)
    settler = rollback.Settler(state_dir, OTHER, 60)
    assert settler(False) is False and applies == []
    line = settler(True)
    assert line is True and settler.rolled_back
    assert 'token t1' in settler.notes[0] and 'plan differs' in settler.notes[0]
    assert [call for call in applies if isinstance(call, tuple)][0][1] == PREVIOUS
    with pytest.raises(BackendError, match='the change t1 was rolled back: this run.s plan differs'):
        rollback.confirm(state_dir, 't1')


def test_a_change_its_module_left_incomplete_is_rolled_back_at_once(state_dir, timer, applies):
    pending(state_dir, applied=None)
    timer['group'] = True
    settler = rollback.Settler(state_dir, PLAN, 60)
    assert settler(False) is False
    with pytest.raises(BackendError, match='still applying it; gave up after waiting'):
        settler(True)
    timer['group'] = False
    assert settler(False) is True and settler.rolled_back and settler.adopted is None
    assert 'ended before the change was complete' in settler.notes[0]
    assert not os.path.exists(os.path.join(state_dir, rollback.PENDING))


def test_a_stale_pending_change_is_rolled_back_before_the_next_run(state_dir, applies):
    pending(state_dir, pid=999999999, applied=1.0)
    settler = rollback.Settler(state_dir, PLAN, 60)
    assert settler(False) is True
    assert 'timer was gone' in settler.notes[0]
    assert rollback.Settler(str(os.path.join(state_dir, 'none')), PLAN, 60)(False) is True


def test_the_timer_keeps_a_deadline_a_later_run_moved(state_dir, applies):
    record = pending(state_dir, deadline=time.time() + 0.2)
    rollback.write_json(os.path.join(state_dir, rollback.PENDING), dict(record, deadline=time.time() + 60))
    assert rollback.roll_back(record, 'late', due=True) is False
    assert applies == []


def test_a_taken_over_change_replaced_by_a_later_one_is_answered(state_dir, monkeypatch, tmp_path):
    pending(state_dir, applied=1.0)
    payload = tmp_path / 'payload.zip'
    payload.write_text('')
    monkeypatch.setattr(rollback, 'payload_path', lambda: str(payload))
    monkeypatch.setattr(rollback.subprocess, 'Popen', lambda *args, **kwargs: type('P', (), {'pid': 1})())
    record = rollback.arm({'state_dir': state_dir}, NEW, 60, 'ufw')
    changed, message = rollback.confirm(state_dir, 't1')
    assert changed is False and 'taken over by the change %s' % record['token'] in message


def test_record_applied_writes_only_changes(state_dir):
    rollback.record_applied(state_dir, NEW, [])
    path = os.path.join(state_dir, rollback.APPLIED)
    before = os.stat(path).st_mtime_ns
    time.sleep(0.01)
    rollback.record_applied(state_dir, NEW, [])
    assert os.stat(path).st_mtime_ns == before
    with open(path) as handle:
        assert json.load(handle)['rules'] == NEW


def test_arm_without_the_module_payload_refuses(state_dir, monkeypatch):
    monkeypatch.setattr(rollback, 'payload_path', lambda: None)
    with pytest.raises(BackendError, match='cannot arm the rollback'):
        rollback.arm({'state_dir': state_dir}, NEW, 60, 'ufw')


@pytest.mark.parametrize('present, foreign, check_mode, removed, kept', [
    (['applied.json', 'ufw.json'], [], False, ['applied.json', 'ufw.json', ''], []),
    (['applied.json', 'firewalld.json', 'rollback.log'], ['notes.txt'], False,
     ['applied.json', 'firewalld.json', 'rollback.log'], []),
    (['pending.json', 'susefirewall2.json'], [], True, ['pending.json', 'susefirewall2.json'],
     ['pending.json', 'susefirewall2.json']),
    ([], [], False, [''], []),
    # A run killed between writing a record and renaming it left its temporary file.
    (['.tmp.g37a474i', 'applied.json'], ['.notes.tmp'], False, ['.tmp.g37a474i', 'applied.json'], []),
    (['.tmp.x1'], [], True, ['.tmp.x1'], ['.tmp.x1']),
])
def test_forget_removes_only_the_collections_records(tmp_path, present, foreign, check_mode, removed, kept):
    state_dir = tmp_path / 'kubeports'
    state_dir.mkdir()
    for name in present + foreign:
        (state_dir / name).write_text('{}')
    gone = rollback.forget(str(state_dir), ['firewalld.json', 'ufw.json', 'susefirewall2.json'], check_mode)
    assert sorted(gone) == sorted(str(state_dir / name) if name else str(state_dir) for name in removed)
    left = sorted(path.name for path in state_dir.iterdir()) if state_dir.exists() else []
    assert left == sorted(kept + foreign)


@pytest.mark.parametrize('previous, sets, addresses, new', [
    # Never applied here: new wherever a set holds it.
    (None, {'cluster': ['10.0.0.0/30'], 'self': ['10.0.0.5/32']}, ['10.0.0.5/32'], True),
    (None, {'etcd': ['10.0.0.1/32']}, ['10.0.0.5/32'], False),
    # Applied with it before (as part of a merged CIDR): not new.
    ({'cluster': ['10.0.0.4/30'], 'self': ['10.0.0.5/32']}, {'cluster': ['10.0.0.0/29'], 'self': ['10.0.0.5/32']},
     ['10.0.0.5/32'], False),
    # A new address (the own set held the old one).
    ({'cluster': ['10.0.0.4/32'], 'self': ['10.0.0.4/32']}, {'cluster': ['10.0.0.5/32'], 'self': ['10.0.0.5/32']},
     ['10.0.0.5'], True),
    # A set it joins now (a new role) that did not exist before.
    ({'cluster': ['10.0.0.5/32']}, {'cluster': ['10.0.0.5/32'], 'etcd': ['10.0.0.5/32']}, ['10.0.0.5/32'], True),
    # IPv6 and IPv4 are told apart.
    ({'cluster': ['10.0.0.0/8']}, {'cluster': ['10.0.0.0/8', 'fd00::/64']}, ['fd00::5/128'], True),
    ({'cluster': ['fd00::/64']}, {'cluster': ['fd00::/64']}, ['fd00::5'], False),
    # No addresses given: nothing is new.
    (None, {'cluster': ['10.0.0.0/8']}, [], False),
])
def test_new_to_peer_sets(previous, sets, addresses, new):
    assert rollback.new_to_peer_sets(previous, sets, addresses) is new


def test_applied_sets_read_from_the_record(state_dir):
    assert rollback.applied_sets(state_dir) is None
    rollback.record_applied(state_dir, [], [], {'cluster': ['10.0.0.0/8']})
    assert rollback.applied_sets(state_dir) == {'cluster': ['10.0.0.0/8']}
