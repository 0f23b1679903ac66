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

# Several hosts per label, for per_role: target t (etcd) is probed by these.
CROWD = dict([('t', {'roles': ['etcd'], 'addresses': ['10.0.9.9']})] +
             [('cp%d' % n, {'roles': ['controlplane'], 'addresses': ['10.0.1.%d' % n]}) for n in (1, 2, 3, 4)] +
             [('w%d' % n, {'roles': ['worker'], 'addresses': ['10.0.2.%d' % n]}) for n in (1, 2, 3)] +
             [('x%d' % n, {'roles': [], 'addresses': ['192.0.2.%d' % n]}) for n in (1, 2)])
# cp1-cp3 and w1 allowed; cp4, w2, w3, x1, x2 not.
CROWD_SOURCES = ['10.0.1.0/30', '10.0.2.1/32']


def flat(plan):
    return [probe for probes in plan['probes'].values() for probe in probes]


def expectations(plan, **match):
    return sorted((p['source'], p['address'], p['port'], p['expected']) for p in flat(plan)
                  if all(p[key] == value for key, value in match.items()))


# ------------------------------------------------------------------------ labels, ports

@pytest.mark.parametrize('roles, label', [
    (['worker', 'etcd'], 'etcd+worker'),
    (['controlplane', 'etcd'], 'etcd+controlplane'),
    (('rancher', 'bootstrap', 'registry', 'worker', 'controlplane', 'etcd'),
     'etcd+controlplane+worker+registry+bootstrap+rancher'),
    ({'worker'}, 'worker'),
    ([], 'none'),
    ((), 'none'),
    (['rancher', 'registry'], 'registry+rancher'),
])
def test_role_label(roles, label):
    assert role_label(roles) == label


@pytest.mark.parametrize('port, probed', [
    ('6443', [6443]), (6443, [6443]), ('30000-32767', [30000, 32767]), ('53-53', [53]),
])
def test_probe_ports(port, probed):
    assert probe_ports(port) == probed


# ------------------------------------------------------------------------ plan_probes

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
    assert plan['targets'] == {'etcd1': {'roles': 'etcd+controlplane', 'addresses': [ETCD, 'fd00::1']}}


@pytest.mark.parametrize('sources, target_address, expected', [
    # An IPv6 address is probed only by probers that have one, from their IPv6 address.
    (['fd00::/64'], 'fd00::2', [('etcd1', 'fd00::1', 'open'), ('out', 'fd00::99', 'open'),
                                ('w1', 'fd00::11', 'open')]),
    (['fd00::11/128'], 'fd00::2', [('etcd1', 'fd00::1', 'blocked'), ('out', 'fd00::99', 'blocked'),
                                   ('w1', 'fd00::11', 'open')]),
    # IPv4 sources say nothing about IPv6: every IPv6 prober is outside them.
    (['10.0.0.0/8'], 'fd00::2', [('etcd1', 'fd00::1', 'blocked'), ('out', 'fd00::99', 'blocked'),
                                 ('w1', 'fd00::11', 'blocked')]),
    (['10.0.0.0/30'], '10.0.0.3', [('cp2', '10.0.0.2', 'open'), ('etcd1', ETCD, 'open'),
                                   ('out', '192.0.2.9', 'blocked'), ('w1', '10.0.0.11', 'blocked'),
                                   ('w2', '10.0.0.12', 'blocked')]),
])
def test_probes_follow_the_target_address_family(sources, target_address, expected):
    plan = plan_probes([target('t', ['worker'], [target_address], [rule('tcp', '80', sources)])],
                       PROBERS, unplanned=False)
    assert sorted((p['source'], p['source_address'], p['expected']) for p in flat(plan)) == expected


@pytest.mark.parametrize('sources', ['all', 'per_role'])
def test_no_probe_from_a_host_to_itself(sources):
    plans = [target(name, info['roles'], info['addresses'], [rule('tcp', '80', ['0.0.0.0/0', '::/0']),
                                                             rule('udp', '53', ['10.0.0.0/8'])])
             for name, info in PROBERS.items()]
    plan = plan_probes(plans, PROBERS, sources)
    assert flat(plan)
    assert [p for p in flat(plan) if p['source'] == p['target']] == []
    assert sorted(plan['listeners']) == sorted(PROBERS)


def test_ranges_probe_both_ends_and_overlapping_rules_unite_sources():
    rules = [rule('tcp', '30000-32767', ['10.0.0.11/32']), rule('tcp', '30080', ['10.0.0.12/32'])]
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], rules)], PROBERS, unplanned=False)
    assert expectations(plan, source='w2', expected='open') == [('w2', ETCD, 30080, 'open')]
    assert expectations(plan, source='w1', expected='open') == [
        ('w1', ETCD, 30000, 'open'), ('w1', ETCD, 30080, 'open'), ('w1', ETCD, 32767, 'open')]
    assert [item['port'] for item in plan['listeners']['etcd1']] == [30000, 32767, 30080]
    inside = [p for p in flat(plan) if p['port'] == 30080]
    assert all(p['ids'] == ['tcp.30000-32767', 'tcp.30080'] and p['rule'] == '30000-32767' for p in inside)


def test_overlapping_rules_with_nested_sources_unite_sources():
    # w1 (10.0.0.11) is inside the range rule's 10.0.0.0/24, so 30080 is open to it too.
    rules = [rule('tcp', '30000-32767', ['10.0.0.0/24']), rule('tcp', '30080', ['10.0.0.2/32'])]
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], rules)], PROBERS, unplanned=False)
    assert expectations(plan, port=30080, address=ETCD) == [
        ('cp2', ETCD, 30080, 'open'), ('out', ETCD, 30080, 'blocked'),
        ('w1', ETCD, 30080, 'open'), ('w2', ETCD, 30080, 'open')]


@pytest.mark.parametrize('rules, listeners', [
    ([rule('tcp', '2379', CONTROL), rule('tcp', '2379', ['10.0.0.11/32']), rule('udp', '2379', CONTROL)],
     [('tcp', 2379), ('udp', 2379)]),
    ([rule('tcp', '30000-32767', CONTROL), rule('tcp', '32767', CONTROL), rule('tcp', '30000', CONTROL)],
     [('tcp', 30000), ('tcp', 32767)]),
    ([rule('udp', '8472', CONTROL), rule('ipip', '', CONTROL), rule('sctp', '9999', CONTROL)], [('udp', 8472)]),
])
def test_listeners_list_each_port_once(rules, listeners):
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], rules)], PROBERS, unplanned=False)
    assert [(item['protocol'], item['port']) for item in plan['listeners']['etcd1']] == listeners


@pytest.mark.parametrize('extra, reason', [
    (rule('ipip', '', ['10.0.0.0/24']), 'protocol-only rule: no port to probe; ipip traffic is not proven'),
    (rule('esp', '', ['10.0.0.0/24']), 'protocol-only rule: no port to probe; esp traffic'),
    (rule('sctp', '9999', ['10.0.0.0/24']), 'SCTP is not probed (only TCP and UDP are)'),
    (rule('tcp', '10248', ['10.0.0.1/32']), 'only the host itself may connect'),
    (rule('udp', '10248', ['10.0.0.1']), 'only the host itself may connect'),
    (rule('tcp', '22', ['203.0.113.5/32'], components=['ssh']), 'no probing host is among the allowed sources '
                                                                '(203.0.113.5/32)'),
])
def test_not_probed_with_reason(extra, reason):
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], [extra])], PROBERS, unplanned=False)
    assert len(plan['not_probed']) == 1
    item = plan['not_probed'][0]
    assert reason in item['reason']
    assert (item['target'], item['protocol'], item['port'], item['ids']) == (
        'etcd1', extra['protocol'], extra['port'], extra['ids'])


def test_self_only_port_is_still_probed_blocked_from_others():
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], [rule('tcp', '10248', ['10.0.0.1/32'])])],
                       PROBERS, unplanned=False)
    assert set(p['expected'] for p in flat(plan)) == {'blocked'}
    assert sorted(plan['probes']) == ['cp2', 'out', 'w1', 'w2']


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


PORTS = (1001, 1002, 1003, 1004, 1005, 1006)


@pytest.fixture(scope='module')
def per_role_plan():
    rules = [rule('tcp', str(port), CROWD_SOURCES) for port in PORTS]
    return plan_probes([target('t', ['etcd'], ['10.0.9.9'], rules)], CROWD, sources='per_role', unplanned=False)


@pytest.mark.parametrize('port', PORTS)
def test_per_role_one_allowed_and_one_denied_prober_per_label(per_role_plan, port):
    chosen = sorted((p['expected'], p['source_roles']) for p in flat(per_role_plan) if p['port'] == port)
    assert chosen == [('blocked', 'controlplane'), ('blocked', 'none'), ('blocked', 'worker'),
                      ('open', 'controlplane'), ('open', 'worker')]


@pytest.mark.parametrize('label, expected, sources', [
    ('controlplane', 'open', ['cp1', 'cp2', 'cp3', 'cp1', 'cp2', 'cp3']),
    ('controlplane', 'blocked', ['cp4'] * 6),
    ('worker', 'open', ['w1'] * 6),
    ('worker', 'blocked', ['w2', 'w3', 'w2', 'w3', 'w2', 'w3']),
    ('none', 'blocked', ['x1', 'x2', 'x1', 'x2', 'x1', 'x2']),
])
def test_per_role_spreads_picks_over_ports(per_role_plan, label, expected, sources):
    picks = sorted((p['port'], p['source']) for p in flat(per_role_plan)
                   if p['source_roles'] == label and p['expected'] == expected)
    assert [source for _port, source in picks] == sources


def test_per_role_skips_the_target_itself():
    rules = [rule('tcp', str(port), ['10.0.1.0/24']) for port in (1, 2, 3)]
    plan = plan_probes([target('cp1', ['controlplane'], ['10.0.1.1'], rules)], CROWD, 'per_role', unplanned=False)
    picks = sorted((p['port'], p['source']) for p in flat(plan) if p['source_roles'] == 'controlplane')
    assert picks == [(1, 'cp2'), (2, 'cp3'), (3, 'cp4')]


def test_unplanned_ports_are_probed_blocked_from_one_host_per_label():
    plans = [target('etcd1', ['etcd'], [ETCD], [rule('tcp', '2379', CONTROL)]),
             target('w1', ['worker'], ['10.0.0.11'], [rule('tcp', '10250', CONTROL)])]
    plan = plan_probes(plans, PROBERS, other_ports=[('udp', 4789), ('tcp', 22)])
    unplanned = [p for p in flat(plan) if not p['planned']]
    on_worker = sorted((p['port'], p['source_roles']) for p in unplanned if p['target'] == 'w1')
    assert on_worker == [(2379, 'controlplane'), (2379, 'etcd+controlplane'), (2379, 'none'), (2379, 'worker'),
                         (4789, 'controlplane'), (4789, 'etcd+controlplane'), (4789, 'none'), (4789, 'worker')]
    assert all(p['expected'] == 'blocked' and p['ids'] == [] for p in unplanned)
    assert {'protocol': 'udp', 'port': 4789} in plan['listeners']['w1']
    assert {'protocol': 'tcp', 'port': 10250} in plan['listeners']['etcd1']
    # SSH's port 22 is never probed as unplanned.
    assert not [p for p in flat(plan) if p['port'] == 22]


@pytest.mark.parametrize('unplanned, labels', [(False, []), (True, ['controlplane', 'none', 'worker'])])
def test_unplanned_switch(unplanned, labels):
    # etcd1's own label (etcd+controlplane) has no other host: nobody of it probes etcd1.
    plans = [target('etcd1', ['etcd'], [ETCD], [rule('tcp', '2379', CONTROL)])]
    plan = plan_probes(plans, PROBERS, unplanned=unplanned, other_ports=[('udp', 4789)])
    assert sorted(p['source_roles'] for p in flat(plan) if not p['planned']) == labels
    assert ({'protocol': 'udp', 'port': 4789} in plan['listeners']['etcd1']) is unplanned


def test_catalog_port_inside_a_planned_range_follows_the_range():
    plans = [target('w1', ['worker'], ['10.0.0.11'], [rule('tcp', '30000-32767', ['10.0.0.0/24'])])]
    plan = plan_probes(plans, PROBERS, other_ports=[('tcp', 30080)])
    inside = [p for p in flat(plan) if p['port'] == 30080]
    assert inside and all(p['planned'] for p in inside)
    assert sorted((p['source'], p['expected']) for p in inside) == [
        ('cp2', 'open'), ('etcd1', 'open'), ('out', 'blocked'), ('w2', 'open')]


def test_catalog_ports(catalog):
    ports = catalog_ports(catalog)
    assert {('tcp', 2379), ('tcp', 2380), ('udp', 8472), ('udp', 4789), ('tcp', 10251)} <= ports
    assert all(protocol in ('tcp', 'udp') for protocol, _port in ports)


def test_probe_ids_are_unique_and_numbered_by_source():
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD, 'fd00::1'], [rule('tcp', '2379', CONTROL)])], PROBERS)
    ids = [p['id'] for source in sorted(plan['probes']) for p in plan['probes'][source]]
    assert ids == ['p%d' % n for n in range(1, len(ids) + 1)]


@pytest.mark.parametrize('sources, probers, message', [
    ('some', PROBERS, "kubeports_verify_sources: unknown mode 'some' (choose from all, per_role)"),
    ('All', PROBERS, "unknown mode 'All'"),
    ('per_role', dict(PROBERS, gone={'roles': ['worker']}), 'host gone has no address to probe from'),
])
def test_bad_input(sources, probers, message):
    with pytest.raises(PlanError) as exc:
        plan_probes([], probers, sources)
    assert message in str(exc.value)


def test_outsider_without_address_does_not_probe_and_is_reported():
    probers = dict(PROBERS, lost={'roles': [], 'addresses': [], 'reason': 'host lost has no usable address'})
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], [rule('tcp', '2379', CONTROL)])], probers, unplanned=False)
    assert 'lost' not in plan['probes']
    assert [item['reason'] for item in plan['not_probed']] == ['lost does not probe: host lost has no usable address']
    report = build_report(plan, listening(), results_for(plan, dict((h, 'filtered') for h in PROBERS)))
    assert '  lost does not probe: host lost has no usable address' in report_lines(report)
    assert '| lost | - | - | lost does not probe: host lost has no usable address |' in report_markdown(report)


def test_protocol_all_rule_counts_for_every_port():
    rules = [rule('all', '', ['10.0.0.11/32']), rule('tcp', '10250', ['10.0.0.2/32'])]
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], rules)], PROBERS, other_ports=[('tcp', 6443)])
    assert expectations(plan, source='w1') == [('w1', ETCD, 6443, 'open'), ('w1', ETCD, 10250, 'open')]
    assert expectations(plan, source='w2') == [('w2', ETCD, 6443, 'blocked'), ('w2', ETCD, 10250, 'blocked')]
    # The rule itself is said not to be probed; the ports it opens are not listed as unprobeable.
    assert [item['protocol'] for item in plan['not_probed']] == ['all']


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
    assert [(item['address'], item['reason'][:24]) for item in report['not_probed']] == [
        (ETCD, 'UDP port in use by anoth')]


def test_probe_error_on_the_probing_host_is_not_judged():
    plan = one_probe_plan({'cp2': 'open'})
    results = results_for(plan, {'cp2': 'error'})
    results['cp2']['results'][0]['detail'] = 'cannot probe from this host: Address family not supported'
    report = build_report(plan, listening(), results)
    assert report['summary']['probes'] == 0
    assert report['not_probed'][0]['reason'] == 'cannot probe from this host: Address family not supported'


# ------------------------------------------------------------------------------ report

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
                                 'probe_seconds': 1.25}


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
    ('udp', listening('udp', kind='in_use'), False, 'UDP port in use by another process on etcd1: without the '
                                                    'kubeports echo a UDP probe proves nothing'),
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
                                 'probe_seconds': 1.25}


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
    assert '| cp2 (controlplane, 10.0.0.2) | etcd1 (etcd, 10.0.0.1) | tcp/2379 | open | filtered | x | tcp.2379 |' \
        in markdown
    assert '| - | etcd1 | ipip | protocol-only rule' in markdown
    assert '| worker | tcp/2379\\* |' in markdown
    assert '| etcd | tcp/2379 |' in markdown
    assert 'None.' not in markdown


def test_markdown_of_a_clean_run_says_none():
    plan = one_probe_plan({'cp2': 'open'})
    markdown = report_markdown(build_report(plan, listening(), results_for(plan, {'cp2': 'open'})))
    assert markdown.count('None.') == 2
    assert '## Mismatches\n\nNone.\n' in markdown and '## Not probed\n\nNone.\n' in markdown
    assert '| etcd | tcp/2379 | open 1/1 |' in markdown


def test_markdown_without_any_probe():
    markdown = report_markdown(build_report({'probes': {}, 'not_probed': [], 'targets': {}}, {}, {}))
    assert markdown.count('None.') == 2
    assert '| Destination |' not in markdown
    assert '0 probes over 0 hosts: **0 ok, 0 mismatches**; 0 not probed.' in markdown


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
