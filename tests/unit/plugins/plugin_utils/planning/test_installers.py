"""Installers' own variables: every one read into the profile with its origin, defaults of each
installer, bad values refused naming the variable, the value and the host, and hosts that
must agree."""

import netaddr
import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.installers import (
    INSTALLERS, detect, missing_formed_groups, parse_server_args)
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_planner import InventoryPlanner

from helpers import ports_of

KUBESPRAY = {'kube_control_plane': ['cp1', 'cp2'], 'etcd': ['cp1', 'cp2'], 'kube_node': ['w1', 'w2']}
K3S = {'server': ['s1', 's2', 's3'], 'agent': ['a1', 'a2']}
RKE2 = {'rke2_servers': ['s1', 's2'], 'rke2_agents': ['a1']}
# The K3s nodes' IPv4 and IPv6 addresses (a dual-stack cluster needs both in the inventory).
K3S_DUAL_STACK = dict((host, {'kubeports_address': ['192.0.2.%d' % index, 'fd00:10::%d' % index]})
                      for index, host in enumerate(['a1', 'a2', 's1', 's2', 's3'], 1))
LABLABS = {'masters': ['m1', 'm2'], 'workers': ['n1']}


def inventory(layout, common=None, host_vars=None, formed=True):
    """InventoryPlanner over ``layout`` ({group: hosts}) with ``common`` vars on every host."""
    groups = dict((group, list(hosts)) for group, hosts in layout.items())
    hosts = sorted(set(host for members in groups.values() for host in members))
    if formed and 'kube_node' in groups:
        groups['k8s_cluster'] = sorted(set(groups['kube_node'] + groups['kube_control_plane']
                                           + groups.get('calico_rr', [])))
    if 'server' in groups:
        groups['k3s_cluster'] = hosts
    groups['all'] = hosts
    hostvars = {}
    for index, host in enumerate(hosts, 1):
        values = {'ansible_host': '192.0.2.%d' % index, 'ip': '10.0.0.%d' % index}
        if (common or {}).get('ipv6_stack') or (common or {}).get('enable_dual_stack_networks'):
            # kubespray's dual stack: the nodes' IPv6 addresses.
            values['ip6'] = 'fd00:10::%d' % index
        values.update(common or {})
        values.update((host_vars or {}).get(host, {}))
        hostvars[host] = values
    return InventoryPlanner(groups, hostvars)


def value(planner, host, key):
    profile = planner.profiles()[host]
    origins = profile['origins']
    if key in ('pod_cidrs', 'service_cidrs', 'bgp_peer_cidrs', 'api_loadbalancer_cidrs'):
        name = {'pod_cidrs': 'pods', 'service_cidrs': 'services', 'bgp_peer_cidrs': 'bgp_peers',
                'api_loadbalancer_cidrs': 'api_loadbalancers'}[key]
        return profile['cidr_sets'][name][1], origins[key]
    return profile[key], origins[key]


@pytest.mark.parametrize('common, key, expected, origin', [
    ({}, 'installer', 'kubespray', 'the host is in groups of kubespray'),
    ({}, 'distribution', 'kubeadm', 'kubespray inventory'),
    ({}, 'cni', ['calico'], 'kubespray default of kube_network_plugin'),
    ({'kube_network_plugin': 'cilium'}, 'cni', ['cilium'], 'kube_network_plugin'),
    ({'kube_network_plugin': 'flannel'}, 'cni', ['flannel'], 'kube_network_plugin'),
    ({'kube_network_plugin': 'weave'}, 'cni', ['weave'], 'kube_network_plugin'),
    ({'kube_network_plugin': 'cloud'}, 'cni', ['cloud'], 'kube_network_plugin'),
    ({'kube_network_plugin': 'canal'}, 'cni', ['canal'], 'kube_network_plugin'),
    ({'kube_network_plugin': 'kube-ovn'}, 'cni', ['kube-ovn'], 'kube_network_plugin'),
    ({'kube_network_plugin': 'kube-router'}, 'cni', ['kube-router'], 'kube_network_plugin'),
    ({'kube_network_plugin': 'macvlan'}, 'cni', ['macvlan'], 'kube_network_plugin'),
    ({'kube_network_plugin': 'custom_cni', 'kubeports_cni': 'cilium'}, 'cni', ['cilium'], 'kubeports_cni'),
    ({'kube_network_plugin_multus': True}, 'multus', True, 'kube_network_plugin_multus'),
    ({}, 'calico_backend', 'vxlan', 'kubespray default of calico_network_backend'),
    ({'calico_network_backend': 'bird', 'calico_ipip_mode': 'Always', 'calico_vxlan_mode': 'Never'},
     'calico_encapsulation', 'ipip', 'calico_ipip_mode'),
    ({'calico_network_backend': 'bird', 'calico_ipip_mode': 'CrossSubnet', 'calico_vxlan_mode': 'Never'},
     'calico_encapsulation', 'ipip', 'calico_ipip_mode'),
    ({'calico_network_backend': 'bird', 'calico_ipip_mode': 'CrossSubnet', 'calico_vxlan_mode': 'Never'},
     'pod_interfaces', [], 'calico_ipip_mode CrossSubnet: pods routed over the node network within a subnet'),
    ({'calico_vxlan_mode': 'CrossSubnet'}, 'pod_interfaces', [],
     'calico_vxlan_mode CrossSubnet: pods routed over the node network within a subnet'),
    ({}, 'pod_interfaces', ['vxlan.calico', 'vxlan-v6.calico', 'cali+'], 'default for calico encapsulation vxlan'),
    ({}, 'calico_encapsulation', 'vxlan', 'kubespray default of calico_vxlan_mode'),
    ({'calico_network_backend': 'bird', 'calico_vxlan_mode': 'Never'}, 'calico_encapsulation', 'none',
     'kubespray default of calico_ipip_mode and calico_vxlan_mode'),
    ({'calico_vxlan_port': 4790}, 'calico_vxlan_port', 4790, 'calico_vxlan_port'),
    ({'typha_enabled': True}, 'calico_typha', True, 'typha_enabled'),
    ({'calico_wireguard_enabled': 'true'}, 'wireguard', True, 'calico_wireguard_enabled'),
    ({'calico_datastore': 'etcd'}, 'cni_uses_etcd', True, 'calico_datastore'),
    ({}, 'cni_uses_etcd', False, 'kubespray default of calico_datastore'),
    ({'calico_felix_prometheusmetricsenabled': True}, 'calico_felix_metrics', True,
     'calico_felix_prometheusmetricsenabled'),
    ({}, 'calico_bgp_peering', 'mesh', 'kubespray default of peer_with_calico_rr; calico_rr has no hosts'),
    ({'peer_with_calico_rr': True}, 'calico_bgp_peering', 'route_reflectors', 'peer_with_calico_rr'),
    ({'peer_with_router': True, 'peers': [{'router_id': '10.99.0.1', 'as': '65000'}]}, 'bgp_peer_cidrs',
     ['10.99.0.1'], 'peers[].router_id'),
    ({'kube_network_plugin': 'cilium', 'cilium_tunnel_mode': 'geneve'}, 'cilium_tunnel', 'geneve',
     'cilium_tunnel_mode'),
    ({'kube_network_plugin': 'cilium'}, 'cilium_hubble', False, 'kubespray default of cilium_enable_hubble'),
    ({'kube_network_plugin': 'cilium', 'cilium_enable_hubble': True}, 'cilium_hubble', True, 'cilium_enable_hubble'),
    ({'kube_network_plugin': 'cilium', 'cilium_enable_prometheus': True}, 'cilium_metrics', True,
     'cilium_enable_prometheus'),
    ({'kube_network_plugin': 'cilium', 'cilium_encryption_enabled': True}, 'ipsec', True,
     'cilium_encryption_enabled, kubespray default of cilium_encryption_type'),
    ({'kube_network_plugin': 'cilium', 'cilium_encryption_enabled': True, 'cilium_encryption_type': 'wireguard'},
     'wireguard', True, 'cilium_encryption_enabled, cilium_encryption_type'),
    ({'kube_network_plugin': 'cilium', 'cilium_identity_allocation_mode': 'kvstore'}, 'cni_uses_etcd', True,
     'cilium_identity_allocation_mode'),
    ({'kube_network_plugin': 'cilium', 'cilium_kube_proxy_replacement': 'strict'}, 'kube_proxy', 'none',
     'cilium_kube_proxy_replacement'),
    ({'kube_network_plugin': 'flannel', 'flannel_backend_type': 'host-gw'}, 'flannel_backend', 'host-gw',
     'flannel_backend_type'),
    ({'kube_network_plugin': 'flannel', 'flannel_vxlan_port': 8473}, 'flannel_vxlan_port', 8473,
     'flannel_vxlan_port'),
    ({'kube_network_plugin': 'kube-ovn', 'kube_ovn_tunnel_type': 'stt'}, 'kube_ovn_tunnel', 'stt',
     'kube_ovn_tunnel_type'),
    ({'kube_network_plugin': 'kube-ovn', 'kube_ovn_network_type': 'vlan'}, 'kube_ovn_tunnel', 'none',
     'kube_ovn_network_type'),
    ({'kube_network_plugin': 'kube-router', 'kube_router_enable_metrics': True}, 'kube_router_metrics', True,
     'kube_router_enable_metrics'),
    ({'kube_network_plugin': 'kube-router', 'kube_router_run_service_proxy': True}, 'kube_proxy', 'none',
     'kube_router_run_service_proxy'),
    ({'kube_network_plugin': 'kube-router', 'kube_router_peer_router_ips': '10.99.0.1,10.99.0.2'},
     'bgp_peer_cidrs', ['10.99.0.1', '10.99.0.2'], 'kube_router_peer_router_ips'),
    ({'calico_bpf_enabled': True}, 'kube_proxy', 'none', 'calico_bpf_enabled'),
    ({'kube_apiserver_port': 8443}, 'api_port', 8443, 'kube_apiserver_port'),
    ({}, 'api_port', 6443, 'kubespray default of kube_apiserver_port'),
    ({'kube_apiserver_node_port_range': '31000-31999'}, 'nodeport_range', '31000-31999',
     'kube_apiserver_node_port_range'),
    ({'loadbalancer_apiserver': {'address': '192.0.2.200', 'port': 8383}}, 'api_loadbalancer_cidrs',
     ['192.0.2.200'], 'loadbalancer_apiserver.address'),
    ({}, 'pod_cidrs', ['10.233.64.0/18'], 'kubespray default of kube_pods_subnet'),
    ({'kube_pods_subnet': '10.100.0.0/16'}, 'pod_cidrs', ['10.100.0.0/16'], 'kube_pods_subnet'),
    ({'kube_service_addresses': '10.96.0.0/12'}, 'service_cidrs', ['10.96.0.0/12'], 'kube_service_addresses'),
    ({'enable_dual_stack_networks': True, 'kube_pods_subnet_ipv6': 'fd00:1::/56'}, 'pod_cidrs',
     ['10.233.64.0/18', 'fd00:1::/56'], 'kubespray default of kube_pods_subnet, kube_pods_subnet_ipv6'),
    ({'ipv6_stack': True}, 'service_cidrs', ['10.233.0.0/18', 'fd85:ee78:d8a6:8607::1000/116'],
     'kubespray default of kube_service_addresses, kubespray default of kube_service_addresses_ipv6'),
    ({'ipv4_stack': False, 'ipv6_stack': True}, 'pod_cidrs', ['fd85:ee78:d8a6:8607::1:0000/112'],
     'kubespray default of kube_pods_subnet_ipv6'),
    ({'kube_proxy_mode': 'nftables'}, 'kube_proxy', 'nftables', 'kube_proxy_mode'),
    ({}, 'kube_proxy', 'ipvs', 'kubespray default of kube_proxy_mode'),
    ({'kube_proxy_remove': True}, 'kube_proxy', 'none', 'kube_proxy_remove'),
    ({}, 'addons', ['nodelocaldns'], 'nodelocaldns: kubespray default of enable_nodelocaldns'),
    ({'enable_nodelocaldns': False}, 'addons', [],
     'no add-on on: enable_nodelocaldns false; kubespray defaults of metallb_enabled, kube_vip_enabled, '
     'ingress_nginx_enabled, metrics_server_enabled'),
    ({'enable_nodelocaldns': False, 'metallb_enabled': False, 'kube_vip_enabled': False, 'ingress_nginx_enabled': False,
      'metrics_server_enabled': False}, 'addons', [],
     'no add-on on: enable_nodelocaldns, metallb_enabled, kube_vip_enabled, ingress_nginx_enabled, '
     'metrics_server_enabled false'),
    ({'metallb_enabled': True, 'enable_nodelocaldns': False}, 'addons', ['metallb'], 'metallb: metallb_enabled'),
    # Each add-on names the variable that switched it on, not the first one looked at.
    ({'metallb_enabled': False, 'ingress_nginx_enabled': True, 'metrics_server_enabled': True}, 'addons',
     ['nodelocaldns', 'ingress', 'metrics-server'],
     'nodelocaldns: kubespray default of enable_nodelocaldns; ingress: ingress_nginx_enabled; '
     'metrics-server: metrics_server_enabled'),
    ({'metallb_enabled': True}, 'metallb_speaker', True,
     'kubespray default of metallb_speaker_enabled: follows metallb_enabled'),
    ({'metallb_enabled': True, 'metallb_speaker_enabled': False}, 'metallb_speaker', False,
     'metallb_speaker_enabled'),
    ({'kube_vip_enabled': True, 'enable_nodelocaldns': False}, 'addons', ['kube-vip'], 'kube-vip: kube_vip_enabled'),
    ({'kube_vip_bgp_enabled': True}, 'kube_vip_bgp', True, 'kube_vip_bgp_enabled'),
    ({'kube_vip_metrics_enabled': True}, 'kube_vip_metrics', True, 'kube_vip_metrics_enabled'),
    ({'kube_vip_metrics_enabled': True, 'kube_vip_metrics_port': 2113}, 'kube_vip_metrics_port', 2113,
     'kube_vip_metrics_port'),
    ({'kube_vip_metrics_enabled': True}, 'kube_vip_metrics_port', 2112, 'kubespray default of kube_vip_metrics_port'),
    ({'ingress_nginx_enabled': True, 'enable_nodelocaldns': False}, 'addons', ['ingress'],
     'ingress: ingress_nginx_enabled'),
    ({'metrics_server_enabled': True, 'enable_nodelocaldns': False}, 'addons', ['metrics-server'],
     'metrics-server: metrics_server_enabled'),
    ({'kube_version': 'v1.22.3'}, 'kubernetes_version', 'v1.22.3', 'kube_version'),
    ({'kube_version': '1.31.4', 'kubeports_kubernetes_version': '1.29'}, 'kubernetes_version', '1.29',
     'kubeports_kubernetes_version'),
    ({'kube_network_plugin': 'cilium', 'kubeports_cni': 'calico'}, 'cni', ['calico'], 'kubeports_cni'),
    ({'kubeports_installer': 'none'}, 'cni', ['calico'], 'default for kubeadm'),
    ({'kubeports_installer': 'none'}, 'pod_cidrs', [], 'default'),
    ({'kubeports_installer': 'kubean'}, 'installer', 'kubespray', 'kubeports_installer'),
])
def test_kubespray_variables(common, key, expected, origin):
    assert value(inventory(KUBESPRAY, common), 'w1', key) == (expected, origin)


def test_route_reflectors_are_planned_and_peer_with_every_node():
    layout = dict(KUBESPRAY, calico_rr=['rr1'])
    planner = inventory(layout, {'calico_network_backend': 'bird', 'calico_vxlan_mode': 'Never',
                                 'calico_ipip_mode': 'Always'})
    assert value(planner, 'w1', 'calico_bgp_peering')[0] == 'route_reflectors'
    plans = dict((plan.host, ports_of(plan)) for plan in planner.plan())
    assert 'rr1' in plans and plans['rr1']['179/tcp']['source_set'] == 'cluster+route_reflector'
    assert plans['w1']['179/tcp']['source_set'] == 'route_reflector'
    assert plans['w1']['179/tcp']['sources'] == ['10.0.0.3/32']
    assert '10250/tcp' in plans['rr1']  # a Kubernetes node too
    assert '10.0.0.3' in netaddr.IPSet(plans['w1']['ipip']['sources'])  # rr1 is in the cluster set


@pytest.mark.parametrize('common, present, absent', [
    ({'kube_network_plugin': 'cilium'}, ['8472/udp', '4240/tcp', 'icmp', '53/udp'],
     ['4244/tcp', '9962/tcp', '4789/udp', '51871/udp', 'esp']),
    ({'kube_network_plugin': 'cilium', 'cilium_enable_hubble': True, 'cilium_enable_prometheus': True,
      'cilium_encryption_enabled': True, 'cilium_encryption_type': 'wireguard'},
     ['4244/tcp', '9962/tcp', '51871/udp'], ['esp']),
    ({'kube_network_plugin': 'cilium', 'cilium_encryption_enabled': True}, ['esp'], ['51871/udp']),
    ({'kube_network_plugin': 'cilium', 'cilium_tunnel_mode': 'geneve'}, ['6081/udp'], ['8472/udp']),
    ({'kube_network_plugin': 'flannel', 'flannel_vxlan_port': 8999}, ['8999/udp'], ['8472/udp']),
    ({'kube_network_plugin': 'flannel', 'flannel_backend_type': 'wireguard'}, ['51820/udp'], ['8472/udp']),
    ({'calico_vxlan_port': 4790, 'typha_enabled': True, 'calico_wireguard_enabled': True},
     ['4790/udp', '5473/tcp', '51820/udp'], ['4789/udp', '179/tcp']),
    ({'calico_network_backend': 'bird', 'calico_ipip_mode': 'Always', 'calico_vxlan_mode': 'Never'},
     ['179/tcp', 'ipip'], ['4789/udp']),
    ({'kube_network_plugin': 'kube-ovn'}, ['6081/udp', '10665/tcp'], ['6641/tcp', '4789/udp']),
    ({'kube_network_plugin': 'kube-ovn', 'kube_ovn_tunnel_type': 'vxlan'}, ['4789/udp'], ['6081/udp']),
    ({'kube_network_plugin': 'kube-router'}, ['179/tcp', 'ipip', '20244/tcp'], ['9255/tcp']),
    ({'kube_network_plugin': 'macvlan'}, ['10250/tcp'], ['4789/udp', '8472/udp']),
    ({'kube_apiserver_node_port_range': '31000-31999'}, ['31000-31999/tcp'], ['30000-32767/tcp']),
    ({'enable_nodelocaldns': False}, [], ['53/udp', '53/tcp']),
    ({'kube_proxy_remove': True}, [], ['10256/tcp']),
    ({'metallb_enabled': True}, ['7946/tcp', '7946/udp', '7472/tcp'], []),
    ({'metallb_enabled': True, 'metallb_speaker_enabled': False}, ['7472/tcp'], ['7946/tcp']),
    ({'ingress_nginx_enabled': True}, ['80/tcp', '443/tcp'], []),
    ({'calico_datastore': 'etcd'}, [], ['2379/tcp']),
])
def test_kubespray_variables_open_the_right_ports_on_a_worker(common, present, absent):
    ports = ports_of(inventory(KUBESPRAY, common).plan(['w1'])[0])
    for port in present:
        assert port in ports, (port, sorted(ports))
    for port in absent:
        assert port not in ports, port


@pytest.mark.parametrize('common, port, source_set', [
    ({}, '6443/tcp', None),
    ({'kube_apiserver_port': 8443, 'kubeports_api_client_cidrs': ['198.51.100.0/24'],
      'loadbalancer_apiserver': {'address': '192.0.2.200', 'port': 443}}, '8443/tcp',
     'api_clients+api_loadbalancers+cluster'),
    ({'calico_datastore': 'etcd'}, '2379/tcp', 'cluster+controlplane+etcd'),
    ({'kube_network_plugin': 'cilium', 'cilium_identity_allocation_mode': 'kvstore'}, '2379/tcp',
     'cluster+controlplane+etcd'),
    ({'kube_network_plugin': 'kube-ovn'}, '6642/tcp', 'cluster'),
    ({'kube_vip_enabled': True, 'kube_vip_metrics_enabled': True, 'kube_vip_metrics_port': 2113}, '2113/tcp',
     'cluster'),
    ({'metrics_server_enabled': True}, '10250/tcp', 'cluster+controlplane+self'),
])
def test_kubespray_variables_on_the_control_plane(common, port, source_set):
    ports = ports_of(inventory(KUBESPRAY, common).plan(['cp1'])[0])
    assert port in ports, sorted(ports)
    assert ports[port]['source_set'] == source_set


@pytest.mark.parametrize('common, host_vars, key, expected, origin', [
    ({}, {}, 'distribution', 'k3s', 'k3s-ansible inventory'),
    ({}, {}, 'k3s_datastore', 'embedded_etcd', 'k3s-ansible: 3 hosts in group server, the first started with --cluster-init'),
    ({'use_external_database': True}, {}, 'k3s_datastore', 'external', 'use_external_database'),
    ({'extra_server_args': '--datastore-endpoint=postgres://db:5432/k3s'}, {}, 'k3s_datastore', 'external',
     'extra_server_args of s1 --datastore-endpoint'),
    ({}, {}, 'api_port', 6443, 'K3s default of --https-listen-port'),
    ({'api_port': 7443}, {}, 'api_port', 6443, 'K3s default of --https-listen-port'),
    ({'api_port': 7443, 'server_config_yaml': 'https-listen-port: 7443\n'}, {}, 'api_port', 7443,
     'server_config_yaml of s1 https-listen-port'),
    ({'extra_server_args': '--https-listen-port 9443'}, {}, 'api_port', 9443,
     'extra_server_args of s1 --https-listen-port'),
    ({}, {}, 'pod_cidrs', ['10.42.0.0/16'], 'K3s default of --cluster-cidr'),
    ({'extra_server_args': '--cluster-cidr=10.52.0.0/16,fd00:52::/56 --service-cidr 10.53.0.0/16'}, K3S_DUAL_STACK,
     'pod_cidrs', ['10.52.0.0/16', 'fd00:52::/56'], 'extra_server_args of s1 --cluster-cidr'),
    ({'extra_server_args': '--service-cidr 10.53.0.0/16'}, {}, 'service_cidrs', ['10.53.0.0/16'],
     'extra_server_args of s1 --service-cidr'),
    ({'server_config_yaml': 'cluster-cidr: 10.62.0.0/16\nflannel-backend: host-gw\n'}, {}, 'pod_cidrs',
     ['10.62.0.0/16'], 'server_config_yaml of s1 cluster-cidr'),
    ({'extra_server_args': '--flannel-backend=wireguard-native'}, {}, 'flannel_backend', 'wireguard',
     'extra_server_args of s1 --flannel-backend'),
    ({}, {}, 'flannel_backend', 'vxlan', 'K3s default of --flannel-backend'),
    ({'extra_server_args': '--embedded-registry'}, {}, 'addons', ['spegel'],
     'extra_server_args of s1 --embedded-registry'),
    ({'extra_server_args': '--disable-kube-proxy'}, {}, 'kube_proxy', 'none',
     'extra_server_args of s1 --disable-kube-proxy'),
    ({'extra_server_args': '--service-node-port-range=31000-31500'}, {}, 'nodeport_range', '31000-31500',
     'extra_server_args of s1 --service-node-port-range'),
    ({'k3s_version': 'v1.31.12+k3s1'}, {}, 'kubernetes_version', 'v1.31.12+k3s1', 'k3s_version'),
])
def test_k3s_ansible_variables_seen_from_an_agent(common, host_vars, key, expected, origin):
    assert value(inventory(K3S, common, host_vars), 'a1', key) == (expected, origin)


def test_k3s_single_server_uses_sqlite_and_server_args_set_on_servers_reach_agents():
    planner = inventory({'server': ['s1'], 'agent': ['a1']}, {},
                        {'s1': {'extra_server_args': '--flannel-backend=wireguard-native'}})
    assert value(planner, 'a1', 'k3s_datastore') == ('sqlite', 'k3s-ansible: one host in group server, no --cluster-init')
    assert value(planner, 'a1', 'flannel_backend')[0] == 'wireguard'
    server = ports_of(planner.plan(['s1'])[0])
    assert '2379-2380/tcp' not in server and '51820/udp' in server and '8472/udp' not in server
    notes = planner.clusters()[0]['notes']
    assert notes and 'manage_firewall' in notes[0]
    assert not inventory(K3S, {'manage_firewall': False}).clusters()[0]['notes']


@pytest.mark.parametrize('layout, common, host_vars, key, expected, origin', [
    (RKE2, {}, {}, 'distribution', 'rke2', 'rke2-ansible inventory'),
    (RKE2, {}, {}, 'cni', ['canal'], 'RKE2 default of cni'),
    (RKE2, {'group_rke2_config': {'cni': ['multus', 'cilium']}}, {}, 'cni', ['cilium'],
     'group_rke2_config of s1 cni'),
    (RKE2, {'group_rke2_config': {'cni': ['multus', 'cilium']}}, {}, 'multus', True, 'group_rke2_config of s1 cni'),
    (RKE2, {}, {'s1': {'group_rke2_config': {'cni': 'calico'}}, 's2': {'group_rke2_config': {'cni': 'calico'}}},
     'cni', ['calico'], 'group_rke2_config of s1 cni'),
    (RKE2, {'cluster_rke2_config': {'cluster-cidr': '10.52.0.0/16'}}, {}, 'pod_cidrs', ['10.52.0.0/16'],
     'cluster_rke2_config of s1 cluster-cidr'),
    (RKE2, {'cluster_rke2_config': {'service-cidr': '10.53.0.0/16'}, 'group_rke2_config': {'service-cidr': '10.54.0.0/16'}},
     {}, 'service_cidrs', ['10.54.0.0/16'], 'group_rke2_config of s1 service-cidr'),
    (RKE2, {}, {}, 'addons', ['ingress'], 'ingress: RKE2 default of disable'),
    (RKE2, {'cluster_rke2_config': {'disable': ['rke2-ingress-nginx']}}, {}, 'addons', [],
     'no ingress: cluster_rke2_config of s1 disable'),
    (RKE2, {'cluster_rke2_config': {'disable-kube-proxy': True}}, {}, 'kube_proxy', 'none',
     'cluster_rke2_config of s1 disable-kube-proxy'),
    (RKE2, {'rke2_install_version': 'v1.29.12+rke2r1'}, {}, 'kubernetes_version', 'v1.29.12+rke2r1',
     'rke2_install_version'),
    (LABLABS, {'rke2_version': 'v1.30.2+rke2r1'}, {}, 'installer', 'ansible-role-rke2',
     'the host is in groups of ansible-role-rke2'),
    (LABLABS, {'rke2_version': 'v1.30.2+rke2r1'}, {}, 'cni', ['canal'], 'ansible-role-rke2 default of rke2_cni'),
    (LABLABS, {'rke2_cni': ['cilium']}, {}, 'cni', ['cilium'], 'rke2_cni of m1'),
    (LABLABS, {'rke2_cni': ['cilium'], 'rke2_cluster_cidr': ['10.72.0.0/16']}, {}, 'pod_cidrs', ['10.72.0.0/16'],
     'rke2_cluster_cidr of m1'),
    (LABLABS, {'rke2_cni': ['canal'], 'rke2_ingress_controller': 'none'}, {}, 'addons', [],
     'no ingress: rke2_ingress_controller of m1'),
    (LABLABS, {'rke2_cni': ['canal'], 'rke2_ha_mode_kubevip': True}, {}, 'addons', ['ingress', 'kube-vip'],
     'ingress: ansible-role-rke2 default of rke2_disable; kube-vip: rke2_ha_mode_kubevip of m1'),
])
def test_rke2_variables_seen_from_an_agent(layout, common, host_vars, key, expected, origin):
    agent = layout.get('rke2_agents', layout.get('workers'))[0]
    assert value(inventory(layout, common, host_vars), agent, key) == (expected, origin)


def test_rke2_cilium_opens_what_rke2_documents():
    planner = inventory(RKE2, {}, {'s1': {'group_rke2_config': {'cni': ['cilium']}},
                                   's2': {'group_rke2_config': {'cni': ['cilium']}}})
    ports = ports_of(planner.plan(['a1'])[0])
    assert {'4240/tcp', '8472/udp', 'icmp', '10250/tcp'} <= set(ports)
    assert '4244/tcp' not in ports and '9962/tcp' not in ports
    assert '9345/tcp' in ports_of(planner.plan(['s1'])[0])


@pytest.mark.parametrize('layout, common, host_vars, message', [
    (KUBESPRAY, {'kube_network_plugin': 'cillium'}, {},
     "kube_network_plugin (host cp1): unknown value 'cillium' (choose from calico, flannel, cloud, cilium, cni, "
     'kube-ovn, kube-router, macvlan, custom_cni, none, weave, canal: kubespray (roles/validate_inventory/tasks/'
     'main.yml) refuses any other spelling)'),
    (KUBESPRAY, {'kube_network_plugin': 'custom_cni'}, {},
     'kube_network_plugin=custom_cni (host cp1): kubespray deploys no CNI of its own'),
    (KUBESPRAY, {'kube_network_plugin': 'cni'}, {}, 'set kubeports_cni to the CNI you deploy'),
    (KUBESPRAY, {'calico_ipip_mode': 'Sometimes'}, {}, "calico_ipip_mode (host cp1): unknown value 'Sometimes'"),
    (KUBESPRAY, {'calico_ipip_mode': 'Always'}, {}, 'calico_ipip_mode and calico_vxlan_mode (host cp1): both are on'),
    (KUBESPRAY, {'calico_ipip_mode': 'Always', 'calico_vxlan_mode': 'Never'}, {},
     'calico_ipip_mode (host cp1): ipip encapsulation needs calico_backend: bird'),
    (KUBESPRAY, {'kube_network_plugin': 'cilium', 'cilium_encryption_enabled': True, 'cilium_encryption_type': 'macsec'},
     {},
     "cilium_encryption_type (host cp1): unknown value 'macsec'"),
    (KUBESPRAY, {'kube_proxy_mode': 'userspace'}, {}, "kube_proxy_mode (host cp1): unknown value 'userspace'"),
    (KUBESPRAY, {'kube_apiserver_port': 'https'}, {}, "kube_apiserver_port (host cp1): invalid port 'https'"),
    (KUBESPRAY, {'kube_pods_subnet': '10.233.64.1/18'}, {}, "'10.233.64.1/18' has host bits set"),
    (KUBESPRAY, {'typha_enabled': 'perhaps'}, {}, "typha_enabled (host cp1): expected a boolean, got 'perhaps'"),
    (KUBESPRAY, {'kubeports_cnii': 'cilium'}, {}, 'kubeports_cnii (host cp1): unknown variable (did you mean '
                                                  'kubeports_cni?)'),
    (KUBESPRAY, {}, {'w1': {'kubeports_cni': 'cilium'}, 'w2': {'kubeports_cni': 'cilium'}},
     'the hosts of one cluster disagree on cni: [calico] (kubespray default of kube_network_plugin) on cp1, cp2; '
     '[cilium] (kubeports_cni) on w1, w2'),
    (KUBESPRAY, {}, {'w1': {'kube_apiserver_port': 8443}},
     'disagree on api_port: 6443 (kubespray default of kube_apiserver_port) on cp1, cp2, w2; 8443 '
     '(kube_apiserver_port) on w1'),
    (KUBESPRAY, {}, {'cp1': {'kube_pods_subnet': '10.10.0.0/16'}}, 'disagree on pod_cidrs'),
    (KUBESPRAY, {}, {'w2': {'kube_network_plugin': 'cilium', 'cilium_tunnel_mode': 'geneve'}}, 'disagree on cni'),
    (K3S, {'extra_server_args': '--flannel-backend=none'}, {}, '--flannel-backend=none (host a1)'),
    (K3S, {'extra_server_args': '--flannel-backend=vxlan'},
     {'s2': {'extra_server_args': '--flannel-backend=host-gw'}}, 'disagree on flannel_backend'),
    (K3S, {'extra_server_args': '--flannel-backend=gre'}, {},
     "extra_server_args of s1 --flannel-backend (host a1): unknown value 'gre' (choose from vxlan, host-gw, "),
    (RKE2, {'group_rke2_config': {'cni': 'weave'}}, {}, "unknown value 'weave' (choose from none, calico, canal, "
                                                        'cilium, flannel: RKE2 (pkg/cli/cmds/server.go validateCNI)'),
    (RKE2, {'group_rke2_config': {'cni': 'none'}}, {}, 'RKE2 deploys no CNI'),
    (RKE2, {'cluster_rke2_config': ['cni: cilium']}, {}, 'expected a mapping of RKE2 config.yaml keys'),
    (KUBESPRAY, {'kubeports_cni': 'weave', 'kubeports_installer': 'none'},
     {}, None),
])
def test_bad_installer_input_is_refused(layout, common, host_vars, message):
    planner = inventory(layout, common, host_vars)
    if message is None:
        planner.plan()
        return
    with pytest.raises(PlanError) as exc:
        planner.plan()
    assert message in str(exc.value)


def test_a_cni_without_a_component_is_refused(tmp_path):
    from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning import profile
    planner = inventory(KUBESPRAY, {'kube_network_plugin': 'cilium'})
    planner.components = [component for component in planner.components if component.name != 'cilium']
    with pytest.raises(PlanError) as exc:
        planner.plan()
    assert 'cni=cilium (kube_network_plugin, host cp1): the catalog has no component for this CNI' in str(exc.value)
    assert 'kubeports_extra_rules' in str(exc.value)
    assert 'cilium' in profile.CNIS


def test_hosts_in_installer_groups_are_never_dropped():
    groups = {'kube_control_plane': ['cp1'], 'kube_node': ['w1'], 'k8s_cluster': ['cp1', 'w1', 'x1'],
              'all': ['cp1', 'w1', 'x1']}
    hostvars = dict((host, {'ansible_host': '192.0.2.%d' % index}) for index, host in enumerate(groups['all'], 1))
    with pytest.raises(PlanError, match='host.s. x1 in group k8s_cluster have no role'):
        InventoryPlanner(groups, hostvars).plan()
    renamed = {'masters': ['m1'], 'cp': ['m2'], 'workers': ['n1'], 'all': ['m1', 'm2', 'n1']}
    hostvars = dict((host, {'ansible_host': '192.0.2.%d' % index, 'rke2_servers_group_name': 'cp'})
                    for index, host in enumerate(renamed['all'], 1))
    with pytest.raises(PlanError, match=r'rke2_servers_group_name \(host m1\) names group cp, whose host\(s\) m2'):
        InventoryPlanner(renamed, hostvars).plan()


def test_kubespray_groups_formed_at_run_time():
    installer = INSTALLERS[0]
    groups = {'kube-master': ['cp1'], 'kube_node': ['w1'], 'calico_rr': ['rr1'], 'etcd': ['cp1']}
    assert missing_formed_groups(installer, groups) == {'kube_control_plane': ['cp1'],
                                                        'k8s_cluster': ['cp1', 'rr1', 'w1']}
    planner = inventory(KUBESPRAY, formed=False)
    with pytest.raises(PlanError) as exc:
        planner.plan()
    assert 'group k8s_cluster lacks cp1, cp2, w1, w2, which kubespray adds to it when it runs' in str(exc.value)
    assert 'kubeports.firewall.installer_groups' in str(exc.value)


def test_detect_refuses_a_host_of_two_installers():
    with pytest.raises(PlanError, match='host h1 is in the groups of two installers'):
        detect({'kube_node': ['h1'], 'agent': ['h1']}, lambda host, names: False)
    assert detect({'masters': ['m1'], 'workers': ['n1']}, lambda host, names: host == 'm1') == {
        'm1': 'ansible-role-rke2'}


@pytest.mark.parametrize('text, expected', [
    ('', {}),
    ('--flannel-backend=wireguard-native --embedded-registry',
     {'flannel-backend': 'wireguard-native', 'embedded-registry': True}),
    ('--cluster-cidr 10.42.0.0/16 --disable traefik', {'cluster-cidr': '10.42.0.0/16', 'disable': 'traefik'}),
    ("--node-label 'a=b c' --secrets-encryption", {'node-label': 'a=b c', 'secrets-encryption': True}),
])
def test_parse_server_args(text, expected):
    assert parse_server_args(text, 'extra_server_args') == expected


def test_cluster_report_says_where_each_value_came_from():
    planner = inventory(KUBESPRAY, {'kube_network_plugin': 'cilium', 'kube_pods_subnet': '10.100.0.0/16'})
    cluster = planner.clusters()[0]
    assert cluster['hosts'] == ['cp1', 'cp2', 'w1', 'w2']
    assert cluster['values']['cni'] == {'value': '[cilium]', 'origin': 'kube_network_plugin'}
    assert 'cni=[cilium] (kube_network_plugin)' in cluster['line']
    assert 'pod_cidrs=[10.100.0.0/16] (kube_pods_subnet)' in cluster['line']
    assert 'calico_backend' not in cluster['values']  # not in use with Cilium


KUBESPRAY_CNIS = 'calico, flannel, cloud, cilium, cni, kube-ovn, kube-router, macvlan, custom_cni, none, weave, canal'
CALICO_CHECK = 'kubespray (roles/network_plugin/calico/tasks/check.yml)'
CILIUM_CHECK = 'kubespray (roles/network_plugin/cilium/tasks/check.yml)'
VALIDATE_INVENTORY = 'kubespray (roles/validate_inventory/tasks/main.yml)'
K3S_FLANNEL = 'vxlan, host-gw, wireguard-native, tailscale, none, wireguard, ipsec'
RKE2_CNI = 'RKE2 (pkg/cli/cmds/server.go validateCNI)'
CILIUM = {'kube_network_plugin': 'cilium'}
KUBE_OVN = {'kube_network_plugin': 'kube-ovn'}


@pytest.mark.parametrize('layout, common, where, value, refused_by, accepted, hint', [
    # kubespray's validate_inventory compares kube_network_plugin and kube_proxy_mode exactly.
    (KUBESPRAY, {'kube_network_plugin': 'Calico'}, 'kube_network_plugin (host cp1)', 'Calico', VALIDATE_INVENTORY,
     KUBESPRAY_CNIS, 'calico'),
    (KUBESPRAY, {'kube_network_plugin': 'CILIUM'}, 'kube_network_plugin (host cp1)', 'CILIUM', VALIDATE_INVENTORY,
     KUBESPRAY_CNIS, 'cilium'),
    (KUBESPRAY, {'kube_network_plugin': 'calico '}, 'kube_network_plugin (host cp1)', 'calico ', VALIDATE_INVENTORY,
     KUBESPRAY_CNIS, 'calico'),
    (KUBESPRAY, {'kube_network_plugin': 'Kube-OVN'}, 'kube_network_plugin (host cp1)', 'Kube-OVN', VALIDATE_INVENTORY,
     KUBESPRAY_CNIS, 'kube-ovn'),
    (KUBESPRAY, {'kube_network_plugin': 'kube_router'}, 'kube_network_plugin (host cp1)', 'kube_router',
     VALIDATE_INVENTORY, KUBESPRAY_CNIS, None),
    (KUBESPRAY, {'kube_network_plugin': 'Custom_CNI'}, 'kube_network_plugin (host cp1)', 'Custom_CNI',
     VALIDATE_INVENTORY, KUBESPRAY_CNIS, 'custom_cni'),
    (KUBESPRAY, {'kube_proxy_mode': 'IPVS'}, 'kube_proxy_mode (host cp1)', 'IPVS', VALIDATE_INVENTORY,
     'iptables, ipvs, nftables', 'ipvs'),
    (KUBESPRAY, {'kube_proxy_mode': 'nftable'}, 'kube_proxy_mode (host cp1)', 'nftable', VALIDATE_INVENTORY,
     'iptables, ipvs, nftables', None),
    (KUBESPRAY, dict(CILIUM, kube_proxy_mode='Iptables'), 'kube_proxy_mode (host cp1)', 'Iptables',
     VALIDATE_INVENTORY, 'iptables, ipvs, nftables', 'iptables'),
    # Calico's check.yml: Always|CrossSubnet|Never and bird|vxlan|none, exactly.
    (KUBESPRAY, {'calico_vxlan_mode': 'always'}, 'calico_vxlan_mode (host cp1)', 'always', CALICO_CHECK,
     'Always, CrossSubnet, Never', 'Always'),
    (KUBESPRAY, {'calico_vxlan_mode': 'crosssubnet'}, 'calico_vxlan_mode (host cp1)', 'crosssubnet', CALICO_CHECK,
     'Always, CrossSubnet, Never', 'CrossSubnet'),
    (KUBESPRAY, {'calico_vxlan_mode': 'Cross-Subnet'}, 'calico_vxlan_mode (host cp1)', 'Cross-Subnet', CALICO_CHECK,
     'Always, CrossSubnet, Never', None),
    (KUBESPRAY, {'calico_vxlan_mode': True}, 'calico_vxlan_mode (host cp1)', True, CALICO_CHECK,
     'Always, CrossSubnet, Never', None),
    (KUBESPRAY, {'calico_ipip_mode': 'NEVER'}, 'calico_ipip_mode (host cp1)', 'NEVER', CALICO_CHECK,
     'Always, CrossSubnet, Never', 'Never'),
    (KUBESPRAY, {'calico_network_backend': 'BIRD'}, 'calico_network_backend (host cp1)', 'BIRD', CALICO_CHECK,
     'bird, vxlan, none', 'bird'),
    (KUBESPRAY, {'calico_datastore': 'KDD'}, 'calico_datastore (host cp1)', 'KDD',
     'kubespray (roles/network_plugin/calico/tasks/install.yml: calicoctl.<calico_datastore>.sh.j2)',
     'kdd, etcd', 'kdd'),
    # Cilium: kubespray's check.yml, and Cilium's own tunnel protocols.
    (KUBESPRAY, dict(CILIUM, cilium_identity_allocation_mode='CRD'), 'cilium_identity_allocation_mode (host cp1)',
     'CRD', CILIUM_CHECK, 'crd, kvstore', 'crd'),
    (KUBESPRAY, dict(CILIUM, cilium_encryption_enabled=True, cilium_encryption_type='WireGuard'),
     'cilium_encryption_type (host cp1)', 'WireGuard', CILIUM_CHECK, 'ipsec, wireguard', 'wireguard'),
    (KUBESPRAY, dict(CILIUM, cilium_tunnel_mode='VXLAN'), 'cilium_tunnel_mode (host cp1)', 'VXLAN',
     "Cilium (pkg/datapath/tunnel/tunnel.go, from kubespray's cilium_tunnel_mode)", 'vxlan, geneve, disabled',
     'vxlan'),
    (KUBESPRAY, dict(CILIUM, cilium_tunnel_mode='Geneve'), 'cilium_tunnel_mode (host cp1)', 'Geneve',
     "Cilium (pkg/datapath/tunnel/tunnel.go, from kubespray's cilium_tunnel_mode)", 'vxlan, geneve, disabled',
     'geneve'),
    (KUBESPRAY, dict(KUBE_OVN, kube_ovn_tunnel_type='Geneve'), 'kube_ovn_tunnel_type (host cp1)', 'Geneve',
     'OVN (controller/ovn-controller.c, from kube_ovn_tunnel_type)', 'geneve, vxlan, stt', 'geneve'),
    # K3s compares --flannel-backend exactly, from the flags or config.yaml.
    (K3S, {'extra_server_args': '--flannel-backend=VXLAN'}, 'extra_server_args of s1 --flannel-backend (host a1)',
     'VXLAN', 'K3s (pkg/agent/flannel/setup.go)', K3S_FLANNEL, 'vxlan'),
    (K3S, {'extra_server_args': '--flannel-backend Wireguard-Native'},
     'extra_server_args of s1 --flannel-backend (host a1)', 'Wireguard-Native', 'K3s (pkg/agent/flannel/setup.go)',
     K3S_FLANNEL, 'wireguard-native'),
    (K3S, {'server_config_yaml': 'flannel-backend: Host-GW\n'}, 'server_config_yaml of s1 flannel-backend (host a1)',
     'Host-GW', 'K3s (pkg/agent/flannel/setup.go)', K3S_FLANNEL, 'host-gw'),
    (K3S, {'extra_server_args': '--flannel-backend=host_gw'}, 'extra_server_args of s1 --flannel-backend (host a1)',
     'host_gw', 'K3s (pkg/agent/flannel/setup.go)', K3S_FLANNEL, None),
    # RKE2's cni: exact names.
    (RKE2, {'cluster_rke2_config': {'cni': 'Canal'}}, 'cluster_rke2_config of s1 cni (host a1)', 'Canal', RKE2_CNI,
     'none, calico, canal, cilium, flannel', 'canal'),
    (RKE2, {'group_rke2_config': {'cni': ['multus', 'Cilium']}}, 'group_rke2_config of s1 cni (host a1)', 'Cilium',
     RKE2_CNI, 'none, calico, canal, cilium, flannel', 'cilium'),
    (RKE2, {'group_rke2_config': {'cni': 'multus, cilium'}}, 'group_rke2_config of s1 cni (host a1)', ' cilium',
     RKE2_CNI, 'none, calico, canal, cilium, flannel', 'cilium'),
    (LABLABS, {'rke2_cni': ['FLANNEL']}, 'rke2_cni (host m1)', 'FLANNEL', RKE2_CNI,
     'none, calico, canal, cilium, flannel', 'flannel'),
])
def test_a_spelling_the_installer_refuses_is_refused(layout, common, where, value, refused_by, accepted, hint):
    with pytest.raises(PlanError) as exc:
        inventory(layout, common).plan()
    message = str(exc.value)
    assert message.startswith('%s: unknown value %r (choose from %s: %s refuses any other spelling)'
                              % (where, value, accepted, refused_by)), message
    if hint:
        assert message.endswith('); did you mean %r?' % hint), message
    else:
        assert 'did you mean' not in message


@pytest.mark.parametrize('layout, common, message', [
    (RKE2, {'group_rke2_config': {'cni': ['cilium', 'multus']}},
     "group_rke2_config of s1 cni (host a1): ['cilium', 'multus'] is refused by %s: it takes two values only with "
     'multus first' % RKE2_CNI),
    (RKE2, {'group_rke2_config': {'cni': 'multus'}},
     "group_rke2_config of s1 cni (host a1): 'multus' is refused by %s: multus must be used alongside another "
     'primary cni selection' % RKE2_CNI),
    (RKE2, {'group_rke2_config': {'cni': 'multus,canal,cilium'}}, 'it takes one or two values'),
    (LABLABS, {'rke2_cni': ['canal', 'cilium']}, "rke2_cni (host m1): ['canal', 'cilium'] is refused"),
    (KUBESPRAY, {'kube_network_plugin': 'flannel', 'flannel_backend_type': 'gre'},
     "flannel_backend_type (host cp1): unknown value 'gre' (choose from alloc, extension, host-gw, ipip, ipsec, "
     'tencent-vpc, udp, vxlan, wireguard, in any case: flannel (pkg/backend/manager.go) refuses any other backend '
     'type)'),
    (KUBESPRAY, {'kube_network_plugin': 'flannel', 'flannel_backend_type': 'ipip'},
     'flannel_backend_type=ipip (host cp1): flannel runs this backend, but the catalog has no rules for it; set '
     'kubeports_flannel_backend: none'),
    (K3S, {'extra_server_args': '--flannel-backend=tailscale'},
     "extra_server_args of s1 --flannel-backend=tailscale (host a1): flannel's traffic goes through Tailscale"),
    (K3S, {'extra_server_args': '--flannel-backend=ipsec'}, 'the collection cannot tell the CNI\'s ports'),
])
def test_installer_values_the_collection_cannot_serve(layout, common, message):
    with pytest.raises(PlanError) as exc:
        inventory(layout, common).plan()
    assert message in str(exc.value)


@pytest.mark.parametrize('layout, common, key, expected, origin', [
    # A CNI's variables are checked only where kubespray runs that CNI's role.
    (KUBESPRAY, dict(CILIUM, calico_vxlan_mode='always', calico_network_backend='BIRD'), 'cni', ['cilium'],
     'kube_network_plugin'),
    (KUBESPRAY, {'cilium_tunnel_mode': 'VXLAN', 'kube_ovn_tunnel_type': 'Geneve', 'flannel_backend_type': 'gre'},
     'cni', ['calico'], 'kubespray default of kube_network_plugin'),
    # kubespray checks cilium_encryption_type only with cilium_encryption_enabled.
    (KUBESPRAY, dict(CILIUM, cilium_encryption_type='WireGuard'), 'wireguard', False,
     'kubespray default of cilium_encryption_enabled'),
    (KUBESPRAY, dict(CILIUM, cilium_tunnel_mode='disabled'), 'cilium_tunnel', 'disabled', 'cilium_tunnel_mode'),
    # Flannel lowercases its backend; kubespray writes flannel_vxlan_port only for exactly "vxlan".
    (KUBESPRAY, {'kube_network_plugin': 'flannel', 'flannel_backend_type': 'VXLAN', 'flannel_vxlan_port': 8999},
     'flannel_backend', 'vxlan', 'flannel_backend_type'),
    (KUBESPRAY, {'kube_network_plugin': 'flannel', 'flannel_backend_type': 'VXLAN', 'flannel_vxlan_port': 8999},
     'flannel_vxlan_port', 8472,
     'kernel default; kubespray writes flannel_vxlan_port only when flannel_backend_type is exactly vxlan'),
    (KUBESPRAY, {'kube_network_plugin': 'flannel', 'flannel_backend_type': 'Host-GW'}, 'flannel_backend', 'host-gw',
     'flannel_backend_type'),
    (KUBESPRAY, {'kube_network_plugin': 'flannel', 'flannel_backend_type': 'udp'}, 'flannel_backend', 'udp',
     'flannel_backend_type'),
    (KUBESPRAY, {'kube_network_plugin': 'flannel'}, 'flannel_vxlan_port', 8472, 'kubespray default of flannel_vxlan_port'),
    # Kube-OVN runs an underlay only for exactly "vlan".
    (KUBESPRAY, dict(KUBE_OVN, kube_ovn_network_type='VLAN'), 'kube_ovn_tunnel', 'geneve',
     'kubespray default of kube_ovn_tunnel_type'),
    (KUBESPRAY, dict(KUBE_OVN, kube_ovn_network_type='vlan'), 'kube_ovn_tunnel', 'none', 'kube_ovn_network_type'),
    # RKE2 splits on commas; multus first.
    (RKE2, {'group_rke2_config': {'cni': 'multus,flannel'}}, 'cni', ['flannel'], 'group_rke2_config of s1 cni'),
    (RKE2, {'group_rke2_config': {'cni': 'multus,flannel'}}, 'multus', True, 'group_rke2_config of s1 cni'),
    (RKE2, {'group_rke2_config': {'cni': []}}, 'cni', ['canal'], 'group_rke2_config of s1 cni'),
    (K3S, {'extra_server_args': '--flannel-backend=wireguard'}, 'flannel_backend', 'wireguard',
     'extra_server_args of s1 --flannel-backend'),
])
def test_what_the_installer_accepts_is_read_as_it_reads_it(layout, common, key, expected, origin):
    host = {'kube_control_plane': 'w1', 'server': 'a1', 'rke2_servers': 'a1'}[list(layout)[0]]
    assert value(inventory(layout, common), host, key) == (expected, origin)


@pytest.mark.parametrize('common, opened, closed, note', [
    ({}, '6443/tcp', None, None),
    # api_port only builds k3s-ansible's URLs: K3s still listens on 6443.
    ({'api_port': 7443}, '6443/tcp', '7443/tcp', "k3s-ansible's api_port (7443) only builds URLs"),
    ({'api_port': 6443}, '6443/tcp', None, None),
    ({'extra_server_args': '--https-listen-port=7443'}, '7443/tcp', '6443/tcp', None),
    ({'extra_server_args': '--https-listen-port 7443', 'api_port': 7443}, '7443/tcp', '6443/tcp', None),
    ({'server_config_yaml': 'https-listen-port: 8443\n', 'api_port': 443}, '8443/tcp', '443/tcp',
     "k3s-ansible's api_port (443) only builds URLs (the join URL, the kubeconfig, wait_for); K3s listens on 8443 "
     '(--https-listen-port), which is opened; 443 is the port of api_endpoint (a load balancer)'),
])
def test_k3s_opens_the_port_it_listens_on_not_api_port(common, opened, closed, note):
    planner = inventory(K3S, dict(common, manage_firewall=False))
    server = ports_of(planner.plan(['s1'])[0])
    assert opened in server and server[opened]['description'].startswith('K3s supervisor')
    assert closed is None or closed not in server
    notes = planner.clusters()[0]['notes']
    if note:
        assert len(notes) == 1 and note in notes[0], notes
    else:
        assert notes == []


@pytest.mark.parametrize('layout, common, opened, closed, origin', [
    (RKE2, {'group_rke2_config': {'cni': 'flannel'}}, '4789/udp', '8472/udp', 'RKE2 default: rke2-flannel chart'),
    (RKE2, {'group_rke2_config': {'cni': ['multus', 'flannel']}}, '4789/udp', '8472/udp',
     'RKE2 default: rke2-flannel chart'),
    (LABLABS, {'rke2_cni': ['flannel']}, '4789/udp', '8472/udp', 'RKE2 default: rke2-flannel chart'),
    (RKE2, {}, '8472/udp', '4789/udp', None),  # canal
    (K3S, {}, '8472/udp', '4789/udp', 'K3s default: flannel vxlan without a Port takes the kernel default'),
    (KUBESPRAY, {'kube_network_plugin': 'flannel'}, '8472/udp', '4789/udp', 'kubespray default of flannel_vxlan_port'),
])
def test_flannel_vxlan_port_per_distribution(layout, common, opened, closed, origin):
    planner = inventory(layout, common)
    worker = {'kube_control_plane': 'w1', 'server': 'a1', 'rke2_servers': 'a1', 'masters': 'n1'}[list(layout)[0]]
    ports = ports_of(planner.plan([worker])[0])
    assert opened in ports and closed not in ports, sorted(ports)
    if origin:
        assert value(planner, worker, 'flannel_vxlan_port') == (int(opened.split('/')[0]), origin)


DCE5 = {'kubeports_dce5_cluster': 'global', 'kube_network_plugin': 'cilium'}


@pytest.mark.parametrize('common, key, expected, origin', [
    (DCE5, 'cilium_hubble', True, 'DCE 5 default of cilium_enable_hubble'),
    (DCE5, 'cilium_metrics', True, 'DCE 5 default of cilium_enable_prometheus'),
    (dict(DCE5, kubeports_dce5_cluster='worker'), 'cilium_hubble', True, 'DCE 5 default of cilium_enable_hubble'),
    (dict(DCE5, kubeports_dce5_cluster='Worker'), 'cilium_metrics', True, 'DCE 5 default of cilium_enable_prometheus'),
    (dict(DCE5, cilium_enable_hubble=False), 'cilium_hubble', False, 'cilium_enable_hubble'),
    (dict(DCE5, cilium_enable_prometheus='false'), 'cilium_metrics', False, 'cilium_enable_prometheus'),
    (dict(DCE5, kubeports_cilium_hubble=False), 'cilium_hubble', False, 'kubeports_cilium_hubble'),
    (dict(DCE5, kubeports_dce5_cluster='none'), 'cilium_hubble', False, 'kubespray default of cilium_enable_hubble'),
    (CILIUM, 'cilium_metrics', False, 'kubespray default of cilium_enable_prometheus'),
    (dict(DCE5, kube_vip_enabled=True), 'kube_vip_metrics_port', 2112, 'DCE 5 default of kube-vip metrics'),
    (dict(DCE5, kube_vip_enabled=True, kube_vip_metrics_enabled=True), 'kube_vip_metrics_port', 2112,
     'DCE 5 default of kube_vip_metrics_port'),
    (dict(DCE5, kube_vip_enabled=True, kube_vip_metrics_enabled=True, kube_vip_metrics_port=2113),
     'kube_vip_metrics_port', 2113, 'kube_vip_metrics_port'),
])
def test_a_declared_dce5_cluster_takes_dce5_defaults(common, key, expected, origin):
    assert value(inventory(KUBESPRAY, common), 'w1', key) == (expected, origin)


@pytest.mark.parametrize('common, host, present, absent', [
    (DCE5, 'w1', ['4244/tcp', '4245/tcp', '9962/tcp', '9963/tcp', '9964/tcp', '4240/tcp', '8472/udp'], []),
    (dict(DCE5, cilium_enable_hubble=False), 'w1', ['9962/tcp', '9963/tcp', '9964/tcp'], ['4244/tcp', '4245/tcp']),
    (dict(DCE5, cilium_enable_prometheus=False), 'w1', ['4244/tcp', '4245/tcp'], ['9962/tcp', '9963/tcp']),
    (CILIUM, 'w1', ['4240/tcp'], ['4244/tcp', '4245/tcp', '9962/tcp', '9963/tcp', '9964/tcp']),
    (dict(DCE5, kube_vip_enabled=True), 'cp1', ['2112/tcp', '4244/tcp', '9962/tcp'], []),
])
def test_a_declared_dce5_cluster_opens_what_dce5_requires(common, host, present, absent):
    ports = ports_of(inventory(KUBESPRAY, common).plan([host])[0])
    for port in present:
        assert port in ports, (port, sorted(ports))
    for port in absent:
        assert port not in ports, port


@pytest.mark.parametrize('layout, common, present, absent, origin', [
    # kube-vip serves metrics on its own default unless kubespray sets prometheus_server.
    (KUBESPRAY, {'kube_vip_enabled': True}, '2112/tcp', None,
     "kube-vip's own default :2112; kubespray's manifest sets prometheus_server only with kube_vip_metrics_enabled"),
    (KUBESPRAY, {'kube_vip_enabled': True, 'kube_vip_metrics_enabled': False, 'kube_vip_metrics_port': 2113},
     '2112/tcp', '2113/tcp',
     "kube-vip's own default :2112; kubespray's manifest sets prometheus_server only with kube_vip_metrics_enabled"),
    (KUBESPRAY, {'kube_vip_enabled': True, 'kube_vip_metrics_enabled': 'true', 'kube_vip_metrics_port': 2113},
     '2113/tcp', '2112/tcp', 'kube_vip_metrics_port'),
    (KUBESPRAY, {'kube_vip_enabled': True, 'kubeports_kube_vip_metrics': False}, None, '2112/tcp', None),
    (LABLABS, {'rke2_version': 'v1.30.2+rke2r1', 'rke2_ha_mode_kubevip': True}, '2112/tcp', None,
     "ansible-role-rke2's kube-vip manifest: prometheus_server :2112"),
    (LABLABS, {'rke2_version': 'v1.30.2+rke2r1', 'rke2_ha_mode_kubevip': True,
               'rke2_kubevip_args': [{'param': 'prometheus_server', 'value': ':2113'}]},
     '2113/tcp', '2112/tcp', 'rke2_kubevip_args prometheus_server'),
])
def test_kube_vip_metrics_port_is_the_one_kube_vip_listens_on(layout, common, present, absent, origin):
    planner = inventory(layout, common)
    control_plane = layout.get('kube_control_plane', layout.get('masters'))[0]
    ports = ports_of(planner.plan([control_plane])[0])
    if present:
        assert present in ports and ports[present]['source_set'] == 'cluster', sorted(ports)
        assert value(planner, control_plane, 'kube_vip_metrics_port') == (int(present.split('/')[0]), origin)
    if absent:
        assert absent not in ports


def test_a_k3s_dual_stack_cluster_without_the_nodes_ipv6_addresses_is_refused():
    planner = inventory(K3S, {'extra_server_args': '--cluster-cidr=10.52.0.0/16,fd00:52::/56'})
    with pytest.raises(PlanError, match=r'host a1: the pod network has IPv6 \(10.52.0.0/16, fd00:52::/56 from '
                                        r'extra_server_args of s1 --cluster-cidr.*which flannel carries'):
        planner.profiles()
