"""A crashed or failed run never blocks the next one (docs/safe-apply.md, "Runs that meet a
pending change"), on the default lab over real SSH: the controller killed right after a host
armed a change, the module killed while applying, two runs of open_ports at once, and bad
input while a change awaits confirmation.

node1 and node5 run firewalld, node3 and node4 ufw. Ports 39611-39619 are used only here.
"""

import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import BIN, COLLECTIONS, PLAYBOOKS, kill_tree
from test_port_rules import module, ruleset
from test_safe_apply import CLUSTER, CONFIRM, PENDING, playbook, recap, rules_of, with_vars

SETTLED = '/var/lib/kubeports/settled.json'
HOSTS = ('node1', 'node3', 'node4', 'node5')

# Runs on a lab host: waits for pending.json (at most 120 s), then kills the port_rules module's
# own process (python running AnsiballZ_port_rules.py), found by its command line, by its id.
# Prints "killed PID applied=BOOL", or "none".
KILL_MODULE = r"""
import json, os, signal, sys, time
pending = sys.argv[1]
end = time.monotonic() + 120
while time.monotonic() < end and not os.path.exists(pending):
    time.sleep(0.005)
killed = []
for entry in os.listdir('/proc'):
    if not entry.isdigit():
        continue
    try:
        with open('/proc/%s/cmdline' % entry, 'rb') as handle:
            argv = handle.read().split(b'\0')
    except OSError:
        continue
    if len(argv) > 1 and b'python' in os.path.basename(argv[0]) and argv[1].endswith(b'AnsiballZ_port_rules.py'):
        os.kill(int(entry), signal.SIGKILL)
        killed.append(entry)
try:
    with open(pending) as handle:
        applied = bool(json.load(handle).get('applied'))
except (OSError, ValueError):
    applied = None
print('killed %s applied=%s' % (','.join(killed), applied) if killed else 'none', flush=True)
"""


def extra(port, hosts=HOSTS):
    return with_vars(**dict((host, {'kubeports_extra_rules': [
        {'protocol': 'tcp', 'port': port, 'to': ['all'], 'from': ['cluster']}]}) for host in hosts))


def start(lab, workdir, cluster, *args):
    """ansible-playbook open_ports.yml in the background, as run_playbook runs it; output to a file."""
    workdir = str(workdir)
    inventory = os.path.join(workdir, 'inventory')
    shutil.rmtree(inventory, ignore_errors=True)
    os.makedirs(inventory)
    shutil.copy(lab.inventory_path, os.path.join(inventory, '00-lab.yml'))
    with open(os.path.join(inventory, '10-cluster.yml'), 'w') as handle:
        handle.write(json.dumps(cluster))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_HOST_KEY_CHECKING='False',
               ANSIBLE_NOCOLOR='1', PATH=str(BIN) + os.pathsep + os.environ.get('PATH', ''))
    env.pop('ANSIBLE_CONFIG', None)
    output = open(os.path.join(workdir, 'output.txt'), 'w')  # pylint: disable=consider-using-with
    try:
        return subprocess.Popen([str(BIN / 'ansible-playbook'), str(PLAYBOOKS / 'open_ports.yml'), '-i', inventory,
                                 '-e', 'kubeports_confirm_timeout=%d' % CONFIRM] + list(args),
                                stdout=output, stderr=subprocess.STDOUT, env=env, cwd=workdir, start_new_session=True)
    finally:
        output.close()


def output_of(workdir):
    with open(os.path.join(str(workdir), 'output.txt')) as handle:
        return handle.read()


def wait_for(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def settled(lab, host):
    out = lab.exec(host, ['cat', SETTLED]).stdout
    return json.loads(out) if out.strip() else {}


def no_pending(lab, hosts):
    return [host for host in hosts if lab.exec(host, ['test', '-e', PENDING]).returncode == 0]


def converged_again(lab, workdir, cluster, hosts, *args):
    """A further run changes nothing on ``hosts`` and leaves no pending change."""
    proc = playbook(lab, workdir, cluster, *args)
    assert proc.returncode == 0, proc.stdout[-4000:]
    lines = recap(proc.stdout)
    for host in hosts:
        assert 'changed=0' in lines[host] and 'failed=0' in lines[host], lines[host]
    assert not no_pending(lab, hosts)


@pytest.fixture(scope='module')
def base(lab, tmp_path_factory):
    """The lab converged on CLUSTER; its rules per host, to compare with at the end."""
    workdir = tmp_path_factory.mktemp('interrupted')
    proc = playbook(lab, workdir, CLUSTER)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return workdir, dict((host, rules_of(lab, host)) for host in HOSTS)


def back_to_base(lab, base):
    """CLUSTER again: what the runs under test created is pruned, nothing else is left."""
    workdir, rules = base
    proc = playbook(lab, workdir, CLUSTER)
    assert proc.returncode == 0, proc.stdout[-4000:]
    for host in HOSTS:
        assert rules_of(lab, host) == rules[host], host
    assert not no_pending(lab, HOSTS)


def test_rerun_right_after_the_controller_was_killed_converges_at_once(lab, base, tmp_path):
    host = 'node5'
    cluster = extra(39611, [host])
    # A deadline far off, so only the next run can settle the change in time.
    killed = start(lab, tmp_path / 'killed', cluster, '-e', 'kubeports_hosts=%s' % host, '-e', 'kubeports_confirm_timeout=600')
    try:
        wait_for(lambda: killed.poll() is not None or lab.exec(host, ['test', '-e', PENDING]).returncode == 0,
                 120, 'the change was never armed')
        assert killed.poll() is None, output_of(tmp_path / 'killed')[-3000:]
    finally:
        kill_tree(killed)
    token = json.loads(lab.exec(host, ['cat', PENDING]).stdout)['token']
    started = time.monotonic()
    proc = playbook(lab, tmp_path, cluster, '-e', 'kubeports_hosts=%s' % host)
    assert proc.returncode == 0, proc.stdout[-4000:]
    # At once: it did not wait for the killed run (lock_timeout 60 s) nor its deadline.
    assert time.monotonic() - started < 60
    assert 'token %s' % token in proc.stdout, proc.stdout[-4000:]
    # Applied completely (the module outlives its connection): taken over and confirmed by this
    # run's confirmation; the module ended before that: rolled back and applied again.
    outcome = settled(lab, host)[token]
    if 'took it over' in proc.stdout:
        assert outcome['outcome'] == 'confirmed', outcome
    else:
        assert outcome['outcome'] == 'rolled back' and 'before the change was complete' in outcome['reason'], outcome
    assert '39611' in ruleset(lab, host)
    converged_again(lab, tmp_path, cluster, [host], '-e', 'kubeports_hosts=%s' % host)
    back_to_base(lab, base)


@pytest.mark.parametrize('host', ['node1', 'node3'])
def test_rerun_after_the_module_was_killed_while_applying_converges_and_prunes(lab, base, tmp_path, host):
    cluster = extra('39612-39613', [host])
    killer = lab.spawn(host, ['python3', '-c', KILL_MODULE, PENDING])
    run = start(lab, tmp_path / 'killed', cluster, '-e', 'kubeports_hosts=%s' % host, '-e', 'kubeports_confirm_timeout=600')
    try:
        out, _err = killer.communicate(timeout=150)
        run.wait(timeout=300)
    finally:
        if killer.poll() is None:
            killer.kill()
        kill_tree(run)
    assert out.startswith('killed '), (out, output_of(tmp_path / 'killed')[-3000:])
    assert run.returncode != 0
    token = json.loads(lab.exec(host, ['cat', PENDING]).stdout)['token']
    proc = playbook(lab, tmp_path, cluster, '-e', 'kubeports_hosts=%s' % host)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert 'token %s' % token in proc.stdout, proc.stdout[-4000:]
    outcome = settled(lab, host)[token]['outcome']
    # Killed before it marked the change applied completely: rolled back; after: taken over.
    assert outcome == ('confirmed' if 'applied=True' in out else 'rolled back'), (out, outcome)
    assert '39612' in ruleset(lab, host)
    converged_again(lab, tmp_path, cluster, [host], '-e', 'kubeports_hosts=%s' % host)
    # Everything the killed module created was recorded: pruning leaves exactly what was before.
    back_to_base(lab, base)


def test_two_runs_at_once_both_succeed(lab, base, tmp_path):
    cluster = extra(39614)
    runs = [start(lab, tmp_path / name, cluster, '-e', 'kubeports_serial=100%') for name in ('first', 'second')]
    try:
        for run in runs:
            run.wait(timeout=400)
    finally:
        for run in runs:
            kill_tree(run)
    outputs = [output_of(tmp_path / name) for name in ('first', 'second')]
    for run, out in zip(runs, outputs):
        assert run.returncode == 0, out[-4000:]
        lines = recap(out)
        for host in HOSTS:
            assert 'failed=0' in lines[host] and 'unreachable=0' in lines[host], lines[host]
    for host in HOSTS:
        assert '39614' in ruleset(lab, host), host
    assert not no_pending(lab, HOSTS)
    converged_again(lab, tmp_path, cluster, HOSTS, '-e', 'kubeports_serial=100%')
    back_to_base(lab, base)


def test_bad_input_while_a_change_is_pending_names_the_bad_value(lab, base):
    host = 'node4'
    rules = [{'protocol': 'tcp', 'port': '39615', 'sources': [lab.address('node1') + '/32'], 'source_set': 'probe'}]
    status, result = module(lab, host, {'rules': rules, 'confirm_timeout': 60})
    assert status == 'CHANGED' and result['rollback']['token'], result
    token = result['rollback']['token']
    try:
        bad = [
            ({'protocol': 'tcp', 'port': '2379', 'sources': ['0.0.0.0/0', '::/0'], 'source_set': None},
             'tcp/2379 (etcd) would be open to anyone'),
            ({'protocol': 'tcp', 'port': '39616', 'sources': ['10.0.0.300/32'], 'source_set': 'probe'},
             '10.0.0.300/32'),
        ]
        for rule, named in bad:
            status, result = module(lab, host, {'rules': [rule], 'confirm_timeout': 60})
            assert status == 'FAILED!' and named in result['msg'], result
            assert 'awaits confirmation' not in result['msg'], result
        assert json.loads(lab.exec(host, ['cat', PENDING]).stdout)['token'] == token
        # The same rules without confirmation: the pending change is confirmed at once.
        status, result = module(lab, host, {'rules': rules, 'confirm_timeout': 0})
        assert status == 'SUCCESS' and any('token %s' % token in line and 'confirmed' in line
                                           for line in result['messages']), result
        assert settled(lab, host)[token]['outcome'] == 'confirmed'
    finally:
        back_to_base(lab, base)
