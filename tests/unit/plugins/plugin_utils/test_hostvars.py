"""PlanHostvars: the planner reads every value as Ansible's hostvars template it, and values
without a template that hosts share are templated once."""

import json
import os

import pytest

from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.vars.hostvars import HostVars
from ansible.vars.manager import VariableManager

from ansible_collections.kubeports.firewall.plugins.module_utils.inventory_planner import plan_request
from ansible_collections.kubeports.firewall.plugins.plugin_utils.hostvars import (
    PlanHostvars, SharedTemplating, without_template)


@pytest.mark.parametrize('value, expected', [
    ('calico', True),
    ('', True),
    (6443, True),
    (True, True),
    (None, True),
    (1.5, True),
    (['10.0.0.0/8', 'any'], True),
    ({'a': [1, {'b': 'c'}]}, True),
    (('x', 'y'), True),
    ('{{ cni }}', False),
    ('{% if x %}a{% endif %}', False),
    ('{# comment #}', False),
    ('a {brace} b', False),
    ('#jinja2:variable_start_string:"[%"\n[% x %]', False),
    (['ok', '{{ x }}'], False),
    ({'k': '{{ x }}'}, False),
    ({'{{ key }}': 'v'}, False),
    (b'bytes', False),
    (object(), False),
])
def test_without_template(value, expected):
    assert without_template(value) is expected


def test_deep_nesting_is_treated_as_a_template():
    value = 'leaf'
    for _level in range(40):
        value = [value]
    assert without_template(value) is False


def test_shared_templating_templates_a_shared_plain_value_once_and_a_template_every_time():
    shared, calls = SharedTemplating(), []
    plain, template = ['10.0.0.0/8'], '{{ x }}'

    def templated(raw):
        def run():
            calls.append(raw)
            return list(raw) if isinstance(raw, list) else 'templated'
        return run
    first = shared.value(plain, templated(plain))
    assert shared.value(plain, templated(plain)) is first
    assert shared.value(list(plain), templated(plain)) == plain  # an equal but other object: templated again
    for _host in range(3):
        assert shared.value(template, templated(template)) == 'templated'
    assert calls == [plain, plain, template, template, template]


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        handle.write(text)


@pytest.fixture(scope='module')
def plugin_loader():
    init_plugin_loader()


@pytest.fixture
def inventory(tmp_path, plugin_loader):
    """A kubespray-shaped inventory whose group_vars mix plain values, lists hosts share, and
    templates of host variables; one host overrides a shared value with a template."""
    directory = str(tmp_path)
    _write(os.path.join(directory, 'inventory.ini'), '\n'.join([
        '[kube_control_plane]',
        'cp1 ansible_host=10.1.7.3 ip=10.1.7.3',
        '[etcd]',
        'cp1',
        '[kube_node]',
        'w1 ansible_host=10.9.0.14 ip=10.9.0.14 site=east',
        'w2 ansible_host=172.20.3.9 ip=172.20.3.9 site=west',
        'w3 ansible_host=10.200.1.1 ip=10.200.1.1 site=east kubeports_admin_cidrs="{{ [admin_net] }}" '
        'admin_net=198.51.100.0/24',
        '[k8s_cluster:children]',
        'kube_control_plane',
        'kube_node',
        '',
    ]))
    _write(os.path.join(directory, 'group_vars', 'k8s_cluster', 'k8s-cluster.yml'), '\n'.join([
        'kube_network_plugin: "{{ chosen_cni }}"',
        'chosen_cni: calico',
        'calico_network_backend: vxlan',
        'kube_pods_subnet: 10.233.64.0/18',
        'kube_service_addresses: "{{ \'10.233.0.0/18\' }}"',
        'metallb_enabled: true',
        '',
    ]))
    _write(os.path.join(directory, 'group_vars', 'all', 'all.yml'), '\n'.join([
        'kubeports_api_client_cidrs: [192.0.2.0/24, 203.0.113.0/28]',
        'kubeports_admin_cidrs: [192.0.2.10]',
        '',
    ]))
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[os.path.join(directory, 'inventory.ini')])
    variables = VariableManager(loader=loader, inventory=manager)
    return manager.get_groups_dict(), HostVars(inventory=manager, variable_manager=variables, loader=loader)


def test_every_value_reads_as_ansibles_hostvars_give_it(inventory):
    groups, hostvars = inventory
    planned = PlanHostvars(hostvars)
    for host in groups['all']:
        view, own = planned[host], hostvars[host]
        assert sorted(view) == sorted(own)
        assert len(view) == len(own)
        for name in own:
            assert name in view
            assert view[name] == own[name], (host, name)
    assert planned['w3']['kubeports_admin_cidrs'] == ['198.51.100.0/24']
    assert planned['w1']['kubeports_admin_cidrs'] == ['192.0.2.10']
    assert planned['w1']['kube_network_plugin'] == 'calico'


def test_a_shared_list_is_templated_once_and_the_plan_is_the_same(inventory):
    groups, hostvars = inventory
    planned = PlanHostvars(hostvars)
    assert planned['w1']['kubeports_api_client_cidrs'] is planned['w2']['kubeports_api_client_cidrs']
    assert planned['w1']['kube_service_addresses'] == planned['w2']['kube_service_addresses'] == '10.233.0.0/18'
    expected = plan_request(groups, hostvars, None, [], [])
    assert json.dumps(plan_request(groups, planned, None, [], []), sort_keys=True) == json.dumps(expected, sort_keys=True)


def test_plain_mappings_pass_through():
    planned = PlanHostvars({'h1': {'ip': '10.0.0.1'}})
    assert planned['h1'] == {'ip': '10.0.0.1'}
    assert 'h1' in planned and 'h2' not in planned
    assert list(planned) == ['h1'] and len(planned) == 1
    with pytest.raises(KeyError):
        planned['h2']
    assert len(PlanHostvars(None)) == 0
