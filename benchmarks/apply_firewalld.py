"""Applying a control-plane rule set on a firewalld lab host: kubeports.firewall.port_rules
(one invocation) versus the usual per-item loop of ansible.posix.firewalld, same rules, same
run; then a no-op re-run of each. Writes a Markdown table.

Usage (root, from the repository, after `make install`):
  .venv/bin/python benchmarks/apply_firewalld.py --output benchmarks/apply-firewalld-results.md

It brings up the demo lab (tests/integration/lab/specs/demo.yml) and tears it down. The
rules are those the lookup plans for cp1 of examples/lab-demo; the module applies them on
cp1, the loop applies the same rules on cp3 (both firewalld, both clean). ansible.posix comes
from the `ansible` package on PyPI, unpacked into .build/bench (not a project dependency).
"""

import argparse
import glob
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
BIN = os.path.dirname(sys.executable)
LAB = os.path.join(ROOT, 'tests', 'integration', 'lab', 'kplab')
INVENTORY = os.path.join(ROOT, 'examples', 'lab-demo')
BENCH = os.path.join(ROOT, '.build', 'bench')
ANSIBLE_PACKAGE = 'ansible==11.13.0'

MODULE_PLAY = """
- hosts: cp1
  gather_facts: false
  tasks:
    - name: Apply the rule set in one invocation
      kubeports.firewall.port_rules:
        rules: "{{ bench_rules }}"
"""

LOOP_PLAY = """
- hosts: cp3
  gather_facts: false
  tasks:
    - name: Open ports to everyone, one task item each
      ansible.posix.firewalld:
        port: "{{ item }}"
        permanent: true
        immediate: true
        state: enabled
      loop: "{{ bench_ports }}"
    - name: Restricted rules, one rich rule per source
      ansible.posix.firewalld:
        rich_rule: "{{ item }}"
        permanent: true
        immediate: true
        state: enabled
      loop: "{{ bench_rich_rules }}"
    - name: Trusted networks
      ansible.posix.firewalld:
        source: "{{ item }}"
        zone: trusted
        permanent: true
        immediate: true
        state: enabled
      loop: "{{ bench_trusted }}"
"""


def run(argv, env=None, check=True):
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800, check=False)
    if check and proc.returncode != 0:
        raise SystemExit('%s failed:\n%s%s' % (' '.join(argv[:3]), proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc


def posix_collection():
    """ansible.posix from the ansible package, unpacked once into .build/bench/collections."""
    target = os.path.join(BENCH, 'collections')
    if not os.path.isdir(os.path.join(target, 'ansible_collections', 'ansible', 'posix')):
        os.makedirs(BENCH, exist_ok=True)
        run([os.path.join(BIN, 'pip'), 'download', '--no-deps', '-q', '-d', BENCH, ANSIBLE_PACKAGE])
        wheel = sorted(glob.glob(os.path.join(BENCH, 'ansible-*.whl')))[-1]
        with zipfile.ZipFile(wheel) as archive:
            members = [name for name in archive.namelist() if name.startswith('ansible_collections/ansible/posix/')]
            archive.extractall(target, members)
    return target


def loop_items(rules):
    ports, rich, trusted = [], [], []
    for rule in rules:
        if rule['source_set'] is None:
            ports.append('%s/%s' % (rule['port'], rule['protocol']))
            continue
        for cidr in rule['sources']:
            family = 'ipv6' if ':' in cidr else 'ipv4'
            if rule['protocol'] == 'all':
                trusted.append(cidr)
            elif rule['port']:
                rich.append('rule family="%s" source address="%s" port port="%s" protocol="%s" accept'
                            % (family, cidr, rule['port'], rule['protocol']))
            else:
                rich.append('rule family="%s" source address="%s" protocol value="%s" accept'
                            % (family, cidr, rule['protocol']))
    return ports, rich, trusted


def timed_playbook(play, extra, env):
    with tempfile.TemporaryDirectory() as work:
        playbook, variables = os.path.join(work, 'play.yml'), os.path.join(work, 'vars.json')
        with open(playbook, 'w') as handle:
            handle.write(play)
        with open(variables, 'w') as handle:
            json.dump(extra, handle)
        started = time.perf_counter()
        proc = run([os.path.join(BIN, 'ansible-playbook'), '-i', INVENTORY, playbook, '-e', '@' + variables], env)
        elapsed = time.perf_counter() - started
    recap = [line for line in proc.stdout.splitlines() if ' : ok=' in line]
    # ansible.posix.profile_tasks prints "<task name> ---- 1.23s" per task after the recap.
    tasks = sum(float(line.rsplit(' ', 1)[1].rstrip('s')) for line in proc.stdout.split('PLAY RECAP')[-1].splitlines()
                if line.rstrip().endswith('s') and ' ---' in line)
    return elapsed, recap, tasks


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--output')
    args = parser.parse_args()
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.pathsep.join(
        [os.path.join(ROOT, '.build', 'collections'), posix_collection()]),
        ANSIBLE_HOST_KEY_CHECKING='False', ANSIBLE_CALLBACKS_ENABLED='ansible.posix.profile_tasks',
        PATH=BIN + os.pathsep + os.environ.get('PATH', ''))
    env.pop('ANSIBLE_CONFIG', None)
    run([sys.executable, LAB, 'down'])
    run([sys.executable, LAB, 'up', os.path.join(ROOT, 'tests', 'integration', 'lab', 'specs', 'demo.yml')])
    try:
        plan = run([os.path.join(BIN, 'ansible'), 'localhost', '-i', INVENTORY, '-m', 'ansible.builtin.debug',
                    '-a', "msg={{ lookup('kubeports.firewall.required_ports', 'cp1') | to_json }}"], env)
        rules = json.loads(json.loads(plan.stdout.split('=>', 1)[1])['msg'])
        ports, rich, trusted = loop_items(rules)
        module_first, _recap, module_first_tasks = timed_playbook(MODULE_PLAY, {'bench_rules': rules}, env)
        module_noop, recap, module_noop_tasks = timed_playbook(MODULE_PLAY, {'bench_rules': rules}, env)
        assert 'changed=0' in recap[0], recap
        loop_vars = {'bench_ports': ports, 'bench_rich_rules': rich, 'bench_trusted': trusted}
        loop_first, _recap, loop_first_tasks = timed_playbook(LOOP_PLAY, loop_vars, env)
        loop_noop, recap, loop_noop_tasks = timed_playbook(LOOP_PLAY, loop_vars, env)
        assert 'changed=0' in recap[0], recap
    finally:
        run([sys.executable, LAB, 'down'], check=False)
    items = len(ports) + len(rich) + len(trusted)
    lines = [
        '# Apply benchmark: port_rules versus an ansible.posix.firewalld loop', '',
        'Generated by `benchmarks/apply_firewalld.py` on %s, Python %s; lab hosts are network namespaces '
        'on the same machine (SSH over a veth bridge), firewalld %s with the nftables backend.'
        % (platform.machine(), platform.python_version(), 'from Debian 12'), '',
        'Rule set: the %d rules the lookup plans for cp1 of `examples/lab-demo` (control plane, etcd, '
        'Calico VXLAN, MetalLB, kube-vip, node-exporter, DCE 5 global cluster). The module applies them in '
        'one invocation (ipsets and rich rules); the loop applies the same rules as %d task items '
        '(%d ports, %d rich rules with one source each, %d trusted sources), `permanent` and `immediate`.'
        % (len(rules), items, len(ports), len(rich), len(trusted)), '',
        '| Run | port_rules: playbook (s) | loop: playbook (s) | Ratio | port_rules: task (s) '
        '| loop: tasks (s) | Ratio |',
        '|---|---:|---:|---:|---:|---:|---:|',
        '| First apply (clean host) | %.1f | %.1f | %.1f× | %.2f | %.2f | %.1f× |' % (
            module_first, loop_first, loop_first / module_first, module_first_tasks, loop_first_tasks,
            loop_first_tasks / module_first_tasks),
        '| No-op re-run | %.1f | %.1f | %.1f× | %.2f | %.2f | %.1f× |' % (
            module_noop, loop_noop, loop_noop / module_noop, module_noop_tasks, loop_noop_tasks,
            loop_noop_tasks / module_noop_tasks),
        '',
        'Playbook: the whole `ansible-playbook` run against one host (interpreter start-up and SSH '
        'connection included). Task: the time of the applying task(s) alone, from '
        '`ansible.posix.profile_tasks`.', '',
    ]
    text = '\n'.join(lines)
    print(text)
    if args.output:
        with open(args.output, 'w', encoding='utf-8') as handle:
            handle.write(text)


if __name__ == '__main__':
    main()
