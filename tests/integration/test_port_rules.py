"""kubeports.firewall.port_rules on the lab's real firewalld and ufw hosts, over SSH.

Ports 39501-39509 are used only by this file. Listeners live at most LISTENER_LIFETIME s.
"""

import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
COLLECTIONS = os.path.join(ROOT, '.build', 'collections')
BIN = os.path.dirname(sys.executable)
LISTENER_LIFETIME = 20

# A small listener answering TCP connections and UDP datagrams with a nonce.
LISTENER = r"""
import socket, sys, time
proto, port, nonce, lifetime = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), float(sys.argv[4])
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", port))
if proto == "tcp":
    s.listen(8)
end = time.monotonic() + lifetime
print("ready", flush=True)
while time.monotonic() < end:
    s.settimeout(max(0.1, end - time.monotonic()))
    try:
        if proto == "tcp":
            conn, _peer = s.accept()
            conn.sendall(nonce)
            conn.close()
        else:
            data, peer = s.recvfrom(256)
            s.sendto(nonce, peer)
    except socket.timeout:
        pass
"""

PROBE = r"""
import socket, sys
proto, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
family = socket.AF_INET6 if ":" in address else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
s.settimeout(1.5)
try:
    if proto == "tcp":
        s.connect((address, port))
        print(s.recv(64).decode())
    else:
        s.sendto(b"probe", (address, port))
        print(s.recv(64).decode())
except OSError as exc:
    print("blocked: %s" % exc)
"""


PLAYBOOK = """
- hosts: "{{ target }}"
  gather_facts: false
  tasks:
    - name: Apply the test rules
      kubeports.firewall.port_rules:
        rules: "{{ module_args.rules | default(omit) }}"
        state: "{{ module_args.state | default(omit) }}"
        sets: "{{ module_args.sets | default(omit) }}"
        backend: "{{ module_args.backend | default('auto') }}"
        prune: "{{ module_args.prune | default(true) }}"
        allow_restart: "{{ module_args.allow_restart | default(false) }}"
        state_dir: "{{ module_args.state_dir | default(omit) }}"
        public_ports: "{{ module_args.public_ports | default(omit) }}"
        confirm_timeout: "{{ module_args.confirm_timeout | default(omit) }}"
        firewalld_reload: "{{ module_args.firewalld_reload | default(omit) }}"
        ufw_peer_sets: "{{ module_args.ufw_peer_sets | default(omit) }}"
      register: result
      ignore_errors: true
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ result | to_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      delegate_to: localhost
      check_mode: false
"""


def module(lab, host, args, check=False):
    """Runs the module on one lab host with ansible-playbook; returns (status, result dict)."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_HOST_KEY_CHECKING='False',
               ANSIBLE_NOCOLOR='1', PATH=BIN + os.pathsep + os.environ.get('PATH', ''))
    env.pop('ANSIBLE_CONFIG', None)
    with tempfile.TemporaryDirectory() as work:
        playbook, extra, result_file = (os.path.join(work, name) for name in ('play.yml', 'vars.json', 'result'))
        with open(playbook, 'w') as handle:
            handle.write(PLAYBOOK)
        with open(extra, 'w') as handle:
            json.dump({'target': host, 'module_args': args, 'result_file': result_file}, handle)
        argv = [os.path.join(BIN, 'ansible-playbook'), playbook, '-i', lab.inventory_path, '-e', '@' + extra,
                '--diff'] + (['--check'] if check else [])
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env, cwd=work, check=False)
        assert os.path.exists(result_file), proc.stdout + proc.stderr
        with open(result_file) as handle:
            result = json.load(handle)
    status = 'FAILED!' if result.get('failed') else 'CHANGED' if result.get('changed') else 'SUCCESS'
    return status, result


def ruleset(lab, host):
    """The host's packet filter and firewall configuration, to compare before/after."""
    out = lab.exec(host, ['sh', '-c', 'nft list ruleset 2>/dev/null; iptables-save 2>/dev/null | grep -v "^#"; '
                                      'ip6tables-save 2>/dev/null | grep -v "^#"; '
                                      'cat /etc/ufw/user.rules /etc/ufw/user6.rules 2>/dev/null; '
                                      'cat /etc/firewalld/zones/*.xml /etc/firewalld/ipsets/*.xml 2>/dev/null'])
    # Packet counters change with traffic; compare rules only.
    return re.sub(r'(packets|bytes) \d+', '', re.sub(r'\[\d+:\d+\]', '', out.stdout))


def rules_for(lab, peer):
    """Test rules: one port open to anyone, three restricted to ``peer`` (IPv4 and IPv6)."""
    sources = [lab.address(peer) + '/32', lab.address(peer, 6) + '/128']
    return [
        {'protocol': 'tcp', 'port': '39501', 'sources': ['0.0.0.0/0', '::/0'], 'source_set': None},
        {'protocol': 'tcp', 'port': '39502', 'sources': sources, 'source_set': 'testpeers'},
        {'protocol': 'udp', 'port': '39503', 'sources': sources, 'source_set': 'testpeers'},
        {'protocol': 'tcp', 'port': '39504-39505', 'sources': sources, 'source_set': 'testpeers'},
    ]


def probe(lab, source, target, protocol, port, family=4):
    nonce = uuid.uuid4().hex
    listener = lab.spawn(target, ['python3', '-c', LISTENER, protocol, str(port),
                                  nonce, str(LISTENER_LIFETIME)])
    try:
        assert listener.stdout.readline().strip() == 'ready'
        out = lab.exec(source, ['python3', '-c', PROBE, protocol, lab.address(target, family), str(port)])
        return out.stdout.strip() == nonce
    finally:
        listener.kill()
        listener.wait(timeout=10)


# firewalld on node1, ufw on node3 (tests/integration/lab/specs/default.yml).
CASES = [('node1', 'node5', 'node2'), ('node3', 'node4', 'node5')]


@pytest.fixture(scope='module', params=CASES, ids=['firewalld', 'ufw'])
def target(request, lab):
    host, peer, other = request.param
    yield host, peer, other
    module(lab, host, {'rules': []})  # prune everything the tests opened


def test_apply_reapply_and_check_mode(lab, target):
    host, peer, _other = target
    rules = rules_for(lab, peer)
    status, result = module(lab, host, {'rules': rules})
    assert status == 'CHANGED', result
    assert any('39502' in line for line in result['diff']['added'])
    before = ruleset(lab, host)
    status, result = module(lab, host, {'rules': rules})
    assert status == 'SUCCESS' and not result['changed'], result
    status, result = module(lab, host, {'rules': rules}, check=True)
    assert status == 'SUCCESS' and not result['changed'], result
    assert ruleset(lab, host) == before


def assert_only_peer_reaches(lab, host, peer, other):
    """After rules_for(peer): the peer reaches the restricted ports, the other host only 39501."""
    assert probe(lab, peer, host, 'tcp', 39502)
    assert probe(lab, peer, host, 'tcp', 39502, family=6)
    assert probe(lab, peer, host, 'udp', 39503)
    assert probe(lab, other, host, 'tcp', 39501)
    assert not probe(lab, other, host, 'tcp', 39502)
    assert not probe(lab, other, host, 'udp', 39503)
    assert not probe(lab, other, host, 'tcp', 39506)


def test_probes_allowed_peer_only(lab, target):
    host, peer, other = target
    module(lab, host, {'rules': rules_for(lab, peer)})
    assert_only_peer_reaches(lab, host, peer, other)


def assert_sources_without_a_set_name_admit_those_only(lab, host, peer, other):
    """The sources decide: rules with sources and no source_set (the key left out, as a user
    may write them) are restricted to those sources, never opened to everyone."""
    rules = [{'protocol': 'tcp', 'port': '39507', 'sources': [lab.address(peer) + '/32', lab.address(peer, 6) + '/128']},
             {'protocol': 'udp', 'port': '39508', 'sources': [lab.address(peer) + '/32']}]
    status, result = module(lab, host, {'rules': rules})
    assert status == 'CHANGED', result
    assert probe(lab, peer, host, 'tcp', 39507)
    assert probe(lab, peer, host, 'tcp', 39507, family=6)
    assert probe(lab, peer, host, 'udp', 39508)
    assert not probe(lab, other, host, 'tcp', 39507)
    assert not probe(lab, other, host, 'tcp', 39507, family=6)
    assert not probe(lab, other, host, 'udp', 39508)
    status, result = module(lab, host, {'rules': rules})
    assert status == 'SUCCESS' and not result['changed'], result


def test_sources_without_a_set_name_admit_those_sources_only(lab, target):
    host, peer, other = target
    assert_sources_without_a_set_name_admit_those_only(lab, host, peer, other)


def _drift(lab, host, peer):
    """Removes one of the collection's rules by hand, as an operator might."""
    if host == 'node1':
        rule = 'rule family="ipv4" source ipset="kubeports-testpeers" port port="39503" protocol="udp" accept'
        for extra in ([], ['--permanent']):
            lab.exec(host, ['firewall-cmd', '--remove-rich-rule', rule] + extra, check=True)
    else:
        # ufw matches the peer set as an ipset from its after rules: that rule, from the running chain.
        lab.exec(host, ['iptables', '-D', 'ufw-after-input', '-p', 'udp', '-m', 'multiport', '--dports', '39503',
                        '-m', 'set', '--match-set', 'kubeports-testpeers-v4', 'src', '-m', 'comment', '--comment',
                        'kubeports:testpeers', '-j', 'ACCEPT'], check=True)


def test_check_mode_on_drift_reports_and_touches_nothing(lab, target):
    host, peer, _other = target
    rules = rules_for(lab, peer)
    module(lab, host, {'rules': rules})
    _drift(lab, host, peer)
    before = ruleset(lab, host)
    status, result = module(lab, host, {'rules': rules}, check=True)
    assert status == 'CHANGED', result
    assert [line for line in result['diff']['added'] if '39503' in line], result['diff']
    assert result['diff']['removed'] == []
    assert ruleset(lab, host) == before
    status, result = module(lab, host, {'rules': rules})
    assert status == 'CHANGED'
    status, result = module(lab, host, {'rules': rules})
    assert status == 'SUCCESS', result


def _foreign(lab, host, add=True):
    if host == 'node1':
        for extra in ([], ['--permanent']):
            lab.exec(host, ['firewall-cmd', '--%s-port' % ('add' if add else 'remove'), '39505/tcp'] + extra,
                     check=True)
    else:
        lab.exec(host, ['ufw'] + ([] if add else ['--force', 'delete']) + ['allow', '39505/tcp'], check=True)


def _listed(lab, host):
    if host == 'node1':
        return lab.exec(host, ['firewall-cmd', '--list-all']).stdout
    return lab.exec(host, ['ufw', 'status']).stdout


def test_prune_removes_only_own_rules(lab, target):
    host, peer, _other = target
    rules = rules_for(lab, peer)
    module(lab, host, {'rules': rules})
    _foreign(lab, host)
    try:
        status, result = module(lab, host, {'rules': rules[:2]})
        assert status == 'CHANGED', result
        removed = ' '.join(result['diff']['removed'])
        assert '39503' in removed and ('39504-39505' in removed or '39504:39505' in removed)
        assert '39505/tcp' in _listed(lab, host)
        status, result = module(lab, host, {'rules': rules[:2], 'prune': False})
        assert status == 'SUCCESS'
        status, result = module(lab, host, {'rules': []})
        assert status == 'CHANGED'
        assert '39505/tcp' in _listed(lab, host)
        assert '39501' not in _listed(lab, host)
    finally:
        _foreign(lab, host, add=False)


@pytest.mark.parametrize('args, message', [
    ({'rules': [{'protocol': 'tcp', 'port': '70000', 'sources': ['0.0.0.0/0'], 'source_set': None}]},
     "invalid port '70000'"),
    ({'rules': [{'protocol': 'tcp', 'port': '39501', 'sources': ['10.0.0.1/8'], 'source_set': 'x'}]},
     'has host bits set'),
    ({'rules': [{'protocol': 'tpc', 'port': '1', 'sources': ['0.0.0.0/0'], 'source_set': None}]},
     'value of protocol must be one of: tcp, udp, sctp'),
    ({'rules': [{'protocol': 'tcp', 'port': '39501', 'sorces': ['10.0.0.1/32']}]}, 'rules.sorces'),
    ({'rules': [{'protocol': 'tcp', 'port': '39501', 'source_set': 'nope'}], 'sets': {'cluster': ['10.0.0.0/24']}},
     "rules[0]: source_set 'nope' is not among the sets given (cluster)"),
    ({'rules': [{'protocol': 'tcp', 'port': '39501', 'sources': ['10.0.0.1/32'], 'source_set': 'cluster'}],
      'sets': {'cluster': ['10.0.0.0/24']}}, "source_set 'cluster' disagrees with the rule's sources"),
    ({'rules': [{'protocol': 'tcp', 'port': '39501', 'source_set': None}]}, 'rules[0]: no sources and no source_set'),
    ({'rules': [], 'sets': {'cluster': '10.0.0.0/24'}}, 'sets.cluster: expected a list of CIDRs'),
    ({'rules': [], 'backend': 'susefirewall2'}, 'backend susefirewall2 was chosen but '),
])
def test_bad_input_fails_and_changes_nothing(lab, target, args, message):
    host = target[0]
    before = ruleset(lab, host)
    status, result = module(lab, host, args)
    assert status == 'FAILED!' and message in result['msg'], result
    assert ruleset(lab, host) == before


def test_chosen_backend_not_active(lab, target):
    host, peer, _other = target
    if host == 'node1':
        status, result = module(lab, host, {'rules': [], 'backend': 'ufw'})
        assert status == 'FAILED!' and 'backend ufw was chosen but firewalld is the active firewall' in result['msg'], result
        return
    # firewalld is installed but stopped on the ufw host: writing its offline configuration
    # would report a change that filters nothing; refused, and nothing is written.
    before = ruleset(lab, host)
    offline = lab.exec(host, ['firewall-offline-cmd', '--list-ports']).stdout
    status, result = module(lab, host, {'rules': rules_for(lab, peer), 'backend': 'firewalld'})
    assert status == 'FAILED!', result
    assert 'backend firewalld was chosen but ufw is the active firewall on this host' in result['msg'], result
    assert ruleset(lab, host) == before
    assert lab.exec(host, ['firewall-offline-cmd', '--list-ports']).stdout == offline


def test_concurrent_runs_serialize(lab, target):
    host, peer, _other = target
    module(lab, host, {'rules': []})
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(module, lab, host, {'rules': rules_for(lab, peer)}) for _index in range(2)]
        statuses = sorted(run.result(timeout=300)[0] for run in runs)
    assert statuses == ['CHANGED', 'SUCCESS'], statuses
    status, _result = module(lab, host, {'rules': rules_for(lab, peer)}, check=True)
    assert status == 'SUCCESS'
