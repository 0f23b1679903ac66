# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster profile: the kubeports_* variables that select catalog rules."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.module_utils.ports import parse_port

PREFIX = 'kubeports_'

DISTRIBUTION_ALIASES = {'kubespray': 'kubeadm', 'kubean': 'kubeadm'}
DEFAULT_CNI = {'kubeadm': ['calico'], 'rke': ['canal'], 'rke2': ['canal'], 'k3s': ['flannel']}
DEFAULT_ADDONS = {'kubeadm': [], 'rke': ['ingress'], 'rke2': ['ingress'], 'k3s': []}

CNIS = ('calico', 'cilium', 'flannel', 'canal', 'weave', 'spiderpool', 'none')
ADDONS = ('metallb', 'kube-vip', 'ingress', 'node-exporter', 'rancher-monitoring', 'harbor',
          'ntp', 'kuboard', 'grafana', 'redis', 'spegel')

# name: (kind, choices or None, default, description). A default of None is computed.
OPTIONS = {
    'distribution': ('choice', ('kubeadm', 'rke', 'rke2', 'k3s'), 'kubeadm',
                     'Kubernetes distribution: kubeadm (also kubespray, Kubean, DCE 5), rke, rke2, k3s.'),
    'cni': ('list', CNIS, None,
            'CNI plugins (a name or a list, e.g. [calico, spiderpool]). Default: calico for kubeadm, '
            'canal for rke and rke2, flannel for k3s.'),
    'addons': ('list', ADDONS, None,
               'Add-ons whose ports are opened. Default: [ingress] for rke and rke2, none otherwise.'),
    'kubernetes_version': ('version', None, '1.30',
                           'Kubernetes version (major.minor); selects version-dependent legacy ports.'),
    'api_port': ('port', None, 6443, 'Kubernetes API server port.'),
    'nodeport_range': ('range', None, '30000-32767', 'NodePort Service range.'),
    'nodeport_udp': ('bool', None, False, 'Also open the NodePort range for UDP (always on for rke).'),
    'ssh_port': ('port', None, None, 'SSH port opened to kubeports_admin_cidrs. Default: ansible_port or 22.'),
    'manage_ssh': ('bool', None, True, 'Open SSH to kubeports_admin_cidrs on every managed host.'),
    'kubelet_read_only_port': ('bool', None, False, 'Open the kubelet read-only port 10255 (when enabled).'),
    'calico_backend': ('choice', ('bird', 'vxlan', 'none'), 'vxlan',
                       'Calico networking backend (kubespray calico_network_backend); bird opens BGP 179.'),
    'calico_encapsulation': ('choice', ('ipip', 'vxlan', 'none'), 'vxlan',
                             'Calico encapsulation: ipip (IP protocol 4), vxlan (4789/udp) or none.'),
    'calico_typha': ('bool', None, False, 'Calico Typha is deployed (5473/tcp).'),
    'wireguard': ('bool', None, False, 'WireGuard encryption in Calico, Canal or Cilium.'),
    'cilium_tunnel': ('choice', ('vxlan', 'geneve', 'disabled'), 'vxlan', 'Cilium tunnel mode.'),
    'cilium_hubble': ('bool', None, True, 'Cilium Hubble server and relay (4244, 4245, 9965).'),
    'flannel_backend': ('choice', ('vxlan', 'udp', 'wireguard', 'host-gw'), 'vxlan', 'Flannel backend.'),
    'metallb_secure_metrics': ('bool', None, False,
                               'MetalLB metrics behind kube-rbac-proxy (9120) instead of plain 7472.'),
    'k3s_datastore': ('choice', ('embedded_etcd', 'sqlite', 'external'), 'embedded_etcd',
                      'K3s datastore; embedded_etcd opens 2379-2380 between servers.'),
    'rancher_install': ('choice', ('docker', 'k3s', 'rke', 'rke2'), 'docker',
                        'How the Rancher server (group rancher) is installed: on Docker, or on a '
                        'K3s, RKE or RKE2 cluster of the rancher hosts.'),
    'rancher_cluster_type': ('choice', ('none', 'node_pools', 'custom', 'hosted', 'registered'), 'none',
                             'How Rancher manages this cluster: none, node_pools (node driver, opens 22 '
                             'and 2376 to Rancher), custom, hosted (opens 8443/9443 to Rancher), registered.'),
    'rancher_authorized_cluster_endpoint': ('bool', None, False,
                                            'Rancher authorized cluster endpoint: API clients reach '
                                            'the RKE API server directly.'),
    'rancher_port_profile': ('choice', ('per_role', 'common'), 'per_role',
                             'common adds Rancher\'s broad "commonly used ports" table.'),
    'windows_overlay': ('bool', None, False, 'Windows nodes with the overlay network (4789/udp).'),
    'dce5_cluster': ('choice', ('none', 'global', 'worker'), 'none',
                     'DCE 5 cluster kind: global service cluster or worker cluster.'),
    'ip_families': ('list', ('ipv4', 'ipv6'), None,
                    'IP families of the cluster. Default: taken from the inventory addresses.'),
}

# Named CIDR source sets: variable and default. "any" means everyone.
CIDR_SETS = {
    'api_clients': ('api_client_cidrs', ['any'], 'Kubernetes API clients (kubectl, CI).'),
    'admins': ('admin_cidrs', ['any'], 'Administrators and Ansible controllers (SSH, UIs).'),
    'workload_clients': ('workload_client_cidrs', ['any'], 'Clients of NodePort and ingress services.'),
    'ui_clients': ('ui_client_cidrs', ['any'], 'Users of web UIs (Rancher, Istio gateway, Grafana).'),
    'loadbalancers': ('loadbalancer_cidrs', [], 'External load balancers and health checkers.'),
    'pods': ('pod_cidrs', [], 'Pod network CIDRs, trusted on every node.'),
    'services': ('service_cidrs', [], 'Service network CIDRs, trusted on every node.'),
    'dce5_global_cluster': ('dce5_global_cluster_cidrs', [],
                            'Nodes of the DCE 5 global service cluster (for worker clusters).'),
    'dce5_member_clusters': ('dce5_member_cluster_cidrs', [],
                             'Nodes of DCE 5 worker clusters reporting to the global cluster.'),
}

# Condition keys the catalog may use besides the options: computed by normalize().
DERIVED_KEYS = ('ip_family', 'api_clients_direct')
CONDITION_KEYS = frozenset(set(OPTIONS) | set(DERIVED_KEYS)) - {'ip_families'}

_VERSION = re.compile(r'^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$')
_TRUE = ('true', 'yes', 'on', '1')
_FALSE = ('false', 'no', 'off', '0')


def parse_version(value, where):
    match = _VERSION.match(str(value).strip())
    if not match:
        raise PlanError('%s: invalid Kubernetes version %r (expected e.g. "1.30" or "v1.30.2")'
                        % (where, value))
    return int(match.group(1)), int(match.group(2))


def _as_bool(value, where):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise PlanError('%s: expected a boolean, got %r' % (where, value))


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _choice(name, value, choices, where):
    text = str(value).strip().lower()
    if name == 'distribution':
        text = DISTRIBUTION_ALIASES.get(text, text)
    if text not in choices:
        raise PlanError('%s: unknown %s %r (choose from %s)'
                        % (where, name.replace('_', ' '), value, ', '.join(choices)))
    return text


def normalize(variables, source='host vars'):
    """Validate kubeports_* variables and return the profile as a plain dict.

    ``variables`` maps variable names (with the kubeports_ prefix) to values. Missing
    options take their defaults. Raises PlanError naming the bad variable and value.
    """
    profile = {}
    for name, (kind, choices, default, _doc) in OPTIONS.items():
        var = PREFIX + name
        where = '%s (%s)' % (var, source)
        value = variables.get(var)
        if value is None or value == '':
            profile[name] = default
            continue
        if kind == 'choice':
            profile[name] = _choice(name, value, choices, where)
        elif kind == 'list':
            profile[name] = [_choice(name, item, choices, where) for item in _as_list(value)]
        elif kind == 'bool':
            profile[name] = _as_bool(value, where)
        elif kind == 'port':
            low, high = parse_port(value, where)
            if low != high:
                raise PlanError('%s: invalid port %r (a single port is expected)' % (where, value))
            profile[name] = low
        elif kind == 'range':
            profile[name] = '%d-%d' % parse_port(value, where)
        elif kind == 'version':
            parse_version(value, where)
            profile[name] = str(value).strip()
    distribution = profile['distribution']
    if profile['cni'] is None:
        profile['cni'] = list(DEFAULT_CNI[distribution])
    if profile['addons'] is None:
        profile['addons'] = list(DEFAULT_ADDONS[distribution])
    if profile['ssh_port'] is None:
        port = variables.get('ansible_port') or variables.get('ansible_ssh_port') or 22
        profile['ssh_port'] = parse_port(port, 'ansible_port (%s)' % source)[0]
    if 'none' in profile['cni'] and len(profile['cni']) > 1:
        raise PlanError('%scni (%s): "none" cannot be combined with other CNIs: %r'
                        % (PREFIX, source, variables.get(PREFIX + 'cni')))
    if profile['calico_encapsulation'] == 'ipip' and profile['calico_backend'] != 'bird':
        raise PlanError('%scalico_encapsulation (%s): ipip needs kubeports_calico_backend: bird, got %r'
                        % (PREFIX, source, profile['calico_backend']))
    if distribution == 'rke':
        profile['nodeport_udp'] = True
    profile['api_clients_direct'] = (profile['rancher_cluster_type'] in ('none', 'registered')
                                     or profile['rancher_authorized_cluster_endpoint'])
    profile['version_tuple'] = parse_version(profile['kubernetes_version'], PREFIX + 'kubernetes_version')
    profile['cidr_sets'] = cidr_sets(variables, source)
    return profile


def cidr_sets(variables, source):
    """Raw CIDR lists of the named source sets, plus kubeports_peer_cidrs extras."""
    sets = {}
    for name, (var, default, _doc) in CIDR_SETS.items():
        value = variables.get(PREFIX + var)
        sets[name] = ('%s%s (%s)' % (PREFIX, var, source),
                      list(default) if value is None else _as_list(value))
    extra = variables.get(PREFIX + 'peer_cidrs') or {}
    if not isinstance(extra, dict):
        raise PlanError('%speer_cidrs (%s): expected a mapping of set name to CIDR list, got %r'
                        % (PREFIX, source, extra))
    for name, value in extra.items():
        sets['extra:' + str(name)] = ('%speer_cidrs.%s (%s)' % (PREFIX, name, source), _as_list(value))
    return sets


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
