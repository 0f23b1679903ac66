"""The hosts outside a limited run that must admit its hosts (peer_updates.py)."""

import netaddr
import pytest

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_planner import (
    InventoryPlanner, plan_request)
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.peer_updates import (
    hosts_to_update, not_yet_admitting, update_command, update_note)
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import host_view, is_whole_family, rule_sources

COMMON = {'kubeports_cni': 'calico', 'kubeports_calico_backend': 'bird', 'kubeports_admin_cidrs': ['192.0.2.10']}
ADDRESSES = {'cp1': '10.0.3.1', 'cp2': '10.44.0.9', 'cp3': '10.0.3.2', 'w1': '172.16.5.5', 'w2': '10.0.3.3',
             'w3': '10.200.1.1', 'reg': '10.9.9.9', 'jump': '10.0.0.254'}


def planner(extra_workers=()):
    control = ['cp1', 'cp2', 'cp3']
    workers = ['w1', 'w2', 'w3'] + list(extra_workers)
    hostvars = dict((host, dict(COMMON, ansible_host=ADDRESSES.get(host, '10.77.0.%d' % (index + 1))))
                    for index, host in enumerate(control + workers + ['reg', 'jump']))
    groups = {'all': control + workers + ['reg', 'jump'], 'kube_control_plane': control, 'etcd': control,
              'kube_node': workers, 'k8s_cluster': control + workers, 'registry': ['reg'], 'bastion': ['jump']}
    return groups, hostvars


@pytest.mark.parametrize('run, hosts, sets', [
    # A new worker: every cluster host and the registry (its pulls) hold it in the cluster
    # set; the bastion, planned for nothing, holds none.
    (['w4'], ['cp1', 'cp2', 'cp3', 'reg', 'w1', 'w2', 'w3'], ['cluster']),
    # A new control plane: held by the other control planes (etcd, API sets), the workers and the registry.
    (['cp3'], ['cp1', 'cp2', 'reg', 'w1', 'w2', 'w3', 'w4'], None),
    # The whole inventory: nobody outside.
    (['cp1', 'cp2', 'cp3', 'w1', 'w2', 'w3', 'w4', 'reg', 'jump'], [], []),
    # A host without a role (no addresses planned) is held by nobody.
    (['jump'], [], []),
    # A job slice: the other slice's hosts hold its hosts.
    (['cp1', 'w1', 'w3'], ['cp2', 'cp3', 'reg', 'w2', 'w4'], None),
])
def test_hosts_outside_the_run_that_hold_its_hosts(run, hosts, sets):
    groups, hostvars = planner(['w4'])
    found = hosts_to_update(InventoryPlanner(groups, hostvars), run)
    assert found['hosts'] == hosts
    if sets is not None:
        assert found['sets'] == sets
    # The same answer as reading every host's whole plan.
    document = plan_request(groups, hostvars, None, [], [])
    run_addresses = dict((netaddr.IPAddress(hostvars[host]['ansible_host']), host) for host in run)
    expected, members = [], set()
    for entry in document['hosts'].values():
        if entry['host'] in run:
            continue
        view = host_view(document, entry)
        held = set()
        for rule in view['rules']:
            sources = rule_sources(rule, view['sets'], entry['host'])
            if any(is_whole_family(source) for source in sources):
                continue  # open to anyone
            peers = netaddr.IPSet(sources)
            held.update(host for address, host in run_addresses.items() if address in peers)
        if held:
            expected.append(entry['host'])
            members.update(held)
    assert sorted(expected) == hosts
    assert found['members'] == sorted(members)


def test_the_plan_document_carries_it_only_when_asked():
    groups, hostvars = planner(['w4'])
    assert 'peers_to_update' not in plan_request(groups, hostvars, None, [], ['w4'])
    document = plan_request(groups, hostvars, None, [], ['w4'], run_hosts=['w4'])
    assert document['peers_to_update']['members'] == ['w4']
    assert list(document['hosts']) == ['w4']


@pytest.mark.parametrize('hosts, run, inventories, expected', [
    (['cp1', 'w1'], ['w4'], ['inventory/mycluster/inventory.ini'],
     'ansible-playbook kubeports.firewall.open_ports -i inventory/mycluster/inventory.ini --limit cp1,w1'),
    (['node%02d' % index for index in range(20)], ['new1', 'new2'], ['/srv/inv dir/hosts.yml'],
     "ansible-playbook kubeports.firewall.open_ports -i '/srv/inv dir/hosts.yml' --limit 'all:!new1:!new2'"),
    (['node%02d' % index for index in range(20)], ['slice%02d' % index for index in range(20)], ['a.ini', 'b.yml'],
     'ansible-playbook kubeports.firewall.open_ports -i a.ini -i b.yml'),
    (['cp1'], ['w4'], None, 'ansible-playbook kubeports.firewall.open_ports --limit cp1'),
])
def test_update_command(hosts, run, inventories, expected):
    assert update_command(hosts, run, inventories) == expected


def test_holders_group_the_hosts_outside_by_what_they_hold():
    groups, hostvars = planner(['w4'])
    found = hosts_to_update(InventoryPlanner(groups, hostvars), ['cp3', 'w4'])
    assert sorted(host for holder in found['holders'] for host in holder['hosts']) == found['hosts']
    by_host = dict((host, holder['members']) for holder in found['holders'] for host in holder['hosts'])
    # Workers hold both in the cluster set; the other control planes hold cp3 in etcd's sets too.
    assert by_host['w1'] == ['cp3', 'w4'] and by_host['cp1'] == ['cp3', 'w4']
    assert found['addresses'] == {'cp3': ['10.0.3.2/32'], 'w4': ['10.77.0.7/32']}


@pytest.mark.parametrize('new, hosts, line_has', [
    # Only a new host is asked about; an old one (applied with this inventory before) is not.
    (['w4'], ['cp1', 'cp2', 'cp3', 'reg', 'w1', 'w2', 'w3'],
     ['w4 is new to its own peer sets', '7 host(s) outside this run hold it in their plan: cp1, cp2, cp3, reg, w1',
      '--limit cp1,cp2,cp3,reg,w1,w2,w3']),
    (['w4', 'cp3'], ['cp1', 'cp2', 'cp3', 'reg', 'w1', 'w2', 'w3'], ['cp3, w4 are new to their own peer sets']),
    ([], [], []),
    (['jump'], [], []),
])
def test_the_note_names_only_hosts_that_lack_a_new_host(new, hosts, line_has):
    groups, hostvars = planner(['w4'])
    update = hosts_to_update(InventoryPlanner(groups, hostvars), ['w4'] if 'cp3' not in new else ['w4', 'cp3'])
    update['inventories'] = ['inventory.ini']
    if 'cp3' in new:
        hosts = [host for host in hosts if host != 'cp3']
    assert not_yet_admitting(update, new)[0] == hosts
    line = update_note(update, new, ['w4'])
    assert (line == '') is (not hosts)
    for part in line_has:
        assert part in line, line
