"""Installers' own inventories on the default lab, with no kubeports_* variable at all: a
kubespray-shaped inventory (no k8s_cluster group, `ip` and `ansible_host` per host, the
user's CNI choice in group_vars/k8s_cluster/) running Cilium, and a k3s-ansible-shaped one,
each through plan -> open_ports -> verify, then a new SSH connection to every host.

node2 is in no installer group: it is skipped by open_ports and probes as an outsider.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, COLLECTIONS, PLAYBOOKS

KUBESPRAY_HOSTS = """\
# kubespray's shape: stacked etcd on the control plane, workers with ip=
[kube_control_plane]
node1 ansible_host={node1} ip={node1}
node3 ansible_host={node3} ip={node3}

[etcd:children]
kube_control_plane

[kube_node]
node4 ansible_host={node4} ip={node4}
node5 ansible_host={node5} ip={node5}
"""
KUBESPRAY_GROUP_VARS = {
    'k8s_cluster/k8s-cluster.yml': (
        '---\nkube_network_plugin: cilium\nkube_network_plugin_multus: false\n'
        'kube_service_addresses: 10.96.0.0/16\nkube_pods_subnet: 10.100.0.0/16\n'
        'kube_proxy_mode: ipvs\nkube_apiserver_port: 6443\n'),
    'k8s_cluster/k8s-net-cilium.yml': (
        '---\ncilium_tunnel_mode: geneve\ncilium_enable_hubble: true\n'
        'cilium_encryption_enabled: true\ncilium_encryption_type: wireguard\n'),
    'k8s_cluster/addons.yml': '---\nmetrics_server_enabled: true\nmetallb_enabled: false\n',
    'all/all.yml': '---\nloadbalancer_apiserver_localhost: true\n',
}
K3S_INVENTORY = {
    'k3s_cluster': {
        'children': {
            'server': {'hosts': {'node1': None, 'node3': None, 'node5': None}},
            'agent': {'hosts': {'node4': None}},
        },
        'vars': {
            'k3s_version': 'v1.31.12+k3s1',
            'token': 'changeme!',
            'api_endpoint': "{{ hostvars[groups['server'][0]]['ansible_host'] }}",
            'manage_firewall': False,
            'extra_server_args': '--flannel-backend=wireguard-native --cluster-cidr=10.52.0.0/16',
        },
    },
}


def installer_inventory(lab, workdir, files):
    """An inventory directory: the lab's hosts (connection variables) plus ``files``."""
    inventory = Path(str(workdir)) / 'inventory'
    if inventory.exists():
        shutil.rmtree(str(inventory))
    inventory.mkdir(parents=True)
    shutil.copy(lab.inventory_path, str(inventory / '00-lab.yml'))
    for name, text in files.items():
        path = inventory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(inventory)


def playbook(workdir, inventory, name, *extra, timeout=900):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_HOST_KEY_CHECKING='False',
               ANSIBLE_NOCOLOR='1', PATH=str(BIN) + os.pathsep + os.environ.get('PATH', ''))
    env.pop('ANSIBLE_CONFIG', None)
    proc = subprocess.run([str(BIN / 'ansible-playbook'), str(PLAYBOOKS / name), '-i', inventory] + list(extra),
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=str(workdir),
                          check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return proc.stdout


def recap(output):
    return dict((line.split()[0], line) for line in output.splitlines() if ' : ok=' in line)


def ports(plan, host):
    """{port: rule} of one host of plan.json, each rule with its sources."""
    entry = plan['hosts'][host]
    listed = plan['rule_lists'][entry['rule_list']]
    sets = dict((name, plan['sets'][key]) for name, key in listed['sets'].items())
    sets.update(entry['own_sets'])
    rules = [dict(rule, sources=rule.get('sources') or sets[rule['source_set']]) for rule in listed['rules']]
    return dict(('%s/%s' % (rule['port'], rule['protocol']) if rule['port'] else rule['protocol'], rule)
                for rule in rules)


def run_all(lab, workdir, inventory):
    """plan -> open_ports (twice) -> verify; returns (plan.json, verify.json, plan output)."""
    reports = os.path.join(str(workdir), 'reports')
    planned = playbook(workdir, inventory, 'plan.yml', '-e', 'kubeports_report_dir=' + reports)
    first = playbook(workdir, inventory, 'open_ports.yml')
    # node2 is only in the lab's own groups.
    assert 'node2 has no role, so nothing is opened on it (skipped): it is in groups lab, lab_firewalld, which no role ' \
        'maps to (kubeports_role_groups)' in first
    second = playbook(workdir, inventory, 'open_ports.yml')
    for host, line in recap(second).items():
        assert 'changed=0' in line and 'failed=0' in line, (host, line)
    playbook(workdir, inventory, 'verify.yml', '-e', 'kubeports_verify_report_dir=' + reports)
    with open(os.path.join(reports, 'plan.json')) as handle:
        plan = json.load(handle)
    with open(os.path.join(reports, 'verify.json')) as handle:
        report = json.load(handle)
    for host in lab.hosts:
        proc = lab.ssh(host, 'echo kubeports-alive')
        assert proc.returncode == 0 and 'kubeports-alive' in proc.stdout, (host, proc.stderr)
    return plan, report, planned + first


@pytest.fixture(scope='module')
def kubespray(lab, tmp_path_factory):
    workdir = tmp_path_factory.mktemp('kubespray')
    addresses = dict((host, lab.address(host)) for host in lab.hosts)
    files = {'hosts.ini': KUBESPRAY_HOSTS.format(**addresses)}
    files.update(('group_vars/' + name, text) for name, text in KUBESPRAY_GROUP_VARS.items())
    return run_all(lab, workdir, installer_inventory(lab, workdir, files))


def test_kubespray_profile_comes_from_its_group_vars(kubespray):
    plan, _report, output = kubespray
    cluster = plan['clusters'][0]
    assert cluster['hosts'] == ['node1', 'node3', 'node4', 'node5']
    values = cluster['values']
    assert values['installer'] == {'value': 'kubespray', 'origin': 'the host is in groups of kubespray'}
    assert values['cni'] == {'value': '[cilium]', 'origin': 'kube_network_plugin'}
    assert values['cilium_tunnel'] == {'value': 'geneve', 'origin': 'cilium_tunnel_mode'}
    assert values['pod_cidrs'] == {'value': '[10.100.0.0/16]', 'origin': 'kube_pods_subnet'}
    assert values['service_cidrs'] == {'value': '[10.96.0.0/16]', 'origin': 'kube_service_addresses'}
    # The profile as printed: one value per line, then its origin.
    assert re.search(r'\bcni +\[cilium\] +kube_network_plugin\b', output), output[-3000:]


def test_kubespray_plan_is_what_kubespray_deploys(kubespray):
    plan, _report, _output = kubespray
    worker = ports(plan, 'node4')
    for port in ('6081/udp', '4240/tcp', '4244/tcp', '51871/udp', 'icmp', '10250/tcp', '53/udp'):
        assert port in worker, port
    for port in ('4789/udp', '8472/udp', '179/tcp', '9962/tcp', 'esp', '2379/tcp'):
        assert port not in worker, port
    assert worker['10250/tcp']['source_set'] == 'cluster+controlplane+self'  # metrics-server
    # Cilium's Geneve tunnel with WireGuard: its devices are trusted, the pod network by source nowhere.
    assert worker['all']['interfaces'] == ['cilium_geneve', 'cilium_host', 'cilium_net', 'lxc+', 'cilium_wg0']
    assert worker['all']['source_set'] is None
    control = ports(plan, 'node1')
    assert control['2379/tcp']['source_set'] == 'controlplane+etcd'
    assert '6443/tcp' in control


def test_kubespray_cluster_verifies_clean(kubespray):
    _plan, report, _output = kubespray
    summary = report['summary']
    assert summary['probes'] > 0 and summary['mismatches'] == 0, summary
    assert report['clusters'][0]['values']['cni']['origin'] == 'kube_network_plugin'


@pytest.fixture(scope='module')
def k3s(lab, tmp_path_factory, kubespray):
    workdir = tmp_path_factory.mktemp('k3s')
    files = {'hosts.yml': json.dumps({'all': {'children': K3S_INVENTORY}})}
    return run_all(lab, workdir, installer_inventory(lab, workdir, files))


def test_k3s_ansible_inventory_planned_applied_and_verified(k3s):
    plan, report, output = k3s
    values = plan['clusters'][0]['values']
    assert values['distribution'] == {'value': 'k3s', 'origin': 'k3s-ansible inventory'}
    assert values['flannel_backend']['value'] == 'wireguard'
    assert 'extra_server_args --flannel-backend' in values['flannel_backend']['origin']
    assert values['k3s_datastore']['value'] == 'embedded_etcd'
    assert values['pod_cidrs']['value'] == '[10.52.0.0/16]'
    assert re.search(r'\bdistribution +k3s +k3s-ansible inventory\b', output), output[-3000:]
    server, agent = ports(plan, 'node3'), ports(plan, 'node4')
    assert server['2379-2380/tcp']['source_set'] == 'controlplane'
    assert '2379-2380/tcp' not in agent and '6443/tcp' not in agent
    for rules in (server, agent):
        assert '51820/udp' in rules and '8472/udp' not in rules
    assert report['summary']['mismatches'] == 0, report['summary']
