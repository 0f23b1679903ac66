"""The origin of every value of the resolved profile names the variable that decided it, on the
example inventories: as they are, and with their groups and addresses only plus given installer
variables (so each case says which variable decides)."""

import os
import re

import pytest

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_planner import InventoryPlanner
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.profile import (
    NO_INSTALLER_ORIGIN, OPTIONS, VARIABLE_PREFIX, given, values_with_origins)
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.plan_report import markdown
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.profile_report import console_lines

from helpers import ROOT, installer_inventory

EXAMPLES = {'kubespray': 'kubespray/inventory.ini', 'kubean-dce5': 'overrides/kubean-dce5/inventory.yml',
            'k3s': 'k3s-ansible/inventory.yml', 'rke-rancher': 'overrides/rke-rancher/inventory.yml',
            'kubean': 'kubean/hosts.yml', 'rke2-lablabs': 'rke2-lablabs/inventory.ini', 'rke2-ansible': 'rke2-ansible/hosts.yml'}
PROFILE_VARIABLES = frozenset(VARIABLE_PREFIX + key for key in tuple(OPTIONS) + ('pod_cidrs', 'service_cidrs'))
# What the stripped form of an example keeps: the hosts' addresses and the CIDRs of outsiders.
KEPT = re.compile(r'^(ansible_host|ansible_port|ip|ip6|access_ip|kubeports_address|kubeports_\w+_cidrs)$')


def example(name, stripped=False, variables=None):
    """(groups, {host: variables}) of an example inventory as ansible-core reads it; ``stripped``
    keeps the groups and addresses only; ``variables`` are then set on every host."""
    _loader, manager, manager_variables = installer_inventory(os.path.join(ROOT, 'examples', EXAMPLES[name]))
    hostvars = {}
    for host in manager.get_hosts():
        found = dict(manager_variables.get_vars(host=host, include_hostvars=False))
        if stripped:
            found = dict((key, value) for key, value in found.items()
                         if KEPT.match(key) and key not in PROFILE_VARIABLES)
        found.update(variables or {})
        hostvars[host.name] = found
    return manager.get_groups_dict(), hostvars


def origins(name, stripped=False, variables=None):
    """({host: {key: (shown value, origin)}} of every planned host's profile, the hosts' variables,
    the cluster's hosts)."""
    groups, hostvars = example(name, stripped, variables)
    planner = InventoryPlanner(groups, hostvars)
    profiles = planner.profiles()
    found = dict((host, dict((key, (value, origin)) for key, value, origin in values_with_origins(profile)))
                 for host, profile in profiles.items())
    return found, hostvars, sorted(planner.index.members['cluster'])


@pytest.mark.parametrize('name', sorted(EXAMPLES))
def test_every_origin_of_the_examples_as_they_are_is_flat_and_names_a_variable_that_is_set(name):
    found, hostvars, _cluster = origins(name)
    assert found
    for host, values in found.items():
        for key, (value, origin) in values.items():
            where = '%s %s %s=%s (%s)' % (name, host, key, value, origin)
            assert '(' not in origin and ')' not in origin, where
            variable = VARIABLE_PREFIX + key
            if given(hostvars[host].get(variable)):
                assert origin == variable, where
            elif re.match(r'^[a-z][a-z0-9_]*$', origin) and origin != 'default':
                assert given(hostvars[host].get(origin)), where
            if key == 'installer' and value == 'none' and not given(hostvars[host].get(variable)):
                assert origin == NO_INSTALLER_ORIGIN, where


KUBESPRAY_ADDONS_OFF = {'enable_nodelocaldns': False}


@pytest.mark.parametrize('name, variables, key, value, origin', [
    # kubespray: each add-on by the variable that switched it on (not the first one looked at).
    ('kubespray', {'metallb_enabled': False, 'ingress_nginx_enabled': True, 'metrics_server_enabled': True},
     'addons', '[nodelocaldns, ingress, metrics-server]',
     'nodelocaldns: kubespray default of enable_nodelocaldns; ingress: ingress_nginx_enabled; '
     'metrics-server: metrics_server_enabled'),
    ('kubespray', {'metallb_enabled': True, 'enable_nodelocaldns': False}, 'addons', '[metallb]',
     'metallb: metallb_enabled'),
    ('kubespray', KUBESPRAY_ADDONS_OFF, 'addons', '[]',
     'no add-on on: enable_nodelocaldns false; kubespray defaults of metallb_enabled, kube_vip_enabled, '
     'ingress_nginx_enabled, metrics_server_enabled'),
    ('kubespray', {'metallb_enabled': True}, 'metallb_speaker', 'true',
     'kubespray default of metallb_speaker_enabled: follows metallb_enabled'),
    ('kubespray', {}, 'installer', 'kubespray', 'the host is in groups of kubespray'),
    ('kubespray', {}, 'distribution', 'kubeadm', 'kubespray inventory'),
    ('kubespray', {}, 'cni', '[calico]', 'kubespray default of kube_network_plugin'),
    ('kubespray', {'kube_network_plugin': 'cilium'}, 'cni', '[cilium]', 'kube_network_plugin'),
    # The encryption type decides nothing while encryption is off.
    ('kubespray', {'kube_network_plugin': 'cilium', 'cilium_encryption_type': 'wireguard'}, 'wireguard', 'false',
     'kubespray default of cilium_encryption_enabled'),
    ('kubespray', {'kube_network_plugin': 'cilium', 'cilium_encryption_enabled': True}, 'ipsec', 'true',
     'cilium_encryption_enabled, kubespray default of cilium_encryption_type'),
    ('kubespray', {}, 'calico_bgp_peering', 'mesh', 'kubespray default of peer_with_calico_rr; calico_rr has no hosts'),
    ('kubespray', {'peer_with_calico_rr': True}, 'calico_bgp_peering', 'route_reflectors', 'peer_with_calico_rr'),
    ('kubespray', {}, 'calico_encapsulation', 'vxlan', 'kubespray default of calico_vxlan_mode'),
    ('kubespray', {'calico_network_backend': 'bird', 'calico_ipip_mode': 'Always', 'calico_vxlan_mode': 'Never'},
     'calico_encapsulation', 'ipip', 'calico_ipip_mode'),
    ('kubespray', {'calico_vxlan_mode': 'CrossSubnet'}, 'pod_interfaces', '[]',
     'calico_vxlan_mode CrossSubnet: pods routed over the node network within a subnet'),
    ('kubespray', {'calico_network_backend': 'bird', 'calico_ipip_mode': 'Never', 'calico_vxlan_mode': 'Never'},
     'pod_interfaces', '[]', 'default for calico encapsulation none: no encapsulation'),
    ('kubespray', {}, 'kube_proxy', 'ipvs', 'kubespray default of kube_proxy_mode'),
    ('kubespray', {'kube_proxy_remove': True}, 'kube_proxy', 'none', 'kube_proxy_remove'),
    ('kubespray', {'calico_bpf_enabled': True}, 'kube_proxy', 'none', 'calico_bpf_enabled'),
    ('kubespray', {'kube_apiserver_port': 8443}, 'api_port', '8443', 'kube_apiserver_port'),
    ('kubespray', {}, 'pod_cidrs', '[10.233.64.0/18]', 'kubespray default of kube_pods_subnet'),
    ('kubespray', {'kube_version': 'v1.31.4'}, 'kubernetes_version', 'v1.31.4', 'kube_version'),
    ('kubespray', {'kube_network_plugin': 'flannel', 'flannel_backend_type': 'host-gw'}, 'flannel_vxlan_port', '8472',
     'kernel default; kubespray writes flannel_vxlan_port only when flannel_backend_type is exactly vxlan'),
    ('kubespray', {'kube_vip_enabled': True}, 'kube_vip_metrics_port', '2112',
     "kube-vip's own default :2112; kubespray's manifest sets prometheus_server only with kube_vip_metrics_enabled"),
    ('kubespray', {'kubeports_addons': ['ingress'], 'ingress_nginx_enabled': False}, 'addons', '[ingress]',
     'kubeports_addons'),
    # Kubean runs kubespray: a declared DCE 5 cluster takes DCE 5's defaults, named as such.
    ('kubean-dce5', {'kubeports_dce5_cluster': 'global', 'kube_network_plugin': 'cilium'}, 'cilium_hubble', 'true',
     'DCE 5 default of cilium_enable_hubble'),
    ('kubean-dce5', {'kubeports_dce5_cluster': 'global', 'kube_vip_enabled': True}, 'kube_vip_metrics_port', '2112',
     'DCE 5 default of kube-vip metrics'),
    ('kubean-dce5', {'kubeports_installer': 'kubean'}, 'installer', 'kubespray', 'kubeports_installer'),
    ('kubean-dce5', {'kube_network_plugin': 'calico', 'kube_pods_subnet': '10.244.0.0/16'}, 'pod_cidrs',
     '[10.244.0.0/16]', 'kube_pods_subnet'),
    # k3s-ansible: the server's flags and config, K3s's defaults by the flag they stand for.
    ('k3s', {}, 'installer', 'k3s-ansible', 'the host is in groups of k3s-ansible'),
    ('k3s', {}, 'k3s_datastore', 'embedded_etcd',
     'k3s-ansible: 3 hosts in group server, the first started with --cluster-init'),
    ('k3s', {}, 'flannel_vxlan_port', '8472', 'K3s default: flannel vxlan without a Port takes the kernel default'),
    ('k3s', {}, 'flannel_backend', 'vxlan', 'K3s default of --flannel-backend'),
    ('k3s', {'extra_server_args': '--flannel-backend=host-gw'}, 'flannel_backend', 'host-gw',
     'extra_server_args of 192.0.2.81 --flannel-backend'),
    ('k3s', {}, 'addons', '[]', 'K3s default of --embedded-registry: off'),
    ('k3s', {'extra_server_args': '--embedded-registry'}, 'addons', '[spegel]',
     'extra_server_args of 192.0.2.81 --embedded-registry'),
    ('k3s', {'server_config_yaml': 'cluster-cidr: 10.52.0.0/16'}, 'pod_cidrs', '[10.52.0.0/16]',
     'server_config_yaml of 192.0.2.81 cluster-cidr'),
    ('k3s', {'k3s_version': 'v1.30.2+k3s1'}, 'kubernetes_version', 'v1.30.2+k3s1', 'k3s_version'),
    # No installer's groups: the installer is none and says so; values come from kubeports_* or defaults.
    ('rke-rancher', {}, 'installer', 'none', NO_INSTALLER_ORIGIN),
    ('rke-rancher', {'kubeports_distribution': 'rke'}, 'nodeport_udp', 'true', 'always for rke'),
    ('rke-rancher', {'kubeports_distribution': 'rke'}, 'cni', '[canal]', 'default for rke'),
    ('rke-rancher', {'kubeports_distribution': 'rke'}, 'pod_interfaces', '[flannel.1, flannel-v6.1, cali+]',
     'default for canal with flannel VXLAN'),
    ('rke-rancher', {'kubeports_distribution': 'rke', 'kubeports_cni': 'calico'}, 'cni', '[calico]', 'kubeports_cni'),
])
def test_the_origin_names_the_variable_that_decided(name, variables, key, value, origin):
    found, _hostvars, cluster = origins(name, stripped=True, variables=variables)
    # Servers read their own variables (named without "of <server>"); agents name the first server's.
    agents = example(name)[0].get('agent') or ()
    hosts = [host for host in cluster if ' of 192.0.2.81 ' not in origin or host in agents]
    assert hosts
    for host in hosts:
        assert found[host][key] == (value, origin), host


def test_the_notes_are_listed_apart_on_the_console_and_in_plan_md():
    groups, hostvars = example('k3s', stripped=True)
    planner = InventoryPlanner(groups, hostvars)
    cluster = planner.clusters()[0]
    note = [text for text in cluster['notes'] if "manage_firewall is on" in text]
    assert note
    lines = console_lines(cluster)
    assert lines[lines.index('Notes:') + 1:] == ['  - %s' % text for text in cluster['notes']]
    text = markdown([], clusters=[cluster])
    assert '\nNotes:\n\n- %s\n' % note[0] in text
    assert '| addons | [] | K3s default of --embedded-registry: off |' in text
