# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster profile: the values that select catalog rules, each with where it came from.

Precedence, per value: an explicit kubeports_* variable, else the installer's own variable,
else that installer's documented default, else the collection's default. The installer's
values arrive already translated (see installers.py); this module validates and records them.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import difflib
import re
from collections import namedtuple

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import check_interfaces, parse_port

VARIABLE_PREFIX = 'kubeports_'

DISTRIBUTION_ALIASES = {'kubespray': 'kubeadm', 'kubean': 'kubeadm'}
DEFAULT_CNI = {'kubeadm': ['calico'], 'rke': ['canal'], 'rke2': ['canal'], 'k3s': ['flannel']}
DEFAULT_ADDONS = {'kubeadm': [], 'rke': ['ingress'], 'rke2': ['ingress'], 'k3s': []}

CNIS = ('calico', 'cilium', 'flannel', 'canal', 'weave', 'spiderpool', 'kube-ovn', 'kube-router',
        'macvlan', 'cloud', 'none')
# CNIs that need no port of their own: macvlan pods sit on the node's L2 network, cloud
# routes pods in the provider's network.
PORTLESS_CNIS = ('macvlan', 'cloud', 'none')
ADDONS = ('metallb', 'kube-vip', 'ingress', 'node-exporter', 'rancher-monitoring', 'harbor',
          'ntp', 'kuboard', 'grafana', 'redis', 'spegel', 'metrics-server', 'nodelocaldns')
INSTALLER_NAMES = ('kubespray', 'k3s-ansible', 'rke2-ansible', 'ansible-role-rke2', 'none')
INSTALLER_ALIASES = {'kubean': 'kubespray', 'lablabs-rke2': 'ansible-role-rke2'}
# Other spellings accepted for a choice, by profile key.
ALIASES = {'distribution': DISTRIBUTION_ALIASES, 'installer': INSTALLER_ALIASES}

# kind, choices, default (None: computed), description, scope (when the value matters:
# None always, else (profile key, values)).
Option = namedtuple('Option', 'kind choices default doc scope')

_CALICO = ('cni', ('calico',))
_CILIUM = ('cni', ('cilium',))
_FLANNEL = ('cni', ('flannel',))

OPTIONS = {
    'installer': Option('choice', INSTALLER_NAMES, None,
                        'The installer whose variables are read: kubespray (also Kubean), k3s-ansible, '
                        'rke2-ansible, ansible-role-rke2, or none. Default: recognised from the '
                        'inventory groups.', None),
    'distribution': Option('choice', ('kubeadm', 'rke', 'rke2', 'k3s'), 'kubeadm',
                           'Kubernetes distribution: kubeadm (also kubespray, Kubean, DCE 5), rke, rke2, k3s.',
                           None),
    'cni': Option('list', CNIS, None,
                  'CNI plugins (a name or a list, e.g. [calico, spiderpool]). Default: calico for kubeadm, '
                  'canal for rke and rke2, flannel for k3s.', None),
    'multus': Option('bool', None, False, 'Multus in front of the CNI (no ports of its own).', None),
    'addons': Option('list', ADDONS, None,
                     'Add-ons whose ports are opened. Default: [ingress] for rke and rke2, none otherwise.',
                     None),
    'kubernetes_version': Option('version', None, '1.30',
                                 'Kubernetes version (major.minor); selects version-dependent legacy ports.',
                                 None),
    'api_port': Option('port', None, 6443, 'Kubernetes API server port.', None),
    'nodeport_range': Option('range', None, '30000-32767', 'NodePort Service range.', None),
    'nodeport_udp': Option('bool', None, False, 'Also open the NodePort range for UDP (always on for rke).',
                           None),
    'kube_proxy': Option('choice', ('iptables', 'ipvs', 'nftables', 'none'), 'iptables',
                         'kube-proxy mode; none (replaced by the CNI) closes its health port 10256.', None),
    'ssh_port': Option('port', None, None, 'SSH port opened to kubeports_admin_cidrs. Default: ansible_port or 22.',
                       None),
    'manage_ssh': Option('bool', None, True, 'Open SSH to kubeports_admin_cidrs on every managed host.', None),
    'kubelet_read_only_port': Option('bool', None, False, 'Open the kubelet read-only port 10255 (when enabled).',
                                     None),
    'cni_uses_etcd': Option('bool', None, False,
                            'The CNI keeps its state in the cluster\'s etcd (Calico etcd datastore, Cilium '
                            'kvstore identities): every node reaches etcd\'s client port.', None),
    'calico_backend': Option('choice', ('bird', 'vxlan', 'none'), 'vxlan',
                             'Calico networking backend (kubespray calico_network_backend); bird opens BGP 179.',
                             _CALICO),
    'calico_encapsulation': Option('choice', ('ipip', 'vxlan', 'none'), 'vxlan',
                                   'Calico encapsulation: ipip (IP protocol 4), vxlan (4789/udp) or none.',
                                   _CALICO),
    'calico_vxlan_port': Option('port', None, 4789, 'Calico VXLAN port.', _CALICO),
    'calico_bgp_peering': Option('choice', ('mesh', 'route_reflectors'), 'mesh',
                                 'Calico BGP sessions: a full mesh between nodes, or nodes with the route '
                                 'reflectors (hosts with the route_reflector role) only.', _CALICO),
    'calico_typha': Option('bool', None, False, 'Calico Typha is deployed (5473/tcp).', _CALICO),
    'calico_felix_metrics': Option('bool', None, False, 'Calico Felix Prometheus metrics (9091/tcp).', _CALICO),
    'wireguard': Option('bool', None, False, 'WireGuard encryption in Calico, Canal or Cilium.', None),
    'ipsec': Option('bool', None, False, 'IPsec encryption between nodes (Cilium): ESP.', _CILIUM),
    'cilium_tunnel': Option('choice', ('vxlan', 'geneve', 'disabled'), 'vxlan', 'Cilium tunnel mode.', _CILIUM),
    'cilium_hubble': Option('bool', None, True, 'Cilium Hubble server and relay (4244, 4245, 9965).', _CILIUM),
    'cilium_metrics': Option('bool', None, True, 'Cilium agent, operator and proxy metrics (9962-9964).',
                             _CILIUM),
    'flannel_backend': Option('choice', ('vxlan', 'udp', 'wireguard', 'host-gw', 'none'), 'vxlan',
                              'Flannel backend (also K3s --flannel-backend).', _FLANNEL),
    'flannel_vxlan_port': Option('port', None, 8472, 'Flannel VXLAN port.', _FLANNEL),
    'kube_ovn_tunnel': Option('choice', ('geneve', 'vxlan', 'stt', 'none'), 'geneve',
                              'Kube-OVN tunnel: geneve (6081/udp), vxlan (4789/udp), stt (7471/tcp), or none '
                              '(VLAN underlay).', ('cni', ('kube-ovn',))),
    'kube_router_metrics': Option('bool', None, False, 'kube-router Prometheus metrics.',
                                  ('cni', ('kube-router',))),
    'kube_router_metrics_port': Option('port', None, 9255, 'kube-router metrics port.',
                                       ('cni', ('kube-router',))),
    'metallb_speaker': Option('bool', None, True, 'MetalLB speakers run (memberlist 7946).',
                              ('addons', ('metallb',))),
    'metallb_secure_metrics': Option('bool', None, False,
                                     'MetalLB metrics behind kube-rbac-proxy (9120) instead of plain 7472.',
                                     ('addons', ('metallb',))),
    'kube_vip_bgp': Option('bool', None, False, 'kube-vip announces the VIP over BGP (179 from the BGP peers).',
                           ('addons', ('kube-vip',))),
    'kube_vip_metrics': Option('bool', None, True, 'kube-vip serves Prometheus metrics.',
                               ('addons', ('kube-vip',))),
    'kube_vip_metrics_port': Option('port', None, 2112, 'kube-vip metrics port.', ('addons', ('kube-vip',))),
    'k3s_datastore': Option('choice', ('embedded_etcd', 'sqlite', 'external'), 'embedded_etcd',
                            'K3s datastore; embedded_etcd opens 2379-2380 between servers.',
                            ('distribution', ('k3s',))),
    'rancher_install': Option('choice', ('docker', 'k3s', 'rke', 'rke2'), 'docker',
                              'How the Rancher server (group rancher) is installed: on Docker, or on a '
                              'K3s, RKE or RKE2 cluster of the rancher hosts.', None),
    'rancher_cluster_type': Option('choice', ('none', 'node_pools', 'custom', 'hosted', 'registered'), 'none',
                                   'How Rancher manages this cluster: none, node_pools (node driver, opens 22 '
                                   'and 2376 to Rancher), custom, hosted (opens 8443/9443 to Rancher), '
                                   'registered.', None),
    'rancher_authorized_cluster_endpoint': Option('bool', None, False,
                                                  'Rancher authorized cluster endpoint: API clients reach '
                                                  'the RKE API server directly.', None),
    'rancher_port_profile': Option('choice', ('per_role', 'common'), 'per_role',
                                   'common adds Rancher\'s broad "commonly used ports" table.', None),
    'windows_overlay': Option('bool', None, False, 'Windows nodes with the overlay network (4789/udp).', None),
    'dce5_cluster': Option('choice', ('none', 'global', 'worker'), 'none',
                           'DCE 5 cluster kind: global service cluster or worker cluster.', None),
    'ip_families': Option('list', ('ipv4', 'ipv6'), None,
                          'IP families of the cluster. Default: taken from the inventory addresses.', None),
    'pod_interfaces': Option('interfaces', None, None,
                             'Interfaces on which pod traffic reaches a node (the CNI\'s devices; a trailing + '
                             'matches any suffix, e.g. cali+). Everything arriving on them is trusted, to the '
                             'node and forwarded, and the pod and service networks are trusted nowhere else, so '
                             'a pod address spoofed from the node network gets nothing. [] trusts the pod and '
                             'service networks by source on every interface (needed where pods are routed over '
                             'the node network). Default: the devices of the CNI and its encapsulation '
                             '(docs/backends.md), [] for CNIs that route pods without encapsulation.', None),
}

# The devices pod traffic arrives on, per CNI and encapsulation (docs/backends.md cites the
# CNIs' own documentation); None: pods are routed over the node network.
FLANNEL_INTERFACES = {'vxlan': ['flannel.1', 'flannel-v6.1', 'cni0'], 'udp': ['flannel0', 'cni0'],
                      'wireguard': ['flannel-wg', 'flannel-wg-v6', 'cni0']}
CALICO_INTERFACES = {'vxlan': ['vxlan.calico', 'vxlan-v6.calico', 'cali+'], 'ipip': ['tunl0', 'cali+']}
CALICO_WIREGUARD_INTERFACES = ['wireguard.cali', 'wg-v6.cali']
CILIUM_INTERFACES = ['cilium_host', 'cilium_net', 'lxc+']
KUBE_OVN_INTERFACES = {'geneve': ['ovn0', 'genev_sys_6081'], 'vxlan': ['ovn0', 'vxlan_sys_4789'],
                       'stt': ['ovn0', 'stt_sys_7471']}
WEAVE_INTERFACES = ['weave', 'datapath', 'vxlan-6784', 'vethwe+']

# Named CIDR source sets: variable and default. "any" means everyone.
CIDR_SETS = {
    'api_clients': ('api_client_cidrs', ['any'], 'Kubernetes API clients (kubectl, CI).'),
    'admins': ('admin_cidrs', ['any'], 'Administrators and Ansible controllers (SSH, UIs).'),
    'workload_clients': ('workload_client_cidrs', ['any'], 'Clients of NodePort and ingress services.'),
    'ui_clients': ('ui_client_cidrs', ['any'], 'Users of web UIs (Rancher, Istio gateway, Grafana).'),
    'loadbalancers': ('loadbalancer_cidrs', [], 'External load balancers and health checkers of Services.'),
    'api_loadbalancers': ('api_loadbalancer_cidrs', [], 'Load balancers in front of the API server.'),
    'bgp_peers': ('bgp_peer_cidrs', [], 'BGP routers outside the cluster that peer with the nodes.'),
    'pods': ('pod_cidrs', [], 'Pod network CIDRs, trusted by source on every interface where pods are routed '
             'over the node network (pod_interfaces []).'),
    'services': ('service_cidrs', [], 'Service network CIDRs, trusted by source on every interface where pods are '
                 'routed over the node network (pod_interfaces []).'),
    'dce5_global_cluster': ('dce5_global_cluster_cidrs', [],
                            'Nodes of the DCE 5 global service cluster (for worker clusters).'),
    'dce5_member_clusters': ('dce5_member_cluster_cidrs', [],
                             'Nodes of DCE 5 worker clusters reporting to the global cluster.'),
}

# The keys of a resolved profile as reports show them, in this order.
PROFILE_KEYS = tuple(OPTIONS) + ('pod_cidrs', 'service_cidrs')

# Values on which every node of one cluster must agree (a peer opens what the others send).
AGREED = ('installer', 'distribution', 'cni', 'calico_backend', 'calico_encapsulation', 'calico_vxlan_port',
          'calico_bgp_peering', 'calico_typha', 'wireguard', 'ipsec', 'cilium_tunnel', 'flannel_backend',
          'flannel_vxlan_port', 'kube_ovn_tunnel', 'api_port', 'nodeport_range', 'cni_uses_etcd', 'pod_cidrs',
          'service_cidrs')

# Other kubeports_* variables of the planner, the roles and the playbooks (without the prefix).
PLANNER_VARIABLES = ('peer_cidrs', 'role_groups', 'roles', 'address', 'extra_rules', 'drop_rules',
                     'catalog_dirs', 'public_ports')
ROLE_VARIABLES = ('backend', 'prune', 'firewalld_zone', 'state_dir', 'allow_restart', 'lock_timeout',
                  'hosts_without_role', 'show_plan', 'hosts', 'plan_hosts', 'plan_shown_hosts', 'report_dir',
                  'verify_sources', 'verify_unplanned', 'verify_timeout', 'verify_concurrency',
                  'verify_listener_lifetime', 'verify_run_dir', 'verify_report_dir',
                  'verify_fail_on_mismatch', 'serial', 'max_fail_percentage', 'confirm_timeout',
                  'lockout_guard', 'firewalld_reload', 'ufw_peer_sets', 'audit_fail_on', 'audit_report_dir', 'state')
KNOWN_VARIABLES = frozenset(VARIABLE_PREFIX + name for name in (
    tuple(OPTIONS) + tuple(var for var, _default, _doc in CIDR_SETS.values()) + PLANNER_VARIABLES
    + ROLE_VARIABLES))

# Condition keys the catalog may use besides the options: computed by resolve().
DERIVED_KEYS = ('ip_family', 'api_clients_direct', 'pod_routing')
CONDITION_KEYS = frozenset(set(OPTIONS) | set(DERIVED_KEYS)) - {'ip_families'}

_VERSION = re.compile(r'^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$')
_TRUE = ('true', 'yes', 'on', '1')
_FALSE = ('false', 'no', 'off', '0')
DEFAULT_ORIGIN = 'default'
NO_INSTALLER_ORIGIN = "the host is in no installer's groups"


class Refused(object):
    """An installer value the collection cannot serve; an error only when the value is used."""

    def __init__(self, message):
        self.message = message


def parse_version(value, where):
    match = _VERSION.match(str(value).strip())
    if not match:
        raise PlanError('%s: invalid Kubernetes version %r (expected e.g. "1.30" or "v1.30.2")'
                        % (where, value))
    return int(match.group(1)), int(match.group(2))


def as_bool(value, where):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise PlanError('%s: expected a boolean, got %r' % (where, value))


def as_list(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def accepted_spellings(name, choices):
    """Every value accepted for a choice: the choices, then each alias with what it stands for."""
    aliases = sorted(ALIASES.get(name, {}).items())
    text = ', '.join(choices)
    if aliases:
        text += '; also %s' % ', '.join('%s for %s' % (alias, meant) for alias, meant in aliases)
    return text


def _choice(name, value, choices, where):
    text = str(value).strip().lower()
    text = ALIASES.get(name, {}).get(text, text)
    if text not in choices:
        raise PlanError('%s: unknown %s %r (choose from %s)'
                        % (where, name.replace('_', ' '), value, accepted_spellings(name, choices)))
    return text


def _parse(name, option, value, where):
    kind, choices = option.kind, option.choices
    if kind == 'choice':
        return _choice(name, value, choices, where)
    if kind == 'list':
        return [_choice(name, item, choices, where) for item in as_list(value)]
    if kind == 'bool':
        return as_bool(value, where)
    if kind == 'port':
        low, high = parse_port(value, where)
        if low != high:
            raise PlanError('%s: invalid port %r (a single port is expected)' % (where, value))
        return low
    if kind == 'range':
        return '%d-%d' % parse_port(value, where)
    if kind == 'interfaces':
        return parse_interfaces(value, where)
    parse_version(value, where)
    return str(value).strip()


def parse_interfaces(value, where):
    """A list of interface names as iptables takes them (a trailing + matches any suffix)."""
    if isinstance(value, str) and value.strip() in ('', '[]'):
        return []
    return check_interfaces(as_list(value), where)


def given(value):
    """Is a variable's value set (neither null nor empty text)?"""
    return value is not None and value != ''


def check_variable_names(names, source):
    """PlanError for the first kubeports_* name that the collection does not know."""
    for name in sorted(names):
        if name.startswith(VARIABLE_PREFIX) and name not in KNOWN_VARIABLES:
            known = sorted(known[len(VARIABLE_PREFIX):] for known in KNOWN_VARIABLES)
            near = difflib.get_close_matches(name[len(VARIABLE_PREFIX):], known, n=1, cutoff=0.7)
            hint = ' (did you mean %s%s?)' % (VARIABLE_PREFIX, near[0]) if near else ''
            raise PlanError('%s (%s): unknown variable%s; the known ones are listed in docs/profile.md (%s* names are '
                            'the collection\'s settings: keep your own values, such as a registered plan, under another '
                            'name)' % (name, source, hint, VARIABLE_PREFIX))


def resolve(variables, source='host vars', installer=None):
    """The profile of one host, as a plain dict with ``origins``: where each value came from.

    ``variables`` maps names (kubeports_* ones, ansible_port) to values. ``installer`` maps
    profile keys (and CIDR set variables such as ``pod_cidrs``) to (value, origin) pairs read
    from the installer's own variables or its documented defaults. Raises PlanError naming the
    bad variable and value.
    """
    installer = installer or {}
    profile, origins = {}, {}
    for name, option in OPTIONS.items():
        var = VARIABLE_PREFIX + name
        value = variables.get(var)
        if given(value):
            origin, where = var, '%s (%s)' % (var, source)
        elif name in installer:
            value, origin = installer[name]
            if isinstance(value, Refused):
                raise PlanError(value.message)
            where = '%s (%s)' % (origin, source)
        else:
            profile[name], origins[name] = option.default, DEFAULT_ORIGIN
            continue
        profile[name], origins[name] = _parse(name, option, value, where), origin
    if profile['installer'] is None:
        origins['installer'] = NO_INSTALLER_ORIGIN
    distribution = profile['distribution']
    if profile['cni'] is None:
        profile['cni'], origins['cni'] = list(DEFAULT_CNI[distribution]), 'default for %s' % distribution
    if profile['addons'] is None:
        profile['addons'], origins['addons'] = list(DEFAULT_ADDONS[distribution]), 'default for %s' % distribution
    if profile['ssh_port'] is None:
        for var in ('ansible_port', 'ansible_ssh_port'):
            if given(variables.get(var)):
                profile['ssh_port'] = parse_port(variables[var], '%s (%s)' % (var, source))[0]
                origins['ssh_port'] = var
                break
        else:
            profile['ssh_port'], origins['ssh_port'] = 22, DEFAULT_ORIGIN
    if 'none' in profile['cni'] and len(profile['cni']) > 1:
        raise PlanError('%s (%s): "none" cannot be combined with other CNIs: %r'
                        % (origins['cni'], source, profile['cni']))
    if profile['calico_encapsulation'] == 'ipip' and profile['calico_backend'] != 'bird':
        raise PlanError('%s (%s): ipip encapsulation needs calico_backend: bird (kubeports_calico_backend or '
                        'kubespray calico_network_backend), got %r from %s'
                        % (origins['calico_encapsulation'], source, profile['calico_backend'],
                           origins['calico_backend']))
    if distribution == 'rke' and not profile['nodeport_udp']:
        profile['nodeport_udp'], origins['nodeport_udp'] = True, 'always for rke'
    if profile['pod_interfaces'] is None:
        profile['pod_interfaces'], origins['pod_interfaces'] = default_pod_interfaces(profile)
    profile['pod_routing'] = 'overlay' if profile['pod_interfaces'] else 'native'
    profile['api_clients_direct'] = (profile['rancher_cluster_type'] in ('none', 'registered')
                                     or profile['rancher_authorized_cluster_endpoint'])
    profile['version_tuple'] = parse_version(profile['kubernetes_version'], origins['kubernetes_version'])
    profile['cidr_sets'] = cidr_sets(variables, source, installer, origins)
    profile['origins'] = origins
    profile['notes'] = list(installer.get('notes', ([], None))[0])
    pods = [str(item) for name in ('pods', 'services') for item in profile['cidr_sets'][name][1]]
    if profile['pod_routing'] == 'native' and pods:
        profile['notes'].append(
            'the pod and service networks (%s) are trusted by source on every interface (pod_interfaces is [] '
            'from %s): a host on the node network that spoofs one of those addresses is trusted too. Set '
            'kubeports_pod_interfaces to the CNI\'s devices where pods are encapsulated'
            % (', '.join(pods), origins['pod_interfaces']))
    return profile


def default_pod_interfaces(profile):
    """(interfaces, origin) of the CNIs in ``profile``: their devices when every CNI encapsulates
    pod traffic, else [] (pods routed over the node network are trusted by source)."""
    found, reasons = [], []
    for cni in profile['cni']:
        if cni == 'flannel':
            devices = FLANNEL_INTERFACES.get(profile['flannel_backend'])
            reason = 'flannel backend %s' % profile['flannel_backend']
        elif cni == 'canal':
            devices, reason = FLANNEL_INTERFACES['vxlan'][:2] + ['cali+'], 'canal with flannel VXLAN'
        elif cni == 'calico':
            devices = CALICO_INTERFACES.get(profile['calico_encapsulation'])
            reason = 'calico encapsulation %s' % profile['calico_encapsulation']
            if devices and profile['wireguard']:
                devices = devices + CALICO_WIREGUARD_INTERFACES
        elif cni == 'cilium':
            tunnel = profile['cilium_tunnel']
            devices = None if tunnel == 'disabled' else ['cilium_%s' % tunnel] + CILIUM_INTERFACES
            if devices and profile['wireguard']:
                devices = devices + ['cilium_wg0']
            reason = 'cilium tunnel %s' % tunnel
        elif cni == 'kube-ovn':
            devices = KUBE_OVN_INTERFACES.get(profile['kube_ovn_tunnel'])
            reason = 'kube-ovn tunnel %s' % profile['kube_ovn_tunnel']
        elif cni == 'weave':
            devices, reason = WEAVE_INTERFACES, 'weave'
        else:
            devices, reason = None, '%s routes pods over the node network' % cni
        if devices is None:
            return [], 'default for %s' % (reason if 'routes' in reason else reason + ': no encapsulation')
        reasons.append(reason)
        found.extend(device for device in devices if device not in found)
    return found, 'default for %s' % ', '.join(reasons)


def cidr_sets(variables, source, installer=None, origins=None):
    """Raw CIDR lists of the named source sets, plus kubeports_peer_cidrs extras.

    Each entry is (where, values): ``where`` names the variable for error messages.
    """
    installer = installer or {}
    origins = {} if origins is None else origins
    sets = {}
    for name, (var, default, _doc) in CIDR_SETS.items():
        value = variables.get(VARIABLE_PREFIX + var)
        if value is not None:
            origin, values = VARIABLE_PREFIX + var, as_list(value)
        elif var in installer:
            values, origin = installer[var]
            values = as_list(values)
        else:
            origin, values = DEFAULT_ORIGIN, list(default)
        origins[var] = origin
        sets[name] = ('%s (%s)' % (VARIABLE_PREFIX + var if origin == DEFAULT_ORIGIN else origin, source), values)
    extra = variables.get(VARIABLE_PREFIX + 'peer_cidrs') or {}
    if not isinstance(extra, dict):
        raise PlanError('%speer_cidrs (%s): expected a mapping of set name to CIDR list, got %r'
                        % (VARIABLE_PREFIX, source, extra))
    for name, value in extra.items():
        sets['extra:' + str(name)] = ('%speer_cidrs.%s (%s)' % (VARIABLE_PREFIX, name, source), as_list(value))
    return sets


def agreed_value(profile, key):
    """A comparable form of one value that the nodes of a cluster must agree on."""
    if key in ('pod_cidrs', 'service_cidrs'):
        name = 'pods' if key == 'pod_cidrs' else 'services'
        return tuple(sorted(str(item).strip().lower() for item in profile['cidr_sets'][name][1]))
    value = profile[key]
    return tuple(sorted(value)) if isinstance(value, list) else value


def in_scope(profile, key):
    option = OPTIONS.get(key)
    if option is None or option.scope is None:
        return True
    actual = profile[option.scope[0]]
    actual = actual if isinstance(actual, list) else [actual]
    return any(item in option.scope[1] for item in actual)


def show(value):
    if value is None:
        return 'none'
    if isinstance(value, (list, tuple)):
        return '[%s]' % ', '.join(str(item) for item in value)
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def values_with_origins(profile, keys=None):
    """[(key, shown value, origin)] of the values that matter for this profile."""
    rows = []
    for key in keys or PROFILE_KEYS:
        if key in ('pod_cidrs', 'service_cidrs'):
            rows.append((key, show(list(agreed_value(profile, key))), profile['origins'][key]))
        elif in_scope(profile, key):
            rows.append((key, show(profile[key]), profile['origins'][key]))
    return rows


def condition_holds(profile, key, expected):
    """True when the profile satisfies one `when` entry of the catalog."""
    if key == 'kubernetes_version':
        return _version_matches(profile['version_tuple'], expected)
    actual = profile[key]
    wanted = expected if isinstance(expected, list) else [expected]
    if isinstance(actual, list):
        return any(item in actual for item in wanted)
    return actual in wanted


def _version_matches(actual, expression):
    match = re.match(r'^\s*(<=|>=|<|>|==)?\s*(.+)$', str(expression))
    operator, version = match.group(1) or '==', parse_version(match.group(2), 'catalog condition')
    return {'<': actual < version, '<=': actual <= version, '>': actual > version,
            '>=': actual >= version, '==': actual == version}[operator]
