"""The audit playbook on one host of each firewall type (specs/all-backends.yml): firewalld,
ufw and SuSEfirewall2 audit clean after open-ports; on SuSEfirewall2, etcd opened to everyone
by hand is over-exposed (critical) and an owned token removed is missing. bare1 has no role.
"""

import json

import pytest

from conftest import cluster_layer, run_playbook
from test_audit import findings, states
from test_port_rules import module

CLUSTER = cluster_layer(['fwd1'], ['ufw1', 'suse1'], ['bare1'])
CONFIG = '/etc/sysconfig/SuSEfirewall2'
SHIM = '/usr/local/sbin/SuSEfirewall2'


@pytest.fixture(scope='module')
def converged(lab, tmp_path_factory):
    if not lab.by_firewall('susefirewall2'):
        pytest.skip('no susefirewall2 host in this lab (run with KPLAB_SPEC=.../all-backends.yml)')
    workdir = tmp_path_factory.mktemp('audit-backends')
    proc = run_playbook(lab, workdir, CLUSTER, 'open-ports.yml')
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    yield workdir
    for host in ('fwd1', 'ufw1', 'suse1'):
        module(lab, host, {'rules': []})


def run_audit(lab, workdir):
    proc = run_playbook(lab, workdir, CLUSTER, 'audit.yml', '-e', 'kubeports_audit_report_dir=%s/reports' % workdir)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    return audit_json(workdir)


def audit_json(workdir):
    with open('%s/reports/audit.json' % workdir) as handle:
        return json.load(handle)


def test_every_backend_audits_clean_then_suse_drift_is_found(lab, converged):
    before = states(lab)
    clean = run_audit(lab, converged)
    assert states(lab) == before
    assert clean['backends'] == {'fwd1': 'firewalld', 'ufw1': 'ufw', 'suse1': 'susefirewall2'}
    assert clean['skipped_hosts'] == ['bare1']
    assert clean['summary']['clean_hosts'] == 3, clean['hosts']
    lab.exec('suse1', ['cp', CONFIG, CONFIG + '.audit-test'], check=True)
    try:
        # etcd to everyone, by hand; the owned VXLAN tokens (from the cluster's nodes) taken out.
        lab.exec('suse1', ['sed', '-i', '-E', '-e', 's/^FW_SERVICES_EXT_TCP="/FW_SERVICES_EXT_TCP="2379 /',
                           '-e', '/^FW_SERVICES_ACCEPT_EXT=/s/ ?[^ "]+,udp,8472//g', CONFIG], check=True)
        lab.exec('suse1', [SHIM, 'start'], check=True)
        before = states(lab)
        drifted = run_audit(lab, converged)
        assert states(lab) == before
    finally:
        lab.exec('suse1', ['mv', CONFIG + '.audit-test', CONFIG])
        lab.exec('suse1', [SHIM, 'start'])
    found, baseline = findings(drifted, 'suse1'), findings(clean, 'suse1')
    assert found['over_exposed'] == [('tcp', '2379', 'critical')]
    assert found['missing'] == [('udp', '8472', 'high')]
    assert found['extra'] == [] and found['foreign'] == baseline['foreign']
    for host in ('fwd1', 'ufw1'):
        assert findings(drifted, host) == findings(clean, host)
