"""Probe planning and the reachability report (plugins/module_utils/verify.py)."""

import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.module_utils.verify import (
    build_report, catalog_ports, plan_probes, probe_ports, report_lines, report_markdown, role_label)

ETCD = '10.0.0.1'


def rule(protocol, port, sources, ids=None, components=None):
    return {'protocol': protocol, 'port': port, 'sources': sources, 'ids': ids or ['%s.%s' % (protocol, port)],
            'components': components or ['test']}


def target(host, roles, addresses, rules):
    return {'host': host, 'roles': roles, 'addresses': addresses, 'rules': rules}


PROBERS = {
    'etcd1': {'roles': ['etcd', 'controlplane'], 'addresses': [ETCD, 'fd00::1']},
    'cp2': {'roles': ['controlplane'], 'addresses': ['10.0.0.2']},
    'w1': {'roles': ['worker'], 'addresses': ['10.0.0.11', 'fd00::11']},
    'w2': {'roles': ['worker'], 'addresses': ['10.0.0.12']},
    'out': {'roles': [], 'addresses': ['192.0.2.9', 'fd00::99']},
}
CONTROL = ['10.0.0.1/32', '10.0.0.2/32', 'fd00::1/128']


def flat(plan):
    return [probe for probes in plan['probes'].values() for probe in probes]


def expectations(plan, **match):
    return sorted((p['source'], p['address'], p['port'], p['expected']) for p in flat(plan)
                  if all(p[key] == value for key, value in match.items()))


@pytest.mark.parametrize('roles, label', [
    (['worker', 'etcd'], 'etcd+worker'),
    (['controlplane', 'etcd'], 'etcd+controlplane'),
    ([], 'none'),
    (['rancher', 'registry'], 'registry+rancher'),
])
def test_role_label(roles, label):
    assert role_label(roles) == label


@pytest.mark.parametrize('port, probed', [('6443', [6443]), ('30000-32767', [30000, 32767]), ('53-53', [53])])
def test_probe_ports(port, probed):
    assert probe_ports(port) == probed


def test_allowed_and_denied_probers_per_family():
    plan = plan_probes([target('etcd1', ['etcd', 'controlplane'], [ETCD, 'fd00::1'],
                               [rule('tcp', '2379', CONTROL)])], PROBERS, unplanned=False)
    assert expectations(plan, port=2379) == [
        ('cp2', ETCD, 2379, 'open'),
        ('out', ETCD, 2379, 'blocked'), ('out', 'fd00::1', 2379, 'blocked'),
        ('w1', ETCD, 2379, 'blocked'), ('w1', 'fd00::1', 2379, 'blocked'),
        ('w2', ETCD, 2379, 'blocked'),
    ]
    assert 'etcd1' not in plan['probes']
    assert plan['listeners'] == {'etcd1': [{'protocol': 'tcp', 'port': 2379}]}
    probe = plan['probes']['cp2'][0]
    assert probe['source_address'] == '10.0.0.2' and probe['target_roles'] == 'etcd+controlplane'
    assert probe['source_roles'] == 'controlplane' and probe['ids'] == ['tcp.2379'] and probe['planned']


def test_ranges_probe_both_ends_and_overlapping_rules_unite_sources():
    rules = [rule('tcp', '30000-32767', ['10.0.0.11/32']), rule('tcp', '30080', ['10.0.0.12/32'])]
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], rules)], PROBERS, unplanned=False)
    assert expectations(plan, source='w2', expected='open') == [('w2', ETCD, 30080, 'open')]
    assert expectations(plan, source='w1', expected='open') == [
        ('w1', ETCD, 30000, 'open'), ('w1', ETCD, 30080, 'open'), ('w1', ETCD, 32767, 'open')]
    assert [item['port'] for item in plan['listeners']['etcd1']] == [30000, 32767, 30080]


@pytest.mark.parametrize('extra, reason', [
    (rule('ipip', '', ['10.0.0.0/24']), 'protocol-only rule: no port to probe'),
    (rule('esp', '', ['10.0.0.0/24']), 'protocol-only rule'),
    (rule('sctp', '9999', ['10.0.0.0/24']), 'SCTP is not probed'),
    (rule('tcp', '10248', ['10.0.0.1/32']), 'only the host itself may connect'),
    (rule('tcp', '22', ['203.0.113.5/32'], components=['ssh']), 'no probing host is among the allowed sources'),
])
def test_not_probed_with_reason(extra, reason):
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], [extra])], PROBERS, unplanned=False)
    assert len(plan['not_probed']) == 1
    assert reason in plan['not_probed'][0]['reason']
    assert plan['not_probed'][0]['target'] == 'etcd1'


@pytest.mark.parametrize('ssh_rule', [
    rule('tcp', '2222', ['10.0.0.11/32'], components=['ssh']),
    rule('tcp', '22', ['10.0.0.11/32'], components=['dce5']),
])
def test_ssh_is_only_probed_from_allowed_hosts(ssh_rule):
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], [ssh_rule])], PROBERS)
    assert expectations(plan) == [('w1', ETCD, int(ssh_rule['port']), 'open')]


def test_per_role_takes_one_host_per_label_in_turn():
    rules = [rule('tcp', str(port), ['10.0.0.0/24']) for port in (1001, 1002, 1003, 1004)]
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], rules)], PROBERS, sources='per_role', unplanned=False)
    for port in (1001, 1002, 1003, 1004):
        chosen = [p for p in flat(plan) if p['port'] == port]
        assert sorted(p['source_roles'] for p in chosen) == ['controlplane', 'none', 'worker']
    workers = [p['source'] for p in sorted(flat(plan), key=lambda p: p['port']) if p['source_roles'] == 'worker']
    assert workers == ['w1', 'w2', 'w1', 'w2']


def test_unplanned_ports_are_probed_blocked_from_one_host_per_label():
    plans = [target('etcd1', ['etcd'], [ETCD], [rule('tcp', '2379', CONTROL)]),
             target('w1', ['worker'], ['10.0.0.11'], [rule('tcp', '10250', CONTROL)])]
    plan = plan_probes(plans, PROBERS, other_ports=[('udp', 4789), ('tcp', 22)])
    unplanned = [p for p in flat(plan) if not p['planned']]
    on_worker = sorted((p['port'], p['source_roles']) for p in unplanned if p['target'] == 'w1')
    assert on_worker == [(2379, 'controlplane'), (2379, 'etcd+controlplane'), (2379, 'none'), (2379, 'worker'),
                         (4789, 'controlplane'), (4789, 'etcd+controlplane'), (4789, 'none'), (4789, 'worker')]
    assert all(p['expected'] == 'blocked' for p in unplanned)
    assert {'protocol': 'udp', 'port': 4789} in plan['listeners']['w1']
    # SSH's port 22 is never probed as unplanned.
    assert not [p for p in flat(plan) if p['port'] == 22]


def test_catalog_ports(catalog):
    ports = catalog_ports(catalog)
    assert {('tcp', 2379), ('tcp', 2380), ('udp', 8472), ('udp', 4789), ('tcp', 10251)} <= ports
    assert all(protocol in ('tcp', 'udp') for protocol, _port in ports)


@pytest.mark.parametrize('sources, probers, message', [
    ('some', PROBERS, "kubeports_verify_sources: unknown mode 'some'"),
    ('all', {'lost': {'roles': [], 'addresses': []}}, 'host lost has no address to probe from'),
])
def test_bad_input(sources, probers, message):
    with pytest.raises(PlanError) as exc:
        plan_probes([], probers, sources)
    assert message in str(exc.value)


# ------------------------------------------------------------------------------ report

def one_probe_plan(expected_by_source, protocol='tcp', port=2379):
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], [rule(protocol, str(port), CONTROL)])],
                       dict((name, PROBERS[name]) for name in expected_by_source), unplanned=False)
    for probe in flat(plan):
        assert probe['expected'] == expected_by_source[probe['source']]
    return plan


def listening(protocol='tcp', port=2379, kind='listening'):
    return {'etcd1': {kind: [{'protocol': protocol, 'port': port, 'family': 4}]}}


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
    assert [p['result'] for p in report['probes']] == [result]
    assert report['summary']['mismatches'] == (result == 'mismatch')
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
                                 'probe_seconds': 1.25}


@pytest.mark.parametrize('protocol, listeners, judged', [
    ('udp', listening('udp', kind='in_use'), False),
    ('tcp', listening('tcp', kind='in_use'), True),
    ('tcp', {}, False),
    ('tcp', {'etcd1': {'failed': True, 'msg': 'no python'}}, False),
])
def test_listener_state_decides_whether_a_probe_counts(protocol, listeners, judged):
    plan = one_probe_plan({'cp2': 'open'}, protocol)
    report = build_report(plan, listeners, results_for(plan, {'cp2': 'filtered'}))
    assert (report['summary']['probes'] == 1) is judged
    if not judged:
        assert report['not_probed'][0]['source'] == 'cp2'


def test_matrix_cells():
    plan = one_probe_plan({'cp2': 'open', 'w1': 'blocked', 'w2': 'blocked', 'out': 'blocked'})
    report = build_report(plan, listening(), results_for(plan, {'cp2': 'open', 'w1': 'filtered',
                                                                'w2': 'open', 'out': 'closed'}))
    rows = dict(((row['destination'], row['protocol'], row['port']), row['cells']) for row in report['matrix'])
    cells = rows[('etcd', 'tcp', 2379)]
    assert cells['controlplane'] == {'expected': 'open', 'probes': 1, 'ok': 1, 'mismatches': 0}
    assert cells['worker'] == {'expected': 'blocked', 'probes': 2, 'ok': 1, 'mismatches': 1}
    assert cells['none'] == {'expected': 'blocked', 'probes': 1, 'ok': 1, 'mismatches': 0}


def test_mixed_expectations_in_one_cell():
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], [rule('tcp', '9100', ['10.0.0.11/32'])])],
                       PROBERS, unplanned=False)
    report = build_report(plan, listening(port=9100), results_for(plan, dict((h, 'filtered') for h in PROBERS)))
    rows = dict(((row['destination'], row['port']), row['cells']) for row in report['matrix'])
    assert rows[('etcd', 9100)]['worker']['expected'] == 'mixed'


def test_text_and_markdown_reports():
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], [rule('tcp', '2379', CONTROL), rule('ipip', '', CONTROL)]),
                        target('w1', ['worker'], ['10.0.0.11'], [rule('tcp', '10250', CONTROL)])], PROBERS)
    listeners = dict((host, {'listening': [dict(item, family=4) for item in ports]})
                     for host, ports in plan['listeners'].items())
    results = {}
    for source, probes in plan['probes'].items():
        results[source] = {'results': [{'id': p['id'], 'detail': 'x', 'observed':
                                        'filtered' if (source, p['port']) == ('cp2', 2379) else
                                        'open' if p['expected'] == 'open' else 'filtered'} for p in probes]}
    report = build_report(plan, listeners, results)
    lines = report_lines(report)
    assert lines[0].startswith('%d probes: %d ok, 1 mismatches' % (report['summary']['probes'],
                                                                   report['summary']['ok']))
    assert lines[1].startswith('MISMATCHES')
    assert lines[2].startswith('  cp2 (controlplane, 10.0.0.2) -> etcd1 (etcd, 10.0.0.1) tcp/2379: '
                               'expected open, observed filtered (x) [tcp.2379]')
    assert any('etcd1 ipip: protocol-only rule' in line for line in lines)
    assert any(line.split()[:2] == ['worker', 'tcp/2379*'] for line in lines)
    markdown = report_markdown(report)
    assert markdown.startswith('# Reachability check')
    assert '| cp2 (controlplane, 10.0.0.2) | etcd1 (etcd, 10.0.0.1) | tcp/2379 | open | filtered | x | tcp.2379 |' \
        in markdown
    assert 'tcp/2379\\*' in markdown


def test_markdown_of_a_clean_run_says_none():
    plan = one_probe_plan({'cp2': 'open'})
    markdown = report_markdown(build_report(plan, listening(), results_for(plan, {'cp2': 'open'})))
    assert markdown.count('None.') == 2


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
