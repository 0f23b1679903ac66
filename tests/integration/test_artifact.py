"""The built artifact as a new user gets it: installed into an empty collections path, it
carries its licence and none of the development files; ansible-doc renders every plugin and
role; its playbooks run by FQCN against the lab (plan, audit, open_ports in check mode).
"""

import json
import os
import subprocess
import tarfile

import pytest

from conftest import BIN, ROOT, cluster_layer

DIST = ROOT / '.build' / 'dist'
CLUSTER = cluster_layer(['node1'], ['node3', 'node4', 'node5'], ['node2'])
DEVELOPMENT_FILES = ('ansible.cfg', '.ansible-lint', 'tools/', 'docs/generate.py', 'examples/lab-demo/',
                     'tests/integration/', 'requirements-dev.txt', 'Makefile', '.pytest_cache', 'benchmarks/')


@pytest.fixture(scope='module')
def fresh(lab, tmp_path_factory):
    """(work directory, environment) with the artifact installed into an empty path."""
    tarballs = sorted(DIST.glob('kubeports-firewall-*.tar.gz'))
    assert tarballs, 'no built artifact in %s (make install builds it)' % DIST
    work = tmp_path_factory.mktemp('artifact')
    collections = work / 'collections'
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_HOST_KEY_CHECKING='False',
               ANSIBLE_NOCOLOR='1', PATH=str(BIN) + os.pathsep + os.environ.get('PATH', ''))
    env.pop('ANSIBLE_CONFIG', None)
    done = subprocess.run([str(BIN / 'ansible-galaxy'), 'collection', 'install', '-p', str(collections),
                           str(tarballs[-1])], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    inventory = work / 'inventory'
    inventory.mkdir()
    (inventory / '00-lab.yml').write_text(open(lab.inventory_path).read())
    (inventory / '10-cluster.yml').write_text(json.dumps(CLUSTER))
    return work, env, tarballs[-1]


def test_the_artifact_ships_its_licence_and_no_development_file(fresh):
    _work, _env, tarball = fresh
    with tarfile.open(str(tarball)) as archive:
        names = archive.getnames()
    assert 'LICENSE' in names and 'MANIFEST.json' in names and 'requirements.txt' in names
    assert 'meta/execution-environment.yml' in names and 'bindep.txt' in names
    for development in DEVELOPMENT_FILES:
        assert not any(name == development.rstrip('/') or name.startswith(development) for name in names), development
    with tarfile.open(str(tarball)) as archive:
        manifest = json.load(archive.extractfile('MANIFEST.json'))
    assert manifest['collection_info']['license_file'] == 'LICENSE'
    assert 'example.invalid' not in json.dumps(manifest)


def test_ansible_doc_renders_every_plugin_and_role(fresh):
    _work, env, _tarball = fresh
    for kind in ('module', 'lookup', 'filter', 'role'):
        listed = subprocess.run([str(BIN / 'ansible-doc'), '-t', kind, '-l', 'kubeports.firewall', '--json'],
                                capture_output=True, text=True, env=env, timeout=300, check=True)
        names = sorted(json.loads(listed.stdout))
        assert names, kind
        for name in names:
            shown = subprocess.run([str(BIN / 'ansible-doc'), '-t', kind, name], capture_output=True, text=True,
                                   env=env, timeout=300, check=False)
            assert shown.returncode == 0 and 'ERROR' not in shown.stderr, (kind, name, shown.stderr)


@pytest.mark.parametrize('playbook, extra', [
    ('kubeports.firewall.plan', ()),
    ('kubeports.firewall.audit', ()),
    ('kubeports.firewall.open_ports', ('--check', '--diff', '-e', 'kubeports_serial=100%')),
])
def test_playbooks_run_by_fqcn_from_the_installed_artifact(fresh, playbook, extra):
    work, env, _tarball = fresh
    done = subprocess.run([str(BIN / 'ansible-playbook'), playbook, '-i', str(work / 'inventory'),
                           '-e', 'kubeports_report_dir=%s/reports' % work,
                           '-e', 'kubeports_audit_report_dir=%s/reports' % work] + list(extra),
                          capture_output=True, text=True, env=env, cwd=str(work), timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert 'failed=0' in done.stdout
