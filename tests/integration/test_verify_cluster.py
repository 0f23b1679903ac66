"""The verify playbook on a running flannel overlay (specs/cluster-backends.yml, every backend).

The kernel's VXLAN sockets hold 8472/udp on every node, so no kubeports listener can echo a
nonce there. The probes between nodes prove the port with traffic through the overlay
instead (an ICMP echo from the prober's flannel.1 to the target's, and over flannel-v6.1 for
IPv6); the outsider, which has no VXLAN device, is either refused (proven blocked) or named
unproven with the owner of the port, never passed on silence.

Run with KPLAB_SPEC=$PWD/tests/integration/lab/specs/cluster-backends.yml. The cluster and
overlay fixtures are those of test_cluster_traffic.py.
"""

import json
import os

from conftest import run_playbook
from test_cluster_traffic import (  # noqa: F401  pylint: disable=unused-import
    FLANNEL, NODES, OUTSIDER, cluster_lab, flannel_applied, inventory, overlay, workdir)

VXLAN = 8472


def verify_report(lab, workdir):  # noqa: F811  pylint: disable=redefined-outer-name
    reports = os.path.join(str(workdir), 'verify-reports')
    path = os.path.join(reports, 'verify.json')
    if os.path.exists(path):
        os.unlink(path)
    proc = run_playbook(lab, workdir, inventory(FLANNEL), 'verify.yml', '-e', 'kubeports_verify_report_dir=' + reports,
                        '-e', 'kubeports_verify_fail_on_mismatch=false', '-f', '10', timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    with open(path) as handle:
        report = json.load(handle)
    with open(os.path.join(reports, 'verify.md')) as handle:
        markdown = handle.read()
    return proc, report, markdown


def where(item):
    return '%s -> %s %s %s/%s: %s %s' % (item['source'], item['target'], item['address'], item['protocol'],
                                         item['port'], item.get('method'), item.get('reason') or item.get('detail'))


def test_verify_proves_the_vxlan_port_through_the_running_overlay(cluster_lab, workdir, overlay):  # noqa: F811
    proc, report, markdown = verify_report(cluster_lab, workdir)
    vxlan = [p for p in report['probes'] if p['protocol'] == 'udp' and p['port'] == VXLAN]
    unproven = [item for item in report['not_probed'] if item.get('protocol') == 'udp' and
                str(item.get('port')) == str(VXLAN) and item.get('source')]
    # No false mismatch anywhere, and none on the overlay port.
    assert report['mismatches'] == [], '\n'.join(map(where, report['mismatches']))
    # Nothing is left unproven because "something else" holds the port: the owner is named.
    assert not [item for item in report['not_probed'] if 'in use by another process' in item.get('reason', '')]
    # Every node-to-node probe of 8472 (both families) went through the overlay and passed.
    between = [p for p in vxlan if p['source'] in NODES]
    assert len(between) == len(NODES) * (len(NODES) - 1) * 2, '\n'.join(map(where, between + unproven))
    assert all(p['method'] == 'overlay' and p['expected'] == 'open' and p['outcome'] == 'passed' for p in between), \
        '\n'.join(map(where, between))
    assert set(p['via'] for p in between) == {'flannel.1', 'flannel-v6.1'}
    assert all('proves %d/udp of %s from %s and %d/udp of %s from %s' % (
        VXLAN, p['target'], p['source'], VXLAN, p['source'], p['target']) in p['detail'] for p in between)
    assert not [item for item in unproven if item['source'] in NODES], '\n'.join(map(where, unproven))
    # The outsider has no VXLAN device: refused (proven blocked) or unproven with the owner named.
    outsider = [p for p in vxlan if p['source'] == OUTSIDER] + [item for item in unproven if item['source'] == OUTSIDER]
    assert len(outsider) == len(NODES) * 2
    for item in outsider:
        assert item['method'] == 'datagram' and item['expected'] == 'blocked', where(item)
        assert item['outcome'] in ('passed', 'unproven'), where(item)
        assert item['owner'].startswith('kernel vxlan device flannel'), where(item)
        if item['outcome'] == 'unproven':
            assert 'no answer proves neither open nor blocked' in item['reason'], where(item)
            assert 'has no vxlan device on port 8472' in item['reason'], where(item)
    # The report counts results by method and outcome, in JSON, text and Markdown.
    methods = report['summary']['methods']
    assert methods['overlay']['passed'] == len(between) and methods['overlay']['failed'] == 0
    assert methods['connect']['passed'] > 0 and methods['echo']['passed'] > 0
    assert report['summary']['unproven'] == sum(counts['unproven'] for counts in methods.values())
    assert '| overlay | %d | 0 | 0 |' % len(between) in markdown
    assert 'BY METHOD (passed, failed, unproven):' in proc.stdout
