"""Judging a host's firewall against its plan (audit.py)."""

import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.audit import (
    exposure, judge, listening_sockets, summarize)

PEERS = ['10.0.0.1/32', '10.0.0.2/32', '10.7.3.9/32']
RULES = [
    {'protocol': 'tcp', 'port': '22', 'sources': ['0.0.0.0/0', '::/0'], 'description': 'SSH', 'references': ['ssh']},
    {'protocol': 'tcp', 'port': '2379-2380', 'sources': PEERS, 'description': 'etcd', 'references': ['etcd-doc']},
    {'protocol': 'tcp', 'port': '10250', 'sources': PEERS, 'description': 'kubelet', 'references': ['kubelet-doc']},
    {'protocol': 'udp', 'port': '8472', 'sources': PEERS, 'description': 'VXLAN', 'references': ['flannel']},
]
CONVERGED = [
    exposure('tcp', '22', None, 'ssh service'),
    exposure('tcp', '2379-2380', PEERS, 'owned etcd', owned=True),
    exposure('tcp', '10250', PEERS, 'owned kubelet', owned=True),
    exposure('udp', '8472', PEERS, 'owned vxlan', owned=True),
]


def categories(findings):
    return dict((name, len(entries)) for name, entries in findings.items() if entries)


@pytest.mark.parametrize('name, exposures, extra, expected', [
    ('converged', CONVERGED, [], {}),
    ('a planned port removed', [item for item in CONVERGED if item['port'] != '10250'], [], {'missing': 1}),
    ('one peer missing', CONVERGED[:2] + [exposure('tcp', '10250', PEERS[:2], 'owned', owned=True)] + CONVERGED[3:],
     [], {'missing': 1}),
    ('an owned rule left over', CONVERGED, ['port 9999/tcp'], {'extra': 1}),
    ('etcd to everyone by a foreign rule', CONVERGED + [exposure('tcp', '2379', ['0.0.0.0/0', '::/0'], 'foreign')],
     [], {'over_exposed': 1}),
    ('kubelet from anywhere on ufw', CONVERGED + [exposure('tcp', '10250', None, 'ufw allow 10250')], [],
     {'over_exposed': 1}),
    ('kubelet from a wider network', CONVERGED + [exposure('tcp', '10250', ['10.0.0.0/8'], 'wide')], [],
     {'over_exposed': 1}),
    ('cockpit in the zone', CONVERGED + [exposure('tcp', '9090', None, 'firewalld service cockpit')], [],
     {'foreign': 1}),
    ('a foreign rule inside the plan', CONVERGED + [exposure('tcp', '10250', PEERS[:1], 'narrow')], [], {}),
    ('zone target ACCEPT', CONVERGED + [exposure('all', '', None, 'target ACCEPT', scope='zone')], [],
     {'over_exposed': 1}),
    ('no firewall', [exposure('all', '', None, 'no active firewall', scope='zone')], [], {'over_exposed': 1}),
    ('ICMP is not judged', CONVERGED + [exposure('icmp', '', None, 'echo')], [], {}),
])
def test_each_drift_lands_in_its_category_only(name, exposures, extra, expected):
    assert categories(judge(RULES, exposures, extra)) == expected, name


def test_private_ports_open_to_anyone_are_critical_and_first():
    findings = judge(RULES, CONVERGED + [exposure('tcp', '10250', ['10.0.0.0/8'], 'wide'),
                                         exposure('tcp', '2379', None, 'foreign etcd')])
    assert [entry['severity'] for entry in findings['over_exposed']] == ['critical', 'high']
    assert findings['over_exposed'][0]['reference'] == 'etcd-doc'
    assert 'etcd' in findings['over_exposed'][0]['description']


def test_public_ports_are_allowed_to_be_public():
    rules = RULES + [{'protocol': 'tcp', 'port': '30000-32767', 'sources': ['0.0.0.0/0', '::/0']}]
    assert categories(judge(rules, CONVERGED + [exposure('tcp', '30000-32767', None, 'nodeports')])) == {}
    exposed = CONVERGED + [exposure('tcp', '10255', None, 'read-only kubelet')]
    assert categories(judge(RULES, exposed)) == {'over_exposed': 1}
    assert categories(judge(RULES, exposed, public_ports=['tcp/10255'])) == {'foreign': 1}


def test_missing_names_the_sources_not_admitted():
    exposures = CONVERGED[:2] + [exposure('tcp', '10250', PEERS[:2], 'owned', owned=True)] + CONVERGED[3:]
    missing = judge(RULES, exposures)['missing']
    assert missing == [{'protocol': 'tcp', 'port': '10250', 'sources': ['10.7.3.9/32'], 'description': 'kubelet',
                        'reference': 'kubelet-doc', 'severity': 'high'}]


def test_summary_counts_findings_and_clean_hosts():
    hosts = {'a': judge(RULES, CONVERGED), 'b': judge(RULES, CONVERGED + [exposure('tcp', '2379', None, 'x')]),
             'c': judge(RULES, CONVERGED + [exposure('tcp', '9090', None, 'cockpit')])}
    summary = summarize(hosts)
    assert summary == {'missing': 0, 'extra': 0, 'over_exposed': 1, 'foreign': 1, 'hosts': 3, 'clean_hosts': 2,
                       'critical': 1}


def test_listening_sockets_are_read_from_proc_net(tmp_path):
    (tmp_path / 'net').mkdir()
    header = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n'
    (tmp_path / 'net' / 'tcp').write_text(
        header + '   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1\n'
        '   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2\n'
        '   2: 0100000A:0050 0200000A:C350 01 00000000:00000000 00:00000000 00000000     0        0 3\n')
    (tmp_path / 'net' / 'udp6').write_text(
        header + '   0: 00000000000000000000000000000000:2118 00000000000000000000000000000000:0000 07 '
        '00000000:00000000 00:00000000 00000000     0        0 4\n')
    assert listening_sockets(str(tmp_path)) == [('tcp', '0.0.0.0', 22), ('udp', '::', 8472)]


PODS = {'protocol': 'all', 'port': '', 'sources': ['10.244.0.0/16'], 'description': 'pods'}
IPIP = {'protocol': 'ipip', 'port': '', 'sources': PEERS[:2], 'description': 'IP-in-IP'}
ETCD_SPLIT = [{'protocol': 'tcp', 'port': '2379-2380', 'sources': PEERS}, {'protocol': 'tcp', 'port': '2381', 'sources': PEERS}]


@pytest.mark.parametrize('name, rules, exposures, public, expected', [
    ('everyone of one family opens etcd to anyone', RULES, CONVERGED + [exposure('tcp', '2379', ['0.0.0.0/0'], 'x')],
     [], {'over_exposed': ['critical']}),
    ('everyone of IPv6 alone too', RULES, CONVERGED + [exposure('tcp', '10250', ['::/0'], 'x')], [],
     {'over_exposed': ['critical']}),
    ('halves of everyone are everyone', RULES, CONVERGED + [exposure('tcp', '2379', ['0.0.0.0/1', '128.0.0.0/1'], 'x')],
     [], {'over_exposed': ['critical']}),
    ("firewalld's ipencap is the planned IP-in-IP", [IPIP], [exposure('ipencap', '', PEERS[:2], 'own', owned=True)],
     [], {}),
    ('iptables protocol 4 is IP-in-IP, private', [IPIP], [exposure('4', '', None, 'x'),
                                                          exposure('ipip', '', PEERS[:2], 'own', owned=True)],
     [], {'over_exposed': ['critical']}),
    ('the plan counts as a whole: SSH from anyone beside the pod network', [RULES[0], PODS],
     [exposure('tcp', '22', None, 'ssh service'), exposure('all', '', ['10.244.0.0/16'], 'own', owned=True)], [], {}),
    ('two planned rules for one port admit their union', [RULES[2], dict(RULES[2], sources=['10.9.0.0/16'])],
     [exposure('tcp', '10250', PEERS + ['10.9.0.0/16'], 'x')], [], {}),
    ('a foreign range inside two planned ranges', ETCD_SPLIT,
     [exposure('tcp', '2379-2380', PEERS, 'own', owned=True), exposure('tcp', '2381', PEERS, 'own', owned=True),
      exposure('tcp', '2379-2381', PEERS, 'x')], [], {}),
    ('a planned network admitted in two halves', [dict(RULES[2], sources=['10.0.0.0/24'])],
     [exposure('tcp', '10250', ['10.0.0.0/25'], 'a'), exposure('tcp', '10250', ['10.0.0.128/25'], 'b')], [], {}),
    ('anyone admitted one family at a time', [RULES[0]],
     [exposure('tcp', '22', ['0.0.0.0/0'], 'v4'), exposure('tcp', '22', ['::/0'], 'v6')], [], {}),
    ('public ports allowed together', [], [exposure('tcp', '2379-2381', None, 'x')], ['tcp/2379', 'tcp/2380-2381'],
     {'foreign': ['info']}),
    ('a MAC or set source counts as anyone, no crash', RULES,
     CONVERGED + [exposure('all', '', ['52:54:00:12:34:56'], 'mac'), exposure('tcp', '80', ['10.0.0.1,tcp:80'], 'set')],
     [], {'over_exposed': ['critical'], 'foreign': ['info']}),
    ('one ufw rule listed per family is one finding', RULES,
     CONVERGED + [exposure('tcp', '10250', None, 'ufw rule allow 10250')] * 2,
     [], {'over_exposed': ['critical']}),
])
def test_judging_the_plan_as_a_whole(name, rules, exposures, public, expected):
    findings = judge(rules, exposures, public_ports=public)
    got = dict((category, [entry['severity'] for entry in entries]) for category, entries in findings.items() if entries)
    assert got == expected, (name, findings)


POD_DEVICES = {'protocol': 'all', 'port': '', 'sources': ['0.0.0.0/0', '::/0'], 'source_set': None,
               'interfaces': ['flannel.1', 'cali+'], 'description': 'Pod traffic on the CNI\'s devices',
               'references': ['https://kubernetes.io/pods']}


@pytest.mark.parametrize('name, exposures, expected', [
    ('planned devices trusted', [exposure('all', '', None, 'trusted flannel.1', interfaces=['flannel.1']),
                                 exposure('all', '', None, 'trusted cali+', owned=True, interfaces=['cali+'])],
     {}),
    ('a device missing', [exposure('all', '', None, 'trusted flannel.1', interfaces=['flannel.1'])],
     {'missing': ['cali+']}),
    ('a device no rule plans', [exposure('all', '', None, 'trusted flannel.1', interfaces=['flannel.1']),
                                exposure('all', '', None, 'trusted cali+', interfaces=['cali+']),
                                exposure('all', '', None, 'trusted docker0', interfaces=['docker0'])],
     {'foreign': ['docker0']}),
    ('no firewall admits everything everywhere', [exposure('all', '', None, 'no active firewall', scope='zone')],
     {}),
    ('a wildcard covers a device', [exposure('all', '', None, 'trusted flannel.1', interfaces=['flannel.1']),
                                    exposure('all', '', None, 'trusted cali+', interfaces=['cali+']),
                                    exposure('all', '', None, 'trusted cali12', interfaces=['cali12'])],
     {}),
])
def test_trust_on_interfaces_is_judged_by_interface_never_as_open_to_anyone(name, exposures, expected):
    findings = judge([POD_DEVICES], exposures)
    assert not [entry for entry in findings['over_exposed'] if 'trusted' in entry['description']], name
    for category in ('missing', 'foreign'):
        assert [entry['interfaces'] for entry in findings[category]] == [
            [device] for device in expected.get(category, [])], name
