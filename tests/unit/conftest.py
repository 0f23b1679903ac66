"""Shared helpers: plan hosts of a small inventory given as {group: {host: address}}, and an
inventory read by ansible-core itself."""

import os

import pytest

from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.vars.hostvars import HostVars
from ansible.vars.manager import VariableManager

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.catalog import (
    default_catalog_dir, load_catalog)
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_index import InventoryIndex
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.host_planner import Planner


@pytest.fixture(scope='session')
def catalog():
    return load_catalog([default_catalog_dir()])


def make_inventory(groups, addresses, host_vars=None):
    """groups: {group: [hosts]}; addresses: {host: address or list}."""
    host_vars = host_vars or {}
    all_hosts = sorted(set(h for hosts in groups.values() for h in hosts) | set(addresses))
    groups = dict(groups, all=all_hosts)

    def lookup(host):
        values = dict(host_vars.get(host, {}))
        if host in addresses:
            values.setdefault('ansible_host', addresses[host])
        return values
    return groups, lookup


@pytest.fixture
def plan(catalog):
    """plan(groups, addresses, profile, host, host_vars=None, role_groups=None) -> HostPlan."""
    def run(groups, addresses, profile, host, host_vars=None, role_groups=None):
        inventory_groups, lookup = make_inventory(groups, addresses, host_vars)
        index = InventoryIndex(inventory_groups, lookup, role_groups)
        variables = dict(profile)
        variables.update(lookup(host))
        return Planner(catalog, index).plan(host, variables)
    return run


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        handle.write(text)


@pytest.fixture(scope='session')
def plugin_loader():
    init_plugin_loader()


@pytest.fixture
def templated_inventory(tmp_path, plugin_loader):
    """(directory, groups, Ansible's hostvars) of a kubespray-shaped inventory whose group_vars
    mix plain values, lists hosts share and templates of host variables; one host overrides a
    shared value with a template."""
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
    return directory, manager.get_groups_dict(), HostVars(inventory=manager, variable_manager=variables, loader=loader)
