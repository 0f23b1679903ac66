"""ufw peer sets: the rules of the after rules block (written, read back from the file and from
``iptables -S``), the block placed in and removed from an after rules file, ``ipset save``
parsing, the restore script, the before.init hook, and planning a change (plan_sets)."""

import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.backends import ufw_sets
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import BackendError, DesiredState
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.ufw import (
    UfwBackend, parse_user_rules, plan_sets, split_desired)
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.ufw_sets import SetRule

AFTER = '''# after rules of the shape ufw ships
*filter
:ufw-after-input - [0:0]
:ufw-after-output - [0:0]
:ufw-after-forward - [0:0]
-A ufw-after-input -p udp --dport 137 -j ufw-skip-to-policy-input
-A ufw-after-input -m addrtype --dst-type BROADCAST -j ufw-skip-to-policy-input
COMMIT
'''
AFTER6 = AFTER.replace('ufw-after', 'ufw6-after').replace(' -m addrtype --dst-type BROADCAST', '')
INIT = '''#!/bin/sh
set -e
case "$1" in
start)
    # typically required
    ;;
stop)
    ;;
*)
    echo "'$1' not supported"
    ;;
esac
'''
ETCD = SetRule('ipv4', 'tcp', '2379,2380', 'etcd')
ETCD6 = SetRule('ipv6', 'tcp', '2379,2380', 'etcd')
VXLAN = SetRule('ipv4', 'udp', '8472', 'cluster')
ESP = SetRule('ipv4', 'esp', 'any', 'cluster')
SPEC = ('-A ufw-after-input -p tcp -m multiport --dports 2379,2380 -m set --match-set kubeports-etcd-v4 src '
        '-m comment --comment kubeports:etcd -j ACCEPT')


@pytest.mark.parametrize('rule', [ETCD, ETCD6, VXLAN, ESP, SetRule('ipv4', 'tcp', '30000:32767', 'a-b_c')])
def test_a_written_rule_reads_back(rule):
    assert ufw_sets.parse_rule(ufw_sets.split_line(rule.line()), rule.family) == rule


@pytest.mark.parametrize('line, family, expected', [
    (SPEC, 'ipv4', ETCD),
    # As iptables -S prints it: the comment quoted.
    (SPEC.replace('kubeports:etcd', '"kubeports:etcd"'), 'ipv4', ETCD),
    (SPEC, 'ipv6', None),                                           # another family's chain
    (SPEC.replace('ufw-after-input', 'ufw-before-input'), 'ipv4', None),
    (SPEC.replace(' -m comment --comment kubeports:etcd', ''), 'ipv4', None),
    (SPEC.replace('kubeports:etcd', 'kubeports:other'), 'ipv4', None),  # comment and set disagree
    (SPEC.replace('-j ACCEPT', '-j DROP'), 'ipv4', None),
    (SPEC.replace('-p tcp', '-p tcp -s 10.0.0.1/32'), 'ipv4', None),
    (SPEC.replace('kubeports-etcd-v4', 'kubeports-etcd-n4'), 'ipv4', None),  # a temporary set
    (SPEC.replace('kubeports-etcd-v4', 'users-etcd-v4'), 'ipv4', None),
    (SPEC.replace('-p tcp -m multiport --dports 2379,2380', '-p icmp'), 'ipv4', None),
    (SPEC.replace(' src ', ' dst '), 'ipv4', None),
    ('-A ufw-after-input -p udp --dport 137 -j ufw-skip-to-policy-input', 'ipv4', None),
    ('', 'ipv4', None),
])
def test_parse_rule(line, family, expected):
    assert ufw_sets.parse_rule(ufw_sets.split_line(line), family) == expected


@pytest.mark.parametrize('name, expected', [
    ('kubeports-etcd-v4', ('etcd', 'ipv4', False)),
    ('kubeports-a_b-c-v6', ('a_b-c', 'ipv6', False)),
    ('kubeports-etcd-n4', ('etcd', 'ipv4', True)),
    ('kubeports-etcd', None),          # firewalld's naming
    ('kubeports-etcd-v5', None),
    ('other-etcd-v4', None),
])
def test_own_set(name, expected):
    assert ufw_sets.own_set(name) == expected


def test_block_is_placed_before_the_first_filter_rule_and_removed_without_a_trace():
    text = ufw_sets.render_block(AFTER, [VXLAN, ETCD], 'ipv4', 'after.rules')
    lines = text.splitlines()
    first = lines.index(ufw_sets.BEGIN)
    assert lines[first - 1] == ':ufw-after-forward - [0:0]' and lines[first + 4].endswith('ufw-skip-to-policy-input')
    assert lines[first:first + 4] == [ufw_sets.BEGIN, ETCD.line(), VXLAN.line(), ufw_sets.END]
    assert ufw_sets.parse_block(text, 'ipv4', 'after.rules') == [ETCD, VXLAN]
    # Replaced in place, and gone when empty.
    assert ufw_sets.render_block(text, [ETCD], 'ipv4', 'after.rules') == ufw_sets.render_block(
        AFTER, [ETCD], 'ipv4', 'after.rules')
    assert ufw_sets.render_block(text, [], 'ipv4', 'after.rules') == AFTER
    assert ufw_sets.render_block(AFTER, [], 'ipv4', 'after.rules') == AFTER


def test_block_goes_into_the_filter_table_when_there_are_others():
    text = '*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n' + AFTER + '*raw\nCOMMIT\n'
    lines = ufw_sets.render_block(text, [ETCD], 'ipv4', 'after.rules').splitlines()
    assert lines.index(ufw_sets.BEGIN) > lines.index('*filter')
    # A filter table without rules: right before its COMMIT.
    empty = ufw_sets.render_block('*filter\n:ufw-after-input - [0:0]\nCOMMIT\n', [ETCD], 'ipv4', 'a').splitlines()
    assert empty[-2:] == [ufw_sets.END, 'COMMIT']
    assert lines[-2:] == ['*raw', 'COMMIT']


@pytest.mark.parametrize('text, message', [
    ('*nat\nCOMMIT\n', 'has no \\*filter table'),
    (AFTER.replace('COMMIT', ufw_sets.BEGIN + '\nCOMMIT'), 'block is damaged \\(1 BEGIN and 0 END'),
    (AFTER.replace('COMMIT', '%s\n-A ufw-after-input -p tcp --dport 22 -j ACCEPT\n%s\nCOMMIT'
                   % (ufw_sets.BEGIN, ufw_sets.END)), 'holds a line it did not write: -A ufw-after-input -p tcp'),
])
def test_a_file_the_block_cannot_go_into_is_refused(text, message):
    with pytest.raises(BackendError, match=message):
        ufw_sets.render_block(text, [ETCD], 'ipv4', '/etc/ufw/after.rules')


SAVE = '''create kubeports-etcd-v4 hash:net family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1
add kubeports-etcd-v4 10.0.0.1
add kubeports-etcd-v4 10.1.0.0/16
create kubeports-etcd-v6 hash:net family inet6 hashsize 1024 maxelem 65536
add kubeports-etcd-v6 2001:db8::1
create users-set hash:ip family inet hashsize 1024 maxelem 65536
add users-set 10.9.9.9
create kubeports-etcd-n4 hash:net family inet hashsize 1024 maxelem 65536
'''


def test_parse_ipset_save_keeps_the_collections_sets_as_cidrs():
    assert ufw_sets.parse_ipset_save(SAVE) == {
        'kubeports-etcd-v4': ('ipv4', frozenset(['10.0.0.1/32', '10.1.0.0/16'])),
        'kubeports-etcd-v6': ('ipv6', frozenset(['2001:db8::1/128'])),
        'kubeports-etcd-n4': ('ipv4', frozenset()),
    }


def test_sets_file_reads_back():
    sets = {'kubeports-etcd-v4': ('ipv4', frozenset(['10.0.0.10/32', '10.0.0.9/32'])),
            'kubeports-etcd-v6': ('ipv6', frozenset(['2001:db8::1/128']))}
    text = ufw_sets.render_sets_file(sets)
    assert text.index('10.0.0.9/32') < text.index('10.0.0.10/32')  # in address order
    assert ufw_sets.parse_sets_file(text) == sets


def test_restore_script_creates_new_sets_and_swaps_existing_ones():
    script = ufw_sets.restore_script({'kubeports-a-v4': ('ipv4', frozenset(['10.0.0.1/32']), False),
                                      'kubeports-b-v6': ('ipv6', frozenset(['fd00::/64']), True)})
    assert script.splitlines() == [
        'create kubeports-a-v4 hash:net family inet maxelem 65536 -exist',
        'flush kubeports-a-v4',
        'add kubeports-a-v4 10.0.0.1/32',
        'create kubeports-b-n6 hash:net family inet6 maxelem 65536 -exist',
        'flush kubeports-b-n6',
        'add kubeports-b-n6 fd00::/64',
        'swap kubeports-b-n6 kubeports-b-v6',
        'destroy kubeports-b-n6',
    ]


def test_hook_goes_first_into_the_start_case_and_comes_out_without_a_trace():
    hooked = ufw_sets.with_hook(INIT)
    lines = hooked.splitlines()
    assert lines[lines.index('start)') + 1] == ufw_sets.HOOK_BEGIN
    assert ufw_sets.hook_span(hooked) is not None and ufw_sets.hook_span(INIT) is None
    assert ufw_sets.with_hook(hooked) == hooked
    assert ufw_sets.without_hook(hooked) == INIT
    assert ufw_sets.without_hook(INIT) == INIT


@pytest.mark.parametrize('text, count', [(INIT.replace('start)\n', ''), 0), (INIT + 'start)\n', 2)])
def test_hook_needs_one_start_case(text, count):
    with pytest.raises(BackendError, match='has %d "start\\)" cases' % count):
        ufw_sets.with_hook(text)


@pytest.mark.parametrize('text', [
    INIT.replace('start)\n', 'start)\n' + ufw_sets.HOOK_BEGIN + '\n'),                 # not closed
    ufw_sets.with_hook(INIT) + ufw_sets.HOOK_BEGIN + '\n',                               # two openings
    INIT.replace('start)\n', 'start)\n' + ufw_sets.HOOK_END + '\n' + ufw_sets.HOOK_BEGIN + '\n'),
])
def test_a_damaged_hook_is_refused_not_added_again(text):
    for render in (ufw_sets.with_hook, ufw_sets.without_hook):
        with pytest.raises(BackendError, match='block is damaged'):
            render(text)


@pytest.mark.parametrize('text, commands', [
    (INIT, []),
    (ufw_sets.with_hook(INIT), []),
    (INIT.replace('    # typically required\n', '    modprobe nf_conntrack\n'), ['modprobe nf_conntrack']),
])
def test_own_commands_of_before_init(text, commands):
    assert ufw_sets.own_commands(text) == commands


def test_hook_runs_under_sh():
    import subprocess
    subprocess.run(['sh', '-n', '-c', '\n'.join(ufw_sets.hook_lines())], check=True)


def state(rules=(), running=None, sets=None, saved=None, hook=False, record=None, families=('ipv4', 'ipv6')):
    """A read state (UfwBackend.read_sets) holding ``rules`` in its block, running as ``running``."""
    rules = list(rules)
    sets = sets or {}
    result = {'after_text': {}, 'file_rules': {}, 'running_rules': {}, 'sets': sets, 'sets_known': True,
              'sets_error': '',
              'saved_sets': saved if saved is not None else dict(sets),
              'before_init': ufw_sets.with_hook(INIT) if hook else INIT, 'before_init_executable': hook,
              'record': record if record is not None else {'ipsets': sorted(sets)}}
    for family in families:
        mine = [rule for rule in rules if rule.family == family]
        base = AFTER if family == 'ipv4' else AFTER6
        result['after_text'][family] = ufw_sets.render_block(base, mine, family, 'after')
        result['file_rules'][family] = mine
        result['running_rules'][family] = list(mine) if running is None else [r for r in running if r.family == family]
    saved_sets = result['saved_sets']
    result['sets_file'] = ufw_sets.render_sets_file(saved_sets) if saved_sets else None
    return result


ETCD_MEMBERS = frozenset(['10.0.0.1/32', '10.0.0.2/32'])
NEEDS = {('ipv4', 'tcp', 'etcd'): {'2379', '2380'}}
MEMBERS = {'kubeports-etcd-v4': ('ipv4', ETCD_MEMBERS)}
CONVERGED = dict(rules=[ETCD], sets={'kubeports-etcd-v4': ('ipv4', ETCD_MEMBERS)}, hook=True)


def test_plan_sets_from_nothing():
    change = plan_sets(NEEDS, MEMBERS, state(), True)
    assert change.final == [ETCD] and change.insert == [ETCD] and change.delete == []
    assert change.restore == {'kubeports-etcd-v4': ('ipv4', ETCD_MEMBERS, False)}
    assert [path for path, _text in change.files] == [ufw_sets.SETS_FILE, ufw_sets.AFTER_RULES['ipv4']]
    assert change.hook is not None and change.make_executable
    assert change.record == change.record_after == ['kubeports-etcd-v4']
    assert sorted(change.added) == sorted([ETCD.text(), 'ipset kubeports-etcd-v4: 10.0.0.1/32',
                                           'ipset kubeports-etcd-v4: 10.0.0.2/32',
                                           'restore of the peer sets at boot (/etc/ufw/before.init)'])


def test_plan_sets_converged_is_empty():
    change = plan_sets(NEEDS, MEMBERS, state(**CONVERGED), True)
    assert change.empty and change.added == change.removed == []


@pytest.mark.parametrize('changes, expected', [
    # New members: one swap, the saved sets rewritten; the rules stay.
    (dict(members={'kubeports-etcd-v4': ('ipv4', ETCD_MEMBERS | {'10.0.0.3/32'})}),
     dict(restore=['kubeports-etcd-v4'], files=[ufw_sets.SETS_FILE], added=['ipset kubeports-etcd-v4: 10.0.0.3/32'])),
    # A new port: a new rule next to the one that stays (no gap), written and appended.
    (dict(needs={('ipv4', 'tcp', 'etcd'): {'2379', '2380', '2381'}}),
     dict(insert=[SetRule('ipv4', 'tcp', '2381', 'etcd')], files=[ufw_sets.AFTER_RULES['ipv4']],
          added=[SetRule('ipv4', 'tcp', '2381', 'etcd').text()])),
    # A port less: the rule goes, its remaining port gets a new one.
    (dict(needs={('ipv4', 'tcp', 'etcd'): {'2379'}}),
     dict(insert=[SetRule('ipv4', 'tcp', '2379', 'etcd')], delete=[ETCD], files=[ufw_sets.AFTER_RULES['ipv4']],
          files_after=[ufw_sets.AFTER_RULES['ipv4']],
          added=[SetRule('ipv4', 'tcp', '2379', 'etcd').text()], removed=[ETCD.text()])),
    # The running chain lost the rule (the file has it): appended again.
    (dict(state=dict(CONVERGED, running=[])), dict(insert=[ETCD], added=[ETCD.text() + ' (running)'])),
    # The set is gone from the kernel: created again.
    (dict(state=dict(CONVERGED, sets={}, saved=MEMBERS)),
     dict(restore=['kubeports-etcd-v4'], added=['ipset kubeports-etcd-v4: 10.0.0.1/32',
                                                'ipset kubeports-etcd-v4: 10.0.0.2/32'])),
    # The saved sets file is missing: written.
    (dict(state=dict(CONVERGED, saved={})),
     dict(files=[ufw_sets.SETS_FILE], added=['saved peer sets (/etc/ufw/kubeports.ipsets)'])),
    # A temporary set left by a killed run: destroyed.
    (dict(state=dict(CONVERGED, sets={'kubeports-etcd-v4': ('ipv4', ETCD_MEMBERS),
                                      'kubeports-etcd-n4': ('ipv4', frozenset())}, saved=MEMBERS)),
     dict(leftovers=['kubeports-etcd-n4'])),
])
def test_plan_sets_changes_only_what_differs(changes, expected):
    change = plan_sets(changes.get('needs', NEEDS), changes.get('members', MEMBERS),
                       state(**changes.get('state', CONVERGED)), True)
    assert sorted(change.restore) == expected.get('restore', [])
    assert [path for path, _text in change.files] == expected.get('files', [])
    assert change.insert == expected.get('insert', [])
    assert change.delete == expected.get('delete', [])
    assert change.destroy == expected.get('destroy', [])
    assert change.leftovers == expected.get('leftovers', [])
    assert [path for path, _text in change.files_after] == expected.get('files_after', [])
    assert change.hook is None and change.hook_after is None
    assert sorted(change.added) == sorted(expected.get('added', []))
    assert sorted(change.removed) == sorted(expected.get('removed', []))


def test_plan_sets_removes_everything_in_order():
    change = plan_sets({}, {}, state(**dict(CONVERGED, record={'ipsets': ['kubeports-etcd-v4'],
                                                               'made_executable': True})), True)
    assert change.final == [] and change.delete == [ETCD] and change.destroy == ['kubeports-etcd-v4']
    # Until the rule is gone from the running chain, the files keep naming the set and saving it.
    assert change.files == [] and change.hook is None
    assert dict(change.files_after) == {ufw_sets.AFTER_RULES['ipv4']: AFTER, ufw_sets.SETS_FILE: None}
    assert change.hook_after == INIT and change.remove_execute
    assert change.record_after == []


def test_plan_sets_without_prune_keeps_what_is_no_longer_wanted():
    change = plan_sets({}, {}, state(**CONVERGED), False)
    assert change.empty and change.final == [ETCD]


def test_plan_sets_leaves_a_set_it_did_not_record():
    change = plan_sets({}, {}, state(sets={'kubeports-x-v4': ('ipv4', frozenset())}, record={}), True)
    assert change.destroy == []


def desired(*rules):
    return DesiredState.from_rules([{'protocol': protocol, 'port': port, 'sources': sources, 'source_set': name}
                                    for protocol, port, sources, name in rules])


def test_split_desired_sends_restricted_tcp_udp_esp_gre_to_sets():
    state_in = desired(('tcp', '2379', ['10.0.0.1/32', 'fd00::1/128'], 'etcd'), ('udp', '8472', ['10.0.0.0/24'], 'c'),
                       ('esp', '', ['10.0.0.0/24'], 'c'), ('icmp', '', ['10.0.0.0/24'], 'c'),
                       ('all', '', ['10.244.0.0/16'], 'pods'), ('tcp', '6443', ['0.0.0.0/0', '::/0'], None))
    rest, needs, members, skipped_v6 = split_desired(state_in, ('ipv4',), True)
    assert needs == {('ipv4', 'tcp', 'etcd'): {'2379'}, ('ipv4', 'udp', 'c'): {'8472'}, ('ipv4', 'esp', 'c'): {'any'}}
    assert members == {'kubeports-etcd-v4': ('ipv4', frozenset(['10.0.0.1/32'])),
                       'kubeports-c-v4': ('ipv4', frozenset(['10.0.0.0/24']))}
    assert rest.restricted == {('c', 'icmp', ''), ('pods', 'all', '')}
    assert rest.open_to_all == {('tcp', '6443')}
    assert skipped_v6 == {'etcd'}
    assert split_desired(state_in, ('ipv4', 'ipv6'), False) == (state_in, {}, {}, set())


BEFORE = {'ipv4': [], 'ipv6': []}


def test_compare_in_ipset_mode_leaves_ufw_rules_for_everyone_and_trusted_networks():
    backend = UfwBackend(None, {})
    current = {'rules': [], 'families': ('ipv4',), 'before': BEFORE, 'peer_sets': 'ipset', 'ipset': state()}
    rules = desired(('tcp', '2379', ['10.0.0.1/32'], 'etcd'), ('tcp', '6443', ['0.0.0.0/0', '::/0'], None))
    change = backend.compare(rules, current, True)
    assert change.operations == [['ufw', 'allow', 'proto', 'tcp', 'from', '0.0.0.0/0', 'to', '0.0.0.0/0', 'port',
                                  '6443', 'comment', 'kubeports:any']]
    assert change.sets.final == [SetRule('ipv4', 'tcp', '2379', 'etcd')]
    assert change.set_rules == [(SetRule('ipv4', 'tcp', '2379', 'etcd'), frozenset(['10.0.0.1/32']))]
    # The lock-out guard counts the set's members as admitted.
    admissions = [item for item in backend.admissions_after(current, change, None) if 'after rules' in item.what]
    assert [str(net) for net in admissions[0].sources] == ['10.0.0.1/32'] and admissions[0].ports == [(2379, 2379)]


def test_compare_in_rules_mode_removes_the_sets_after_adding_the_rules_and_says_why():
    backend = UfwBackend(None, {})
    current = {'rules': parse_user_rules(''), 'families': ('ipv4',), 'before': BEFORE, 'peer_sets': 'rules',
               'ipset': state(**CONVERGED)}
    change = backend.compare(desired(('tcp', '2379-2380', ['10.0.0.1/32', '10.0.0.2/32'], 'etcd')), current, True)
    assert len(change.operations) == 2 and change.sets.delete == [ETCD]
    assert any(message.startswith('ufw without ipset (') and ': 2 rules' in message for message in backend.messages)
    # Chosen by the user: nothing to say.
    chosen = UfwBackend(None, {'ufw_peer_sets': 'rules'})
    chosen.compare(desired(('tcp', '2379', ['10.0.0.1/32'], 'etcd')), current, True)
    assert chosen.messages == []


@pytest.mark.parametrize('option, known, mode', [
    (None, True, 'ipset'), ('auto', True, 'ipset'), ('auto', False, 'rules'), ('rules', True, 'rules'),
    ('ipset', True, 'ipset'), ('ipset', False, None),
])
def test_peer_sets_mode(option, known, mode):
    backend = UfwBackend(None, {'ufw_peer_sets': option})
    read = {'sets_known': known, 'sets_error': 'no ipset command'}
    if mode is None:
        with pytest.raises(BackendError, match='ufw_peer_sets is ipset but ipset does not work on this host '
                                               '\\(no ipset command\\)'):
            backend.peer_sets_mode(read)
    else:
        assert backend.peer_sets_mode(read) == mode


def test_the_ssh_rule_stays_a_rule_of_ufws_own():
    rules = DesiredState.from_rules([
        {'protocol': 'tcp', 'port': '22', 'sources': ['192.0.2.10/32'], 'source_set': 'admins', 'components': ['ssh']},
        {'protocol': 'tcp', 'port': '10250', 'sources': ['192.0.2.10/32'], 'source_set': 'admins'}])
    rest, needs, _members, _skipped = split_desired(rules, ('ipv4', 'ipv6'), True)
    assert rest.restricted == {('admins', 'tcp', '22')} and list(needs) == [('ipv4', 'tcp', 'admins')]


def test_a_block_of_a_family_ufw_no_longer_manages_is_removed():
    """IPv6 switched off: the after6 block and its sets go like any other (uninstall leaves nothing)."""
    sets = {'kubeports-etcd-v4': ('ipv4', ETCD_MEMBERS), 'kubeports-etcd-v6': ('ipv6', frozenset(['fd00::1/128']))}
    change = plan_sets(NEEDS, MEMBERS, state(rules=[ETCD, ETCD6], sets=sets, hook=True), True)
    assert change.delete == [ETCD6] and change.destroy == ['kubeports-etcd-v6']
    assert [path for path, _text in change.files_after] == [ufw_sets.SETS_FILE, ufw_sets.AFTER_RULES['ipv6']]


def test_from_ipset_to_rules_the_block_leaves_the_files_after_ufws_rules_are_added():
    change = plan_sets({}, {}, state(**CONVERGED), True)
    assert change.files == [] and change.insert == [] and change.delete == [ETCD]
    assert ufw_sets.BEGIN not in dict(change.files_after)[ufw_sets.AFTER_RULES['ipv4']]


def test_a_leftover_temporary_set_goes_first_when_its_set_is_swapped():
    sets = {'kubeports-etcd-v4': ('ipv4', frozenset(['10.0.0.1/32'])), 'kubeports-etcd-n4': ('ipv4', frozenset())}
    change = plan_sets(NEEDS, MEMBERS, state(rules=[ETCD], sets=sets, saved=MEMBERS, hook=True), True)
    assert change.leftovers == ['kubeports-etcd-n4'] and change.destroy == []
    assert change.restore == {'kubeports-etcd-v4': ('ipv4', ETCD_MEMBERS, True)}


def test_a_non_executable_before_init_with_commands_of_its_own_is_refused():
    read = state()
    read['before_init'] = INIT.replace('    # typically required\n', '    /usr/local/bin/site-firewall\n')
    with pytest.raises(BackendError, match='holds commands of its own \\(/usr/local/bin/site-firewall\\)'):
        plan_sets(NEEDS, MEMBERS, read, True)
    read['before_init_executable'] = True
    assert plan_sets(NEEDS, MEMBERS, read, True).hook is not None


def test_sets_that_cannot_be_listed_stay_recorded():
    read = state(**dict(CONVERGED, record={'ipsets': ['kubeports-etcd-v4', 'kubeports-old-v4']}))
    read['sets'], read['sets_known'] = {}, False
    assert plan_sets(NEEDS, MEMBERS, read, True).record_after == ['kubeports-etcd-v4', 'kubeports-old-v4']


# The DNAT line: forwarded connections this host DNAT'd itself (with trusted interfaces).

DNAT4, DNAT6 = ufw_sets.DnatRule('ipv4'), ufw_sets.DnatRule('ipv6')
DNAT_SPEC = '-A ufw-after-forward -m conntrack --ctstate DNAT -m comment --comment kubeports:dnat -j ACCEPT'


@pytest.mark.parametrize('line, family, expected', [
    (DNAT_SPEC, 'ipv4', DNAT4),
    (DNAT_SPEC.replace('kubeports:dnat', '"kubeports:dnat"'), 'ipv4', DNAT4),    # as iptables -S prints it
    (DNAT_SPEC.replace('ufw-after', 'ufw6-after'), 'ipv6', DNAT6),
    (DNAT_SPEC, 'ipv6', None),
    (DNAT_SPEC.replace('DNAT', 'DNAT,SNAT'), 'ipv4', None),
    (DNAT_SPEC.replace('-m conntrack', '-i eth0 -m conntrack'), 'ipv4', None),
    (DNAT_SPEC.replace('kubeports:dnat', 'kubeports:other'), 'ipv4', None),
    (DNAT_SPEC.replace('ACCEPT', 'DROP'), 'ipv4', None),
    (DNAT_SPEC.replace('ufw-after-forward', 'ufw-before-forward'), 'ipv4', None),
])
def test_parse_dnat_rule(line, family, expected):
    assert ufw_sets.parse_rule(ufw_sets.split_line(line), family) == expected
    if expected:
        assert ufw_sets.parse_rule(ufw_sets.split_line(expected.line()), family) == expected


def test_the_dnat_line_follows_the_set_rules_in_the_block():
    text = ufw_sets.render_block(AFTER, [DNAT4, VXLAN, ETCD], 'ipv4', 'after')
    inside = text.split(ufw_sets.BEGIN + '\n', 1)[1].split(ufw_sets.END, 1)[0].splitlines()
    assert inside == [ETCD.line(), VXLAN.line(), DNAT_SPEC]
    assert ufw_sets.parse_block(text, 'ipv4', 'after') == [ETCD, VXLAN, DNAT4]
    assert ufw_sets.render_block(text, [], 'ipv4', 'after') == AFTER
    # An after rules file without ufw's after-forward chain cannot take it (ufw would not load).
    bare = AFTER.replace(':ufw-after-forward - [0:0]\n', '')
    with pytest.raises(BackendError, match='does not declare the chain ufw-after-forward'):
        ufw_sets.render_block(bare, [DNAT4], 'ipv4', 'after')
    assert ufw_sets.BEGIN in ufw_sets.render_block(bare, [ETCD], 'ipv4', 'after')


def test_plan_sets_adds_the_dnat_line_of_each_family_without_sets():
    change = plan_sets({}, {}, state(record={}), True, dnat=('ipv4', 'ipv6'))
    assert change.final == [] and change.forward == [DNAT4, DNAT6] and change.insert == [DNAT4, DNAT6]
    # Only the after rules: no saved sets, no restore at boot (ufw loads the file itself).
    assert [path for path, _text in change.files] == [ufw_sets.AFTER_RULES['ipv4'], ufw_sets.AFTER_RULES['ipv6']]
    assert change.hook is None and change.restore == {} and change.record == []
    assert sorted(change.added) == sorted([DNAT4.text(), DNAT6.text()])
    assert DNAT4.text() == "route allow connections this host DNAT'd (kubeports:dnat, after.rules)"


@pytest.mark.parametrize('read, dnat, prune, expected', [
    # Converged (next to a peer set): nothing.
    (dict(CONVERGED, rules=[ETCD, DNAT4]), ('ipv4',), True, {}),
    # The running chain lost it (a flush by hand): inserted again, the file kept.
    (dict(CONVERGED, rules=[ETCD, DNAT4], running=[ETCD]), ('ipv4',), True,
     dict(insert=[DNAT4], added=[DNAT4.text() + ' (running)'])),
    # No longer wanted: deleted from the chain, then from the file; the peer set's rule stays.
    (dict(CONVERGED, rules=[ETCD, DNAT4]), (), True,
     dict(delete=[DNAT4], files_after=[ufw_sets.AFTER_RULES['ipv4']], removed=[DNAT4.text()])),
    # Without prune it stays.
    (dict(CONVERGED, rules=[ETCD, DNAT4]), (), False, {}),
    # A running line the file lacks (a run killed between the two): deleted.
    (dict(CONVERGED, rules=[ETCD], running=[ETCD, DNAT4]), (), True,
     dict(delete=[DNAT4], removed=[DNAT4.text() + ' (running)'])),
])
def test_plan_sets_keeps_the_dnat_line_in_line(read, dnat, prune, expected):
    change = plan_sets(NEEDS, MEMBERS, state(**read), prune, dnat=dnat)
    assert change.insert == expected.get('insert', [])
    assert change.delete == expected.get('delete', [])
    assert [path for path, _text in change.files] == expected.get('files', [])
    assert [path for path, _text in change.files_after] == expected.get('files_after', [])
    assert sorted(change.added) == sorted(expected.get('added', []))
    assert sorted(change.removed) == sorted(expected.get('removed', []))
    assert change.empty == (not expected)


def test_plan_sets_refuses_the_dnat_line_without_after_rules():
    read = state(record={})
    read['after_text']['ipv6'] = None
    with pytest.raises(BackendError, match='after6.rules is missing; .* forwarded connections this host DNAT'):
        plan_sets({}, {}, read, True, dnat=('ipv4', 'ipv6'))


@pytest.mark.parametrize('mode', ['rules', 'ipset'])
def test_compare_with_trusted_interfaces_adds_the_dnat_line_in_either_mode(mode):
    backend = UfwBackend(None, {'ufw_peer_sets': mode})
    current = {'rules': [], 'families': ('ipv4',), 'before': BEFORE, 'peer_sets': mode, 'ipset': state(record={})}
    trusting = DesiredState.from_rules([{'protocol': 'all', 'port': '', 'sources': ['0.0.0.0/0', '::/0'],
                                         'source_set': None, 'interfaces': ['cni0', 'flannel.1']}])
    change = backend.compare(trusting, current, True)
    assert change.operations == [
        ['ufw', 'allow', 'in', 'on', 'cni0', 'from', '0.0.0.0/0', 'to', '0.0.0.0/0', 'comment', 'kubeports:interface'],
        ['ufw', 'allow', 'in', 'on', 'flannel.1', 'from', '0.0.0.0/0', 'to', '0.0.0.0/0', 'comment',
         'kubeports:interface'],
        ['ufw', 'route', 'allow', 'in', 'on', 'cni0', 'from', '0.0.0.0/0', 'to', '0.0.0.0/0', 'comment',
         'kubeports:interface'],
        ['ufw', 'route', 'allow', 'in', 'on', 'flannel.1', 'from', '0.0.0.0/0', 'to', '0.0.0.0/0', 'comment',
         'kubeports:interface']]
    assert change.sets.forward == [DNAT4] and change.sets.insert == [DNAT4] and change.set_rules == []
    assert DNAT4.text() in change.added and backend.messages == []
    # Source-based trust only (pods routed natively): no DNAT line, the route rules accept it.
    pods = DesiredState.from_rules([{'protocol': 'all', 'port': '', 'sources': ['10.233.0.0/17'],
                                     'source_set': 'pods'}])
    assert backend.compare(pods, current, True).sets is None
