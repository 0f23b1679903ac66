import pytest
from helpers import ROOT

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.profile import (
    DISTRIBUTION_ALIASES, INSTALLER_ALIASES, INSTALLER_NAMES, KNOWN_VARIABLES, NO_INSTALLER_ORIGIN, OPTIONS,
    check_variable_names, condition_holds, resolve)


@pytest.mark.parametrize('variables, key, expected', [
    ({}, 'distribution', 'kubeadm'),
    ({'kubeports_distribution': 'kubespray'}, 'distribution', 'kubeadm'),
    ({'kubeports_distribution': 'Kubean'}, 'distribution', 'kubeadm'),
    ({'kubeports_distribution': 'rke2'}, 'cni', ['canal']),
    ({'kubeports_distribution': 'k3s'}, 'cni', ['flannel']),
    ({}, 'cni', ['calico']),
    ({'kubeports_cni': 'cilium'}, 'cni', ['cilium']),
    ({'kubeports_cni': ['calico', 'spiderpool']}, 'cni', ['calico', 'spiderpool']),
    ({'kubeports_distribution': 'rke'}, 'addons', ['ingress']),
    ({'kubeports_distribution': 'rke'}, 'nodeport_udp', True),
    ({}, 'nodeport_udp', False),
    ({'kubeports_nodeport_udp': 'yes'}, 'nodeport_udp', True),
    ({}, 'ssh_port', 22),
    ({'ansible_port': 2222}, 'ssh_port', 2222),
    ({'ansible_port': 2222, 'kubeports_ssh_port': '22'}, 'ssh_port', 22),
    ({'kubeports_api_port': '443'}, 'api_port', 443),
    ({'kubeports_nodeport_range': '30000 - 31000'}, 'nodeport_range', '30000-31000'),
    ({}, 'api_clients_direct', True),
    ({'kubeports_rancher_cluster_type': 'custom'}, 'api_clients_direct', False),
    ({'kubeports_rancher_cluster_type': 'custom',
      'kubeports_rancher_authorized_cluster_endpoint': True}, 'api_clients_direct', True),
    ({'kubeports_kubernetes_version': 'v1.21.14'}, 'version_tuple', (1, 21)),
])
def test_resolve_without_installer(variables, key, expected):
    assert resolve(variables)[key] == expected


@pytest.mark.parametrize('variables, message', [
    ({'kubeports_distribution': 'openshift'}, "kubeports_distribution (host vars): unknown distribution 'openshift'"),
    ({'kubeports_cni': 'calcio'}, "kubeports_cni (host vars): unknown cni 'calcio'"),
    ({'kubeports_cni': ['calico', 'none']}, '"none" cannot be combined'),
    ({'kubeports_addons': ['metallb', 'traefik']}, "kubeports_addons (host vars): unknown addons 'traefik'"),
    ({'kubeports_api_port': 0}, "kubeports_api_port (host vars): invalid port 0"),
    ({'kubeports_api_port': 65536}, 'invalid port 65536'),
    ({'kubeports_api_port': '6443-6444'}, 'a single port is expected'),
    ({'kubeports_nodeport_range': '32767-30000'}, 'start is above end'),
    ({'kubeports_nodeport_range': 'all'}, "invalid port 'all'"),
    ({'kubeports_kubernetes_version': 'latest'}, "invalid Kubernetes version 'latest'"),
    ({'kubeports_calico_typha': 'maybe'}, "kubeports_calico_typha (host vars): expected a boolean, got 'maybe'"),
    ({'kubeports_calico_encapsulation': 'ipip'}, 'ipip encapsulation needs calico_backend: bird'),
    ({'kubeports_peer_cidrs': ['10.0.0.0/8']}, 'kubeports_peer_cidrs (host vars): expected a mapping'),
])
def test_resolve_rejects(variables, message):
    with pytest.raises(PlanError) as exc:
        resolve(variables)
    assert message in str(exc.value)


@pytest.mark.parametrize('variables, key, expected, holds', [
    ({}, 'distribution', 'kubeadm', True),
    ({}, 'distribution', ['rke', 'rke2'], False),
    ({'kubeports_cni': ['calico', 'spiderpool']}, 'cni', 'spiderpool', True),
    ({'kubeports_cni': ['calico']}, 'cni', ['cilium', 'flannel'], False),
    ({'kubeports_addons': ['metallb']}, 'addons', 'metallb', True),
    ({}, 'addons', 'metallb', False),
    ({'kubeports_calico_typha': True}, 'calico_typha', True, True),
    ({'kubeports_kubernetes_version': '1.22'}, 'kubernetes_version', '<1.23', True),
    ({'kubeports_kubernetes_version': '1.23'}, 'kubernetes_version', '<1.23', False),
    ({'kubeports_kubernetes_version': '1.23.4'}, 'kubernetes_version', '>=1.23', True),
    ({'kubeports_kubernetes_version': '1.9'}, 'kubernetes_version', '<1.22', True),
    ({'kubeports_kubernetes_version': '1.30'}, 'kubernetes_version', '1.30', True),
])
def test_condition_holds(variables, key, expected, holds):
    assert condition_holds(resolve(variables), key, expected) is holds


def test_every_kubeports_variable_of_the_collection_is_known():
    """The roles, playbooks, examples and docs use only variables the planner accepts."""
    import os
    import re
    root = ROOT
    used = set()
    for top in ('roles', 'playbooks', 'examples', 'docs'):
        for folder, _dirs, files in os.walk(os.path.join(root, top)):
            for name in files:
                with open(os.path.join(folder, name), encoding='utf-8', errors='replace') as handle:
                    used.update(re.findall(r'(?<![_\w])kubeports_[a-z0-9_]+', handle.read()))
    assert used and not used - KNOWN_VARIABLES, sorted(used - KNOWN_VARIABLES)


@pytest.mark.parametrize('name, message', [
    ('kubeports_cnii', 'kubeports_cnii (host h): unknown variable (did you mean kubeports_cni?)'),
    ('kubeports_admin_cidr', 'did you mean kubeports_admin_cidrs?'),
    ('kubeports_zzz', 'kubeports_zzz (host h): unknown variable; the known ones'),
])
def test_unknown_variables_are_named_with_the_nearest_known_one(name, message):
    with pytest.raises(PlanError) as exc:
        check_variable_names(['ansible_host', '__kubeports_plan', name], 'host h')
    assert message in str(exc.value)


@pytest.mark.parametrize('key, accepted, aliases', [
    ('installer', INSTALLER_NAMES, INSTALLER_ALIASES),
    ('distribution', OPTIONS['distribution'].choices, DISTRIBUTION_ALIASES),
])
def test_an_unknown_choice_lists_every_accepted_value_and_alias(key, accepted, aliases):
    with pytest.raises(PlanError) as exc:
        resolve({'kubeports_%s' % key: 'kubeadm-ansible'})
    message = str(exc.value)
    assert "kubeports_%s (host vars): unknown %s 'kubeadm-ansible' (choose from " % (key, key) in message
    for value in accepted:
        assert value in message
    for alias, meant in aliases.items():
        assert '%s for %s' % (alias, meant) in message
        assert resolve({'kubeports_%s' % key: alias})[key] == meant


def test_the_installer_of_a_host_in_no_installers_groups_says_so():
    profile = resolve({})
    assert profile['installer'] is None and profile['origins']['installer'] == NO_INSTALLER_ORIGIN
    assert profile['origins']['calico_bgp_peering'] == 'default'
