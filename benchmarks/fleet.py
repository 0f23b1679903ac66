"""End to end at fleet scale: plan.yml and the open_ports role's planning step through
ansible-playbook, from the installed collection, against a one-task playbook on the same
inventory in the same run, without and with --limit of one host. Also the benchmarks' shared
inventory generator.

The inventories have the shape of kubespray's sample as shipped (inventory.ini with
kube_control_plane, etcd as its children and kube_node; no k8s_cluster group, which kubespray
forms at run time; the installer's own variables in group_vars/all and group_vars/k8s_cluster),
written to a temporary directory. Hosts are never contacted: every measured play runs on the
controller.

Usage: python benchmarks/fleet.py [--sizes 1000 5000 20000] [--output benchmarks/fleet-results.md]
           [--plot benchmarks/fleet.png]
(with ANSIBLE_COLLECTIONS_PATH naming the installed collection, as `make bench` does).
"""

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time

# The installer's own variables (kubespray) and the collection's CIDR variables.
CLUSTER_VARS = {
    'kube_network_plugin': 'calico',
    'calico_network_backend': 'bird',
    'kube_pods_subnet': '10.233.64.0/18',
    'kube_service_addresses': '10.233.0.0/18',
    'metallb_enabled': True,
    'kube_vip_enabled': True,
}
ALL_VARS = {
    'kubeports_api_client_cidrs': ['192.0.2.0/24'],
    'kubeports_admin_cidrs': ['192.0.2.10'],
}
# Settings in the style of kubespray's sample group_vars (its own variable names and values), so
# that every host's variables are as many as under kubespray, with its templated defaults: among
# them a template the planner reads (metallb_speaker_enabled) and templates it never reads.
SAMPLE_CLUSTER_SETTINGS = {
    'kube_config_dir': '/etc/kubernetes', 'kube_script_dir': '{{ bin_dir }}/kubernetes-scripts',
    'kube_manifest_dir': '{{ kube_config_dir }}/manifests', 'kube_cert_dir': '{{ kube_config_dir }}/ssl',
    'kube_token_dir': '{{ kube_config_dir }}/tokens', 'kube_api_anonymous_auth': True,
    'local_release_dir': '/tmp/releases', 'retry_stagger': 5, 'kube_owner': 'kube', 'kube_cert_group': 'kube-cert',
    'kube_log_level': 2, 'credentials_dir': '{{ inventory_dir }}/credentials', 'kube_network_node_prefix': 24,
    'kube_network_node_prefix_ipv6': 120, 'kube_apiserver_port': 6443, 'kube_proxy_mode': 'ipvs',
    'kube_proxy_strict_arp': False, 'kube_proxy_nodeport_addresses': [], 'kube_encrypt_secret_data': False,
    'cluster_name': 'cluster.local', 'ndots': 2, 'dns_mode': 'coredns', 'enable_nodelocaldns': True,
    'enable_nodelocaldns_secondary': False, 'nodelocaldns_ip': '169.254.25.10', 'nodelocaldns_health_port': 9254,
    'nodelocaldns_second_health_port': 9256, 'nodelocaldns_bind_metrics_host_ip': False,
    'nodelocaldns_secondary_skew_seconds': 5, 'enable_coredns_k8s_external': False,
    'coredns_k8s_external_zone': 'k8s_external.local', 'enable_coredns_k8s_endpoint_pod_names': False,
    'resolvconf_mode': 'host_resolvconf', 'deploy_netchecker': False,
    'skydns_server': "{{ kube_service_addresses | ansible.utils.ipaddr('net') | ansible.utils.ipaddr(3) "
                     "| ansible.utils.ipaddr('address') }}",
    'dns_domain': '{{ cluster_name }}', 'container_manager': 'containerd', 'kata_containers_enabled': False,
    'kubeadm_certificate_key': '{{ lookup(\'password\', credentials_dir + \'/kubeadm_certificate_key.creds\') }}',
    'k8s_image_pull_policy': 'IfNotPresent', 'kubernetes_audit': False,
    'default_kubelet_config_dir': '{{ kube_config_dir }}/dynamic_kubelet_dir', 'podsecuritypolicy_enabled': False,
    'volume_cross_zone_attachment': False, 'persistent_volumes_enabled': False, 'event_ttl_duration': '1h0m0s',
    'auto_renew_certificates': False, 'kubeadm_patches_dir': '{{ kube_config_dir }}/patches',
    'remove_anonymous_access': False, 'dashboard_enabled': False, 'helm_enabled': False, 'registry_enabled': False,
    'metrics_server_enabled': False, 'local_path_provisioner_enabled': False, 'local_volume_provisioner_enabled': False,
    'cephfs_provisioner_enabled': False, 'ingress_nginx_enabled': False, 'ingress_alb_enabled': False,
    'cert_manager_enabled': False, 'metallb_speaker_enabled': '{{ metallb_enabled }}', 'metallb_namespace': 'metallb-system',
    'argocd_enabled': False, 'krew_enabled': False, 'kube_vip_arp_enabled': True, 'kube_vip_controlplane_enabled': True,
    'kube_vip_address': '192.0.2.100', 'calico_pool_blocksize': 26, 'calico_cni_name': 'k8s-pod-network',
    'calico_ipip_mode': 'Never', 'calico_vxlan_mode': 'Never', 'calico_iptables_backend': 'Auto',
    'typha_enabled': False, 'calico_datastore': 'kdd', 'calico_felix_prometheusmetricsenabled': False,
}
SAMPLE_ALL_SETTINGS = {
    'bin_dir': '/usr/local/bin', 'loadbalancer_apiserver_port': 6443, 'loadbalancer_apiserver_healthcheck_port': 8081,
    'loadbalancer_apiserver_localhost': True, 'loadbalancer_apiserver_type': 'nginx', 'no_proxy_exclude_workers': False,
    'unsafe_show_logs': False, 'allow_unsupported_distribution_setup': False, 'ntp_enabled': False,
    'ntp_manage_config': False, 'ntp_servers': ['0.pool.ntp.org iburst', '1.pool.ntp.org iburst'],
    'etcd_data_dir': '/var/lib/etcd', 'etcd_deployment_type': 'host', 'containerd_registries_mirrors': [],
}
CONTROL = 3
SEED = 20261201


def addresses(size, layout):
    """Host addresses: consecutive, or random distinct /32s in 10.0.0.0/8 (fixed seed)."""
    if layout == 'sequential':
        return ['10.%d.%d.%d' % (i // 62500 + 1, i // 250 % 250, i % 250 + 1) for i in range(size)]
    generator = random.Random(SEED + size)
    chosen = set()
    while len(chosen) < size:
        chosen.add(generator.randrange(1, 2 ** 24 - 1))
    ordered = sorted(chosen)
    generator.shuffle(ordered)
    return ['10.%d.%d.%d' % (n >> 16, (n >> 8) & 255, n & 255) for n in ordered]


def host_names(size):
    return ['node%05d' % i for i in range(size)]


def inventory(size, layout):
    """(groups, hostvars) as Ansible hands them to the planner once the installer's groups are
    formed (k8s_cluster holds every host)."""
    hosts = host_names(size)
    hostvars = {}
    for host, address in zip(hosts, addresses(size, layout)):
        hostvars[host] = dict(CLUSTER_VARS, **ALL_VARS)
        hostvars[host].update(ansible_host=address, ip=address)
    groups = {'all': hosts, 'ungrouped': [], 'kube_control_plane': hosts[:CONTROL], 'etcd': hosts[:CONTROL],
              'kube_node': hosts[CONTROL:], 'k8s_cluster': hosts}
    return groups, hostvars


def write_inventory(directory, size, layout):
    """An inventory directory in the shape of kubespray's sample as shipped (no k8s_cluster
    group); returns the inventory file."""
    hosts = host_names(size)
    lines = ['[kube_control_plane]']
    for index, (host, address) in enumerate(zip(hosts, addresses(size, layout))):
        if host == hosts[CONTROL]:
            lines += ['', '[etcd:children]', 'kube_control_plane', '', '[kube_node]']
        member = ' etcd_member_name=etcd%d' % (index + 1) if index < CONTROL else ''
        lines.append('%s ansible_host=%s ip=%s%s' % (host, address, address, member))
    lines.append('')
    os.makedirs(os.path.join(directory, 'group_vars', 'k8s_cluster'))
    os.makedirs(os.path.join(directory, 'group_vars', 'all'))
    path = os.path.join(directory, 'inventory.ini')
    with open(path, 'w') as handle:
        handle.write('\n'.join(lines))
    for name, content in (('k8s_cluster/k8s-cluster.yml', SAMPLE_CLUSTER_SETTINGS),
                          ('k8s_cluster/k8s-net-calico.yml', CLUSTER_VARS),
                          ('all/all.yml', SAMPLE_ALL_SETTINGS), ('all/kubeports.yml', ALL_VARS)):
        with open(os.path.join(directory, 'group_vars', name), 'w') as handle:
            json.dump(content, handle)
    return path


def machine_line(script):
    try:
        from ansible.release import __version__ as ansible_version
    except ImportError:
        ansible_version = 'unknown'
    import netaddr
    return ('Generated by `make bench` (`%s`) on %s, %d CPUs, Python %s, ansible-core %s, netaddr %s, %s.'
            % (script, platform.machine(), os.cpu_count() or 0, platform.python_version(), ansible_version,
               netaddr.__version__, platform.platform(terse=True)))


ONE_TASK = '''---
- name: One task on the controller, over the same inventory
  hosts: all
  gather_facts: false
  tasks:
    - name: Say hello once
      ansible.builtin.debug:
        msg: "{{ groups['all'] | length }} hosts"
      run_once: true
'''

HOSTVARS_FLOOR = '''---
- name: Read one variable of every host, once (the least any plan of every host costs)
  hosts: all
  gather_facts: false
  tasks:
    - name: Count the hosts with an address
      ansible.builtin.debug:
        msg: "{{ groups['all'] | map('extract', hostvars, 'ip') | select | list | length }} addressed hosts"
      run_once: true
'''

# The role's planning tasks (roles/open_ports/tasks/plan.yml), as the callback names them.
PLANNING_TASKS = (
    'Plan the rules of the hosts of this batch of the play, in one pass on the controller',
    'Show the resolved profile of each cluster and where each value came from',
)

PLANNING_STEP = '''---
- name: The open_ports role's planning step over every host
  hosts: all
  gather_facts: false
  vars:
    kubeports_hosts_without_role: fail
  tasks:
    - name: Plan
      ansible.builtin.import_role:
        name: kubeports.firewall.open_ports
        tasks_from: plan
'''


# A callback that writes each task's wall time as JSON lines: from its start to the start of the
# next task, so that Ansible's handling of its result (a registered result copied, facts set for
# every host) counts as the task's own; the last task ends at its last result (Ansible's implicit
# end of a role on every host, which announces no task, is left out).
TASK_TIMES = '''
import json, os, time
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'task_times'

    def __init__(self):
        super().__init__()
        self.current = None

    def _close(self, ended):
        if self.current and ended is not None:
            name, started, _last = self.current
            with open(os.environ['TASK_TIMES_FILE'], 'a') as handle:
                handle.write(json.dumps({'task': name, 'seconds': ended - started}) + '\\n')
        self.current = None

    def _result(self, *args, **kwargs):
        if self.current:
            self.current = (self.current[0], self.current[1], time.perf_counter())

    v2_runner_on_ok = v2_runner_on_failed = v2_runner_on_skipped = v2_runner_on_unreachable = _result

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close(time.perf_counter())
        self.current = (task.get_name(), time.perf_counter(), None)

    def v2_playbook_on_stats(self, stats):
        self._close(self.current[2] if self.current else None)
'''

# Runs one command and prints the largest RSS among its processes (KiB): a fresh parent per run.
PEAK = ('import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); '
        'print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)')


def run_playbook(directory, inventory_path, playbook, extra=()):
    """(seconds, peak RSS of the controller in bytes, {task name: seconds}) of one ansible-playbook run."""
    times = os.path.join(directory, 'task-times.jsonl')
    if os.path.exists(times):
        os.unlink(times)
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK='ansible.builtin.default', ANSIBLE_HOST_KEY_CHECKING='False',
               PWD=directory, ANSIBLE_CALLBACK_PLUGINS=os.path.join(directory, 'callback_plugins'),
               ANSIBLE_CALLBACKS_ENABLED='task_times', TASK_TIMES_FILE=times)
    argv = [sys.executable, '-c', PEAK, os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
            '-i', inventory_path, playbook] + list(extra)
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=directory, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=1800, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit('%s failed (rc=%d):\n%s\n%s'
                         % (' '.join(argv[3:]), done.returncode, done.stdout[-3000:], done.stderr[-2000:]))
    tasks = {}
    with open(times) as handle:
        for line in handle:
            item = json.loads(line)
            tasks[item['task']] = tasks.get(item['task'], 0) + item['seconds']
    return seconds, int(done.stderr.strip().splitlines()[-1]) * 1024, tasks


# The former way: a play forming kubespray's groups host by host (group_by), then plan.yml.
FORMER = '''---
- name: Form the groups with group_by, one host at a time
  ansible.builtin.import_playbook: kubeports.firewall.installer_groups

- name: Plan
  ansible.builtin.import_playbook: kubeports.firewall.plan
'''
# Sizes up to which the former way is measured (it is quadratic in hosts).
FORMER_UP_TO = 1000


def measure(size, repeat):
    directory = tempfile.mkdtemp(prefix='kubeports-fleet-')
    try:
        inventory_path = write_inventory(directory, size, 'scattered')
        os.makedirs(os.path.join(directory, 'callback_plugins'))
        with open(os.path.join(directory, 'callback_plugins', 'task_times.py'), 'w') as handle:
            handle.write(TASK_TIMES)
        playbooks = {}
        for name, text in (('one-task', ONE_TASK), ('hostvars floor', HOSTVARS_FLOOR),
                           ('planning-step', PLANNING_STEP), ('former', FORMER)):
            playbooks[name] = os.path.join(directory, name + '.yml')
            with open(playbooks[name], 'w') as handle:
                handle.write(text)
        playbooks['plan.yml'] = 'kubeports.firewall.plan'
        limit = ['--limit', host_names(size)[size // 2]]
        runs = [('one-task', 'one-task', ()), ('hostvars floor', 'hostvars floor', ()),
                ('planning-step', 'planning-step', ()), ('plan.yml', 'plan.yml', ()),
                ('one-task limited', 'one-task', limit), ('planning-step limited', 'planning-step', limit)]
        row = {'size': size}
        timings = dict((name, []) for name, _playbook, _extra in runs)
        for _run in range(repeat):
            # Alternated runs, the best of each: the same machine state for all.
            for name, playbook, extra in runs:
                timings[name].append(run_playbook(directory, inventory_path, playbooks[playbook], extra))
        for name, _playbook, _extra in runs:
            best = min(timings[name], key=lambda timing: timing[0])
            row[name], row[name + ' peak'], row[name + ' tasks'] = best
        for name in ('planning-step', 'planning-step limited'):
            row[name.replace('planning-step', 'planning tasks')] = sum(
                seconds for task, seconds in row[name + ' tasks'].items() if task.endswith(PLANNING_TASKS))
        with open(os.path.join(directory, 'kubeports-reports', 'plan.json')) as handle:
            document = json.load(handle)
        row['plan.json'] = os.path.getsize(os.path.join(directory, 'kubeports-reports', 'plan.json'))
        row['hosts planned'] = len(document['hosts'])
        if row['hosts planned'] != size:
            raise SystemExit('%d hosts planned of %d' % (row['hosts planned'], size))
        if size <= FORMER_UP_TO:
            row['former'] = run_playbook(directory, inventory_path, playbooks['former'])[0]
        return row
    finally:
        shutil.rmtree(directory)


def plot(rows, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    names = ('one-task', 'hostvars floor', 'planning tasks', 'plan.yml')
    figure, axis = plt.subplots(figsize=(7, 4))
    width = 0.2
    for offset, name in enumerate(names):
        axis.bar([index + offset * width for index in range(len(rows))], [row[name] for row in rows], width,
                 label=name)
    axis.set_xticks([index + 1.5 * width for index in range(len(rows))])
    axis.set_xticklabels(['%d hosts' % row['size'] for row in rows])
    axis.set_ylabel('wall time (s)')
    axis.set_title('ansible-playbook on scattered inventories')
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def report(rows, repeat):
    lines = [
        '# End to end at fleet scale', '',
        machine_line('benchmarks/fleet.py'), '',
        'Inventories in the shape of kubespray\'s sample as shipped (`inventory.ini` with',
        '`kube_control_plane`, `etcd` as its children and `kube_node`; no `k8s_cluster` group, which',
        'kubespray forms at run time; about 90 of the installer\'s settings in `group_vars/all` and',
        '`group_vars/k8s_cluster`, templated defaults among them such as',
        '`metallb_speaker_enabled: "{{ metallb_enabled }}"`) with scattered addresses (random /32s in',
        '10.0.0.0/8). The planning',
        'forms `k8s_cluster` for every host itself. Every run is `ansible-playbook` from the installed',
        'collection, default output captured; best of %d runs each, alternated.' % repeat, '',
        '- *one-task*: a play over all hosts with one `debug` task run once (reading the inventory',
        '  and starting a play).',
        '- *hostvars floor*: the same, with the task reading one variable (`ip`) of every host through',
        '  `hostvars`: what reading every host\'s variables costs Ansible, since it builds each host\'s',
        '  variables (group_vars, vars plugins, facts) on access.',
        '- *planning tasks*: the `open_ports` role\'s planning tasks (`tasks_from: plan`: form the',
        '  installer\'s groups, plan the batch against every host, show the profile), from the first',
        '  one\'s start to the last one\'s result, measured by a callback in the same run as',
        '  *planning-step*, the whole playbook.',
        '- *plan.yml*: `ansible-playbook kubeports.firewall.plan` (forms the groups, plans every host,',
        '  shows the first hosts, writes plan.json and plan.md).',
        '- *--limit one host*: the same one-task playbook and planning step with `--limit` of one',
        '  worker: the step plans that host against the whole inventory (every host\'s variables read).',
        '- *former way*: the playbook `kubeports.firewall.installer_groups` (one `group_by` per host,',
        '  each reconciling the whole inventory), then plan.yml; measured once, up to %d hosts.' % FORMER_UP_TO,
        '- ratios: against one-task on the same inventory (with the same limit for the limited step).', '',
        '| Hosts | one-task (s) | hostvars floor (s) | planning tasks (s) | one-task + planning tasks | plan.yml (s) '
        '| plan.yml / one-task | one-task --limit (s) | planning-step --limit (s) | ratio --limit '
        '| former way (s) | peak, planning-step (MB) | peak, plan.yml (MB) | plan.json (MB) |',
        '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for row in rows:
        lines.append('| %d | %.2f | %.2f | %.2f | %.2f× | %.2f | %.2f× | %.2f | %.2f | %.2f× | %s | %.0f | %.0f | %.1f |' % (
            row['size'], row['one-task'], row['hostvars floor'], row['planning tasks'],
            (row['one-task'] + row['planning tasks']) / row['one-task'], row['plan.yml'],
            row['plan.yml'] / row['one-task'], row['one-task limited'], row['planning-step limited'],
            row['planning-step limited'] / row['one-task limited'],
            ('%.1f' % row['former']) if 'former' in row else '-',
            row['planning-step peak'] / 1e6, row['plan.yml peak'] / 1e6, row['plan.json'] / 1e6))
    lines += ['', '![Wall time per playbook](fleet.png)', '']
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--sizes', type=int, nargs='+', default=[1000, 5000, 20000])
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--output')
    parser.add_argument('--plot')
    args = parser.parse_args()
    rows = [measure(size, args.repeat) for size in args.sizes]
    text = report(rows, args.repeat)
    print(text)
    if args.output:
        with open(args.output, 'w', encoding='utf-8') as handle:
            handle.write(text)
    if args.plot:
        plot(rows, args.plot)


if __name__ == '__main__':
    main()
