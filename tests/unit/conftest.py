"""Shared helpers: plan hosts of a small inventory given as {group: {host: address}}."""

import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.catalog import (
    default_catalog_dir, load_catalog)
from ansible_collections.kubeports.firewall.plugins.module_utils.inventory_index import InventoryIndex
from ansible_collections.kubeports.firewall.plugins.module_utils.host_planner import Planner


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
