import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import (
    BackendError, DesiredState, set_id)

ANY = ['0.0.0.0/0', '::/0']


def rule(protocol, port, sources, source_set):
    return {'protocol': protocol, 'port': port, 'sources': sources, 'source_set': source_set}


def test_from_rules_groups_by_peer_set():
    desired = DesiredState.from_rules([
        rule('tcp', '6443', ANY, None),
        rule('ipip', '', ['192.0.2.0/31'], 'cluster'),
        rule('udp', '4789', ['192.0.2.0/31'], 'cluster'),
        rule('tcp', '10250', ['192.0.2.0/32', 'fd00::1/128'], 'controlplane+self'),
    ])
    assert desired.open_to_all == {('tcp', '6443')}
    assert desired.restricted == {('cluster', 'ipip', ''), ('cluster', 'udp', '4789'),
                                  ('controlplane_self', 'tcp', '10250')}
    assert desired.peer_sets['controlplane_self'] == {'name': 'controlplane+self', 'ipv4': ['192.0.2.0/32'],
                                                      'ipv6': ['fd00::1/128']}
    assert ('ipv6', 'tcp', '6443', None) in desired.items()
    assert ('ipv6', 'tcp', '10250', 'fd00::1/128') in desired.items()


@pytest.mark.parametrize('bad, message', [
    (rule('tcp', '', ANY, None), 'protocol tcp needs a port'),
    (rule('tcp', '0', ANY, None), "invalid port '0'"),
    (rule('tcp', '9-1', ANY, None), "invalid port range '9-1'"),
    (rule('udp', '70000', ANY, None), "invalid port '70000'"),
    (rule('ipip', '4', ANY, None), 'protocol ipip takes no port'),
    (rule('tpc', '1', ANY, None), "unknown protocol 'tpc'"),
    (rule('tcp', '1', [], None), 'no sources'),
    (rule('tcp', '1', ['10.0.0.1/8'], 'x'), 'has host bits set'),
    (rule('tcp', '1', ['nonsense'], 'x'), 'invalid source'),
])
def test_from_rules_rejects(bad, message):
    with pytest.raises(BackendError) as exc:
        DesiredState.from_rules([bad])
    assert message in str(exc.value) and 'rules[0]' in str(exc.value)


def test_one_set_name_one_membership():
    with pytest.raises(BackendError, match="peer set 'cluster' has different members"):
        DesiredState.from_rules([rule('tcp', '1', ['192.0.2.1/32'], 'cluster'),
                                 rule('tcp', '2', ['192.0.2.2/32'], 'cluster')])


@pytest.mark.parametrize('name, expected', [
    ('cluster', 'cluster'),
    ('controlplane+etcd', 'controlplane_etcd'),
    ('api_clients+cluster', 'api_clients__a8a22'),
])
def test_set_id_is_short_and_stable(name, expected):
    assert set_id(name) == expected
    assert len(set_id('cluster+dce5_member_clusters')) <= 18
    assert set_id('cluster+dce5_member_clusters') != set_id('cluster+dce5_member_clusterz')


@pytest.mark.parametrize('rules, public, message', [
    ([rule('tcp', '2379', ANY, None)], [], r'rules\[0\]: tcp/2379 \(etcd\) would be open to anyone'),
    ([rule('tcp', '10000-11000', ANY, None)], [], 'tcp/10250 .the kubelet API.'),
    ([rule('udp', '8472', ANY, None)], ['udp/4789'], 'udp/8472'),
    ([rule('tcp', '179', ['0.0.0.0/0', '::/0'], None)], [], 'tcp/179 .BGP.'),
    ([rule('tcp', '6443', ANY, 'api_clients')], [], "source_set 'api_clients' disagrees with its sources"),
    ([rule('tcp', '6443', ['0.0.0.0/0', '192.0.2.0/24'], None)], [], 'are not everyone'),
    ([rule('tcp', '6443', ANY, None)], ['tcp'], 'needs a port'),
])
def test_must_not_be_public(rules, public, message):
    with pytest.raises(BackendError, match=message):
        DesiredState.from_rules(rules, public)


def test_public_override_and_sources_decide():
    desired = DesiredState.from_rules([rule('tcp', '10250', ANY, None), rule('tcp', '2379', ['192.0.2.1/32'], None)],
                                      ['tcp/10250'])
    assert desired.open_to_all == {('tcp', '10250')}
    # Restricted sources without a set name are restricted, never everyone.
    (identifier, protocol, port), = desired.restricted
    assert (protocol, port) == ('tcp', '2379') and identifier.startswith('src-')
    assert desired.peer_sets[identifier]['ipv4'] == ['192.0.2.1/32']


def test_diff_shows_rules_removed_and_added_as_ansible_renders_them():
    from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import Change
    diff = Change(added=['port 6443/tcp', 'ipset kubeports-etcd entry 192.0.2.1/32'], removed=['port 8080/tcp']).diff(
        'firewalld on cp1')
    assert diff['before'] == 'port 8080/tcp\n'
    assert diff['after'] == 'ipset kubeports-etcd entry 192.0.2.1/32\nport 6443/tcp\n'
    assert diff['before_header'] == 'firewalld on cp1: rules removed'
    assert diff['added'] == ['ipset kubeports-etcd entry 192.0.2.1/32', 'port 6443/tcp']
    file_based = Change(added=['x'], before='A=1\n', after='A=2\n').diff()
    assert (file_based['before'], file_based['after']) == ('A=1\n', 'A=2\n') and 'before_header' not in file_based


SETS = {'cluster': ['192.0.2.0/31', 'fd00::/127'], 'etcd': ['192.0.2.1/32']}


def named(protocol, port, source_set):
    return {'protocol': protocol, 'port': port, 'source_set': source_set}


@pytest.mark.parametrize('rules, restricted, members', [
    # A rule that names its set takes the set's members.
    ([named('tcp', '2379', 'etcd')], {('etcd', 'tcp', '2379')}, {'etcd': (['192.0.2.1/32'], [])}),
    # Sources that agree with the set they name.
    ([rule('tcp', '10250', ['fd00::/127', '192.0.2.0/31'], 'cluster'), named('udp', '4789', 'cluster')],
     {('cluster', 'tcp', '10250'), ('cluster', 'udp', '4789')}, {'cluster': (['192.0.2.0/31'], ['fd00::/127'])}),
    # Sources without a set name: a set named after its members, never everyone.
    ([rule('tcp', '9100', ['192.0.2.1/32'], None)], {('src-d2fb1d932a', 'tcp', '9100')},
     {'src-d2fb1d932a': (['192.0.2.1/32'], [])}),
    # Sources with a set name that sets lacks: the sources decide.
    ([rule('tcp', '9100', ['192.0.2.7/32'], 'monitoring')], {('monitoring', 'tcp', '9100')},
     {'monitoring': (['192.0.2.7/32'], [])}),
])
def test_from_rules_with_sets(rules, restricted, members):
    desired = DesiredState.from_rules(rules, sets=SETS)
    assert desired.open_to_all == set()
    assert desired.restricted == restricted
    assert dict((key, (value['ipv4'], value['ipv6'])) for key, value in desired.peer_sets.items()) == members


@pytest.mark.parametrize('bad, message', [
    (named('tcp', '1', 'workers'), "source_set 'workers' is not among the sets given (cluster, etcd)"),
    (named('tcp', '1', None), 'no sources and no source_set'),
    (rule('tcp', '1', ['192.0.2.9/32'], 'etcd'), "source_set 'etcd' disagrees with the rule's sources"),
    (rule('tcp', '2379', ANY, 'cluster'), "source_set 'cluster' disagrees"),
])
def test_from_rules_with_sets_rejects(bad, message):
    with pytest.raises(BackendError) as exc:
        DesiredState.from_rules([bad], sets=SETS)
    assert message in str(exc.value) and 'rules[0]' in str(exc.value)


@pytest.mark.parametrize('sources', [['0.0.0.0/0'], ['::/0'], ['0.0.0.0/0', '10.0.0.0/8']])
def test_half_of_everyone_is_refused_not_widened(sources):
    with pytest.raises(BackendError, match=r'rules\[0\] \(tcp 9100\): sources .* are not everyone'):
        DesiredState.from_rules([rule('tcp', '9100', sources, None)])
