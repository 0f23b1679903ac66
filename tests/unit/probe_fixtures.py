"""Probers, targets and rules shared by the probe planner and verify report tests."""

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
