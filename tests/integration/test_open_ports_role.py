"""The open-ports playbook on the default lab: a host that loses a role loses exactly that
role's ports on the next run; check mode audits without changing anything.
"""

import ipaddress
import json
import re

import pytest

from conftest import run_playbook

CLUSTER = {
    'all': {
        'children': {
            'kube_control_plane': {'hosts': {'node1': None, 'node3': None}},
            'etcd': {'hosts': {'node1': None, 'node3': None}},
            'kube_node': {'hosts': {'node4': None, 'node5': None}},
            'registry': {'hosts': {'node2': None}},
        },
        'vars': {
            'kubeports_cni': 'calico',
            'kubeports_admin_cidrs': ['198.51.100.1', '2001:db8:100::1'],
            'kubeports_api_client_cidrs': ['198.51.100.0/24'],
        },
    },
}


def playbook(lab, tmp_path, cluster, *extra):
    proc = run_playbook(lab, tmp_path, cluster, 'open-ports.yml', *extra)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout


def recap(output):
    return dict((line.split()[0], line) for line in output.splitlines() if ' : ok=' in line)


def ufw_status(lab, host):
    return lab.exec(host, ['ufw', 'status']).stdout


@pytest.fixture(scope='module')
def converged(lab, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('role')
    playbook(lab, tmp_path, CLUSTER)
    return tmp_path


def test_second_run_and_check_mode_change_nothing(lab, converged):
    for output in (playbook(lab, converged, CLUSTER), playbook(lab, converged, CLUSTER, '--check', '--diff')):
        for host, line in recap(output).items():
            assert 'changed=0' in line and 'failed=0' in line, (host, line)


def opened(lab, host):
    """The TCP ports ufw admits: its own rules ("443/tcp") and the peer-set rules of its after rules."""
    text = ufw_status(lab, host)
    ports = set(re.findall(r'^(\d+(?::\d+)?)/tcp ', text, re.M))
    for line in lab.exec(host, ['iptables', '-S', 'ufw-after-input']).stdout.splitlines():
        match = re.search(r'-p tcp -m multiport --dports (\S+) -m set --match-set kubeports-', line)
        if match:
            ports.update(match.group(1).split(','))
    return ports


def test_host_that_loses_a_role_loses_its_ports(lab, converged):
    # node4 (ufw) stops being a worker and becomes a registry: kubelet and NodePorts go,
    # the registry's HTTPS port comes, SSH stays.
    before, ports = ufw_status(lab, 'node4'), opened(lab, 'node4')
    assert {'10250', '30000:32767'} <= ports and '443' not in ports
    moved = json.loads(json.dumps(CLUSTER))
    del moved['all']['children']['kube_node']['hosts']['node4']
    moved['all']['children']['registry']['hosts']['node4'] = None
    audit = playbook(lab, converged, moved, '--check', '--diff')
    assert 'changed=1' in recap(audit)['node4']
    assert ufw_status(lab, 'node4') == before and opened(lab, 'node4') == ports
    playbook(lab, converged, moved)
    after = opened(lab, 'node4')
    assert '10250' not in after and '30000:32767' not in after
    assert '443' in after and '2200' in after
    # Peers' sets follow: node4 is no longer in the cluster set of the other hosts.
    assert not covered(lab, 'node5', 'kubeports-cluster', lab.address('node4'))
    playbook(lab, converged, CLUSTER)
    assert covered(lab, 'node5', 'kubeports-cluster', lab.address('node4'))


def covered(lab, host, ipset, address):
    # The permanent configuration: without a reload (firewalld_reload), a new ipset reaches the
    # runtime only when firewalld next loads it; until then the runtime has one rule per source.
    entries = lab.exec(host, ['firewall-cmd', '--permanent', '--ipset=' + ipset, '--get-entries']).stdout.split()
    assert entries, 'ipset %s is empty or missing on %s' % (ipset, host)
    return any(ipaddress.ip_address(address) in ipaddress.ip_network(entry) for entry in entries)
