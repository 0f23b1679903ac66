"""The plan_reports action: its report writing (pure) and, run by ansible-core against the
installed collection, its argument handling, check mode and idempotence."""

import json
import os
import re
import stat

import pytest

from ansible_collections.kubeports.firewall.plugins.action.plan_reports import differs, write_if_changed

from helpers import KUBESPRAY, is_installed, run_playbook

installed = pytest.mark.skipif(not is_installed(), reason='collection not installed: run make install')


def test_write_if_changed(tmp_path):
    path = str(tmp_path / 'plan.md')
    assert differs(path, 'a\n')
    assert write_if_changed(path, 'a\n')
    assert not differs(path, 'a\n') and not write_if_changed(path, 'a\n')
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert write_if_changed(path, 'b\n') and open(path).read() == 'b\n'
    assert os.listdir(str(tmp_path)) == ['plan.md']


PLAY = '''
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - kubeports.firewall.plan_reports: %s
      register: planned
    - ansible.builtin.debug:
        msg: "{{ planned | to_json }}"
'''


def written(out):
    """The reports the action says it wrote, from the play's output."""
    found = re.search(r'\\"written\\": (\[[^]]*\])', out)
    return json.loads(found.group(1).replace('\\"', '"'))


def play(tmp_path, arguments, *extra):
    playbook = tmp_path / 'play.yml'
    playbook.write_text(PLAY % json.dumps(arguments))
    return run_playbook(playbook, KUBESPRAY, *extra)


@installed
def test_plans_writes_once_and_check_mode_writes_nothing(tmp_path):
    reports = tmp_path / 'reports'
    arguments = {'report_dir': str(reports), 'shown_hosts': 2}
    rc, out = play(tmp_path, arguments, '--check')
    assert rc == 0 and 'changed=0' in out and written(out) == ['plan.html', 'plan.json', 'plan.md'] and not reports.exists(), out
    rc, out = play(tmp_path, arguments)
    assert rc == 0 and 'changed=0' in out and written(out) == ['plan.html', 'plan.json', 'plan.md'], out
    document = json.loads((reports / 'plan.json').read_text())
    assert set(document) == {'clusters', 'sets', 'rule_lists', 'hosts', 'skipped_hosts', 'unplanned', 'addresses'}
    assert (reports / 'plan.md').read_text().startswith('# Planned firewall rules')
    assert (reports / 'plan.html').read_text().startswith('<!DOCTYPE html>')
    assert '\\"summary\\": {\\"hosts\\": %d' % len(document['hosts']) in out
    assert out.count('\\"lines\\"') == 3 and 'PURPOSE' in out
    rc, out = play(tmp_path, arguments)
    assert rc == 0 and 'changed=0' in out and written(out) == [], out
    rc, out = play(tmp_path, arguments, '--check')
    assert rc == 0 and 'changed=0' in out and written(out) == [], out


@installed
@pytest.mark.parametrize('arguments, extra, message', [
    ({'shown_hosts': 'many'}, [], 'shown_hosts'),
    ({'hosts_without_role': 'ignore'}, [], 'hosts_without_role'),
    ({'hosts': ['node9']}, [], 'host node9 is not in the inventory'),
    ({}, ['-e', 'kubeports_cni=wireguard'], 'wireguard'),
])
def test_bad_input_fails_before_any_report_is_written(tmp_path, arguments, extra, message):
    reports = tmp_path / 'reports'
    rc, out = play(tmp_path, dict(arguments, report_dir=str(reports)), *extra)
    assert rc != 0 and message in out, out
    assert not reports.exists()


@installed
def test_plan_html_is_written_beside_the_other_reports_and_names_hosts(tmp_path):
    reports = tmp_path / 'reports'
    rc, out = play(tmp_path, {'report_dir': str(reports)})
    assert rc == 0 and 'changed=0' in out and 'plan.html' in written(out), out
    page = (reports / 'plan.html').read_text()
    assert page.startswith('<!DOCTYPE html>') and 'id="banner"' in page and 'PLAN: 6 hosts planned' in page
    assert KUBESPRAY in page and 'cluster (6 hosts)' in page
    assert '<td>cp1</td>' in page and '<svg' in page
    assert 'plan.html' in out
    # Only its time stamp differs on a second run: nothing is written.
    first = os.stat(str(reports / 'plan.html')).st_mtime_ns
    rc, out = play(tmp_path, {'report_dir': str(reports)})
    assert rc == 0 and 'changed=0' in out and written(out) == [], out
    assert os.stat(str(reports / 'plan.html')).st_mtime_ns == first


def test_an_html_page_differs_only_when_more_than_its_time_changed(tmp_path):
    from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports import html_page
    path = str(tmp_path / 'plan.html')
    write_if_changed(path, html_page.meta('inv', (), '1', '2026-01-01T00:00:00Z'))
    assert not differs(path, html_page.meta('inv', (), '1', '2026-02-02T00:00:00Z'))
    assert differs(path, html_page.meta('other', (), '1', '2026-01-01T00:00:00Z'))
