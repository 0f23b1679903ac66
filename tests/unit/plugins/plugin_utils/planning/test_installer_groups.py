"""The installer's groups formed in Ansible's own inventory for one plan (installer_groups.py):
every host, whatever --limit says, group_vars applying as after the installer's group_by, and
the inventory put back afterwards."""

import json
import os

import pytest

from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.vars.hostvars import HostVars
from ansible.vars.manager import VariableManager

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_planner import plan_request
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.hostvars import (
    PlanHostvars, empty_facts_not_cleaned, group_vars_read_once)
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.installer_groups import (
    groups_to_form, installer_groups_formed)
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.action_base import planning_inventory

from helpers import run_playbook

# kubespray's sample as shipped: no k8s_cluster group, etcd formed from the control plane.
SHIPPED = """\
[kube_control_plane]
cp1 ansible_host=10.1.0.1 ip=10.1.0.1
cp2 ansible_host=10.7.3.9 ip=10.7.3.9

[etcd:children]
kube_control_plane

[kube_node]
w1 ansible_host=10.2.0.5 ip=10.2.0.5
w2 ansible_host=10.9.1.77 ip=10.9.1.77

[bastion]
jump ansible_host=10.0.0.254
"""
# The legacy names kubespray renames at run time.
LEGACY = """\
[kube-master]
cp1 ansible_host=10.1.0.1

[etcd]
cp1

[kube-node]
w1 ansible_host=10.2.0.5
"""
# The groups defined by the inventory itself: nothing to form.
DEFINED = SHIPPED + """
[k8s_cluster:children]
kube_control_plane
kube_node
"""
GROUP_VARS = {
    'all/all.yml': {'bin_dir': '/usr/local/bin', 'shadowed': 'all'},
    'k8s_cluster/k8s-cluster.yml': {'kube_network_plugin': 'cilium', 'shadowed': 'k8s_cluster',
                                    'both': 'k8s_cluster'},
    'kube_node/nodes.yml': {'both': 'kube_node'},
}


def write(directory, inventory, group_vars=None):
    path = os.path.join(str(directory), 'inventory.ini')
    with open(path, 'w') as handle:
        handle.write(inventory)
    for name, content in (GROUP_VARS if group_vars is None else group_vars).items():
        target = os.path.join(str(directory), 'group_vars', name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, 'w') as handle:
            json.dump(content, handle)
    return path


def ansible_inventory(path, limit=None):
    """(inventory, {'groups', 'hostvars'}) as a task's variables give them."""
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[path])
    if limit:
        inventory.subset(limit)
    manager = VariableManager(loader=loader, inventory=inventory)
    hostvars = HostVars(inventory, manager, loader)
    return inventory, {'groups': inventory.get_groups_dict(), 'hostvars': hostvars}


def membership(inventory):
    """Every group's hosts and children and every host's groups, by name."""
    groups = dict((name, (sorted(host.name for host in group.hosts), sorted(child.name for child in group.child_groups),
                          group.depth)) for name, group in inventory.groups.items())
    hosts = dict((name, sorted(group.name for group in host.groups)) for name, host in inventory.hosts.items())
    return groups, hosts, inventory.get_groups_dict()


@pytest.mark.parametrize('inventory_text, limit, formed', [
    (SHIPPED, None, {'k8s_cluster': ['cp1', 'cp2', 'w1', 'w2']}),
    # --limit changes nothing: the groups are formed for every host.
    (SHIPPED, 'w1', {'k8s_cluster': ['cp1', 'cp2', 'w1', 'w2']}),
    (SHIPPED, 'cp2,jump', {'k8s_cluster': ['cp1', 'cp2', 'w1', 'w2']}),
    (LEGACY, None, {'kube_control_plane': ['cp1'], 'kube_node': ['w1'], 'k8s_cluster': ['cp1', 'w1']}),
    (DEFINED, None, {}),
])
def test_groups_are_formed_for_every_host_and_put_back(tmp_path, inventory_text, limit, formed):
    inventory, variables = ansible_inventory(write(tmp_path, inventory_text), limit)
    before = membership(inventory)
    assert groups_to_form(variables['groups']) == formed
    with installer_groups_formed(variables['groups'], variables['hostvars']) as groups:
        for group, hosts in formed.items():
            assert sorted(groups[group]) == hosts
            for host in hosts:
                assert group in variables['hostvars'].raw_get(host)['group_names']
        if 'k8s_cluster' in formed:
            assert variables['hostvars'].raw_get(formed['k8s_cluster'][-1])['kube_network_plugin'] == 'cilium'
        if 'jump' in variables['hostvars']:
            assert 'kube_network_plugin' not in variables['hostvars'].raw_get('jump')
    assert membership(inventory) == before


def test_put_back_after_a_refusal(tmp_path):
    inventory, variables = ansible_inventory(write(tmp_path, SHIPPED))
    before = membership(inventory)
    with pytest.raises(PlanError):
        with installer_groups_formed(variables['groups'], variables['hostvars']):
            raise PlanError('refused')
    assert membership(inventory) == before


def test_plain_mappings_pass_through():
    groups = {'all': ['cp1'], 'kube_control_plane': ['cp1']}
    with installer_groups_formed(groups, {'cp1': {}}) as formed:
        assert formed is groups


def test_variables_are_those_after_the_installers_group_by(tmp_path):
    """The formed groups' group_vars apply with the precedence kubespray's own group_by gives
    them: the same values as after the playbook kubeports.firewall.installer_groups."""
    path = write(tmp_path, SHIPPED)
    names = ('kube_network_plugin', 'shadowed', 'both', 'bin_dir')
    playbook = tmp_path / 'show.yml'
    playbook.write_text("""
- ansible.builtin.import_playbook: kubeports.firewall.installer_groups
- hosts: localhost
  gather_facts: false
  vars:
    names: %s
  tasks:
    - ansible.builtin.copy:
        content: >-
          {%% set out = {} %%}{%% for host in groups['all'] %%}{%% set _ = out.update({host: {}}) %%}{%% for name in
          names if name in hostvars[host] %%}{%% set _ = out[host].update({name: hostvars[host][name]})
          %%}{%% endfor %%}{%% endfor %%}{{ out | to_json }}
        dest: %s
        mode: "0644"
""" % (json.dumps(list(names)), tmp_path / 'out.json'))
    rc, out = run_playbook(playbook, path)
    assert rc == 0, out
    after_group_by = json.loads((tmp_path / 'out.json').read_text())
    _inventory, variables = ansible_inventory(path)
    with installer_groups_formed(variables['groups'], variables['hostvars']):
        raw = dict((host, variables['hostvars'].raw_get(host)) for host in variables['groups']['all'])
        formed = dict((host, dict((name, found[name]) for name in names if name in found)) for host, found in raw.items())
    assert formed == after_group_by
    assert formed['w1'] == {'kube_network_plugin': 'cilium', 'shadowed': 'k8s_cluster', 'both': 'kube_node',
                            'bin_dir': '/usr/local/bin'}


@pytest.mark.parametrize('group_vars, play_hosts, refused', [
    # A role variable set only in the formed group: the play would not see it on its hosts.
    ({'k8s_cluster/kubeports.yml': {'kubeports_backend': 'ufw'}}, ['w1'],
     'kubeports_backend: set by the group_vars of k8s_cluster'),
    ({'k8s_cluster/conn.yml': {'ansible_user': 'ubuntu', 'ansible_become': True}}, ['cp1', 'w2'],
     'ansible_become, ansible_user: set by the group_vars of k8s_cluster'),
    # The same value from all: nothing differs.
    ({'all/kubeports.yml': {'kubeports_backend': 'ufw'}, 'k8s_cluster/kubeports.yml': {'kubeports_backend': 'ufw'}},
     ['w1'], None),
    # Planning variables are read where the groups are formed.
    ({'k8s_cluster/kubeports.yml': {'kubeports_cni': 'calico', 'kube_network_plugin': 'calico'}}, ['w1'], None),
    # No host of the play gains the group.
    ({'k8s_cluster/kubeports.yml': {'kubeports_backend': 'ufw'}}, ['jump'], None),
    ({'k8s_cluster/kubeports.yml': {'kubeports_backend': 'ufw'}}, None, None),
])
def test_play_variables_set_only_in_a_formed_group_are_refused(tmp_path, group_vars, play_hosts, refused):
    inventory, variables = ansible_inventory(write(tmp_path, SHIPPED, group_vars))
    before = membership(inventory)
    if refused is None:
        with installer_groups_formed(variables['groups'], variables['hostvars'], play_hosts):
            pass
    else:
        with pytest.raises(PlanError) as exc:
            with installer_groups_formed(variables['groups'], variables['hostvars'], play_hosts):
                pass
        assert refused in str(exc.value)
        assert 'installer_groups' in str(exc.value) and 'group_vars/all' in str(exc.value)
    assert membership(inventory) == before


def test_the_plan_is_the_one_of_an_inventory_that_defines_the_groups(tmp_path):
    """Shipped shape, formed by the planning, against the same inventory with k8s_cluster
    defined (the tidier input): one plan, with or without --limit."""
    shipped, defined = tmp_path / 'shipped', tmp_path / 'defined'
    shipped.mkdir()
    defined.mkdir()
    group_vars = {'k8s_cluster/k8s-cluster.yml': {'kube_network_plugin': 'cilium', 'cilium_enable_hubble': True}}
    _inventory, tidy = ansible_inventory(write(defined, DEFINED, group_vars))
    expected = plan_request(tidy['groups'], PlanHostvars(tidy['hostvars']), None, [], [])
    for limit in (None, 'w2'):
        _inventory, variables = ansible_inventory(write(shipped, SHIPPED, group_vars), limit)
        with planning_inventory(variables) as (groups, hostvars):
            document = plan_request(groups, hostvars, None, [], [])
        assert json.dumps(document, sort_keys=True) == json.dumps(expected, sort_keys=True)


def test_variables_read_with_the_plans_shortcuts_are_what_ansible_gives(tmp_path):
    """Group variables read once and no facts left uncleaned: every host's variables are the
    same as without, for hosts with facts (cleaned as Ansible cleans them) and without."""
    inventory, variables = ansible_inventory(write(tmp_path, DEFINED))
    manager = variables['hostvars']._variable_manager
    manager.set_host_facts('w1', {'ansible_ssh_user': 'dropped', 'ansible_os_family': 'Debian', 'ansible_local': {}})
    hosts = variables['groups']['all']
    plain = dict((host, dict(variables['hostvars'].raw_get(host))) for host in hosts)
    from ansible.vars import manager as vars_manager, plugins
    originals = vars_manager.clean_facts, vars_manager.get_vars_from_path, plugins.get_vars_from_path
    with group_vars_read_once(), empty_facts_not_cleaned():
        assert vars_manager.clean_facts({}) == {}
        shortcut = dict((host, dict(variables['hostvars'].raw_get(host))) for host in hosts)
    assert (vars_manager.clean_facts, vars_manager.get_vars_from_path, plugins.get_vars_from_path) == originals
    assert shortcut == plain
    assert plain['w1']['ansible_os_family'] == 'Debian' and 'ansible_ssh_user' not in plain['w1']
