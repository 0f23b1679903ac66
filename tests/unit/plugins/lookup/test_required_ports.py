"""The lookup and the plan playbook, run by ansible-core against the installed collection."""

import json
import os
import re
import subprocess
import sys

import netaddr
import pytest

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_planner import plan_request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))
COLLECTIONS = os.environ.get('KUBEPORTS_COLLECTIONS_PATH', os.path.join(ROOT, '.build', 'collections'))
BIN = os.path.dirname(sys.executable)
EXAMPLES = os.path.join(ROOT, 'examples')

pytestmark = pytest.mark.skipif(
    not os.path.isdir(os.path.join(COLLECTIONS, 'ansible_collections', 'kubeports', 'firewall')),
    reason='collection not installed: run make install')


def run(args):
    # Run outside the checkout so only the installed collection and no ansible.cfg is used.
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
               ANSIBLE_NOCOLOR='1', ANSIBLE_STDOUT_CALLBACK='default',
               ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0',
               PATH=BIN + os.pathsep + os.environ.get('PATH', ''))
    env.pop('ANSIBLE_CONFIG', None)
    return subprocess.run(args, cwd='/', env=env, capture_output=True, text=True, timeout=120, check=False)


def lookup(inventory, expression, extra=()):
    """Evaluate a Jinja expression on localhost with the inventory; returns (rc, value or output)."""
    result = run([os.path.join(BIN, 'ansible'), 'localhost', '-i', inventory, '-m', 'ansible.builtin.debug',
                  '-a', 'msg={{ %s | to_json }}' % expression] + list(extra))
    if result.returncode != 0:
        return result.returncode, result.stdout + result.stderr
    text = result.stdout.split('=>', 1)[1]
    return 0, json.loads(json.loads(text)['msg'])


KUBESPRAY = os.path.join(EXAMPLES, 'kubespray', 'inventory.ini')


def test_lookup_returns_the_rules_of_one_host():
    # The example has only kubespray's variables; the SSH sources come from kubeports_admin_cidrs.
    rc, rules = lookup(KUBESPRAY, "lookup('kubeports.firewall.required_ports', 'node1')",
                       ['-e', '{"kubeports_admin_cidrs": ["203.0.113.5"]}'])
    assert rc == 0, rules
    ports = dict(('%s/%s' % (r['port'], r['protocol']), r) for r in rules)
    assert ports['10250/tcp']['sources'] == ['192.0.2.11/32', '192.0.2.12/31', '192.0.2.21/32']
    assert ports['10250/tcp']['source_set'] == 'controlplane+self'
    assert ports['22/tcp']['sources'] == ['203.0.113.5/32']
    assert '6443/tcp' not in ports
    for rule in rules:
        assert set(rule) >= {'protocol', 'port', 'sources', 'source_set', 'description', 'references'}


def test_query_with_details_plans_every_host_with_a_role():
    rc, plans = lookup(KUBESPRAY, "query('kubeports.firewall.required_ports', details=true)")
    assert rc == 0, plans
    assert [plan['host'] for plan in plans] == ['cp1', 'cp2', 'cp3', 'node1', 'node2', 'node3']
    assert plans[0]['roles'] == ['controlplane', 'etcd']


def test_profile_is_read_from_each_host(tmp_path):
    inventory = tmp_path / 'hosts.yml'
    inventory.write_text(
        'all:\n  children:\n    kube_control_plane:\n      hosts:\n        cp1: {ansible_host: 192.0.2.1}\n'
        '    kube_node:\n      hosts:\n        w1: {ansible_host: 192.0.2.2, kubeports_node_port_range: 1-2}\n'
        '        w2: {ansible_host: 192.0.2.3, kubeports_admin_cidrs: [192.0.2.9]}\n'
        '    k8s_cluster:\n      children: {kube_control_plane: {}, kube_node: {}}\n')
    rc, output = lookup(str(inventory), "query('kubeports.firewall.required_ports', 'w1', 'w2')")
    assert rc != 0 and 'kubeports_node_port_range (host w1): unknown variable (did you mean kubeports_nodeport_range?)' in output
    inventory.write_text(inventory.read_text().replace('kubeports_node_port_range: 1-2', 'kubeports_cni: flannel'))
    rc, output = lookup(str(inventory), "query('kubeports.firewall.required_ports', 'w1', 'w2')")
    # Per-host values that peers do not depend on are read from each host; the CNI must agree.
    assert rc != 0 and ('the hosts of one cluster disagree on cni: [calico] (kubespray default of '
                        'kube_network_plugin) on cp1, w2; [flannel] (kubeports_cni) on w1') in output, output
    inventory.write_text(inventory.read_text().replace('kubeports_cni: flannel', 'kubeports_ssh_port: 2222'))
    rc, rules = lookup(str(inventory), "query('kubeports.firewall.required_ports', 'w1', 'w2')")
    assert rc == 0, rules
    ssh = dict((rule['host'], rule) for rule in rules if rule['ids'] == ['ssh.ansible'])
    assert ssh['w1']['port'] == '2222' and ssh['w1']['source_set'] is None
    assert ssh['w2']['port'] == '22' and ssh['w2']['sources'] == ['192.0.2.9/32']


@pytest.mark.parametrize('extra, message', [
    (['-e', 'kubeports_cni=calcio'], "kubeports_cni (host cp1): unknown cni 'calcio'"),
    (['-e', 'kubeports_distribution=openshift'], "unknown distribution 'openshift'"),
    (['-e', 'kubeports_api_port=70000'], "kubeports_api_port (host cp1): invalid port '70000'"),
    (['-e', 'kubeports_cnii=cilium'], "kubeports_cnii (host cp1): unknown variable (did you mean kubeports_cni?)"),
    (['-e', 'kube_network_plugin=cillium', '-e', 'kubeports_cni='],
     "kube_network_plugin (host cp1): unknown value 'cillium' (choose from"),
    (['-e', '{"kubeports_pod_cidrs": ["10.0.0.1/8"]}'], "'10.0.0.1/8' has host bits set"),
    (['-e', '{"kubeports_role_groups": {"masters": ["kube_control_plane"]}}'],
     "kubeports_role_groups: unknown role 'masters'"),
    (['-e', '{"kubeports_extra_rules": [{"protocol": "tcp", "port": "9-1", "to": ["worker"], "from": ["any"]}]}'],
     'kubeports_extra_rules[0] (host node1): invalid port range'),
])
def test_bad_input_fails_with_one_clear_message(extra, message):
    rc, output = lookup(KUBESPRAY, "lookup('kubeports.firewall.required_ports', 'node1')", extra)
    assert rc != 0
    assert message in output


def test_unknown_host_and_host_without_role():
    rc, output = lookup(KUBESPRAY, "lookup('kubeports.firewall.required_ports', 'node9')")
    assert rc != 0 and 'host node9 is not in the inventory' in output
    rc, output = lookup(KUBESPRAY, "lookup('kubeports.firewall.required_ports', 'localhost')")
    assert rc != 0 and 'host localhost has no role: it is in no group' in output


@pytest.mark.parametrize('example', ['kubespray/inventory.ini', 'kubean/hosts.yml', 'k3s-ansible/inventory.yml',
                                     'rke2-lablabs/inventory.ini', 'rke2-ansible/hosts.yml',
                                     'overrides/kubean-dce5/inventory.yml', 'overrides/rke-rancher/inventory.yml'])
def test_plan_playbook_writes_reports_without_touching_hosts(tmp_path, example):
    playbook = os.path.join(COLLECTIONS, 'ansible_collections', 'kubeports', 'firewall', 'playbooks', 'plan.yml')
    command = [os.path.join(BIN, 'ansible-playbook'), playbook, '-i', os.path.join(EXAMPLES, example),
               '-e', 'kubeports_report_dir=%s' % tmp_path]
    result = run(command)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'PORT' in result.stdout and 'PURPOSE' in result.stdout
    report = json.loads((tmp_path / 'plan.json').read_text())
    plans = list(report['hosts'].values())
    assert plans
    assert report['clusters'][0]['name'] == 'cluster'
    # Every peer set once; rules name theirs, and every name a host uses has its members.
    assert report['sets'] and set(report) == {'clusters', 'sets', 'rule_lists', 'hosts', 'skipped_hosts', 'unplanned', 'addresses'}
    for plan in plans:
        listed = report['rule_lists'][plan['rule_list']]
        assert listed['rules']
        for rule in listed['rules']:
            assert 'sources' in rule or rule['source_set'] in plan['own_sets'] or \
                report['sets'][listed['sets'][rule['source_set']]]
    # The profile one value per line: key, value and origin in columns.
    assert '"Profile: cluster (' in result.stdout
    assert re.search(r'"  distribution +(kubeadm|k3s|rke|rke2) +\S', result.stdout), result.stdout
    markdown = (tmp_path / 'plan.md').read_text()
    assert markdown.startswith('# Planned firewall rules')
    # A section per cluster profile and per rule list, then the hosts and the peer sets.
    assert markdown.count('\n## ') == len(report['clusters']) + len(report['rule_lists']) + 2
    assert all('| %s | ' % plan['host'] in markdown for plan in plans)
    # Only the controller ran tasks, and nothing changed, the first time as the next.
    for output in (result.stdout, run(command).stdout):
        recap = [line.split() for line in output.split('PLAY RECAP')[1].splitlines() if ':' in line]
        assert [(line[0], line[3]) for line in recap] == [('localhost', 'changed=0')], output
        assert not set(plan['host'] for plan in plans) & set(line[0] for line in recap)


def test_plan_playbook_plans_the_hosts_asked_for_against_the_whole_inventory(tmp_path):
    playbook = os.path.join(COLLECTIONS, 'ansible_collections', 'kubeports', 'firewall', 'playbooks', 'plan.yml')
    command = [os.path.join(BIN, 'ansible-playbook'), playbook, '-i', KUBESPRAY, '-e', 'kubeports_report_dir=%s' % tmp_path]
    result = run(command + ['-e', '{"kubeports_plan_hosts": ["node1"]}'])
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / 'plan.json').read_text())
    assert list(report['hosts']) == ['node1']
    # Its peers are every host of the inventory, cp1 (192.0.2.11) too.
    assert any(netaddr.IPAddress('192.0.2.11') in netaddr.IPNetwork(member) for member in report['sets']['cluster'])
    # The play runs on the controller alone: --limit to inventory hosts leaves it nothing to run.
    result = run(command + ['--limit', 'node1'])
    assert result.returncode == 0 and 'skipping: no hosts matched' in result.stdout, result.stdout


def test_lookup_documentation_renders():
    result = run([os.path.join(BIN, 'ansible-doc'), '-t', 'lookup', 'kubeports.firewall.required_ports'])
    assert result.returncode == 0, result.stderr
    assert 'source_set' in result.stdout and 'role_groups' in result.stdout


def test_kubean_hosts_and_vars_conf_as_extra_vars(tmp_path):
    """Kubean runs kubespray with its hosts ConfigMap as inventory and its vars ConfigMap as
    extra vars (-e @group_vars.yml): read the same way."""
    hosts = tmp_path / 'hosts.yml'
    hosts.write_text(
        'all:\n  hosts:\n'
        '    node1: {ip: 10.6.0.1, access_ip: 10.6.0.1, ansible_host: 10.6.0.1}\n'
        '    node2: {ip: 10.6.0.2, access_ip: 10.6.0.2, ansible_host: 10.6.0.2}\n'
        '  children:\n'
        '    kube_control_plane: {hosts: {node1: }}\n'
        '    kube_node: {hosts: {node1: , node2: }}\n'
        '    etcd: {hosts: {node1: }}\n'
        '    k8s_cluster: {children: {kube_control_plane: , kube_node: }}\n'
        '    calico_rr: {hosts: {}}\n')
    conf = tmp_path / 'group_vars.yml'
    conf.write_text('kube_version: "1.35.5"\nkube_network_plugin: cilium\nkube_proxy_mode: iptables\n'
                    'enable_nodelocaldns: false\ncilium_tunnel_mode: geneve\n')
    rc, plan = lookup(str(hosts), "query('kubeports.firewall.required_ports', output='plan')[0]",
                      ['-e', '@' + str(conf)])
    assert rc == 0, plan
    values = plan['clusters'][0]['values']
    assert values['cni'] == {'value': '[cilium]', 'origin': 'kube_network_plugin'}
    assert values['kube_proxy'] == {'value': 'iptables', 'origin': 'kube_proxy_mode'}
    assert values['addons']['value'] == '[]'
    node2 = plan['hosts']['node2']
    ports = set('%s/%s' % (rule['port'], rule['protocol']) for rule in plan['rule_lists'][node2['rule_list']]['rules'])
    assert '6081/udp' in ports and '53/udp' not in ports and '4789/udp' not in ports


def test_the_lookup_plans_as_ansibles_own_hostvars_read_in_process(templated_inventory):
    """Evaluated in a task's template (where Ansible hands lazy values around), the plan is the
    one that Ansible's hostvars give when every value is templated for every host."""
    directory, groups, hostvars = templated_inventory
    rc, document = lookup(os.path.join(directory, 'inventory.ini'),
                          "query('kubeports.firewall.required_ports', output='plan')[0]")
    assert rc == 0, document
    expected = plan_request(groups, hostvars, None, [], [])
    assert json.loads(json.dumps(expected)) == document
    assert set(document['hosts']) == {'cp1', 'w1', 'w2', 'w3'}
