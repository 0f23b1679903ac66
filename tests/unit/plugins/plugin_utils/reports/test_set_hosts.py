"""The hosts behind a peer set (set_hosts.py): merged CIDRs mapped back to inventory hosts,
the members that are no host named by their CIDR and the variable they came from."""

import pytest

from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.set_hosts import SetHosts

ADDRESSES = {'cp1': ['192.0.2.11/32'], 'cp2': ['192.0.2.12/32'], 'cp3': ['192.0.2.13/32'],
             'node1': ['192.0.2.21/32', '2001:db8::21/128'], 'node2': ['192.0.2.22/32'], 'node3': ['192.0.2.23/32']}
DOCUMENT = {'addresses': ADDRESSES, 'clusters': [{'name': 'cluster', 'hosts': list(ADDRESSES), 'values': {
    'pod_cidrs': {'value': ['10.233.64.0/18'], 'origin': 'kube_pods_subnet'},
    'service_cidrs': {'value': ['10.233.0.0/18'], 'origin': 'default'}}}]}


@pytest.mark.parametrize('name, members, hosts, cidrs, variable', [
    # Merged CIDRs: a /31 holds two hosts.
    ('cluster', ['192.0.2.11/32', '192.0.2.12/31', '192.0.2.21/32', '192.0.2.22/31'],
     ['cp1', 'cp2', 'cp3', 'node1', 'node2', 'node3'], [], None),
    ('etcd', ['192.0.2.11/32', '192.0.2.12/31'], ['cp1', 'cp2', 'cp3'], [], None),
    # A host of two families is behind a set of either.
    ('workers6', ['2001:db8::21/128'], ['node1'], [], None),
    # A CIDR wider than its hosts is named, and the hosts in it too.
    ('api_clients+cluster', ['192.0.2.0/24', '203.0.113.0/24'], ['cp1', 'cp2', 'cp3', 'node1', 'node2', 'node3'],
     ['192.0.2.0/24', '203.0.113.0/24'], 'kubeports_api_client_cidrs'),
    ('admins', ['203.0.113.5/32'], [], ['203.0.113.5/32'], 'kubeports_admin_cidrs'),
    ('admins@1a2b3c4d', ['198.51.100.0/24'], [], ['198.51.100.0/24'], 'kubeports_admin_cidrs'),
    # The profile says where the pod CIDRs came from; a default origin names the variable.
    ('pods', ['10.233.64.0/18'], [], ['10.233.64.0/18'], 'kube_pods_subnet'),
    ('pods+services', ['10.233.0.0/17'], [], ['10.233.0.0/17'], 'kube_pods_subnet or kubeports_service_cidrs'),
    # A member of no named CIDR set (kubeports_peer_cidrs) that is no host.
    ('cluster', ['192.0.2.11/32', '198.51.100.7/32'], ['cp1'], ['198.51.100.7/32'], None),
    ('cluster', ['not an address'], [], ['not an address'], None),
])
def test_members_map_back_to_hosts(name, members, hosts, cidrs, variable):
    found = SetHosts(DOCUMENT).members(name, members)
    assert found == {'hosts': hosts, 'cidrs': cidrs, 'variable': variable}


@pytest.mark.parametrize('name, members, described, counted', [
    ('etcd', ['192.0.2.11/32', '192.0.2.12/31'], 'cp1, cp2, cp3', '3 hosts'),
    ('cluster', ['192.0.2.11/32', '192.0.2.12/31', '192.0.2.21/32', '192.0.2.22/31'],
     '6 hosts (cp1, cp2, cp3, node1 and 2 more)', '6 hosts'),
    ('self', ['192.0.2.21/32'], 'node1', '1 host'),
    ('admins', ['203.0.113.5/32'], '203.0.113.5/32 (kubeports_admin_cidrs)', '1 CIDR of kubeports_admin_cidrs'),
    ('api_clients+etcd', ['192.0.2.11/32', '192.0.2.12/31', '203.0.113.0/24'],
     'cp1, cp2, cp3; 203.0.113.0/24 (kubeports_api_client_cidrs)', '3 hosts, 1 CIDR of kubeports_api_client_cidrs'),
    ('cluster', ['198.51.100.7/32'], '198.51.100.7/32 (not an inventory host)', '1 CIDR of no inventory host'),
    ('etcd', [], 'nobody', '0 hosts'),
])
def test_a_set_is_described_by_its_hosts_and_counted_in_hosts(name, members, described, counted):
    names = SetHosts(DOCUMENT)
    assert names.describe(name, members) == described
    assert names.counted(name, members) == counted


def test_thousands_of_scattered_hosts_are_mapped_quickly():
    import time
    addresses = dict(('h%04d' % number, ['10.%d.%d.%d/32' % (number % 251, number % 241, number % 239 + 1)])
                     for number in range(5000))
    members = [value[0] for value in addresses.values()]
    started = time.time()
    found = SetHosts({'addresses': addresses}).members('cluster', members)
    assert len(found['hosts']) == 5000 and found['cidrs'] == []
    assert time.time() - started < 2


@pytest.mark.parametrize('text, span', [
    ('192.0.2.12/31', (4, 0xC000020C, 0xC000020D)),
    ('192.0.2.13/31', (4, 0xC000020C, 0xC000020D)),
    ('192.0.2.9', (4, 0xC0000209, 0xC0000209)),
    ('10.0.0.0/255.255.255.0', (4, 0x0A000000, 0x0A0000FF)),
    ('2001:db8::/127', (6, 0x20010DB8 << 96, (0x20010DB8 << 96) + 1)),
])
def test_addresses_and_cidrs_become_integer_spans(text, span):
    from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.set_hosts import _span
    assert _span(text) == span


@pytest.mark.parametrize('text', ['192.0.2.1/33', 'node1', '', '::/129'])
def test_what_is_no_address_is_refused(text):
    from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.set_hosts import _span
    with pytest.raises(ValueError):
        _span(text)


def test_one_instance_per_document_while_the_same_document_is_asked_for():
    first = SetHosts.of(DOCUMENT)
    assert SetHosts.of(DOCUMENT) is first
    other = dict(DOCUMENT)
    assert SetHosts.of(other) is not first and SetHosts.of(other).describe is not None
