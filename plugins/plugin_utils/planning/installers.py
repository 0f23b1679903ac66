# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Installers' own inventories: which installer a host belongs to, and its variables
translated into profile values, each with the variable (or default) it came from.

Pure functions over plain data. ``read_values(installer, host, context)`` returns
{profile key or CIDR set variable: (value, origin)}; the profile resolution (profile.py)
puts explicit kubeports_* variables before these.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import shlex

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.profile import VARIABLE_PREFIX, Refused, as_bool, as_list, given

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    HAS_YAML = False


class Installer(object):
    """One installer: the groups that mark its inventory, and the variables it reads.

    ``markers``: groups whose presence (with hosts) says the inventory is this installer's.
    ``members``: groups whose hosts belong to the installer's cluster once it is recognised.
    ``formed``: groups the installer forms at run time ({group: source groups}).
    ``server_groups``: groups whose hosts carry the server-side configuration that agents
    inherit (K3s and RKE2 read CNI and networks on servers only).
    ``variables``: (variable, what it changes[, default assumed]) rows, for the docs; a
    missing default is taken from ``defaults``.
    """

    def __init__(self, name, distribution, markers, members, variables, reader, formed=None,
                 server_groups=(), defaults=None):
        self.name, self.distribution = name, distribution
        self.markers, self.members = tuple(markers), tuple(members)
        self.variables, self.reader = tuple(variables), reader
        self.formed = dict(formed or {})
        self.server_groups = tuple(server_groups)
        self.defaults = dict(defaults or {})

    def documented(self):
        """(variable, what it changes, default assumed) of every variable read."""
        rows = []
        for row in self.variables:
            default = row[2] if len(row) > 2 else self.defaults[row[0]]
            if isinstance(default, bool):
                default = 'true' if default else 'false'
            rows.append((row[0], row[1], str(default)))
        return rows


class Context(object):
    """What an installer's reader may look at for one host."""

    def __init__(self, host, variables, groups, server=None, server_variables=None):
        self.host, self.groups = host, groups
        self._variables = variables
        self.server = server
        self._server_variables = server_variables

    def get(self, name):
        return _value(self._variables, name, self.host)

    def get_server(self, name):
        """A server-side setting: the host's own on a server, else the first server's."""
        if self._server_variables is None:
            return self.get(name)
        return _value(self._server_variables, name, self.server)

    def server_origin(self, name):
        if self._server_variables is None:
            return name
        return '%s of %s' % (name, self.server)


def _value(variables, name, host):
    """A host variable, or None when unset; templating errors name the variable."""
    try:
        if name not in variables:
            return None
        return variables[name]
    except Exception as exc:  # templating errors of any kind (undefined variables, filters)
        raise PlanError('%s (host %s): cannot be evaluated outside the installer: %s; set it to a plain '
                        'value or set the matching kubeports_* variable' % (name, host, exc))


def _where(name, context):
    return '%s (host %s)' % (name, context.host)


def _spelled(value, accepted, name, context, checked_by):
    """The meaning of ``value`` when the installer accepts it, else PlanError.

    ``accepted``: (spelling, meaning) pairs, each spelling exactly as the installer compares it
    (case and all); ``checked_by`` names the installer and the file that refuses anything
    else. The message names the variable, the host, the value and the accepted spellings.
    """
    text = '%s' % (value,)
    for spelling, meaning in accepted:
        if text == spelling:
            return meaning
    near = [spelling for spelling, _meaning in accepted if spelling.lower() == text.strip().lower()]
    raise PlanError('%s: unknown value %r (choose from %s: %s refuses any other spelling)%s'
                    % (_where(name, context), value, ', '.join(spelling for spelling, _meaning in accepted), checked_by,
                       '; did you mean %r?' % near[0] if near else ''))


def _split_items(value):
    """The items of a list, or of a comma-separated string (or both), stripped; empty ones dropped."""
    items = []
    for item in as_list(value):
        items.extend(part.strip() for part in str(item).split(',') if part.strip())
    return items


# ---------------------------------------------------------------------------------------------
# kubespray and Kubean (https://github.com/kubernetes-sigs/kubespray, roles/kubespray_defaults
# and roles/network_plugin/*/defaults; Kubean runs kubespray with the same variables).

KUBESPRAY_CHECKS = 'kubespray (roles/validate_inventory/tasks/main.yml)'
CALICO_CHECKS = 'kubespray (roles/network_plugin/calico/tasks/check.yml)'
CILIUM_CHECKS = 'kubespray (roles/network_plugin/cilium/tasks/check.yml)'
# kubespray's validate_inventory list, plus what older releases deployed: weave (up to 2.28)
# and canal (up to 2.21). None: no CNI of kubespray's own, refused when used.
KUBESPRAY_CNI = (('calico', ['calico']), ('flannel', ['flannel']), ('cloud', ['cloud']), ('cilium', ['cilium']),
                 ('cni', None), ('kube-ovn', ['kube-ovn']), ('kube-router', ['kube-router']),
                 ('macvlan', ['macvlan']), ('custom_cni', None), ('none', None), ('weave', ['weave']),
                 ('canal', ['canal']))
CALICO_BACKENDS = (('bird', 'bird'), ('vxlan', 'vxlan'), ('none', 'none'))
CALICO_MODES = (('Always', True), ('CrossSubnet', True), ('Never', False))
# calico_datastore has no assert: install.yml templates calicoctl.<datastore>.sh.j2, which
# exists for these two only.
CALICO_DATASTORES = (('kdd', False), ('etcd', True))
CALICO_DATASTORE_CHECKS = 'kubespray (roles/network_plugin/calico/tasks/install.yml: calicoctl.<calico_datastore>.sh.j2)'
# kubespray passes cilium_tunnel_mode to Cilium, which takes vxlan and geneve exactly
# (cilium pkg/datapath/tunnel/tunnel.go); kubespray up to 2.27 turned disabled into native routing.
CILIUM_TUNNELS = (('vxlan', 'vxlan'), ('geneve', 'geneve'), ('disabled', 'disabled'))
CILIUM_TUNNEL_CHECKS = 'Cilium (pkg/datapath/tunnel/tunnel.go, from kubespray\'s cilium_tunnel_mode)'
CILIUM_IDENTITIES = (('crd', False), ('kvstore', True))
CILIUM_ENCRYPTIONS = (('ipsec', 'ipsec'), ('wireguard', 'wireguard'))
KUBE_PROXY_MODES = (('iptables', 'iptables'), ('ipvs', 'ipvs'), ('nftables', 'nftables'))
# OVN compares ovn-encap-type exactly (ovn controller/ovn-controller.c get_tunnel_type).
KUBE_OVN_TUNNELS = (('geneve', 'geneve'), ('vxlan', 'vxlan'), ('stt', 'stt'))
KUBE_OVN_TUNNEL_CHECKS = 'OVN (controller/ovn-controller.c, from kube_ovn_tunnel_type)'
# Flannel lowercases its backend type (flannel pkg/backend/manager.go GetBackend); the
# catalog has rules for these; flannel's other backends are refused as unplanned.
FLANNEL_PLANNED = {'vxlan': 'vxlan', 'host-gw': 'host-gw', 'udp': 'udp', 'wireguard': 'wireguard'}
FLANNEL_UNPLANNED = ('alloc', 'extension', 'ipip', 'ipsec', 'tencent-vpc')
# The kernel's VXLAN port, which flannel uses when its config has no Port
# (flannel Documentation/backends.md, vxlan Port).
KERNEL_VXLAN_PORT = 8472
# kube-vip serves metrics on --prometheusHTTPServer, default ":2112" (kube-vip cmd/kube-vip.go),
# unless the prometheus_server environment variable says otherwise.
KUBE_VIP_METRICS_PORT = 2112
KUBE_VIP_DEFAULT = ("kube-vip's own default :2112; kubespray's manifest sets prometheus_server only with "
                    "kube_vip_metrics_enabled")
KUBESPRAY_DEFAULTS = {
    'kube_network_plugin': 'calico',
    'kube_network_plugin_multus': False,
    'calico_network_backend': 'vxlan',
    'calico_ipip_mode': 'Never',
    'calico_vxlan_mode': 'Always',
    'calico_vxlan_port': 4789,
    'typha_enabled': False,
    'calico_wireguard_enabled': False,
    'calico_datastore': 'kdd',
    'peer_with_router': False,
    'cilium_tunnel_mode': 'vxlan',
    'cilium_enable_hubble': False,
    'cilium_encryption_enabled': False,
    'cilium_encryption_type': 'ipsec',
    'cilium_enable_prometheus': False,
    'cilium_identity_allocation_mode': 'crd',
    'cilium_kube_proxy_replacement': False,
    'flannel_backend_type': 'vxlan',
    'flannel_vxlan_port': 8472,
    'kube_apiserver_port': 6443,
    'kube_apiserver_node_port_range': '30000-32767',
    'kube_pods_subnet': '10.233.64.0/18',
    'kube_service_addresses': '10.233.0.0/18',
    'kube_pods_subnet_ipv6': 'fd85:ee78:d8a6:8607::1:0000/112',
    'kube_service_addresses_ipv6': 'fd85:ee78:d8a6:8607::1000/116',
    'ipv4_stack': True,
    'ipv6_stack': False,
    'kube_proxy_mode': 'ipvs',
    'kube_proxy_remove': False,
    'enable_nodelocaldns': True,
    'metallb_enabled': False,
    'metallb_speaker_enabled': None,  # follows metallb_enabled
    'kube_vip_enabled': False,
    'kube_vip_bgp_enabled': False,
    'kube_vip_metrics_enabled': False,
    'kube_vip_metrics_port': 2112,
    'calico_felix_prometheusmetricsenabled': False,
    'calico_bpf_enabled': False,
    'kube_router_run_service_proxy': False,
    'kube_router_enable_metrics': False,
    'kube_router_metrics_port': 9255,
    'kube_ovn_network_type': 'geneve',
    'kube_ovn_tunnel_type': 'geneve',
    'ingress_nginx_enabled': False,
    'ingress_nginx_host_network': False,
    'metrics_server_enabled': False,
    'kube_version': '1.35',
}
# What a cluster declared DCE 5 (kubeports_dce5_cluster) takes where the kubespray variable
# is unset: DCE 5's port page opens Hubble, Cilium's metrics and kube-vip's metrics
# (https://docs.daocloud.io/install/commercial/port-requirements.html#cilium, #kubevip).
DCE5_DEFAULTS = {'cilium_enable_hubble': True, 'cilium_enable_prometheus': True, 'kube_vip_metrics_port': 2112}
DCE5_CLUSTERS = ('global', 'worker')
# (profile key, IPv4 variable, IPv6 variable) of the pod and service networks.
KUBESPRAY_NETWORKS = (('pod_cidrs', 'kube_pods_subnet', 'kube_pods_subnet_ipv6'),
                      ('service_cidrs', 'kube_service_addresses', 'kube_service_addresses_ipv6'))
# (variable, add-on it enables), in the order of the plan's addons.
KUBESPRAY_ADDONS = (('enable_nodelocaldns', 'nodelocaldns'), ('metallb_enabled', 'metallb'),
                    ('kube_vip_enabled', 'kube-vip'), ('ingress_nginx_enabled', 'ingress'),
                    ('metrics_server_enabled', 'metrics-server'))

KUBESPRAY_VARIABLES = (
    ('kube_network_plugin',
     'cni, spelled exactly (calico, flannel, cloud, cilium, kube-ovn, kube-router, macvlan; weave up to kubespray '
     '2.28, canal up to 2.21; cni, custom_cni and none are refused: set kubeports_cni to the CNI you deploy)'),
    ('kube_network_plugin_multus', 'multus (no ports of its own)'),
    ('calico_network_backend', 'calico_backend (bird, vxlan, none): bird opens BGP 179'),
    ('calico_ipip_mode', 'calico_encapsulation: ipip when Always or CrossSubnet (IP protocol 4)'),
    ('calico_vxlan_mode', 'calico_encapsulation: vxlan when Always or CrossSubnet'),
    ('calico_vxlan_port', 'calico_vxlan_port'),
    ('typha_enabled', 'calico_typha (5473/tcp)'),
    ('calico_wireguard_enabled', 'wireguard (51820/udp, 51821/udp on IPv6)'),
    ('calico_datastore', 'cni_uses_etcd when etcd (kdd or etcd): every node reaches etcd 2379'),
    ('peer_with_calico_rr',
     'calico_bgp_peering: route_reflectors (BGP between nodes and the calico_rr hosts '
     'only)', 'true when calico_rr has hosts'),
    ('peer_with_router', "bgp_peer_cidrs from each host's peers[].router_id (BGP 179 from the routers)"),
    ('cilium_tunnel_mode', 'cilium_tunnel (vxlan 8472/udp, geneve 6081/udp, disabled)'),
    ('cilium_enable_hubble', 'cilium_hubble (4244, 4245, 9965)', 'false; true on a DCE 5 cluster'),
    ('cilium_encryption_enabled', 'with cilium_encryption_type: ipsec (ESP) or wireguard (51871/udp)'),
    ('cilium_encryption_type', 'ipsec or wireguard'),
    ('cilium_enable_prometheus', 'cilium_metrics (9962-9964)', 'false; true on a DCE 5 cluster'),
    ('cilium_identity_allocation_mode', 'cni_uses_etcd when kvstore (crd or kvstore): every node reaches etcd 2379'),
    ('cilium_kube_proxy_replacement', 'kube_proxy: none when true (no kube-proxy health port)'),
    ('flannel_backend_type', 'flannel_backend (vxlan, host-gw, udp, wireguard, in any case as flannel reads it)'),
    ('flannel_vxlan_port', 'flannel_vxlan_port, when flannel_backend_type is exactly vxlan (else the kernel '
     'default 8472)'),
    ('kube_apiserver_port', 'api_port'),
    ('kube_apiserver_node_port_range', 'nodeport_range'),
    ('loadbalancer_apiserver', 'its address is api_loadbalancer_cidrs (allowed to the API server)', 'none'),
    ('kube_pods_subnet', 'pod_cidrs (trusted by source where pods are routed over the node network)'),
    ('kube_service_addresses', 'service_cidrs (trusted by source where pods are routed over the node network)'),
    ('kube_pods_subnet_ipv6', 'pod_cidrs, with ipv6_stack or enable_dual_stack_networks'),
    ('kube_service_addresses_ipv6', 'service_cidrs, with ipv6_stack or enable_dual_stack_networks'),
    ('ipv4_stack', 'the IPv4 pod and service networks are used'),
    ('ipv6_stack', 'the IPv6 pod and service networks are used (also enable_dual_stack_networks)'),
    ('kube_proxy_mode', 'kube_proxy (iptables, ipvs, nftables)'),
    ('kube_proxy_remove', 'kube_proxy: none when true'),
    ('enable_nodelocaldns',
     'nodelocaldns add-on: pods reach the node-local DNS address (53) through the '
     "host's input chain"),
    ('metallb_enabled', 'metallb add-on'),
    ('metallb_speaker_enabled', 'metallb_speaker (memberlist 7946)', 'metallb_enabled'),
    ('kube_vip_enabled', 'kube-vip add-on'),
    ('kube_vip_bgp_enabled', 'kube_vip_bgp (BGP 179 from the BGP peers)'),
    ('kube_vip_metrics_enabled', 'kube-vip serves metrics on kube_vip_metrics_port when true, on its own 2112 '
     'otherwise (kube_vip_metrics is on either way)'),
    ('kube_vip_metrics_port', 'kube_vip_metrics_port, with kube_vip_metrics_enabled'),
    ('calico_felix_prometheusmetricsenabled', 'calico_felix_metrics (9091 from the cluster)'),
    ('calico_bpf_enabled', 'kube_proxy: none when true (Calico eBPF replaces kube-proxy)'),
    ('kube_router_run_service_proxy', 'kube_proxy: none when true'),
    ('kube_router_enable_metrics', 'kube_router_metrics'),
    ('kube_router_metrics_port', 'kube_router_metrics_port'),
    ('kube_router_peer_router_ips', 'bgp_peer_cidrs (BGP 179 from the routers)', 'none'),
    ('kube_ovn_network_type', 'kube_ovn_tunnel: none when exactly vlan'),
    ('kube_ovn_tunnel_type', 'kube_ovn_tunnel (geneve 6081/udp, vxlan 4789/udp, stt 7471/tcp)'),
    ('ingress_nginx_enabled', 'ingress add-on (80, 443 on workers)'),
    ('ingress_nginx_host_network',
     'nothing: 80 and 443 are opened on workers with host ports and with the host '
     'network alike'),
    ('metrics_server_enabled', 'metrics-server add-on: every node reaches the kubelet 10250'),
    ('kube_version', 'kubernetes_version'),
)


class _KubesprayVariables(object):
    """One host's kubespray variables as (value, origin): the host's own value, else DCE 5's
    default on a declared DCE 5 cluster, else kubespray's."""

    def __init__(self, context):
        self.context = context
        self.dce5 = str(context.get(VARIABLE_PREFIX + 'dce5_cluster') or '').strip().lower() in DCE5_CLUSTERS

    def pick(self, name):
        value = self.context.get(name)
        if given(value):
            return value, name
        if self.dce5 and name in DCE5_DEFAULTS:
            return DCE5_DEFAULTS[name], 'DCE 5 default of %s' % name
        return KUBESPRAY_DEFAULTS.get(name), 'kubespray default of %s' % name

    def flag(self, name):
        value, origin = self.pick(name)
        return as_bool(value, _where(name, self.context)), origin

    def spelled(self, name, accepted, checked_by):
        value, origin = self.pick(name)
        return _spelled(value, accepted, name, self.context, checked_by), origin


# How a (profile key, variable, reading) row of the kubespray tables reads its variable: AS_SET
# takes the value as set, FLAG as a boolean, NONE_IF_TRUE sets the key to none only when the
# variable is true; an (accepted spellings, checked by) pair takes the meaning of the spelling.
AS_SET, FLAG, NONE_IF_TRUE = 'as set', 'flag', 'none if true'


def _read_row(variables, key, name, reading):
    if reading == AS_SET:
        return {key: variables.pick(name)}
    if reading == FLAG:
        return {key: variables.flag(name)}
    if reading == NONE_IF_TRUE:
        on, origin = variables.flag(name)
        return {key: ('none', origin)} if on else {}
    accepted, checked_by = reading
    return {key: variables.spelled(name, accepted, checked_by)}


def _read_into(values, readings, variables):
    """Adds what each reading gives to ``values``, in order. A reading is a table row, or a function
    of (variables, the values read so far) where the logic is a setting's own."""
    for reading in readings:
        values.update(reading(variables, values) if callable(reading) else _read_row(variables, *reading))
    return values


def _kubespray_cni(variables):
    plugin, origin = variables.pick('kube_network_plugin')
    cni = _spelled(plugin, KUBESPRAY_CNI, 'kube_network_plugin', variables.context, KUBESPRAY_CHECKS)
    if cni is None:
        cni = Refused('%s=%s (host %s): kubespray deploys no CNI of its own, so its ports are unknown; set '
                      'kubeports_cni to the CNI you deploy, or kubeports_cni: none and open its ports with '
                      'kubeports_extra_rules' % (origin, plugin, variables.context.host))
    return cni, origin


def _kubespray_calico_encapsulation(variables, values):
    ipip, ipip_origin = variables.spelled('calico_ipip_mode', CALICO_MODES, CALICO_CHECKS)
    vxlan, vxlan_origin = variables.spelled('calico_vxlan_mode', CALICO_MODES, CALICO_CHECKS)
    if ipip and vxlan:
        raise PlanError('calico_ipip_mode and calico_vxlan_mode (host %s): both are on; kubespray allows one '
                        'encapsulation (set the other to Never)' % variables.context.host)
    if ipip:
        read = {'calico_encapsulation': ('ipip', ipip_origin)}
    elif vxlan:
        read = {'calico_encapsulation': ('vxlan', vxlan_origin)}
    else:
        read = {'calico_encapsulation': ('none', '%s and %s' % (ipip_origin, vxlan_origin))}
    for name in ('calico_ipip_mode', 'calico_vxlan_mode'):
        mode, origin = variables.pick(name)
        if str(mode) == 'CrossSubnet':
            # Within a subnet Calico routes pods without encapsulation: pod addresses arrive
            # on the node network, so they are trusted by source.
            read['pod_interfaces'] = ([], '%s CrossSubnet: pods routed over the node network within a subnet'
                                      % origin)
    return read


def _kubespray_calico_bgp_peering(variables, values):
    rr, rr_origin = variables.pick('peer_with_calico_rr')
    if rr is None:
        rr = bool(variables.context.groups.get('calico_rr'))
        rr_origin = 'kubespray default of peer_with_calico_rr; calico_rr has %s' % ('hosts' if rr else 'no hosts')
    rr = as_bool(rr, _where('peer_with_calico_rr', variables.context))
    return {'calico_bgp_peering': ('route_reflectors' if rr else 'mesh', rr_origin)}


def _kubespray_calico_router_peers(variables, values):
    if not variables.flag('peer_with_router')[0]:
        return {}
    peers = []
    for index, peer in enumerate(as_list(variables.context.get('peers'))):
        if not isinstance(peer, dict) or not peer.get('router_id'):
            raise PlanError('peers[%d] (host %s): expected a mapping with router_id, got %r'
                            % (index, variables.context.host, peer))
        peers.append(str(peer['router_id']))
    return {'bgp_peer_cidrs': (peers, 'peers[].router_id')}


def _kubespray_cilium_encryption(variables, values):
    encrypted, encrypted_origin = variables.flag('cilium_encryption_enabled')
    kind, kind_origin = variables.pick('cilium_encryption_type')
    if encrypted:  # kubespray checks the type only when encryption is on
        kind = _spelled(kind, CILIUM_ENCRYPTIONS, 'cilium_encryption_type', variables.context, CILIUM_CHECKS)
    # The type decides only when encryption is on.
    origin = '%s, %s' % (encrypted_origin, kind_origin) if encrypted else encrypted_origin
    return {'wireguard': (encrypted and kind == 'wireguard', origin), 'ipsec': (encrypted and kind == 'ipsec', origin)}


def _kubespray_cilium_kube_proxy_replacement(variables, values):
    replacement, origin = variables.pick('cilium_kube_proxy_replacement')
    if str(replacement).strip().lower() in ('true', 'yes', 'strict', '1'):
        return {'kube_proxy': ('none', origin)}
    return {}


def _kubespray_flannel_backend(variables, values):
    backend, origin = variables.pick('flannel_backend_type')
    kind = str(backend).lower()
    if kind in FLANNEL_PLANNED:
        return {'flannel_backend': (FLANNEL_PLANNED[kind], origin)}
    if kind in FLANNEL_UNPLANNED:
        return {'flannel_backend': (Refused(
            '%s=%s (host %s): flannel runs this backend, but the catalog has no rules for it; set '
            'kubeports_flannel_backend: none and open its ports with kubeports_extra_rules'
            % (origin, backend, variables.context.host)), origin)}
    raise PlanError('%s: unknown value %r (choose from %s, in any case: flannel (pkg/backend/manager.go) '
                    'refuses any other backend type)'
                    % (_where('flannel_backend_type', variables.context), backend,
                       ', '.join(sorted(list(FLANNEL_PLANNED) + list(FLANNEL_UNPLANNED)))))


def _kubespray_flannel_vxlan_port(variables, values):
    if variables.pick('flannel_backend_type')[0] == 'vxlan':
        return {'flannel_vxlan_port': variables.pick('flannel_vxlan_port')}
    # roles/network_plugin/flannel/templates/cni-flannel.yml.j2 writes Port only then.
    return {'flannel_vxlan_port': (KERNEL_VXLAN_PORT, 'kernel default; kubespray writes flannel_vxlan_port '
                                   'only when flannel_backend_type is exactly vxlan')}


def _kubespray_kube_router_peers(variables, values):
    router_ips = _split_items(variables.context.get('kube_router_peer_router_ips'))
    return {'bgp_peer_cidrs': (router_ips, 'kube_router_peer_router_ips')} if router_ips else {}


def _kubespray_kube_ovn_tunnel(variables, values):
    network, network_origin = variables.pick('kube_ovn_network_type')
    tunnel = variables.spelled('kube_ovn_tunnel_type', KUBE_OVN_TUNNELS, KUBE_OVN_TUNNEL_CHECKS)
    # Kube-OVN runs an underlay only when --network-type is exactly vlan.
    return {'kube_ovn_tunnel': ('none', network_origin) if network == 'vlan' else tunnel}


def _kubespray_api_load_balancer(variables, values):
    balancer = variables.context.get('loadbalancer_apiserver')
    if not balancer:
        return {}
    if not isinstance(balancer, dict) or not balancer.get('address'):
        raise PlanError('loadbalancer_apiserver (host %s): expected a mapping with address, got %r'
                        % (variables.context.host, balancer))
    return {'api_loadbalancer_cidrs': ([str(balancer['address'])], 'loadbalancer_apiserver.address')}


def _kubespray_pod_and_service_networks(variables, values):
    ipv4, ipv4_origin = variables.flag('ipv4_stack')
    ipv6, ipv6_origin = variables.flag('ipv6_stack')
    dual = variables.context.get('enable_dual_stack_networks')
    if dual is not None and as_bool(dual, _where('enable_dual_stack_networks', variables.context)):
        ipv6, ipv6_origin = True, 'enable_dual_stack_networks'
    read = {}
    for key, four, six in KUBESPRAY_NETWORKS:
        cidrs, origins = [], []
        for enabled, name in ((ipv4, four), (ipv6, six)):
            if enabled:
                value, origin = variables.pick(name)
                cidrs.extend(_split_items(value))
                origins.append(origin)
        read[key] = (cidrs, ', '.join(origins) or '%s and %s' % (ipv4_origin, ipv6_origin))
    return read


def _kubespray_kube_proxy(variables, values):
    mode = variables.spelled('kube_proxy_mode', KUBE_PROXY_MODES, KUBESPRAY_CHECKS)
    removed, removed_origin = variables.flag('kube_proxy_remove')
    if removed:
        return {'kube_proxy': ('none', removed_origin)}
    return {} if 'kube_proxy' in values else {'kube_proxy': mode}


def _kubespray_addons(variables, values):
    """The add-ons switched on, each with the variable (or kubespray's default) that switched it on."""
    addons, origins, set_off, default_off = [], [], [], []
    for name, addon in KUBESPRAY_ADDONS:
        enabled, origin = variables.flag(name)
        if enabled:
            addons.append(addon)
            origins.append('%s: %s' % (addon, origin))
        else:
            (set_off if origin == name else default_off).append(name)
    if addons:
        return {'addons': (addons, '; '.join(origins))}
    off = ['%s false' % ', '.join(set_off)] if set_off else []
    off += ['kubespray defaults of %s' % ', '.join(default_off)] if default_off else []
    return {'addons': (addons, 'no add-on on: %s' % '; '.join(off))}


def _kubespray_metallb_speaker(variables, values):
    if 'metallb' not in values['addons'][0]:
        return {}
    speaker = variables.context.get('metallb_speaker_enabled')
    if speaker is None or speaker == '':
        return {'metallb_speaker': (True, 'kubespray default of metallb_speaker_enabled: follows metallb_enabled')}
    return {'metallb_speaker': (as_bool(speaker, _where('metallb_speaker_enabled', variables.context)),
                                'metallb_speaker_enabled')}


def _kubespray_kube_vip_metrics(variables, values):
    """kube-vip's metrics: kubespray's manifest (roles/kubernetes/node/templates/manifests/
    kube-vip.manifest.j2) sets prometheus_server to :kube_vip_metrics_port only with
    kube_vip_metrics_enabled; without it kube-vip serves on its own default."""
    enabled = variables.context.get('kube_vip_metrics_enabled')
    if given(enabled) and as_bool(enabled, _where('kube_vip_metrics_enabled', variables.context)):
        return {'kube_vip_metrics': (True, 'kube_vip_metrics_enabled'),
                'kube_vip_metrics_port': variables.pick('kube_vip_metrics_port')}
    origin = 'DCE 5 default of kube-vip metrics' if variables.dce5 else KUBE_VIP_DEFAULT
    return {'kube_vip_metrics': (True, origin), 'kube_vip_metrics_port': (KUBE_VIP_METRICS_PORT, origin)}


# What kubespray reads of each CNI, in order; only the CNI kubespray runs is read (and checked).
KUBESPRAY_CNI_READINGS = {
    'calico': (('calico_backend', 'calico_network_backend', (CALICO_BACKENDS, CALICO_CHECKS)),
               _kubespray_calico_encapsulation,
               ('calico_vxlan_port', 'calico_vxlan_port', AS_SET),
               ('calico_typha', 'typha_enabled', FLAG),
               ('wireguard', 'calico_wireguard_enabled', FLAG),
               ('cni_uses_etcd', 'calico_datastore', (CALICO_DATASTORES, CALICO_DATASTORE_CHECKS)),
               ('calico_felix_metrics', 'calico_felix_prometheusmetricsenabled', FLAG),
               _kubespray_calico_bgp_peering,
               _kubespray_calico_router_peers,
               ('kube_proxy', 'calico_bpf_enabled', NONE_IF_TRUE)),
    'cilium': (('cilium_tunnel', 'cilium_tunnel_mode', (CILIUM_TUNNELS, CILIUM_TUNNEL_CHECKS)),
               ('cilium_hubble', 'cilium_enable_hubble', FLAG),
               ('cilium_metrics', 'cilium_enable_prometheus', FLAG),
               _kubespray_cilium_encryption,
               ('cni_uses_etcd', 'cilium_identity_allocation_mode', (CILIUM_IDENTITIES, CILIUM_CHECKS)),
               _kubespray_cilium_kube_proxy_replacement),
    'flannel': (_kubespray_flannel_backend, _kubespray_flannel_vxlan_port),
    'kube-router': (('kube_router_metrics', 'kube_router_enable_metrics', FLAG),
                    ('kube_router_metrics_port', 'kube_router_metrics_port', AS_SET),
                    _kubespray_kube_router_peers,
                    ('kube_proxy', 'kube_router_run_service_proxy', NONE_IF_TRUE)),
    'kube-ovn': (_kubespray_kube_ovn_tunnel,),
}
# What kubespray reads whatever the CNI, in order, after the CNI's own.
KUBESPRAY_READINGS = (('api_port', 'kube_apiserver_port', AS_SET),
                      ('nodeport_range', 'kube_apiserver_node_port_range', AS_SET),
                      _kubespray_api_load_balancer,
                      _kubespray_pod_and_service_networks,
                      _kubespray_kube_proxy,
                      _kubespray_addons,
                      _kubespray_metallb_speaker,
                      ('kube_vip_bgp', 'kube_vip_bgp_enabled', FLAG),
                      _kubespray_kube_vip_metrics,
                      ('kubernetes_version', 'kube_version', AS_SET))


def _kubespray(context):
    variables = _KubesprayVariables(context)
    values = {'cni': _kubespray_cni(variables), 'multus': variables.flag('kube_network_plugin_multus')}
    cni = values['cni'][0]
    for name in cni if isinstance(cni, list) else ():
        _read_into(values, KUBESPRAY_CNI_READINGS.get(name, ()), variables)
    return _read_into(values, KUBESPRAY_READINGS, variables)


# ---------------------------------------------------------------------------------------------
# k3s-ansible (https://github.com/k3s-io/k3s-ansible): server options come from
# extra_server_args (command-line flags) and server_config_yaml (config.yaml), read on servers.

# K3s compares --flannel-backend exactly (k3s pkg/agent/flannel/setup.go, createFlannelConf);
# wireguard and ipsec are the spellings of K3s before v1.26 and v1.27.
K3S_FLANNEL = (('vxlan', 'vxlan'), ('host-gw', 'host-gw'), ('wireguard-native', 'wireguard'),
               ('tailscale', 'tailscale'), ('none', 'none'), ('wireguard', 'wireguard'), ('ipsec', 'ipsec'))
K3S_FLANNEL_CHECKS = 'K3s (pkg/agent/flannel/setup.go)'
K3S_DEFAULTS = {'https-listen-port': 6443, 'cluster-cidr': '10.42.0.0/16', 'service-cidr': '10.43.0.0/16',
                'flannel-backend': 'vxlan', 'service-node-port-range': '30000-32767'}
K3S_VARIABLES = (
    ('extra_server_args --https-listen-port, server_config_yaml https-listen-port', 'api_port', '6443'),
    ('api_port', "nothing: k3s-ansible builds URLs with it (join URL, kubeconfig, wait_for); the plan prints a "
     'note when it differs from the port K3s listens on', '6443'),
    ('extra_server_args --cluster-cidr, server_config_yaml cluster-cidr', 'pod_cidrs', '10.42.0.0/16'),
    ('extra_server_args --service-cidr, server_config_yaml service-cidr', 'service_cidrs', '10.43.0.0/16'),
    ('extra_server_args --flannel-backend', 'flannel_backend (vxlan, host-gw, wireguard-native, as K3s spells '
     'them; none, ipsec and tailscale are refused: set kubeports_cni or kubeports_flannel_backend)', 'vxlan'),
    ('extra_server_args --embedded-registry', 'spegel add-on (5001, API port between nodes)', 'off'),
    ('extra_server_args --disable-kube-proxy', 'kube_proxy: none', 'off'),
    ('extra_server_args --service-node-port-range', 'nodeport_range', '30000-32767'),
    ('server count, use_external_database, --cluster-init, --datastore-endpoint',
     'k3s_datastore: embedded_etcd with several servers or --cluster-init, external with '
     'use_external_database or --datastore-endpoint, else sqlite', 'by server count'),
    ('k3s_version', 'kubernetes_version', 'default of the collection'),
)


def parse_server_args(text, where):
    """{option: value} from K3s/RKE2 command-line flags ("--a=b", "--a b", "--flag")."""
    try:
        words = shlex.split(str(text or ''))
    except ValueError as exc:
        raise PlanError('%s: cannot be parsed as command-line flags: %s' % (where, exc))
    options, index = {}, 0
    while index < len(words):
        word = words[index]
        index += 1
        if not word.startswith('--'):
            continue
        name, sep, value = word[2:].partition('=')
        if not sep:
            if index < len(words) and not words[index].startswith('--'):
                value = words[index]
                index += 1
            else:
                value = True
        options[name] = value
    return options


def _config_yaml(value, where):
    if value in (None, ''):
        return {}
    if isinstance(value, dict):
        return value
    try:
        data = yaml.safe_load(str(value)) if HAS_YAML else None
    except yaml.YAMLError as exc:
        raise PlanError('%s: is not YAML: %s' % (where, exc))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PlanError('%s: expected a YAML mapping, got %r' % (where, data))
    return data


def _k3s(context):
    values = {}
    arguments = parse_server_args(context.get_server('extra_server_args'),
                                  _where(context.server_origin('extra_server_args'), context))
    config = _config_yaml(context.get_server('server_config_yaml'),
                          _where(context.server_origin('server_config_yaml'), context))

    def option(name):
        if name in arguments:
            return arguments[name], '%s --%s' % (context.server_origin('extra_server_args'), name)
        if name in config:
            return config[name], '%s %s' % (context.server_origin('server_config_yaml'), name)
        return None, None

    # K3s listens on --https-listen-port; k3s-ansible's api_port only builds URLs
    # (roles/k3s_server/tasks/main.yml, roles/k3s_agent/tasks/main.yml).
    port, origin = option('https-listen-port')
    if port is None:
        port, origin = K3S_DEFAULTS['https-listen-port'], 'K3s default of --https-listen-port'
    values['api_port'] = (port, origin)
    notes = []
    url_port = context.get('api_port')
    if given(url_port) and str(url_port).strip() != str(port).strip():
        notes.append("k3s-ansible's api_port (%s) only builds URLs (the join URL, the kubeconfig, wait_for); K3s "
                     'listens on %s (--https-listen-port), which is opened; %s is the port of api_endpoint (a load '
                     'balancer), which the collection does not open' % (url_port, port, url_port))
    for key, name in (('pod_cidrs', 'cluster-cidr'), ('service_cidrs', 'service-cidr')):
        value, origin = option(name)
        if value is None:
            value, origin = K3S_DEFAULTS[name], 'K3s default of --%s' % name
        values[key] = (_split_items(value), origin)
    backend, origin = option('flannel-backend')
    if backend is None:
        backend, origin = K3S_DEFAULTS['flannel-backend'], 'K3s default of --flannel-backend'
    flannel = _spelled(backend, K3S_FLANNEL, origin, context, K3S_FLANNEL_CHECKS)
    if flannel in ('none', 'ipsec'):
        values['cni'] = (Refused('%s=%s (host %s): the collection cannot tell the CNI\'s ports; set kubeports_cni '
                                 'to the CNI you deploy, or open its ports with kubeports_extra_rules'
                                 % (origin, backend, context.host)), origin)
    else:
        values['cni'] = (['flannel'], 'K3s default CNI')
        if flannel == 'tailscale':
            values['flannel_backend'] = (Refused(
                '%s=tailscale (host %s): flannel\'s traffic goes through Tailscale, whose ports the catalog does not '
                'know; set kubeports_flannel_backend: none and open them with kubeports_extra_rules'
                % (origin, context.host)), origin)
        else:
            values['flannel_backend'] = (flannel, origin)
            values['wireguard'] = (flannel == 'wireguard', origin)
        # K3s writes its vxlan backend without a Port (pkg/agent/flannel/setup_linux.go): the kernel's.
        values['flannel_vxlan_port'] = (KERNEL_VXLAN_PORT, 'K3s default: flannel vxlan without a Port takes the '
                                        'kernel default')
    registry, origin = option('embedded-registry')
    values['addons'] = (['spegel'] if registry is not None and as_bool(registry, origin) else [],
                        origin or 'K3s default of --embedded-registry: off')
    no_proxy, origin = option('disable-kube-proxy')
    if no_proxy is not None and as_bool(no_proxy, origin):
        values['kube_proxy'] = ('none', origin)
    ports, origin = option('service-node-port-range')
    if ports is not None:
        values['nodeport_range'] = (ports, origin)
    endpoint, endpoint_origin = option('datastore-endpoint')
    external = context.get_server('use_external_database')
    init, init_origin = option('cluster-init')
    servers = len(context.groups.get('server') or ())
    if endpoint or (external not in (None, '') and as_bool(external, _where('use_external_database', context))):
        values['k3s_datastore'] = ('external', endpoint_origin or 'use_external_database')
    elif servers > 1:
        values['k3s_datastore'] = ('embedded_etcd', 'k3s-ansible: %d hosts in group server, the first started with '
                                   '--cluster-init' % servers)
    elif init is not None and as_bool(init, init_origin):
        values['k3s_datastore'] = ('embedded_etcd', init_origin)
    else:
        values['k3s_datastore'] = ('sqlite', 'k3s-ansible: one host in group server, no --cluster-init')
    version = context.get('k3s_version')
    if version not in (None, ''):
        values['kubernetes_version'] = (version, 'k3s_version')
    manage = context.get('manage_firewall')
    if manage is None or _true(manage):
        notes.append('k3s-ansible\'s manage_firewall is on (its default): it opens ports of its own on ufw and '
                     'firewalld; set manage_firewall: false')
    if notes:
        values['notes'] = (notes, 'k3s-ansible')
    return values


# ---------------------------------------------------------------------------------------------
# RKE2: rke2-ansible (https://github.com/rancherfederal/rke2-ansible) writes config.yaml from
# cluster_rke2_config, group_rke2_config and host_rke2_config; ansible-role-rke2
# (https://github.com/lablabs/ansible-role-rke2) has variables of its own.

# RKE2 takes these exactly, one of them or multus first and one of them
# (rke2 pkg/cli/cmds/server.go validateCNI, pkg/cli/types.go CNIItems).
RKE2_CNI = (('none', None), ('calico', 'calico'), ('canal', 'canal'), ('cilium', 'cilium'), ('flannel', 'flannel'))
RKE2_CNI_CHECKS = 'RKE2 (pkg/cli/cmds/server.go validateCNI)'
# rke2-charts packages/rke2-flannel (values.yaml.patch): flannel's VXLAN on backendPort 4789;
# RKE2's requirements list 4789 for Flannel (https://docs.rke2.io/install/requirements).
RKE2_FLANNEL = {'flannel_backend': 'vxlan', 'flannel_vxlan_port': 4789}
RKE2_DEFAULTS = {'cni': 'canal', 'cluster-cidr': '10.42.0.0/16', 'service-cidr': '10.43.0.0/16', 'disable': [],
                 'disable-kube-proxy': False, 'service-node-port-range': '30000-32767'}
RKE2_CALICO = {'calico_backend': 'vxlan', 'calico_encapsulation': 'vxlan', 'calico_typha': True}
RKE2_ANSIBLE_VARIABLES = (
    ('cluster_rke2_config / group_rke2_config / host_rke2_config: cni', 'cni (calico, canal, cilium, flannel, as '
     'RKE2 spells them, optionally after multus; flannel takes VXLAN 4789; none is refused: set kubeports_cni)',
     'canal'),
    ('... cluster-cidr', 'pod_cidrs', '10.42.0.0/16'),
    ('... service-cidr', 'service_cidrs', '10.43.0.0/16'),
    ('... service-node-port-range', 'nodeport_range', '30000-32767'),
    ('... disable: [rke2-ingress-nginx]', 'no ingress add-on', 'ingress on'),
    ('... disable-kube-proxy', 'kube_proxy: none', 'false'),
    ('rke2_install_version', 'kubernetes_version', 'default of the collection'),
)
ANSIBLE_ROLE_RKE2_VARIABLES = (
    ('rke2_cni', 'cni (as above)', '[canal]'),
    ('rke2_cluster_cidr', 'pod_cidrs', '[10.42.0.0/16]'),
    ('rke2_service_cidr', 'service_cidrs', '[10.43.0.0/16]'),
    ('rke2_disable, rke2_ingress_controller', 'no ingress add-on when rke2-ingress-nginx is disabled or the '
     'controller is none', 'ingress-nginx'),
    ('disable_kube_proxy', 'kube_proxy: none', 'false'),
    ('rke2_ha_mode_kubevip', 'kube-vip add-on, metrics on 2112 (its manifest\'s prometheus_server)', 'false'),
    ('rke2_kubevip_args: prometheus_server', 'kube_vip_metrics_port', ':2112'),
    ('rke2_version', 'kubernetes_version', 'default of the collection'),
)


def _rke2_values(context, entry, version):
    """Profile values of an RKE2 cluster; ``entry(key)`` gives (value, origin) of a config.yaml key."""
    values = {}
    cni, cni_origin = entry('cni')
    multus, name = _rke2_cni_names(cni, cni_origin, context)
    values['multus'] = (multus, cni_origin)
    chosen = _spelled(name, RKE2_CNI, cni_origin, context, RKE2_CNI_CHECKS)
    if chosen is None:
        chosen = Refused('%s=none (host %s): RKE2 deploys no CNI, so its ports are unknown; set kubeports_cni '
                         'to the CNI you deploy, or open its ports with kubeports_extra_rules'
                         % (cni_origin, context.host))
    else:
        chosen = [chosen]
    values['cni'] = (chosen, cni_origin)
    if isinstance(chosen, list) and 'flannel' in chosen:
        for key, value in RKE2_FLANNEL.items():
            values[key] = (value, 'RKE2 default: rke2-flannel chart')
    if isinstance(chosen, list) and 'cilium' in chosen:
        # RKE2's requirements list Cilium's health, VXLAN and WireGuard ports only.
        values['cilium_hubble'] = (False, 'RKE2 default: rke2-cilium chart')
        values['cilium_metrics'] = (False, 'RKE2 default: rke2-cilium chart')
    if isinstance(chosen, list) and 'calico' in chosen:
        for key, value in RKE2_CALICO.items():
            values[key] = (value, 'RKE2 default: rke2-calico chart')
    for key, name in (('pod_cidrs', 'cluster-cidr'), ('service_cidrs', 'service-cidr')):
        value, origin = entry(name)
        values[key] = (_split_items(value), origin)
    disabled, origin = entry('disable')
    if 'rke2-ingress-nginx' in _split_items(disabled):
        values['addons'] = ([], 'no ingress: %s' % origin)
    else:
        values['addons'] = (['ingress'], 'ingress: %s' % origin)
    no_proxy, origin = entry('disable-kube-proxy')
    if as_bool(no_proxy, '%s (host %s)' % (origin, context.host)):
        values['kube_proxy'] = ('none', origin)
    ports, origin = entry('service-node-port-range')
    values['nodeport_range'] = (ports, origin)
    if version[0] not in (None, ''):
        values['kubernetes_version'] = version
    return values


def _rke2_cni_names(value, origin, context):
    """(multus, the primary CNI's name) of RKE2's cni, split and checked as RKE2 does (no trimming)."""
    names = []
    for item in as_list(value):
        names.extend(('%s' % (item,)).split(','))
    names = names or [RKE2_DEFAULTS['cni']]
    rule = None
    if len(names) > 2:
        rule = 'it takes one or two values'
    elif names[0] == 'multus' and len(names) == 1:
        rule = 'multus must be used alongside another primary cni selection'
    elif len(names) == 2 and names[0] != 'multus':
        rule = 'it takes two values only with multus first'
    if rule:
        raise PlanError('%s: %r is refused by %s: %s' % (_where(origin, context), value, RKE2_CNI_CHECKS, rule))
    return names[0] == 'multus', names[-1]


def _merged_config(get, origin_of, context):
    """cluster_rke2_config, then group_rke2_config, then host_rke2_config: {key: (value, origin)}."""
    merged = {}
    for name in ('cluster_rke2_config', 'group_rke2_config', 'host_rke2_config'):
        value = get(name)
        if value in (None, ''):
            continue
        if not isinstance(value, dict):
            raise PlanError('%s: expected a mapping of RKE2 config.yaml keys, got %r'
                            % (_where(origin_of(name), context), value))
        for key, item in value.items():
            merged[key] = (item, '%s %s' % (origin_of(name), key))
    return merged


def _rke2_ansible(context):
    # Agents take the cluster-wide keys from the servers' config (RKE2 reads them there).
    config = _merged_config(context.get_server, context.server_origin, context)

    def entry(key):
        if key in config:
            return config[key]
        return RKE2_DEFAULTS[key], 'RKE2 default of %s' % key

    values = _rke2_values(context, entry, (context.get('rke2_install_version'), 'rke2_install_version'))
    if _true(context.get('rke2_add_iptables_rules')):
        values['notes'] = (['rke2-ansible\'s rke2_add_iptables_rules is on: it writes iptables rules of its own; '
                            'set it to false'], 'rke2_add_iptables_rules')
    return values


ANSIBLE_ROLE_RKE2_KEYS = {'cni': 'rke2_cni', 'cluster-cidr': 'rke2_cluster_cidr', 'service-cidr': 'rke2_service_cidr',
                          'disable': 'rke2_disable', 'disable-kube-proxy': 'disable_kube_proxy'}


def _ansible_role_rke2(context):
    def entry(key):
        if key == 'service-node-port-range':
            return RKE2_DEFAULTS[key], 'RKE2 default of %s' % key
        name = ANSIBLE_ROLE_RKE2_KEYS[key]
        value = context.get_server(name)
        if key == 'disable':
            controller = context.get_server('rke2_ingress_controller')
            if controller is not None and 'none' in _split_items(controller):
                return ['rke2-ingress-nginx'], context.server_origin('rke2_ingress_controller')
        if value in (None, '', []):
            return RKE2_DEFAULTS[key], 'ansible-role-rke2 default of %s' % name
        return value, context.server_origin(name)

    values = _rke2_values(context, entry, (context.get('rke2_version'), 'rke2_version'))
    if _true(context.get_server('rke2_ha_mode_kubevip')):
        addons, origin = values['addons']
        values['addons'] = (addons + ['kube-vip'], '%s; kube-vip: %s' % (origin, context.server_origin('rke2_ha_mode_kubevip')))
        values.update(_ansible_role_rke2_kube_vip(context))
    keepalived = context.get_server('rke2_ha_mode_keepalived')
    if _true(context.get_server('rke2_ha_mode')) and (keepalived is None or _true(keepalived)):
        values['notes'] = (['keepalived (rke2_ha_mode) needs VRRP (IP protocol 112) between the servers, which '
                            'the collection does not open'], 'rke2_ha_mode')
    return values


def _ansible_role_rke2_kube_vip(context):
    """kube-vip's metrics: the role's manifest (templates/kube-vip/kube-vip.yml.j2) sets prometheus_server
    to :2112; a prometheus_server entry of rke2_kubevip_args comes after it and wins."""
    port, origin = KUBE_VIP_METRICS_PORT, "ansible-role-rke2's kube-vip manifest: prometheus_server :2112"
    for item in as_list(context.get_server('rke2_kubevip_args')):
        if isinstance(item, dict) and item.get('param') == 'prometheus_server' and given(item.get('value')):
            port = str(item['value']).rpartition(':')[2]
            origin = '%s prometheus_server' % context.server_origin('rke2_kubevip_args')
    return {'kube_vip_metrics': (True, origin), 'kube_vip_metrics_port': (port, origin)}


def _true(value):
    return value not in (None, '') and str(value).strip().lower() in ('true', 'yes', 'on', '1')


INSTALLERS = (
    Installer('kubespray', 'kubeadm',
              markers=('kube_control_plane', 'kube_node', 'calico_rr', 'kube-master', 'kube-node', 'calico-rr'),
              members=('kube_control_plane', 'kube_node', 'calico_rr', 'kube-master', 'kube-node', 'calico-rr',
                       'etcd', 'k8s_cluster'),
              variables=KUBESPRAY_VARIABLES, reader=_kubespray, defaults=KUBESPRAY_DEFAULTS,
              formed={'kube_control_plane': ('kube-master',), 'kube_node': ('kube-node',),
                      'calico_rr': ('calico-rr',),
                      'k8s_cluster': ('kube_node', 'kube_control_plane', 'calico_rr', 'kube-master',
                                      'kube-node', 'calico-rr')}),
    Installer('k3s-ansible', 'k3s', markers=('server', 'agent', 'k3s_cluster'),
              members=('server', 'agent', 'k3s_cluster'), variables=K3S_VARIABLES, reader=_k3s,
              server_groups=('server',)),
    Installer('rke2-ansible', 'rke2', markers=('rke2_servers', 'rke2_agents', 'rke2_cluster'),
              members=('rke2_servers', 'rke2_agents', 'rke2_cluster'), variables=RKE2_ANSIBLE_VARIABLES,
              reader=_rke2_ansible, server_groups=('rke2_servers',)),
    Installer('ansible-role-rke2', 'rke2', markers=(), members=('masters', 'workers', 'k8s_cluster'),
              variables=ANSIBLE_ROLE_RKE2_VARIABLES, reader=_ansible_role_rke2, server_groups=('masters',)),
)
BY_NAME = dict((installer.name, installer) for installer in INSTALLERS)
# Variables that mark a host as managed by ansible-role-rke2 (its groups are generic names).
ANSIBLE_ROLE_RKE2_MARKS = ('rke2_cni', 'rke2_version', 'rke2_token', 'rke2_type', 'rke2_ha_mode',
                           'rke2_servers_group_name', 'rke2_cluster_cidr')
# Installer variables that rename its groups (k3s-ansible, ansible-role-rke2).
GROUP_NAME_VARIABLES = ('server_group', 'agent_group', 'rke2_servers_group_name', 'rke2_agents_group_name')
# Groups of known installers whose hosts must get a role (never silently dropped).
KNOWN_GROUPS = frozenset(group for installer in INSTALLERS for group in installer.members)


def detect(groups, has_variable):
    """{host: installer name} for hosts of recognised installer inventories.

    ``groups`` maps group names to hosts; ``has_variable(host, names)`` tells whether a host
    sets any of the given variables (used for ansible-role-rke2, whose groups are generic).
    PlanError when a host belongs to two installers.
    """
    found = {}
    for installer in INSTALLERS:
        if installer.markers:
            if not any(groups.get(group) for group in installer.markers):
                continue
            hosts = set(host for group in installer.members for host in groups.get(group) or ())
        else:
            hosts = set(host for group in installer.members for host in groups.get(group) or ()
                        if has_variable(host, ANSIBLE_ROLE_RKE2_MARKS))
        for host in hosts:
            other = found.get(host)
            if other and other != installer.name:
                raise PlanError('host %s is in the groups of two installers (%s and %s); set kubeports_installer '
                                'for it' % (host, other, installer.name))
            found[host] = installer.name
    return found


def server_of(installer, groups):
    """The first host of the installer's server groups, or None."""
    for group in installer.server_groups:
        hosts = groups.get(group) or ()
        if hosts:
            return hosts[0]
    return None


def is_server(installer, host, groups):
    return any(host in (groups.get(group) or ()) for group in installer.server_groups)


def missing_formed_groups(installer, groups):
    """{group: [hosts]} of hosts the installer would add to groups at run time but that are not there.

    kubespray forms k8s_cluster (and the current names of legacy groups) when it runs; until
    then group_vars/k8s_cluster do not apply. The collection's playbooks form them first.
    """
    missing = {}
    for group, sources in installer.formed.items():
        present = set(groups.get(group) or ())
        wanted = [host for source in sources for host in groups.get(source) or () if host not in present]
        if wanted:
            missing[group] = sorted(set(wanted))
    return missing


def read_values(installer, context):
    """The installer's values for one host: {key: (value, origin)}, plus installer and distribution."""
    values = installer.reader(context)
    values['installer'] = (installer.name, 'the host is in groups of %s' % installer.name)
    values['distribution'] = (installer.distribution, '%s inventory' % installer.name)
    return values
