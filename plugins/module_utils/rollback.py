# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Commit-confirmed apply: before a change the host arms its own rollback, a detached timer
that restores the previous rules (no reload, no flush) unless the change is confirmed over a
new SSH connection in time. Needs no systemd and survives the controller and the SSH
connection dying at any point.

Files in the state directory:
- ``applied.json``: the rules (with their sets and public_ports) of the last change that was confirmed, or
  applied without confirmation; a rollback restores these.
- ``pending.json``: a change that awaits confirmation: its token, deadline, the previous and
  the new rules, the backend options, the timer's pid, the process group of the module that
  armed it, and when that module had applied it completely (``applied``).
- ``settled.json``: how the last changes were settled (confirmed or rolled back, and why), so a
  confirmation that comes after another run settled the change is answered.
- ``rollback-payload.zip``: a copy of the module's code, which the timer runs.
- ``rollback.log``: what each rollback did.

Runs on the managed host: standard library only.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fcntl
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from ansible_collections.kubeports.firewall.plugins.module_utils.apply import apply_rules
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import TEMPORARY_PREFIX, BackendError
from ansible_collections.kubeports.firewall.plugins.module_utils.privileges import os_error_message

PENDING = 'pending.json'
APPLIED = 'applied.json'
SETTLED = 'settled.json'
SETTLED_KEEP = 50
PAYLOAD = 'rollback-payload.zip'
LOG = 'rollback.log'
PENDING_LOCK = '/run/kubeports-pending.lock'
# Test-only hook of the lab (docs/lab.md): when this file exists, a change is followed by a
# fault that drops new connections to the SSH port, which only the rollback removes.
TEST_FAULT = '/run/kubeports/test-fault-block-new-ssh'
FAULT_TABLE = 'kptestfault'
BOOT = ('import sys; sys.path.insert(0, sys.argv[1]); '
        'from ansible_collections.kubeports.firewall.plugins.module_utils.rollback import timer_main; '
        'sys.exit(timer_main(sys.argv[2], sys.argv[3]))')
OPTION_NAMES = ('backend', 'firewalld_zone', 'state_dir', 'allow_restart', 'lock_timeout', 'ufw_peer_sets')


def _path(state_dir, name):
    return os.path.join(state_dir, name)


def read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (IOError, OSError):
        return None
    except ValueError as exc:
        raise BackendError('%s is not valid JSON (%s); fix or remove it' % (path, exc))


def write_json(path, data):
    directory = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=TEMPORARY_PREFIX)
    with os.fdopen(handle, 'w') as stream:
        json.dump(data, stream, indent=2, sort_keys=True)
        stream.flush()
        os.fsync(stream.fileno())
    os.rename(temporary, path)


def remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass


class PendingLock(object):
    """Serializes the confirmation with the timer's decision to roll back."""

    def __enter__(self):
        try:
            self.handle = open(PENDING_LOCK, 'w')  # pylint: disable=consider-using-with
        except (IOError, OSError) as exc:
            raise BackendError(os_error_message(exc, 'open the lock file', PENDING_LOCK))
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self.handle.close()


def run_command(argv, check=True, data=None):
    """AnsibleModule.run_command's contract, for the timer (which runs without Ansible)."""
    try:
        proc = subprocess.run(argv, input=data, capture_output=True, text=True, timeout=300, check=False)
    except OSError as exc:
        if check:
            raise BackendError('%s failed: %s' % (' '.join(argv), exc))
        return 127, '', str(exc)
    if check and proc.returncode != 0:
        raise BackendError('%s failed (rc=%d): %s' % (' '.join(argv), proc.returncode,
                                                      (proc.stderr or proc.stdout).strip()))
    return proc.returncode, proc.stdout, proc.stderr


def payload_path():
    """The zip of the running module's code (Ansible's AnsiballZ payload), or None."""
    for entry in sys.path:
        if entry.endswith('_payload.zip') and os.path.isfile(entry):
            return entry
    return None


def alive(pid, token):
    """True when ``pid`` is this pending change's timer."""
    try:
        with open('/proc/%d/cmdline' % int(pid), 'rb') as handle:
            return token.encode() in handle.read()
    except (IOError, OSError, TypeError, ValueError):
        return False


def group_alive(group):
    """True when a process of the process group ``group`` (the module that armed a change, and
    the firewall commands it started) still runs."""
    if not group:
        return False
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as handle:
                if int(handle.read().rsplit(')', 1)[1].split()[2]) == int(group):
                    return True
        except (IOError, OSError, ValueError, IndexError):
            continue
    return False


def plan_of(rules, sets, public_ports):
    """A change's rules, sets and public ports as one comparable value."""
    return json.dumps({'rules': rules or [], 'sets': sets or {}, 'public_ports': sorted(public_ports or [])},
                      sort_keys=True)


def decide(record, plan, timer_alive, applier_alive, give_up):
    """What a new run does with the pending change ``record`` it found (pure).

    ``plan``: the new run's plan_of, or None when it cannot take the change over (uninstall).
    Returns ('proceed', None), ('wait', why), ('adopt', why) or ('roll back', reason).
    """
    if not record:
        return 'proceed', None
    if record.get('rolling_back'):
        if timer_alive:
            return 'wait', 'the host is rolling it back'
        return 'roll back', 'its rollback was interrupted'
    if not timer_alive:
        return 'roll back', 'its timer was gone (the host restarted?)'
    if not record.get('applied'):
        if applier_alive:
            return 'wait', 'the run that armed it is still applying it'
        return 'roll back', 'the run that armed it ended before the change was complete'
    new = record.get('new') or {}
    if plan is not None and plan == plan_of(new.get('rules'), new.get('sets'), new.get('public_ports')):
        return 'adopt', 'this run\'s plan is the same'
    if give_up:
        return 'roll back', 'this run\'s plan differs and it was not confirmed while this run waited'
    return 'wait', 'the run that armed it may still confirm it'


class Settler(object):
    """The module's settle hook (apply.acquire_lock): under the host's lock, settles a change
    of an earlier run that awaits confirmation before this run plans its own.

    A change this run's plan equals (and that was applied completely) is taken over: this run
    returns its token, and this run's confirmation over a new connection confirms it (without a
    confirmation, ``timeout`` 0, it is confirmed at once). Any other is rolled back, at once
    when the run that armed it can no longer confirm it, else after waiting for its
    confirmation up to lock_timeout. ``notes`` say what was settled and how."""

    def __init__(self, state_dir, plan, timeout):
        self.state_dir, self.plan, self.timeout = state_dir, plan, timeout
        self.notes, self.adopted, self.waited, self.rolled_back = [], None, None, False

    def __call__(self, give_up):
        for _attempt in range(3):
            record = read_json(_path(self.state_dir, PENDING))
            if not record:
                return True
            action, why = decide(record, self.plan, alive(record.get('pid'), record.get('token', '')),
                                 group_alive(record.get('group')), give_up)
            token = record.get('token')
            if action == 'wait':
                if give_up:
                    raise BackendError('a change of an earlier run (token %s) awaits confirmation and %s; gave up '
                                       'after waiting %d s (lock_timeout); nothing was changed'
                                       % (token, why, time.time() - (self.waited or time.time())))
                if self.waited is None:
                    self.waited = time.time()
                return False
            if action == 'roll back':
                waited = ' after waiting %d s' % (time.time() - self.waited) if self.waited else ''
                line = roll_back(record, reason='%s%s' % (why, waited), locked=True)
                if line:
                    self.rolled_back = True
                    self.notes.append('a change of an earlier run (token %s) awaited confirmation: %s' % (token, line))
                    return True
            elif self.timeout > 0:
                self.adopted = adopt(record, self.timeout)
                if self.adopted:
                    self.notes.append('a change of an earlier run (token %s) awaited confirmation; %s, so this run '
                                      'took it over: its confirmation over a new connection confirms it' % (token, why))
                    return True
            else:
                try:
                    confirm(self.state_dir, token, by='a later run without confirmation (confirm_timeout 0)')
                    self.notes.append('a change of an earlier run (token %s) awaited confirmation; %s: confirmed'
                                      % (token, why))
                    return True
                except BackendError:
                    pass  # rolled back or settled meanwhile: look again
        return False


def adopt(record, timeout):
    """Takes a pending change over: its deadline moves to ``timeout`` seconds from now (when
    later). Returns the record, or None when it was settled meanwhile."""
    with PendingLock():
        current = read_json(_path(record['options']['state_dir'], PENDING))
        if not current or current.get('token') != record['token'] or current.get('rolling_back'):
            return None
        current['deadline'] = max(current.get('deadline') or 0, time.time() + timeout)
        current['adopted'] = (current.get('adopted') or 0) + 1
        write_json(_path(record['options']['state_dir'], PENDING), current)
    return current


def arm(options, rules, timeout, backend_name, sets=None):
    """Records the pending change and starts the host's rollback timer; returns the record."""
    try:
        return _arm(options, rules, timeout, backend_name, sets)
    except (IOError, OSError) as exc:
        raise BackendError('%s; nothing was changed' % os_error_message(exc, 'arm the rollback:'))


def _arm(options, rules, timeout, backend_name, sets):
    state_dir = options['state_dir']
    source = payload_path()
    if source is None:
        raise BackendError('cannot arm the rollback: the module\'s code was not found on the host; nothing was '
                           'changed. Run with confirm_timeout: 0 (kubeports_confirm_timeout) to apply without it')
    payload = _path(state_dir, PAYLOAD)
    shutil.copyfile(source, payload)
    applied = read_json(_path(state_dir, APPLIED)) or {'rules': [], 'sets': {}, 'public_ports': []}
    record = {
        'token': uuid.uuid4().hex,
        'deadline': time.time() + timeout,
        'timeout': timeout,
        'previous': {'rules': applied.get('rules', []), 'sets': applied.get('sets') or {},
                     'public_ports': applied.get('public_ports', [])},
        'new': {'rules': rules, 'sets': sets or {}, 'public_ports': list(options.get('public_ports') or [])},
        'options': dict((name, options.get(name)) for name in OPTION_NAMES),
        'faults': [],
        'pid': None,
        'group': os.getpgrp(),
        'applied': None,
    }
    record['options']['backend'] = backend_name
    pending = _path(state_dir, PENDING)
    earlier = read_json(pending)
    if earlier and earlier.get('token'):
        # A change this run took over (Settler) is part of this one now; its timer ends.
        settled(state_dir, earlier['token'], {'outcome': 'taken over', 'by': record['token']})
    write_json(pending, record)
    log = open(_path(state_dir, LOG), 'a')  # pylint: disable=consider-using-with
    try:
        timer = subprocess.Popen([sys.executable, '-c', BOOT, payload, pending, record['token']],
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True,
                                 start_new_session=True, cwd='/')
    finally:
        log.close()
    record['pid'] = timer.pid
    write_json(pending, record)
    return record


def mark_applied(record, port):
    """After the change was applied completely: marks it so (a later run may take it over), and
    the lab's test hook drops new connections to the SSH port until the rollback. Returns the
    record as written."""
    state_dir = record['options']['state_dir']
    with PendingLock():
        current = read_json(_path(state_dir, PENDING))
        if not current or current.get('token') != record['token']:
            return record
        if os.path.exists(TEST_FAULT):
            script = ('table inet %s {\n chain input {\n  type filter hook input priority -10; policy accept;\n'
                      '  tcp dport %d ct state new drop\n }\n}\n' % (FAULT_TABLE, port))
            run_command(['nft', '-f', '-'], data=script)
            current['faults'] = (current.get('faults') or []) + [FAULT_TABLE]
        current['applied'] = time.time()
        write_json(_path(state_dir, PENDING), current)
    return current


def remove_faults(record):
    for table in record.get('faults') or ():
        run_command(['nft', 'delete', 'table', 'inet', table], check=False)


def settled(state_dir, token, outcome):
    """Keeps how ``token`` was settled (the last SETTLED_KEEP changes)."""
    path = _path(state_dir, SETTLED)
    try:
        history = read_json(path) or {}
    except BackendError:
        history = {}
    history[token] = dict(outcome, at=time.time())
    for old in sorted(history, key=lambda name: history[name].get('at') or 0)[:-SETTLED_KEEP]:
        del history[old]
    write_json(path, history)


def confirm(state_dir, token, by=None):
    """Confirms a pending change: the timer is stopped and the change becomes the applied one.

    Returns (changed, message); BackendError when the change is gone or was rolled back.
    """
    with PendingLock():
        record = read_json(_path(state_dir, PENDING))
        applied = read_json(_path(state_dir, APPLIED)) or {}
        if not record or record.get('token') != token:
            try:
                outcome = (read_json(_path(state_dir, SETTLED)) or {}).get(token)
            except BackendError:
                outcome = None
            if not outcome and applied.get('token') == token:
                return False, 'already confirmed'
            if outcome and outcome.get('outcome') == 'confirmed':
                return False, 'already confirmed' + (' (by %s)' % outcome['by'] if outcome.get('by') else '')
            if outcome and outcome.get('outcome') == 'taken over':
                return False, 'taken over by the change %s of a later run, which its confirmation confirms' % outcome['by']
            if outcome:
                raise BackendError('the change %s was rolled back: %s (see %s)'
                                   % (token, outcome.get('reason'), _path(state_dir, LOG)))
            raise BackendError('no pending change with token %s in %s: the host rolled it back (see %s)'
                               % (token, state_dir, _path(state_dir, LOG)))
        if record.get('rolling_back'):
            raise BackendError('the confirmation came too late: the host is rolling the change back (see %s)'
                               % _path(state_dir, LOG))
        if alive(record.get('pid'), token):
            try:
                os.kill(int(record['pid']), signal.SIGTERM)
            except (OSError, TypeError, ValueError):
                pass
        remove_faults(record)
        write_json(_path(state_dir, APPLIED), dict(record['new'], token=token))
        settled(state_dir, token, {'outcome': 'confirmed', 'by': by})
        remove(_path(state_dir, PENDING))
        remove(_path(state_dir, PAYLOAD))
    return True, 'confirmed'


def applied_sets(state_dir):
    """{set: members} as last applied on this host, or None when nothing was recorded."""
    applied = read_json(_path(state_dir, APPLIED))
    return None if applied is None else (applied.get('sets') or {})


def new_to_peer_sets(previous, sets, addresses):
    """Whether a peer set of ``sets`` that holds one of ``addresses`` did not hold it in
    ``previous`` (the sets as last applied; None: never applied here)."""
    wanted = [ipaddress.ip_network(address, strict=False) for address in addresses or ()]

    def holds(members, network):
        for member in members or ():
            try:
                found = ipaddress.ip_network(member, strict=False)
            except ValueError:
                continue
            if found.version == network.version and network.subnet_of(found):
                return True
        return False
    for name, members in sorted((sets or {}).items()):
        for network in wanted:
            if holds(members, network) and (previous is None or not holds(previous.get(name), network)):
                return True
    return False


def record_applied(state_dir, rules, public_ports, sets=None):
    """After a change applied without confirmation: it is what a later rollback restores."""
    record = {'rules': rules, 'sets': sets or {}, 'public_ports': list(public_ports or [])}
    if read_json(_path(state_dir, APPLIED)) != record:
        write_json(_path(state_dir, APPLIED), record)


RECORDS = (PENDING, APPLIED, SETTLED, PAYLOAD, LOG)


def _listdir(directory):
    try:
        return os.listdir(directory)
    except OSError:
        return []


def forget(state_dir, record_names, check_mode=False):
    """Uninstall: removes the collection's records in ``state_dir`` (the rollback's and the
    backends' ``record_names``) and the temporary files of writes a killed run left, then the
    directory when nothing else is in it. Returns the paths removed (or that would be)."""
    removed = [_path(state_dir, name) for name in RECORDS + tuple(record_names)
               if os.path.lexists(_path(state_dir, name))]
    removed.extend(_path(state_dir, name) for name in sorted(_listdir(state_dir)) if name.startswith(TEMPORARY_PREFIX))
    if check_mode:
        return removed
    for path in removed:
        os.unlink(path)
    try:
        os.rmdir(state_dir)
        removed.append(state_dir)
    except OSError:
        pass  # not empty (files of someone else's) or already gone
    return removed


def roll_back(record, reason, locked=False, due=False):
    """Restores the previous rules of a pending change; returns a one-line summary, None when
    it was settled meanwhile, False when ``due`` (the timer) and a later run moved the deadline.
    ``locked``: the caller holds the host's lock."""
    state_dir = record['options']['state_dir']
    with PendingLock():
        current = read_json(_path(state_dir, PENDING))
        if not current or current.get('token') != record['token']:
            return None  # confirmed meanwhile
        if due and current.get('deadline', 0) > time.time():
            return False
        current['rolling_back'] = True
        write_json(_path(state_dir, PENDING), current)
    if current.get('pid') and current['pid'] != os.getpid() and alive(current['pid'], record['token']):
        try:
            os.kill(int(current['pid']), signal.SIGTERM)
        except OSError:
            pass
    remove_faults(record)
    options = dict(record['options'], prune=True, public_ports=record['previous']['public_ports'])
    started = time.time()
    try:
        applied = apply_rules(run_command, options, record['previous']['rules'],
                              sets=record['previous'].get('sets') or {}, locked=locked)
        line = 'rolled back %s (%s): %d added, %d removed back in %.1f s' % (
            record['token'], reason, len(applied.change.removed), len(applied.change.added), time.time() - started)
    except BackendError as exc:
        line = 'rollback of %s (%s) FAILED: %s' % (record['token'], reason, exc)
    with open(_path(state_dir, LOG), 'a') as handle:
        handle.write('%s %s\n' % (time.strftime('%Y-%m-%dT%H:%M:%S'), line))
    settled(state_dir, record['token'], {'outcome': 'rolled back', 'reason': reason})
    remove(_path(state_dir, PENDING))
    remove(_path(state_dir, PAYLOAD))
    return line


def timer_main(pending, token):
    """The detached timer: waits for the deadline, then rolls back unless confirmed. A run that
    takes the change over moves the deadline."""
    signal.signal(signal.SIGTERM, lambda *_args: os._exit(0))
    record = read_json(pending)
    for _round in range(1000):
        if not record or record.get('token') != token:
            return 0
        while time.time() < record['deadline']:
            time.sleep(min(1.0, max(0.05, record['deadline'] - time.time())))
            current = read_json(pending)
            if not current or current.get('token') != token:
                return 0
            record = current
        if roll_back(record, reason='not confirmed within %d s' % record['timeout'], due=True) is not False:
            return 0
        record = read_json(pending)
    return 0
