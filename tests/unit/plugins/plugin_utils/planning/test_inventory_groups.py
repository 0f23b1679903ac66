"""Near-miss group names and hosts planned for nothing (inventory_groups.py), on group dicts
shaped like kubespray's, k3s-ansible's and RKE2's inventories."""

import time

import pytest

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning import installers
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_groups import (
    closeness, edit_distance, folded, known_groups, near_misses, unplanned_reasons)
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_index import DEFAULT_ROLE_GROUPS

KNOWN = known_groups(DEFAULT_ROLE_GROUPS, installers.KNOWN_GROUPS)
CP, WORKERS = ['cp1', 'cp2', 'cp3'], ['node1', 'node2', 'node3']


def roles_by_default(groups):
    """roles_of(host) as the default role mapping gives them for ``groups``."""
    roles = {}
    for role, names in DEFAULT_ROLE_GROUPS.items():
        for name in names:
            for host in groups.get(name) or ():
                roles.setdefault(host, set()).add(role)
    return lambda host: roles.get(host, set())


def kubespray(**changes):
    """kubespray's sample inventory as shipped (no k8s_cluster; etcd on the control planes), changed."""
    groups = {'kube_control_plane': CP, 'etcd': CP, 'kube_node': WORKERS, 'calico_rr': [], 'bastion': ['bastion1']}
    groups.update(changes)
    return dict(((name, hosts) for name, hosts in groups.items() if hosts is not None),
                all=sorted(set(host for hosts in groups.values() for host in hosts or ())))


def k3s(**changes):
    groups = {'server': ['s1', 's2'], 'agent': ['a1', 'a2'], 'k3s_cluster': ['s1', 's2', 'a1', 'a2']}
    groups.update(changes)
    return dict(((name, hosts) for name, hosts in groups.items() if hosts is not None),
                all=sorted(set(host for hosts in groups.values() for host in hosts or ())))


def rke2(**changes):
    groups = {'rke2_servers': ['s1'], 'rke2_agents': ['a1', 'a2'], 'rke2_cluster': ['s1', 'a1', 'a2']}
    groups.update(changes)
    return dict(((name, hosts) for name, hosts in groups.items() if hosts is not None),
                all=sorted(set(host for hosts in groups.values() for host in hosts or ())))


@pytest.mark.parametrize('first, second, distance', [
    ('etcd', 'etcd', 0), ('ectd', 'etcd', 1), ('kube_nodes', 'kube_node', 1),
    ('kube_controlplane', 'kube_control_plane', 1), ('agnet', 'agent', 1), ('sever', 'server', 1),
    ('kube_ndoes', 'kube_node', 2), ('nodes', 'node', 1), ('nodes', 'kube_node', 6),
])
def test_edit_distance_counts_one_swap_of_neighbours_as_one_edit(first, second, distance):
    assert edit_distance(first, second, 1) == min(distance, 2)
    assert edit_distance(first, second, 9) == distance
    assert edit_distance(second, first, 9) == distance


@pytest.mark.parametrize('name, known, close', [
    ('Kube_Node', 'kube_node', 0), ('KUBE-NODE', 'kube_node', 0), ('k8s-cluster', 'k8s_cluster', 0),
    ('ectd', 'etcd', 1), ('etcd1', 'etcd', 1),
    # Shorter than four characters: only case and separators count.
    ('etc', 'etcd', None), ('ETC', 'etc', 0),
    ('nodes', 'kube_node', None), ('kube_ndoes', 'kube_node', None),
])
def test_closeness(name, known, close):
    assert closeness(folded(name), folded(known)) == close


# (inventory, group that is refused, the known group it resembles, the hosts named)
REFUSED = [
    # The examples: workers out of every peer set, control planes without etcd's ports.
    (kubespray(kube_node=None, kube_nodes=WORKERS), 'kube_nodes', 'kube_node', WORKERS),
    (kubespray(etcd=None, ectd=CP), 'ectd', 'etcd', CP),
    (kubespray(kube_node=None, Kube_Node=WORKERS), 'Kube_Node', 'kube_node', WORKERS),
    (kubespray(kube_node=None, **{'KUBE-NODE': WORKERS}), 'KUBE-NODE', 'kube-node', WORKERS),
    (kubespray(kube_control_plane=None, kube_controlplane=CP), 'kube_controlplane', 'kube_control_plane', CP),
    (kubespray(kube_control_plane=None, kube_control_planes=CP), 'kube_control_planes', 'kube_control_plane', CP),
    # Only the hosts that would be dropped are named.
    (kubespray(kube_node=['node1'], kube_nodes=WORKERS), 'kube_nodes', 'kube_node', ['node2', 'node3']),
    (kubespray(etcd=['cp1'], Etcd=CP), 'Etcd', 'etcd', ['cp2', 'cp3']),
    # A group that gives no role of its own: its hosts need some role.
    (kubespray(**{'k8s-cluster': ['stray1']}), 'k8s-cluster', 'k8s_cluster', ['stray1']),
    (k3s(agent=None, agnet=['a1', 'a2']), 'agnet', 'agent', ['a1', 'a2']),
    (k3s(server=None, Server=['s1', 's2']), 'Server', 'server', ['s1', 's2']),
    (k3s(k3s_cluster=None, k3s_clutser=['s1', 's2', 'x1']), 'k3s_clutser', 'k3s_cluster', ['x1']),
    (rke2(rke2_agents=None, rke2_agent=['a1', 'a2']), 'rke2_agent', 'rke2_agents', ['a1', 'a2']),
    (rke2(rke2_servers=None, **{'rke2-servers': ['s1']}), 'rke2-servers', 'rke2_servers', ['s1']),
    (rke2(rke2_agents=None, workres=['a1', 'a2']), 'workres', 'workers', ['a1', 'a2']),
]


@pytest.mark.parametrize('groups, group, known, hosts', REFUSED)
def test_a_group_close_to_a_known_one_whose_hosts_would_be_dropped_is_found(groups, group, known, hosts):
    misses = near_misses(groups, KNOWN, roles_by_default(groups))
    assert [(miss.group, miss.known, miss.hosts) for miss in misses] == [(group, known, hosts)]
    assert misses[0].roles == KNOWN[known]


USERS_GROUPS = dict((name, ['x1']) for name in (
    'nodes', 'gpu', 'ingress', 'longhorn', 'storage', 'bastion', 'monitoring', 'lb', 'haproxy', 'db',
    'no_floating', 'no-floating', 'etcd_events', 'kube_ingress', 'workers_gpu', 'gpu_nodes', 'edge', 'infra',
    'service', 'database', 'loadbalancer', 'keepalived', 'jumphost', 'vault', 'ceph', 'nfs', 'node', 'kube',
    'calico', 'cilium', 'rancher_ui', 'registry_mirror', 'seed_nodes'))

NOT_REFUSED = [
    # Known names, each of every installer and of the default mapping, singular and plural.
    ('kubespray as shipped', kubespray()),
    ('kubespray legacy names', kubespray(kube_control_plane=None, kube_node=None, **{
        'kube-master': CP, 'kube-node': WORKERS, 'calico-rr': [], 'k8s_cluster': CP + WORKERS})),
    ('k3s-ansible', k3s()),
    ('rke2-ansible', rke2()),
    ('ansible-role-rke2', {'all': CP + WORKERS, 'masters': CP, 'workers': WORKERS, 'k8s_cluster': CP + WORKERS}),
    ('singular and plural', {'all': CP + WORKERS, 'master': CP, 'masters': CP, 'worker': WORKERS,
                             'workers': WORKERS, 'agent': WORKERS, 'agents': WORKERS, 'server': CP,
                             'servers': CP}),
    # Users' own groups.
    ('users groups', kubespray(**USERS_GROUPS)),
    ('users groups on k3s', k3s(**USERS_GROUPS)),
    # Close, but nothing would be dropped: the hosts have the role already.
    ('hosts have the role', kubespray(kube_nodes=WORKERS, ETCD=CP, kube_controlplane=CP)),
    ('k8s-cluster of hosts with roles', kubespray(**{'k8s-cluster': CP + WORKERS})),
    ('workers1 of workers', k3s(agent1=['a1'])),
    # Empty, or too short to tell.
    ('empty near-miss groups', kubespray(kube_nodes=[], ectd=[], Kube_Node=[])),
    ('short names', kubespray(etc=['x1'], ETC=['x2'], cp=['x3'], eted=None)),
]


@pytest.mark.parametrize('name, groups', NOT_REFUSED, ids=[item[0] for item in NOT_REFUSED])
def test_no_false_alarms(name, groups):
    assert near_misses(groups, KNOWN, roles_by_default(groups)) == []


def test_hosts_that_chose_their_roles_are_not_dropped():
    groups = kubespray(kube_node=None, kube_nodes=WORKERS)
    misses = near_misses(groups, KNOWN, roles_by_default(groups), deliberate={'node1', 'node3'})
    assert [miss.hosts for miss in misses] == [['node2']]
    assert near_misses(groups, KNOWN, roles_by_default(groups), deliberate=set(WORKERS)) == []


def test_a_group_the_mapping_in_use_names_is_known():
    groups = kubespray(kube_node=None, kube_nodes=WORKERS)
    mapping = dict(DEFAULT_ROLE_GROUPS, worker=['kube_nodes'])
    assert near_misses(groups, known_groups(mapping, installers.KNOWN_GROUPS), lambda host: set()) == []
    # A mapping of the user's own: the installers' groups are still known.
    misses = near_misses(kubespray(kube_node=None, Kube_Node=WORKERS), known_groups(
        {'worker': ['nodes']}, installers.KNOWN_GROUPS), lambda host: set())
    assert [(miss.group, miss.known, sorted(miss.roles)) for miss in misses] == [('Kube_Node', 'kube_node', [])]


def test_a_group_named_by_an_installer_variable_is_known():
    groups = k3s(server=None, k3s_servers=['s1', 's2'], k3s_server=['x1'])
    known = known_groups(DEFAULT_ROLE_GROUPS, set(installers.KNOWN_GROUPS) | {'k3s_servers'})
    misses = near_misses(groups, known, lambda host: set())
    assert [(miss.group, miss.known) for miss in misses] == [('k3s_server', 'k3s_servers')]


def test_the_closest_spelling_is_named():
    # kube_nodes is one edit from kube_node and from kube-node once folded: kube_node is named.
    misses = near_misses(kubespray(kube_node=None, kube_nodes=WORKERS), KNOWN, lambda host: set())
    assert misses[0].known == 'kube_node'


def test_near_misses_are_linear_in_groups():
    # One group per host (as some dynamic inventories make): each costs its name's length.
    groups = dict(('host-%05d' % number, ['h%d' % number]) for number in range(20000))
    started = time.process_time()
    assert near_misses(groups, KNOWN, lambda host: set()) == []
    assert time.process_time() - started < 2.0


@pytest.mark.parametrize('groups, reasons', [
    ({'all': ['a', 'stray'], 'kube_node': ['a']}, {'stray': 'in no group'}),
    ({'all': ['a', 'stray'], 'ungrouped': ['stray'], 'kube_node': ['a']}, {'stray': 'in no group'}),
    ({'all': ['a', 'b1'], 'kube_node': ['a'], 'bastion': ['b1']},
     {'b1': 'in group bastion, which no role maps to (kubeports_role_groups)'}),
    ({'all': ['a', 'b1'], 'kube_node': ['a'], 'bastion': ['b1'], 'jump': ['b1']},
     {'b1': 'in groups bastion, jump, which no role maps to (kubeports_role_groups)'}),
    ({'all': ['b1'], 'g1': ['b1'], 'g2': ['b1'], 'g3': ['b1'], 'g4': ['b1'], 'g5': ['b1'], 'g6': ['b1']},
     {'b1': 'in groups g1, g2, g3, g4, g5 and 1 more, which no role maps to (kubeports_role_groups)'}),
    ({'all': ['a'], 'kube_node': ['a']}, {}),
    # Without "all", the hosts of every group.
    ({'kube_node': ['a'], 'bastion': ['b1']}, {'b1': 'in group bastion, which no role maps to (kubeports_role_groups)'}),
])
def test_unplanned_hosts_are_named_with_why(groups, reasons):
    assert unplanned_reasons(groups, roles_by_default(groups)) == reasons


def test_every_host_is_planned_or_named():
    groups = kubespray(kube_node=WORKERS, bastion=['bastion1'], monitoring=['mon1', 'node1'])
    groups['all'] = groups['all'] + ['stray']
    roles_of = roles_by_default(groups)
    reasons = unplanned_reasons(groups, roles_of)
    planned = set(host for host in groups['all'] if roles_of(host))
    assert planned | set(reasons) == set(groups['all']) and not planned & set(reasons)
    assert reasons == {'bastion1': 'in group bastion, which no role maps to (kubeports_role_groups)',
                       'mon1': 'in group monitoring, which no role maps to (kubeports_role_groups)',
                       'stray': 'in no group'}
