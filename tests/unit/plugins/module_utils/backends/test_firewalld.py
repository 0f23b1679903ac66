import sys
import types

import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import BackendError, DesiredState
from ansible_collections.kubeports.firewall.plugins.module_utils.backends import firewalld
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.firewalld import (
    _apply_order, desired_view, empty_view, firewalld_state, parse_ipset_info, diff_views, rich_rule, runtime_view)

ANY = ['0.0.0.0/0', '::/0']
RULES = [
    {'protocol': 'tcp', 'port': '6443', 'sources': ANY, 'source_set': None},
    {'protocol': 'gre', 'port': '', 'sources': ANY, 'source_set': None},
    {'protocol': 'tcp', 'port': '2379', 'sources': ['192.0.2.0/31', 'fd00::/127'], 'source_set': 'etcd'},
    {'protocol': 'icmp', 'port': '', 'sources': ['192.0.2.0/31', 'fd00::/127'], 'source_set': 'etcd'},
    {'protocol': 'all', 'port': '', 'sources': ['10.233.0.0/17'], 'source_set': 'pods'},
    {'protocol': 'all', 'port': '', 'sources': ANY, 'source_set': None, 'interfaces': ['flannel.1', 'cni0']},
]


def wanted():
    return desired_view(DesiredState.from_rules(RULES))


def converged():
    return {'permanent': wanted(), 'runtime': wanted()}


def test_desired_view():
    view = wanted()
    assert view['ports'] == {'6443/tcp'}
    assert view['protocols'] == {'gre'}
    assert view['trusted'] == {'10.233.0.0/17'}
    assert view['interfaces'] == {'flannel.1', 'cni0'}
    assert view['ipsets'] == {'kubeports-etcd': {'family': 'inet', 'entries': {'192.0.2.0/31'}},
                              'kubeports-etcd-v6': {'family': 'inet6', 'entries': {'fd00::/127'}}}
    assert view['rich'] == {
        'rule family="ipv4" source ipset="kubeports-etcd" port port="2379" protocol="tcp" accept',
        'rule family="ipv6" source ipset="kubeports-etcd-v6" port port="2379" protocol="tcp" accept',
        'rule family="ipv4" source ipset="kubeports-etcd" protocol value="icmp" accept'}


def test_everything_to_everyone_is_refused():
    everything = [{'protocol': 'all', 'port': '', 'sources': ANY, 'source_set': None}]
    with pytest.raises(BackendError, match=r'all \(every port\) would be open to anyone'):
        DesiredState.from_rules(everything)
    with pytest.raises(BackendError, match='every protocol to everyone'):
        desired_view(DesiredState.from_rules(everything, public_ports=['all']))


def test_converged_plans_nothing():
    assert diff_views(wanted(), converged(), {}, True) == ([], [], [])


def test_clean_host_creates_ipsets_in_the_permanent_configuration_without_a_reload():
    current = {'permanent': empty_view(), 'runtime': empty_view()}
    desired = DesiredState.from_rules(RULES)
    runtime = runtime_view(wanted(), desired, current['runtime'])
    operations, added, removed = diff_views({'permanent': wanted(), 'runtime': runtime}, current, {}, True)
    assert removed == []
    assert not any(op[1] == 'reload' for op in operations)
    creates = [op for op in operations if op[1] == 'create_ipset']
    assert [op[0] for op in creates] == ['permanent', 'permanent']
    assert 'ipset kubeports-etcd (inet: 192.0.2.0/31) (permanent only)' in added
    assert 'port 6443/tcp' in added
    # Until the runtime has the ipsets, their rules are opened per source there.
    per_source = 'rule family="ipv4" source address="192.0.2.0/31" port port="2379" protocol="tcp" accept'
    assert ('runtime', 'add', 'rich', per_source) in operations
    assert 'rich rule %s (runtime only)' % per_source in added
    assert not any(op[0] == 'runtime' and 'ipset="kubeports-etcd"' in str(op[3]) for op in operations)


def test_runtime_ipset_present_replaces_per_source_rules():
    current = converged()
    per_source = 'rule family="ipv4" source address="192.0.2.0/31" port port="2379" protocol="tcp" accept'
    current['runtime']['rich'].add(per_source)
    operations, _added, removed = diff_views(wanted(), current, {'source_rich': [per_source]}, True)
    assert operations == [('runtime', 'remove', 'rich', per_source)]
    assert removed == ['rich rule %s (runtime only)' % per_source]


@pytest.mark.parametrize('mutate, prune, expected_ops, added, removed', [
    # A member joins: entries are added in both views, no reload.
    (lambda c: [v['ipsets']['kubeports-etcd']['entries'].discard('192.0.2.0/31') for v in c.values()], True,
     [('permanent', 'add_entry', 'kubeports-etcd', '192.0.2.0/31'),
      ('runtime', 'add_entry', 'kubeports-etcd', '192.0.2.0/31')],
     ['ipset kubeports-etcd entry 192.0.2.0/31'], []),
    # Runtime-only drift: fixed in the runtime only.
    (lambda c: c['runtime']['ports'].discard('6443/tcp'), True,
     [('runtime', 'add', 'ports', '6443/tcp')], ['port 6443/tcp (runtime only)'], []),
    # Our stale port goes with prune, a foreign port stays.
    (lambda c: [v['ports'].update({'8080/tcp', '9999/tcp'}) for v in c.values()], True,
     [('permanent', 'remove', 'ports', '8080/tcp'), ('runtime', 'remove', 'ports', '8080/tcp')],
     [], ['port 8080/tcp']),
    # Without prune nothing is removed.
    (lambda c: [v['ports'].update({'8080/tcp'}) for v in c.values()], False, [], [], []),
    # A rich rule on our ipset that is no longer wanted.
    (lambda c: [v['rich'].add(rich_rule('ipv4', 'kubeports-etcd', 'tcp', '2380')) for v in c.values()], True,
     [('permanent', 'remove', 'rich', rich_rule('ipv4', 'kubeports-etcd', 'tcp', '2380')),
      ('runtime', 'remove', 'rich', rich_rule('ipv4', 'kubeports-etcd', 'tcp', '2380'))],
     [], ['rich rule ' + rich_rule('ipv4', 'kubeports-etcd', 'tcp', '2380')]),
    # A CNI device joins the trusted zone in both views.
    (lambda c: [v['interfaces'].discard('cni0') for v in c.values()], True,
     [('permanent', 'add', 'interfaces', 'cni0'), ('runtime', 'add', 'interfaces', 'cni0')],
     ['trusted interface cni0'], []),
    # The collection's device no longer wanted goes with prune; the user's stays.
    (lambda c: [v['interfaces'].update({'tunl0', 'eth9'}) for v in c.values()], True,
     [('permanent', 'remove', 'interfaces', 'tunl0'), ('runtime', 'remove', 'interfaces', 'tunl0')],
     [], ['trusted interface tunl0']),
    # A user's rich rule is never ours.
    (lambda c: [v['rich'].add('rule family="ipv4" source address="10.0.0.0/8" accept') for v in c.values()], True,
     [], [], []),
])
def test_plan_views_changes(mutate, prune, expected_ops, added, removed):
    current = converged()
    mutate(current)
    owned = {'ports': ['8080/tcp'], 'interfaces': ['tunl0', 'cni0', 'flannel.1']}
    assert diff_views(wanted(), current, owned, prune) == (expected_ops, added, removed)


@pytest.mark.parametrize('rule, message', [
    (dict(protocol='tcp', port='80', sources=ANY, source_set=None, interfaces=['cni0']), 'give protocol all'),
    (dict(protocol='all', port='', sources=['10.0.0.0/8'], source_set=None, interfaces=['cni0']), 'give protocol all'),
    (dict(protocol='all', port='', sources=ANY, source_set=None, interfaces=['bad name']),
     "invalid interface name 'bad name'"),
])
def test_interface_rules_trust_everything_on_them_and_nothing_else(rule, message):
    with pytest.raises(BackendError, match=message):
        DesiredState.from_rules([rule])


def test_stale_ipset_is_deleted_permanently_and_emptied_in_the_runtime():
    current = converged()
    for view in current.values():
        view['ipsets']['kubeports-old'] = {'family': 'inet', 'entries': {'192.0.2.9/32'}}
    operations, added, removed = diff_views(wanted(), current, {}, True)
    assert operations == [('permanent', 'delete_ipset', 'kubeports-old', None),
                          ('runtime', 'remove_entry', 'kubeports-old', '192.0.2.9/32')]
    assert removed == ['ipset kubeports-old (permanent only)', 'ipset kubeports-old entry 192.0.2.9/32 (runtime only)']
    assert added == []
    # An emptied runtime ipset is left alone afterwards.
    current['permanent']['ipsets'].pop('kubeports-old')
    current['runtime']['ipsets']['kubeports-old']['entries'] = set()
    assert diff_views(wanted(), current, {}, True) == ([], [], [])


def test_apply_order_adds_before_it_removes():
    operations = [('runtime', 'remove', 'rich', 'a'), ('permanent', 'delete_ipset', 'x', None),
                  ('permanent', 'add', 'rich', 'b'), ('permanent', 'create_ipset', 'y', {}),
                  ('permanent', 'remove', 'rich', 'c'), ('permanent', 'add', 'ports', '1/tcp'),
                  ('permanent', 'add_entry', 'z', '192.0.2.3/32'), ('permanent', 'remove_entry', 'z', '192.0.2.2/31')]
    assert sorted(operations, key=_apply_order) == [
        ('permanent', 'create_ipset', 'y', {}), ('permanent', 'remove_entry', 'z', '192.0.2.2/31'),
        ('permanent', 'add_entry', 'z', '192.0.2.3/32'), ('permanent', 'add', 'ports', '1/tcp'),
        ('permanent', 'add', 'rich', 'b'), ('permanent', 'remove', 'rich', 'c'),
        ('permanent', 'delete_ipset', 'x', None), ('runtime', 'remove', 'rich', 'a')]


@pytest.mark.parametrize('dbus, answer, state', [
    # D-Bus says RUNNING: no firewall-cmd process.
    ('RUNNING', None, 'running'),
    # Anything else, or no answer over D-Bus: firewall-cmd --state decides.
    (None, (0, 'running\n', ''), 'running'),
    (None, (252, 'not running\n', ''), 'not running'),
    ('FAILED', (251, 'failed\n', ''), 'failed'),
    ('INIT', (252, 'not running\n', ''), 'not running'),
    (None, (252, '', ''), 'not running'),
    (None, (251, '', 'Error: DBUS_ERROR: Failed to connect to socket /run/dbus/system_bus_socket'), 'not running'),
])
def test_firewalld_state(dbus, answer, state):
    def run_command(argv, check=True):
        assert answer is not None, 'firewall-cmd ran although D-Bus said RUNNING'
        assert argv == ['firewall-cmd', '--state']
        return answer
    assert firewalld_state(run_command, state=lambda: dbus) == state


class Connected(object):
    connected = True


class Unconnected(object):
    connected = False


class Failing(object):
    def __init__(self):
        raise RuntimeError('no system bus')


@pytest.mark.parametrize('client_class, connected, why_not', [
    (None, False, 'the firewalld Python bindings (python3-firewall) are missing on this host'),
    (Unconnected, False, 'cannot reach firewalld over D-Bus; is it running?'),
    (Failing, False, 'cannot reach firewalld over D-Bus; is it running?'),
    (Connected, True, None),
])
def test_dbus_client(monkeypatch, client_class, connected, why_not):
    monkeypatch.setattr(firewalld, '_CLIENT', [])
    bindings = None
    if client_class is not None:
        bindings = types.ModuleType('firewall.client')
        bindings.FirewallClient = client_class
    monkeypatch.setitem(sys.modules, 'firewall', types.ModuleType('firewall'))
    monkeypatch.setitem(sys.modules, 'firewall.client', bindings)  # None: the import fails
    client, reason = firewalld.dbus_client()
    assert (client is not None, reason) == (connected, why_not)
    if connected:
        # A connected client is shared by the rest of the run.
        assert firewalld.dbus_client()[0] is client
    else:
        assert firewalld._CLIENT == []


def test_parse_ipset_info():
    text = "kubeports-etcd-v6\n  type: hash:net\n  options: family=inet6 maxelem=65536\n  entries: fd00::1 fd00::2/127\n"
    assert parse_ipset_info(text) == {'family': 'inet6', 'entries': {'fd00::1/128', 'fd00::2/127'}}
