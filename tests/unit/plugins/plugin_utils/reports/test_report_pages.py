"""The HTML pages of the reports (html_page.py's frame): the banner says pass or the worst,
the hosts come worst-first coloured by their state, cells carry the colour, counts add up.
With KUBEPORTS_REPORT_SAMPLES set the example pages are written there to be looked at."""

import os
import re

import pytest

from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports import audit_report, html_page, verify_report

GENERATED = '2026-01-02T03:04:05Z'


def save(directory, name, page):
    if directory:
        with open(os.path.join(directory, name), 'w') as handle:
            handle.write(page)


def rows_of(page, table_id='hosts'):
    """[(host, state)] of the host table, in page order."""
    table = page[page.index('<table id="%s">' % table_id):]
    table = table[:table.index('</table>')]
    return re.findall(r'<tr class="([a-z]+)" data-host="([^"]+)" data-state="[a-z]+">', table)


@pytest.mark.parametrize('states, expected', [
    ([], 'clean'), (['clean', 'info'], 'info'), (['clean', 'high', 'medium'], 'high'),
    (['unknown', 'medium', 'skipped'], 'unknown'), (['high', 'critical'], 'critical'), (['skipped'], 'skipped')])
def test_the_worst_state_wins(states, expected):
    assert html_page.worst(states) == expected


def test_the_host_table_is_sorted_worst_first_and_each_row_carries_its_state():
    page = html_page.host_table(['Note'], [('a', 'clean', ['']), ('b', 'skipped', ['']), ('c', 'high', ['']),
                                           ('d', 'critical', ['']), ('e', 'unknown', ['']), ('f', 'medium', [''])])
    assert rows_of(page) == [('critical', 'd'), ('high', 'c'), ('unknown', 'e'), ('medium', 'f'), ('clean', 'a'),
                             ('skipped', 'b')]


def test_the_frame_is_self_contained_escaped_and_takes_a_diagram():
    page = html_page.frame('<T>', 'critical', 'FAIL: <b>x</b>', '<p>body</p>', {'a': '</script>'},
                           html_page.host_table([], [('<h>', 'clean', [])]), legend_states=html_page.STATE_NAMES,
                           inventory=['inv/<a>.ini'], clusters=[{'name': 'cluster', 'hosts': ['a', 'b']}],
                           version='1.2.3', generated=GENERATED, diagram='<svg id="flows"></svg>')
    assert not re.search(r'<(link|img|iframe)\b|\bsrc=|@import|url\(', page)
    assert '<b>x</b>' not in page and '&lt;h&gt;' in page and 'inv/&lt;a&gt;.ini' in page
    assert page.index('id="banner"') < page.index('<svg id="flows">') < page.index('id="legend"') < \
        page.index('id="hosts"') < page.index('<p>body</p>')
    assert 'cluster (2 hosts)' in page and '1.2.3' in page and GENERATED in page
    assert '<\\/script>' in page
    assert 'svg' not in html_page.frame('t', 'clean', 'PASS', '', {})


def test_pages_differing_only_in_their_time_are_the_same():
    first = html_page.meta('inv', (), '1', '2026-01-01T00:00:00Z')
    assert html_page.same_page(first, html_page.meta('inv', (), '1', GENERATED))
    assert not html_page.same_page(first, html_page.meta('other', (), '1', GENERATED))


@pytest.mark.parametrize('files, expected', [
    ({'MANIFEST.json': '{"collection_info": {"version": "1.4.0"}}', 'galaxy.yml': 'version: 0.0.1\n'}, '1.4.0'),
    ({'galaxy.yml': 'namespace: kubeports\nversion: "0.3.0"  # next\n'}, '0.3.0'),
    ({'MANIFEST.json': 'not json'}, 'unknown'),
    ({}, 'unknown'),
])
def test_the_collection_version_is_read_not_guessed(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert html_page.collection_version(str(tmp_path)) == expected


def test_the_installed_collection_names_its_version():
    assert re.match(r'^\d+\.\d+\.\d+', html_page.collection_version())


# The audit page ------------------------------------------------------------------------------

def drift_report(plan, results, skipped=()):
    return audit_report.build_report(plan, results, skipped)


def test_the_audit_banner_names_the_worst_host_and_problem(kubespray_plan, drift_results, report_dir):
    report = drift_report(kubespray_plan, drift_results)
    state, text = audit_report.banner(report)
    assert state == 'critical'
    assert text.startswith('FAIL: 3 of 6 hosts in trouble (1 critical, 1 high, 1 not audited); worst: cp3: ')
    assert text.endswith('worst: cp3: etcd 2379/tcp open to anyone (over-exposed, critical)')
    page = audit_report.html(report, inventory='examples/kubespray/inventory.ini', generated=GENERATED)
    save(report_dir, 'audit-drift.html', page)
    assert rows_of(page) == [('critical', 'cp3'), ('high', 'node1'), ('unknown', 'node3'), ('clean', 'cp1'),
                             ('clean', 'cp2'), ('clean', 'node2')]
    assert 'examples/kubespray/inventory.ini' in page and 'cluster (6 hosts)' in page


def test_a_clean_audit_passes(kubespray_plan, drift_results, report_dir):
    clean = dict((host, drift_results['cp1']) for host in ('cp1', 'cp2'))
    report = drift_report(kubespray_plan, clean, ['bastion'])
    assert audit_report.banner(report) == ('clean', 'PASS: all 2 audited hosts match the plan; 1 skipped (planned for '
                                                    'nothing)')
    save(report_dir, 'audit-clean.html', audit_report.html(report, generated=GENERATED))


@pytest.mark.parametrize('skipped, line', [
    ((), 'audit of 5 hosts: 3 clean, 1 with findings, 1 not audited; findings: 0 missing, 0 extra, '
         '1 over-exposed (1 critical), 0 foreign'),
    (('bastion',), 'audit of 6 hosts: 3 clean, 1 with findings, 1 not audited, 1 skipped (planned for nothing); '
                   'findings: 0 missing, 0 extra, 1 over-exposed (1 critical), 0 foreign'),
])
def test_the_audit_counts_add_up_to_the_rows(kubespray_plan, drift_results, skipped, line):
    results = dict((host, result) for host, result in drift_results.items() if host != 'node1')
    report = drift_report(kubespray_plan, results, skipped)
    assert audit_report.summary_line(report) == line
    page = audit_report.html(report, generated=GENERATED)
    counts = audit_report.host_counts(report)
    assert len(rows_of(page)) == counts['hosts'] == counts['clean'] + counts['findings'] + counts['unaudited'] + \
        counts['skipped']
    assert ' of %d hosts in trouble' % counts['hosts'] in page


@pytest.mark.parametrize('entries, state', [
    ([], 'clean'),
    ([('foreign', 'info')], 'info'),
    ([('extra', 'medium'), ('foreign', 'info')], 'medium'),
    ([('missing', 'high'), ('extra', 'medium')], 'high'),
    ([('over_exposed', 'high'), ('over_exposed', 'critical')], 'critical'),
])
def test_a_host_is_coloured_by_its_worst_finding(entries, state):
    findings = dict((name, []) for name in ('missing', 'extra', 'over_exposed', 'foreign'))
    for category, severity in entries:
        findings[category].append({'protocol': 'tcp', 'port': '1', 'sources': None, 'description': 'x',
                                   'reference': None, 'severity': severity})
    report = drift_report({'hosts': {'h': {'roles': ['worker']}}}, {'h': {'backend': 'ufw', 'findings': findings}})
    assert audit_report.host_states(report) == {'h': state}
    assert rows_of(audit_report.html(report, generated=GENERATED)) == [(state, 'h')]


def test_matrix_cells_carry_the_colour(kubespray_plan, drift_results):
    page = audit_report.html(drift_report(kubespray_plan, drift_results), generated=GENERATED)
    matrix = page[page.index('<table id="matrix">'):]
    matrix = matrix[:matrix.index('</table>')]
    assert '<td class="cell critical">1</td>' in matrix and '<td class="cell high">1</td>' in matrix
    assert '<td class="cell clean">ok</td>' in matrix and '<span' not in matrix


def test_an_extra_rule_of_a_peer_set_is_not_shown_as_open_to_anyone():
    findings = {'missing': [], 'over_exposed': [], 'foreign': [], 'extra': [
        {'protocol': None, 'port': None, 'sources': None, 'severity': 'medium', 'reference': None,
         'description': 'rich rule rule family="ipv4" source ipset="kp-cluster" port port="9100" protocol="tcp" accept'}]}
    report = drift_report({'hosts': {'h': {'roles': ['worker']}}}, {'h': {'backend': 'firewalld', 'findings': findings}})
    page = audit_report.html(report, generated=GENERATED)
    assert 'anyone' not in page.split('id="findings"')[1]
    assert '<td>%s</td>' % audit_report.UNPARSED_SOURCES in page
    assert '| extra | medium |  | %s |' % audit_report.UNPARSED_SOURCES in audit_report.markdown(report)


def test_finding_sources_name_the_hosts_behind_them(kubespray_plan, drift_results):
    page = audit_report.html(drift_report(kubespray_plan, drift_results), generated=GENERATED)
    # node1 misses 4789/udp from the cluster: the sources name the hosts.
    row = [line for line in page.splitlines() if 'data-host="node1"' in line and 'class="row high"' in line][0]
    assert '(cp1)' in row and 'node2' in row


# The verify page -----------------------------------------------------------------------------

def verify_drift():
    from test_verify_report import listening, one_probe_plan, results_for
    plan = one_probe_plan({'cp2': 'open', 'w1': 'blocked', 'w2': 'blocked'})
    results = results_for(plan, {'cp2': 'open', 'w1': 'filtered', 'w2': 'open'})
    results['w1'] = {'failed': True, 'msg': 'unreachable'}
    return verify_report.build_report(plan, listening(), results)


def test_the_verify_banner_names_the_worst_host_and_problem(report_dir):
    report = verify_drift()
    assert verify_report.banner(report) == ('critical', 'FAIL: 2 of 4 hosts in trouble (1 reached where blocked, '
                                                        '1 not probed); worst: etcd1: w2 -> etcd1 2379/tcp: expected '
                                                        'blocked, observed open (reached where blocked)')
    page = verify_report.report_html(report, generated=GENERATED, inventory='lab')
    save(report_dir, 'verify-drift.html', page)
    assert rows_of(page) == [('critical', 'etcd1'), ('unknown', 'w1'), ('clean', 'cp2'), ('clean', 'w2')]
    assert len(rows_of(page)) == report['summary']['hosts']
    assert '<td class="cell critical">blocked 0/1 !</td>' in page


@pytest.mark.parametrize('record, state', [
    ({'result': 'ok', 'expected': 'open'}, 'clean'),
    ({'result': 'mismatch', 'expected': 'open'}, 'high'),
    ({'result': 'mismatch', 'expected': 'blocked'}, 'critical'),
    ({'outcome': 'unproven', 'method': 'datagram'}, 'info'),
    ({'reason': 'protocol-only rule: no port to probe'}, 'info'),
    ({'outcome': 'unproven', 'method': 'none'}, 'unknown'),
    ({'outcome': 'unproven', 'method': 'connect'}, 'unknown'),
])
def test_a_probe_colours_its_destination(record, state):
    assert verify_report.record_state(record) == state


def test_a_verify_without_mismatches_passes():
    from test_verify_report import listening, one_probe_plan, results_for
    plan = one_probe_plan({'cp2': 'open', 'w2': 'blocked'})
    report = verify_report.build_report(plan, listening(), results_for(plan, {'cp2': 'open', 'w2': 'filtered'}))
    assert verify_report.banner(report) == ('clean', 'PASS: 2 probes over 3 hosts saw what the plan expects')


def test_a_port_that_cannot_be_probed_is_no_trouble():
    from test_verify_report import full_report
    report = full_report(wrong=())
    assert report['hosts']['etcd1']['state'] == 'info' and report['hosts']['etcd1']['unproven'] == 1
    assert verify_report.banner(report)[1].startswith('PASS: ')
    assert report['summary']['hosts'] == len(report['hosts'])


@pytest.mark.parametrize('category, entry, text', [
    ('over_exposed', {'protocol': 'tcp', 'port': '2379', 'severity': 'critical',
                      'description': 'firewalld port 2379/tcp in zone public: etcd open to anyone (tcp/2379)'},
     'node3: etcd 2379/tcp open to anyone (over-exposed, critical)'),
    ('missing', {'protocol': 'udp', 'port': '4789', 'severity': 'high', 'description': 'Calico VXLAN encapsulation'},
     'node1: 4789/udp Calico VXLAN encapsulation (missing, high)'),
    ('extra', {'protocol': None, 'port': None, 'severity': 'medium', 'description': 'ipset kp-cluster entry 192.0.2.9'},
     'node1: ipset kp-cluster entry 192.0.2.9 (extra, medium)'),
    ('over_exposed', {'protocol': 'all', 'port': '', 'severity': 'critical',
                      'description': 'zone public target ACCEPT: every port open to anyone (all)'},
     'node3: every port open to anyone (over-exposed, critical)'),
])
def test_the_worst_finding_reads_host_port_and_problem(category, entry, text):
    host = 'node3' if category == 'over_exposed' else 'node1'
    assert audit_report.finding_text(host, category, entry) == text


def test_the_markdown_reports_open_with_the_banner(kubespray_plan, drift_results):
    report = drift_report(kubespray_plan, drift_results)
    assert audit_report.markdown(report).startswith('# Firewall audit\n\n**FAIL: 3 of 6 hosts in trouble')
    assert verify_report.report_markdown(verify_drift()).startswith('# Reachability check\n\n**FAIL: 2 of 4 hosts')
