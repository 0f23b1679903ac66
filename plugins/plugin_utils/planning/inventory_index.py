# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory index: roles and addresses of every host, and peer sets as merged CIDRs."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.catalog import ROLES
from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import ANYONE

try:
    import netaddr
    HAS_NETADDR = True
except ImportError:
    netaddr = None
    HAS_NETADDR = False

CLUSTER_ROLES = ('etcd', 'controlplane', 'worker', 'route_reflector')
# Roles whose hosts run kubelet.
NODE_ROLES = ('controlplane', 'worker', 'route_reflector')

# kubespray / Kubean, Rancher / RKE, RKE2 and K3s group names.
DEFAULT_ROLE_GROUPS = {
    'etcd': ['etcd'],
    'controlplane': ['kube_control_plane', 'kube-master', 'controlplane', 'control_plane',
                     'masters', 'master', 'server', 'servers', 'rke2_servers'],
    'worker': ['kube_node', 'kube-node', 'worker', 'workers', 'agent', 'agents', 'rke2_agents'],
    'route_reflector': ['calico_rr', 'calico-rr'],
    'registry': ['registry'],
    'bootstrap': ['bootstrap', 'seed'],
    'rancher': ['rancher'],
}
# Host variables holding a host's addresses, in order of precedence.
ADDRESS_VARIABLES = ('kubeports_address', 'ip', 'ansible_host')


def require_netaddr():
    if not HAS_NETADDR:
        raise PlanError('the netaddr Python library is required on the controller (pip install netaddr)')


def parse_cidr(value, where):
    """An IPNetwork for an address or CIDR; PlanError names the bad value."""
    require_netaddr()
    text = str(value).strip()
    try:
        network = netaddr.IPNetwork(text) if '/' in text else netaddr.IPNetwork(netaddr.IPAddress(text))
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise PlanError('%s: invalid address or CIDR %r' % (where, value))
    if network.ip != network.network:
        raise PlanError('%s: %r has host bits set (did you mean %s?)' % (where, value, network.cidr))
    return network.cidr


def resolve_cidr_list(values, where):
    """CIDRs of a user list; the word "any" stands for 0.0.0.0/0 and ::/0."""
    networks = []
    for value in values:
        if str(value).strip().lower() == 'any':
            networks.extend(netaddr.IPNetwork(item) for item in ANYONE)
        else:
            networks.append(parse_cidr(value, where))
    return networks


def merge(networks):
    """netaddr-aggregated CIDR strings, IPv4 first."""
    merged = netaddr.cidr_merge(networks)
    return [str(net) for net in sorted(merged, key=lambda net: (net.version, net.sort_key()))]


def validate_role_groups(role_groups, where='kubeports_role_groups'):
    if not isinstance(role_groups, dict):
        raise PlanError('%s: expected a mapping of role to group names, got %r' % (where, role_groups))
    checked = {}
    for role, groups in role_groups.items():
        if role not in ROLES:
            raise PlanError('%s: unknown role %r (choose from %s)' % (where, role, ', '.join(ROLES)))
        if isinstance(groups, str):
            groups = [groups]
        if not isinstance(groups, (list, tuple)):
            raise PlanError('%s.%s: expected a list of group names, got %r' % (where, role, groups))
        checked[role] = [str(group) for group in groups]
    return checked


def host_addresses(host, variables):
    """A host's addresses (IPNetworks) from its variables; PlanError if it has none usable."""
    for var in ADDRESS_VARIABLES:
        value = variables.get(var)
        if value in (None, '', []):
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        networks = []
        for item in values:
            try:
                network = netaddr.IPNetwork(netaddr.IPAddress(str(item).strip()))
            except (netaddr.AddrFormatError, ValueError, TypeError):
                raise PlanError('%s (host %s): %r is not an IP address; set kubeports_address '
                                'to the address(es) peers see' % (var, host, item))
            networks.append(network)
        extra = variables.get('ip6') if var == 'ip' else None
        if extra:
            networks.append(parse_cidr(extra, 'ip6 (host %s)' % host))
        return networks
    try:
        return [netaddr.IPNetwork(netaddr.IPAddress(host))]
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise PlanError('host %s has no usable address: set kubeports_address (or ansible_host) '
                        'to its IP address(es)' % host)


class InventoryIndex(object):
    """Roles and addresses of all hosts, built once per inventory.

    ``groups`` maps group name to host names; ``host_vars(name)`` returns a mapping with
    the host's variables (only the address variables and kubeports_roles are read).
    """

    def __init__(self, groups, host_vars, role_groups=None):
        require_netaddr()
        # Each host's variables are read once (Ansible builds them on every access).
        fetched = {}

        def variables_of(host):
            if host not in fetched:
                fetched[host] = host_vars(host)
            return fetched[host]

        role_groups = validate_role_groups(DEFAULT_ROLE_GROUPS if role_groups is None else role_groups)
        self.role_groups = role_groups
        self.roles = {}
        # Hosts whose kubeports_roles chose their roles (their groups give them none).
        self.explicit = set()
        for role, group_names in role_groups.items():
            for group in group_names:
                for host in groups.get(group) or ():
                    self.roles.setdefault(host, set()).add(role)
        for host in groups.get('all') or ():
            explicit = variables_of(host).get('kubeports_roles')
            if explicit:
                explicit = [explicit] if isinstance(explicit, str) else list(explicit)
                for role in explicit:
                    if role not in ROLES:
                        raise PlanError('kubeports_roles (host %s): unknown role %r (choose from %s)'
                                        % (host, role, ', '.join(ROLES)))
                self.roles[host] = set(explicit)
                self.explicit.add(host)
        self.addresses = {}
        self.members = dict((role, []) for role in ROLES)
        for host in sorted(self.roles):
            self.addresses[host] = host_addresses(host, variables_of(host))
            for role in self.roles[host]:
                self.members[role].append(host)
        self.members['cluster'] = sorted(host for host, roles in self.roles.items()
                                         if roles & set(CLUSTER_ROLES))
        self._set_cache = {}
        families = set()
        for host in self.members['cluster']:
            families.update('ipv%d' % net.version for net in self.addresses[host])
        self.ip_families = sorted(families)

    def planned_hosts(self):
        """Every host that has a role, in name order."""
        return sorted(self.roles)

    def host_roles(self, host):
        return self.roles.get(host, set())

    def role_networks(self, role):
        """Addresses of the hosts in a role (or "cluster"), not yet merged."""
        cached = self._set_cache.get(role)
        if cached is None:
            cached = [net for host in self.members[role] for net in self.addresses[host]]
            self._set_cache[role] = cached
        return cached
