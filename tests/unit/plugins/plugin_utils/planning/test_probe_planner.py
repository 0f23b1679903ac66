"""Probe planning (plugins/plugin_utils/planning/probe_planner.py)."""

import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.probe_planner import (
    catalog_ports, plan_probes, probe_ports, role_label)

from probe_fixtures import CONTROL, ETCD, PROBERS, flat, rule, target

# Several hosts per label, for per_role: target t (etcd) is probed by these.
CROWD = dict([('t', {'roles': ['etcd'], 'addresses': ['10.0.9.9']})] +
             [('cp%d' % n, {'roles': ['controlplane'], 'addresses': ['10.0.1.%d' % n]}) for n in (1, 2, 3, 4)] +
             [('w%d' % n, {'roles': ['worker'], 'addresses': ['10.0.2.%d' % n]}) for n in (1, 2, 3)] +
             [('x%d' % n, {'roles': [], 'addresses': ['192.0.2.%d' % n]}) for n in (1, 2)])
# cp1-cp3 and w1 allowed; cp4, w2, w3, x1, x2 not.
CROWD_SOURCES = ['10.0.1.0/30', '10.0.2.1/32']


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


def test_protocol_all_rule_counts_for_every_port():
    rules = [rule('all', '', ['10.0.0.11/32']), rule('tcp', '10250', ['10.0.0.2/32'])]
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], rules)], PROBERS, other_ports=[('tcp', 6443)])
    assert expectations(plan, source='w1') == [('w1', ETCD, 6443, 'open'), ('w1', ETCD, 10250, 'open')]
    assert expectations(plan, source='w2') == [('w2', ETCD, 6443, 'blocked'), ('w2', ETCD, 10250, 'blocked')]
    # The rule itself is said not to be probed; the ports it opens are not listed as unprobeable.
    assert [item['protocol'] for item in plan['not_probed']] == ['all']


def test_the_cnis_devices_admit_no_probe_from_the_node_network():
    devices = dict(rule('all', '', ['0.0.0.0/0', '::/0']), interfaces=['flannel.1', 'cni0'])
    plan = plan_probes([target('etcd1', ['etcd'], [ETCD], [rule('tcp', '2379', CONTROL), devices])],
                       PROBERS, unplanned=False)
    assert expectations(plan, port=2379, expected='open') == [('cp2', ETCD, 2379, 'open')]
    assert sorted(p['source'] for p in flat(plan) if p['port'] == 2379 and p['expected'] == 'blocked'
                  and p['address'] == ETCD) == ['out', 'w1', 'w2']
