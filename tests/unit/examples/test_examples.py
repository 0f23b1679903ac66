"""The example inventories: one per installer in the installer's own shape and variables, each
with its plan committed beside it, which the plan playbook still produces (make examples)."""

import json
import os
import re
import subprocess
import sys

import pytest

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.profile import INSTALLER_NAMES

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
EXAMPLES = os.path.join(ROOT, 'examples')
COLLECTIONS = os.environ.get('KUBEPORTS_COLLECTIONS_PATH', os.path.join(ROOT, '.build', 'collections'))
BIN = os.path.dirname(sys.executable)
INVENTORY_NAMES = ('inventory.ini', 'inventory.yml', 'hosts.yml')
# Examples that need kubeports_* variables (nothing an installer says tells the DCE 5 cluster kind
# or an RKE cluster managed by Rancher); they live apart, examples/overrides/README.md says why.
OVERRIDES = os.path.join(EXAMPLES, 'overrides')
# Keys and text of the reports that change from run to run.
VOLATILE_KEYS = ('generated', 'generated_at', 'time', 'timestamp', 'date')
TIMESTAMP = re.compile(r'\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?( ?(Z|UTC|[+-]\d{2}:?\d{2}))?')


def examples():
    """(example directory relative to examples/, its inventory) for every example with a plan/."""
    found = []
    for folder, dirs, _files in os.walk(EXAMPLES):
        if 'plan' in dirs:
            inventory = [name for name in INVENTORY_NAMES if os.path.exists(os.path.join(folder, name))]
            assert inventory, '%s has a plan/ but no inventory' % folder
            found.append((os.path.relpath(folder, EXAMPLES), inventory[0]))
    return sorted(found)


EXAMPLE_LIST = examples()
INSTALLER_EXAMPLES = [(example, inventory) for example, inventory in EXAMPLE_LIST if not example.startswith('overrides')]


def stable(value):
    """A report with what changes between runs left out."""
    if isinstance(value, dict):
        return dict((key, stable(item)) for key, item in value.items() if key not in VOLATILE_KEYS)
    if isinstance(value, list):
        return [stable(item) for item in value]
    if isinstance(value, str):
        return TIMESTAMP.sub('<time>', value)
    return value


def installer_of(example):
    with open(os.path.join(EXAMPLES, example, 'plan', 'plan.json'), encoding='utf-8') as handle:
        return set(cluster['values']['installer']['value'] for cluster in json.load(handle)['clusters'])


def test_one_example_per_installer():
    covered = set()
    for example, _inventory in INSTALLER_EXAMPLES:
        covered |= installer_of(example)
    assert covered >= set(INSTALLER_NAMES) - {'none'}, sorted(set(INSTALLER_NAMES) - covered)


@pytest.mark.parametrize('example, inventory', INSTALLER_EXAMPLES)
def test_installer_examples_use_only_the_installer_variables(example, inventory):
    for folder, _dirs, files in os.walk(os.path.join(EXAMPLES, example)):
        if os.path.basename(folder) == 'plan':
            continue
        for name in files:
            with open(os.path.join(folder, name), encoding='utf-8') as handle:
                assert 'kubeports_' not in handle.read(), os.path.join(folder, name)


def test_the_examples_with_overrides_say_why():
    with open(os.path.join(OVERRIDES, 'README.md'), encoding='utf-8') as handle:
        text = handle.read()
    for example, _inventory in EXAMPLE_LIST:
        if example.startswith('overrides'):
            assert os.path.basename(example) in text


@pytest.mark.skipif(not os.path.isdir(os.path.join(COLLECTIONS, 'ansible_collections', 'kubeports', 'firewall')),
                    reason='collection not installed: run make install')
@pytest.mark.parametrize('example, inventory', EXAMPLE_LIST)
def test_committed_plan_is_what_the_plan_playbook_writes(tmp_path, example, inventory):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCALHOST_WARNING='0', PATH=BIN + os.pathsep + os.environ.get('PATH', ''))
    env.pop('ANSIBLE_CONFIG', None)
    result = subprocess.run([os.path.join(BIN, 'ansible-playbook'), 'kubeports.firewall.plan',
                             '-i', os.path.join('examples', example, inventory), '-e', 'kubeports_report_dir=%s' % tmp_path],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    committed = os.path.join(EXAMPLES, example, 'plan')
    written = sorted(os.listdir(str(tmp_path)))
    assert written == sorted(os.listdir(committed)), 'run make examples'
    for name in written:
        with open(os.path.join(committed, name), encoding='utf-8') as handle:
            old = handle.read().replace(committed, '<report_dir>')
        new = (tmp_path / name).read_text(encoding='utf-8').replace(str(tmp_path), '<report_dir>')
        if name.endswith('.html'):
            new = new.replace(ROOT + os.sep, '')  # make examples writes the inventory's path from the root
        if name.endswith('.json'):
            old, new = stable(json.loads(old)), stable(json.loads(new))
        else:
            old, new = TIMESTAMP.sub('<time>', old), TIMESTAMP.sub('<time>', new)
        assert old == new, '%s/plan/%s is stale: run make examples' % (example, name)


VALIDATE = '''
- hosts: all
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.validate_argument_spec:
        argument_spec: "{{ (lookup('ansible.builtin.file', '%s') | from_yaml).argument_specs.main.options }}"
'''


@pytest.mark.parametrize('role', ['open_ports', 'verify', 'audit'])
@pytest.mark.parametrize('example, inventory', EXAMPLE_LIST)
def test_every_host_of_the_examples_passes_the_roles_argument_validation(tmp_path, role, example, inventory):
    """Ansible validates the same variables when a role starts on a host."""
    playbook = tmp_path / 'validate.yml'
    playbook.write_text(VALIDATE % os.path.join(ROOT, 'roles', role, 'meta', 'argument_specs.yml'))
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0',
               PATH=BIN + os.pathsep + os.environ.get('PATH', ''))
    env.pop('ANSIBLE_CONFIG', None)
    result = subprocess.run([os.path.join(BIN, 'ansible-playbook'), str(playbook), '-i', os.path.join(EXAMPLES, example, inventory)],
                            cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'failed=0' in result.stdout and 'ok=0' not in result.stdout
