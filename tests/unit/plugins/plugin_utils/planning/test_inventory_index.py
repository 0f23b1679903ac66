import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_index import (
    InventoryIndex, merge, parse_cidr, resolve_cidr_list, validate_role_groups)


def index_of(groups, host_vars, role_groups=None):
    groups = dict(groups)
    groups.setdefault('all', sorted(set(h for hosts in groups.values() for h in hosts) | set(host_vars)))
    return InventoryIndex(groups, lambda host: host_vars.get(host, {}), role_groups)


@pytest.mark.parametrize('groups, host, roles', [
    ({'kube_control_plane': ['a'], 'etcd': ['a'], 'kube_node': ['b']}, 'a', {'controlplane', 'etcd'}),
    ({'kube_control_plane': ['a'], 'kube_node': ['b']}, 'b', {'worker'}),
    ({'controlplane': ['a'], 'worker': ['b'], 'etcd': ['c']}, 'c', {'etcd'}),
    ({'server': ['a'], 'agent': ['b']}, 'a', {'controlplane'}),
    ({'rke2_servers': ['a'], 'rke2_agents': ['b']}, 'b', {'worker'}),
    ({'seed': ['a']}, 'a', {'bootstrap'}),
    ({'registry': ['a'], 'rancher': ['b']}, 'b', {'rancher'}),
    ({'k8s_cluster': ['a']}, 'a', set()),
])
def test_default_role_groups(groups, host, roles):
    addresses = dict((h, {'ansible_host': '192.0.2.%d' % (i + 1)})
                     for i, h in enumerate(sorted(set(h for hs in groups.values() for h in hs))))
    assert index_of(groups, addresses).host_roles(host) == roles


def test_custom_role_groups_and_explicit_roles():
    index = index_of({'masters': ['a'], 'minions': ['b'], 'other': ['c']},
                     {'a': {'ansible_host': '192.0.2.1'}, 'b': {'ansible_host': '192.0.2.2'},
                      'c': {'ansible_host': '192.0.2.3', 'kubeports_roles': ['registry']}},
                     {'controlplane': ['masters'], 'worker': 'minions'})
    assert index.host_roles('a') == {'controlplane'}
    assert index.host_roles('b') == {'worker'}
    assert index.host_roles('c') == {'registry'}


@pytest.mark.parametrize('role_groups, message', [
    ({'master': ['masters']}, "kubeports_role_groups: unknown role 'master'"),
    (['etcd'], 'expected a mapping of role to group names'),
    ({'etcd': 5}, 'kubeports_role_groups.etcd: expected a list of group names'),
])
def test_validate_role_groups(role_groups, message):
    with pytest.raises(PlanError) as exc:
        validate_role_groups(role_groups)
    assert message in str(exc.value)


def test_explicit_unknown_role():
    with pytest.raises(PlanError, match="kubeports_roles \\(host a\\): unknown role 'gpu'"):
        index_of({'x': ['a']}, {'a': {'ansible_host': '192.0.2.1', 'kubeports_roles': 'gpu'}})


@pytest.mark.parametrize('host_vars, expected', [
    ({'ansible_host': '192.0.2.1'}, ['192.0.2.1/32']),
    ({'ansible_host': '192.0.2.1', 'ip': '10.0.0.1'}, ['10.0.0.1/32']),
    ({'ip': '10.0.0.1', 'ip6': 'fd00::1'}, ['10.0.0.1/32', 'fd00::1/128']),
    ({'ansible_host': 'cp1.example', 'kubeports_address': ['192.0.2.1', '2001:db8::1']},
     ['192.0.2.1/32', '2001:db8::1/128']),
    ({'ansible_host': '2001:db8::5'}, ['2001:db8::5/128']),
])
def test_addresses(host_vars, expected):
    index = index_of({'kube_node': ['n1']}, {'n1': host_vars})
    assert [str(net) for net in index.addresses['n1']] == expected


@pytest.mark.parametrize('host_vars, message', [
    ({'ansible_host': 'cp1.example'}, "ansible_host (host n1): 'cp1.example' is not an IP address"),
    ({'kubeports_address': ['192.0.2.1', '300.1.1.1']}, "kubeports_address (host n1): '300.1.1.1'"),
    ({}, 'host n1 has no usable address'),
])
def test_unusable_addresses(host_vars, message):
    with pytest.raises(PlanError) as exc:
        index_of({'kube_node': ['n1']}, {'n1': host_vars})
    assert message in str(exc.value)


def test_host_named_by_address_needs_no_variable():
    index = index_of({'kube_node': ['192.0.2.9']}, {})
    assert [str(net) for net in index.addresses['192.0.2.9']] == ['192.0.2.9/32']


def test_hosts_without_role_need_no_address():
    index = index_of({'kube_node': ['n1'], 'ungrouped': ['laptop']},
                     {'n1': {'ansible_host': '192.0.2.1'}, 'laptop': {'ansible_host': 'laptop.local'}})
    assert 'laptop' not in index.addresses


def test_cluster_set_and_ip_families():
    index = index_of({'etcd': ['e1'], 'kube_control_plane': ['c1'], 'kube_node': ['w1'], 'registry': ['r1']},
                     {'e1': {'ansible_host': '192.0.2.1'}, 'c1': {'kubeports_address': ['192.0.2.2', 'fd00::2']},
                      'w1': {'ansible_host': '192.0.2.3'}, 'r1': {'ansible_host': '192.0.2.4'}})
    assert index.members['cluster'] == ['c1', 'e1', 'w1']
    assert index.ip_families == ['ipv4', 'ipv6']
    assert merge(index.role_networks('cluster')) == ['192.0.2.1/32', '192.0.2.2/31', 'fd00::2/128']


@pytest.mark.parametrize('value, expected', [
    ('10.0.0.0/8', '10.0.0.0/8'), ('192.0.2.7', '192.0.2.7/32'), ('2001:db8::/32', '2001:db8::/32'),
])
def test_parse_cidr(value, expected):
    assert str(parse_cidr(value, 'x')) == expected


@pytest.mark.parametrize('value, message', [
    ('10.0.0.1/8', "has host bits set (did you mean 10.0.0.0/8?)"),
    ('10.0.0.0/33', "invalid address or CIDR '10.0.0.0/33'"),
    ('kubernetes.io', "invalid address or CIDR 'kubernetes.io'"),
])
def test_parse_cidr_rejects(value, message):
    with pytest.raises(PlanError) as exc:
        parse_cidr(value, 'kubeports_pod_cidrs (host a)')
    assert message in str(exc.value) and 'kubeports_pod_cidrs (host a)' in str(exc.value)


def test_any_and_merge():
    assert merge(resolve_cidr_list(['any'], 'x')) == ['0.0.0.0/0', '::/0']
    assert merge(resolve_cidr_list(['10.0.0.0/25', '10.0.0.128/25', 'fd00::/64'], 'x')) == \
        ['10.0.0.0/24', 'fd00::/64']


@pytest.mark.parametrize('members', [
    ['10.0.0.0/8', '192.0.2.0/24', '::/0', '10.0.0.0/8', 'fd00::1/128', '0.0.0.0/0'],
    ['192.0.2.%d/32' % number for number in range(200, 0, -7)] + ['2001:db8::%x/128' % number for number in range(9)],
    ['172.16.0.0/12', '172.16.0.0/16', '172.31.255.255/32', '::ffff:1.2.3.4/128'],
])
def test_merge_orders_as_networks_compare(members):
    import netaddr
    networks = [netaddr.IPNetwork(member) for member in members]
    expected = [str(net) for net in sorted(netaddr.cidr_merge(networks), key=lambda net: (net.version, net))]
    assert merge(networks) == expected
