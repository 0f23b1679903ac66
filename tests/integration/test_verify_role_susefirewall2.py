"""The verify playbook on one host of each firewall type (specs/all-backends.yml): firewalld,
ufw and SuSEfirewall2 targets, a host without firewall probing as an outsider. A port the
cluster opens elsewhere, opened by hand on the SuSEfirewall2 host, is reported.
"""

import pytest

from conftest import run_playbook
from test_port_rules import module
from test_verify_role import PROFILE, assert_nothing_left, key, verify

CLUSTER = {
    'all': {
        'children': {
            'kube_control_plane': {'hosts': {'fwd1': None}},
            'etcd': {'hosts': {'fwd1': None}},
            'kube_node': {'hosts': {'ufw1': None, 'suse1': None}},
            'outside': {'hosts': {'bare1': None}},
        },
        'vars': PROFILE,
    },
}
CONFIG = '/etc/sysconfig/SuSEfirewall2'
OPEN_2379 = 's/^FW_SERVICES_EXT_TCP="/FW_SERVICES_EXT_TCP="2379 /'
CLOSE_2379 = 's/^FW_SERVICES_EXT_TCP="2379 /FW_SERVICES_EXT_TCP="/'


@pytest.fixture(scope='module')
def converged(lab, tmp_path_factory):
    if not lab.by_firewall('susefirewall2'):
        pytest.skip('no susefirewall2 host in this lab (run with KPLAB_SPEC=.../all-backends.yml)')
    workdir = tmp_path_factory.mktemp('verify-backends')
    proc = run_playbook(lab, workdir, CLUSTER, 'open-ports.yml')
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    yield workdir
    for host in ('fwd1', 'ufw1', 'suse1'):
        module(lab, host, {'rules': []})


def test_every_backend_verified_then_a_hand_opened_port_found(lab, converged):
    proc, healthy = verify(lab, converged, inventory_cluster=CLUSTER)
    assert proc.returncode == 0 and healthy['summary']['mismatches'] == 0, proc.stdout[-6000:]
    targets = set((p['target'], p['expected']) for p in healthy['probes'])
    for host in ('fwd1', 'ufw1', 'suse1'):
        assert {(host, 'open'), (host, 'blocked')} <= targets
    wanted = set(key(p) for p in healthy['probes'] if p['target'] == 'suse1' and p['port'] == 2379)
    assert wanted and all(not p['planned'] for p in healthy['probes'] if key(p) in wanted)
    try:
        lab.exec('suse1', ['sed', '-i', OPEN_2379, CONFIG], check=True)
        lab.exec('suse1', ['/usr/local/sbin/SuSEfirewall2', 'start'], check=True)
        proc, report = verify(lab, converged, inventory_cluster=CLUSTER)
        assert proc.returncode != 0
        assert set(map(key, report['mismatches'])) == wanted
    finally:
        lab.exec('suse1', ['sed', '-i', CLOSE_2379, CONFIG])
        lab.exec('suse1', ['/usr/local/sbin/SuSEfirewall2', 'start'])
    assert_nothing_left(lab)
