"""The probe_plan lookup and the verify plugins' documentation, through the installed collection."""

import os

import pytest

from test_required_ports import BIN, KUBESPRAY, lookup, run

ALL = "query('kubeports.firewall.probe_plan', *groups['all'])[0]"


def kubespray_with(tmp_path, old='', new='', extra=''):
    """The kubespray example inventory, edited: ``old`` replaced by ``new``, ``extra`` appended."""
    inventory = tmp_path / 'hosts.ini'
    with open(KUBESPRAY) as handle:
        inventory.write_text(handle.read().replace(old, new) + extra)
    return str(inventory)


def probes_of(plan):
    return [probe for probes in plan['probes'].values() for probe in probes]


def test_plan_over_a_kubespray_inventory():
    rc, plan = lookup(KUBESPRAY, ALL)
    assert rc == 0, plan
    assert sorted(plan['targets']) == ['cp1', 'cp2', 'cp3', 'node1', 'node2', 'node3']
    assert {'protocol': 'tcp', 'port': 2379} in plan['listeners']['cp1']
    # Workers may not reach etcd; the other control plane hosts may.
    expected = dict(((p['source'], p['target'], p['protocol'], p['port']), p['expected']) for p in probes_of(plan))
    assert expected[('node1', 'cp1', 'tcp', 2379)] == 'blocked'
    assert expected[('cp2', 'cp1', 'tcp', 2379)] == 'open'
    assert expected[('node2', 'node1', 'tcp', 10250)] == 'blocked'
    assert expected[('cp3', 'node1', 'tcp', 10250)] == 'open'
    assert expected[('node3', 'node1', 'tcp', 30000)] == 'open'
    assert expected[('node3', 'node1', 'tcp', 32767)] == 'open'
    # 2379 is not planned on workers: probed there too (by one host of each role), expecting it blocked.
    etcd_on_node1 = dict((p['source_roles'], p['expected']) for p in probes_of(plan)
                         if (p['target'], p['protocol'], p['port']) == ('node1', 'tcp', 2379))
    assert etcd_on_node1 == {'etcd+controlplane': 'blocked', 'worker': 'blocked'}
    assert all(p['source'] != p['target'] for p in probes_of(plan))


def test_outsider_probes_and_per_role_makes_fewer_probes(tmp_path):
    inventory = kubespray_with(tmp_path, extra='\n[clients]\nclient1 ansible_host=192.0.2.99\n')
    rc, every = lookup(inventory, ALL)
    assert rc == 0, every
    assert 'client1' not in every['targets'] and 'client1' in every['probes']
    assert set(p['source_roles'] for p in every['probes']['client1']) == {'none'}
    assert any(p['target'] == 'node1' and p['port'] == 10250 and p['expected'] == 'blocked'
               for p in every['probes']['client1'])
    rc, sampled = lookup(inventory, ALL, ['-e', 'kubeports_verify_sources=per_role'])
    assert rc == 0, sampled
    assert 0 < len(probes_of(sampled)) < len(probes_of(every))


@pytest.mark.parametrize('extra, message', [
    (['-e', 'kubeports_verify_sources=some'], 'some'),
    (['-e', '{"kubeports_role_groups": {"masters": ["kube_control_plane"]}}'],
     "kubeports_role_groups: unknown role 'masters'"),
])
def test_bad_input_fails_naming_the_value(extra, message):
    rc, output = lookup(KUBESPRAY, ALL, extra)
    assert rc != 0 and message in output


def test_outsider_without_address_is_named_and_does_not_probe(tmp_path):
    rc, plan = lookup(kubespray_with(tmp_path, extra='\n[clients]\nclient.example\n'), ALL)
    assert rc == 0, plan
    assert 'client.example' not in plan['probes'] and len(plan['run_id']) == 32
    assert [item['reason'] for item in plan['not_probed'] if item.get('source') == 'client.example'] == [
        'client.example does not probe: host client.example has no usable address: set kubeports_address '
        '(or ansible_host) to its IP address(es)']


def test_cluster_host_without_address_fails_naming_it(tmp_path):
    rc, output = lookup(kubespray_with(tmp_path, 'node3 ansible_host=192.0.2.23 ip=192.0.2.23', 'node3'), ALL)
    assert rc != 0 and 'host node3 has no usable address' in output


@pytest.mark.parametrize('kind, name, words', [
    ('lookup', 'kubeports.firewall.probe_plan', ['per_role', 'not_probed']),
    ('module', 'kubeports.firewall.probe_ports', ['filtered', 'concurrency']),
    ('module', 'kubeports.firewall.probe_listeners', ['lifetime', 'in_use']),
    ('filter', 'kubeports.firewall.verify_report', ['mismatches', 'not_probed']),
    ('role', 'kubeports.firewall.verify', ['kubeports_verify_sources', 'kubeports_verify_fail_on_mismatch']),
])
def test_documentation_renders(kind, name, words):
    result = run([os.path.join(BIN, 'ansible-doc'), '-t', kind, name])
    assert result.returncode == 0, result.stderr
    for word in words:
        assert word in result.stdout
