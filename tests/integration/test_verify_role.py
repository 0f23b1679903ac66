"""The verify playbook on the default lab, after open-ports: every probe ok on a healthy lab,
exactly the injected faults reported, and no listener left behind in any case.

node2 has no role: it probes as an outsider. Addresses are dual-stack, so every port is
probed over IPv4 and IPv6.
"""

import json
import os
import subprocess
import time

import pytest

from conftest import BIN, COLLECTIONS, PLAYBOOKS, browse, kill_tree, run_playbook
from test_audit import REMOVE_2379

# A dual-stack Flannel cluster; SSH only from the controller (not a probing host).
PROFILE = {
    'kubeports_address': '{{ [ansible_host, lab_ipv6] }}',
    'kubeports_cni': 'flannel',
    # The collection's own defaults, not kubespray's (which trust the pod network everywhere).
    'kubeports_installer': 'none',
    'kubeports_admin_cidrs': ['198.51.100.1', '2001:db8:100::1'],
    'kubeports_api_client_cidrs': ['198.51.100.0/24', '2001:db8:100::/64'],
}
CLUSTER = {
    'all': {
        'children': {
            'kube_control_plane': {'hosts': {'node1': None, 'node3': None}},
            'etcd': {'hosts': {'node1': None, 'node3': None}},
            'kube_node': {'hosts': {'node4': None, 'node5': None}},
            'outside': {'hosts': {'node2': None}},
        },
        'vars': PROFILE,
    },
}
LISTENER_NAME = 'kubeports-lsnr'
RECORD = '/run/kubeports/verify-listeners.json'


def verify(lab, workdir, *extra, timeout=600, inventory_cluster=None):
    """Runs the verify playbook on a cluster (default CLUSTER); returns (process, JSON report)."""
    reports = os.path.join(str(workdir), 'reports')
    report = os.path.join(reports, 'verify.json')
    if os.path.exists(report):
        os.unlink(report)
    proc = run_playbook(lab, workdir, inventory_cluster or CLUSTER, 'verify.yml',
                        '-e', 'kubeports_verify_report_dir=' + reports,
                        *extra, timeout=timeout)
    data = None
    if os.path.exists(report):
        with open(report) as handle:
            data = json.load(handle)
    return proc, data


def key(record):
    return (record['source'], record['target'], record['address'], record['protocol'], record['port'])


def listener_pids():
    """Live listener processes (exited ones wait as zombies until this machine's init reaps them)."""
    out = subprocess.run(['pgrep', '-x', LISTENER_NAME], capture_output=True, text=True, check=False).stdout
    live = []
    for pid in out.split():
        try:
            with open('/proc/%s/stat' % pid) as handle:
                if handle.read().rsplit(')', 1)[1].split()[0] != 'Z':
                    live.append(int(pid))
        except OSError:
            pass
    return live


def assert_nothing_left(lab):
    assert listener_pids() == []
    for host in lab.hosts:
        sockets = lab.exec(host, ['ss', '-Htlnup']).stdout.splitlines()
        assert [line for line in sockets if 'sshd' not in line] == [], (host, sockets)
        assert lab.exec(host, ['test', '-e', RECORD]).returncode == 1, host


@pytest.fixture(scope='module')
def healthy(lab, tmp_path_factory):
    workdir = tmp_path_factory.mktemp('verify')
    proc = run_playbook(lab, workdir, CLUSTER, 'open-ports.yml')
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    proc, report = verify(lab, workdir)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    return workdir, report


def test_healthy_lab_every_probe_ok_twice(lab, healthy):
    workdir, first = healthy
    _proc, second = verify(lab, workdir)
    for report in (first, second):
        assert report['summary']['mismatches'] == 0 and report['mismatches'] == []
    assert sorted(map(key, first['probes'])) == sorted(map(key, second['probes']))
    probes = first['probes']
    expected = set((p['expected'], p['protocol'], ':' in p['address']) for p in probes)
    # Allowed and denied, TCP and UDP, IPv4 and IPv6 are all probed.
    assert expected >= {('open', 'tcp', False), ('open', 'tcp', True), ('open', 'udp', False),
                        ('open', 'udp', True), ('blocked', 'tcp', False), ('blocked', 'udp', True)}
    # The examples of denied traffic.
    denied = set((p['source'], p['target'], p['port']) for p in probes if p['expected'] == 'blocked')
    assert {('node4', 'node1', 2379), ('node4', 'node3', 2380), ('node5', 'node4', 10250),
            ('node2', 'node5', 8472)} <= denied
    assert all(p['observed'] in ('closed', 'filtered') for p in probes if p['expected'] == 'blocked')
    assert all(p['observed'] == 'open' for p in probes if p['expected'] == 'open')
    # The SSH ports are open only to the admin address, which is not a probing host.
    reasons = [(item['target'], item['port'], item['reason']) for item in first['not_probed']]
    ssh = [reason for target, port, reason in reasons if (target, port) == ('node1', '22')]
    assert ssh and all(reason.startswith('no probing host is among the allowed sources (') for reason in ssh)
    assert all('198.51.100.1/32' in reason and '2001:db8:100::1/128' in reason for reason in ssh)
    assert any(r.startswith('only the host itself') for _t, _p, r in reasons)
    assert os.path.exists(os.path.join(str(workdir), 'reports', 'verify.md'))
    dom = browse(os.path.join(str(workdir), 'reports', 'verify.html'), 'verify.png')
    assert dom.count('class="row ok"') == len(probes) and 'class="row mismatch"' not in dom
    assert_nothing_left(lab)


FAULTS = [
    # A VXLAN drop between two hosts (IPv4 only), by the firewall's own means.
    ('node5', ['firewall-cmd', '--add-rich-rule=rule family=ipv4 source address=198.51.100.14 '
                               'port port=8472 protocol=udp drop'],
     ['firewall-cmd', '--remove-rich-rule=rule family=ipv4 source address=198.51.100.14 '
                      'port port=8472 protocol=udp drop']),
    # etcd's client port removed from an etcd host (ufw: from its running peer-set rules), as an operator might.
    ('node3', ['python3', '-c', REMOVE_2379], None),
    # etcd's client port opened to everyone on the other etcd host (firewalld).
    ('node1', ['firewall-cmd', '--add-port=2379/tcp'], ['firewall-cmd', '--remove-port=2379/tcp']),
]


def expected_mismatches(report):
    """The probes the three faults turn into mismatches, from a healthy report."""
    found = set()
    for p in report['probes']:
        if (p['source'], p['target'], p['protocol'], p['port'], p['address']) == \
                ('node4', 'node5', 'udp', 8472, '198.51.100.15'):
            found.add(key(p))
        if p['target'] == 'node3' and p['port'] == 2379 and p['expected'] == 'open':
            found.add(key(p))
        if p['target'] == 'node1' and p['port'] == 2379 and p['expected'] == 'blocked':
            found.add(key(p))
    return found


def test_injected_faults_are_reported_exactly(lab, healthy):
    workdir, before = healthy
    wanted = expected_mismatches(before)
    # node5's VXLAN from node4 over IPv4; node3's 2379 from node1 and node1's from node2 and both
    # workers, over both families.
    assert len(wanted) == 1 + 2 + 6
    try:
        for host, inject, _undo in FAULTS:
            result = lab.exec(host, inject)
            assert result.returncode == 0, (host, result.stdout, result.stderr)
        assert '2379/tcp' not in lab.exec('node3', ['ufw', 'status']).stdout
        proc, report = verify(lab, workdir)
        assert proc.returncode != 0 and 'did not see what the plan expects' in proc.stdout
        assert set(map(key, report['mismatches'])) == wanted
        assert report['probes'][:len(wanted)] == report['mismatches']
        by_key = dict((key(p), p) for p in report['mismatches'])
        assert by_key[('node4', 'node5', '198.51.100.15', 'udp', 8472)]['observed'] == 'filtered'
        assert all(p['observed'] == 'open' for p in report['mismatches'] if p['expected'] == 'blocked')
        assert_nothing_left(lab)
        # Report only: the same findings, and the play succeeds.
        proc, report = verify(lab, workdir, '-e', 'kubeports_verify_fail_on_mismatch=false')
        assert proc.returncode == 0, proc.stdout[-4000:]
        assert set(map(key, report['mismatches'])) == wanted
    finally:
        for host, _inject, undo in FAULTS:
            if undo:
                lab.exec(host, undo)
        # Puts node3's etcd rules back.
        run_playbook(lab, workdir, CLUSTER, 'open-ports.yml')
    proc, report = verify(lab, workdir)
    assert proc.returncode == 0 and report['summary']['mismatches'] == 0, proc.stdout[-4000:]


def test_check_mode_probes_too(lab, healthy):
    workdir, first = healthy
    proc, report = verify(lab, workdir, '--check')
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert sorted(map(key, report['probes'])) == sorted(map(key, first['probes']))
    assert_nothing_left(lab)


def test_failing_probe_task_still_stops_listeners(lab, healthy):
    workdir, _report = healthy
    proc, _report = verify(lab, workdir, '-e', 'kubeports_verify_timeout=0')
    assert proc.returncode != 0 and 'timeout must be above 0' in proc.stdout
    assert_nothing_left(lab)


def test_listeners_outlive_a_dead_controller_only_until_their_lifetime(lab, healthy):
    workdir, _report = healthy
    lifetime = 12
    inventory = os.path.join(str(workdir), 'inventory')
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_HOST_KEY_CHECKING='False')
    env.pop('ANSIBLE_CONFIG', None)
    # Long probe timeouts keep the play in its probing step while the controller is killed.
    proc = subprocess.Popen([str(BIN / 'ansible-playbook'), str(PLAYBOOKS / 'verify.yml'), '-i', inventory,
                             '-e', 'kubeports_verify_listener_lifetime=%d' % lifetime,
                             '-e', 'kubeports_verify_timeout=30', '-e', 'kubeports_verify_report_dir='],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=str(workdir),
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(listener_pids()) < 4 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        started = time.monotonic()
        assert len(listener_pids()) == 4
    finally:
        kill_tree(proc)
    assert len(listener_pids()) == 4
    deadline = started + lifetime + 10
    while listener_pids() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert_nothing_left(lab)
