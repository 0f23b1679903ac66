"""The reachability report (plugins/plugin_utils/reports/verify_report.py)."""

import re

import pytest

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.probe_planner import plan_probes
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.verify_report import (
    build_report, report_html, report_lines, report_markdown)
from probe_fixtures import CONTROL, ETCD, PROBERS, flat, rule, target


@pytest.mark.parametrize('stale', [
    {'results': [], 'run_id': 'earlier'},
    {'failed': True, 'msg': 'boom', 'run_id': 'now'},
    {'unreachable': True, 'msg': 'ssh: no route', 'run_id': 'now'},
    {},
])
def test_results_of_another_run_or_failed_hosts_are_not_judged(stale):
    plan = dict(one_probe_plan({'cp2': 'open'}), run_id='now')
    listeners = {'etcd1': dict(listening()['etcd1'], run_id='now')}
    report = build_report(plan, listeners, {'cp2': stale})
    assert report['summary']['probes'] == 0
    assert report['not_probed'][0]['reason'].startswith('not probed from cp2: ')
    assert stale.get('msg', 'did not run its probes') in report['not_probed'][0]['reason']
    # And a listener result of an earlier run is not taken for this one.
    fresh = results_for(plan, {'cp2': 'open'})
    fresh['cp2']['run_id'] = 'now'
    report = build_report(plan, {'etcd1': dict(listening()['etcd1'], run_id='earlier')}, fresh)
    assert report['not_probed'][0]['reason'].startswith('no listener result from etcd1')


def test_listener_state_is_matched_by_address():
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD, '10.0.0.5'], [rule('udp', '53', CONTROL)])],
                       {'cp2': PROBERS['cp2']}, unplanned=False)
    listeners = {'etcd1': {'in_use': [{'protocol': 'udp', 'port': 53, 'family': 4, 'address': ETCD}],
                           'listening': [{'protocol': 'udp', 'port': 53, 'family': 4, 'address': '10.0.0.5'}]}}
    report = build_report(plan, listeners, results_for(plan, {'cp2': 'filtered'}))
    assert [(p['address'], p['listener']) for p in report['probes']] == [('10.0.0.5', 'kubeports')]
    assert [(item['address'], item['reason'][:42]) for item in report['not_probed']] == [
        (ETCD, 'udp/53 on etcd1 (10.0.0.1) is held by anot')]


def test_probe_error_on_the_probing_host_is_not_judged():
    plan = one_probe_plan({'cp2': 'open'})
    results = results_for(plan, {'cp2': 'error'})
    results['cp2']['results'][0]['detail'] = 'cannot probe from this host: Address family not supported'
    report = build_report(plan, listening(), results)
    assert report['summary']['probes'] == 0
    assert report['not_probed'][0]['reason'] == 'cannot probe from this host: Address family not supported'


def one_probe_plan(expected_by_source, protocol='tcp', port=2379):
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], [rule(protocol, str(port), CONTROL)])],
                       dict((name, PROBERS[name]) for name in expected_by_source), unplanned=False)
    for probe in flat(plan):
        assert probe['expected'] == expected_by_source[probe['source']]
    return plan


def listening(protocol='tcp', port=2379, kind='listening', family=4):
    return {'etcd1': {kind: [{'protocol': protocol, 'port': port, 'family': family}]}}


def results_for(plan, observed):
    return dict((source, {'results': [{'id': p['id'], 'observed': observed[source], 'detail': 'seen'}
                                      for p in probes], 'seconds': 1.25})
                for source, probes in plan['probes'].items())


@pytest.mark.parametrize('expected, observed, result', [
    ('open', 'open', 'ok'),
    ('open', 'closed', 'mismatch'),
    ('open', 'filtered', 'mismatch'),
    ('blocked', 'open', 'mismatch'),
    ('blocked', 'closed', 'ok'),
    ('blocked', 'filtered', 'ok'),
])
def test_probe_judged_against_expectation(expected, observed, result):
    source = 'cp2' if expected == 'open' else 'w2'
    plan = one_probe_plan({source: expected})
    report = build_report(plan, listening(), results_for(plan, {source: observed}))
    assert [(p['result'], p['observed'], p['detail'], p['listener']) for p in report['probes']] == [
        (result, observed, 'seen', 'kubeports')]
    assert report['summary']['mismatches'] == (result == 'mismatch')
    assert report['summary']['ok'] == (result == 'ok')
    assert report['summary']['probe_seconds'] == 1.25


def test_mismatches_first_and_failed_prober_not_probed():
    plan = one_probe_plan({'cp2': 'open', 'w1': 'blocked', 'w2': 'blocked'})
    results = results_for(plan, {'cp2': 'open', 'w1': 'filtered', 'w2': 'open'})
    results['w1'] = {'failed': True, 'msg': 'unreachable'}
    report = build_report(plan, listening(), results)
    assert report['mismatches'] == report['probes'][:1]
    assert (report['mismatches'][0]['source'], report['mismatches'][0]['observed']) == ('w2', 'open')
    assert [p['source'] for p in report['probes']] == ['w2', 'cp2']
    assert [(item['source'], item['reason']) for item in report['not_probed']] == [
        ('w1', 'not probed from w1: unreachable')]
    assert report['summary'] == {'probes': 2, 'ok': 1, 'mismatches': 1, 'not_probed': 1, 'hosts': 4,
                                 'probe_seconds': 1.25, 'unproven': 1,
                                 'methods': {'connect': {'passed': 1, 'failed': 1, 'unproven': 0},
                                             'none': {'passed': 0, 'failed': 0, 'unproven': 1}}}


@pytest.mark.parametrize('outcome, reason', [
    ({'failed': True, 'msg': 'unreachable'}, 'not probed from w1: unreachable'),
    ({'skipped': True, 'msg': 'conditional false'}, 'not probed from w1: conditional false'),
    ({'skipped': True}, 'not probed from w1: the probing host did not run its probes'),
    ({'failed': True}, 'not probed from w1: the probing host did not run its probes'),
    ('garbage', 'not probed from w1: the probing host did not run its probes'),
    (None, 'not probed from w1: the probing host did not run its probes'),
    ({'results': []}, 'no result for this probe from w1'),
])
def test_probing_host_without_results_puts_its_probes_in_not_probed(outcome, reason):
    plan = one_probe_plan({'cp2': 'open', 'w1': 'blocked'})
    results = results_for(plan, {'cp2': 'open', 'w1': 'open'})
    if outcome is None:
        del results['w1']
    else:
        results['w1'] = outcome
    report = build_report(plan, listening(), results)
    assert [(item['source'], item['reason']) for item in report['not_probed']] == [('w1', reason)]
    assert [p['source'] for p in report['probes']] == ['cp2']
    assert report['summary']['not_probed'] == 1 and report['summary']['mismatches'] == 0


@pytest.mark.parametrize('protocol, listeners, judged, reason', [
    ('udp', listening('udp', kind='in_use'), False, 'udp/2379 on etcd1 (10.0.0.1) is held by another owner, which '
                                                    'answers no datagram: no answer proves neither open nor blocked'),
    ('tcp', listening('tcp', kind='in_use'), True, None),
    ('udp', listening('udp'), True, None),
    ('tcp', listening('tcp', kind='errors'), True, None),
    ('tcp', {}, False, 'no listener result from etcd1'),
    ('tcp', {'etcd1': {'failed': True, 'msg': 'no python'}}, False, 'no listener result from etcd1: no python'),
    ('tcp', {'etcd1': {'listening': []}}, False, 'no listener result from etcd1'),
    ('tcp', listening('tcp', family=6), False, 'no listener result from etcd1'),
    ('tcp', listening('tcp', port=2380), False, 'no listener result from etcd1'),
    ('tcp', listening('udp'), False, 'no listener result from etcd1'),
])
def test_listener_state_decides_whether_a_probe_counts(protocol, listeners, judged, reason):
    plan = one_probe_plan({'cp2': 'open'}, protocol)
    report = build_report(plan, listeners, results_for(plan, {'cp2': 'filtered'}))
    assert (report['summary']['probes'] == 1) is judged
    if judged:
        assert report['probes'][0]['result'] == 'mismatch'
    else:
        assert [item['source'] for item in report['not_probed']] == ['cp2']
        assert report['not_probed'][0]['reason'].startswith(reason)


def test_listener_error_is_named_in_the_detail():
    plan = one_probe_plan({'cp2': 'open'})
    listeners = {'etcd1': {'errors': [{'protocol': 'tcp', 'port': 2379, 'family': 4, 'error': 'EACCES'}]}}
    report = build_report(plan, listeners, results_for(plan, {'cp2': 'closed'}))
    assert report['probes'][0]['listener'] == 'failed'
    assert report['probes'][0]['detail'] == 'seen; listener failed: EACCES'


def test_plan_not_probed_items_are_carried_into_the_report():
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], [rule('tcp', '2379', CONTROL),
                                                           rule('esp', '', CONTROL)])],
                       {'cp2': PROBERS['cp2']}, unplanned=False)
    report = build_report(plan, listening(), results_for(plan, {'cp2': 'open'}))
    assert [item['protocol'] for item in report['not_probed']] == ['esp']
    assert report['summary'] == {'probes': 1, 'ok': 1, 'mismatches': 0, 'not_probed': 1, 'hosts': 2,
                                 'probe_seconds': 1.25, 'unproven': 0,
                                 'methods': {'connect': {'passed': 1, 'failed': 0, 'unproven': 0}}}


def test_matrix_cells():
    plan = one_probe_plan({'cp2': 'open', 'w1': 'blocked', 'w2': 'blocked', 'out': 'blocked'})
    report = build_report(plan, listening(), results_for(plan, {'cp2': 'open', 'w1': 'filtered',
                                                                'w2': 'open', 'out': 'closed'}))
    rows = dict(((row['destination'], row['protocol'], row['port']), row['cells']) for row in report['matrix'])
    assert [row['planned'] for row in report['matrix']] == [True]
    cells = rows[('etcd', 'tcp', 2379)]
    assert cells['controlplane'] == {'expected': 'open', 'probes': 1, 'ok': 1, 'mismatches': 0}
    assert cells['worker'] == {'expected': 'blocked', 'probes': 2, 'ok': 1, 'mismatches': 1}
    assert cells['none'] == {'expected': 'blocked', 'probes': 1, 'ok': 1, 'mismatches': 0}


def test_mixed_expectations_in_one_cell():
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], [rule('tcp', '9100', ['10.0.0.11/32'])])],
                       PROBERS, unplanned=False)
    report = build_report(plan, listening(port=9100), results_for(plan, dict((h, 'filtered') for h in PROBERS)))
    rows = dict(((row['destination'], row['port']), row['cells']) for row in report['matrix'])
    assert rows[('etcd', 9100)]['worker'] == {'expected': 'mixed', 'probes': 2, 'ok': 1, 'mismatches': 1}


def full_report(wrong=(('cp2', 2379),)):
    """Two targets, every probe as expected except the (source, port) pairs in ``wrong``: filtered."""
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], [rule('tcp', '2379', CONTROL), rule('ipip', '', CONTROL)]),
                        target('w1', ['worker'], ['10.0.0.11'], [rule('tcp', '10250', CONTROL)])], PROBERS)
    listeners = dict((host, {'listening': [dict(item, family=4) for item in ports]})
                     for host, ports in plan['listeners'].items())
    results = {}
    for source, probes in plan['probes'].items():
        results[source] = {'results': [{'id': p['id'], 'detail': 'x', 'observed':
                                        'filtered' if (source, p['port']) in wrong else
                                        'open' if p['expected'] == 'open' else 'filtered'} for p in probes]}
    return build_report(plan, listeners, results)


def test_text_report():
    report = full_report()
    lines = report_lines(report)
    assert lines[0].startswith('%d probes: %d ok, 1 mismatches; 1 not probed; probing took 0.0 s'
                               % (report['summary']['probes'], report['summary']['ok']))
    assert lines[1].startswith('MISMATCHES')
    assert lines[2] == ('  cp2 (controlplane, 10.0.0.2) -> etcd1 (etcd, 10.0.0.1) tcp/2379: '
                        'expected open, observed filtered (x) [tcp.2379]')
    assert '  etcd1 ipip: protocol-only rule: no port to probe; ipip traffic is not proven by this check' in lines
    assert any(line.split()[:2] == ['worker', 'tcp/2379*'] for line in lines)
    assert any(line.split()[:2] == ['etcd', 'tcp/2379'] for line in lines)


def test_text_report_of_an_unplanned_mismatch():
    report = full_report(wrong=())
    record = dict(report['probes'][-1], planned=False, observed='open', result='mismatch', detail='')
    lines = report_lines(dict(report, mismatches=[record]))
    assert lines[2].endswith('observed open [not planned on %s]' % record['target'])


def test_text_report_without_mismatches_has_no_mismatch_section():
    lines = report_lines(full_report(wrong=()))
    assert ' 0 mismatches' in lines[0]
    assert not any(line.startswith('MISMATCHES') for line in lines)


def test_markdown_report():
    markdown = report_markdown(full_report(), title='Lab')
    assert markdown.startswith('# Lab\n')
    assert '| cp2 (controlplane, 10.0.0.2) | etcd1 (etcd, 10.0.0.1) | tcp/2379 | open | filtered | connect | x | ' \
        'tcp.2379 |' in markdown
    assert '| connect | %d | 1 | 0 |' % (full_report()['summary']['ok']) in markdown
    assert '| - | etcd1 | ipip | protocol-only rule' in markdown
    assert '| worker | tcp/2379\\* |' in markdown
    assert '| etcd | tcp/2379 |' in markdown
    assert markdown.count('None.') == 1 and '## Unproven\n\nNone.\n' in markdown


def test_markdown_of_a_clean_run_says_none():
    plan = one_probe_plan({'cp2': 'open'})
    markdown = report_markdown(build_report(plan, listening(), results_for(plan, {'cp2': 'open'})))
    assert markdown.count('None.') == 3
    assert '## Mismatches\n\nNone.\n' in markdown and '## Not probed\n\nNone.\n' in markdown
    assert '## Unproven\n\nNone.\n' in markdown
    assert '| etcd | tcp/2379 | open 1/1 |' in markdown


def test_markdown_without_any_probe():
    markdown = report_markdown(build_report({'probes': {}, 'not_probed': [], 'targets': {}}, {}, {}))
    assert markdown.count('None.') == 3
    assert '| Destination |' not in markdown and '| Method |' not in markdown
    assert '0 probes over 0 hosts: **0 ok, 0 mismatches**; 0 not probed (0 of them unproven probes).' in markdown


@pytest.mark.parametrize('started, judged', [(100.0, True), (199.0, False), (None, True)])
def test_probe_after_the_listener_deadline_is_not_judged(started, judged):
    plan = one_probe_plan({'cp2': 'open'})
    results = results_for(plan, {'cp2': 'closed'})
    results['cp2']['results'][0].update(started=started, seconds=0.5)
    listeners = {'etcd1': dict(listening()['etcd1'], deadline=200.0)}
    report = build_report(plan, listeners, results)
    assert (report['summary']['probes'] == 1) is judged
    if not judged:
        assert 'reached their lifetime' in report['not_probed'][0]['reason']


def test_outsider_without_address_is_reported():
    probers = dict(PROBERS, lost={'roles': [], 'addresses': [], 'reason': 'host lost has no usable address'})
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], [rule('tcp', '2379', CONTROL)])], probers, unplanned=False)
    report = build_report(plan, listening(), results_for(plan, dict((h, 'filtered') for h in PROBERS)))
    assert '  lost does not probe: host lost has no usable address' in report_lines(report)
    assert '| lost | - | - | lost does not probe: host lost has no usable address |' in report_markdown(report)


def test_html_report_is_one_self_contained_page():
    page = report_html(full_report(), title='Lab')
    assert page.startswith('<!DOCTYPE html>') and '<title>Lab</title>' in page
    assert not re.search(r'<(link|img|iframe)\b|\bsrc=|@import|url\(', page)
    assert ('<td>cp2 (10.0.0.2)</td><td>etcd1 (10.0.0.1)</td><td>tcp/2379</td><td>open</td><td>filtered</td>'
            '<td>mismatch</td>') in page
    assert 'id="matrix"' in page and 'class="cell high"' in page
    assert page.count('class="row ') == len(full_report()['probes'])


VXLAN_OWNER = 'kernel vxlan device flannel.1, port 8472'


def held(owner=VXLAN_OWNER, port=8472):
    return {'etcd1': {'in_use': [{'protocol': 'udp', 'port': port, 'family': 4, 'address': ETCD, 'owner': owner}]}}


@pytest.mark.parametrize('expected, seen, outcome, method, observed', [
    # Through the overlay: judged like any probe.
    ('open', {'observed': 'open', 'method': 'overlay', 'via': 'flannel.1'}, 'passed', 'overlay', 'open'),
    ('open', {'observed': 'filtered', 'method': 'overlay', 'via': 'flannel.1'}, 'failed', 'overlay', 'filtered'),
    ('blocked', {'observed': 'open', 'method': 'overlay', 'via': 'flannel.1'}, 'failed', 'overlay', 'open'),
    # A plain datagram: an ICMP error or a refusal concludes, silence does not.
    ('blocked', {'observed': 'filtered', 'method': 'echo', 'silent': False}, 'passed', 'datagram', 'filtered'),
    ('open', {'observed': 'filtered', 'method': 'echo', 'silent': False}, 'failed', 'datagram', 'filtered'),
    ('open', {'observed': 'closed', 'method': 'echo', 'silent': False}, 'failed', 'datagram', 'closed'),
    ('blocked', {'observed': 'filtered', 'method': 'echo', 'silent': True}, 'unproven', 'datagram', None),
    ('open', {'observed': 'filtered', 'method': 'echo', 'silent': True}, 'unproven', 'datagram', None),
    # A result of a module that does not say whether anything answered proves nothing either.
    ('open', {'observed': 'filtered'}, 'unproven', 'datagram', None),
    ('open', {'observed': 'error', 'method': 'overlay'}, 'unproven', 'none', None),
])
def test_udp_port_held_by_a_tunnel_device(expected, seen, outcome, method, observed):
    source = 'cp2' if expected == 'open' else 'w2'
    plan = one_probe_plan({source: expected}, 'udp', 8472)
    results = results_for(plan, {source: seen['observed']})
    results[source]['results'][0].update(seen, detail='seen; why')
    report = build_report(plan, held(), results)
    records = report['probes'] + [item for item in report['not_probed'] if item.get('source')]
    assert [(r['outcome'], r['method'], r.get('observed'), r['owner']) for r in records] == [
        (outcome, method, observed, VXLAN_OWNER)]
    assert report['summary']['methods'] == {method: dict({'passed': 0, 'failed': 0, 'unproven': 0}, **{outcome: 1})}
    assert report['summary']['unproven'] == (outcome == 'unproven')
    if outcome == 'unproven' and method == 'datagram':
        assert records[0]['reason'] == ('udp/8472 on etcd1 (10.0.0.1) is held by %s, which answers no datagram: no '
                                        'answer proves neither open nor blocked; why' % VXLAN_OWNER)
    if seen.get('via'):
        assert records[0]['via'] == 'flannel.1'


@pytest.mark.parametrize('protocol, kind, method', [
    ('tcp', 'listening', 'connect'), ('tcp', 'in_use', 'connect'), ('udp', 'listening', 'echo'),
    ('udp', 'errors', 'echo'),
])
def test_method_of_ordinary_probes(protocol, kind, method):
    plan = one_probe_plan({'cp2': 'open'}, protocol)
    report = build_report(plan, listening(protocol, kind=kind), results_for(plan, {'cp2': 'open'}))
    assert [(p['method'], p['outcome']) for p in report['probes']] == [(method, 'passed')]


def test_unproven_probes_name_owner_and_path_in_every_output():
    plan = one_probe_plan({'cp2': 'open', 'w2': 'blocked'}, 'udp', 8472)
    results = results_for(plan, {'cp2': 'open', 'w2': 'filtered'})
    results['cp2']['results'][0].update(method='overlay', via='flannel.1')
    results['w2']['results'][0].update(method='echo', silent=True,
                                       detail='no echo in 1.5s; w2 has no vxlan device on port 8472 over IPv4')
    report = build_report(plan, held(), results)
    lines = report_lines(report)
    assert lines[1:4] == ['BY METHOD (passed, failed, unproven):', '  overlay   1 passed', '  datagram  1 unproven']
    assert lines[4:6] == [
        'UNPROVEN (source -> destination port [method; owner]: why):',
        '  w2 (10.0.0.12) -> etcd1 (10.0.0.1) udp/8472 [datagram; owner: %s]: udp/8472 on etcd1 (10.0.0.1) is held '
        'by %s, which answers no datagram: no answer proves neither open nor blocked; w2 has no vxlan device on '
        'port 8472 over IPv4' % (VXLAN_OWNER, VXLAN_OWNER)]
    markdown = report_markdown(report)
    assert '| overlay | 1 | 0 | 0 | ICMP echo through' in markdown and '| datagram | 0 | 0 | 1 |' in markdown
    assert '| w2 (10.0.0.12) | etcd1 (10.0.0.1) | udp/8472 | datagram | %s | udp/8472 on etcd1' % VXLAN_OWNER \
        in markdown
    assert '## Not probed\n\nNone.\n' in markdown
    page = report_html(report)
    assert 'id="methods"' in page and '<td>overlay</td><td>1</td><td>0</td><td>0</td>' in page
    assert '<td>%s</td>' % VXLAN_OWNER in page


def test_a_port_a_process_holds_names_the_process():
    plan = one_probe_plan({'cp2': 'open'}, 'udp', 53)
    results = results_for(plan, {'cp2': 'filtered'})
    results['cp2']['results'][0].update(method='echo', silent=True)
    report = build_report(plan, held('process dnsmasq (pid 90)', 53), results)
    assert report['not_probed'][0]['owner'] == 'process dnsmasq (pid 90)'
    assert report['not_probed'][0]['reason'].startswith('udp/53 on etcd1 (10.0.0.1) is held by process dnsmasq')
