"""Safe apply on the default lab, proven with new SSH connections: a change that locks the
operator out is rolled back by the host itself (also when the controller dies), the
cluster's own chains survive every apply, nothing is left unrecorded, and traffic to ports
that stay open is never refused during an apply.

node1 and node5 run firewalld, node3 and node4 ufw. Ports 39601-39609 are used only here.
"""

import json
import os
import re
import subprocess
import time

import pytest

from conftest import BIN, COLLECTIONS, CONNECTIONS, PLAYBOOKS, kill_tree, run_playbook
from test_port_rules import LISTENER, module, ruleset

CONFIRM = 15
CLUSTER = {
    'all': {
        'children': {
            'kube_control_plane': {'hosts': {'node1': None, 'node3': None}},
            'etcd': {'hosts': {'node1': None, 'node3': None}},
            'kube_node': {'hosts': {'node4': None, 'node5': None}},
        },
        'vars': {'kube_network_plugin': 'flannel', 'enable_nodelocaldns': False},
    },
}
PENDING = '/var/lib/kubeports/pending.json'
ROLLBACK_LOG = '/var/lib/kubeports/rollback.log'
TEST_FAULT = '/run/kubeports/test-fault-block-new-ssh'


EMPTY_RUNTIME_SET = re.compile(r'^\tset (kubeports-\S+) \{\n\t\ttype \S+\n\t\tflags interval\n\t\}\n\n?', re.M)


def rules_of(lab, host, emptied=None):
    """The host's rules as sorted lines: a rollback restores every rule, not the order firewalld
    or nft list them in, nor the chains ufw rebuilds when it reloads its user rules.

    A peer set the rollback no longer wants is deleted from firewalld's permanent configuration
    and emptied in its runtime (docs/backends.md): with ``emptied`` (a set), empty runtime sets
    are left out and their names added to it."""
    if lab.hostvars[host]['lab_firewall'] == 'ufw':
        out = lab.exec(host, ['sh', '-c', 'grep -h "^### tuple" /etc/ufw/user.rules /etc/ufw/user6.rules; '
                                          'ufw status verbose']).stdout
        return sorted(out.splitlines())
    text = ruleset(lab, host)
    if emptied is not None:
        emptied.update(EMPTY_RUNTIME_SET.findall(text))
        text = EMPTY_RUNTIME_SET.sub('', text)
    return sorted(text.splitlines())


def with_vars(**host_vars):
    cluster = json.loads(json.dumps(CLUSTER))
    cluster['all']['children']['per_host'] = {'hosts': dict((host, values) for host, values in host_vars.items())}
    return cluster


def playbook(lab, workdir, cluster, *extra, staged=False):
    """The open-ports playbook; all hosts in one batch unless ``staged`` (the default rollout)."""
    batches = () if staged else ('-e', 'kubeports_serial=100%')
    return run_playbook(lab, workdir, cluster, 'open_ports.yml', '-e', 'kubeports_confirm_timeout=%d' % CONFIRM,
                        *(batches + extra))


def recap(output):
    return dict((line.split()[0], line) for line in output.splitlines() if ' : ok=' in line)


def new_ssh(lab, host):
    proc = lab.ssh(host, 'echo kubeports-alive', timeout=30)
    return proc.returncode == 0 and 'kubeports-alive' in proc.stdout


def wait_rolled_back(lab, hosts, seconds=CONFIRM + 45):
    """Until each host answers a new SSH connection and has no pending change (bounded)."""
    deadline = time.monotonic() + seconds
    left = list(hosts)
    while left and time.monotonic() < deadline:
        left = [host for host in left
                if lab.exec(host, ['test', '-e', PENDING]).returncode == 0 or not new_ssh(lab, host)]
        if left:
            time.sleep(1)
    assert not left, 'not rolled back: %s' % left
    for host in hosts:
        assert 'rolled back' in lab.exec(host, ['cat', ROLLBACK_LOG]).stdout


def foreign_ssh(lab, host, present):
    """The lab's own SSH allowance (firewalld's ssh service or port, ufw's rule), on or off."""
    port = lab.hostvars[host]['ansible_port']
    if lab.hostvars[host]['lab_firewall'] == 'firewalld':
        item = '--%s-service=ssh' % ('add' if present else 'remove') if port == 22 else \
            '--%s-port=%d/tcp' % ('add' if present else 'remove', port)
        for extra in ([], ['--permanent']):
            lab.exec(host, ['firewall-cmd', item] + extra, check=True)
    else:
        lab.exec(host, ['ufw'] + ([] if present else ['--force', 'delete']) + ['allow', '%d/tcp' % port], check=True)


@pytest.fixture(scope='module')
def converged(lab, tmp_path_factory):
    workdir = tmp_path_factory.mktemp('safe')
    proc = playbook(lab, workdir, CLUSTER)
    assert proc.returncode == 0, proc.stdout[-4000:]
    yield workdir
    for host in lab.hosts:
        lab.exec(host, ['rm', '-f', TEST_FAULT])


LOCKING = [
    # Admin CIDRs without the controller.
    ({'node1': {'kubeports_admin_cidrs': ['203.0.113.0/24']}, 'node3': {'kubeports_admin_cidrs': ['203.0.113.0/24']}}),
    # The collection stops managing SSH on hosts whose SSH rule it created.
    ({'node1': {'kubeports_manage_ssh': False}, 'node3': {'kubeports_manage_ssh': False}}),
    # sshd listens on 2200 on node4, but SSH is planned on 22.
    ({'node4': {'kubeports_ssh_port': 22}}),
]


@pytest.mark.parametrize('host_vars', LOCKING, ids=['admin-cidrs', 'manage-ssh-off', 'other-ssh-port'])
def test_lockout_guard_refuses_before_any_change(lab, converged, host_vars):
    # SSH is carried only by the collection's rule on the hosts under test.
    hosts = sorted(host_vars)
    for host in hosts:
        foreign_ssh(lab, host, False)
    try:
        # A change that keeps SSH open passes the guard through the collection's own SSH rule.
        fine = with_vars(**dict((host, {'kubeports_extra_rules': [
            {'protocol': 'tcp', 'port': 39607, 'to': ['all'], 'from': ['cluster']}]}) for host in hosts))
        proc = playbook(lab, converged, fine)
        assert proc.returncode == 0, proc.stdout[-3000:]
        before = dict((host, rules_of(lab, host)) for host in hosts)
        proc = playbook(lab, converged, with_vars(**host_vars))
        assert proc.returncode != 0
        lines = recap(proc.stdout)
        for host in hosts:
            assert 'failed=1' in lines[host], lines[host]
            port = lab.hostvars[host]['ansible_port']
            assert re.search(r'this change would refuse new SSH connections from \S+ to port %d on this host; '
                             r'nothing was changed' % port, proc.stdout), proc.stdout[-3000:]
            assert rules_of(lab, host) == before[host], host
            assert lab.exec(host, ['test', '-e', PENDING]).returncode != 0
            assert new_ssh(lab, host)
        others = [host for host in ('node1', 'node3', 'node4', 'node5') if host not in hosts]
        for host in others:
            assert 'failed=0' in lines[host] and 'unreachable=0' in lines[host], lines[host]
    finally:
        for host in hosts:
            foreign_ssh(lab, host, True)


def test_locking_change_with_the_guard_off_is_rolled_back_on_that_host_only(lab, converged):
    hosts = ['node1', 'node3']
    for host in hosts:
        foreign_ssh(lab, host, False)
    try:
        # ufw adds no SSH rule of its own while the lab's covers the port: converge again first.
        proc = playbook(lab, converged, CLUSTER)
        assert proc.returncode == 0, proc.stdout[-3000:]
        emptied_before = dict((host, set()) for host in hosts)
        before = dict((host, rules_of(lab, host, emptied_before[host])) for host in hosts)
        locked = with_vars(**dict((host, {'kubeports_admin_cidrs': ['203.0.113.0/24']}) for host in hosts))
        proc = playbook(lab, converged, locked, '-e', 'kubeports_lockout_guard=false')
        assert proc.returncode != 0
        lines = recap(proc.stdout)
        for host in hosts:
            assert 'unreachable=1' in lines[host], lines[host]
        for host in ('node4', 'node5'):
            assert 'unreachable=0' in lines[host] and 'failed=0' in lines[host], lines[host]
        wait_rolled_back(lab, hosts)
        for host in hosts:
            emptied = set()
            assert rules_of(lab, host, emptied) == before[host], host
            # With a reload the locking change brought its admins' set into the runtime: the
            # rollback leaves it there empty, and gone from the permanent configuration.
            assert emptied - emptied_before[host] <= {'kubeports-admins'}, (host, emptied)
            if emptied:
                permanent = lab.exec(host, ['firewall-cmd', '--permanent', '--get-ipsets'], check=True).stdout.split()
                assert not emptied & set(permanent), (host, emptied, permanent)
    finally:
        for host in hosts:
            foreign_ssh(lab, host, True)


def test_fault_after_apply_with_a_warm_master_is_rolled_back(lab, converged):
    # The play's tasks keep a ControlPersist master warm; the confirmation must not use it.
    hosts = ['node1', 'node4']
    before = dict((host, rules_of(lab, host)) for host in hosts)
    for host in hosts:
        lab.exec(host, ['sh', '-c', 'mkdir -p /run/kubeports && touch %s' % TEST_FAULT], check=True)
    try:
        changed = with_vars(**dict((host, {'kubeports_extra_rules': [
            {'protocol': 'tcp', 'port': 39601, 'to': ['all'], 'from': ['cluster']}]}) for host in hosts))
        proc = playbook(lab, converged, changed)
        assert proc.returncode != 0
        assert 'node1' in proc.stdout and 'UNREACHABLE' in proc.stdout
    finally:
        for host in hosts:
            lab.exec(host, ['rm', '-f', TEST_FAULT])
    wait_rolled_back(lab, hosts)
    for host in hosts:
        assert rules_of(lab, host) == before[host], host
        assert 'kptestfault' not in lab.exec(host, ['nft', 'list', 'tables']).stdout


def test_staged_rollout_stops_after_a_failing_canary(lab, converged):
    # node1 is the canary (the first host of the inventory); its change cannot be confirmed.
    before = dict((host, rules_of(lab, host)) for host in ('node1', 'node3', 'node4', 'node5'))
    lab.exec('node1', ['sh', '-c', 'mkdir -p /run/kubeports && touch %s' % TEST_FAULT], check=True)
    try:
        changed = with_vars(**dict((host, {'kubeports_extra_rules': [
            {'protocol': 'tcp', 'port': 39608, 'to': ['all'], 'from': ['cluster']}]})
            for host in ('node1', 'node3', 'node4', 'node5')))
        proc = playbook(lab, converged, changed, staged=True)
    finally:
        lab.exec('node1', ['rm', '-f', TEST_FAULT])
    assert proc.returncode != 0
    lines = recap(proc.stdout)
    assert 'unreachable=1' in lines['node1'], lines['node1']
    for host in ('node3', 'node4', 'node5'):
        assert host not in lines, lines[host]  # the rollout stopped before any task ran on them
        assert rules_of(lab, host) == before[host], host
    wait_rolled_back(lab, ['node1'])
    assert rules_of(lab, 'node1') == before['node1']


def test_controller_killed_after_the_change_the_host_rolls_back(lab, converged):
    host = 'node5'
    before = rules_of(lab, host)
    lab.exec(host, ['sh', '-c', 'mkdir -p /run/kubeports && touch %s' % TEST_FAULT], check=True)
    inventory = os.path.join(str(converged), 'inventory')
    with open(os.path.join(inventory, '10-cluster.yml'), 'w') as handle:
        handle.write(json.dumps(with_vars(node5={
            'kubeports_extra_rules': [{'protocol': 'tcp', 'port': 39602, 'to': ['all'], 'from': ['cluster']}]})))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_HOST_KEY_CHECKING='False')
    env.pop('ANSIBLE_CONFIG', None)
    proc = subprocess.Popen([str(BIN / 'ansible-playbook'), str(PLAYBOOKS / 'open_ports.yml'), '-i', inventory,
                             '-e', 'kubeports_confirm_timeout=%d' % CONFIRM, '-e', 'kubeports_hosts=node5'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=str(converged),
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while lab.exec(host, ['test', '-e', PENDING]).returncode != 0:
            assert proc.poll() is None and time.monotonic() < deadline, 'the change was never armed'
            time.sleep(0.2)
    finally:
        kill_tree(proc)
        lab.exec(host, ['rm', '-f', TEST_FAULT])
    wait_rolled_back(lab, [host])
    assert rules_of(lab, host) == before


@pytest.mark.parametrize('prepare, state_dir, message', [
    ('mkdir -p /run/kubeports-ro && mount -t tmpfs -o ro tmpfs /run/kubeports-ro', '/run/kubeports-ro/state',
     'state_dir /run/kubeports-ro/state cannot be written'),
    ('touch /tmp/kubeports-file', '/tmp/kubeports-file', 'state_dir /tmp/kubeports-file is not a directory'),
])
@pytest.mark.parametrize('host', ['node1', 'node3'])
def test_unusable_state_dir_changes_nothing(lab, converged, host, prepare, state_dir, message):
    lab.exec(host, ['sh', '-c', prepare], check=True)
    try:
        before = rules_of(lab, host)
        rules = [{'protocol': 'tcp', 'port': '39603', 'sources': ['0.0.0.0/0', '::/0'], 'source_set': None}]
        status, result = module(lab, host, {'rules': rules, 'state_dir': state_dir})
        assert status == 'FAILED!' and message in result['msg'] and 'nothing was changed' in result['msg'], result
        assert rules_of(lab, host) == before
    finally:
        lab.exec(host, ['sh', '-c', 'umount /run/kubeports-ro 2>/dev/null; rm -rf /run/kubeports-ro '
                                    '/tmp/kubeports-file'])


def test_must_not_be_public_is_refused_by_the_module(lab, converged):
    before = rules_of(lab, 'node5')
    rules = [{'protocol': 'tcp', 'port': '2379', 'sources': ['0.0.0.0/0', '::/0'], 'source_set': None}]
    status, result = module(lab, 'node5', {'rules': rules})
    assert status == 'FAILED!' and 'tcp/2379 (etcd) would be open to anyone' in result['msg'], result
    assert rules_of(lab, 'node5') == before


CHAINS = ['iptables -N KUBE-SERVICES', 'iptables -I INPUT -j KUBE-SERVICES', 'iptables -N cali-INPUT',
          'iptables -I INPUT -j cali-INPUT', 'nft add table inet kube-proxy',
          'nft add chain inet kube-proxy filter-input "{ type filter hook input priority -5; }"']


def foreign_state(lab, host):
    out = lab.exec(host, ['sh', '-c', 'iptables -S; nft list table inet kube-proxy']).stdout
    wanted = re.compile(r'KUBE-SERVICES|cali-INPUT|kube-proxy|filter-input')
    return sorted(line for line in out.splitlines() if wanted.search(line))


def peers(lab, name, peer, port='39604'):
    return [{'protocol': 'tcp', 'port': port, 'sources': [lab.address(peer) + '/32'], 'source_set': name}]


def test_cluster_chains_survive_first_apply_role_change_and_prune(lab, converged):
    host = 'node5'
    module(lab, host, {'rules': []})
    for command in CHAINS:
        lab.exec(host, ['sh', '-c', command], check=True)
    try:
        expected = foreign_state(lab, host)
        assert len(expected) >= 5, expected
        for rules in (peers(lab, 'first', 'node1'), peers(lab, 'second', 'node3'), []):
            status, result = module(lab, host, {'rules': rules})
            assert status == 'CHANGED', result
            assert not any('reload' in line.lower() and 'no reload' not in line.lower()
                           for line in result['messages']), result
            assert foreign_state(lab, host) == expected
            assert new_ssh(lab, host)
    finally:
        lab.exec(host, ['sh', '-c', 'iptables -D INPUT -j KUBE-SERVICES; iptables -X KUBE-SERVICES; '
                                    'iptables -D INPUT -j cali-INPUT; iptables -X cali-INPUT; '
                                    'nft delete table inet kube-proxy'])
        lab.exec('node5', ['rm', '-f', STOP])
        module(lab, host, {'rules': []})


STOP = '/tmp/kubeports-connections-stop'


@pytest.mark.parametrize('host', ['node1', 'node3'])
def test_no_new_connection_refused_during_apply(lab, converged, host):
    """Apply a new peer set and remove another while a client keeps connecting to a port that
    stays open, and pinging: no failure. Without a reload (a reload holds new connections for
    a moment: test_firewalld_reload.py)."""
    stays = peers(lab, 'client', 'node5', '39605')

    def change(name, peer):
        return stays + peers(lab, name, peer, '39606')
    assert module(lab, host, {'rules': change('one', 'node4')})[0] in ('CHANGED', 'SUCCESS')
    listener = lab.spawn(host, ['python3', '-c', LISTENER, 'tcp', '39605', 'nonce', '60'])
    client = None
    try:
        assert listener.stdout.readline().strip() == 'ready'
        lab.exec('node5', ['rm', '-f', STOP])
        client = lab.spawn('node5', ['python3', '-c', CONNECTIONS, lab.address(host), '39605', '1', STOP])
        pings = lab.spawn('node5', ['ping', '-c', '100', '-i', '0.2', '-W', '1', lab.address(host)])
        time.sleep(1)
        for rules in (change('two', 'node2'), change('one', 'node4'), stays):
            status, result = module(lab, host, {'rules': rules, 'firewalld_reload': 'never'})
            assert status == 'CHANGED', result
        lab.exec('node5', ['touch', STOP])
        out, _err = client.communicate(timeout=120)
        done, total, failures, _slowest = out.split()
        assert done == 'done' and int(total) > 50 and int(failures) == 0, out
        ping_out, _err = pings.communicate(timeout=60)
        assert ' 0% packet loss' in ping_out, ping_out
    finally:
        for proc in (listener, client):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        lab.exec('node5', ['rm', '-f', STOP])
        module(lab, host, {'rules': []})
