"""The inventory as kubespray users have it, on the default lab (firewalld and ufw): kubespray's
shipped shape (no k8s_cluster group, `[etcd:children] kube_control_plane`, `ip` and
`ansible_host` per host, the CNI and the other installer variables in group_vars/k8s_cluster,
something in group_vars/all), run with --limit, a node added with `--limit NEWNODE` (as
kubespray's scale.yml adds one), the other hosts updated with the command that run prints, and
the node removed from the inventory again.

node1 (firewalld) and node3 (ufw) run the control plane and etcd, node2 (firewalld) and node4
(ufw) are workers; node5 (firewalld) is the worker that comes and goes. Calico with BGP: 179/tcp
is open to the cluster's peer set only, on every host. After each step, probes (the verify role,
and direct ones from node5 once it is outside the inventory) show that every host admits exactly
the current peers.
"""

import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, COLLECTIONS, PLAYBOOKS
from test_port_rules import probe

CONTROL = ['node1', 'node3']
WORKERS = ['node2', 'node4']
NEW = 'node5'
OLD = sorted(CONTROL + WORKERS)
FIREWALLS = {'node1': 'firewalld', 'node2': 'firewalld', 'node3': 'ufw', 'node4': 'ufw', 'node5': 'firewalld'}
BGP = 179  # Calico's BGP: from the cluster's peer set only, on every host

HOSTS_INI = """\
# kubespray's inventory/sample/inventory.ini: stacked etcd on the control plane
[kube_control_plane]
{control}

[etcd:children]
kube_control_plane

[kube_node]
{workers}
"""
GROUP_VARS = {
    'k8s_cluster/k8s-cluster.yml': (
        '---\nkube_network_plugin: calico\nkube_service_addresses: 10.233.0.0/18\n'
        'kube_pods_subnet: 10.233.64.0/18\nkube_proxy_mode: ipvs\nkube_apiserver_port: 6443\n'),
    'k8s_cluster/k8s-net-calico.yml': (
        '---\ncalico_network_backend: bird\ncalico_ipip_mode: Never\ncalico_vxlan_mode: Never\n'),
    'k8s_cluster/addons.yml': '---\nmetrics_server_enabled: false\n',
    'all/all.yml': '---\nbin_dir: /usr/local/bin\nloadbalancer_apiserver_localhost: true\n',
}

PLAN_TASK = 'TASK [kubeports.firewall.open_ports : Plan the rules of the hosts of this batch'
CHANGES_TASK = 'Show what changed and what the backend says'
PEERS_MESSAGE = re.compile(r'^    "msg": "(.* new to (?:its|their) own peer sets .*)"$', re.M)
PEERS_PARTS = re.compile(r'^(.*?) (?:is|are) new to (?:its|their) own peer sets \(first applied, or at a new address\)\. '
                         r'(\d+) host\(s\) outside this run hold (?:it|them) in their plan: (.*?)\. They do not admit '
                         r'.* \(only set members change; a host already up to date does not change\): (.*)$')
# A diff line that changes the members of an existing set, nothing else: firewalld's
# "ipset NAME entry CIDR" (possibly of one view only), ufw's "ipset NAME: CIDR".
MEMBER_CHANGE = re.compile(r'^ipset kubeports-\S+( entry|:) [0-9a-f.:]+/\d+( \((permanent|runtime) only\))?$')
RICH = 'rule family="ipv4" source ipset="%s" port port="%s" protocol="%s" accept'

# firewalld's state in one process (runtime and permanent): what is opened, the peer sets'
# entries, the same sets as the kernel holds them (nftables: "first-last" ranges), and the
# handle of firewalld's nftables table (a reload creates the table anew).
FIREWALLD_STATE = r'''
import ipaddress, json, subprocess
from firewall.client import FirewallClient
fw = FirewallClient()
config = fw.config()
zone = fw.getDefaultZone()
permanent = config.getZoneByName(zone)
views = {
    'runtime': {'ports': sorted('%s/%s' % tuple(p) for p in fw.getPorts(zone)),
                'rich': sorted(fw.getRichRules(zone)), 'trusted': sorted(fw.getSources('trusted')),
                'ipsets': dict((n, sorted(fw.getEntries(n))) for n in fw.getIPSets() if n.startswith('kubeports-'))},
    'permanent': {'ports': sorted('%s/%s' % tuple(p) for p in permanent.getPorts()),
                  'rich': sorted(permanent.getRichRules()),
                  'trusted': sorted(config.getZoneByName('trusted').getSources()),
                  'ipsets': dict((n, sorted(config.getIPSetByName(n).getEntries()))
                                 for n in config.getIPSetNames() if n.startswith('kubeports-'))},
}
listed = json.loads(subprocess.run(['nft', '-j', 'list', 'table', 'inet', 'firewalld'], capture_output=True,
                                   text=True, check=True).stdout)['nftables']
handle, kernel = None, {}
for item in listed:
    if 'table' in item:
        handle = item['table']['handle']
    found = item.get('set')
    if not found or not found['name'].startswith('kubeports-'):
        continue
    ranges = kernel.setdefault(found['name'], [])
    for elem in found.get('elem', []):
        if isinstance(elem, dict) and 'elem' in elem:
            elem = elem['elem']['val']
        if isinstance(elem, str):
            ranges.append('%s-%s' % (elem, elem))
        elif 'prefix' in elem:
            net = ipaddress.ip_network('%s/%s' % (elem['prefix']['addr'], elem['prefix']['len']))
            ranges.append('%s-%s' % (net[0], net[-1]))
        else:
            ranges.append('%s-%s' % tuple(elem['range']))
print(json.dumps({'views': views, 'kernel': kernel, 'table': handle}))
'''
# ufw's state in one process: its own rules, the peer-set rules of its after rules, the sets'
# members (running and saved for boot), and the packets counted by ufw-before-input's
# "-i lo -j ACCEPT" (read, then 20 more sent): only a reload, disable/enable or reset zeroes it.
UFW_STATE = r'''
import json, socket, subprocess
def run(*argv):
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout
def members(text):
    found = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) > 1 and words[0] in ('create', 'add') and words[1].startswith('kubeports-'):
            found.setdefault(words[1], [])
            if words[0] == 'add':
                found[words[1]].append(words[2])
    return dict((name, sorted(entries)) for name, entries in found.items())
counter = None
for line in run('iptables', '-L', 'ufw-before-input', '-v', '-x', '-n').splitlines():
    words = line.split()
    if len(words) > 5 and words[5] == 'lo':
        counter = int(words[0])
        break
sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(20):
    sender.sendto(b'x', ('127.0.0.1', 9))
try:
    with open('/etc/ufw/kubeports.ipsets') as handle:
        saved = members(handle.read())
except OSError:
    saved = {}
rules = {'status': run('ufw', 'status'),
         'after4': [l for l in run('iptables', '-S', 'ufw-after-input').splitlines() if 'kubeports' in l],
         'after6': [l for l in run('ip6tables', '-S', 'ufw6-after-input').splitlines() if 'kubeports' in l]}
print(json.dumps({'rules': rules, 'members': members(run('ipset', 'list', '-o', 'save')), 'saved': saved,
                  'lo_packets': counter}))
'''


def environment():
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_HOST_KEY_CHECKING='False',
               ANSIBLE_NOCOLOR='1', ANSIBLE_CALLBACK_RESULT_FORMAT='json',
               PATH=str(BIN) + os.pathsep + os.environ.get('PATH', ''))
    env.pop('ANSIBLE_CONFIG', None)
    return env


def run(workdir, argv, timeout=900):
    """Runs a command as a user would, in ``workdir``; returns its output, failing on rc != 0."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=environment(),
                          cwd=str(workdir), check=False)
    logs = Path(str(workdir)) / 'logs'
    logs.mkdir(exist_ok=True)
    log = logs / ('%02d.txt' % len(list(logs.iterdir())))
    log.write_text('%s\nrc=%d\n%s\n%s' % (' '.join(map(shlex.quote, argv)), proc.returncode, proc.stdout, proc.stderr))
    assert proc.returncode == 0, '%s failed (%d), output in %s:\n%s' % (
        argv[:2], proc.returncode, log, proc.stdout[-6000:] + proc.stderr[-2000:])
    return proc.stdout


def playbook(workdir, inventory, name, *extra):
    return run(workdir, [str(BIN / 'ansible-playbook'), str(PLAYBOOKS / name), '-i', inventory] + list(extra))


def write_inventory(lab, workdir, workers):
    """kubespray's shipped shape for CONTROL and ``workers``: the lab's connection variables of
    those hosts only (a host left out is not in the inventory at all), hosts.ini, group_vars."""
    inventory = Path(str(workdir)) / 'inventory'
    if inventory.exists():
        shutil.rmtree(str(inventory))
    inventory.mkdir(parents=True)
    present = set(CONTROL + workers)
    connection = json.loads(json.dumps(lab.inventory))
    for group in connection['all']['children'].values():
        for host in list(group['hosts']):
            if host not in present:
                del group['hosts'][host]
    (inventory / '00-lab.yml').write_text(json.dumps(connection))

    def lines(hosts):
        return '\n'.join('%s ansible_host=%s ip=%s' % (host, lab.address(host), lab.address(host)) for host in hosts)
    (inventory / 'hosts.ini').write_text(HOSTS_INI.format(control=lines(CONTROL), workers=lines(workers)))
    for name, text in GROUP_VARS.items():
        path = inventory / 'group_vars' / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(inventory)


def recap(output):
    return dict((line.split()[0], line) for line in output.splitlines() if ' : ok=' in line)


def shown(output, task):
    """{host: msg} of one debug task of the role in the default callback's output (every batch)."""
    found, inside = {}, False
    lines = output.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith('TASK ['):
            inside = task in line
        elif inside:
            match = re.match(r'^ok: \[([^\]]+)\] => \{$', line)
            if match:
                end = lines.index('}', index)
                found[match.group(1)] = json.loads('\n'.join(['{'] + lines[index + 1:end] + ['}']))['msg']
                index = end
        index += 1
    return found


def peer_messages(output):
    """Each "NODE is new to its own peer sets ..." message: (hosts outside, new members, command)."""
    found = []
    for text in PEERS_MESSAGE.findall(output):
        match = PEERS_PARTS.match(json.loads('"%s"' % text))
        assert match, text
        members, count, hosts, command = match.groups()
        hosts = hosts.split(', ')
        assert int(count) == len(hosts), text
        found.append((hosts, members.split(', '), command))
    return found


def state(lab, host):
    """What one host's firewall holds: {'rules': everything but the peer sets' members,
    'members': {set: entries} running, 'saved': {set: entries} loaded at boot, 'marker': what
    a reload changes}."""
    if FIREWALLS[host] == 'firewalld':
        out = lab.exec(host, ['python3', '-c', FIREWALLD_STATE], check=True).stdout
        data = json.loads(out)
        views = data['views']
        rules = dict((view, dict(views[view], ipsets=sorted(views[view]['ipsets']))) for view in views)
        return {'rules': rules, 'members': views['runtime']['ipsets'], 'saved': views['permanent']['ipsets'],
                'kernel': data['kernel'], 'marker': data['table'], 'views': views}
    data = json.loads(lab.exec(host, ['python3', '-c', UFW_STATE], check=True).stdout)
    rules = dict(data['rules'], sets=sorted(data['members']))
    return {'rules': rules, 'members': data['members'], 'saved': data['saved'], 'kernel': data['members'],
            'marker': data['lo_packets']}


def holds(entries, address):
    """Whether a CIDR or a "first-last" range of ``entries`` covers ``address``."""
    address = ipaddress.ip_address(address)
    for entry in entries:
        if '-' in entry:
            first, last = (ipaddress.ip_address(end) for end in entry.split('-'))
            if first.version == address.version and first <= address <= last:
                return True
        elif address in ipaddress.ip_network(entry):
            return True
    return False


def sets_holding(found, address):
    """The peer sets (running, saved or in the kernel) with an entry covering ``address``."""
    return sorted(set(name for view in ('members', 'saved', 'kernel') for name, entries in found[view].items()
                      if holds(entries, address)))


def cluster_set(found):
    """The name of the cluster's IPv4 peer set (firewalld: kubeports-cluster, ufw: kubeports-cluster-v4)."""
    names = [name for name in ('kubeports-cluster', 'kubeports-cluster-v4') if name in found['members']]
    assert len(names) == 1, sorted(found['members'])
    return names[0]


def disagreements(lab, found):
    """Where the firewall's own view of its running sets and the kernel's differ (lab hosts)."""
    return [(name, host) for name in sorted(set(found['members']) | set(found['kernel'])) for host in lab.hosts
            if holds(found['members'].get(name, ()), lab.address(host))
            != holds(found['kernel'].get(name, ()), lab.address(host))]


def rules_of(plan, host):
    """A host's rules of plan.json, each with its sources."""
    entry = plan['hosts'][host]
    listed = plan['rule_lists'][entry['rule_list']]
    sets = dict((name, plan['sets'][key]) for name, key in listed['sets'].items())
    sets.update(entry['own_sets'])
    return [dict(rule, sources=sets[rule['source_set']] if rule['source_set'] else rule['sources'])
            for rule in listed['rules']]


def restricted(plan, host, protocol, port):
    """Whether the host's planned rule for protocol/port admits a peer set only (not anyone)."""
    for rule in rules_of(plan, host):
        if rule['protocol'] != protocol or not rule['port']:
            continue
        low, _dash, high = rule['port'].partition('-')
        if int(low) <= port <= int(high or low):
            return rule['source_set'] is not None
    return False


def probe_key(record):
    return (record['source'], record['target'], record['address'], record['protocol'], record['port'])


def verify(workdir, inventory, *extra):
    reports = os.path.join(str(workdir), 'reports')
    output = playbook(workdir, inventory, 'verify.yml', '-e', 'kubeports_verify_report_dir=' + reports, *extra)
    with open(os.path.join(reports, 'verify.json')) as handle:
        return json.load(handle), output


def new_ssh_to_every_host(lab, hosts):
    for host in hosts:
        proc = lab.ssh(host, 'echo kubeports-alive')
        assert proc.returncode == 0 and 'kubeports-alive' in proc.stdout, (host, proc.stderr)


@pytest.fixture(scope='module')
def cluster(lab, tmp_path_factory):
    """The inventory without node5, applied to every host, then a --limit run on one host."""
    if any(lab.hostvars.get(host, {}).get('lab_firewall') != firewall for host, firewall in FIREWALLS.items()):
        pytest.skip('needs the default lab spec (%s)' % FIREWALLS)
    workdir = tmp_path_factory.mktemp('lifecycle')
    inventory = write_inventory(lab, workdir, WORKERS)
    whole = playbook(workdir, inventory, 'open_ports.yml')
    limited = playbook(workdir, inventory, 'open_ports.yml', '--limit', 'node1')
    return {'workdir': workdir, 'inventory': inventory, 'whole': whole, 'limited': limited}


@pytest.fixture(scope='module')
def added(lab, cluster):
    """node5 added to the inventory and applied with --limit node5; the whole inventory's plan;
    the other hosts' state and a verify run (reporting only) before they are updated."""
    workdir, inventory = cluster['workdir'], cluster['inventory']
    assert write_inventory(lab, workdir, WORKERS + [NEW]) == inventory
    limited = playbook(workdir, inventory, 'open_ports.yml', '--limit', NEW)
    new_state = state(lab, NEW)
    reports = os.path.join(str(workdir), 'plan-reports')
    playbook(workdir, inventory, 'plan.yml', '-e', 'kubeports_report_dir=' + reports)
    with open(os.path.join(reports, 'plan.json')) as handle:
        plan = json.load(handle)
    report, _output = verify(workdir, inventory, '-e', 'kubeports_verify_fail_on_mismatch=false')
    return dict(cluster, limited_new=limited, plan=plan, report=report, new_state=new_state)


@pytest.fixture(scope='module')
def updated(lab, added):
    """The command the --limit node5 run printed, run exactly as printed; then verify."""
    (_hosts, _members, command), = peer_messages(added['limited_new'])
    before = dict((host, state(lab, host)) for host in OLD)
    output = run(added['workdir'], shlex.split(command))
    after = dict((host, state(lab, host)) for host in OLD)
    report, _output = verify(added['workdir'], added['inventory'])
    new_ssh_to_every_host(lab, OLD + [NEW])
    return dict(added, command=command, update=output, before=before, after=after, updated_report=report)


@pytest.fixture(scope='module')
def removed(lab, updated):
    """node5 gone from the inventory, open_ports on the whole inventory, then verify."""
    workdir = updated['workdir']
    inventory = write_inventory(lab, workdir, WORKERS)
    output = playbook(workdir, inventory, 'open_ports.yml')
    after = dict((host, state(lab, host)) for host in OLD)
    report, _output = verify(workdir, inventory)
    new_ssh_to_every_host(lab, OLD)
    return dict(updated, removal=output, removed_state=after, removed_report=report)


def test_limited_run_on_kubesprays_shipped_shape(cluster):
    whole, limited = cluster['whole'], cluster['limited']
    assert sorted(recap(whole)) == OLD and peer_messages(whole) == []
    assert re.search(r'\binstaller +kubespray +the host is in groups of kubespray\b', whole), whole[-3000:]
    assert re.search(r'\bcni +\[calico\] +kube_network_plugin\b', whole), whole[-3000:]
    # The limited run plans against the whole inventory (kubespray's k8s_cluster formed for
    # every host), applies to node1 only, and node1 is already right.
    assert 'lacks' not in limited
    assert list(recap(limited)) == ['node1'] and 'changed=0' in recap(limited)['node1'], recap(limited)
    # node1 was applied with this inventory before: no host outside the run lacks it.
    assert peer_messages(limited) == []
    assert 'new to its own peer sets' not in limited


def test_new_node_gets_its_full_rules_from_a_limited_run(lab, added):
    output, plan = added['limited_new'], added['plan']
    assert list(recap(output)) == [NEW] and 'failed=0' in recap(output)[NEW]
    assert sorted(plan['hosts']) == sorted(OLD + [NEW])
    # What node5's firewalld holds is the whole inventory's plan for node5, in both views.
    expected = {'ports': set(), 'trusted': set(), 'rich': set(), 'ipsets': {}}
    for rule in rules_of(plan, NEW):
        if rule['source_set'] is None:
            expected['ports'].add('%s/%s' % (rule['port'], rule['protocol']))
        elif rule['protocol'] == 'all':
            expected['trusted'].update(rule['sources'])
        else:
            name = 'kubeports-' + rule['source_set'].replace('+', '_')
            expected['rich'].add(RICH % (name, rule['port'], rule['protocol']))
            expected['ipsets'][name] = sorted(rule['sources'])
    assert RICH % ('kubeports-cluster', BGP, 'tcp') in expected['rich']
    for view, found in added['new_state']['views'].items():
        assert expected['ports'] <= set(found['ports']), (view, found['ports'])
        assert expected['trusted'] <= set(found['trusted']), (view, found['trusted'])
        assert set(rule for rule in found['rich'] if 'kubeports-' in rule) == expected['rich'], (view, found['rich'])
        # (A set no longer wanted stays in firewalld's runtime, empty, until firewalld next loads
        # its configuration: docs/backends.md.)
        ipsets = dict((name, entries) for name, entries in found['ipsets'].items()
                      if entries or name in expected['ipsets'])
        assert ipsets == expected['ipsets'], (view, found['ipsets'])
        # Its cluster set holds every host of the inventory, not only the hosts of the run.
        assert all(holds(found['ipsets']['kubeports-cluster'], lab.address(host)) for host in OLD + [NEW])
    assert disagreements(lab, added['new_state']) == []
    assert all(holds(added['new_state']['kernel']['kubeports-cluster'], lab.address(host)) for host in OLD + [NEW])


def test_limited_run_names_the_hosts_that_do_not_admit_the_new_node_yet(added):
    messages = peer_messages(added['limited_new'])
    assert len(messages) == 1, messages
    hosts, members, command = messages[0]
    assert (hosts, members) == (OLD, [NEW])
    assert command == 'ansible-playbook kubeports.firewall.open_ports -i %s --limit %s' % (
        added['inventory'], ','.join(OLD))


def test_other_hosts_refuse_the_new_node_until_updated(added):
    """Probed: exactly node5's probes to the other hosts' ports restricted to a peer set fail
    (179/tcp everywhere, etcd's metrics 2381/tcp on the control plane); everything else is right."""
    report, plan = added['report'], added['plan']
    wanted = set(probe_key(p) for p in report['probes']
                 if p['source'] == NEW and p['target'] in OLD and p['expected'] == 'open'
                 and restricted(plan, p['target'], p['protocol'], p['port']))
    assert set(probe_key(p) for p in report['mismatches']) == wanted and wanted
    assert sorted(set(p['target'] for p in report['mismatches'])) == OLD
    assert set((p['target'], p['port']) for p in report['mismatches']) >= set((host, BGP) for host in OLD)
    assert all(p['observed'] in ('filtered', 'closed') for p in report['mismatches'])


def test_printed_command_changes_only_set_members(lab, updated):
    output, before, after = updated['update'], updated['before'], updated['after']
    # The default serial [1, "100%"]: two batches. The updated hosts are not new to their peer
    # sets, so nothing more is asked of node5 (no advice loop).
    assert output.count(PLAN_TASK) == 2, output[-4000:]
    assert peer_messages(output) == [] and 'new to its own peer sets' not in output
    assert sorted(recap(output)) == OLD
    changes = shown(output, CHANGES_TASK)
    assert sorted(changes) == OLD, changes
    address = lab.address(NEW)
    for host in OLD:
        lines = changes[host]['added'] + changes[host]['removed']
        assert lines and all(MEMBER_CHANGE.match(line) for line in lines), (host, changes[host])
        assert not any('reload' in message.lower() for message in changes[host]['messages']), changes[host]
        # Nothing but set members changed, and nothing was reloaded.
        assert after[host]['rules'] == before[host]['rules'], host
        if FIREWALLS[host] == 'firewalld':
            assert after[host]['marker'] == before[host]['marker'], (host, 'firewalld reloaded')
        else:
            assert after[host]['marker'] >= before[host]['marker'] + 20, (host, 'ufw reloaded')
        assert disagreements(lab, before[host]) == [] and disagreements(lab, after[host]) == [], host
        assert sets_holding(before[host], address) == [], host
        assert cluster_set(after[host]) in sets_holding(after[host], address), host
        assert all(holds(after[host]['kernel'][cluster_set(after[host])], lab.address(peer)) for peer in OLD), host


def test_every_host_admits_the_new_node_after_the_update(updated):
    report = updated['updated_report']
    assert report['summary']['probes'] > 0 and report['summary']['mismatches'] == 0, report['summary']
    admitted = set((p['target'], p['port']) for p in report['probes']
                   if p['source'] == NEW and p['observed'] == 'open')
    assert set((host, BGP) for host in OLD) <= admitted
    # The probes the update fixed.
    fixed = set(probe_key(p) for p in updated['report']['mismatches'])
    assert fixed <= set(probe_key(p) for p in report['probes'] if p['result'] == 'ok')


def test_removed_node_leaves_every_peer_set(lab, removed):
    output = removed['removal']
    assert sorted(recap(output)) == OLD and peer_messages(output) == []
    changes = shown(output, CHANGES_TASK)
    address = lab.address(NEW)
    for host in OLD:
        lines = changes[host]['added'] + changes[host]['removed']
        assert lines and all(MEMBER_CHANGE.match(line) for line in lines), (host, changes[host])
        found = removed['removed_state'][host]
        assert disagreements(lab, found) == [], (host, found['members'], found['kernel'])
        assert sets_holding(found, address) == [], (host, found['members'], found['saved'], found['kernel'])
        # The remaining peers stay, in the kernel's sets too.
        assert all(holds(found['kernel'][cluster_set(found)], lab.address(peer)) for peer in OLD), (host, found)
    # node5 (outside the inventory now) is refused on a port of the cluster's peer set everywhere,
    # which the other hosts still admit each other on.
    for host in OLD:
        assert not probe(lab, NEW, host, 'tcp', BGP), host
    report = removed['removed_report']
    assert report['summary']['hosts'] == len(OLD) and report['summary']['mismatches'] == 0, report['summary']
    assert all(NEW not in (p['source'], p['target']) for p in report['probes'])
    admitted = set((p['target'], p['port']) for p in report['probes'] if p['observed'] == 'open')
    assert set((host, BGP) for host in OLD) <= admitted
