"""The cost of the lock-out guard and the commit-confirmed apply: the open-ports playbook on
the default lab (two firewalld and two ufw hosts in the cluster), first apply on clean hosts
and a no-op re-run, with the guard and the confirmation (the default) and without them
(kubeports_lockout_guard=false, kubeports_confirm_timeout=0: the apply as it was before),
alternating in the same run. Writes a Markdown table.

Usage (root, from the repository, after `make install`):
  .venv/bin/python benchmarks/safe_apply.py --output benchmarks/safe-apply-results.md

It brings up the default lab (tests/integration/lab/specs/default.yml) and tears it down.
Task times come from ansible-core's junit callback.
"""

import argparse
import glob
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from xml.etree import ElementTree

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
BIN = os.path.dirname(sys.executable)
LAB = os.path.join(ROOT, 'tests', 'integration', 'lab', 'kplab')
COLLECTIONS = os.path.join(ROOT, '.build', 'collections')
PLAYBOOK = os.path.join(COLLECTIONS, 'ansible_collections', 'kubeports', 'firewall', 'playbooks', 'open_ports.yml')
CLUSTER = {'all': {'children': {
    'kube_control_plane': {'hosts': {'node1': None, 'node3': None}},
    'etcd': {'hosts': {'node1': None, 'node3': None}},
    'kube_node': {'hosts': {'node4': None, 'node5': None}}},
    'vars': {'kube_network_plugin': 'flannel'}}}
RESET = """
- hosts: node1:node3:node4:node5
  gather_facts: false
  tasks:
    - name: Remove everything the collection opened
      kubeports.firewall.port_rules:
        rules: []
        lockout_guard: false
"""
MODES = {'guard and confirmation': [], 'neither (before)': ['-e', 'kubeports_lockout_guard=false',
                                                            '-e', 'kubeports_confirm_timeout=0']}
APPLY_TASKS = ('Open exactly the planned ports', 'Drop the SSH connection', 'Confirm over a new SSH connection')


def env_for(junit_dir=None):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_HOST_KEY_CHECKING='False',
               PATH=BIN + os.pathsep + os.environ.get('PATH', ''))
    env.pop('ANSIBLE_CONFIG', None)
    if junit_dir:
        env.update(ANSIBLE_CALLBACKS_ENABLED='ansible.builtin.junit', JUNIT_OUTPUT_DIR=junit_dir,
                   JUNIT_TASK_CLASS='yes')
    return env


def run(argv, env=None, cwd=ROOT):
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=900, check=False)
    if proc.returncode != 0:
        raise SystemExit('%s failed:\n%s%s' % (' '.join(argv[:3]), proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc


def task_seconds(junit_dir):
    """Per host, the seconds of the applying tasks (apply, reset, confirm) from junit XML."""
    per_host = {}
    for path in glob.glob(os.path.join(junit_dir, '*.xml')):
        for case in ElementTree.parse(path).getroot().iter('testcase'):
            name = case.get('name', '')
            if any(task in name for task in APPLY_TASKS):
                host = name.split(']', 1)[0].lstrip('[')
                per_host[host] = per_host.get(host, 0.0) + float(case.get('time') or 0)
    return per_host


def play(workdir, inventory, extra):
    junit = tempfile.mkdtemp(dir=workdir)
    started = time.monotonic()
    run([os.path.join(BIN, 'ansible-playbook'), PLAYBOOK, '-i', inventory] + extra, env=env_for(junit), cwd=workdir)
    wall = time.monotonic() - started
    tasks = task_seconds(junit)
    shutil.rmtree(junit)
    return wall, max(tasks.values()) if tasks else 0.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--output', required=True)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='kubeports-bench-')
    run([sys.executable, LAB, 'down'])
    run([sys.executable, LAB, 'up'])
    try:
        inventory = os.path.join(workdir, 'inventory')
        os.mkdir(inventory)
        run([sys.executable, LAB, 'inventory', '-o', os.path.join(inventory, '00-lab.yml')])
        with open(os.path.join(inventory, '10-cluster.yml'), 'w') as handle:
            json.dump(CLUSTER, handle)
        reset = os.path.join(workdir, 'reset.yml')
        with open(reset, 'w') as handle:
            handle.write(RESET)
        results = dict((mode, {'first': [], 'noop': []}) for mode in MODES)
        for _round in range(args.repeats):
            for mode, extra in MODES.items():
                run([os.path.join(BIN, 'ansible-playbook'), reset, '-i', inventory], env=env_for(), cwd=workdir)
                results[mode]['first'].append(play(workdir, inventory, extra))
                results[mode]['noop'].append(play(workdir, inventory, extra))
    finally:
        run([sys.executable, LAB, 'down'])
        shutil.rmtree(workdir, ignore_errors=True)
    safe, before = (results[mode] for mode in MODES)
    lines = ['# Safe apply benchmark: the guard and the confirmation against the apply before them', '',
             'Generated by `benchmarks/safe_apply.py` on %s, Python %s; lab hosts are network namespaces on the '
             'same machine (SSH over a veth bridge), firewalld from Debian 12 and ufw. The open-ports playbook on '
             'four cluster hosts (two firewalld, two ufw) of the default lab, Flannel profile, %d rounds '
             'alternating the two modes; medians.' % (platform.machine(), platform.python_version(), args.repeats),
             '', '| Run | Mode | Playbook (s) | Apply tasks, slowest host (s, junit) |', '|---|---|---:|---:|']
    for run_name, key in (('First apply (clean hosts)', 'first'), ('No-op re-run', 'noop')):
        for mode in MODES:
            walls = [item[0] for item in results[mode][key]]
            tasks = [item[1] for item in results[mode][key]]
            lines.append('| %s | %s | %.1f | %.2f |'
                         % (run_name, mode, statistics.median(walls), statistics.median(tasks)))
    for run_name, key in (('First apply', 'first'), ('No-op', 'noop')):
        ratio = statistics.median(item[0] for item in safe[key]) / statistics.median(item[0] for item in before[key])
        lines.append('')
        lines.append('%s: the playbook with the guard and the confirmation takes %.2f× the time without them.'
                     % (run_name, ratio))
    lines += ['', 'Apply tasks: the applying task, the connection reset and the confirmation (a new SSH '
              'connection, then the confirm module) on the slowest host, as junit times them (from the start '
              'of each task to that host\'s result, so with the canary batch they add up past the playbook). The confirmation costs one new SSH '
              'connection and one small module run per changed host; a no-op run arms nothing and confirms '
              'nothing (the reset stays). The guard reads the firewall\'s zone, services and rules once per '
              'changed host.', '']
    with open(args.output, 'w') as handle:
        handle.write('\n'.join(lines))
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
