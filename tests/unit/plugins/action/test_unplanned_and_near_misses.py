"""Run by ansible-core against the installed collection: the plan playbook, the open_ports and
audit roles name every host planned for nothing with why, and a misspelled group fails the
plan with both names (the issue's examples). No host is touched: the plan runs on the
controller, and the roles' hosts here have no role, so they stop before any firewall task."""

import json
import os

import pytest

from helpers import COLLECTIONS, is_installed, run_playbook

installed = pytest.mark.skipif(not is_installed(), reason='collection not installed: run make install')
PLAN = os.path.join(COLLECTIONS, 'ansible_collections', 'kubeports', 'firewall', 'playbooks', 'plan.yml')

INVENTORY = '''stray ansible_host=192.0.2.99

[kube_control_plane]
cp1 ansible_host=192.0.2.11 ip=192.0.2.11

[etcd]
cp1

[{workers}]
node1 ansible_host=192.0.2.21 ip=192.0.2.21
node2 ansible_host=192.0.2.22 ip=192.0.2.22

[bastion]
bastion1 ansible_host=192.0.2.5

[k8s_cluster:children]
kube_control_plane
{workers}
'''


def inventory(tmp_path, workers='kube_node'):
    path = tmp_path / 'inventory.ini'
    path.write_text(INVENTORY.format(workers=workers))
    return str(path)


@installed
def test_the_plan_names_every_host_planned_for_nothing(tmp_path):
    reports = tmp_path / 'reports'
    rc, out = run_playbook(PLAN, inventory(tmp_path), '-e', 'kubeports_report_dir=%s' % reports)
    assert rc == 0, out
    assert '3 hosts planned' in out and '2 hosts planned for nothing (named above)' in out, out
    assert 'bastion1: in group bastion, which no role maps to (kubeports_role_groups)' in out
    assert 'stray: in no group' in out
    document = json.loads((reports / 'plan.json').read_text())
    assert document['unplanned'] == {'bastion1': 'in group bastion, which no role maps to (kubeports_role_groups)',
                                     'stray': 'in no group'}
    assert set(document['hosts']) | set(document['unplanned']) == {'cp1', 'node1', 'node2', 'bastion1', 'stray'}
    markdown = (reports / 'plan.md').read_text()
    assert '## Hosts planned for nothing' in markdown and '| stray | in no group |' in markdown


@installed
def test_a_misspelled_group_fails_the_plan_naming_both_groups_and_the_hosts(tmp_path):
    reports = tmp_path / 'reports'
    rc, out = run_playbook(PLAN, inventory(tmp_path, 'kube_nodes'), '-e', 'kubeports_report_dir=%s' % reports)
    assert rc != 0, out
    assert 'group kube_nodes looks like a misspelling of kube_node (role worker): its hosts node1, node2 do not have role worker' in out
    assert not reports.exists()


ROLE = '''
- hosts: stray:bastion1
  connection: local
  gather_facts: false
  vars:
    kubeports_hosts_without_role: skip
    kubeports_audit_report_dir: {reports}
  roles:
    - role: kubeports.firewall.{role}
'''


@installed
@pytest.mark.parametrize('role, said', [
    ('open_ports', 'has no role, so nothing is opened on it (skipped): it is'),
    ('audit', 'has no role, so it is not audited (skipped): it is'),
])
def test_the_roles_say_why_a_host_is_skipped(tmp_path, role, said):
    reports = tmp_path / 'reports'
    playbook = tmp_path / 'play.yml'
    playbook.write_text(ROLE.format(role=role, reports=reports))
    rc, out = run_playbook(playbook, inventory(tmp_path))
    assert rc == 0, out
    assert 'stray %s in no group' % said in out, out
    assert 'bastion1 %s in group bastion, which no role maps to (kubeports_role_groups)' % said in out, out
    if role == 'audit':
        report = json.loads((reports / 'audit.json').read_text())
        assert report['unplanned'] == {'bastion1': 'in group bastion, which no role maps to (kubeports_role_groups)',
                                       'stray': 'in no group'}
        assert '2 skipped (planned for nothing)' in out
