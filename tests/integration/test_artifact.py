"""The built artifact as a new user gets it, on a clean controller: a venv with only
ansible-core (the pinned release, and the oldest one meta/runtime.yml supports) and the
collection's declared requirements, the artifact installed with the
documented ``requirements.yml`` into an empty collections path. It carries its licence and
none of the development files; ansible-doc renders every plugin and role; the documented
commands run as written, by FQCN, against the lab: plan, audit, open_ports in check mode,
apply, a second apply that changes nothing, verify, audit, uninstall.
"""

import json
import os
import re
import subprocess
import sys
import tarfile

import pytest

from conftest import ROOT, cluster_layer

DIST = ROOT / '.build' / 'dist'
CLUSTER = cluster_layer(['node1'], ['node3', 'node4', 'node5'], ['node2'])
DEVELOPMENT_FILES = ('ansible.cfg', '.ansible-lint', 'tools/', 'docs/generate.py', 'examples/lab-demo/',
                     'tests/integration/', 'requirements-dev.txt', 'Makefile', '.pytest_cache', 'benchmarks/')
INSTALLED = ('ansible_collections', 'kubeports', 'firewall')


def _ansible_core(which):
    """requirements-dev.txt's ansible-core pin, or the oldest supported one (its "# oldest:" line)."""
    prefix = 'ansible-core==' if which == 'pinned' else '# oldest: ansible-core=='
    with open(str(ROOT / 'requirements-dev.txt')) as handle:
        return next(line.strip() for line in handle if line.startswith(prefix)).replace('# oldest: ', '')


def _run(argv, env, cwd, timeout=900):
    return subprocess.run([str(arg) for arg in argv], capture_output=True, text=True, env=env, cwd=str(cwd),
                          timeout=timeout, check=False)


@pytest.fixture(scope='module', params=['pinned', 'oldest'])
def fresh(request, lab, tmp_path_factory):
    """(work directory, environment, tarball): a clean controller with the artifact installed."""
    tarballs = sorted(DIST.glob('kubeports-firewall-*.tar.gz'))
    assert tarballs, 'no built artifact in %s (make install builds it)' % DIST
    work = tmp_path_factory.mktemp('artifact')
    controller = work / 'controller'
    base_python = getattr(sys, '_base_executable', None) or sys.executable
    made = _run([base_python, '-m', 'venv', controller], dict(os.environ), work, timeout=300)
    assert made.returncode == 0, made.stderr
    development_bin = os.path.dirname(sys.executable)
    system_path = os.pathsep.join(part for part in os.environ.get('PATH', '').split(os.pathsep)
                                  if part and os.path.realpath(part) != os.path.realpath(development_bin))
    env = dict((key, value) for key, value in os.environ.items()
               if not key.startswith(('ANSIBLE_', 'VIRTUAL_ENV', 'PYTHON', 'KUBEPORTS_')))
    env.update(PATH=str(controller / 'bin') + os.pathsep + system_path, PWD=str(work),
               ANSIBLE_COLLECTIONS_PATH=str(work / 'collections'), ANSIBLE_HOST_KEY_CHECKING='False',
               ANSIBLE_NOCOLOR='1')
    pip = controller / 'bin' / 'pip'
    core = _run([pip, 'install', '-q', _ansible_core(request.param)], env, work)
    assert core.returncode == 0, core.stdout[-2000:] + core.stderr[-2000:]
    # As getting_started documents it: a requirements.yml naming the tarball.
    (work / 'requirements.yml').write_text(
        'collections:\n  - name: %s\n    type: file\n' % json.dumps(str(tarballs[-1])))
    installed = _run(['ansible-galaxy', 'collection', 'install', '-r', 'requirements.yml'], env, work, timeout=300)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    collection = work / 'collections' / os.path.join(*INSTALLED)
    assert (collection / 'MANIFEST.json').is_file(), installed.stdout
    declared = _run([pip, 'install', '-q', '-r', collection / 'requirements.txt'], env, work)
    assert declared.returncode == 0, declared.stdout[-2000:] + declared.stderr[-2000:]
    inventory = work / 'inventory'
    inventory.mkdir()
    (inventory / '00-lab.yml').write_text(open(lab.inventory_path).read())
    (inventory / '10-cluster.yml').write_text(json.dumps(CLUSTER))
    return work, env, tarballs[-1]


def _playbook(fresh, *argv):
    work, env, _tarball = fresh
    done = _run(['ansible-playbook'] + list(argv[:1]) + ['-i', 'inventory'] + list(argv[1:]), env, work)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert 'failed=0' in done.stdout and 'unreachable=0' in done.stdout
    return done.stdout


def _changed(stdout):
    return sum(int(count) for count in re.findall(r'changed=(\d+)', stdout.split('PLAY RECAP', 1)[1]))


def test_the_controller_has_only_ansible_core_and_the_declared_requirements(fresh):
    work, env, _tarball = fresh
    frozen = _run(['pip', 'freeze', '--all'], env, work).stdout.lower()
    names = set(line.split('==')[0] for line in frozen.split())
    assert 'ansible-core' in names and 'netaddr' in names
    assert not names & {'ansible', 'pytest', 'molecule', 'ansible-lint', 'jmespath', 'antsibull-docs'}, names
    which = _run(['sh', '-c', 'command -v ansible-playbook'], env, work).stdout.strip()
    assert which == str(work / 'controller' / 'bin' / 'ansible-playbook')


def test_the_artifact_ships_its_licence_and_no_development_file(fresh):
    _work, _env, tarball = fresh
    with tarfile.open(str(tarball)) as archive:
        names = archive.getnames()
        manifest = json.load(archive.extractfile('MANIFEST.json'))
    assert 'LICENSE' in names and 'MANIFEST.json' in names and 'requirements.txt' in names
    assert 'meta/execution-environment.yml' in names and 'bindep.txt' in names
    for development in DEVELOPMENT_FILES:
        assert not any(name == development.rstrip('/') or name.startswith(development) for name in names), development
    assert manifest['collection_info']['license_file'] == 'LICENSE'
    assert 'example.invalid' not in json.dumps(manifest)


def test_ansible_doc_renders_every_plugin_and_role(fresh):
    work, env, _tarball = fresh
    for kind in ('module', 'lookup', 'filter', 'role'):
        listed = _run(['ansible-doc', '-t', kind, '-l', 'kubeports.firewall', '--json'], env, work, timeout=300)
        assert listed.returncode == 0, listed.stderr
        names = sorted(json.loads(listed.stdout))
        assert names, kind
        for name in names:
            shown = _run(['ansible-doc', '-t', kind, name], env, work, timeout=300)
            assert shown.returncode == 0 and 'ERROR' not in shown.stderr, (kind, name, shown.stderr)


def test_the_documented_commands_run_as_written(fresh):
    work = fresh[0]
    reports = work / 'kubeports-reports'
    _playbook(fresh, 'kubeports.firewall.plan')
    plan = json.loads((reports / 'plan.json').read_text())
    assert set(plan['hosts']) >= {'node1', 'node3'}
    # Every reference a user sees is a public page.
    for rule_list in plan['rule_lists'].values():
        for rule in rule_list['rules']:
            assert all(reference.startswith('https://') for reference in rule['references']), rule
    assert 'https://' in (reports / 'plan.md').read_text()

    _playbook(fresh, 'kubeports.firewall.audit')
    assert json.loads((reports / 'audit.json').read_text())['hosts']

    checked = _playbook(fresh, 'kubeports.firewall.open_ports', '--check', '--diff')
    assert _changed(checked) > 0

    applied = _playbook(fresh, 'kubeports.firewall.open_ports')
    assert _changed(applied) > 0
    again = _playbook(fresh, 'kubeports.firewall.open_ports')
    assert _changed(again) == 0, again[-3000:]

    _playbook(fresh, 'kubeports.firewall.verify')
    verified = json.loads((reports / 'verify.json').read_text())
    assert verified['summary']['mismatches'] == 0, verified['summary']

    _playbook(fresh, 'kubeports.firewall.audit')
    audit = json.loads((reports / 'audit.json').read_text())
    for host, findings in audit['hosts'].items():
        assert not findings['missing'] and not findings['extra'], (host, findings)

    removed = _playbook(fresh, 'kubeports.firewall.open_ports', '-e', 'kubeports_state=absent')
    assert _changed(removed) > 0
    _playbook(fresh, 'kubeports.firewall.audit')
    audit = json.loads((reports / 'audit.json').read_text())
    assert all(not findings['extra'] for findings in audit['hosts'].values())
    assert any(findings['missing'] for findings in audit['hosts'].values())
