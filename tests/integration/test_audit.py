"""The audit playbook on the default lab after open-ports: a converged lab audits clean; drift
injected by hand lands in its category and nothing else does; the firewall state is
byte-identical before and after; kubeports_audit_fail_on gates the play.

node2 has no role and is skipped. SSH is planned to anyone here, as the lab's firewalls
allow it to anyone (their baseline); the firewalls' stock defaults (firewalld's dhcpv6-client
service, ufw's DHCP, mDNS and UPnP accepts) stay foreign.
"""

import json
import os
import subprocess

import pytest

from conftest import BIN, COLLECTIONS, browse, cluster_layer, run_playbook

CLUSTER = cluster_layer(['node1', 'node3'], ['node4', 'node5'], ['node2'])
# The whole firewall state and configuration of a host (packet counters left out).
STATE = ("nft list ruleset 2>/dev/null | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/'; "
         "iptables-save 2>/dev/null | grep -v '^#' | sed -E 's/\\[[0-9]+:[0-9]+\\]//'; "
         "firewall-cmd --list-all-zones 2>/dev/null; ufw status verbose 2>/dev/null; "
         "find /etc/firewalld /etc/ufw /etc/default/ufw /var/lib/kubeports -type f -exec sha1sum {} + 2>/dev/null "
         "| sort; ss -Htlnu | sort")
AUDITED = ('node1', 'node3', 'node4', 'node5')
STOCK_FOREIGN = {'firewalld': 'firewalld service dhcpv6-client', 'ufw': 'ufw before rules: -p udp'}


def audit(lab, workdir, *extra):
    reports = os.path.join(str(workdir), 'reports')
    for name in ('audit.json', 'audit.md', 'audit.html'):
        if os.path.exists(os.path.join(reports, name)):
            os.unlink(os.path.join(reports, name))
    proc = run_playbook(lab, workdir, CLUSTER, 'audit.yml', '-e', 'kubeports_audit_report_dir=' + reports, *extra)
    data = None
    if os.path.exists(os.path.join(reports, 'audit.json')):
        with open(os.path.join(reports, 'audit.json')) as handle:
            data = json.load(handle)
    return proc, data


def states(lab):
    return dict((host, lab.exec(host, ['sh', '-c', STATE]).stdout) for host in lab.hosts)


def findings(report, host):
    return dict((category, sorted((entry['protocol'], entry['port'], entry['severity'])
                                  for entry in entries))
                for category, entries in report['hosts'][host].items())


@pytest.fixture(scope='module')
def converged(lab, tmp_path_factory):
    workdir = tmp_path_factory.mktemp('audit')
    proc = run_playbook(lab, workdir, CLUSTER, 'open-ports.yml')
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    before = states(lab)
    proc, report = audit(lab, workdir)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert states(lab) == before
    return workdir, report


def test_a_converged_lab_audits_clean(converged):
    _workdir, report = converged
    assert sorted(report['hosts']) == list(AUDITED)
    assert report['skipped_hosts'] == ['node2']
    assert report['summary']['clean_hosts'] == 4
    for host in AUDITED:
        found = findings(report, host)
        assert found['missing'] == found['extra'] == found['over_exposed'] == [], (host, found)
        # The firewalls' stock defaults stay foreign: firewalld's dhcpv6-client service, the
        # DHCP, mDNS and UPnP accepts of ufw's before rules.
        stock = STOCK_FOREIGN[report['backends'][host]]
        assert all(entry['description'].startswith(stock) for entry in report['hosts'][host]['foreign']), (host, found)
    workdir = converged[0]
    for name in ('audit.md', 'audit.html'):
        assert os.path.getsize(os.path.join(str(workdir), 'reports', name)) > 0


REMOVE_2379 = """
import shlex, subprocess
for command, chain in (('iptables', 'ufw-after-input'), ('ip6tables', 'ufw6-after-input')):
    for line in subprocess.run([command, '-S', chain], capture_output=True, text=True, check=True).stdout.splitlines():
        words = shlex.split(line)
        if '--dports' not in words or '2379' not in words[words.index('--dports') + 1].split(','):
            continue
        subprocess.run([command, '-D'] + words[1:], check=True)
        ports = [port for port in words[words.index('--dports') + 1].split(',') if port != '2379']
        if ports:
            words[words.index('--dports') + 1] = ','.join(ports)
            subprocess.run([command, '-A'] + words[1:], check=True)
"""
DRIFT = {
    # etcd opened to everyone by a foreign rule, and cockpit in the zone (firewalld).
    'node1': (['sh', '-c', 'firewall-cmd --add-port=2379/tcp && firewall-cmd --add-service=cockpit'],
              {'over_exposed': [('tcp', '2379', 'critical')], 'foreign': [('tcp', '9090', 'info')]}),
    # A planned port removed (ufw): etcd's client port, from the running peer-set rules of both families.
    'node3': (['python3', '-c', REMOVE_2379], {'missing': [('tcp', '2379', 'high')]}),
    # ufw allowing the kubelet from anywhere.
    'node4': (['ufw', 'allow', '10250/tcp'], {'over_exposed': [('tcp', '10250', 'critical')] * 2}),
    # An owned rule the plan no longer wants: a port in the zone and in the ownership record.
    'node5': (['sh', '-c', 'firewall-cmd --add-port=9999/tcp && python3 -c "import json; p=\'/var/lib/kubeports/'
                           'firewalld.json\'; d=json.load(open(p)); d[\'ports\'].append(\'9999/tcp\'); '
                           'json.dump(d, open(p, \'w\'))"'],
              {'extra': [(None, None, 'medium')]}),
}


def test_injected_drift_lands_in_its_category_and_nothing_else(lab, converged):
    workdir, clean = converged
    for host, (command, _expected) in DRIFT.items():
        done = lab.exec(host, command)
        assert done.returncode == 0, (host, done.stdout, done.stderr)
    before = states(lab)
    proc, report = audit(lab, workdir)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert states(lab) == before
    for host in AUDITED:
        baseline, found = findings(clean, host), findings(report, host)
        expected = DRIFT[host][1]
        for category in found:
            added = sorted(set(found[category]) - set(baseline[category])) if category == 'foreign' else \
                found[category]
            assert sorted(set(added)) == sorted(set(expected.get(category, []))), (host, category, found)
    critical = [entry for entry in report['hosts']['node1']['over_exposed'] if entry['severity'] == 'critical']
    assert critical and 'etcd' in critical[0]['description']
    assert 'summary' in report and report['summary']['critical'] >= 2

    check_page_in_a_browser(os.path.join(str(workdir), 'reports', 'audit.html'), report)

    proc, _report = audit(lab, workdir, '-e', '{"kubeports_audit_fail_on": ["over_exposed", "missing"]}')
    assert proc.returncode != 0
    assert 'kubeports_audit_fail_on' in proc.stdout

    # Back to converged: open-ports mends what it owns; the foreign items go by hand.
    for command in (['firewall-cmd', '--remove-port=2379/tcp'], ['firewall-cmd', '--remove-service=cockpit']):
        lab.exec('node1', command, check=True)
    lab.exec('node4', ['ufw', '--force', 'delete', 'allow', '10250/tcp'], check=True)
    proc = run_playbook(lab, workdir, CLUSTER, 'open-ports.yml')
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    proc, report = audit(lab, workdir, '-e', '{"kubeports_audit_fail_on": ["over_exposed", "missing", "extra"]}')
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert report['summary']['clean_hosts'] == 4


def test_a_host_with_its_firewall_stopped(lab, converged):
    workdir = converged[0]
    lab.exec('node3', ['ufw', 'disable'], check=True)
    try:
        proc, report = audit(lab, workdir)
    finally:
        lab.exec('node3', ['ufw', '--force', 'enable'], check=True)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert report['backends']['node3'] == 'none'
    found = report['hosts']['node3']
    assert found['missing'] == [] and found['extra'] == []
    assert found['over_exposed'][0]['severity'] == 'critical'
    assert 'no active firewall' in found['over_exposed'][0]['description']
    for host in ('node1', 'node4', 'node5'):
        assert not any(report['hosts'][host][category] for category in ('missing', 'extra', 'over_exposed')), host


def check_page_in_a_browser(page, report):
    """audit.html in headless Chromium: it loads without script errors and shows the
    injected findings; a screenshot stays with the test output."""
    dom = browse(page, 'audit.png')
    for host, category in (('node1', 'over_exposed'), ('node3', 'missing'), ('node4', 'over_exposed'),
                           ('node1', 'foreign'), ('node5', 'extra')):
        for entry in report['hosts'][host][category]:
            shown = '%s/%s' % (entry['protocol'], entry['port']) if entry['protocol'] else ''
            row = '<td>%s</td><td>%s</td><td>%s</td><td>%s</td>' % (host, category, entry['severity'], shown)
            assert row in dom, (row, dom[-3000:])


MODULE_PLAYBOOK = """
- hosts: "{{ target }}"
  gather_facts: false
  tasks:
    - name: Read the firewall
      kubeports.firewall.port_rules_info:
        rules: "{{ module_args.rules | default(omit) }}"
        sets: "{{ module_args.sets | default(omit) }}"
        backend: "{{ module_args.backend | default(omit) }}"
        public_ports: "{{ module_args.public_ports | default(omit) }}"
      register: result
      ignore_errors: true
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ result | to_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      delegate_to: localhost
"""


def info(lab, workdir, host, args):
    playbook, extra, result_file = (os.path.join(str(workdir), name) for name in ('info.yml', 'info.json', 'result'))
    with open(playbook, 'w') as handle:
        handle.write(MODULE_PLAYBOOK)
    with open(extra, 'w') as handle:
        json.dump({'target': host, 'module_args': args, 'result_file': result_file}, handle)
    if os.path.exists(result_file):
        os.unlink(result_file)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_HOST_KEY_CHECKING='False',
               PATH=str(BIN) + os.pathsep + os.environ.get('PATH', ''))
    env.pop('ANSIBLE_CONFIG', None)
    proc = subprocess.run([str(BIN / 'ansible-playbook'), playbook, '-i', lab.inventory_path, '-e', '@' + extra],
                          capture_output=True, text=True, timeout=180, env=env, cwd=str(workdir), check=False)
    assert os.path.exists(result_file), proc.stdout + proc.stderr
    with open(result_file) as handle:
        return json.load(handle)


@pytest.mark.parametrize('args, message', [
    ({'rules': [{'protocol': 'tcp', 'port': '39501', 'sorces': ['10.0.0.1/32']}]}, 'rules.sorces'),
    ({'rules': [{'protocol': 'tcp', 'port': '70000', 'sources': ['0.0.0.0/0', '::/0']}]}, "invalid port '70000'"),
    ({'rules': [{'protocol': 'tcp', 'port': '39501', 'source_set': 'nope'}], 'sets': {'cluster': ['10.0.0.0/24']}},
     "source_set 'nope' is not among the sets given"),
    ({'rules': [], 'sets': {'cluster': '10.0.0.0/24'}}, 'sets.cluster: expected a list of CIDRs'),
    ({'rules': [], 'backend': 'ufw'}, 'backend ufw was chosen but firewalld is the active firewall'),
    ({'rules': [], 'backend': 'nftables'}, 'value of backend must be one of'),
])
def test_bad_module_input_is_one_clear_error(lab, converged, args, message):
    result = info(lab, converged[0], 'node1', args)
    assert result.get('failed') and message in result['msg'], result


def test_the_module_reads_without_rules_and_changes_nothing(lab, converged):
    before = states(lab)
    result = info(lab, converged[0], 'node1', {})
    assert not result.get('failed') and result['changed'] is False and 'findings' not in result
    assert result['backend'] == 'firewalld'
    assert any(item['owned'] for item in result['exposures'])
    assert ('udp', '546') in set((item['protocol'], item['port']) for item in result['exposures'])
    assert states(lab) == before
