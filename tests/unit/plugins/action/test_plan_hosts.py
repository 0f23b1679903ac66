"""The plan_hosts action, run by ansible-core against the installed collection: it returns the
lookup's plan, in check mode too, registered for every host of the batch, and refuses bad
input with the lookup's message."""

import json
import os

import pytest

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_planner import plan_request
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.profile_report import console_lines

from helpers import KUBESPRAY, is_installed, run_playbook

pytestmark = pytest.mark.skipif(not is_installed(), reason='collection not installed: run make install')

PLAN = '''
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - kubeports.firewall.plan_hosts: %(arguments)s
      register: planned
'''
# Also writes the action's result and the lookup's plan, for comparison.
COMPARED = PLAN + '''
    - ansible.builtin.copy:
        content: >-
          {{ {'action': planned,
              'lookup': query('kubeports.firewall.required_ports', *%(hosts)s, output='plan',
                              hosts_without_role=%(without)r)[0]} | to_json }}
        dest: %(dest)s
        mode: "0644"
      check_mode: false
'''


def play(tmp_path, arguments, *extra, **kwargs):
    """(rc, output, {action, lookup} or None); compare=False runs the action alone."""
    playbook, dest = tmp_path / 'play.yml', tmp_path / 'out.json'
    text = COMPARED if kwargs.get('compare', True) else PLAN
    playbook.write_text(text % {'arguments': json.dumps(arguments), 'hosts': json.dumps(arguments.get('hosts', [])),
                                'without': arguments.get('hosts_without_role', 'fail'), 'dest': dest})
    rc, out = run_playbook(playbook, kwargs.get('inventory', KUBESPRAY), *extra)
    return rc, out, (json.loads(dest.read_text()) if rc == 0 and dest.exists() else None)


def without_lines(result):
    """The action's result without the console lines it adds to each cluster, which must be the profile's."""
    clusters = []
    for cluster in result['clusters']:
        cluster = dict(cluster)
        assert cluster.pop('lines') == console_lines(cluster)
        clusters.append(cluster)
    return dict(result, clusters=clusters)


ROLE_GROUPS = {'etcd': ['etcd'], 'controlplane': ['kube_control_plane'], 'worker': ['kube_node']}


@pytest.mark.parametrize('arguments, extra, planned', [
    ({}, [], ['cp1', 'cp2', 'cp3', 'node1', 'node2', 'node3']),
    ({}, ['--check'], ['cp1', 'cp2', 'cp3', 'node1', 'node2', 'node3']),
    ({'hosts': ['node1', 'cp2']}, [], ['cp2', 'node1']),
    ({'hosts': ['node1', 'localhost'], 'hosts_without_role': 'skip'}, [], ['node1']),
    ({'role_groups': ROLE_GROUPS}, [], ['cp1', 'cp2', 'cp3', 'node1', 'node2', 'node3']),
    # Without the option, the variable the lookup reads: node3 becomes an etcd host only.
    ({}, ['-e', json.dumps({'kubeports_role_groups': dict(ROLE_GROUPS, etcd=['etcd', 'kube_node'])})],
     ['cp1', 'cp2', 'cp3', 'node1', 'node2', 'node3']),
])
def test_the_result_is_the_lookups_plan(tmp_path, arguments, extra, planned):
    rc, out, found = play(tmp_path, arguments, *extra)
    assert rc == 0, out
    action, lookup = found['action'], found['lookup']
    assert sorted(lookup['hosts']) == planned
    assert dict((key, without_lines(action)[key]) for key in lookup) == lookup
    assert set(action) - set(lookup) <= {'changed', 'failed'} and not action['changed']
    if arguments.get('hosts_without_role') == 'skip':
        assert action['skipped_hosts'] == ['localhost']
    if extra[:1] == ['-e']:
        assert 'etcd' in action['hosts']['node3']['roles']


def test_the_result_is_the_plan_of_ansibles_hostvars_with_templates(tmp_path, templated_inventory):
    directory, groups, hostvars = templated_inventory
    rc, out, found = play(tmp_path, {}, inventory=os.path.join(directory, 'inventory.ini'))
    assert rc == 0, out
    expected = json.loads(json.dumps(plan_request(groups, hostvars, None, [], [])))
    assert dict((key, without_lines(found['action'])[key]) for key in expected) == expected == found['lookup']


EVERY_HOST = '''
- hosts: all
  connection: local
  gather_facts: false
  serial: %s
  tasks:
    - kubeports.firewall.plan_hosts:
        hosts: "{{ ansible_play_batch }}"
      register: planned
      run_once: true
      delegate_to: localhost
    - ansible.builtin.debug:
        msg: "SEEN {{ inventory_hostname }} {{ planned.hosts | sort | join(',') }} {{ planned.hosts[inventory_hostname].rule_list }}"
'''


@pytest.mark.parametrize('serial, batches', [
    (0, [['cp1', 'cp2', 'cp3', 'node1', 'node2', 'node3']]),
    (4, [['cp1', 'cp2', 'cp3', 'node1'], ['node2', 'node3']]),
])
def test_one_plan_per_batch_reaches_every_host_of_the_batch(tmp_path, serial, batches):
    playbook = tmp_path / 'play.yml'
    playbook.write_text(EVERY_HOST % serial)
    rc, out = run_playbook(playbook, KUBESPRAY)
    assert rc == 0, out
    lines = [part.split('"SEEN ', 1)[1].rstrip('"').split() for part in out.splitlines() if '"SEEN ' in part]
    seen = dict((words[0], words[1:]) for words in lines)
    assert len(lines) == 6
    for batch in batches:
        for host in batch:
            planned, rule_list = seen[host]
            assert planned.split(',') == batch
            assert rule_list.startswith(('controlplane', 'worker')), (host, rule_list)


@pytest.mark.parametrize('arguments, extra, message', [
    ({'hosts_without_role': 'ignore'}, [], 'hosts_without_role'),
    ({'hosts': ['node9']}, [], 'host node9 is not in the inventory'),
    ({'role_groups': {'workers': ['kube_node']}}, [], "unknown role 'workers'"),
    ({}, ['-e', json.dumps({'kubeports_role_groups': 'kube_node'})], 'kubeports_role_groups: expected a mapping'),
    ({}, ['-e', json.dumps({'kubeports_catalog_dirs': {'a': 1}})], 'kubeports_catalog_dirs (catalog_dirs)'),
    ({}, ['-e', 'kubeports_cni=wireguard'], 'wireguard'),
])
def test_bad_input_fails_the_task_with_the_lookups_message(tmp_path, arguments, extra, message):
    rc, out, _found = play(tmp_path, arguments, *extra, compare=False)
    assert rc != 0, out
    task, _sep, failure = out.partition('TASK [kubeports.firewall.plan_hosts]')
    assert 'fatal: [localhost]: FAILED!' in failure and message in failure, out


def test_a_host_ansible_would_hide_in_the_result_is_refused(tmp_path):
    inventory = tmp_path / 'inventory.ini'
    inventory.write_text('[kube_control_plane]\ncp1 ansible_host=10.0.0.1\n[etcd]\ncp1\n[kube_node]\n'
                         '_ansible_node ansible_host=10.0.0.2\n[k8s_cluster:children]\nkube_control_plane\nkube_node\n')
    rc, out, _found = play(tmp_path, {}, compare=False, inventory=str(inventory))
    assert rc != 0 and 'host _ansible_node: a name that starts with "_ansible_" cannot be planned' in out, out


LIMITED = '''
- hosts: all
  connection: local
  gather_facts: false
  tasks:
    - kubeports.firewall.plan_hosts:
        hosts: "{{ ansible_play_batch }}"
        play_hosts: "{{ ansible_play_hosts_all }}"
        hosts_without_role: skip
      register: planned
      run_once: true
      delegate_to: localhost
    - ansible.builtin.copy:
        content: "{{ planned | to_json }}"
        dest: %s
        mode: "0644"
      run_once: true
      delegate_to: localhost
      check_mode: false
'''
# kubespray's sample as shipped: no k8s_cluster, etcd the control plane's children, the CNI in
# group_vars/k8s_cluster.
SHIPPED_KUBESPRAY = {
    'inventory.ini': ('[kube_control_plane]\ncp1 ansible_host=10.3.0.1 ip=10.3.0.1\ncp2 ansible_host=10.3.0.2 '
                      'ip=10.3.0.2\n\n[etcd:children]\nkube_control_plane\n\n[kube_node]\nw1 ansible_host=10.8.0.4 '
                      'ip=10.8.0.4\nw2 ansible_host=10.9.7.5 ip=10.9.7.5\n'),
    'group_vars/k8s_cluster/k8s-cluster.yml': 'kube_network_plugin: cilium\ncilium_tunnel_mode: geneve\n',
    'group_vars/all/all.yml': 'bin_dir: /usr/local/bin\n',
}


def shipped_kubespray(directory):
    for name, text in SHIPPED_KUBESPRAY.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(directory / 'inventory.ini')


def limited_plan(tmp_path, inventory, *extra):
    playbook, dest = tmp_path / 'limited.yml', tmp_path / 'planned.json'
    playbook.write_text(LIMITED % dest)
    rc, out = run_playbook(playbook, inventory, *extra)
    assert rc == 0, out
    return json.loads(dest.read_text())


@pytest.mark.parametrize('inventory, limit', [
    ('shipped-kubespray', 'w2'),
    ('shipped-kubespray', 'cp1'),
    (os.path.join(os.path.dirname(KUBESPRAY), '..', 'k3s-ansible', 'inventory.yml'), None),
    (os.path.join(os.path.dirname(KUBESPRAY), '..', 'rke2-lablabs', 'inventory.ini'), None),
    (os.path.join(os.path.dirname(KUBESPRAY), '..', 'overrides', 'rke-rancher', 'inventory.yml'), None),
    (os.path.join(os.path.dirname(KUBESPRAY), '..', 'overrides', 'kubean-dce5', 'inventory.yml'), None),
])
def test_a_limited_run_plans_its_hosts_against_the_whole_inventory(tmp_path, inventory, limit):
    """Under --limit of one host, that host's rules are the ones it gets without the limit,
    and the hosts outside that hold it in their peer sets are named."""
    shipped = inventory == 'shipped-kubespray'
    if shipped:
        inventory = shipped_kubespray(tmp_path / 'inventory')
    whole = limited_plan(tmp_path, inventory)
    assert whole['peers_to_update']['hosts'] == []
    if limit is None:
        # A worker, else any planned host.
        limit = sorted(host for host, entry in whole['hosts'].items() if 'worker' in entry['roles'])[-1]
    limited = limited_plan(tmp_path, inventory, '--limit', limit)
    assert list(limited['hosts']) == [limit]
    entry = limited['hosts'][limit]
    assert entry == whole['hosts'][limit]
    rule_list = whole['rule_lists'][entry['rule_list']]
    assert limited['rule_lists'][entry['rule_list']] == rule_list
    assert dict((name, limited['sets'][key]) for name, key in rule_list['sets'].items()) == \
        dict((name, whole['sets'][key]) for name, key in rule_list['sets'].items())
    update = limited['peers_to_update']
    assert update['members'] == [limit] and update['hosts'] and limit not in update['hosts']
    assert update['command'].startswith('ansible-playbook kubeports.firewall.open_ports -i ')
    if shipped:
        # group_vars/k8s_cluster applies though the inventory has no k8s_cluster group.
        assert 'cni=[cilium] (kube_network_plugin)' in limited['clusters'][0]['line']
