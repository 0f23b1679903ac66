"""ufw peer sets (ufw_peer_sets: ipset, the default where ipset is installed) on a real ufw host
of the lab (node4), over SSH: each peer set is one ipset per family matched by a few rules of
ufw's after rules, members change without a reload, the sets come back when ufw reloads or
starts again (as at boot), switching from and to one rule per source leaves no gap, and
removing everything restores ufw's files as they were.

Ports 39560-39599 are used only by this file.
"""

import pytest

from test_port_rules import module, probe
from test_port_rules_ufw import before_input_lo_packets, loopback_traffic, ours

HOST, PEER, OTHER = 'node4', 'node5', 'node2'
MANY = [str(port) for port in range(39560, 39580)]  # 20 ports: two multiport groups per protocol and family
FILES = ['/etc/ufw/after.rules', '/etc/ufw/after6.rules', '/etc/ufw/before.init', '/etc/ufw/user.rules',
         '/etc/ufw/user6.rules']


def peers(lab, *hosts):
    return [lab.address(host) + '/32' for host in hosts] + [lab.address(host, 6) + '/128' for host in hosts]


def rules_for(lab, *hosts):
    found = [{'protocol': 'tcp', 'port': port, 'sources': peers(lab, *hosts), 'source_set': 'testpeers'}
             for port in MANY]
    found += [{'protocol': 'udp', 'port': '39580', 'sources': peers(lab, *hosts), 'source_set': 'testpeers'},
              {'protocol': 'tcp', 'port': '39581-39585', 'sources': peers(lab, *hosts), 'source_set': 'testpeers'},
              {'protocol': 'tcp', 'port': '39586', 'sources': ['0.0.0.0/0', '::/0'], 'source_set': None}]
    return found


def apply(lab, rules, check=False, mode='ipset'):
    return module(lab, HOST, {'rules': rules, 'backend': 'ufw', 'ufw_peer_sets': mode}, check=check)


def shell(lab, command):
    return lab.exec(HOST, ['sh', '-c', command], check=True).stdout


def block(lab, name='after.rules'):
    text = shell(lab, 'cat /etc/ufw/%s' % name)
    if '# BEGIN kubeports.firewall' not in text:
        return []
    inside = text.split('# BEGIN kubeports.firewall', 1)[1].split('# END kubeports.firewall', 1)[0]
    return [line for line in inside.splitlines()[1:] if line.strip()]


def running(lab, command='iptables', chain='ufw-after-input'):
    return [line for line in shell(lab, '%s -S %s' % (command, chain)).splitlines() if 'kubeports' in line]


def members(lab, name):
    out = lab.exec(HOST, ['ipset', 'list', name, '-o', 'save'])
    if out.returncode != 0:
        return None
    return sorted(line.split()[2] for line in out.stdout.splitlines() if line.startswith('add '))


def own_sets(lab):
    return sorted(name for name in shell(lab, 'ipset list -n').split() if name.startswith('kubeports-'))


def stamp(lab):
    return shell(lab, 'stat -c "%n %Y %s %a" ' + ' '.join(FILES) + ' /etc/ufw/kubeports.ipsets 2>/dev/null; true')


@pytest.fixture(scope='module')
def ufw_host(lab):
    if HOST not in lab.by_firewall('ufw'):
        pytest.skip('%s is not a ufw host in this lab' % HOST)
    assert module(lab, HOST, {'rules': [], 'backend': 'ufw'})[0] in ('SUCCESS', 'CHANGED')
    pristine = shell(lab, 'for f in %s; do stat -c "%%n %%a" $f; sha1sum $f; done' % ' '.join(FILES))
    yield pristine
    module(lab, HOST, {'rules': [], 'backend': 'ufw'})


def test_a_peer_set_is_one_ipset_per_family_matched_by_few_rules(lab, ufw_host):
    rules = rules_for(lab, PEER)
    status, result = apply(lab, rules)
    assert status == 'CHANGED', result
    # ufw's own rules: only the one open to everyone.
    assert set(item[-1] for item in ours(lab)) == {'kubeports:any'}
    assert members(lab, 'kubeports-testpeers-v4') == [lab.address(PEER)]
    assert members(lab, 'kubeports-testpeers-v6') == [lab.address(PEER, 6)]
    # Two TCP groups (21 ports and a range: at most 15 entries each), one UDP rule, per family:
    # written to the after rules files and running in ufw's after-input chains alike.
    for name, command, chain in (('after.rules', 'iptables', 'ufw-after-input'),
                                 ('after6.rules', 'ip6tables', 'ufw6-after-input')):
        lines = block(lab, name)
        assert len(lines) == 3 and all('--match-set kubeports-testpeers-v' in line for line in lines), lines
        assert len(running(lab, command, chain)) == 3
    assert 'kubeports.firewall' in shell(lab, 'cat /etc/ufw/before.init')
    assert shell(lab, 'test -x /etc/ufw/before.init && echo yes').strip() == 'yes'
    assert probe(lab, PEER, HOST, 'tcp', 39579)
    assert probe(lab, PEER, HOST, 'tcp', 39583, family=6)
    assert probe(lab, PEER, HOST, 'udp', 39580)
    assert not probe(lab, OTHER, HOST, 'tcp', 39579)
    assert not probe(lab, OTHER, HOST, 'udp', 39580, family=6)
    assert probe(lab, OTHER, HOST, 'tcp', 39586)
    # Converged: nothing is written again, in a real run or in check mode.
    before = stamp(lab)
    status, result = apply(lab, rules)
    assert status == 'SUCCESS' and (result['diff']['added'], result['diff']['removed']) == ([], []), result
    assert apply(lab, rules, check=True)[0] == 'SUCCESS'
    assert stamp(lab) == before


def test_members_change_by_a_swap_without_a_reload(lab, ufw_host):
    apply(lab, rules_for(lab, PEER))
    loopback_traffic(lab)
    counted = before_input_lo_packets(lab)
    lines = running(lab)
    # Check mode shows the new members and changes nothing.
    status, result = apply(lab, rules_for(lab, PEER, OTHER), check=True)
    assert status == 'CHANGED' and members(lab, 'kubeports-testpeers-v4') == [lab.address(PEER)], result
    status, result = apply(lab, rules_for(lab, PEER, OTHER))
    assert status == 'CHANGED', result
    assert sorted(result['diff']['added']) == ['ipset kubeports-testpeers-v4: %s/32' % lab.address(OTHER),
                                               'ipset kubeports-testpeers-v6: %s/128' % lab.address(OTHER, 6)]
    assert result['diff']['removed'] == []
    assert members(lab, 'kubeports-testpeers-v4') == sorted([lab.address(PEER), lab.address(OTHER)])
    assert running(lab) == lines and own_sets(lab) == ['kubeports-testpeers-v4', 'kubeports-testpeers-v6']
    assert probe(lab, OTHER, HOST, 'tcp', 39561)
    # The chains were never reloaded (a reload zeroes this counter).
    assert before_input_lo_packets(lab) >= counted
    status, result = apply(lab, rules_for(lab, PEER))
    assert status == 'CHANGED' and result['diff']['added'] == [], result
    assert not probe(lab, OTHER, HOST, 'tcp', 39561)
    assert 'kubeports-testpeers-v4 %s' % lab.address(OTHER) not in shell(lab, 'cat /etc/ufw/kubeports.ipsets')


def test_sets_come_back_when_ufw_reloads_or_starts(lab, ufw_host):
    rules = rules_for(lab, PEER)
    apply(lab, rules)
    shell(lab, 'ufw reload')
    assert probe(lab, PEER, HOST, 'tcp', 39562)
    # As at boot: ufw stopped, the sets gone, ufw started again.
    shell(lab, 'ufw disable && ipset destroy kubeports-testpeers-v4 && ipset destroy kubeports-testpeers-v6')
    try:
        out = shell(lab, 'ufw --force enable')
        assert 'Firewall is active' in out, out
    finally:
        lab.exec(HOST, ['ufw', '--force', 'enable'])
    assert members(lab, 'kubeports-testpeers-v4') == [lab.address(PEER)]
    assert len(running(lab)) == 3
    assert probe(lab, PEER, HOST, 'tcp', 39562)
    assert not probe(lab, OTHER, HOST, 'tcp', 39562)
    status, result = apply(lab, rules)
    assert status == 'SUCCESS', result


def test_a_lost_set_at_start_still_loads_ufw(lab, ufw_host):
    """A saved set that cannot be restored is created empty: ufw's after rules still load."""
    rules = rules_for(lab, PEER)
    apply(lab, rules)
    shell(lab, 'cp /etc/ufw/kubeports.ipsets /tmp/kubeports.ipsets.kept && '
               'sed -i "s/^add kubeports-testpeers-v4 .*/add kubeports-testpeers-v4 not-an-address/" '
               '/etc/ufw/kubeports.ipsets')
    try:
        shell(lab, 'ufw disable && ipset destroy kubeports-testpeers-v4 && ipset destroy kubeports-testpeers-v6')
        shell(lab, 'ufw --force enable')
        assert len(running(lab)) == 3
        # The bad member is left out (and logged); the other set is restored.
        assert members(lab, 'kubeports-testpeers-v4') == []
        assert members(lab, 'kubeports-testpeers-v6') == [lab.address(PEER, 6)]
        assert not probe(lab, PEER, HOST, 'tcp', 39563)
        assert probe(lab, PEER, HOST, 'tcp', 39563, family=6)
    finally:
        shell(lab, 'cp /tmp/kubeports.ipsets.kept /etc/ufw/kubeports.ipsets; '
                   'ufw status | grep -q "Status: active" || ufw --force enable')
    # The next run puts the members back.
    status, result = apply(lab, rules)
    assert status == 'CHANGED', result
    assert probe(lab, PEER, HOST, 'tcp', 39563)


def test_switching_from_and_to_one_rule_per_source(lab, ufw_host):
    rules = rules_for(lab, PEER)
    status, result = apply(lab, rules, mode='rules')
    assert status == 'CHANGED' and own_sets(lab) == [] and block(lab) == [], result
    assert 'kubeports:testpeers' in set(item[-1] for item in ours(lab))
    # To sets: the block and the sets are added, then the per-source rules removed.
    status, result = apply(lab, rules, mode='ipset')
    assert status == 'CHANGED', result
    assert set(item[-1] for item in ours(lab)) == {'kubeports:any'}
    assert len(block(lab)) == 3 and own_sets(lab) == ['kubeports-testpeers-v4', 'kubeports-testpeers-v6']
    assert probe(lab, PEER, HOST, 'tcp', 39564)
    # And back: no block, no set, no saved sets, no boot hook.
    status, result = apply(lab, rules, mode='rules')
    assert status == 'CHANGED', result
    assert block(lab) == [] and block(lab, 'after6.rules') == [] and running(lab) == [] and own_sets(lab) == []
    assert 'kubeports' not in shell(lab, 'cat /etc/ufw/before.init; ls /etc/ufw')
    assert probe(lab, PEER, HOST, 'tcp', 39564)
    assert not probe(lab, OTHER, HOST, 'tcp', 39564)


def test_removing_everything_restores_ufws_files(lab, ufw_host):
    apply(lab, rules_for(lab, PEER, OTHER))
    status, result = module(lab, HOST, {'state': 'absent', 'backend': 'ufw'})
    assert status == 'CHANGED', result
    assert own_sets(lab) == [] and running(lab) == [] and running(lab, 'ip6tables', 'ufw6-after-input') == []
    assert shell(lab, 'for f in %s; do stat -c "%%n %%a" $f; sha1sum $f; done' % ' '.join(FILES)) == ufw_host
    assert 'kubeports' not in shell(lab, 'ls /etc/ufw; ls /var/lib/kubeports 2>/dev/null; true')
    assert module(lab, HOST, {'state': 'absent', 'backend': 'ufw'})[0] == 'SUCCESS'


def test_a_damaged_block_is_refused_before_anything_changes(lab, ufw_host):
    apply(lab, rules_for(lab, PEER))
    shell(lab, 'cp /etc/ufw/after.rules /tmp/after.rules.kept && '
               'sed -i "/# END kubeports.firewall/i -A ufw-after-input -p tcp --dport 39599 -j ACCEPT" '
               '/etc/ufw/after.rules')
    try:
        before = stamp(lab)
        status, result = apply(lab, rules_for(lab, PEER, OTHER))
        assert status == 'FAILED!', result
        assert '/etc/ufw/after.rules' in result['msg'] and '--dport 39599' in result['msg'], result
        assert stamp(lab) == before and members(lab, 'kubeports-testpeers-v4') == [lab.address(PEER)]
    finally:
        shell(lab, 'cp /tmp/after.rules.kept /etc/ufw/after.rules')
    assert apply(lab, rules_for(lab, PEER))[0] == 'SUCCESS'
