"""Every plugin's EXAMPLES runs as written, with the installed collection, against the kubespray
example inventory (examples/kubespray/inventory.ini).

Two levels, named in each test's id:

- ``run``: the example's tasks run as written. Planning, lookups and filters run on the
  controller and touch no host; the play uses ``connection: local`` so that nothing connects.
- ``argspec``: tasks of the modules that read or change a host's firewall or open sockets
  (HOST_MODULES) cannot run here. Each such task keeps its name, vars, conditions and loops,
  and its arguments are templated and validated against the module's own argument spec with
  ``ansible.builtin.validate_argument_spec``; its registered result is the module's documented
  return sample, so the example's later tasks run on it. Every other task of the example runs.
"""

import ast
import glob
import importlib
import os

import pytest
import yaml

from helpers import ROOT, KUBESPRAY, is_installed, run_playbook

pytestmark = pytest.mark.skipif(not is_installed(), reason='needs the installed collection (make install)')

NAMESPACE = 'kubeports.firewall.'
# Modules that read or change the host's firewall, or listen and probe on its network.
HOST_MODULES = ('port_rules', 'port_rules_confirm', 'port_rules_info', 'probe_listeners', 'probe_ports')
TASK_KEYWORDS = frozenset((
    'name', 'vars', 'when', 'loop', 'loop_control', 'register', 'run_once', 'delegate_to', 'check_mode', 'diff',
    'changed_when', 'failed_when', 'ignore_errors', 'tags', 'become', 'no_log', 'until', 'retries', 'delay',
    'environment', 'notify', 'args', 'with_items', 'with_dict', 'any_errors_fatal'))


def _python_docs(path):
    """(DOCUMENTATION, EXAMPLES, RETURN) strings of a plugin's Python file, without importing it."""
    found = {}
    for node in ast.parse(open(path).read()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ('DOCUMENTATION', 'EXAMPLES', 'RETURN'):
                found[node.targets[0].id] = node.value.value
    return found


def _docs():
    """{(kind, name): {'DOCUMENTATION': dict, 'EXAMPLES': [task], 'RETURN': dict}} of every plugin."""
    docs = {}
    for kind in ('lookup', 'filter', 'modules', 'action'):
        for path in sorted(glob.glob(os.path.join(ROOT, 'plugins', kind, '*.py'))):
            texts = _python_docs(path)
            if texts:
                docs[(kind, os.path.basename(path)[:-3])] = dict(
                    (key, yaml.safe_load(text) or {}) for key, text in texts.items())
        for path in sorted(glob.glob(os.path.join(ROOT, 'plugins', kind, '*.yml'))):
            doc = yaml.safe_load(open(path))
            if isinstance(doc.get('EXAMPLES'), str):
                doc['EXAMPLES'] = yaml.safe_load(doc['EXAMPLES'])
            docs[(kind, os.path.basename(path)[:-4])] = doc
    return docs


DOCS = _docs()


def _module_docs(name):
    return DOCS.get(('modules', name)) or {}


def _module_of(task):
    keys = [key for key in task if key not in TASK_KEYWORDS]
    assert len(keys) == 1, 'one module per task: %r' % (keys,)
    return keys[0]


EMPTY = {'str': '', 'int': 0, 'float': 0.0, 'bool': False, 'list': [], 'dict': {}}


def _sample(returned):
    """The documented return values as one result: each key's sample, its contained keys', or an
    empty value of its type."""
    result = {}
    for key, spec in (returned or {}).items():
        if 'sample' in spec:
            result[key] = spec['sample']
        elif spec.get('contains') and spec.get('type') != 'list':
            result[key] = _sample(spec['contains'])
        else:
            result[key] = EMPTY.get(spec.get('type'))
    return result


class _Captured(Exception):
    pass


def _argument_spec(name):
    """The argument spec a module gives AnsibleModule (its main() run up to AnsibleModule)."""
    module = importlib.import_module('ansible_collections.kubeports.firewall.plugins.modules.' + name)
    captured = {}

    def capture(**kwargs):
        captured.update(kwargs)
        raise _Captured()

    original = module.AnsibleModule
    module.AnsibleModule = capture
    try:
        module.main()
    except _Captured:
        pass
    finally:
        module.AnsibleModule = original
    return captured['argument_spec']


# Read when the tests are collected, before a test installs ansible-core's collection loader.
ARGUMENT_SPECS = dict((name, _argument_spec(name)) for name in HOST_MODULES)


def _checked(task):
    """A host module's task as the check of its arguments, and the task giving it its documented result."""
    module = _module_of(task)
    name = module[len(NAMESPACE):]
    docs = _module_docs(name)
    check = dict((key, value) for key, value in task.items() if key in TASK_KEYWORDS and key not in ('check_mode', 'diff'))
    check['name'] = '%s (arguments of %s checked, not run)' % (task.get('name', name), module)
    check['ansible.builtin.validate_argument_spec'] = {
        'argument_spec': ARGUMENT_SPECS[name],
        'provided_arguments': task[module] or {}}
    tasks = [check]
    if task.get('register'):
        registered = task['register']
        tasks.append({'name': 'the documented result of %s' % module, 'when': '%s is not skipped' % registered,
                      'ansible.builtin.set_fact': {registered: '{{ %s | combine(%r) }}' % (registered, _sample(docs.get('RETURN')))}})
    return tasks


def _level(tasks):
    return 'argspec' if any(_module_of(task)[len(NAMESPACE):] in HOST_MODULES for task in tasks
                            if _module_of(task).startswith(NAMESPACE)) else 'run'


def _playable(tasks):
    out = []
    for task in tasks:
        module = _module_of(task)
        if module.startswith(NAMESPACE) and module[len(NAMESPACE):] in HOST_MODULES:
            out.extend(_checked(task))
        else:
            out.append(task)
    return out


CASES = [pytest.param(kind, name, id='%s-%s-%s' % (_level(doc['EXAMPLES']), kind, name))
         for (kind, name), doc in sorted(DOCS.items()) if doc.get('EXAMPLES')]


def test_every_plugin_with_documentation_has_examples():
    missing = [name for (kind, name), doc in DOCS.items() if doc.get('DOCUMENTATION') and not doc.get('EXAMPLES')]
    assert not missing


@pytest.mark.parametrize('kind,name', CASES)
def test_examples_run_as_written(kind, name, tmp_path):
    tasks = DOCS[(kind, name)]['EXAMPLES']
    for task in tasks:
        module = _module_of(task)
        assert module.startswith(('ansible.builtin.', NAMESPACE)), 'EXAMPLES use FQCNs: %s' % module
    play = [{'name': 'EXAMPLES of %s %s' % (kind, name), 'hosts': 'all', 'gather_facts': False,
             'connection': 'local', 'tasks': _playable(tasks)}]
    playbook = tmp_path / 'examples.yml'
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    rc, output = run_playbook(playbook, KUBESPRAY)
    assert rc == 0, output
    assert 'failed=0' in output and 'failed=1' not in output, output


def test_argument_check_refuses_a_wrong_option(tmp_path):
    """The argspec level catches what it claims to: an option the module does not have."""
    task = {'name': 'wrong', 'kubeports.firewall.port_rules': {'rules': [], 'no_such_option': 1}}
    play = [{'hosts': 'cp1', 'gather_facts': False, 'connection': 'local', 'tasks': _playable([task])}]
    playbook = tmp_path / 'wrong.yml'
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    rc, output = run_playbook(playbook, KUBESPRAY)
    assert rc != 0 and 'no_such_option' in output, output
