"""ufw backend: the user rules parser (real ufw 0.36 file lines), before rules, multiport
groups, planning (ownership, coverage, prune, minimal commands) and the ufw commands."""

import json

import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import BackendError, DesiredState
from ansible_collections.kubeports.firewall.plugins.module_utils.backends import ufw as ufw_backend
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.ufw import (
    BATCH_PROGRAM, UfwRule, UfwBackend, UserRule, before_accepts, commands, desired_needs, parse_defaults,
    parse_user_rules, diff_rules, port_groups, ufw_interpreter)

# Written by ufw 0.36.2 (see the commands in the comments), header and footer trimmed.
USER_RULES = """*filter
:ufw-user-input - [0:0]
:ufw-user-output - [0:0]
:ufw-user-forward - [0:0]
### RULES ###

### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in
-A ufw-user-input -p tcp --dport 22 -j ACCEPT

### tuple ### allow tcp 2379,2380 0.0.0.0/0 any 192.0.2.11 in comment=6b756265706f7274733a65746364
-A ufw-user-input -p tcp -m multiport --dports 2379,2380 -s 192.0.2.11 -j ACCEPT

### END RULES ###

### LOGGING ###
-I ufw-logging-deny -m conntrack --ctstate INVALID -j RETURN -m limit --limit 3/min --limit-burst 10
### END LOGGING ###
COMMIT
"""

V4, V6 = '0.0.0.0/0', '::/0'
IFACE_HEX = b'kubeports:interface'.hex()


def user(family, kind, action, protocol, ports, destination, source, comment='', sport='any', apps=('', ''),
         direction='in'):
    return UserRule(family, kind, action, protocol, ports, destination, sport, source, apps, direction, comment)


@pytest.mark.parametrize('line, family, expected', [
    # ufw allow 22/tcp
    ('### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in', 'ipv4',
     user('ipv4', 'in', 'allow', 'tcp', '22', V4, V4)),
    # ufw allow proto tcp from 192.0.2.11 to any port 2379,2380 comment kubeports:etcd
    ('### tuple ### allow tcp 2379,2380 0.0.0.0/0 any 192.0.2.11 in comment=6b756265706f7274733a65746364', 'ipv4',
     user('ipv4', 'in', 'allow', 'tcp', '2379,2380', V4, '192.0.2.11/32', 'kubeports:etcd')),
    # ufw allow proto tcp from any to any port 30000:32767 comment kubeports:any (IPv6 half)
    ('### tuple ### allow tcp 30000:32767 ::/0 any ::/0 in comment=6b756265706f7274733a616e79', 'ipv6',
     user('ipv6', 'in', 'allow', 'tcp', '30000:32767', V6, V6, 'kubeports:any')),
    # ufw allow proto udp from 2001:db8:100::14 to any port 8472 comment kubeports:cluster
    ('### tuple ### allow udp 8472 ::/0 any 2001:db8:100::14 in comment=6b756265706f7274733a636c7573746572', 'ipv6',
     user('ipv6', 'in', 'allow', 'udp', '8472', V6, '2001:db8:100::14/128', 'kubeports:cluster')),
    # ufw allow in from 10.233.0.0/17 comment kubeports:pods
    ('### tuple ### allow any any 0.0.0.0/0 any 10.233.0.0/17 in comment=6b756265706f7274733a706f6473', 'ipv4',
     user('ipv4', 'in', 'allow', 'any', 'any', V4, '10.233.0.0/17', 'kubeports:pods')),
    # ufw route allow from 10.233.0.0/17 comment kubeports:pods
    ('### tuple ### route:allow any any 0.0.0.0/0 any 10.233.0.0/17 in comment=6b756265706f7274733a706f6473',
     'ipv4', user('ipv4', 'route', 'allow', 'any', 'any', V4, '10.233.0.0/17', 'kubeports:pods')),
    # ufw route allow from any to 10.233.0.0/17 comment kubeports:pods
    ('### tuple ### route:allow any any 10.233.0.0/17 any 0.0.0.0/0 in comment=6b756265706f7274733a706f6473',
     'ipv4', user('ipv4', 'route', 'allow', 'any', 'any', '10.233.0.0/17', V4, 'kubeports:pods')),
    # ufw allow proto gre from 192.0.2.0/24 comment kubeports:cluster
    ('### tuple ### allow gre any 0.0.0.0/0 any 192.0.2.0/24 in comment=6b756265706f7274733a636c7573746572', 'ipv4',
     user('ipv4', 'in', 'allow', 'gre', 'any', V4, '192.0.2.0/24', 'kubeports:cluster')),
    # ufw allow OpenSSH (application profile: 9 fields)
    ('### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 OpenSSH - in', 'ipv4',
     user('ipv4', 'in', 'allow', 'tcp', '22', V4, V4, apps=('OpenSSH', ''))),
    # ufw allow log proto udp from any to any port 53
    ('### tuple ### allow_log udp 53 0.0.0.0/0 any 0.0.0.0/0 in', 'ipv4',
     user('ipv4', 'in', 'allow_log', 'udp', '53', V4, V4)),
    # ufw deny from 192.0.2.99 to any port 8080 proto tcp
    ('### tuple ### deny tcp 8080 0.0.0.0/0 any 192.0.2.99 in', 'ipv4',
     user('ipv4', 'in', 'deny', 'tcp', '8080', V4, '192.0.2.99/32')),
    # ufw reject out 25/tcp
    ('### tuple ### reject tcp 25 ::/0 any ::/0 out', 'ipv6',
     user('ipv6', 'in', 'reject', 'tcp', '25', V6, V6, direction='out')),
    # ufw allow in on eth9 from 2001:db8::/32 to any port 443 proto tcp comment 'user web'
    ('### tuple ### allow tcp 443 ::/0 any 2001:db8::/32 in_eth9 comment=7573657220776562', 'ipv6',
     user('ipv6', 'in', 'allow', 'tcp', '443', V6, '2001:db8::/32', 'user web', direction='in_eth9')),
    # ufw allow proto tcp from 192.0.2.0/24 port 1000 to any port 2000
    ('### tuple ### allow tcp 2000 0.0.0.0/0 1000 192.0.2.0/24 in', 'ipv4',
     user('ipv4', 'in', 'allow', 'tcp', '2000', V4, '192.0.2.0/24', sport='1000')),
    # ufw limit 2222/tcp
    ('### tuple ### limit tcp 2222 ::/0 any ::/0 in', 'ipv6', user('ipv6', 'in', 'limit', 'tcp', '2222', V6, V6)),
    # ufw route allow in on cni0 out on eth0 comment 'route ifaces'
    ('### tuple ### route:allow any any 0.0.0.0/0 any 0.0.0.0/0 in_cni0!out_eth0 comment=726f75746520696661636573',
     'ipv4', user('ipv4', 'route', 'allow', 'any', 'any', V4, V4, 'route ifaces', direction='in_cni0!out_eth0')),
    # ufw allow in on cni0 comment kubeports:interface (IPv4 half; IPv6 alike in user6.rules)
    ('### tuple ### allow any any 0.0.0.0/0 any 0.0.0.0/0 in_cni0 comment=%s' % IFACE_HEX, 'ipv4',
     user('ipv4', 'in', 'allow', 'any', 'any', V4, V4, 'kubeports:interface', direction='in_cni0')),
    # ufw route allow in on flannel.1 comment kubeports:interface
    ('### tuple ### route:allow any any ::/0 any ::/0 in_flannel.1 comment=%s' % IFACE_HEX, 'ipv6',
     user('ipv6', 'route', 'allow', 'any', 'any', V6, V6, 'kubeports:interface', direction='in_flannel.1')),
    # ufw route allow in on cali+ comment kubeports:interface (a wildcard)
    ('### tuple ### route:allow any any 0.0.0.0/0 any 0.0.0.0/0 in_cali+ comment=%s' % IFACE_HEX, 'ipv4',
     user('ipv4', 'route', 'allow', 'any', 'any', V4, V4, 'kubeports:interface', direction='in_cali+')),
    # Not rules: the iptables lines, malformed tuples.
    ('-A ufw-user-input -p tcp --dport 22 -j ACCEPT', 'ipv4', None),
    ('### tuple ### allow tcp 22', 'ipv4', None),
])
def test_parse_user_rules_line(line, family, expected):
    assert parse_user_rules(line, family) == ([expected] if expected else [])


@pytest.mark.parametrize('line, allows, owned', [
    ('### tuple ### allow tcp 2379,2380 0.0.0.0/0 any 192.0.2.11 in comment=6b756265706f7274733a65746364', True, True),
    ('### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in', True, False),
    # Comment "kubeports:x" on a rule kind the collection never writes: not its own.
    ('### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in_eth0 comment=6b756265706f7274733a78', False, False),
    ('### tuple ### allow_log udp 53 0.0.0.0/0 any 0.0.0.0/0 in comment=6b756265706f7274733a78', True, False),
    ('### tuple ### limit tcp 2222 0.0.0.0/0 any 0.0.0.0/0 in', True, False),
    ('### tuple ### deny tcp 8080 0.0.0.0/0 any 192.0.2.99 in comment=6b756265706f7274733a78', False, False),
    ('### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 OpenSSH - in', False, False),
    ('### tuple ### allow tcp 2000 0.0.0.0/0 1000 192.0.2.0/24 in', False, False),
    ('### tuple ### allow tcp 25 0.0.0.0/0 any 0.0.0.0/0 out comment=6b756265706f7274733a78', False, False),
    # The collection's trust of a CNI device: everything on one interface. It allows nothing on
    # every interface (the guard's "allows"), but covers what it matches.
    ('### tuple ### allow any any 0.0.0.0/0 any 0.0.0.0/0 in_cni0 comment=%s' % IFACE_HEX, False, True),
    ('### tuple ### route:allow any any ::/0 any ::/0 in_cali+ comment=%s' % IFACE_HEX, False, True),
    # On an interface, but narrower (a port, a source) or both interfaces: not a rule it writes.
    ('### tuple ### allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in_cni0 comment=%s' % IFACE_HEX, False, False),
    ('### tuple ### allow any any 0.0.0.0/0 any 10.0.0.0/8 in_cni0 comment=%s' % IFACE_HEX, False, False),
    ('### tuple ### route:allow any any 0.0.0.0/0 any 0.0.0.0/0 in_cni0!out_eth0 comment=%s' % IFACE_HEX, False,
     False),
    ('### tuple ### deny any any 0.0.0.0/0 any 0.0.0.0/0 in_cni0 comment=%s' % IFACE_HEX, False, False),
    # "kubeportsX" is not the collection's prefix.
    ('### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in comment=6b756265706f72747358', True, False),
])
def test_user_rule_kinds(line, allows, owned):
    rule, = parse_user_rules(line)
    assert (rule.allows, rule.owned) == (allows, owned)


def test_parse_whole_file():
    rules = parse_user_rules(USER_RULES)
    assert [rule.rule for rule in rules] == [
        UfwRule('in', 'tcp', '22', V4, V4, ''),
        UfwRule('in', 'tcp', '2379,2380', '192.0.2.11/32', V4, 'kubeports:etcd')]


@pytest.mark.parametrize('text, families', [
    ('IPV6=yes\n', ('ipv4', 'ipv6')),
    ('# IPV6=no\nIPV6=no\n', ('ipv4',)),
    ('IPV6="no"  # off\n', ('ipv4',)),
    ('DEFAULT_INPUT_POLICY="DROP"\n', ('ipv4', 'ipv6')),
])
def test_parse_defaults(text, families):
    assert parse_defaults(text) == families


# Lines of ufw's shipped before.rules / before6.rules and some a user might add.
@pytest.mark.parametrize('line, accepted', [
    ('-A ufw-before-input -p icmp --icmp-type echo-request -j ACCEPT', [('icmp', V4, 'echo-request')]),
    ('-A ufw-before-input -p icmp --icmp-type destination-unreachable -j ACCEPT',
     [('icmp', V4, 'destination-unreachable')]),
    ('-A ufw6-before-input -p icmpv6 --icmpv6-type echo-request -j ACCEPT', [('icmpv6', V6, 'echo-request')]),
    ('-A ufw6-before-input -p icmpv6 --icmpv6-type router-advertisement -m hl --hl-eq 255 -j ACCEPT', []),
    ('-A ufw-before-input -p 4 -s 192.0.2.0/24 -j ACCEPT', [('4', '192.0.2.0/24', None)]),
    ('-A ufw-before-input -p udp --sport 67 --dport 68 -j ACCEPT', []),
    ('-A ufw-before-forward -p icmp --icmp-type echo-request -j ACCEPT', []),
    ('-A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT', []),
    ('-A ufw-before-input -p 4 -j DROP', []),
    ('# -A ufw-before-input -p 4 -j ACCEPT', []),
])
def test_before_accepts(line, accepted):
    assert [(protocol, str(source), icmp_type) for protocol, source, icmp_type in before_accepts(line)] == accepted


@pytest.mark.parametrize('ports, expected', [
    (['80', '443'], ['80,443']),
    (['30000-32767', '80'], ['80,30000:32767']),
    ([str(port) for port in range(1, 17)], [','.join(str(p) for p in range(1, 16)), '16']),
    # A range counts as two ports: seven ranges and a port fill a group.
    (['1-2', '3-4', '5-6', '7-8', '9-10', '11-12', '13-14', '15', '16-17'],
     ['1:2,3:4,5:6,7:8,9:10,11:12,13:14,15', '16:17']),
    (['1-2', '3-4', '5-6', '7-8', '9-10', '11-12', '13-14', '15-16'],
     ['1:2,3:4,5:6,7:8,9:10,11:12,13:14', '15:16']),
])
def test_port_groups_respect_the_15_port_limit(ports, expected):
    groups = port_groups(ports)
    assert groups == expected
    assert all(sum(2 if ':' in item else 1 for item in group.split(',')) <= 15 for group in groups)


def desired(*rules):
    return DesiredState.from_rules([
        {'protocol': protocol, 'port': port, 'sources': sources, 'source_set': source_set}
        for protocol, port, sources, source_set in rules])


ETCD = ['192.0.2.11/32', 'fd00::11/128']
ALL = ['0.0.0.0/0', '::/0']
DEFAULT_BEFORE = {
    'ipv4': before_accepts('-A ufw-before-input -p icmp --icmp-type echo-request -j ACCEPT'),
    'ipv6': before_accepts('-A ufw6-before-input -p icmpv6 --icmpv6-type echo-request -j ACCEPT')}


def test_desired_needs():
    needs, notes = desired_needs(desired(
        ('tcp', '6443', ALL, None),
        ('tcp', '2379', ETCD, 'etcd'),
        ('tcp', '2380', ETCD, 'etcd'),
        ('all', '', ['10.233.0.0/17'], 'pods'),
        ('gre', '', ['192.0.2.0/24', 'fd00::/64'], 'cluster'),
        ('icmp', '', ['192.0.2.0/24', 'fd00::/64'], 'cluster'),
    ), ('ipv4', 'ipv6'), DEFAULT_BEFORE)
    assert needs == {
        ('in', 'ipv4', 'tcp', V4, V4, 'kubeports:any', ''): {'6443'},
        ('in', 'ipv6', 'tcp', V6, V6, 'kubeports:any', ''): {'6443'},
        ('in', 'ipv4', 'tcp', '192.0.2.11/32', V4, 'kubeports:etcd', ''): {'2379', '2380'},
        ('in', 'ipv6', 'tcp', 'fd00::11/128', V6, 'kubeports:etcd', ''): {'2379', '2380'},
        ('in', 'ipv4', 'any', '10.233.0.0/17', V4, 'kubeports:pods', ''): {'any'},
        ('route', 'ipv4', 'any', '10.233.0.0/17', V4, 'kubeports:pods', ''): {'any'},
        ('route', 'ipv4', 'any', V4, '10.233.0.0/17', 'kubeports:pods', ''): {'any'},
        ('in', 'ipv4', 'gre', '192.0.2.0/24', V4, 'kubeports:cluster', ''): {'any'},
        ('in', 'ipv6', 'gre', 'fd00::/64', V6, 'kubeports:cluster', ''): {'any'},
    }
    assert notes == ["icmp from peer set 'cluster' (192.0.2.0/24, fd00::/64): accepted by ufw's before rules; "
                     "ufw's CLI cannot express it, no ufw rule added"]


def test_ipv6_off():
    needs, notes = desired_needs(desired(('tcp', '6443', ALL, None), ('tcp', '2379', ETCD, 'etcd')), ('ipv4',))
    assert sorted(needs) == [('in', 'ipv4', 'tcp', V4, V4, 'kubeports:any', ''),
                             ('in', 'ipv4', 'tcp', '192.0.2.11/32', V4, 'kubeports:etcd', '')]
    assert notes == ['ufw has IPv6 off (IPV6=no in /etc/default/ufw): IPv6 sources of etcd get no rules']


@pytest.mark.parametrize('rules, before, message', [
    ([('ipip', '', ['192.0.2.0/31'], 'cluster')], DEFAULT_BEFORE,
     "ufw cannot express ipip from peer set 'cluster' (192.0.2.0/31): its CLI takes only tcp, udp, esp, ah, gre, "
     "igmp and ipv6, and ufw's before rules (/etc/ufw/before.rules) do not accept it from 192.0.2.0/31"),
    # Only part of the set is accepted.
    ([('ipip', '', ['192.0.2.0/31', '198.51.100.0/24'], 'cluster')],
     {'ipv4': before_accepts('-A ufw-before-input -p 4 -s 192.0.2.0/24 -j ACCEPT')},
     'do not accept it from 198.51.100.0/24'),
    # "-p ipip" is IP protocol 94, not IPIP.
    ([('ipip', '', ['192.0.2.0/31'], 'cluster')], {'ipv4': before_accepts('-A ufw-before-input -p ipip -j ACCEPT')},
     'do not accept it from 192.0.2.0/31'),
    ([('icmp', '', ['192.0.2.0/31'], 'cluster')], {}, "ufw cannot express icmp from peer set 'cluster'"),
    ([('sctp', '9', ALL, None)], DEFAULT_BEFORE, 'ufw cannot express sctp 9 from anyone'),
    ([('all', '', ALL, None)], DEFAULT_BEFORE, 'all (every port) would be open to anyone'),
])
def test_inexpressible_rules_fail_naming_the_rule(rules, before, message):
    with pytest.raises(BackendError) as error:
        desired_needs(desired(*rules), ('ipv4', 'ipv6'), before)
    assert message in str(error.value)


def test_ipip_accepted_by_the_users_before_rules():
    before = {'ipv4': before_accepts('-A ufw-before-input -p 4 -s 192.0.2.0/24 -j ACCEPT')}
    needs, notes = desired_needs(desired(('ipip', '', ['192.0.2.0/31'], 'cluster')), ('ipv4', 'ipv6'), before)
    assert needs == {} and 'accepted by ufw\'s before rules' in notes[0]


def apply_plan(current, to_add, to_remove):
    """What ufw's user rules look like after the plan's commands."""
    gone = set(to_remove)
    after = [rule for rule in current if rule.rule not in gone]
    for rule in to_add:
        after = [old for old in after if old.rule.match != rule.match]  # ufw: "Rule updated"
        after.append(UserRule(rule.family, rule.kind, 'allow', rule.protocol, rule.ports, rule.destination, 'any',
                              rule.source, ('', ''), 'in_' + rule.interface if rule.interface else 'in', rule.comment))
    return after


def owned(family, protocol, ports, source, comment, kind='in', destination=None):
    return user(family, kind, 'allow', protocol, ports, destination or (V4 if family == 'ipv4' else V6), source,
                comment)


ETCD_V4 = owned('ipv4', 'tcp', '2379,2380', '192.0.2.11/32', 'kubeports:etcd')
ETCD_V6 = owned('ipv6', 'tcp', '2379,2380', 'fd00::11/128', 'kubeports:etcd')
OPEN_V4 = owned('ipv4', 'tcp', '6443', V4, 'kubeports:any')
OPEN_V6 = owned('ipv6', 'tcp', '6443', V6, 'kubeports:any')
BASE = desired(('tcp', '6443', ALL, None), ('tcp', '2379', ETCD, 'etcd'), ('tcp', '2380', ETCD, 'etcd'))


def assert_plan(needs, current, prune, added, removed, argvs):
    """The change diff_rules plans, its commands, and that nothing is left to do after them; returns the rules added."""
    to_add, to_remove, replaced = diff_rules(needs, current, prune)
    assert sorted(rule.text() for rule in to_add) == added
    assert sorted(rule.text() for rule in to_remove) == removed
    assert commands(to_add, to_remove, replaced) == argvs
    after = apply_plan(current, to_add, [rule for rule in to_remove if rule not in replaced])
    assert diff_rules(needs, after, prune)[:2] == ([], [])
    return to_add


@pytest.mark.parametrize('state, current, prune, added, removed, argvs', [
    # First run: an "anywhere" rule pair is one command.
    (BASE, [], True,
     ['allow tcp from 192.0.2.11/32 to anywhere port 2379,2380 (kubeports:etcd)',
      'allow tcp from anywhere to anywhere port 6443 (kubeports:any)',
      'allow tcp from anywhere to anywhere port 6443 (kubeports:any)',
      'allow tcp from fd00::11/128 to anywhere port 2379,2380 (kubeports:etcd)'], [],
     [['ufw', 'allow', 'proto', 'tcp', 'from', 'any', 'to', 'any', 'port', '6443', 'comment', 'kubeports:any'],
      ['ufw', 'allow', 'proto', 'tcp', 'from', '192.0.2.11/32', 'to', 'any', 'port', '2379,2380',
       'comment', 'kubeports:etcd'],
      ['ufw', 'allow', 'proto', 'tcp', 'from', 'fd00::11/128', 'to', 'any', 'port', '2379,2380',
       'comment', 'kubeports:etcd']]),
    # Converged.
    (BASE, [ETCD_V4, ETCD_V6, OPEN_V4, OPEN_V6], True, [], [], []),
    # Only the IPv6 half is missing: one IPv6 command, never "any" (that could take over a
    # user's IPv4 rule of the same match).
    (BASE, [ETCD_V4, ETCD_V6, OPEN_V4], True, ['allow tcp from anywhere to anywhere port 6443 (kubeports:any)'], [],
     [['ufw', 'allow', 'proto', 'tcp', 'from', '::/0', 'to', '::/0', 'port', '6443', 'comment', 'kubeports:any']]),
    # The user's own rules for the same ports count: nothing added, and they are never removed.
    (BASE, [ETCD_V4, ETCD_V6, user('ipv4', 'in', 'allow', 'tcp', '6443', V4, V4),
            user('ipv6', 'in', 'limit', 'tcp', '6443', V6, V6)], True, [], [], []),
    (desired(), [user('ipv4', 'in', 'allow', 'tcp', '6443', V4, V4)], True, [], [], []),
    # A user rule covering part of a group (a range): only the rest is added.
    (BASE, [OPEN_V4, OPEN_V6, ETCD_V6, user('ipv4', 'in', 'allow', 'tcp', '2300:2379', V4, '192.0.2.11/32')], True,
     ['allow tcp from 192.0.2.11/32 to anywhere port 2380 (kubeports:etcd)'], [],
     [['ufw', 'allow', 'proto', 'tcp', 'from', '192.0.2.11/32', 'to', 'any', 'port', '2380',
       'comment', 'kubeports:etcd']]),
    # Rules that do not allow the same traffic do not count: other interface, outgoing, source port, app.
    (desired(('tcp', '6443', ['192.0.2.11/32'], 'etcd')),
     [user('ipv4', 'in', 'allow', 'tcp', '6443', V4, '192.0.2.11/32', direction='in_eth1'),
      user('ipv4', 'in', 'allow', 'tcp', '6443', V4, '192.0.2.11/32', direction='out'),
      user('ipv4', 'in', 'allow', 'tcp', '6443', V4, '192.0.2.11/32', sport='53'),
      user('ipv4', 'in', 'allow', 'tcp', '6443', V4, '192.0.2.11/32', apps=('Kube', ''))], True,
     ['allow tcp from 192.0.2.11/32 to anywhere port 6443 (kubeports:etcd)'], [],
     [['ufw', 'allow', 'proto', 'tcp', 'from', '192.0.2.11/32', 'to', 'any', 'port', '6443',
       'comment', 'kubeports:etcd']]),
    # Prune: own rules no longer wanted go (deleted with their comment), the user's stay.
    (desired(), [OPEN_V4, OPEN_V6, user('ipv4', 'in', 'allow', 'tcp', '6443', V4, '192.0.2.11/32')], True, [],
     ['allow tcp from anywhere to anywhere port 6443 (kubeports:any)'] * 2,
     [['ufw', '--force', 'delete', 'allow', 'proto', 'tcp', 'from', 'any', 'to', 'any', 'port', '6443',
       'comment', 'kubeports:any']]),
    (desired(), [OPEN_V4, OPEN_V6], False, [], [], []),
    # A new port for a peer set: a new rule, the existing group stays (no delete, no reload).
    (desired(('tcp', '2379', ['192.0.2.11/32'], 'etcd'), ('tcp', '2380', ['192.0.2.11/32'], 'etcd'),
             ('tcp', '2381', ['192.0.2.11/32'], 'etcd')), [ETCD_V4], True,
     ['allow tcp from 192.0.2.11/32 to anywhere port 2381 (kubeports:etcd)'], [],
     [['ufw', 'allow', 'proto', 'tcp', 'from', '192.0.2.11/32', 'to', 'any', 'port', '2381',
       'comment', 'kubeports:etcd']]),
    # A port dropped from a group: the rest is added first, then the group deleted.
    (desired(('tcp', '2379', ['192.0.2.11/32'], 'etcd')), [ETCD_V4], True,
     ['allow tcp from 192.0.2.11/32 to anywhere port 2379 (kubeports:etcd)'],
     ['allow tcp from 192.0.2.11/32 to anywhere port 2379,2380 (kubeports:etcd)'],
     [['ufw', 'allow', 'proto', 'tcp', 'from', '192.0.2.11/32', 'to', 'any', 'port', '2379',
       'comment', 'kubeports:etcd'],
      ['ufw', '--force', 'delete', 'allow', 'proto', 'tcp', 'from', '192.0.2.11/32', 'to', 'any',
       'port', '2379,2380', 'comment', 'kubeports:etcd']]),
    # Without prune the group stays and covers what is still wanted.
    (desired(('tcp', '2379', ['192.0.2.11/32'], 'etcd')), [ETCD_V4], False, [], [], []),
    # Peer set renamed: adding the same rule with the new comment makes ufw take it over;
    # the delete is left out of the commands (still reported as removed).
    (desired(('tcp', '2379', ['192.0.2.11/32'], 'etcd2'), ('tcp', '2380', ['192.0.2.11/32'], 'etcd2')),
     [ETCD_V4], True, ['allow tcp from 192.0.2.11/32 to anywhere port 2379,2380 (kubeports:etcd2)'],
     ['allow tcp from 192.0.2.11/32 to anywhere port 2379,2380 (kubeports:etcd)'],
     [['ufw', 'allow', 'proto', 'tcp', 'from', '192.0.2.11/32', 'to', 'any', 'port', '2379,2380',
       'comment', 'kubeports:etcd2']]),
    # Two peer sets with the same member: a port one of them already has is not added twice.
    (desired(('tcp', '2379', ['192.0.2.11/32'], 'etcd'), ('tcp', '2380', ['192.0.2.11/32'], 'etcd'),
             ('tcp', '2379', ['192.0.2.11/32'], 'cp'), ('tcp', '6443', ['192.0.2.11/32'], 'cp')), [ETCD_V4], True,
     ['allow tcp from 192.0.2.11/32 to anywhere port 6443 (kubeports:cp)'], [],
     [['ufw', 'allow', 'proto', 'tcp', 'from', '192.0.2.11/32', 'to', 'any', 'port', '6443',
       'comment', 'kubeports:cp']]),
    # Pods: an incoming and two route rules; protocol-only rules without ports.
    (desired(('all', '', ['10.233.0.0/17'], 'pods'), ('gre', '', ['192.0.2.0/24'], 'cluster')), [], True,
     ['allow from 10.233.0.0/17 to anywhere (kubeports:pods)', 'allow gre from 192.0.2.0/24 to anywhere '
      '(kubeports:cluster)', 'route allow from 10.233.0.0/17 to anywhere (kubeports:pods)',
      'route allow from anywhere to 10.233.0.0/17 (kubeports:pods)'], [],
     [['ufw', 'allow', 'from', '10.233.0.0/17', 'to', 'any', 'comment', 'kubeports:pods'],
      ['ufw', 'allow', 'proto', 'gre', 'from', '192.0.2.0/24', 'to', 'any', 'comment', 'kubeports:cluster'],
      ['ufw', 'route', 'allow', 'from', 'any', 'to', '10.233.0.0/17', 'comment', 'kubeports:pods'],
      ['ufw', 'route', 'allow', 'from', '10.233.0.0/17', 'to', 'any', 'comment', 'kubeports:pods']]),
    (desired(), [owned('ipv4', 'any', 'any', V4, 'kubeports:pods', kind='route', destination='10.233.0.0/17')], True,
     [], ['route allow from anywhere to 10.233.0.0/17 (kubeports:pods)'],
     [['ufw', '--force', 'route', 'delete', 'allow', 'from', 'any', 'to', '10.233.0.0/17',
       'comment', 'kubeports:pods']]),
])
def test_plan(state, current, prune, added, removed, argvs):
    needs, _notes = desired_needs(state, ('ipv4', 'ipv6'), DEFAULT_BEFORE)
    assert_plan(needs, current, prune, added, removed, argvs)


def test_many_ports_make_several_rules_and_converge():
    ports = [str(port) for port in range(40000, 40020)] + ['30000-32767']
    state = desired(*[('tcp', port, ['192.0.2.0/24'], 'cluster') for port in ports])
    needs, _notes = desired_needs(state, ('ipv4',), {})
    to_add, _to_remove, _replaced = diff_rules(needs, [], True)
    assert [rule.ports for rule in to_add] == [
        '30000:32767,' + ','.join(str(port) for port in range(40000, 40013)), '40013,40014,40015,40016,40017,'
        '40018,40019']
    assert diff_rules(needs, apply_plan([], to_add, []), True)[:2] == ([], [])


def test_a_deny_rule_with_the_same_match_is_not_replaced():
    needs, _notes = desired_needs(desired(('tcp', '8080', ['192.0.2.99/32'], 'x')), ('ipv4',), {})
    with pytest.raises(BackendError, match='"deny tcp from 192.0.2.99/32 to anywhere port 8080" .* ufw would replace'):
        diff_rules(needs, [user('ipv4', 'in', 'deny', 'tcp', '8080', V4, '192.0.2.99/32')], True)


@pytest.mark.parametrize('rule, delete, both, argv', [
    (UfwRule('in', 'tcp', '2379,2380', '192.0.2.11/32', V4, 'kubeports:etcd'), False, False,
     ['ufw', 'allow', 'proto', 'tcp', 'from', '192.0.2.11/32', 'to', 'any', 'port', '2379,2380',
      'comment', 'kubeports:etcd']),
    (UfwRule('in', 'tcp', '6443', V6, V6, 'kubeports:any'), True, False,
     ['ufw', '--force', 'delete', 'allow', 'proto', 'tcp', 'from', '::/0', 'to', '::/0', 'port', '6443',
      'comment', 'kubeports:any']),
    (UfwRule('in', 'tcp', '30000:32767', V4, V4, 'kubeports:any'), False, True,
     ['ufw', 'allow', 'proto', 'tcp', 'from', 'any', 'to', 'any', 'port', '30000:32767', 'comment', 'kubeports:any']),
    (UfwRule('route', 'any', 'any', V4, '10.233.0.0/17', 'kubeports:pods'), False, False,
     ['ufw', 'route', 'allow', 'from', 'any', 'to', '10.233.0.0/17', 'comment', 'kubeports:pods']),
])
def test_rule_commands(rule, delete, both, argv):
    assert rule.argv(delete=delete, both_families=both) == argv


def test_backend_plan_and_apply_run_ufw_once_per_command(monkeypatch):
    monkeypatch.setattr(ufw_backend, 'ufw_interpreter', lambda path: None)
    calls = []

    def run_command(argv, check=True):
        calls.append(argv)
        return 0, 'Rule added\n', ''

    backend = UfwBackend(run_command, {})
    current = {'rules': parse_user_rules(USER_RULES), 'families': ('ipv4',), 'before': DEFAULT_BEFORE}
    state = desired(('tcp', '2379', ['192.0.2.11/32'], 'etcd'), ('tcp', '2380', ['192.0.2.11/32'], 'etcd'),
                    ('icmp', '', ['192.0.2.11/32'], 'etcd'), ('tcp', '22', ['0.0.0.0/0', '::/0'], None))
    change = backend.compare(state, current, True)
    assert change.empty and calls == []
    backend.verify(state, current, True)
    assert backend.messages == ["icmp from peer set 'etcd' (192.0.2.11/32): accepted by ufw's before rules; ufw's "
                                "CLI cannot express it, no ufw rule added"]
    change = backend.compare(desired(), current, True)
    assert change.removed == ['allow tcp from 192.0.2.11/32 to anywhere port 2379,2380 (kubeports:etcd)']
    backend.apply(change)
    assert calls == [['ufw', '--force', 'delete', 'allow', 'proto', 'tcp', 'from', '192.0.2.11/32', 'to', 'any',
                      'port', '2379,2380', 'comment', 'kubeports:etcd']]


DELETE_ETCD = ['ufw', '--force', 'delete', 'allow', 'proto', 'tcp', 'from', '192.0.2.11/32', 'to', 'any',
               'port', '2379,2380', 'comment', 'kubeports:etcd']
ADD_API = ['ufw', 'allow', 'proto', 'tcp', 'from', '0.0.0.0/0', 'to', '0.0.0.0/0', 'port', '6443', 'comment',
           'kubeports:any']


def _change_of_two():
    backend = UfwBackend(None, {})
    current = {'rules': parse_user_rules(USER_RULES), 'families': ('ipv4',), 'before': DEFAULT_BEFORE}
    change = backend.compare(desired(('tcp', '22', ['0.0.0.0/0', '::/0'], None),
                                     ('tcp', '6443', ['0.0.0.0/0', '::/0'], None)), current, True)
    assert change.operations == [ADD_API, DELETE_ETCD]
    return change


@pytest.mark.parametrize('out, rc, err, calls_after, raised', [
    # ufw's frontend ran both commands in one process.
    ('ready\n\n{"done": 2, "failure": null}\n', 0, '', 1, None),
    # ufw refused the second one: nothing runs after it, the error names it.
    ('ready\nRule added\n{"done": 1, "failure": {"argv": %s, "error": "Could not delete"}}\n'
     % json.dumps(DELETE_ETCD), 1, '', 1, 'ufw --force delete allow proto tcp from 192.0.2.11/32'),
    # The frontend died after it started: no second try, the count is unknown.
    ('ready\n', 1, 'Traceback ...\nKeyError: x', 1, 'ufw stopped after an unknown number of 2 commands'),
    # ufw's modules could not be imported: one ufw command each, said in messages.
    ('', 1, 'ModuleNotFoundError: No module named ufw', 3, None),
])
def test_apply_runs_a_change_in_one_process_of_ufw_frontend(monkeypatch, out, rc, err, calls_after, raised):
    monkeypatch.setattr(ufw_backend, 'ufw_interpreter', lambda path: '/usr/bin/python3')
    monkeypatch.setattr(ufw_backend.shutil, 'which', lambda name: '/usr/sbin/' + name)
    calls = []

    def run_command(argv, check=True, data=None):
        calls.append((argv, data))
        if argv[0] == '/usr/bin/python3':
            return rc, out, err
        return 0, 'Rule added\n', ''

    change = _change_of_two()
    backend = UfwBackend(run_command, {})
    if raised:
        with pytest.raises(BackendError, match=raised.replace('.', '\\.')):
            backend.apply(change)
    else:
        backend.apply(change)
    assert len(calls) == calls_after
    assert calls[0] == (['/usr/bin/python3', '-c', BATCH_PROGRAM, '/usr/sbin/ufw'], json.dumps([ADD_API, DELETE_ETCD]))
    assert [argv for argv, _data in calls[1:]] == ([ADD_API, DELETE_ETCD] if calls_after == 3 else [])
    assert bool(backend.messages) == (calls_after == 3)


def test_the_batch_program_compiles():
    compile(BATCH_PROGRAM, 'ufw batch', 'exec')


@pytest.mark.parametrize('first_line, expected', [
    ('#!/usr/bin/python3\n', 'python'),
    ('#!/usr/bin/env python3\n', 'python'),
    ('#! /usr/bin/python3 -Es\n', 'python'),
    ('#!/bin/sh\n', None),
    ('ELF', None),
    (None, None),
])
def test_ufw_interpreter_is_the_scripts_python(tmp_path, monkeypatch, first_line, expected):
    monkeypatch.setattr(ufw_backend.shutil, 'which', lambda name: '/usr/bin/' + name.rsplit('/', 1)[-1])
    script = tmp_path / 'ufw'
    if first_line is not None:
        script.write_text(first_line + 'import ufw.frontend\n')
    found = ufw_interpreter(str(script))
    assert (found and 'python' in found) if expected else found is None


# Trusted interfaces (the CNI's devices): "allow in on IFACE" and "route allow in on IFACE".

def trusting(*interfaces, **extra):
    """The DesiredState of the planner's rule for the CNI's devices (and ``rules``)."""
    rules = [{'protocol': 'all', 'port': '', 'sources': ALL, 'source_set': None, 'interfaces': list(interfaces)}]
    rules += [{'protocol': protocol, 'port': port, 'sources': sources, 'source_set': source_set}
              for protocol, port, sources, source_set in extra.get('rules', ())]
    return DesiredState.from_rules(rules)


def iface(family, interface, kind='in', comment='kubeports:interface', action='allow'):
    anywhere = V4 if family == 'ipv4' else V6
    return user(family, kind, action, 'any', 'any', anywhere, anywhere, comment, direction='in_' + interface)


def test_desired_needs_of_trusted_interfaces():
    needs, notes = desired_needs(trusting('flannel.1', 'cni0', 'cali+'), ('ipv4', 'ipv6'), DEFAULT_BEFORE)
    assert notes == []
    assert needs == dict(((kind, family, 'any', anywhere, anywhere, 'kubeports:interface', name), {'any'})
                         for name in ('flannel.1', 'cni0', 'cali+') for kind in ('in', 'route')
                         for family, anywhere in (('ipv4', V4), ('ipv6', V6)))
    # IPv6 off: IPv4 rules only.
    needs, _notes = desired_needs(trusting('cni0'), ('ipv4',), DEFAULT_BEFORE)
    assert sorted(needs) == [('in', 'ipv4', 'any', V4, V4, 'kubeports:interface', 'cni0'),
                             ('route', 'ipv4', 'any', V4, V4, 'kubeports:interface', 'cni0')]


ADD_IN_CNI0 = ['ufw', 'allow', 'in', 'on', 'cni0', 'comment', 'kubeports:interface']
ADD_ROUTE_CNI0 = ['ufw', 'route', 'allow', 'in', 'on', 'cni0', 'comment', 'kubeports:interface']
BOTH_CNI0 = [iface(family, 'cni0', kind) for kind in ('in', 'route') for family in ('ipv4', 'ipv6')]


@pytest.mark.parametrize('state, families, current, prune, added, removed, argvs', [
    # One "any" command per kind and interface covers IPv4 and IPv6.
    (trusting('cni0'), ('ipv4', 'ipv6'), [], True,
     ['allow in on cni0 from anywhere to anywhere (kubeports:interface)'] * 2
     + ['route allow in on cni0 from anywhere to anywhere (kubeports:interface)'] * 2, [],
     [ADD_IN_CNI0, ADD_ROUTE_CNI0]),
    # Converged: nothing to do.
    (trusting('cni0'), ('ipv4', 'ipv6'), BOTH_CNI0, True, [], [], []),
    # A wildcard device; IPv6 off: the IPv4 half only, with its addresses.
    (trusting('cali+'), ('ipv4',), [], True,
     ['allow in on cali+ from anywhere to anywhere (kubeports:interface)',
      'route allow in on cali+ from anywhere to anywhere (kubeports:interface)'], [],
     [['ufw', 'allow', 'in', 'on', 'cali+', 'from', V4, 'to', V4, 'comment', 'kubeports:interface'],
      ['ufw', 'route', 'allow', 'in', 'on', 'cali+', 'from', V4, 'to', V4, 'comment', 'kubeports:interface']]),
    # Devices changed (flannel to Calico): the new ones added first, then the old ones deleted
    # with their comment.
    (trusting('cali+'), ('ipv4', 'ipv6'), BOTH_CNI0, True,
     ['allow in on cali+ from anywhere to anywhere (kubeports:interface)'] * 2
     + ['route allow in on cali+ from anywhere to anywhere (kubeports:interface)'] * 2,
     ['allow in on cni0 from anywhere to anywhere (kubeports:interface)'] * 2
     + ['route allow in on cni0 from anywhere to anywhere (kubeports:interface)'] * 2,
     [['ufw', 'allow', 'in', 'on', 'cali+', 'comment', 'kubeports:interface'],
      ['ufw', 'route', 'allow', 'in', 'on', 'cali+', 'comment', 'kubeports:interface'],
      ['ufw', '--force', 'delete', 'allow', 'in', 'on', 'cni0', 'comment', 'kubeports:interface'],
      ['ufw', '--force', 'route', 'delete', 'allow', 'in', 'on', 'cni0', 'comment', 'kubeports:interface']]),
    # Without prune the old devices stay.
    (trusting('cali+'), ('ipv4',), [iface('ipv4', 'cni0')], False,
     ['allow in on cali+ from anywhere to anywhere (kubeports:interface)',
      'route allow in on cali+ from anywhere to anywhere (kubeports:interface)'], [],
     [['ufw', 'allow', 'in', 'on', 'cali+', 'from', V4, 'to', V4, 'comment', 'kubeports:interface'],
      ['ufw', 'route', 'allow', 'in', 'on', 'cali+', 'from', V4, 'to', V4, 'comment', 'kubeports:interface']]),
    # Uninstall: only the collection's interface rules go, never the user's for the same device
    # (nor one of its on an interface the collection never writes).
    (desired(), ('ipv4', 'ipv6'), BOTH_CNI0 + [iface('ipv4', 'cni0', comment=''), iface('ipv4', 'eth1', comment='mine'),
                                               user('ipv4', 'in', 'allow', 'tcp', '80', V4, V4, 'kubeports:interface',
                                                    direction='in_cni0')], True,
     [], ['allow in on cni0 from anywhere to anywhere (kubeports:interface)'] * 2
     + ['route allow in on cni0 from anywhere to anywhere (kubeports:interface)'] * 2,
     [['ufw', '--force', 'delete', 'allow', 'in', 'on', 'cni0', 'comment', 'kubeports:interface'],
      ['ufw', '--force', 'route', 'delete', 'allow', 'in', 'on', 'cni0', 'comment', 'kubeports:interface']]),
    # The user already trusts the device (own comment): that rule covers it, no second one.
    (trusting('cni0'), ('ipv4',), [iface('ipv4', 'cni0', comment='site'), iface('ipv4', 'cni0', 'route', '')], True,
     [], [], []),
    # The collection's rule for another device is no cover: a rule per device.
    (trusting('cni0', 'flannel.1'), ('ipv4',), [iface('ipv4', 'cni0'), iface('ipv4', 'cni0', 'route')], True,
     ['allow in on flannel.1 from anywhere to anywhere (kubeports:interface)',
      'route allow in on flannel.1 from anywhere to anywhere (kubeports:interface)'], [],
     [['ufw', 'allow', 'in', 'on', 'flannel.1', 'from', V4, 'to', V4, 'comment', 'kubeports:interface'],
      ['ufw', 'route', 'allow', 'in', 'on', 'flannel.1', 'from', V4, 'to', V4, 'comment', 'kubeports:interface']]),
    # Source-based trust of natively routed pods next to it: both kept apart.
    (trusting('cni0', rules=[('all', '', ['10.233.0.0/17'], 'pods')]), ('ipv4',), BOTH_CNI0[::2], True,
     ['allow from 10.233.0.0/17 to anywhere (kubeports:pods)',
      'route allow from 10.233.0.0/17 to anywhere (kubeports:pods)',
      'route allow from anywhere to 10.233.0.0/17 (kubeports:pods)'], [],
     [['ufw', 'allow', 'from', '10.233.0.0/17', 'to', 'any', 'comment', 'kubeports:pods'],
      ['ufw', 'route', 'allow', 'from', 'any', 'to', '10.233.0.0/17', 'comment', 'kubeports:pods'],
      ['ufw', 'route', 'allow', 'from', '10.233.0.0/17', 'to', 'any', 'comment', 'kubeports:pods']]),
])
def test_plan_trusted_interfaces(state, families, current, prune, added, removed, argvs):
    needs, _notes = desired_needs(state, families, DEFAULT_BEFORE)
    to_add = assert_plan(needs, current, prune, added, removed, argvs)
    # What ufw writes for those commands reads back as the same rules.
    for rule in (rule for rule in to_add if rule.interface):
        line = '### tuple ### %sallow any any %s any %s in_%s comment=%s' % (
            'route:' if rule.kind == 'route' else '', rule.destination, rule.source, rule.interface,
            rule.comment.encode().hex())
        read, = parse_user_rules(line, rule.family)
        assert read.rule == rule and read.owned


def test_a_deny_rule_on_the_device_is_not_replaced():
    needs, _notes = desired_needs(trusting('cni0'), ('ipv4',), {})
    with pytest.raises(BackendError, match='"deny in on cni0 from anywhere to anywhere" .* ufw would replace'):
        diff_rules(needs, [iface('ipv4', 'cni0', comment='', action='deny')], True)


@pytest.mark.parametrize('rule, delete, both, argv', [
    (UfwRule('in', 'any', 'any', V4, V4, 'kubeports:interface', 'flannel.1'), False, True,
     ['ufw', 'allow', 'in', 'on', 'flannel.1', 'comment', 'kubeports:interface']),
    (UfwRule('route', 'any', 'any', V6, V6, 'kubeports:interface', 'cali+'), True, False,
     ['ufw', '--force', 'route', 'delete', 'allow', 'in', 'on', 'cali+', 'from', V6, 'to', V6,
      'comment', 'kubeports:interface']),
])
def test_interface_rule_commands(rule, delete, both, argv):
    assert rule.argv(delete=delete, both_families=both) == argv


def _backend_with_defaults(tmp_path, monkeypatch):
    defaults = tmp_path / 'ufw'
    defaults.write_text('IPV6=yes\nDEFAULT_INPUT_POLICY="DROP"\n')
    monkeypatch.setattr(ufw_backend, 'DEFAULTS', str(defaults))
    monkeypatch.setattr(ufw_backend, 'BEFORE_RULES', {'ipv4': str(tmp_path / 'none'), 'ipv6': str(tmp_path / 'none')})
    return UfwBackend(None, {})


def test_the_guard_does_not_count_interface_rules(tmp_path, monkeypatch):
    """The SSH client does not arrive on a CNI device: "allow in on cni0" (added, or there
    already) admits it nowhere; the rule of the ssh port does."""
    backend = _backend_with_defaults(tmp_path, monkeypatch)
    current = {'rules': BOTH_CNI0[:2] + [iface('ipv4', 'eth0', comment='')], 'families': ('ipv4', 'ipv6'),
               'before': {'ipv4': [], 'ipv6': []}}
    change = backend.compare(trusting('cni0', 'flannel.1'), current, True)
    assert any(rule.interface == 'flannel.1' and rule.kind == 'in' for rule in change.rules[0])
    assert backend.admissions_after(current, change, None) == []
    change = backend.compare(trusting('cni0', rules=[('tcp', '22', ['198.51.100.0/24'], 'admins')]), current, True)
    found = backend.admissions_after(current, change, None)
    assert [(str(item.sources[0]), item.ports) for item in found] == [('198.51.100.0/24', [(22, 22)])]


def test_exposures_scope_the_collections_interface_rules_to_the_interface(tmp_path, monkeypatch):
    backend = _backend_with_defaults(tmp_path, monkeypatch)
    rules = BOTH_CNI0 + [iface('ipv4', 'cali+'), iface('ipv4', 'eth1', comment='site'),
                         user('ipv4', 'in', 'allow', 'tcp', '6443', V4, V4, 'kubeports:any')]
    found = backend.exposures({'rules': rules, 'before': {}})
    scoped = sorted((item['protocol'], item['port'], item['sources'], item['owned'], tuple(item['interfaces']))
                    for item in found if item.get('interfaces'))
    # Incoming rules only (route rules forward, they admit nothing to the host), one per family.
    assert scoped == [('all', '', None, True, ('cali+',)), ('all', '', None, True, ('cni0',)),
                      ('all', '', None, True, ('cni0',))]
    # The user's rule on an interface stays as it was judged: every source, not narrowed.
    rest = sorted((item['protocol'], item['port'], item['owned']) for item in found if not item.get('interfaces'))
    assert rest == [('all', '', False), ('tcp', '6443', True)]
