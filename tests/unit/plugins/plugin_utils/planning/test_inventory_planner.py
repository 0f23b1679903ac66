"""Plans of a whole inventory with every peer set listed once (inventory_planner.py)."""

import random

import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_planner import (
    InventoryPlanner, RecordedReads, compact, plan_request, value_token, value_tokens)
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import host_view, rule_sources

COMMON = {'kubeports_cni': 'calico', 'kubeports_admin_cidrs': ['192.0.2.10']}


def inventory(workers=3, host_vars=None, scattered=False):
    """3 control plane and etcd hosts and ``workers`` workers, at tidy or scattered addresses."""
    generator = random.Random(7)
    control = ['cp%d' % i for i in range(1, 4)]
    nodes = ['w%d' % i for i in range(1, workers + 1)]
    hostvars = {}
    for number, host in enumerate(control + nodes):
        if scattered:
            address = '10.%d.%d.%d' % (generator.randrange(256), generator.randrange(256), generator.randrange(1, 255))
        else:
            address = '10.0.%d.%d' % (number // 250, number % 250 + 1)
        hostvars[host] = dict(COMMON, ansible_host=address, **(host_vars or {}).get(host, {}))
    groups = {'all': control + nodes, 'kube_control_plane': control, 'etcd': control, 'kube_node': nodes,
              'k8s_cluster': control + nodes}
    return InventoryPlanner(groups, hostvars)


def expanded(document):
    """{host: {(protocol, port): sorted sources}} of a plan document."""
    found = {}
    for entry in document['hosts'].values():
        view = host_view(document, entry)
        found[entry['host']] = dict(((rule['protocol'], rule['port']),
                                     sorted(rule_sources(rule, view['sets'], entry['host']))) for rule in view['rules'])
    return found


def direct(planner):
    return dict((plan.host, dict(((rule['protocol'], rule['port']), sorted(rule['sources'])) for rule in plan.rules))
                for plan in planner.plan())


@pytest.mark.parametrize('workers, scattered', [(3, False), (40, True)])
def test_the_document_expands_to_the_same_rules(workers, scattered):
    assert expanded(inventory(workers, scattered=scattered).plan_document()) == direct(
        inventory(workers, scattered=scattered))


def test_peer_sets_and_rule_lists_are_listed_once_and_named():
    document = inventory(40, scattered=True).plan_document()
    assert set(document) == {'clusters', 'sets', 'rule_lists', 'hosts', 'skipped_hosts', 'unplanned', 'addresses'}
    assert len(document['sets']['cluster']) == 43
    # One rule list for the control plane hosts and one for the workers.
    assert sorted(document['rule_lists']) == ['controlplane+etcd', 'worker']
    for entry in document['hosts'].values():
        assert set(entry) == {'host', 'roles', 'rule_list', 'own_sets'}
        listed = document['rule_lists'][entry['rule_list']]
        for rule in listed['rules']:
            assert 'host' not in rule
            if rule['source_set'] is None:
                assert rule['sources'] == ['0.0.0.0/0', '::/0']
            else:
                assert 'sources' not in rule
                assert listed['sets'].get(rule['source_set']) in document['sets'] or \
                    rule['source_set'] in entry['own_sets']
    worker = document['hosts']['w1']
    assert worker['rule_list'] == 'worker' and worker['roles'] == ['worker']
    assert document['rule_lists']['worker']['sets']['cluster'] == 'cluster'


def test_the_document_grows_linearly_with_hosts():
    def entries(workers):
        document = inventory(workers, scattered=True).plan_document()
        listed = sum(len(members) for members in document['sets'].values())
        inline = sum(len(rule.get('sources') or ()) for listed_rules in document['rule_lists'].values()
                     for rule in listed_rules['rules'])
        own = sum(len(members) for entry in document['hosts'].values() for members in entry['own_sets'].values())
        return listed + inline + own + len(document['hosts'])
    small, large = entries(100), entries(400)
    # Four times the hosts: about four times the entries (hosts x peers would be sixteen).
    assert large < 4.5 * small


def test_a_set_whose_members_differ_between_hosts_gets_one_key_per_membership():
    planner = inventory(3, host_vars={'w3': {'kubeports_admin_cidrs': ['198.51.100.7']}})
    document = planner.plan_document()
    keys = dict((entry['host'], document['rule_lists'][entry['rule_list']]['sets'].get('admins'))
                for entry in document['hosts'].values())
    assert keys['w1'] == keys['w2'] == keys['cp1'] and keys['w3'] != keys['w1']
    assert keys['w1'].startswith('admins@') and keys['w3'].startswith('admins@')
    assert document['sets'][keys['w3']] == ['198.51.100.7/32']
    assert document['sets'][keys['w1']] == ['192.0.2.10/32']
    # The set keeps its name on the host, so the firewall's set names do not depend on other hosts.
    rule = next(rule for entry in document['hosts'].values() if entry['host'] == 'w3'
                for rule in document['rule_lists'][entry['rule_list']]['rules'] if rule['source_set'] == 'admins')
    assert 'sources' not in rule
    # The two workers' rule lists differ, so they get keys of their own.
    lists = dict((entry['host'], entry['rule_list']) for entry in document['hosts'].values())
    assert lists['w1'] == lists['w2'] != lists['w3'] and lists['w3'].startswith('worker@')


EXTRA = {'protocol': 'tcp', 'port': 9999, 'from': ['cluster'], 'to': ['worker'], 'id': 'extra.app', 'description': 'app'}


@pytest.mark.parametrize('workers, scattered, host_vars', [
    (3, False, None),
    (40, True, None),
    # A host with addresses of its own, and hosts whose extra rules differ in one shown field.
    (6, True, {'w1': {'kubeports_address': ['10.99.0.1', '10.99.0.2']},
               'w2': {'kubeports_extra_rules': [dict(EXTRA, reference='https://a.kubernetes.io')]},
               'w3': {'kubeports_extra_rules': [dict(EXTRA, reference='https://b.kubernetes.io')]}}),
])
def test_rules_hosts_share_are_shown_once_and_read_as_each_hosts_own(workers, scattered, host_vars):
    plans = inventory(workers, host_vars, scattered).plan()
    assert any(shared is not None for plan in plans for shared in plan.shared)
    for plan in plans:
        for rule, shared in zip(plan.rules, plan.shared):
            assert shared is None or dict(shared, host=plan.host) == rule
    shown_once = compact(plans)
    for plan in plans:
        plan.shared = [None] * len(plan.rules)
    assert compact(plans) == shown_once


def test_sources_that_are_the_hosts_own_stay_in_the_rule():
    document = inventory(3).plan_document()
    views = dict((entry['host'], host_view(document, entry)) for entry in document['hosts'].values())
    own = [rule for rule in views['cp1']['rules'] if rule['source_set'] == 'self']
    assert own and all('sources' not in rule for rule in own)
    assert views['cp1']['sets']['self'] == ['10.0.0.1/32'] and views['cp2']['sets']['self'] == ['10.0.0.2/32']
    # The host's own sets are in its entry, so hosts of one role still share one rule list.
    assert len(set(entry['rule_list'] for entry in document['hosts'].values() if 'controlplane' in entry['roles'])) == 1


def test_an_empty_host_list_plans_nothing():
    document = inventory(3).plan_document([])
    assert document['hosts'] == {} and document['sets'] == {} and document['rule_lists'] == {}
    assert document['clusters'][0]['hosts'] == ['cp1', 'cp2', 'cp3', 'w1', 'w2', 'w3']


def test_rule_lists_differ_when_any_shown_field_differs():
    extra = {'protocol': 'tcp', 'port': 9999, 'from': ['cluster'], 'to': ['worker'], 'id': 'extra.app',
             'description': 'app'}
    planner = inventory(3, host_vars={'w1': {'kubeports_extra_rules': [dict(extra, reference='https://a.kubernetes.io')]},
                                      'w2': {'kubeports_extra_rules': [dict(extra, reference='https://b.kubernetes.io')]}})
    document = planner.plan_document()
    assert document['hosts']['w1']['rule_list'] != document['hosts']['w2']['rule_list']
    for host, reference in (('w1', 'https://a.kubernetes.io'), ('w2', 'https://b.kubernetes.io')):
        rules = host_view(document, document['hosts'][host])['rules']
        assert [rule['references'] for rule in rules if rule['port'] == '9999'] == [[reference]]


def test_set_keys_never_share_a_digest():
    # These two admin addresses have the same first 8 hex digits of their digest.
    admins = {'w1': {'kubeports_admin_cidrs': ['10.100.118.176']}, 'w2': {'kubeports_admin_cidrs': ['10.100.227.145']}}
    document = inventory(2, host_vars=admins).plan_document()
    keys = dict((host, document['rule_lists'][entry['rule_list']]['sets']['admins'])
                for host, entry in document['hosts'].items() if host.startswith('w'))
    assert keys['w1'] != keys['w2'] and keys['w1'][:15] == keys['w2'][:15]
    assert document['sets'][keys['w1']] == ['10.100.118.176/32']
    assert document['sets'][keys['w2']] == ['10.100.227.145/32']
    assert expanded(document) == direct(inventory(2, host_vars=admins))


# Hosts whose profile inputs are alike share one resolution; anything that differs does not.
@pytest.mark.parametrize('w1_vars, w2_vars, shared', [
    ({}, {}, True),
    ({'kubeports_ssh_port': 2222}, {'kubeports_ssh_port': 2222}, True),
    ({'kubeports_ssh_port': 2222}, {'kubeports_ssh_port': 2223}, False),
    ({'kubeports_nodeport_udp': True}, {'kubeports_nodeport_udp': 'yes'}, False),
    ({'kubeports_admin_cidrs': ['192.0.2.10']}, {'kubeports_admin_cidrs': ['192.0.2.11']}, False),
    ({'kubeports_peer_cidrs': {'worker': ['10.9.0.0/16']}}, {'kubeports_peer_cidrs': {'worker': ['10.9.0.0/16']}}, True),
    ({'kubeports_peer_cidrs': {'worker': ['10.9.0.0/16']}}, {'kubeports_peer_cidrs': {'cluster': ['10.9.0.0/16']}}, False),
])
def test_alike_profile_inputs_share_one_resolution(w1_vars, w2_vars, shared):
    planner = inventory(2, host_vars={'w1': w1_vars, 'w2': w2_vars})
    profiles = planner.profiles()
    assert (planner._alike['w1'] == planner._alike['w2']) is shared
    for host, given in (('w1', w1_vars), ('w2', w2_vars)):
        alone = inventory(2, host_vars={host: given}).profiles()[host]
        assert dict(profiles[host], cidr_sets=None) == dict(alone, cidr_sets=None)
        assert profiles[host]['cidr_sets'] == alone['cidr_sets']


def test_a_bad_cidr_shared_by_alike_hosts_is_reported_for_the_planned_host():
    bad = {'kubeports_admin_cidrs': ['10.0.0.300/32']}
    planner = inventory(2, host_vars={'w1': bad, 'w2': bad})
    with pytest.raises(Exception) as raised:
        planner.plan(['w2'])
    assert 'host w2' in str(raised.value) and '10.0.0.300' in str(raised.value)


SHARED_LIST = ['10.9.0.0/16']


class Opaque(dict):
    """A mapping of a kind the planner does not know: no token can be told."""


class Tokened(dict):
    """A mapping that tells its own tokens (as the plugin's host views do)."""

    def shared_token(self, name):
        return None if name == 'templated' else ('mine', name)


@pytest.mark.parametrize('first, second, name, same', [
    ({'a': SHARED_LIST}, {'a': SHARED_LIST}, 'a', True),
    ({'a': SHARED_LIST}, {'a': list(SHARED_LIST)}, 'a', False),
    ({}, {}, 'a', True),  # absent from both
    ({'a': None}, {}, 'a', False),
    (Opaque(a=1), Opaque(a=1), 'a', None),
    (Tokened(a=1), Tokened(a=2), 'a', True),  # the mapping's own word
    (Tokened(templated=1), Tokened(templated=1), 'templated', None),
])
def test_value_tokens(first, second, name, same):
    tokens = value_token(first, name), value_token(second, name)
    if same is None:
        assert tokens == (None, None)
    else:
        assert (tokens[0] == tokens[1]) is same


@pytest.mark.parametrize('variables', [
    {'a': SHARED_LIST, 'b': None},
    Opaque(a=1),
    Tokened(a=1, templated=2),
])
def test_value_tokens_are_each_names_value_token(variables):
    names = ('a', 'b', 'templated', 'missing')
    assert value_tokens(variables, names) == tuple(value_token(variables, name) for name in names)


def test_recorded_reads_note_names_until_iterated():
    reads = RecordedReads({'a': 1, 'b': 2})
    assert 'a' in reads and reads['b'] == 2 and reads.get('c') is None
    assert reads.names == {'a', 'b', 'c'}
    assert sorted(reads) == ['a', 'b'] and reads.names is None


KUBESPRAY = {'kube_network_plugin': 'calico', 'calico_network_backend': 'bird'}
CILIUM = 'cilium'
NO_CNI = 'cni'


def kubespray(host_vars):
    """Two control plane and three worker hosts of a kubespray inventory; every host's variables
    hold the same group_vars objects, plus its own."""
    hosts = ['cp1', 'cp2', 'w1', 'w2', 'w3']
    hostvars = dict((host, dict(KUBESPRAY, ip='10.0.0.%d' % number, **host_vars.get(host, {})))
                    for number, host in enumerate(hosts, 1))
    groups = {'all': hosts, 'kube_control_plane': hosts[:2], 'etcd': hosts[:2], 'kube_node': hosts[2:],
              'k8s_cluster': hosts}
    return InventoryPlanner(groups, hostvars)


# Hosts whose installer variables are the same objects share the installer's values; a host
# with values of its own, or values that name it (a refused CNI), has its own.
@pytest.mark.parametrize('host_vars, own', [
    ({}, []),
    ({'w2': {'metallb_enabled': True}}, ['w2']),
    ({'w2': {'calico_network_backend': 'bird'}}, []),  # equal: one resolution, read again once
    ({'w3': {'peer_with_router': True, 'peers': [{'router_id': '10.1.0.1'}]}}, ['w3']),
])
def test_hosts_with_the_same_installer_variables_share_their_values(host_vars, own):
    planner = kubespray(host_vars)
    profiles = planner.profiles()
    for host in profiles:
        alone = kubespray(dict((name, given) for name, given in host_vars.items() if name == host))
        assert dict(profiles[host], cidr_sets=None) == dict(alone.profiles()[host], cidr_sets=None)
        assert profiles[host]['cidr_sets'] == alone.profiles()[host]['cidr_sets']
    shared = [host for host in profiles if planner._alike[host] == planner._alike['cp1']]
    assert sorted(set(profiles) - set(shared)) == own
    assert planner.plan_document() == kubespray(host_vars).plan_document()


def test_a_refused_value_is_never_shared():
    same = {'kube_network_plugin': NO_CNI, 'kubeports_cni': CILIUM}
    planner = kubespray(dict((host, same) for host in ('cp1', 'cp2', 'w1', 'w2', 'w3')))
    planner.profiles()
    assert all(not known for variants in planner._installer_values.values() for _names, known in variants)


@pytest.mark.parametrize('workers, host_vars, scattered', [
    (5, {}, False),
    (20, {}, True),
    (4, {'w2': {'kubeports_admin_cidrs': ['any']}, 'w3': {'kubeports_address': ['10.0.0.5', 'fd00::5']}}, False),
])
def test_compact_reads_shaped_rules_as_it_reads_each_rule_alone(workers, host_vars, scattered):
    plans = inventory(workers, host_vars=host_vars, scattered=scattered).plan()
    assert any(shape is not None for plan in plans for shape in plan.shapes)
    shaped = compact(plans)
    for plan in plans:
        plan.shapes = [None] * len(plan.rules)
        plan.shared = [None] * len(plan.rules)
    assert compact(plans) == shaped


def kubespray_planner(groups, extra=None, role_groups=None):
    """A kubespray-shaped inventory of cp1-3 (etcd too) and node1-3 at tidy addresses, with
    ``groups`` replacing or adding groups (None removes one) and ``extra`` hosts' variables."""
    control, nodes = ['cp1', 'cp2', 'cp3'], ['node1', 'node2', 'node3']
    base = {'kube_control_plane': control, 'etcd': control, 'kube_node': nodes, 'k8s_cluster': control + nodes}
    base.update(groups)
    base = dict((name, hosts) for name, hosts in base.items() if hosts is not None)
    hosts = sorted(set(host for members in base.values() for host in members) | set(extra or {}))
    hostvars = dict((host, dict(COMMON, ansible_host='10.0.0.%d' % (number + 1), **(extra or {}).get(host, {})))
                    for number, host in enumerate(hosts))
    return InventoryPlanner(dict(base, all=hosts), hostvars, role_groups)


@pytest.mark.parametrize('groups, message', [
    ({'kube_node': None, 'kube_nodes': ['node1', 'node2', 'node3'],
      'k8s_cluster': ['cp1', 'cp2', 'cp3', 'node1', 'node2', 'node3']},
     'group kube_nodes looks like a misspelling of kube_node (role worker): its hosts node1, node2, node3 do not '
     'have role worker, so they would be planned without it. Rename the group to kube_node; if kube_nodes is meant, '
     'map it in kubeports_role_groups or set kubeports_roles for those hosts'),
    ({'etcd': None, 'ectd': ['cp1', 'cp2', 'cp3']},
     'group ectd looks like a misspelling of etcd (role etcd): its hosts cp1, cp2, cp3 do not have role etcd, so '
     'they would be planned without it. Rename the group to etcd'),
    ({'k8s-cluster': ['stray']},
     'group k8s-cluster looks like a misspelling of k8s_cluster (a group the collection knows): its host stray '
     'has no role, so it would be planned for nothing. Rename the group to k8s_cluster; if k8s-cluster is meant, '
     'map it in kubeports_role_groups or set kubeports_roles for that host'),
])
def test_a_near_miss_group_is_refused_before_anything_is_planned(groups, message):
    planner = kubespray_planner(groups)
    with pytest.raises(PlanError) as raised:
        planner.plan_document()
    assert message in str(raised.value)
    for method in (planner.profiles, planner.clusters, lambda: planner.plan(['cp1'])):
        with pytest.raises(PlanError, match='looks like a misspelling'):
            method()


def test_every_near_miss_is_named_at_once():
    planner = kubespray_planner({'etcd': None, 'ectd': ['cp1', 'cp2', 'cp3'], 'Kube_Node': ['x1']})
    with pytest.raises(PlanError) as raised:
        planner.profiles()
    assert 'group Kube_Node looks like a misspelling of kube_node' in str(raised.value)
    assert 'group ectd looks like a misspelling of etcd' in str(raised.value)


@pytest.mark.parametrize('groups, extra, role_groups', [
    # The hosts have the role already, or chose theirs, or the mapping in use names the group.
    ({'kube_nodes': ['node1', 'node2', 'node3']}, None, None),
    ({'kube_node': None, 'kube_nodes': ['node1', 'node2', 'node3']},
     dict((host, {'kubeports_roles': ['worker']}) for host in ('node1', 'node2', 'node3')), None),
    ({'kube_node': None, 'kube_nodes': ['node1', 'node2', 'node3']}, None,
     {'etcd': ['etcd'], 'controlplane': ['kube_control_plane'], 'worker': ['kube_nodes']}),
    # Users' own groups, and empty near misses.
    ({'nodes': ['node1'], 'gpu': ['node2'], 'ingress': ['node3'], 'longhorn': ['node1'], 'storage': ['st1'],
      'bastion': ['bastion1'], 'ectd': [], 'Kube_Node': []}, None, None),
])
def test_groups_that_drop_no_host_are_not_refused(groups, extra, role_groups):
    assert kubespray_planner(groups, extra, role_groups).plan_document()['hosts']


def test_a_group_named_by_an_installer_variable_is_known():
    hostvars = dict((host, dict(COMMON, ansible_host='10.0.1.%d' % number, server_group='k3s_servers'))
                    for number, host in enumerate(['s1', 's2', 'x1'], 1))
    groups = {'all': ['s1', 's2', 'x1'], 'k3s_servers': ['s1', 's2'], 'k3s_server': ['x1'], 'server': ['s1', 's2']}
    with pytest.raises(PlanError, match='group k3s_server looks like a misspelling of k3s_servers .a group the '
                                        'collection knows.: its host x1 has no role'):
        InventoryPlanner(groups, hostvars).profiles()


def test_the_document_names_every_host_planned_for_nothing():
    planner = kubespray_planner({'bastion': ['bastion1'], 'monitoring': ['mon1', 'node1']}, {'stray': {}})
    document = planner.plan_document()
    assert document['unplanned'] == {
        'bastion1': 'in group bastion, which no role maps to (kubeports_role_groups)',
        'mon1': 'in group monitoring, which no role maps to (kubeports_role_groups)',
        'stray': 'in no group'}
    assert set(document['hosts']) | set(document['unplanned']) == set(planner.groups['all'])
    # Whatever hosts are asked for, the whole inventory is named.
    assert planner.plan_document(['node1'])['unplanned'] == document['unplanned']
    assert kubespray_planner({}).plan_document()['unplanned'] == {}


def test_a_requested_host_without_a_role_is_refused_with_why():
    planner = kubespray_planner({'bastion': ['bastion1']}, {'stray': {}})
    with pytest.raises(PlanError, match=r'host bastion1 has no role: it is in group bastion, which no role maps to '
                                        r'\(kubeports_role_groups\)\. Add it to a group named in kubeports_role_groups'):
        planner.plan(['bastion1'])
    with pytest.raises(PlanError, match='host stray has no role: it is in no group'):
        planner.plan(['stray'])


def test_skipped_hosts_are_named_with_why():
    inventory_of = kubespray_planner({'bastion': ['bastion1']})
    document = plan_request(inventory_of.groups, inventory_of.hostvars, None, (), ['node1', 'bastion1'], 'skip')
    assert document['skipped_hosts'] == ['bastion1'] and list(document['hosts']) == ['node1']
    assert document['unplanned'] == {'bastion1': 'in group bastion, which no role maps to (kubeports_role_groups)'}


@pytest.mark.parametrize('cni, refused', [('flannel', True), ('calico', True), ('cilium', False)])
def test_a_node_without_an_address_of_its_pod_networks_family_is_refused(cni, refused):
    groups = {'kube_control_plane': ['cp1'], 'etcd': ['cp1'], 'kube_node': ['cp1', 'w1']}
    hostvars = {
        'cp1': {'kubeports_address': ['192.0.2.1', '2001:db8::1']}, 'w1': {'ansible_host': '192.0.2.2'},
    }
    variables = {'kubeports_cni': cni, 'kubeports_pod_cidrs': ['10.42.0.0/16', '2001:cafe:42::/56']}
    planner = InventoryPlanner(dict(groups, all=['cp1', 'w1'], k8s_cluster=['cp1', 'w1']),
                               dict((host, dict(variables, **values)) for host, values in hostvars.items()))
    if refused:
        with pytest.raises(PlanError, match=r'host w1: the pod network has IPv6 \(10.42.0.0/16, 2001:cafe:42::/56 '
                                            r'from kubeports_pod_cidrs.*set kubeports_address'):
            planner.profiles()
    else:
        assert set(planner.profiles()) == {'cp1', 'w1'}


def test_a_host_that_carries_no_pod_traffic_needs_no_address_of_the_pod_networks_family():
    groups = {'kube_control_plane': ['cp1'], 'etcd': ['cp1'], 'kube_node': ['cp1'], 'registry': ['reg1'],
              'all': ['cp1', 'reg1'], 'k8s_cluster': ['cp1']}
    variables = {'kubeports_cni': 'calico', 'kubeports_pod_cidrs': ['10.42.0.0/16', '2001:cafe:42::/56']}
    hostvars = {'cp1': dict(variables, kubeports_address=['192.0.2.1', '2001:db8::1']),
                'reg1': dict(variables, ansible_host='192.0.2.9')}
    assert set(InventoryPlanner(groups, hostvars).profiles()) == {'cp1', 'reg1'}
