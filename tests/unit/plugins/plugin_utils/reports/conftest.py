"""Report fixtures: the plan of examples/kubespray as the planner makes it, and an audit of
it with drift built by hand (etcd open to anyone on cp3, a planned port missing on node1,
node3 unreachable)."""

import os

import pytest

from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.vars.hostvars import HostVars
from ansible.vars.manager import VariableManager

from ansible_collections.kubeports.firewall.plugins.module_utils.audit import judge
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import exposure
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import host_view, rule_sources
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_planner import plan_request

from helpers import KUBESPRAY


@pytest.fixture(scope='session')
def kubespray_plan(plugin_loader):
    """The plan document (output=plan) of examples/kubespray/inventory.ini."""
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[KUBESPRAY])
    variables = VariableManager(loader=loader, inventory=manager)
    hostvars = HostVars(inventory=manager, variable_manager=variables, loader=loader)
    return plan_request(manager.get_groups_dict(), hostvars, None, [], [])


def planned_rules(view):
    """The host's rules with their sources, as port_rules_info gets them."""
    return [dict(rule, sources=rule_sources(rule, view['sets'], view['host'])) for rule in view['rules']]


def exposures_of(rules):
    """What a firewall that holds exactly ``rules`` admits."""
    return [exposure(rule['protocol'], rule.get('port') or '', None if rule.get('interfaces') else rule['sources'],
                     rule['description'], owned=True, interfaces=rule.get('interfaces')) for rule in rules]


@pytest.fixture(scope='session')
def drift_results(kubespray_plan):
    """port_rules_info results of every kubespray host: cp3 has etcd 2379/tcp open to anyone,
    node1 lacks the Calico VXLAN port 4789/udp, node3 was unreachable, the others are clean."""
    results = {}
    for host in kubespray_plan['hosts']:
        rules = planned_rules(host_view(kubespray_plan, kubespray_plan['hosts'][host]))
        found = exposures_of(rules)
        if host == 'cp3':
            found.append(exposure('tcp', '2379', None, 'port 2379/tcp from anyone (public zone)'))
        if host == 'node1':
            found = [item for item in found if not (item['protocol'] == 'udp' and item['port'] == '4789')]
        results[host] = {'backend': 'firewalld', 'findings': judge(rules, found)}
    results['node3'] = {'failed': True, 'unreachable': True, 'msg': 'Failed to connect to the host via ssh'}
    return results


@pytest.fixture
def report_dir():
    """Where rendered example pages go when KUBEPORTS_REPORT_SAMPLES names a directory (to look at them)."""
    return os.environ.get('KUBEPORTS_REPORT_SAMPLES')
