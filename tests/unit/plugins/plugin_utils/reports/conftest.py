"""Report fixtures: plans made by the planner (examples/kubespray; a small kubespray-shaped
inventory and one with ten role boxes, for the flows), and an audit of the kubespray example
with drift built by hand (etcd open to anyone on cp3, a planned port missing on node1, node3
unreachable)."""

import os

import pytest

from ansible.vars.hostvars import HostVars

from ansible_collections.kubeports.firewall.plugins.module_utils.audit import judge
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import exposure
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import host_view, rule_sources
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_planner import InventoryPlanner, plan_request

from helpers import KUBESPRAY, installer_inventory


@pytest.fixture(scope='session')
def kubespray_plan(plugin_loader):
    """The plan document (output=plan) of examples/kubespray/inventory.ini."""
    loader, manager, variables = installer_inventory(KUBESPRAY)
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


COMMON = {'kubeports_cni': 'calico', 'kubeports_admin_cidrs': ['192.0.2.10']}
# Ten role combinations, two hosts each: {host prefix: groups}.
TEN_BOXES = {'e': ['etcd'], 'c': ['kube_control_plane'], 'w': ['kube_node'], 'ec': ['etcd', 'kube_control_plane'],
             'cw': ['kube_control_plane', 'kube_node'], 'rr': ['calico_rr'], 'reg': ['registry'],
             'boot': ['bootstrap'], 'ecw': ['etcd', 'kube_control_plane', 'kube_node'], 'ran': ['rancher']}


def plan_document(boxes, per_box):
    groups, hostvars, number = {}, {}, 0
    for prefix, names in sorted(boxes.items()):
        for index in range(1, per_box + 1):
            number += 1
            host = '%s%d' % (prefix, index)
            for group in names:
                groups.setdefault(group, []).append(host)
            hostvars[host] = dict(COMMON, ansible_host='10.0.0.%d' % number)
    groups['k8s_cluster'] = sorted(set(host for name in ('kube_control_plane', 'kube_node', 'calico_rr')
                                       for host in groups.get(name, ())))
    groups['all'] = sorted(hostvars)
    return InventoryPlanner(groups, hostvars).plan_document()


@pytest.fixture(scope='session')
def small_plan():
    """cp1, cp2 (etcd and control plane) and w1, w2 (workers) at 10.0.0.1-4, calico."""
    return plan_document({'cp': ['etcd', 'kube_control_plane'], 'w': ['kube_node']}, 2)


@pytest.fixture(scope='session')
def ten_role_plan():
    return plan_document(TEN_BOXES, 2)
