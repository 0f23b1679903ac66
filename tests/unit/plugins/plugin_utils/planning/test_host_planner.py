import re

import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError

from helpers import ports_of

KUBESPRAY = {'kube_control_plane': ['cp1', 'cp2'], 'etcd': ['cp1', 'cp2'], 'kube_node': ['w1', 'w2']}
ADDRESSES = {'cp1': '192.0.2.1', 'cp2': '192.0.2.2', 'w1': '192.0.2.3', 'w2': '198.51.100.4'}
CLUSTER = ['192.0.2.1/32', '192.0.2.2/31', '198.51.100.4/32']


def test_sources_resolve_to_merged_peer_sets(plan):
    ports = ports_of(plan(KUBESPRAY, ADDRESSES, {}, 'cp1'))
    assert ports['2379/tcp']['sources'] == ['192.0.2.1/32', '192.0.2.2/32']
    assert ports['2379/tcp']['source_set'] == 'controlplane+etcd'
    assert ports['4789/udp']['sources'] == CLUSTER
    assert ports['10259/tcp']['sources'] == ['192.0.2.1/32']
    assert ports['10259/tcp']['source_set'] == 'self'
    assert ports['30000-32767/tcp']['sources'] == ['0.0.0.0/0', '::/0']
    assert ports['30000-32767/tcp']['source_set'] is None


def test_duplicates_merge_sources_and_keep_references(plan):
    profile = {'kubeports_dce5_cluster': 'worker', 'kubeports_dce5_global_cluster_cidrs': ['203.0.113.0/24'],
               'kubeports_admin_cidrs': ['198.51.100.7']}
    ports = ports_of(plan(KUBESPRAY, ADDRESSES, profile, 'cp1'))
    ssh = ports['22/tcp']
    assert ssh['ids'] == ['dce5.ssh', 'ssh.ansible']
    assert ssh['sources'] == ['198.51.100.7/32', '203.0.113.0/24']
    assert ssh['source_sets'] == ['admins', 'dce5_global_cluster']
    assert 'https://docs.daocloud.io/install/commercial/port-requirements.html#_4' in ssh['references']
    assert ('https://docs.rancher.cn/docs/rancher2/installation/requirements/ports/_index'
            '#rke-%E4%B8%8A-rancher-server-%E8%8A%82%E7%82%B9%E7%9A%84%E7%AB%AF%E5%8F%A3') in ssh['references']
    api = ports['6443/tcp']
    assert sorted(api['ids']) == ['dce5.worker-api', 'kubernetes.apiserver']
    assert api['source_set'] is None  # api_clients defaults to anyone


def test_every_rule_has_the_lookup_fields(plan):
    for rule in plan(KUBESPRAY, ADDRESSES, {'kubeports_cni': 'cilium'}, 'w1').rules:
        assert set(rule) >= {'host', 'protocol', 'port', 'sources', 'source_set', 'description', 'references'}
        assert isinstance(rule['port'], str)
        assert rule['host'] == 'w1'


@pytest.mark.parametrize('profile, host, present, absent', [
    ({}, 'cp1', ['4789/udp', '10257/tcp', '10259/tcp'], ['179/tcp', 'ipip', '5473/tcp', '10251/tcp', '10252/tcp']),
    ({'kubeports_calico_backend': 'bird', 'kubeports_calico_encapsulation': 'ipip'}, 'w1',
     ['179/tcp', 'ipip'], ['4789/udp']),
    ({'kubeports_calico_typha': True, 'kubeports_wireguard': True}, 'w1', ['5473/tcp', '51820/udp'], ['51821/udp']),
    ({'kubeports_kubernetes_version': '1.21'}, 'cp1', ['10251/tcp', '10252/tcp'], []),
    ({'kubeports_kubernetes_version': '1.22'}, 'cp1', ['10251/tcp'], ['10252/tcp']),
    ({'kubeports_kubernetes_version': '1.21'}, 'w1', [], ['10251/tcp', '10252/tcp']),
    ({'kubeports_cni': 'flannel'}, 'w1', ['8472/udp'], ['4789/udp', '8285/udp']),
    ({'kubeports_cni': 'flannel', 'kubeports_flannel_backend': 'udp'}, 'w1', ['8285/udp'], ['8472/udp']),
    ({'kubeports_cni': 'cilium', 'kubeports_cilium_tunnel': 'geneve'}, 'w1', ['6081/udp', 'icmp', '4240/tcp'],
     ['8472/udp', 'icmpv6']),
    ({'kubeports_cni': 'weave'}, 'w1', ['6783/tcp', '6783-6784/udp'], []),
    ({'kubeports_cni': ['calico', 'spiderpool']}, 'w1', ['4789/udp', '5722/tcp'], []),
    ({'kubeports_addons': ['kube-vip']}, 'cp1', ['2112/tcp'], []),
    ({'kubeports_addons': ['kube-vip']}, 'w1', [], ['2112/tcp']),
    ({'kubeports_addons': ['metallb'], 'kubeports_metallb_secure_metrics': True}, 'w1',
     ['9120/tcp', '7946/tcp', '7946/udp'], ['7472/tcp']),
    ({'kubeports_addons': ['ingress']}, 'w1', ['80/tcp', '443/tcp', '18443/tcp', '10254/tcp'], []),
    ({'kubeports_kubelet_read_only_port': True}, 'w1', ['10255/tcp'], []),
    ({'kubeports_nodeport_range': '30000-31000', 'kubeports_nodeport_udp': True}, 'w1',
     ['30000-31000/tcp', '30000-31000/udp'], ['30000-32767/tcp']),
    ({'kubeports_api_port': 443}, 'cp1', ['443/tcp'], ['6443/tcp']),
    ({'kubeports_manage_ssh': False}, 'w1', [], ['22/tcp']),
])
def test_conditions_select_rules(plan, profile, host, present, absent):
    ports = ports_of(plan(KUBESPRAY, ADDRESSES, profile, host))
    for key in present:
        assert key in ports, key
    for key in absent:
        assert key not in ports, key


def test_ssh_port_follows_ansible_port(plan):
    ports = ports_of(plan(KUBESPRAY, ADDRESSES, {}, 'w1', host_vars={'w1': {'ansible_port': 2222}}))
    assert '2222/tcp' in ports and '22/tcp' not in ports


def test_extra_rules_and_drops(plan):
    profile = {
        'kubeports_extra_rules': [
            {'protocol': 'tcp', 'port': '8080-8081', 'to': ['worker'], 'from': ['cluster'], 'description': 'app'},
            {'id': 'extra.esp', 'protocol': 'esp', 'to': 'node', 'from': ['admins']},
        ],
        'kubeports_drop_rules': ['tcp/10256', 'kubernetes.kubelet-*'],
    }
    ports = ports_of(plan(KUBESPRAY, ADDRESSES, profile, 'w1'))
    assert ports['8080-8081/tcp']['references'] == ['kubeports_extra_rules']
    assert ports['8080-8081/tcp']['ids'] == ['extra.0']
    assert ports['esp']['ids'] == ['extra.esp']
    assert '10256/tcp' not in ports and '10248/tcp' not in ports
    assert '10250/tcp' in ports  # kubernetes.kubelet itself does not match kubernetes.kubelet-*


@pytest.mark.parametrize('profile, message', [
    ({'kubeports_extra_rules': {'protocol': 'tcp'}}, 'kubeports_extra_rules (host w1): expected a list'),
    ({'kubeports_extra_rules': [{'protocol': 'tcp', 'port': 70000, 'to': ['worker'], 'from': ['any']}]},
     'kubeports_extra_rules[0] (host w1): invalid port 70000'),
    ({'kubeports_extra_rules': [{'protocol': 'tcp', 'port': 80, 'to': ['gpu'], 'from': ['any']}]},
     "kubeports_extra_rules[0] (host w1): unknown role 'gpu'"),
    ({'kubeports_drop_rules': ['calico.bpg']}, "kubeports_drop_rules (host w1): 'calico.bpg' matches no"),
    ({'kubeports_drop_rules': ['tcp/abc']}, "invalid port 'abc'"),
    ({'kubeports_pod_cidrs': ['10.233.64.0/17']}, 'kubeports_pod_cidrs (host w1): \'10.233.64.0/17\' has host bits'),
    ({'kubeports_api_client_cidrs': ['corp-net']}, "kubeports_api_client_cidrs (host w1): invalid address or CIDR"),
    ({'kubeports_peer_cidrs': {'rancher': ['x']}}, "kubeports_peer_cidrs.rancher (host w1): invalid"),
    ({'kubeports_peer_cidrs': {'ranchers': ['192.0.2.9']}}, "kubeports_peer_cidrs (host w1): unknown set 'ranchers'"),
])
def test_bad_input_names_value_and_origin(plan, profile, message):
    with pytest.raises(PlanError) as exc:
        plan(KUBESPRAY, ADDRESSES, profile, 'w1')
    assert message in str(exc.value)


def test_host_without_role_is_an_error(plan):
    with pytest.raises(PlanError, match='host laptop: its groups map to no role'):
        plan(dict(KUBESPRAY, admins=['laptop']), dict(ADDRESSES, laptop='192.0.2.200'), {}, 'laptop')


def test_empty_source_sets_are_reported_not_opened(plan):
    result = plan(KUBESPRAY, ADDRESSES, {'kubeports_rancher_cluster_type': 'hosted'}, 'w1')
    ports = ports_of(result)
    assert '8443/tcp' not in ports
    assert 'rancher.hosted-webhook' in set(item['id'] for item in result.skipped)
    native = plan(KUBESPRAY, ADDRESSES, {'kubeports_pod_interfaces': []}, 'w1')
    assert 'pod-network.pods' in set(item['id'] for item in native.skipped)


def test_peer_cidrs_extend_role_sets(plan):
    profile = {'kubeports_rancher_cluster_type': 'hosted', 'kubeports_peer_cidrs': {'rancher': ['203.0.113.10']}}
    ports = ports_of(plan(KUBESPRAY, ADDRESSES, profile, 'w1'))
    assert ports['8443/tcp']['sources'] == ['203.0.113.10/32']
    assert ports['8443/tcp']['source_set'] == 'rancher'


@pytest.mark.parametrize('profile, interfaces', [
    # kubespray's default: Calico VXLAN.
    ({}, ['vxlan.calico', 'vxlan-v6.calico', 'cali+']),
    ({'kubeports_cni': 'flannel'}, ['flannel.1', 'flannel-v6.1', 'cni0']),
    ({'kubeports_cni': 'flannel', 'kubeports_flannel_backend': 'wireguard'}, ['flannel-wg', 'flannel-wg-v6', 'cni0']),
    ({'kubeports_cni': 'canal'}, ['flannel.1', 'flannel-v6.1', 'cali+']),
    ({'kubeports_calico_backend': 'bird', 'kubeports_calico_encapsulation': 'ipip'}, ['tunl0', 'cali+']),
    ({'kubeports_wireguard': True}, ['vxlan.calico', 'vxlan-v6.calico', 'cali+', 'wireguard.cali', 'wg-v6.cali']),
    ({'kubeports_cni': 'cilium'}, ['cilium_vxlan', 'cilium_host', 'cilium_net', 'lxc+']),
    ({'kubeports_cni': 'kube-ovn'}, ['ovn0', 'genev_sys_6081']),
    ({'kubeports_cni': ['calico', 'flannel']}, ['vxlan.calico', 'vxlan-v6.calico', 'cali+', 'flannel.1', 'flannel-v6.1',
                                                'cni0']),
    ({'kubeports_pod_interfaces': ['eth1', 'cali+']}, ['eth1', 'cali+']),
])
def test_encapsulated_pod_traffic_is_trusted_on_the_cnis_devices_only(plan, profile, interfaces):
    profile = dict(profile, kubeports_pod_cidrs=['10.233.64.0/18'], kubeports_service_cidrs=['10.233.0.0/18'])
    result = plan(KUBESPRAY, ADDRESSES, profile, 'w1')
    trusted = [rule for rule in result.rules if rule['protocol'] == 'all']
    assert len(trusted) == 1
    assert trusted[0]['interfaces'] == interfaces
    assert trusted[0]['sources'] == ['0.0.0.0/0', '::/0'] and trusted[0]['source_set'] is None
    assert trusted[0]['ids'] == ['pod-network.interfaces']


@pytest.mark.parametrize('profile', [
    {'kubeports_calico_encapsulation': 'none'},
    {'kubeports_cni': 'cilium', 'kubeports_cilium_tunnel': 'disabled'},
    {'kubeports_cni': 'flannel', 'kubeports_flannel_backend': 'host-gw'},
    {'kubeports_cni': 'kube-router'},
    {'kubeports_cni': ['calico', 'spiderpool']},
    {'kubeports_pod_interfaces': []},
])
def test_pods_routed_over_the_node_network_are_trusted_by_source(plan, profile):
    profile = dict(profile, kubeports_pod_cidrs=['10.233.64.0/18'], kubeports_service_cidrs=['10.233.0.0/18'])
    ports = ports_of(plan(KUBESPRAY, ADDRESSES, profile, 'w1'))
    assert ports['all']['sources'] == ['10.233.0.0/17']
    assert ports['all']['port'] == ''
    assert 'interfaces' not in ports['all']


@pytest.mark.parametrize('value, message', [
    (['flannel.1', 'bad name'], "invalid interface name 'bad name'"),
    ('averyveryverylongname0', "invalid interface name 'averyveryverylongname0'"),
    (['eth0/1'], "invalid interface name 'eth0/1'"),
])
def test_bad_pod_interfaces_are_refused_by_name(plan, value, message):
    with pytest.raises(PlanError, match=re.escape(message)):
        plan(KUBESPRAY, ADDRESSES, {'kubeports_pod_interfaces': value}, 'w1')


def test_dual_stack_addresses_and_ipv6_conditions(plan):
    addresses = dict(ADDRESSES, w1=['192.0.2.3', '2001:db8::3'])
    ports = ports_of(plan(KUBESPRAY, addresses, {'kubeports_cni': 'cilium'}, 'w1',
                          host_vars={'w1': {'kubeports_address': ['192.0.2.3', '2001:db8::3']}}))
    assert ports['icmpv6']['sources'][-1] == '2001:db8::3/128'
    assert ports['10248/tcp']['sources'] == ['192.0.2.3/32', '2001:db8::3/128']


def test_plan_is_sorted_and_deterministic(plan):
    first = plan(KUBESPRAY, ADDRESSES, {'kubeports_addons': ['metallb']}, 'cp1').rules
    second = plan(KUBESPRAY, ADDRESSES, {'kubeports_addons': ['metallb']}, 'cp1').rules
    assert first == second
    keys = [(rule['protocol'], int(rule['port'].split('-')[0] or 0)) for rule in first]
    assert keys == sorted(keys)


@pytest.mark.parametrize('profile, message', [
    ({'kubeports_peer_cidrs': {'etcd': ['0.0.0.0/0']}},
     'host cp1: tcp/2379 (etcd) would be open to anyone (0.0.0.0/0, from the source set(s) controlplane, etcd)'),
    ({'kubeports_extra_rules': [{'protocol': 'udp', 'port': '8000-9000', 'to': ['all'], 'from': ['any']}]},
     'udp/8472 (a VXLAN overlay) would be open to anyone'),
    ({'kubeports_extra_rules': [{'protocol': 'tcp', 'port': 10250, 'to': ['all'], 'from': ['admins']}]},
     'name "tcp/10250" in kubeports_public_ports'),
])
def test_must_not_be_public_ports_are_refused(plan, profile, message):
    with pytest.raises(PlanError) as exc:
        plan(KUBESPRAY, ADDRESSES, profile, 'cp1')
    assert message in str(exc.value)


def test_public_ports_names_the_exception(plan):
    profile = {'kubeports_peer_cidrs': {'etcd': ['0.0.0.0/0']}, 'kubeports_public_ports': ['tcp/2379-2381']}
    ports = ports_of(plan(KUBESPRAY, ADDRESSES, profile, 'cp1'))
    assert '0.0.0.0/0' in ports['2379/tcp']['sources']
    with pytest.raises(PlanError, match="kubeports_public_ports .host cp1.: unknown protocol 'etcd'"):
        plan(KUBESPRAY, ADDRESSES, dict(profile, kubeports_public_ports=['etcd/2379']), 'cp1')


# A host's own address placed among a merged set's CIDRs is what merging them gives, and is
# refused (None) when the address borders one of them.
@pytest.mark.parametrize('members, address, placed', [
    (['10.0.0.8/29', '10.0.1.0/24'], '10.0.0.200', True),
    (['10.0.0.8/29', '10.0.1.0/24'], '10.0.0.1', True),
    (['10.0.0.8/29', '10.0.1.0/24'], '10.0.2.1', True),
    (['10.0.0.8/29', '10.0.1.0/24'], '10.0.0.7', False),  # borders 10.0.0.8/29
    (['10.0.0.8/29', '10.0.1.0/24'], '10.0.0.16', False),  # follows it
    (['10.0.0.8/29', '10.0.1.0/24'], '10.0.0.255', False),
    (['10.0.0.8/29', '10.0.1.0/24'], '10.0.2.0', False),
    (['10.0.0.1/32', '10.0.0.2/32'], '10.0.0.3', False),  # one range, two CIDRs
    (['10.0.0.1/32'], '0.0.0.0', True),
    (['10.0.0.1/32'], '255.255.255.255', True),
    (['10.0.0.0/8', 'fd00::/64'], '192.0.2.1', True),
    (['10.0.0.0/8', 'fd00::/64'], 'fd00:0:0:1::', False),
    (['10.0.0.0/8', 'fd00::/64'], 'fd00:0:0:2::1', True),
    (['10.0.0.0/8', 'fd00::/64'], '::1', True),
    (['10.255.255.255/32'], '11.0.0.0', False),
    (['fd00::/64'], '10.0.0.1', True),
    ([], '10.0.0.1', True),
])
def test_an_isolated_address_is_placed_as_a_merge_places_it(members, address, placed):
    import netaddr
    from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.host_planner import _with_isolated
    from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_index import merge
    networks = sorted((netaddr.IPNetwork(member) for member in members), key=lambda net: (net.version, net))
    sources = [str(net) for net in networks]
    spans = [(net.version, net.first, net.last) for net in networks]
    own = netaddr.IPNetwork(netaddr.IPAddress(address))
    found = _with_isolated((own.version, own.first, own.last), str(own.cidr), spans, sources)
    assert (found is not None) is placed
    if placed:
        assert found == merge(networks + [own])
    assert _with_isolated((own.version, own.first, own.last + 1), str(own.cidr), spans, sources) is None


def test_hosts_of_one_kind_plan_as_each_alone():
    from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_planner import InventoryPlanner
    hosts = ['cp1', 'w1', 'w2', 'w3']
    shared = {'kubeports_cni': 'calico', 'kubeports_admin_cidrs': ['192.0.2.10'], 'kubeports_calico_backend': 'bird'}
    addresses = {'cp1': '10.0.0.1', 'w1': '10.0.0.2', 'w2': '10.0.0.200', 'w3': '10.0.0.5'}
    hostvars = dict((host, dict(shared, ansible_host=addresses[host])) for host in hosts)
    groups = {'all': hosts, 'kube_control_plane': ['cp1'], 'etcd': ['cp1'], 'kube_node': hosts[1:],
              'k8s_cluster': hosts}
    together = InventoryPlanner(groups, hostvars)
    plans = dict((plan.host, plan) for plan in together.plan())
    assert len(set(together._alike[host] for host in hosts[1:])) == 1
    for host in hosts:
        alone = InventoryPlanner(groups, hostvars).plan([host])[0]
        assert plans[host].rules == alone.rules
        assert plans[host].signatures == alone.signatures
        assert plans[host].skipped == alone.skipped


def test_an_ipv6_only_peer_is_admitted_over_ipv6_only(plan):
    addresses = dict(ADDRESSES, cp1=['192.0.2.1', '2001:db8::1'], w2='2001:db8::4')
    host_vars = {'cp1': {'kubeports_address': ['192.0.2.1', '2001:db8::1']}, 'w2': {'kubeports_address': '2001:db8::4'}}
    ports = ports_of(plan(KUBESPRAY, addresses, {'kubeports_cni': 'flannel'}, 'cp1', host_vars=host_vars))
    vxlan = ports['8472/udp']['sources']
    assert '2001:db8::4/128' in vxlan
    assert '198.51.100.4/32' not in vxlan and not any(source.startswith('198.51.100.') for source in vxlan)
