"""The plan_hosts action, run by ansible-core against the installed collection: it returns the
lookup's plan, in check mode too, and refuses bad input with the lookup's message."""

import json

import pytest

from helpers import KUBESPRAY, is_installed, run_playbook

pytestmark = pytest.mark.skipif(not is_installed(), reason='collection not installed: run make install')

PLAY = '''
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - kubeports.firewall.plan_hosts: %(arguments)s
      register: planned
    - ansible.builtin.copy:
        content: >-
          {{ {'action': planned,
              'lookup': query('kubeports.firewall.required_ports', *%(hosts)s, output='plan',
                              hosts_without_role=%(without)r)[0]} | to_json }}
        dest: %(dest)s
        mode: "0644"
      check_mode: false
'''


def play(tmp_path, arguments, *extra):
    playbook, dest = tmp_path / 'play.yml', tmp_path / 'out.json'
    playbook.write_text(PLAY % {'arguments': json.dumps(arguments), 'hosts': json.dumps(arguments.get('hosts', [])),
                                'without': arguments.get('hosts_without_role', 'fail'), 'dest': dest})
    rc, out = run_playbook(playbook, KUBESPRAY, *extra)
    return rc, out, (json.loads(dest.read_text()) if rc == 0 else None)


@pytest.mark.parametrize('arguments, extra, planned', [
    ({}, [], ['cp1', 'cp2', 'cp3', 'node1', 'node2', 'node3']),
    ({}, ['--check'], ['cp1', 'cp2', 'cp3', 'node1', 'node2', 'node3']),
    ({'hosts': ['node1', 'cp2']}, [], ['cp2', 'node1']),
    ({'hosts': ['node1', 'localhost'], 'hosts_without_role': 'skip'}, [], ['node1']),
    ({'role_groups': {'etcd': ['etcd'], 'controlplane': ['kube_control_plane'], 'worker': ['kube_node']}}, [],
     ['cp1', 'cp2', 'cp3', 'node1', 'node2', 'node3']),
])
def test_the_result_is_the_lookups_plan(tmp_path, arguments, extra, planned):
    rc, out, found = play(tmp_path, arguments, *extra)
    assert rc == 0, out
    action, lookup = found['action'], found['lookup']
    assert sorted(lookup['hosts']) == planned
    assert dict((key, action[key]) for key in lookup) == lookup
    assert set(action) - set(lookup) <= {'changed', 'failed'} and not action['changed']
    if arguments.get('hosts_without_role') == 'skip':
        assert action['skipped_hosts'] == ['localhost']


@pytest.mark.parametrize('arguments, extra, message', [
    ({'hosts_without_role': 'ignore'}, [], 'hosts_without_role'),
    ({'hosts': ['node9']}, [], 'host node9 is not in the inventory'),
    ({'role_groups': {'workers': ['kube_node']}}, [], "unknown role 'workers'"),
    ({}, ['-e', 'kubeports_cni=wireguard'], 'wireguard'),
])
def test_bad_input_fails_the_task_with_the_lookups_message(tmp_path, arguments, extra, message):
    rc, out, _found = play(tmp_path, arguments, *extra)
    assert rc != 0 and message in out, out
    assert 'kubeports.firewall.plan_hosts' in out or 'TASK [kubeports.firewall.plan_hosts]' in out, out
