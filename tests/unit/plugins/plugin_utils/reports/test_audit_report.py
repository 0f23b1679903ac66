"""The fleet audit report (audit_report.py): shape, summary line, gate, Markdown, HTML."""

import re

import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.audit import exposure, judge
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.audit_report import (
    build_report, failing, html, markdown, summary_line)

RULES = [{'protocol': 'tcp', 'port': '2379', 'sources': ['10.0.0.1/32'], 'description': 'etcd',
          'references': ['https://etcd.io/docs/']}]
PLAN = {'hosts': {'a': {'roles': ['etcd']}, 'b': {'roles': ['etcd']}, 'c': {'roles': ['worker']}}}


def results():
    clean = [exposure('tcp', '2379', ['10.0.0.1/32'], 'owned', owned=True)]
    return {
        'a': {'backend': 'firewalld', 'findings': judge(RULES, clean)},
        'b': {'backend': 'ufw', 'findings': judge(RULES, clean + [
            exposure('tcp', '2379', None, '<b>foreign</b>'), exposure('tcp', '9090', None, 'cockpit')])},
        'c': {'failed': True, 'msg': 'unreachable'},
    }


def test_the_report_has_the_documented_shape():
    report = build_report(PLAN, results(), ['d'])
    assert sorted(report['hosts']) == ['a', 'b']
    assert set(report['hosts']['a']) == {'missing', 'extra', 'over_exposed', 'foreign'}
    assert report['summary'] == {'missing': 0, 'extra': 0, 'over_exposed': 1, 'foreign': 1, 'hosts': 2,
                                 'clean_hosts': 1, 'critical': 1, 'unaudited': 1}
    assert report['unaudited'] == {'c': 'unreachable'} and report['skipped_hosts'] == ['d']
    assert report['unplanned'] == {'d': 'no role'}
    entry = report['hosts']['b']['over_exposed'][0]
    assert entry['severity'] == 'critical' and entry['reference'] == 'https://etcd.io/docs/'
    assert summary_line(report) == ('audit of 4 hosts: 1 clean, 1 with findings, 1 not audited, 1 skipped (planned '
                                    'for nothing); findings: 0 missing, 0 extra, 1 over-exposed (1 critical), 1 foreign')


def test_skipped_hosts_are_named_with_why_the_plan_gives():
    plan = dict(PLAN, unplanned={'d': 'in group bastion, which no role maps to (kubeports_role_groups)',
                                 'e': 'in no group'})
    report = build_report(plan, results(), ['d'])
    assert report['unplanned'] == {'d': 'in group bastion, which no role maps to (kubeports_role_groups)'}
    assert '| d | skipped, planned for nothing: in group bastion, which no role maps to (kubeports_role_groups) |' \
        in markdown(report)
    assert 'planned for nothing: in group bastion' in html(report)
    assert 'skipped' not in summary_line(build_report(plan, results()))


@pytest.mark.parametrize('fail_on, expected', [
    ([], []), (['over_exposed'], ['over_exposed']), (['missing', 'extra'], []),
    (['foreign', 'over_exposed'], ['foreign', 'over_exposed'])])
def test_the_gate_names_the_categories_with_findings(fail_on, expected):
    assert failing(build_report(PLAN, results()), fail_on) == expected


def test_an_unknown_gate_category_is_refused():
    with pytest.raises(ValueError, match='overexposed'):
        failing(build_report(PLAN, results()), ['overexposed'])


def test_markdown_lists_each_finding_of_each_host():
    text = markdown(build_report(PLAN, results()))
    assert '| b | ufw | etcd | 0 | 0 | 1 | 1 |' in text
    assert '## b' in text and '## a' not in text
    assert '| over_exposed | critical | tcp/2379 | anyone |' in text


def test_the_html_page_is_self_contained_and_escaped():
    page = html(build_report(PLAN, results()))
    assert page.startswith('<!DOCTYPE html>')
    assert not re.search(r'<(link|img|iframe)\b|\bsrc=|@import|url\(', page)
    assert '<b>foreign</b>' not in page and '&lt;b&gt;foreign&lt;/b&gt;' in page
    assert page.count('class="row ') == 2
    assert 'id="matrix"' in page and 'class="critical"' in page
