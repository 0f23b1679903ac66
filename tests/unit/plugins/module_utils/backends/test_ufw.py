import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import BackendError, DesiredState
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.ufw import (
    Rule, desired_rules, parse_user_rules, port_groups)

USER_RULES = """
*filter
### RULES ###

### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in
-A ufw-user-input -p tcp --dport 22 -j ACCEPT

### tuple ### allow tcp 2379,2380 0.0.0.0/0 any 192.0.2.11 in comment=6b756265706f7274733a65746364
-A ufw-user-input -p tcp -m multiport --dports 2379,2380 -s 192.0.2.11 -j ACCEPT

### tuple ### allow any any 0.0.0.0/0 any 10.233.0.0/17 in comment=6b756265706f7274733a706f6473
### tuple ### route:allow any any 0.0.0.0/0 any 10.233.0.0/17 in comment=6b756265706f7274733a706f6473
### tuple ### deny tcp 9999 0.0.0.0/0 any 0.0.0.0/0 in

### END RULES ###
"""


def test_parse_user_rules():
    rules = parse_user_rules(USER_RULES)
    assert rules == [
        (Rule('in', 'tcp', '22', '0.0.0.0/0', '0.0.0.0/0', ''), 'allow'),
        (Rule('in', 'tcp', '2379,2380', '192.0.2.11/32', '0.0.0.0/0', 'kubeports:etcd'), 'allow'),
        (Rule('in', 'any', 'any', '10.233.0.0/17', '0.0.0.0/0', 'kubeports:pods'), 'allow'),
        (Rule('route', 'any', 'any', '10.233.0.0/17', '0.0.0.0/0', 'kubeports:pods'), 'allow'),
        (Rule('in', 'tcp', '9999', '0.0.0.0/0', '0.0.0.0/0', ''), 'deny'),
    ]


@pytest.mark.parametrize('ports, expected', [
    (['80', '443'], ['80,443']),
    (['30000-32767', '80'], ['80,30000:32767']),
    ([str(port) for port in range(1, 17)], [','.join(str(p) for p in range(1, 16)), '16']),
    (['1-2', '3-4', '5-6', '7-8', '9-10', '11-12', '13-14', '15', '16-17'],
     ['1:2,3:4,5:6,7:8,9:10,11:12,13:14,15', '16:17']),
])
def test_port_groups_respect_the_15_port_limit(ports, expected):
    assert port_groups(ports) == expected


def test_desired_rules():
    desired = DesiredState.from_rules([
        {'protocol': 'tcp', 'port': '6443', 'sources': ['0.0.0.0/0', '::/0'], 'source_set': None},
        {'protocol': 'tcp', 'port': '2379', 'sources': ['192.0.2.11/32', 'fd00::11/128'], 'source_set': 'etcd'},
        {'protocol': 'tcp', 'port': '2380', 'sources': ['192.0.2.11/32', 'fd00::11/128'], 'source_set': 'etcd'},
        {'protocol': 'all', 'port': '', 'sources': ['10.233.0.0/17'], 'source_set': 'pods'},
        {'protocol': 'icmp', 'port': '', 'sources': ['192.0.2.11/32'], 'source_set': 'nodes'},
    ])
    rules, notes = desired_rules(desired, ('ipv4', 'ipv6'))
    assert rules == {
        Rule('in', 'tcp', '6443', '0.0.0.0/0', '0.0.0.0/0', 'kubeports:any'),
        Rule('in', 'tcp', '6443', '::/0', '::/0', 'kubeports:any'),
        Rule('in', 'tcp', '2379,2380', '192.0.2.11/32', '0.0.0.0/0', 'kubeports:etcd'),
        Rule('in', 'tcp', '2379,2380', 'fd00::11/128', '::/0', 'kubeports:etcd'),
        Rule('in', 'any', 'any', '10.233.0.0/17', '0.0.0.0/0', 'kubeports:pods'),
        Rule('route', 'any', 'any', '10.233.0.0/17', '0.0.0.0/0', 'kubeports:pods'),
        Rule('route', 'any', 'any', '0.0.0.0/0', '10.233.0.0/17', 'kubeports:pods'),
    }
    assert notes and 'ICMP' in notes[0]
    assert desired_rules(desired, ('ipv4',))[0] == set(r for r in rules if ':' not in r.source + r.destination)


def test_ipip_is_a_clear_error():
    desired = DesiredState.from_rules([{'protocol': 'ipip', 'port': '', 'sources': ['192.0.2.0/31'],
                                        'source_set': 'cluster'}])
    with pytest.raises(BackendError, match='ufw cannot express ipip rules'):
        desired_rules(desired, ('ipv4',))


@pytest.mark.parametrize('rule, delete, argv', [
    (Rule('in', 'tcp', '2379,2380', '192.0.2.11/32', '0.0.0.0/0', 'kubeports:etcd'), False,
     ['ufw', 'allow', 'proto', 'tcp', 'from', '192.0.2.11/32', 'to', 'any', 'port', '2379,2380',
      'comment', 'kubeports:etcd']),
    (Rule('in', 'tcp', '6443', '::/0', '::/0', 'kubeports:any'), True,
     ['ufw', '--force', 'delete', 'allow', 'proto', 'tcp', 'from', 'any', 'to', 'any', 'port', '6443']),
    (Rule('route', 'any', 'any', '0.0.0.0/0', '10.233.0.0/17', 'kubeports:pods'), False,
     ['ufw', 'route', 'allow', 'from', 'any', 'to', '10.233.0.0/17', 'comment', 'kubeports:pods']),
])
def test_rule_commands(rule, delete, argv):
    assert rule.argv(delete=delete) == argv
