"""Each seed document's systems, planned role by role and compared with its tables.

Expected values are the rule's source_set: None (anyone), or the peer sets joined by "+".
SSH (managed separately, kubeports_manage_ssh) is off unless the table lists it.
"""

import pytest

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_planner import InventoryPlanner

from helpers import ports_of

ANY = None


def table(host_plan):
    """The ports of a host; the CNI's devices (pod_interfaces) are no port of the documents' tables."""
    return dict((key, rule['source_set']) for key, rule in ports_of(host_plan).items() if not rule.get('interfaces'))


KUBEADM = {'kube_control_plane': ['cp1'], 'etcd': ['cp1'], 'kube_node': ['w1', 'w2']}
KUBEADM_ADDRESSES = {'cp1': '192.0.2.1', 'w1': '192.0.2.2', 'w2': '192.0.2.3'}
KUBEADM_PROFILE = {'kubeports_cni': 'none', 'kubeports_manage_ssh': False}


@pytest.mark.parametrize('host, version, expected', [
    # kubernetes-ports-and-protocols.zh.md: control plane and worker tables.
    ('cp1', '1.30', {'6443/tcp': ANY, '2379/tcp': 'controlplane+etcd', '2380/tcp': 'etcd',
                     '2381/tcp': 'cluster', '10250/tcp': 'controlplane+self', '10259/tcp': 'self',
                     '10257/tcp': 'self', '10248/tcp': 'self', '10256/tcp': 'self',
                     '30000-32767/tcp': ANY}),
    ('w1', '1.30', {'10250/tcp': 'controlplane+self', '10256/tcp': 'self', '30000-32767/tcp': ANY,
                    '10248/tcp': 'self'}),
    # offline-installer-ports.zh.md lists 10251/10252 for clusters that still serve them.
    ('cp1', '1.20', {'6443/tcp': ANY, '2379/tcp': 'controlplane+etcd', '2380/tcp': 'etcd',
                     '2381/tcp': 'cluster', '10250/tcp': 'controlplane+self', '10259/tcp': 'self',
                     '10257/tcp': 'self', '10251/tcp': 'self', '10252/tcp': 'self', '10248/tcp': 'self',
                     '10256/tcp': 'self', '30000-32767/tcp': ANY}),
])
def test_kubernetes_ports_and_protocols(plan, host, version, expected):
    profile = dict(KUBEADM_PROFILE, kubeports_kubernetes_version=version)
    assert table(plan(KUBEADM, KUBEADM_ADDRESSES, profile, host)) == expected


DCE5 = {'bootstrap': ['seed'], 'registry': ['reg'], 'kube_control_plane': ['m1', 'm2'],
        'etcd': ['m1', 'm2'], 'kube_node': ['n1']}
DCE5_ADDRESSES = {'seed': '192.0.2.5', 'reg': '192.0.2.6', 'm1': '192.0.2.11', 'm2': '192.0.2.12',
                  'n1': '192.0.2.21'}
DCE5_PROFILE = {'kubeports_distribution': 'kubean', 'kubeports_dce5_cluster': 'global',
                'kubeports_cni': ['calico', 'spiderpool'], 'kubeports_calico_backend': 'bird',
                'kubeports_calico_encapsulation': 'ipip', 'kubeports_calico_typha': True,
                'kubeports_wireguard': True, 'kubeports_addons': ['metallb', 'kube-vip']}
DCE5_ALL_NODES = {
    # 全部 K8s 节点
    '22/tcp': ANY, '9100/tcp': 'cluster', '10250/tcp': 'controlplane+self', '30000-32767/tcp': ANY,
    # Calico（默认）
    '179/tcp': 'cluster', 'ipip': 'cluster', '5473/tcp': 'cluster', '51820/udp': 'cluster',
    # MetalLB（默认）
    '7472/tcp': 'cluster', '7946/tcp': 'cluster', '7946/udp': 'cluster',
    # SpiderPool（可选）
    '5710/tcp': 'self', '5711/tcp': 'cluster', '5712/tcp': 'self', '5720/tcp': 'self',
    '5721/tcp': 'cluster', '5722/tcp': 'controlplane', '5723/tcp': 'cluster', '5724/tcp': 'self',
    # 全局服务集群: Istio gateway and Insight
    '80/tcp': ANY, '443/tcp': ANY, '8480/tcp': 'cluster', '9200/tcp': 'cluster', '4317/tcp': 'cluster',
    '8006/tcp': 'cluster',
    # Kubernetes node ports that DCE 5 refers to the Kubernetes document for
    '10248/tcp': 'self', '10256/tcp': 'self',
}
DCE5_CONTROL_PLANE = dict(DCE5_ALL_NODES, **{
    '2379/tcp': 'controlplane+etcd', '2380/tcp': 'etcd', '2381/tcp': 'cluster', '6443/tcp': ANY,
    '10257/tcp': 'self', '10259/tcp': 'self', '2112/tcp': 'cluster'})


@pytest.mark.parametrize('host, expected', [
    ('seed', {'22/tcp': ANY, '443/tcp': 'cluster+registry', '8081/tcp': 'cluster', '9000/tcp': 'cluster',
              '9001/tcp': ANY}),
    ('reg', {'22/tcp': ANY, '443/tcp': 'bootstrap+cluster'}),
    ('m1', DCE5_CONTROL_PLANE),
    ('n1', DCE5_ALL_NODES),
])
def test_dce5_kubean(plan, host, expected):
    assert table(plan(DCE5, DCE5_ADDRESSES, DCE5_PROFILE, host)) == expected


def test_dce5_worker_cluster_opens_ssh_and_api_to_the_global_cluster(plan):
    profile = dict(DCE5_PROFILE, kubeports_dce5_cluster='worker', kubeports_admin_cidrs=['192.0.2.5'],
                   kubeports_api_client_cidrs=[], kubeports_dce5_global_cluster_cidrs=['203.0.113.0/28'])
    ports = ports_of(plan(DCE5, DCE5_ADDRESSES, profile, 'm1'))
    assert ports['22/tcp']['source_set'] == 'admins+bootstrap+dce5_global_cluster'
    assert '203.0.113.0/28' in ports['6443/tcp']['sources']
    assert ports['6443/tcp']['source_set'] == 'cluster+dce5_global_cluster'
    assert '80/tcp' not in ports and '8480/tcp' not in ports


# Cilium（可选） and KubeVIP（可选）: every port of the tables, on a Kubean cluster declared DCE 5
# from kubespray's own variables (no kubeports_* value for Cilium or kube-vip).
DCE5_CILIUM = {'4240/tcp': 'cluster', '4244/tcp': 'cluster', '4245/tcp': 'cluster', '8472/udp': 'cluster',
               '9962/tcp': 'cluster', '9963/tcp': 'cluster', '9964/tcp': 'cluster', 'icmp': 'cluster'}


@pytest.mark.parametrize('host, expected', [
    ('m1', dict(DCE5_CILIUM, **{'2112/tcp': 'cluster'})),
    ('n1', DCE5_CILIUM),
])
def test_dce5_kubean_cilium_and_kube_vip_from_kubespray_variables(host, expected):
    groups = {'kube_control_plane': ['m1', 'm2'], 'etcd': ['m1', 'm2'], 'kube_node': ['n1'],
              'k8s_cluster': ['m1', 'm2', 'n1'], 'all': ['m1', 'm2', 'n1']}
    common = {'kubeports_dce5_cluster': 'global', 'kube_network_plugin': 'cilium', 'kube_vip_enabled': True,
              'kubeports_manage_ssh': False}
    hostvars = dict((host_name, dict(common, ansible_host=DCE5_ADDRESSES[host_name])) for host_name in groups['all'])
    ports = table(InventoryPlanner(groups, hostvars).plan([host])[0])
    assert dict((port, ports.get(port)) for port in expected) == expected


OFFLINE = {'registry': ['reg'], 'kube_control_plane': ['m1'], 'etcd': ['m1'], 'kube_node': ['n1']}
OFFLINE_ADDRESSES = {'reg': '192.0.2.6', 'm1': '192.0.2.11', 'n1': '192.0.2.21'}
OFFLINE_PROFILE = {'kubeports_cni': 'flannel', 'kubeports_manage_ssh': False,
                   'kubeports_addons': ['harbor', 'ntp', 'ingress', 'kube-vip', 'kuboard', 'grafana', 'redis']}


@pytest.mark.parametrize('host, profile, expected', [
    # No bootstrap host in this inventory: the registry is open to the cluster only.
    ('reg', {}, {'38088/tcp': 'cluster', '443/tcp': 'cluster', '123/udp': 'cluster'}),
    ('n1', {}, {'80/tcp': ANY, '443/tcp': ANY, '18443/tcp': 'self', '10254/tcp': 'self', '10248/tcp': 'self',
                '10250/tcp': 'controlplane+self', '30000-32767/tcp': ANY, '10256/tcp': 'self',
                '8472/udp': 'cluster', '32766/tcp': ANY, '32765/tcp': ANY, '32379/tcp': 'cluster'}),
    ('n1', {'kubeports_flannel_backend': 'udp'},
     {'80/tcp': ANY, '443/tcp': ANY, '18443/tcp': 'self', '10254/tcp': 'self', '10248/tcp': 'self',
      '10250/tcp': 'controlplane+self', '30000-32767/tcp': ANY, '10256/tcp': 'self',
      '8285/udp': 'cluster', '32766/tcp': ANY, '32765/tcp': ANY, '32379/tcp': 'cluster'}),
])
def test_offline_installer(plan, host, profile, expected):
    assert table(plan(OFFLINE, OFFLINE_ADDRESSES, dict(OFFLINE_PROFILE, **profile), host)) == expected


def test_offline_installer_cilium_ports(plan):
    ports = table(plan(OFFLINE, OFFLINE_ADDRESSES, dict(OFFLINE_PROFILE, kubeports_cni='cilium'), 'n1'))
    for port in ('9234', '9891', '43215', '6060', '9879', '9890'):
        assert ports[port + '/tcp'] == 'self'
    for port in ('9963', '4240', '9962', '9965', '4244'):
        assert ports[port + '/tcp'] == 'cluster'


RKE = {'rancher': ['r1', 'r2'], 'etcd': ['e1'], 'controlplane': ['c1'], 'worker': ['w1']}
RKE_ADDRESSES = {'r1': '203.0.113.11', 'r2': '203.0.113.12', 'e1': '192.0.2.51', 'c1': '192.0.2.61',
                 'w1': '192.0.2.71'}
RKE_PROFILE = {'kubeports_distribution': 'rke', 'kubeports_manage_ssh': False}
# rancher-port-requirements: "Rancher 使用自定义节点启动 Kubernetes 集群的端口", read by destination.
RKE_CUSTOM = {
    'e1': {'2379/tcp': 'controlplane+etcd', '2380/tcp': 'controlplane+etcd', '8472/udp': 'cluster',
           '9099/tcp': 'self', '10250/tcp': 'controlplane', '10256/tcp': 'self'},
    'c1': {'6443/tcp': 'cluster', '8472/udp': 'cluster', '9099/tcp': 'self', '10250/tcp': 'controlplane',
           '10254/tcp': 'self', '10256/tcp': 'self'},
    'w1': {'8472/udp': 'cluster', '9099/tcp': 'self', '10250/tcp': 'controlplane', '10254/tcp': 'self',
           '30000-32767/tcp': ANY, '30000-32767/udp': ANY, '80/tcp': ANY, '443/tcp': ANY, '10256/tcp': 'self',
           '18443/tcp': 'self'},
}


@pytest.mark.parametrize('host', sorted(RKE_CUSTOM))
def test_rancher_custom_nodes(plan, host):
    profile = dict(RKE_PROFILE, kubeports_rancher_cluster_type='custom')
    assert table(plan(RKE, RKE_ADDRESSES, profile, host)) == RKE_CUSTOM[host]


@pytest.mark.parametrize('host', sorted(RKE_CUSTOM))
def test_rancher_node_pools_add_node_driver_ports(plan, host):
    profile = dict(RKE_PROFILE, kubeports_rancher_cluster_type='node_pools')
    expected = dict(RKE_CUSTOM[host], **{'22/tcp': 'rancher', '2376/tcp': 'rancher'})
    assert table(plan(RKE, RKE_ADDRESSES, profile, host)) == expected


def test_rancher_authorized_endpoint_and_windows_overlay(plan):
    profile = dict(RKE_PROFILE, kubeports_rancher_cluster_type='custom', kubeports_windows_overlay=True,
                   kubeports_rancher_authorized_cluster_endpoint=True, kubeports_api_client_cidrs=['198.51.100.0/24'])
    ports = ports_of(plan(RKE, RKE_ADDRESSES, profile, 'c1'))
    assert ports['6443/tcp']['source_set'] == 'api_clients+cluster'
    assert ports['4789/udp']['source_set'] == 'cluster'


@pytest.mark.parametrize('install, expected', [
    # Docker 安装的 Rancher Server 的端口
    ('docker', {'80/tcp': ANY, '443/tcp': ANY}),
    # K3s 上 Rancher Server 节点的端口
    ('k3s', {'80/tcp': ANY, '443/tcp': ANY, '6443/tcp': 'rancher', '8472/udp': 'rancher', '10250/tcp': 'rancher'}),
    # RKE 上 Rancher Server 节点的端口: inbound plus traffic between Rancher nodes
    ('rke', {'22/tcp': ANY, '80/tcp': ANY, '443/tcp': ANY, '6443/tcp': ANY, '2379-2380/tcp': 'rancher',
             '8472/udp': 'rancher', '9099/tcp': 'self', '10250/tcp': 'rancher', '10254/tcp': 'self'}),
])
def test_rancher_server(plan, install, expected):
    profile = dict(RKE_PROFILE, kubeports_rancher_install=install)
    assert table(plan(RKE, RKE_ADDRESSES, profile, 'r1')) == expected


def test_rancher_server_behind_a_load_balancer(plan):
    profile = dict(RKE_PROFILE, kubeports_loadbalancer_cidrs=['203.0.113.100'], kubeports_ui_client_cidrs=[])
    ports = ports_of(plan(RKE, RKE_ADDRESSES, profile, 'r1'))
    assert ports['80/tcp']['sources'] == ['203.0.113.100/32']
    assert ports['443/tcp']['source_set'] == 'cluster+rancher'


def test_rancher_hosted_cluster_webhooks(plan):
    profile = dict(RKE_PROFILE, kubeports_rancher_cluster_type='hosted')
    ports = table(plan(RKE, RKE_ADDRESSES, profile, 'w1'))
    assert ports['8443/tcp'] == 'rancher' and ports['9443/tcp'] == 'rancher'


def test_rancher_commonly_used_ports(plan):
    profile = dict(RKE_PROFILE, kubeports_rancher_port_profile='common')
    ports = table(plan(RKE, RKE_ADDRESSES, profile, 'w1'))
    for key in ('22/tcp', '179/tcp', '2376/tcp', '8472/udp', '4789/udp', '8443/tcp', '9099/tcp', '9100/tcp',
                '9443/tcp', '9796/tcp', '6783/tcp', '6783-6784/udp', '10250/tcp', '10254/tcp',
                '30000-32767/tcp', '30000-32767/udp'):
        assert key in ports, key
    assert ports['8472/udp'] == 'cluster' and ports['9099/tcp'] == 'self'


K3S = {'server': ['s1', 's2'], 'agent': ['a1']}
K3S_ADDRESSES = {'s1': '192.0.2.81', 's2': '192.0.2.82', 'a1': '192.0.2.91'}
K3S_PROFILE = {'kubeports_distribution': 'k3s', 'kubeports_manage_ssh': False}


@pytest.mark.parametrize('host, profile, expected', [
    ('s1', {}, {'6443/tcp': ANY, '2379-2380/tcp': 'controlplane', '8472/udp': 'cluster', '10250/tcp': 'cluster',
                '30000-32767/tcp': ANY}),
    ('a1', {}, {'8472/udp': 'cluster', '10250/tcp': 'cluster', '30000-32767/tcp': ANY}),
    ('a1', {'kubeports_flannel_backend': 'wireguard', 'kubeports_addons': ['spegel']},
     {'51820/udp': 'cluster', '10250/tcp': 'cluster', '30000-32767/tcp': ANY, '5001/tcp': 'cluster',
      '6443/tcp': 'cluster'}),
    ('s1', {'kubeports_k3s_datastore': 'sqlite', 'kubeports_api_client_cidrs': ['198.51.100.0/24']},
     {'6443/tcp': 'api_clients+cluster', '8472/udp': 'cluster', '10250/tcp': 'cluster',
      '30000-32767/tcp': ANY}),
])
def test_k3s(plan, host, profile, expected):
    assert table(plan(K3S, K3S_ADDRESSES, dict(K3S_PROFILE, **profile), host)) == expected


@pytest.mark.parametrize('host, expected', [
    ('s1', {'9345/tcp': 'cluster', '6443/tcp': ANY, '2379/tcp': 'controlplane', '2380/tcp': 'controlplane',
            '2381/tcp': 'controlplane', '10250/tcp': 'cluster', '30000-32767/tcp': ANY, '8472/udp': 'cluster',
            '9099/tcp': 'self'}),
    ('a1', {'10250/tcp': 'cluster', '30000-32767/tcp': ANY, '8472/udp': 'cluster', '9099/tcp': 'self',
            '80/tcp': ANY, '443/tcp': ANY, '18443/tcp': 'self', '10254/tcp': 'self'}),
])
def test_rke2(plan, host, expected):
    groups = {'rke2_servers': ['s1'], 'rke2_agents': ['a1']}
    profile = {'kubeports_distribution': 'rke2', 'kubeports_manage_ssh': False}
    # https://docs.rke2.io/install/requirements#inbound-network-rules with Canal and the
    # bundled ingress controller (on workers).
    assert table(plan(groups, {'s1': '192.0.2.1', 'a1': '192.0.2.2'}, profile, host)) == expected
