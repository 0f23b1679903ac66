"""The roles' argument specs declare every kubeports_* variable the planner, the roles and the
playbooks read, with the planner's types and defaults, and accept every value the planner accepts."""

import os
import re

import pytest
import yaml

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.profile import (
    CIDR_SETS, KNOWN_VARIABLES, OPTIONS, PLANNER_VARIABLES, VARIABLE_PREFIX, resolve)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
ROLES = ('open_ports', 'verify', 'audit')
# The role each playbook runs (plan.yml runs none: open_ports declares its variables).
PLAYBOOK_ROLES = {'open_ports.yml': 'open_ports', 'verify.yml': 'verify', 'audit.yml': 'audit', 'plan.yml': 'open_ports'}
PLANNER_READS = set(VARIABLE_PREFIX + name for name in list(OPTIONS) + list(PLANNER_VARIABLES)) | set(
    VARIABLE_PREFIX + var for var, _default, _doc in CIDR_SETS.values())
NAME = re.compile(r'(?<![_\w])kubeports_[a-z0-9_]+')
KIND_TYPES = {'choice': ('str', None), 'list': ('list', 'str'), 'interfaces': ('list', 'str'), 'bool': ('bool', None),
              'port': ('int', None), 'range': ('raw', None), 'version': ('raw', None)}


def spec(role):
    with open(os.path.join(ROOT, 'roles', role, 'meta', 'argument_specs.yml'), encoding='utf-8') as handle:
        return yaml.safe_load(handle)['argument_specs']


def names_in(*paths):
    used = set()
    for path in paths:
        with open(path, encoding='utf-8') as handle:
            used.update(NAME.findall(handle.read()))
    return used


def role_files(role):
    return [os.path.join(ROOT, 'roles', role, folder, name) for folder in ('tasks', 'defaults', 'vars', 'handlers')
            if os.path.isdir(os.path.join(ROOT, 'roles', role, folder))
            for name in sorted(os.listdir(os.path.join(ROOT, 'roles', role, folder)))]


@pytest.mark.parametrize('role', ROLES)
def test_every_entry_point_declares_what_its_role_and_the_planner_read(role):
    for entry, entry_spec in spec(role).items():
        declared = set(entry_spec['options'])
        read = names_in(*role_files(role)) | PLANNER_READS
        assert not read - declared, '%s.%s misses %s' % (role, entry, sorted(read - declared))
        # Nothing declared that the planner would refuse as unknown.
        assert not declared - KNOWN_VARIABLES, sorted(declared - KNOWN_VARIABLES)


@pytest.mark.parametrize('playbook, role', sorted(PLAYBOOK_ROLES.items()))
def test_the_variables_of_each_playbook_are_declared_by_the_role_it_runs(playbook, role):
    used = names_in(os.path.join(ROOT, 'playbooks', playbook))
    declared = set(spec(role)['main']['options'])
    assert used and not used - declared, sorted(used - declared)


def test_every_playbook_is_mapped():
    playbooks = set(name for name in os.listdir(os.path.join(ROOT, 'playbooks'))
                    if name.endswith('.yml') and names_in(os.path.join(ROOT, 'playbooks', name)))
    assert playbooks <= set(PLAYBOOK_ROLES), sorted(playbooks - set(PLAYBOOK_ROLES))


def test_every_known_variable_is_declared_by_some_role():
    declared = set().union(*(spec(role)['main']['options'] for role in ROLES))
    assert declared == set(KNOWN_VARIABLES), (sorted(set(KNOWN_VARIABLES) - declared), sorted(declared - set(KNOWN_VARIABLES)))


@pytest.mark.parametrize('role', ROLES)
@pytest.mark.parametrize('name', sorted(OPTIONS))
def test_profile_options_have_the_planner_type_and_default_and_no_stricter_choices(role, name):
    option = OPTIONS[name]
    declared = spec(role)['main']['options'][VARIABLE_PREFIX + name]
    kind, elements = KIND_TYPES[option.kind]
    assert declared['type'] == kind and declared.get('elements') == elements
    # The planner accepts any case and aliases and names the host: the spec does not restrict the values.
    assert 'choices' not in declared
    for choice in option.choices or ():
        assert 'V(%s)' % choice in ' '.join(declared['description'])
    if option.default is None:
        assert 'default' not in declared
    else:
        assert declared['default'] == option.default


@pytest.mark.parametrize('role', ROLES)
def test_cidr_sets_have_the_planner_defaults(role):
    options = spec(role)['main']['options']
    for var, default, _doc in CIDR_SETS.values():
        assert options[VARIABLE_PREFIX + var]['type'] == 'list'
        assert options[VARIABLE_PREFIX + var]['default'] == default


# Values the planner accepts (it normalizes them); Ansible's validation must let them through.
ACCEPTED = {
    'kubeports_installer': 'Kubean',
    'kubeports_distribution': 'KubeSpray',
    'kubeports_cni': 'Calico',
    'kubeports_addons': ['MetalLB', 'ingress'],
    'kubeports_kube_proxy': 'IPVS',
    'kubeports_calico_backend': 'Bird',
    'kubeports_ip_families': ['IPv4', 'IPv6'],
    'kubeports_kubernetes_version': 1.3,
    'kubeports_api_port': '6443',
    'kubeports_nodeport_range': '30000-32767',
    'kubeports_calico_typha': 'yes',
    'kubeports_pod_interfaces': 'cali+',
    'kubeports_admin_cidrs': '192.0.2.0/24',
    'kubeports_peer_cidrs': {'rancher': ['198.51.100.7']},
    'kubeports_address': ['192.0.2.1', '2001:db8::1'],
    'kubeports_extra_rules': [{'protocol': 'tcp', 'port': 9000, 'to': ['worker'], 'from': ['cluster']}],
}


@pytest.mark.parametrize('role', ROLES)
def test_values_the_planner_accepts_pass_the_argument_spec(role):
    variables = dict((name, value) for name, value in ACCEPTED.items() if not name.startswith('kubeports_peer')
                     and name not in ('kubeports_address', 'kubeports_extra_rules'))
    resolve(variables)  # the planner takes them
    options = spec(role)['main']['options']
    argument_spec = dict((name, dict((key, value) for key, value in declared.items() if key != 'description'))
                         for name, declared in options.items())
    result = ArgumentSpecValidator(argument_spec).validate(dict(ACCEPTED), validate_role_argument_spec=True)
    assert not result.error_messages, result.error_messages
