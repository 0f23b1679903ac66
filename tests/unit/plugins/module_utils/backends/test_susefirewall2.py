"""SuSEfirewall2 backend: the sysconfig parser and in-place writer (quoting, multi-line
values, comments and user tokens kept), token planning and ownership, and apply
(atomic write, start only when changed and running, refusal on Kubernetes hosts)."""

import json
import os

import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.backends import susefirewall2
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import BackendError, DesiredState
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.susefirewall2 import (
    SuseFirewall2Backend, desired_tokens, edit_config, edit_value, foreign_chains, kubernetes_signs, load_owned, canonical_token,
    parse_config, diff_config, tokens_of)

CONFIG = '''## Path:\tSecurity/SuSEfirewall2
## Description: SuSEfirewall2 configuration
# Comment kept
FW_DEV_EXT="any eth0"
FW_SERVICES_EXT_TCP="ssh 8080" # the user's web port
FW_SERVICES_ACCEPT_EXT="
\t10.9.0.0/16,tcp,5000
\t192.0.2.0/24,udp,53
"
FW_ROUTE='no'
FW_LOG_DROP_CRIT=yes # trailing comment
# FW_TRUSTED_NETS="commented out, not a value"
'''


@pytest.mark.parametrize('text, name, quote, value', [
    ('A="x y"\n', 'A', '"', 'x y'),
    ("A='x y'\n", 'A', "'", 'x y'),
    ('A=yes # comment\n', 'A', '', 'yes'),
    ('A=\n', 'A', '', ''),
    ('A=""\n', 'A', '"', ''),
    ('  export A="x"\n', 'A', '"', 'x'),
    ('A="a\n  b\n"\n', 'A', '"', 'a\n  b\n'),
    ('A="say \\"hi\\""\n', 'A', '"', 'say \\"hi\\"'),
    # The last assignment wins, as in the shell.
    ('A="one"\nA="two"\n', 'A', '"', 'two'),
    # Comments and assignments inside another value are not assignments.
    ('# A="no"\nB="x\nA=inner\n"\n', 'A', None, None),
    ('B="x\nA=inner\n"\n', 'B', '"', 'x\nA=inner\n'),
    ('A="x" # "quoted" comment\nB=1\n', 'B', '', '1'),
])
def test_parse_config(text, name, quote, value):
    found = parse_config(text).get(name)
    if quote is None:
        assert found is None
    else:
        assert (found.quote, found.value) == (quote, value)
        assert text[found.start:found.end] == value


def test_parse_the_sample():
    found = parse_config(CONFIG)
    assert found['FW_SERVICES_EXT_TCP'].value.split() == ['ssh', '8080']
    assert found['FW_SERVICES_ACCEPT_EXT'].value.split() == ['10.9.0.0/16,tcp,5000', '192.0.2.0/24,udp,53']
    assert found['FW_ROUTE'].value == 'no' and found['FW_LOG_DROP_CRIT'].value == 'yes'
    assert 'FW_TRUSTED_NETS' not in found


def test_unterminated_quote_is_a_clear_error():
    with pytest.raises(BackendError, match='FW_SERVICES_EXT_TCP \\(line 2\\) has no closing quote'):
        parse_config('A=1\nFW_SERVICES_EXT_TCP="ssh\n')


@pytest.mark.parametrize('value, remove, add, expected', [
    ('', [], ['6443'], '6443'),
    ('ssh', [], ['6443', '10250'], 'ssh 6443 10250'),
    ('ssh  8080 ', [], ['6443'], 'ssh  8080 6443'),
    ('ssh 6443 8080', ['6443'], [], 'ssh 8080'),
    ('6443 ssh', ['6443'], [], 'ssh'),
    ('ssh 6443', ['6443'], [], 'ssh'),
    ('6443', ['6443'], [], ''),
    # An identical token the user wrote as well: only one (the collection's, appended last) goes.
    ('6443 ssh 6443', ['6443'], [], '6443 ssh'),
    # Multi-line: one token per line, indentation and the closing line kept.
    ('\n\t10.9.0.0/16,tcp,5000\n', [], ['192.0.2.11/32,tcp,2379'], '\n\t10.9.0.0/16,tcp,5000\n\t192.0.2.11/32,tcp,2379\n'),
    ('\n  a\n  b\n', ['a'], [], '\n  b\n'),
    ('\n  a b\n', ['a'], [], '\n  b\n'),
    ('\n  a b\n', ['b'], [], '\n  a\n'),
    ('a\n  b', [], ['c'], 'a\n  b\n  c'),
    ('\n  a # note\n', ['a'], ['c'], '\n  # note\n  c\n'),
])
def test_edit_value(value, remove, add, expected):
    assert edit_value(value, remove, add) == expected


@pytest.mark.parametrize('text, edits, expected', [
    ('A="ssh" # web\nB=x\n', {'A': ([], ['6443'])}, 'A="ssh 6443" # web\nB=x\n'),
    ("A='ssh'\n", {'A': ([], ['6443'])}, "A='ssh 6443'\n"),
    ('A=ssh # c\n', {'A': ([], ['6443'])}, 'A="ssh 6443" # c\n'),
    ('A=no\n', {'A': 'yes'}, 'A="yes"\n'),
    ('A="no"', {'A': 'yes', 'B': ([], ['x', 'y'])}, 'A="yes"\nB="x y"\n'),
    ('A="1"\nA="2"\n', {'A': ([], ['3'])}, 'A="1"\nA="2 3"\n'),
    # Nothing to change: the text stays byte for byte.
    ('A="ssh"\n', {'A': (['6443'], [])}, 'A="ssh"\n'),
])
def test_edit_config(text, edits, expected):
    assert edit_config(text, edits) == expected


@pytest.mark.parametrize('name, token, expected', [
    ('FW_SERVICES_EXT_TCP', '06443', '6443'),
    ('FW_SERVICES_EXT_TCP', '30000:32767', '30000:32767'),
    ('FW_SERVICES_EXT_TCP', '10:10', '10'),
    ('FW_SERVICES_EXT_TCP', 'ssh', 'ssh'),
    ('FW_SERVICES_EXT_IP', 'GRE', 'gre'),
    ('FW_SERVICES_EXT_IP', 'ipencap', '4'),
    ('FW_SERVICES_ACCEPT_EXT', '192.0.2.0/24,ipv4', '192.0.2.0/24,4'),
    # "ipip" is IP protocol 94, not IPIP.
    ('FW_SERVICES_ACCEPT_EXT', '192.0.2.0/24,ipip', '192.0.2.0/24,ipip'),
    ('FW_SERVICES_ACCEPT_EXT', '192.0.2.11,TCP,02379', '192.0.2.11/32,tcp,2379'),
    ('FW_SERVICES_ACCEPT_EXT', '192.0.2.0/24,tcp,,', '192.0.2.0/24,tcp'),
    ('FW_SERVICES_ACCEPT_EXT', '2001:DB8::11,udp,8472', '2001:db8::11/128,udp,8472'),
    ('FW_TRUSTED_NETS', '10.233.0.0/17', '10.233.0.0/17'),
    ('FW_FORWARD', '10.233.0.0/17,0/0', '10.233.0.0/17,0.0.0.0/0'),
    ('FW_FORWARD', '0.0.0.0/0,10.233.0.0/17,tcp,80', '0.0.0.0/0,10.233.0.0/17,tcp,80'),
])
def test_normalize(name, token, expected):
    assert canonical_token(name, token) == expected


def desired(*rules):
    return DesiredState.from_rules([
        {'protocol': protocol, 'port': port, 'sources': sources, 'source_set': source_set}
        for protocol, port, sources, source_set in rules])


CLUSTER = ['192.0.2.0/31', 'fd00::/126']
DESIRED = desired(
    ('tcp', '30000-32767', ['0.0.0.0/0', '::/0'], None),
    ('udp', '8472', CLUSTER, 'cluster'),
    ('ipip', '', CLUSTER, 'cluster'),
    ('icmp', '', CLUSTER, 'cluster'),
    ('gre', '', ['0.0.0.0/0', '::/0'], None),
    ('all', '', ['10.233.0.0/17', 'fd85::/108'], 'pods'),
)


def test_desired_tokens():
    tokens, route = desired_tokens(DESIRED)
    assert route is True
    assert tokens == {
        'FW_SERVICES_EXT_TCP': ['30000:32767'],
        'FW_SERVICES_EXT_UDP': [],
        'FW_SERVICES_EXT_IP': ['gre'],
        'FW_SERVICES_ACCEPT_EXT': ['192.0.2.0/31,icmp', '192.0.2.0/31,4', 'fd00::/126,4',
                                   '192.0.2.0/31,udp,8472', 'fd00::/126,udp,8472'],
        'FW_TRUSTED_NETS': ['10.233.0.0/17', 'fd85::/108'],
        'FW_FORWARD': ['10.233.0.0/17,0/0', '0/0,10.233.0.0/17', 'fd85::/108,::/0', '::/0,fd85::/108'],
    }


@pytest.mark.parametrize('rules, message', [
    ([('all', '', ['0.0.0.0/0', '::/0'], None)], r'all \(every port\) would be open to anyone'),
    ([('sctp', '9', ['0.0.0.0/0', '::/0'], None)], 'cannot express sctp 9 from anyone'),
    ([('sctp', '9', ['192.0.2.0/24'], 'cluster')], "cannot express sctp 9 from peer set 'cluster'"),
])
def test_inexpressible_rules(rules, message):
    with pytest.raises(BackendError, match=message):
        desired_tokens(desired(*rules))


ALL_ADDED = sorted([
    'FW_ROUTE yes', 'FW_SERVICES_EXT_TCP 30000:32767', 'FW_SERVICES_EXT_IP gre',
    'FW_SERVICES_ACCEPT_EXT 192.0.2.0/31,icmp', 'FW_SERVICES_ACCEPT_EXT 192.0.2.0/31,4',
    'FW_SERVICES_ACCEPT_EXT fd00::/126,4', 'FW_SERVICES_ACCEPT_EXT 192.0.2.0/31,udp,8472',
    'FW_SERVICES_ACCEPT_EXT fd00::/126,udp,8472', 'FW_TRUSTED_NETS 10.233.0.0/17', 'FW_TRUSTED_NETS fd85::/108',
    'FW_FORWARD 10.233.0.0/17,0/0', 'FW_FORWARD 0/0,10.233.0.0/17', 'FW_FORWARD fd85::/108,::/0',
    'FW_FORWARD ::/0,fd85::/108'])


def owned(**tokens):
    return load_owned(dict(tokens={name: list(value) for name, value in tokens.items()}))


@pytest.mark.parametrize('text, record, prune, added, removed', [
    (CONFIG, owned(), True, ALL_ADDED, []),
    # 8080 was the collection's and is no longer wanted: pruned; the user's ssh stays.
    (CONFIG, owned(FW_SERVICES_EXT_TCP=['8080']), True, ALL_ADDED, ['FW_SERVICES_EXT_TCP 8080']),
    (CONFIG, owned(FW_SERVICES_EXT_TCP=['8080']), False, ALL_ADDED, []),
    # The user already allows a wanted token (another spelling): not added, not the collection's.
    (CONFIG.replace('192.0.2.0/24,udp,53', '192.0.2.0/31,UDP,8472'), owned(), True,
     [item for item in ALL_ADDED if item != 'FW_SERVICES_ACCEPT_EXT 192.0.2.0/31,udp,8472'], []),
    # A token the record names but the user removed by hand is not "removed" again.
    (CONFIG, owned(FW_SERVICES_EXT_UDP=['9999']), True, ALL_ADDED, []),
])
def test_plan_config(text, record, prune, added, removed):
    tokens, route = desired_tokens(DESIRED)
    new_text, got_added, got_removed, new_record = diff_config(text, tokens, route, record, prune)
    assert sorted(got_added) == added and got_removed == removed
    assert new_record['route_before'] == 'no'
    # Every comment and user token is still there.
    for line in ('# Comment kept', '# the user\'s web port', '# trailing comment', 'FW_DEV_EXT="any eth0"',
                 '\t10.9.0.0/16,tcp,5000', '## Description: SuSEfirewall2 configuration'):
        assert line in new_text
    assert tokens_of(new_text, 'FW_SERVICES_EXT_TCP')[0] == 'ssh'
    assert parse_config(new_text)['FW_ROUTE'].quote == "'"
    # Planning again against the result changes nothing.
    again = diff_config(new_text, tokens, route, new_record, prune)
    assert again[0] == new_text and again[1] == [] and again[2] == []


def test_the_written_file_keeps_its_layout():
    tokens, route = desired_tokens(desired(('tcp', '6443', ['0.0.0.0/0', '::/0'], None),
                                           ('tcp', '2379', ['192.0.2.11/32'], 'etcd')))
    new_text, _added, _removed, _record = diff_config(CONFIG, tokens, route, owned(), True)
    assert new_text == CONFIG.replace('"ssh 8080"', '"ssh 8080 6443"').replace(
        '\t192.0.2.0/24,udp,53\n', '\t192.0.2.0/24,udp,53\n\t192.0.2.11/32,tcp,2379\n')


def test_prune_everything_restores_the_file():
    tokens, route = desired_tokens(DESIRED)
    text, _added, _removed, record = diff_config(CONFIG, tokens, route, owned(), True)
    empty = dict((name, []) for name in tokens)
    final, added, removed, record = diff_config(text, empty, False, record, True)
    assert added == [] and sorted(removed) == ALL_ADDED
    # Back to the user's file byte for byte; the variables it did not have stay, empty.
    assert final == CONFIG + 'FW_FORWARD=""\nFW_SERVICES_EXT_IP=""\nFW_TRUSTED_NETS=""\n'
    assert record == {'tokens': dict((name, []) for name in tokens)}


def test_route_kept_without_prune_and_user_route_left_alone():
    tokens, route = desired_tokens(DESIRED)
    text, _added, _removed, record = diff_config(CONFIG, tokens, route, owned(), True)
    empty = dict((name, []) for name in tokens)
    final, _added, removed, kept = diff_config(text, empty, False, record, False)
    assert final == text and removed == [] and kept['route_before'] == 'no'
    # The user turned routing on before: the collection never turns it off.
    user_route = CONFIG.replace("FW_ROUTE='no'", 'FW_ROUTE="yes"')
    text, added, _removed, record = diff_config(user_route, tokens, route, owned(), True)
    assert 'FW_ROUTE yes' not in added and 'route_before' not in record
    final, _added, removed, _record = diff_config(text, empty, False, record, True)
    assert 'FW_ROUTE yes' not in removed and parse_config(final)['FW_ROUTE'].value == 'yes'


def test_first_cut_state_file_is_read():
    assert load_owned({'FW_SERVICES_EXT_TCP': ['6443'], 'FW_ROUTE_BEFORE': 'no'}) == {
        'tokens': dict((name, ['6443'] if name == 'FW_SERVICES_EXT_TCP' else [])
                       for name in susefirewall2.TOKEN_VARIABLES),
        'route_before': 'no'}


@pytest.mark.parametrize('saved, expected', [
    (':INPUT DROP [0:0]\n:input_ext - [0:0]\n:forward_int - [0:0]\n:reject_func - [0:0]\n', []),
    (':INPUT DROP [0:0]\n:f2b-sshd - [0:0]\n:input_ext - [0:0]\n', ['f2b-sshd']),
    ('*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:cali-PREROUTING - [0:0]\n',
     ['KUBE-SERVICES', 'cali-PREROUTING']),
])
def test_foreign_chains(saved, expected):
    assert foreign_chains(saved) == expected


def test_kubernetes_signs(tmp_path):
    proc = tmp_path / 'proc'
    for pid, name in (('1', 'systemd'), ('42', 'kubelet'), ('self', 'python3')):
        (proc / pid).mkdir(parents=True)
        (proc / pid / 'comm').write_text(name + '\n')

    def run_command(argv, check=True):
        if argv[0] == 'iptables-save':
            return 0, ('*filter\n:INPUT DROP [0:0]\n:input_ext - [0:0]\n:cali-INPUT - [0:0]\nCOMMIT\n'
                       '*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n'), ''
        return 0, 'table inet filter\n', ''

    signs = kubernetes_signs(run_command, exists=lambda path: path == '/etc/kubernetes', proc=str(proc))
    assert signs[:2] == ['/etc/kubernetes exists', 'a kubelet process runs']
    if susefirewall2.shutil.which('iptables-save'):
        assert 'iptables-save shows chains SuSEfirewall2 did not create (KUBE-SERVICES, cali-INPUT)' in signs
    assert kubernetes_signs(lambda argv, check=True: (0, '', ''), exists=lambda path: False,
                            proc=str(tmp_path / 'none')) == []


class Host(object):
    """A fake host: the config file and state dir in a temporary directory, and a recorder
    for commands (status answers "running" or not)."""

    def __init__(self, tmp_path, monkeypatch, text=CONFIG, running=True, kubernetes=(), start_rc=0):
        self.config = tmp_path / 'SuSEfirewall2'
        self.config.write_text(text)
        os.chmod(str(self.config), 0o640)
        self.state_dir = tmp_path / 'state'
        self.calls = []
        self.running, self.start_rc = running, start_rc
        monkeypatch.setattr(susefirewall2, 'CONFIG', str(self.config))
        monkeypatch.setattr(susefirewall2, 'kubernetes_signs', lambda run_command: list(kubernetes))

    def run_command(self, argv, check=True):
        self.calls.append(argv)
        rc = 0
        if argv[1] == 'status':
            rc = 0 if self.running else 3
        elif argv[1] == 'start':
            rc = self.start_rc
        if check and rc:
            raise BackendError('%s failed (rc=%d)' % (' '.join(argv), rc))
        return rc, '', ''

    def backend(self, **options):
        return SuseFirewall2Backend(self.run_command, dict(state_dir=str(self.state_dir), **options))

    def run(self, state, check_mode=False, prune=True, **options):
        backend = self.backend(**options)
        change = backend.compare(state, backend.read(), prune)
        if not change.empty and not check_mode:
            backend.apply(change)
            backend.verify(state, backend.read(), prune)
        return change, backend.messages

    def record(self):
        with open(str(self.state_dir / 'susefirewall2.json')) as handle:
            return json.load(handle)


STATE = desired(('tcp', '6443', ['0.0.0.0/0', '::/0'], None), ('tcp', '2379', ['192.0.2.11/32'], 'etcd'))


def test_apply_writes_once_and_starts(tmp_path, monkeypatch):
    host = Host(tmp_path, monkeypatch)
    change, messages = host.run(STATE)
    assert change.diff()['before'] == CONFIG and change.diff()['after'] == host.config.read_text()
    assert change.added == ['FW_SERVICES_ACCEPT_EXT 192.0.2.11/32,tcp,2379', 'FW_SERVICES_EXT_TCP 6443']
    assert ['SuSEfirewall2', 'start'] in host.calls
    assert messages == ['SuSEfirewall2 restarted with the new configuration']
    assert oct(os.stat(str(host.config)).st_mode & 0o777) == '0o640'
    assert host.record()['pending_start'] is False
    assert host.record()['tokens']['FW_SERVICES_EXT_TCP'] == ['6443']
    assert [name for name in os.listdir(str(tmp_path)) if name.startswith('.SuSEfirewall2')] == []
    # Again: nothing written, nothing started.
    host.calls[:] = []
    change, _messages = host.run(STATE)
    assert change.empty and ['SuSEfirewall2', 'start'] not in host.calls


def test_check_mode_writes_nothing(tmp_path, monkeypatch):
    host = Host(tmp_path, monkeypatch)
    change, _messages = host.run(STATE, check_mode=True)
    assert not change.empty and host.config.read_text() == CONFIG
    assert not host.state_dir.exists() and ['SuSEfirewall2', 'start'] not in host.calls


def test_refused_on_kubernetes_before_anything_is_written(tmp_path, monkeypatch):
    host = Host(tmp_path, monkeypatch, kubernetes=['/etc/kubernetes exists'])
    change, messages = host.run(STATE, check_mode=True)
    assert not change.empty and 'refused on this host' in messages[0]
    with pytest.raises(BackendError, match='did not create .*/etc/kubernetes exists.*nothing was written.*'
                                           'allow_restart'):
        host.run(STATE)
    assert host.config.read_text() == CONFIG and not host.state_dir.exists()
    assert ['SuSEfirewall2', 'start'] not in host.calls
    change, messages = host.run(STATE, allow_restart=True)
    assert not change.empty and ['SuSEfirewall2', 'start'] in host.calls
    assert 'because allow_restart is true (/etc/kubernetes exists)' in messages[-1]


def test_a_stopped_firewall_is_written_not_started(tmp_path, monkeypatch):
    host = Host(tmp_path, monkeypatch, running=False, kubernetes=['a kubelet process runs'])
    change, messages = host.run(STATE)
    assert not change.empty and host.config.read_text() != CONFIG
    assert ['SuSEfirewall2', 'start'] not in host.calls
    assert messages == ['SuSEfirewall2 is not running: %s is written and takes effect when it starts'
                        % host.config]


def test_a_failed_start_is_retried_by_the_next_run(tmp_path, monkeypatch):
    host = Host(tmp_path, monkeypatch, start_rc=1)
    with pytest.raises(BackendError, match='SuSEfirewall2 start failed'):
        host.run(STATE)
    assert host.record()['pending_start'] is True
    assert host.record()['tokens']['FW_SERVICES_EXT_TCP'] == ['6443']
    host.start_rc = 0
    host.calls[:] = []
    change, messages = host.run(STATE)
    assert not change.empty and change.added == [] and host.calls.count(['SuSEfirewall2', 'start']) == 1
    assert 'did not finish; it is started now' in messages[0]
    assert host.record()['pending_start'] is False
    assert host.run(STATE)[0].empty


# ---------------------------------------------------------------- trusted interfaces

PODS_ON = ['flannel.1', 'flannel-v6.1', 'cni0']
CUSTOM = susefirewall2.CUSTOM_RULES
LAB_CONFIG = CONFIG + 'FW_CUSTOMRULES=""\n'


def interfaces_rule(*names):
    return {'protocol': 'all', 'port': '', 'sources': ['0.0.0.0/0', '::/0'], 'source_set': None,
            'interfaces': list(names)}


def with_interfaces(*names, **kwargs):
    rules = [interfaces_rule(*names)] if names else []
    rules += [{'protocol': 'udp', 'port': '8472', 'sources': CLUSTER, 'source_set': 'cluster'}]
    return DesiredState.from_rules(rules + kwargs.get('more', []))


def plan(text, state, record=None, prune=True, custom=None):
    tokens, route = desired_tokens(state)
    return diff_config(text, tokens, route, record or owned(), prune, state.trusted_interfaces, custom)


def test_interfaces_reach_desired_state_not_tokens():
    state = with_interfaces(*PODS_ON)
    assert state.trusted_interfaces == frozenset(PODS_ON)
    tokens, route = desired_tokens(state)
    # No pod network trusted by source: the interfaces decide; routing on for forwarding.
    assert route is True and tokens['FW_TRUSTED_NETS'] == [] and tokens['FW_FORWARD'] == []


@pytest.mark.parametrize('text, record, prune, have, added, removed, after', [
    # First apply: FW_CUSTOMRULES="" names the collection's file, routing on.
    (LAB_CONFIG, owned(), True, None,
     ['FW_CUSTOMRULES ' + CUSTOM, 'FW_ROUTE yes'] + ['%s trusts interface %s' % (CUSTOM, name)
                                                     for name in sorted(PODS_ON)],
     [], {'FW_CUSTOMRULES': CUSTOM, 'FW_ROUTE': 'yes'}),
    # FW_CUSTOMRULES not in the file at all: appended (and recorded as absent before).
    (CONFIG, owned(), True, None,
     ['FW_CUSTOMRULES ' + CUSTOM, 'FW_ROUTE yes'] + ['%s trusts interface %s' % (CUSTOM, name)
                                                     for name in sorted(PODS_ON)],
     [], {'FW_CUSTOMRULES': CUSTOM}),
    # One interface more than the file trusts: only that one is added.
    (LAB_CONFIG.replace('FW_CUSTOMRULES=""', 'FW_CUSTOMRULES="%s"' % CUSTOM).replace("'no'", "'yes'"),
     load_owned({'tokens': {}, 'interfaces': ['cni0', 'flannel.1'], 'customrules_before': '', 'route_before': 'no'}),
     True, ['cni0', 'flannel.1'], ['%s trusts interface flannel-v6.1' % CUSTOM], [], {}),
    # The file trusts cali+ that is no longer wanted: pruned, kept without prune.
    (LAB_CONFIG.replace('FW_CUSTOMRULES=""', 'FW_CUSTOMRULES="%s"' % CUSTOM).replace("'no'", "'yes'"),
     load_owned({'tokens': {}, 'interfaces': PODS_ON + ['cali+'], 'customrules_before': '', 'route_before': 'no'}),
     True, PODS_ON + ['cali+'], [], ['%s trusts interface cali+' % CUSTOM], {}),
    (LAB_CONFIG.replace('FW_CUSTOMRULES=""', 'FW_CUSTOMRULES="%s"' % CUSTOM).replace("'no'", "'yes'"),
     load_owned({'tokens': {}, 'interfaces': PODS_ON + ['cali+'], 'customrules_before': '', 'route_before': 'no'}),
     False, PODS_ON + ['cali+'], [], [], {}),
    # The user routes IPv6 only (3.6.346 and later): IPv4 added to the list, not "yes".
    (LAB_CONFIG.replace("FW_ROUTE='no'", "FW_ROUTE='IPv6'"), owned(), True, None,
     ['FW_CUSTOMRULES ' + CUSTOM, 'FW_ROUTE IPv6,IPv4'] + ['%s trusts interface %s' % (CUSTOM, name)
                                                           for name in sorted(PODS_ON)],
     [], {'FW_ROUTE': 'IPv6,IPv4'}),
])
def test_plan_interfaces(text, record, prune, have, added, removed, after):
    custom = susefirewall2.custom_rules_text(have) if have is not None else None
    state = with_interfaces(*PODS_ON)
    new_text, got_added, got_removed, new_record = plan(text, state, record, prune, custom)
    tokens_added = [item for item in got_added if not item.startswith('FW_SERVICES_ACCEPT_EXT')]
    assert sorted(tokens_added) == sorted(added) and got_removed == removed
    for name, value in after.items():
        assert parse_config(new_text)[name].value == value
    assert new_record['interfaces'] == sorted(set(PODS_ON) | (set(have or ()) if not prune else set()))
    # Planning again against the result changes nothing.
    again = plan(new_text, state, new_record, prune, susefirewall2.custom_rules_text(new_record['interfaces']))
    assert again[0] == new_text and again[1] == [] and again[2] == []


@pytest.mark.parametrize('text', [LAB_CONFIG, CONFIG])
def test_interfaces_pruned_restore_the_file_byte_for_byte(text):
    state = with_interfaces(*PODS_ON)
    first, _added, _removed, record = plan(text, state)
    assert record['customrules_before'] == ('' if text == LAB_CONFIG else None)
    custom = susefirewall2.custom_rules_text(record['interfaces'])
    final, added, removed, record = plan(first, DesiredState.from_rules([]), load_owned(record), True, custom)
    assert added == []
    expected = ['FW_CUSTOMRULES ' + CUSTOM, 'FW_ROUTE yes'] + ['%s trusts interface %s' % (CUSTOM, name) for name in PODS_ON]
    assert sorted(item for item in removed if not item.startswith('FW_SERVICES_ACCEPT_EXT')) == sorted(expected)
    assert final == text
    assert record == {'tokens': dict((name, []) for name in susefirewall2.TOKEN_VARIABLES)}


@pytest.mark.parametrize('text, custom, message', [
    # The user's own custom rules: refused, naming the variable, its value and the fix.
    (LAB_CONFIG.replace('FW_CUSTOMRULES=""', 'FW_CUSTOMRULES="/etc/sysconfig/scripts/SuSEfirewall2-custom"'), None,
     r'FW_CUSTOMRULES is "/etc/sysconfig/scripts/SuSEfirewall2-custom" in .*nothing was changed. Empty '
     r'FW_CUSTOMRULES.*kubeports_pod_interfaces to \[\]'),
    # A file at the collection's path that is not the collection's.
    (LAB_CONFIG.replace('FW_CUSTOMRULES=""', 'FW_CUSTOMRULES="%s"' % CUSTOM), 'iptables -A INPUT -j ACCEPT\n',
     'exists but was not written by the collection'),
])
def test_conflicting_user_values_are_refused(text, custom, message):
    with pytest.raises(BackendError, match=message):
        plan(text, with_interfaces(*PODS_ON), custom=custom)


def test_custom_rules_text():
    text = susefirewall2.custom_rules_text(['flannel.1', 'cali+', 'cni0'])
    assert text.startswith(susefirewall2.CUSTOM_MARK + '\n')
    assert 'kubeports_trusted_interfaces="cali+ cni0 flannel.1"' in text
    assert susefirewall2.custom_interfaces(text) == ['cali+', 'cni0', 'flannel.1']
    for line in ('$iptables -A INPUT -i "$dev" -j ACCEPT', '$iptables -A FORWARD -i "$dev" -j ACCEPT',
                 '$iptables -A FORWARD -o "$dev" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
                 '$iptables -A FORWARD -m conntrack --ctstate DNAT -j ACCEPT',
                 'for iptables in "$IPTABLES" "$IP6TABLES"; do', 'fw_custom_before_port_handling() {'):
        assert line in text


def test_old_records_load_with_no_interfaces():
    old = {'tokens': {'FW_SERVICES_EXT_TCP': ['6443']}, 'route_before': 'no', 'pending_start': False}
    assert 'interfaces' not in load_owned(old) and 'customrules_before' not in load_owned(old)
    assert load_owned(dict(old, interfaces=['cni0'], customrules_before=None))['customrules_before'] is None


def custom_host(tmp_path, monkeypatch, text=LAB_CONFIG, **kwargs):
    host = Host(tmp_path, monkeypatch, text=text, **kwargs)
    host.custom = tmp_path / 'scripts' / 'SuSEfirewall2-kubeports'
    monkeypatch.setattr(susefirewall2, 'CUSTOM_RULES', str(host.custom))
    return host


def test_apply_interfaces_writes_the_custom_file_and_prunes_it(tmp_path, monkeypatch):
    host = custom_host(tmp_path, monkeypatch)
    state = with_interfaces(*PODS_ON)
    change, _messages = host.run(state, check_mode=True)
    assert not host.custom.exists() and host.config.read_text() == LAB_CONFIG
    planned = change.diff()
    change, messages = host.run(state)
    # Check mode showed exactly what the run did.
    assert change.diff() == dict(planned, after=host.config.read_text())
    assert planned['after'] == host.config.read_text()
    assert host.custom.read_text() == susefirewall2.custom_rules_text(PODS_ON)
    assert oct(os.stat(str(host.custom)).st_mode & 0o777) == '0o644'
    assert tokens_of(host.config.read_text(), 'FW_CUSTOMRULES') == [str(host.custom)]
    assert host.record()['interfaces'] == sorted(PODS_ON) and host.record()['customrules_before'] == ''
    assert messages == ['SuSEfirewall2 restarted with the new configuration']
    assert host.run(state)[0].empty
    # The file damaged by hand: rewritten (verify after apply would catch it otherwise).
    host.custom.write_text(susefirewall2.custom_rules_text(PODS_ON).replace('cni0 ', ''))
    change, _messages = host.run(state)
    assert change.added == ['%s trusts interface cni0' % host.custom]
    assert host.custom.read_text() == susefirewall2.custom_rules_text(PODS_ON)
    # Audit: the trust is the collection's, on each interface, never "every port to anyone".
    found = host.backend().exposures(host.backend().read())
    trusted = [item for item in found if item['interfaces']]
    assert sorted(item['interfaces'][0] for item in trusted) == sorted(PODS_ON)
    assert all(item['owned'] and item['protocol'] == 'all' and item['sources'] is None for item in trusted)
    assert not [item for item in found if item['protocol'] == 'all' and not item['interfaces']]
    # Pruned: the file goes, the configuration is the user's again.
    change, _messages = host.run(with_interfaces())
    assert not host.custom.exists() and host.config.read_text() == LAB_CONFIG.replace(
        '\t192.0.2.0/24,udp,53\n', '\t192.0.2.0/24,udp,53\n\t192.0.2.0/31,udp,8472\n\tfd00::/126,udp,8472\n')
    assert 'interfaces' not in host.record() and 'customrules_before' not in host.record()


def test_refused_custom_rules_write_nothing(tmp_path, monkeypatch):
    text = LAB_CONFIG.replace('FW_CUSTOMRULES=""', 'FW_CUSTOMRULES="/etc/sysconfig/scripts/SuSEfirewall2-custom"')
    host = custom_host(tmp_path, monkeypatch, text=text)
    for check_mode in (True, False):
        with pytest.raises(BackendError, match='FW_CUSTOMRULES is "/etc/sysconfig/scripts/SuSEfirewall2-custom"'):
            host.run(with_interfaces(*PODS_ON), check_mode=check_mode)
    assert host.config.read_text() == text and not host.custom.exists() and not host.state_dir.exists()
    assert ['SuSEfirewall2', 'start'] not in host.calls


def test_user_trusted_internal_zone_is_reported_on_its_interfaces(tmp_path, monkeypatch):
    host = custom_host(tmp_path, monkeypatch, text=LAB_CONFIG + 'FW_DEV_INT="eth1"\n')
    found = [item for item in host.backend().exposures(host.backend().read()) if item['interfaces']]
    assert found == [{'protocol': 'all', 'port': '', 'sources': None, 'interfaces': ['eth1'], 'owned': False,
                      'scope': 'zone', 'what': 'FW_DEV_INT eth1 (FW_PROTECT_FROM_INT no)'}]
