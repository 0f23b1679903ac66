"""The host_view filter: one host's view of a plan, as rule_contract.host_view gives it, and the
view the open_ports and audit roles pass to port_rules and port_rules_info."""

import json
import os

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.kubeports.firewall.plugins.filter.host_view import FilterModule, host_view
from ansible_collections.kubeports.firewall.plugins.module_utils import rule_contract
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_planner import InventoryPlanner

from helpers import KUBESPRAY, ROOT, is_installed, run_playbook

SSH = {'protocol': 'tcp', 'port': '22', 'source_set': 'admins'}
API = {'protocol': 'tcp', 'port': '6443', 'source_set': 'cluster'}
OWN = {'protocol': 'tcp', 'port': '10250', 'source_set': 'self'}
OPEN = {'protocol': 'tcp', 'port': '80', 'source_set': None, 'sources': ['0.0.0.0/0', '::/0']}
SKIPPED = [{'protocol': 'tcp', 'port': '4240', 'source_set': 'etcd'}]
PLAN = {
    'sets': {'cluster': ['10.0.0.0/24'], 'admins@1a2b3c4d': ['192.0.2.1/32'], 'admins@99999999': ['198.51.100.0/24']},
    'rule_lists': {
        'worker': {'rules': [SSH, API, OWN], 'sets': {'admins': 'admins@1a2b3c4d', 'cluster': 'cluster'},
                   'skipped': SKIPPED},
        'worker@2': {'rules': [SSH, OPEN], 'sets': {'admins': 'admins@99999999'}, 'skipped': []},
    },
    'hosts': {
        'w1': {'host': 'w1', 'roles': ['worker'], 'rule_list': 'worker', 'own_sets': {'self': ['10.0.0.5/32']}},
        'w2': {'host': 'w2', 'roles': ['worker'], 'rule_list': 'worker@2', 'own_sets': {}},
        # A host of the expanded form (its rules carry their sources): returned as it is.
        'w3': {'host': 'w3', 'roles': ['worker'], 'rules': [OPEN], 'skipped': []},
    },
    'skipped_hosts': [],
    'unplanned': {'bastion1': 'in group bastion, which no role maps to (kubeports_role_groups)'},
}


@pytest.mark.parametrize('host, expected', [
    # Set names map to their keys' members; the host's own sets are added.
    ('w1', {'host': 'w1', 'roles': ['worker'], 'rules': [SSH, API, OWN],
            'sets': {'admins': ['192.0.2.1/32'], 'cluster': ['10.0.0.0/24'], 'self': ['10.0.0.5/32']},
            'skipped': SKIPPED}),
    # The same set name, another key (another membership): the name stays, the members differ.
    ('w2', {'host': 'w2', 'roles': ['worker'], 'rules': [SSH, OPEN], 'sets': {'admins': ['198.51.100.0/24']},
            'skipped': []}),
    ('w3', PLAN['hosts']['w3']),
])
def test_a_hosts_view(host, expected):
    assert host_view(PLAN, host) == expected == rule_contract.host_view(PLAN, PLAN['hosts'][host])


@pytest.mark.parametrize('plan, host, message', [
    (None, 'w1', 'expects the plan of plan_hosts'),
    ([PLAN], 'w1', 'expects the plan of plan_hosts'),
    ({'sets': {}}, 'w1', 'expects the plan of plan_hosts'),
    (PLAN, ['w1'], 'host must be a host name'),
    (PLAN, 'bastion1', 'bastion1 is not planned (in group bastion, which no role maps to'),
    (PLAN, 'stray', "stray is not planned (not among the plan's hosts)"),
    # One host's entry without the rest of the plan.
    ({'hosts': PLAN['hosts']}, 'w1', "'rule_lists' is missing from the plan for w1"),
    (dict(PLAN, sets={}), 'w1', "'admins@1a2b3c4d' is missing from the plan for w1"),
])
def test_what_is_refused(plan, host, message):
    with pytest.raises(AnsibleFilterError, match='^host_view') as raised:
        host_view(plan, host)
    assert message in str(raised.value)


def test_the_filter_is_registered_under_its_name():
    assert FilterModule().filters() == {'host_view': host_view}


def _inventory(host_vars):
    control, nodes = ['cp1', 'cp2', 'cp3'], ['w1', 'w2', 'w3']
    hostvars = dict((host, dict({'kubeports_cni': 'calico', 'kubeports_admin_cidrs': ['192.0.2.10'],
                                 'ansible_host': '10.0.0.%d' % number}, **host_vars.get(host, {})))
                    for number, host in enumerate(control + nodes, 1))
    groups = {'all': control + nodes, 'kube_control_plane': control, 'etcd': control, 'kube_node': nodes,
              'k8s_cluster': control + nodes}
    return InventoryPlanner(groups, hostvars)


@pytest.mark.parametrize('host_vars', [
    {},
    # Other admins on w3 (a set key of its own), addresses of its own on w1, an etcd worker.
    {'w3': {'kubeports_admin_cidrs': ['198.51.100.7']}, 'w1': {'kubeports_address': ['10.99.0.1', '10.99.0.2']},
     'w2': {'kubeports_roles': ['worker', 'etcd']}},
])
def test_a_planned_host_gets_the_rules_planned_for_it(host_vars):
    planner = _inventory(host_vars)
    document = planner.plan_document()
    direct = dict((plan.host, plan) for plan in _inventory(host_vars).plan())
    assert sorted(document['hosts']) == sorted(direct)
    for host in document['hosts']:
        view = host_view(document, host)
        assert set(view) == {'host', 'roles', 'rules', 'sets', 'skipped'}
        # Every set a rule names is there, and resolves to the sources planned for this host.
        expanded = dict(((rule['protocol'], rule['port']), sorted(rule_contract.rule_sources(rule, view['sets'], host)))
                        for rule in view['rules'])
        assert expanded == dict(((rule['protocol'], rule['port']), sorted(rule['sources']))
                                for rule in direct[host].rules)


# What the roles pass to their modules, rendered by ansible-core from the roles' own task files
# against a registered plan_hosts result.
ROLE_TASKS = [('open_ports', 'kubeports.firewall.port_rules'), ('audit', 'kubeports.firewall.port_rules_info')]


def _module_task(role, module):
    with open(os.path.join(ROOT, 'roles', role, 'tasks', 'main.yml')) as handle:
        return next(task for task in yaml.safe_load(handle) if module in task)


@pytest.mark.skipif(not is_installed(), reason='collection not installed: run make install')
def test_the_roles_pass_the_hosts_view(tmp_path):
    tasks = [{'kubeports.firewall.plan_hosts': {'hosts': '{{ ansible_play_hosts }}'},
              'register': '__kubeports_plan', 'run_once': True, 'delegate_to': 'localhost'}]
    for role, module in ROLE_TASKS:
        task = _module_task(role, module)
        tasks.append({'ansible.builtin.copy': {
            'content': "{{ {'rules': %s, 'sets': %s, 'plan': __kubeports_plan} | to_json }}"
                       % (task[module]['rules'].strip()[2:-2], task[module]['sets'].strip()[2:-2]),
            'dest': '%s/%s-{{ inventory_hostname }}.json' % (tmp_path, role), 'mode': '0644'},
            'vars': task.get('vars', {}), 'delegate_to': 'localhost'})
    playbook = tmp_path / 'play.yml'
    playbook.write_text(yaml.safe_dump([{'hosts': 'all', 'gather_facts': False, 'tasks': tasks}]))
    rc, out = run_playbook(playbook, KUBESPRAY)
    assert rc == 0, out
    hosts = ['cp1', 'cp2', 'cp3', 'node1', 'node2', 'node3']
    for role, _module in ROLE_TASKS:
        for host in hosts:
            passed = json.loads((tmp_path / ('%s-%s.json' % (role, host))).read_text())
            view = rule_contract.host_view(passed['plan'], passed['plan']['hosts'][host])
            assert passed['rules'] == view['rules'] and view['rules']
            assert passed['sets'] == view['sets'] and 'self' in view['sets']
