"""Plans for the flows tests: a small kubespray-shaped inventory and one with ten role boxes,
planned by the inventory planner (the plan document the lookup returns)."""

import pytest

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_planner import InventoryPlanner

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
