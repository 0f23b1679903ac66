"""What the roles' host modules (port_rules, port_rules_info, port_rules_confirm) say when the
host is not as they need it: run without root, the lock held or not to be opened, no firewall
command, a state_dir that cannot be written, a write that fails. Each is a message through
fail_json, never a traceback, and names the fix. The modules run in-process; no firewall is
read or changed (no firewall command is on PATH, or a fake backend stands in)."""

import errno
import fcntl
import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.kubeports.firewall.plugins.module_utils import apply, privileges, rollback
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import Backend, BackendError, Change
from ansible_collections.kubeports.firewall.plugins.modules import port_rules, port_rules_confirm, port_rules_info

RULE = {'protocol': 'tcp', 'port': '6443', 'sources': ['10.0.0.0/24'], 'source_set': 'cluster',
        'description': 'API server'}


def run(module, args, capsys):
    """The module's result (its JSON on stdout), after main() exits."""
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    assert 'Traceback' not in out and 'exception' not in result, out
    return result


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A host without firewall commands (PATH is an empty directory), with the locks and
    state_dir under tmp_path; returns the state_dir."""
    empty = tmp_path / 'bin'
    empty.mkdir()
    monkeypatch.setenv('PATH', str(empty))
    monkeypatch.setattr(apply, 'LOCK_PATH', str(tmp_path / 'kubeports-firewall.lock'))
    monkeypatch.setattr(rollback, 'PENDING_LOCK', str(tmp_path / 'kubeports-pending.lock'))
    state_dir = tmp_path / 'state'
    return str(state_dir)


@pytest.fixture
def not_root(monkeypatch):
    monkeypatch.setattr(privileges.os, 'geteuid', lambda: 1000)


class FakeBackend(Backend):
    """Stands in for a firewall: reads nothing, and each change is one added item."""

    name = 'fake'
    failure = None

    @classmethod
    def detect(cls, run_command):
        return True

    def read(self):
        return {}

    def compare(self, desired, current, prune):
        return Change(added=['tcp/6443'] if desired.restricted and not current else [])

    def apply(self, change):
        if self.failure is not None:
            raise self.failure  # pylint: disable=raising-bad-type

    def verify(self, desired, current, prune):
        pass


@pytest.fixture
def fake_backend(monkeypatch):
    FakeBackend.failure = None
    # port_rules and port_rules_info choose their backend with the same function.
    monkeypatch.setattr(apply, 'choose_backend', lambda name, run_command, options, **_: FakeBackend(run_command, options))
    return FakeBackend


@pytest.mark.parametrize('module, args, names', [
    (port_rules, {'rules': [RULE]}, ['port_rules must run as root', '/run/kubeports-firewall.lock']),
    (port_rules, {'state': 'absent'}, ['port_rules must run as root', '/run/kubeports-firewall.lock']),
    (port_rules, {'rules': [RULE], '_ansible_check_mode': True}, ['/run/kubeports-firewall.lock']),
    (port_rules_info, {'rules': [RULE]}, ['port_rules_info must run as root', 'which only root may read']),
    (port_rules_confirm, {'token': 'abc'}, ['port_rules_confirm must run as root', '/run/kubeports-pending.lock']),
])
def test_without_root_each_module_names_become(capsys, not_root, module, args, names):
    # Nothing is patched but the uid: the modules must refuse before they touch anything.
    result = run(module, args, capsys)
    assert result['failed']
    assert 'become: true' in result['msg'] and 'uid 1000' in result['msg']
    for name in names:
        assert name in result['msg']


def test_the_lock_says_become_when_it_cannot_be_opened_without_root(tmp_path, monkeypatch, not_root):
    def refused(path, mode='r'):
        raise PermissionError(errno.EACCES, 'Permission denied', path)
    monkeypatch.setattr(apply, 'open', refused, raising=False)
    with pytest.raises(BackendError) as raised:
        apply.acquire_lock(0)
    assert str(raised.value) == ('cannot open the lock file /run/kubeports-firewall.lock: Permission denied. Run it '
                                 'as root: set become: true on the play or the task (the collection\'s playbooks '
                                 'do); nothing was changed')


@pytest.mark.parametrize('error, expected', [
    (PermissionError(errno.EACCES, 'Permission denied'),
     'Permission denied even as root (a read-only mount, SELinux or AppArmor?); nothing was changed'),
    (OSError(errno.EROFS, 'Read-only file system'), 'Read-only file system (the file system is mounted read-only)'),
    (FileNotFoundError(errno.ENOENT, 'No such file or directory'), 'No such file or directory; nothing was changed'),
])
def test_a_lock_file_that_cannot_be_opened_is_a_message(capsys, host, monkeypatch, error, expected):
    def failing(path, mode='r'):
        error.filename = path
        raise error
    monkeypatch.setattr(apply, 'open', failing, raising=False)
    result = run(port_rules, {'rules': [RULE], 'state_dir': host}, capsys)
    assert result['failed'] and result['msg'].startswith('cannot open the lock file %s: ' % apply.LOCK_PATH)
    assert expected in result['msg']


def test_a_lock_another_run_holds_is_a_message(capsys, host):
    with open(apply.LOCK_PATH, 'w') as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run(port_rules, {'rules': [RULE], 'state_dir': host, 'lock_timeout': 0}, capsys)
    assert result['failed']
    assert result['msg'] == 'another kubeports run holds %s; gave up after 0 s (lock_timeout)' % apply.LOCK_PATH


@pytest.mark.parametrize('backend, message', [
    ('auto', 'no active firewall found: looked for a running firewalld, an active ufw and a SuSEfirewall2 '
             'configuration; choose one with backend'),
    ('firewalld', 'firewalld is not installed on this host (no firewall-cmd)'),
    ('ufw', 'ufw is not installed on this host (no ufw command)'),
])
def test_a_firewall_that_is_not_installed_is_a_message(capsys, host, backend, message):
    result = run(port_rules, {'rules': [RULE], 'state_dir': host, 'backend': backend}, capsys)
    assert result['failed'] and result['msg'] == message


def test_a_missing_command_is_a_message_not_the_end_of_the_module(host):
    class Module(object):
        def run_command(self, argv, data=None):
            raise AssertionError('a missing command must not reach AnsibleModule.run_command')
    run_command = apply.command_runner(Module())
    with pytest.raises(BackendError, match='^ipset: command not found on this host .PATH: .*bin.; install it'):
        run_command(['ipset', 'list', '-n'])
    assert run_command(['ipset', 'list', '-n'], check=False) == (127, '', 'ipset: command not found')


@pytest.mark.parametrize('make_state_dir, message', [
    (lambda path: path.write_text('x') and str(path), 'is not a directory; nothing was changed'),
    (lambda path: path.write_text('x') and str(path / 'sub'), 'cannot be written (Not a directory); nothing was changed'),
])
def test_a_state_dir_that_cannot_be_written_is_a_message(capsys, host, fake_backend, tmp_path, make_state_dir, message):
    state_dir = make_state_dir(tmp_path / 'file')
    result = run(port_rules, {'rules': [RULE], 'state_dir': state_dir, 'lockout_guard': False}, capsys)
    assert result['failed'] and result['msg'].startswith('state_dir %s ' % state_dir)
    assert message in result['msg'] and 'kubeports_state_dir' in result['msg']
    if 'not a directory;' in message:
        info = run(port_rules_info, {'rules': [RULE], 'state_dir': state_dir}, capsys)
        assert info['failed'] and info['msg'].startswith('state_dir %s is not a directory' % state_dir)


def test_a_write_that_fails_while_applying_is_a_message(capsys, host, fake_backend):
    fake_backend.failure = OSError(errno.ENOSPC, 'No space left on device', '/etc/ufw/user.rules')
    result = run(port_rules, {'rules': [RULE], 'state_dir': host, 'lockout_guard': False}, capsys)
    assert result['failed']
    assert result['msg'] == ('cannot apply the change: /etc/ufw/user.rules: No space left on device (the file system '
                             'is full)')


def test_the_fake_backend_applies_when_nothing_fails(capsys, host, fake_backend):
    result = run(port_rules, {'rules': [RULE], 'state_dir': host, 'lockout_guard': False}, capsys)
    assert not result.get('failed') and result['changed'] and result['backend'] == 'fake'


def test_a_pending_lock_that_cannot_be_opened_is_a_message(capsys, host, tmp_path, monkeypatch):
    monkeypatch.setattr(rollback, 'PENDING_LOCK', str(tmp_path / 'missing' / 'pending.lock'))
    result = run(port_rules_confirm, {'token': 'abc', 'state_dir': host}, capsys)
    assert result['failed']
    assert result['msg'] == ('cannot open the lock file %s: No such file or directory' % rollback.PENDING_LOCK)


def test_a_confirmation_without_a_pending_change_is_a_message(capsys, host):
    result = run(port_rules_confirm, {'token': 'abc', 'state_dir': host}, capsys)
    assert result['failed'] and result['msg'].startswith('no pending change with token abc in %s' % host)
