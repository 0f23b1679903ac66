"""Applying on the lab as fleets grow, and against a per-item loop on ufw.

1. ufw: kubeports.firewall.port_rules (one invocation) against a community.general.ufw
   per-item loop, same rules, first apply and no-op re-run (as apply_firewalld.py does for
   ansible.posix.firewalld). The rules are those the lookup plans for cp2 of
   examples/lab-demo; the module applies them on cp2, the loop on registry1 (both ufw).
2. Peers: the rules of a worker (kubelet, VXLAN, node-exporter from the cluster; the API
   from anyone) with 3 to 1,000 scattered peer addresses, on a firewalld and a ufw host (ufw
   with its peer sets as ipsets, the default, and with one ufw rule per source, to 300 peers):
   firewall rule count, apply time, no-op time, and the firewall's memory (firewalld's
   resident memory; ufw has no daemon, so the size of its iptables rules and ipsets).
3. open_ports on 20 and 50 lab hosts (alternating firewalld and ufw), `-f` = hosts: wall
   time of the first apply and of the no-op re-run.

Usage (root, from the repository, after `make install`):
  .venv/bin/python benchmarks/apply_scale.py --output benchmarks/apply-scale-results.md --plot benchmarks/apply-scale.png
Each part brings its lab up and tears it down. community.general comes from the `ansible`
package on PyPI, unpacked into .build/bench (not a project dependency).
"""

import argparse
import glob
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleet  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
BIN = os.path.dirname(sys.executable)
LAB = os.path.join(ROOT, 'tests', 'integration', 'lab', 'kplab')
SPECS = os.path.join(ROOT, 'tests', 'integration', 'lab', 'specs')
DEMO = os.path.join(ROOT, 'examples', 'lab-demo')
BENCH = os.path.join(ROOT, '.build', 'bench')
ANSIBLE_PACKAGE = 'ansible==11.13.0'
PEERS = (3, 30, 300, 1000)
UFW_RULES_PEERS = (3, 30, 300)
FLEETS = (20, 50)
UFW_RULES = 'ufw, one rule per source'

MODULE_PLAY = """
- hosts: "{{ bench_host }}"
  gather_facts: false
  tasks:
    - name: Apply the rule set in one invocation
      kubeports.firewall.port_rules:
        rules: "{{ bench_rules }}"
        backend: "{{ bench_backend }}"
        ufw_peer_sets: "{{ bench_ufw_peer_sets | default('auto') }}"
"""

UFW_LOOP_PLAY = """
- hosts: registry1
  gather_facts: false
  tasks:
    - name: One ufw rule per port and source, one task item each
      community.general.ufw:
        rule: allow
        proto: "{{ item.proto }}"
        port: "{{ item.port | default(omit) }}"
        from_ip: "{{ item.from_ip }}"
      loop: "{{ bench_items }}"
"""


def run(argv, env=None, check=True, timeout=3600):
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise SystemExit('%s failed:\n%s%s' % (' '.join(argv[:4]), proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc


def general_collection():
    """community.general from the ansible package, unpacked once into .build/bench/collections."""
    target = os.path.join(BENCH, 'collections')
    if not os.path.isdir(os.path.join(target, 'ansible_collections', 'community', 'general')):
        os.makedirs(BENCH, exist_ok=True)
        wheels = sorted(glob.glob(os.path.join(BENCH, 'ansible-*.whl')))
        if not wheels:
            run([os.path.join(BIN, 'pip'), 'download', '--no-deps', '-q', '-d', BENCH, ANSIBLE_PACKAGE])
            wheels = sorted(glob.glob(os.path.join(BENCH, 'ansible-*.whl')))
        with zipfile.ZipFile(wheels[-1]) as archive:
            members = [name for name in archive.namelist()
                       if name.startswith('ansible_collections/community/general/')]
            archive.extractall(target, members)
    return target


def environment():
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.pathsep.join(
        [os.path.join(ROOT, '.build', 'collections'), general_collection()]),
        ANSIBLE_HOST_KEY_CHECKING='False', PATH=BIN + os.pathsep + os.environ.get('PATH', ''))
    env.pop('ANSIBLE_CONFIG', None)
    return env


def playbook(play, inventory, extra, env, forks=5):
    """(seconds, recap lines) of one ansible-playbook run."""
    with tempfile.TemporaryDirectory() as work:
        path, variables = os.path.join(work, 'play.yml'), os.path.join(work, 'vars.json')
        with open(path, 'w') as handle:
            handle.write(play)
        with open(variables, 'w') as handle:
            json.dump(extra, handle)
        started = time.perf_counter()
        proc = run([os.path.join(BIN, 'ansible-playbook'), '-i', inventory, path, '-e', '@' + variables,
                    '-f', str(forks)], env)
        return time.perf_counter() - started, [line for line in proc.stdout.splitlines() if ' : ok=' in line]


def lab_up(spec):
    run([sys.executable, LAB, 'down'])
    run([sys.executable, LAB, 'up', spec], timeout=1800)


def lab_exec(host, *argv):
    return run([sys.executable, LAB, 'exec', host, '--'] + list(argv), check=False).stdout


def ufw_items(rules):
    items, skipped = [], []
    for rule in rules:
        protocol = {'all': 'any'}.get(rule['protocol'], rule['protocol'])
        if protocol not in ('tcp', 'udp', 'any', 'esp', 'gre'):
            skipped.append(rule['protocol'])
            continue
        sources = ['any'] if rule['source_set'] is None else rule['sources']
        for cidr in sources:
            item = {'proto': protocol, 'from_ip': cidr}
            if rule['port']:
                item['port'] = rule['port'].replace('-', ':')
            items.append(item)
    return items, skipped


def part_ufw_loop(env):
    lab_up(os.path.join(SPECS, 'demo.yml'))
    try:
        plan = run([os.path.join(BIN, 'ansible'), 'localhost', '-i', DEMO, '-m', 'ansible.builtin.debug',
                    '-a', "msg={{ lookup('kubeports.firewall.required_ports', 'cp2') | to_json }}"], env)
        rules = json.loads(json.loads(plan.stdout.split('=>', 1)[1])['msg'])
        extra = {'bench_rules': rules, 'bench_host': 'cp2', 'bench_backend': 'ufw'}
        first, _recap = playbook(MODULE_PLAY, DEMO, extra, env)
        noop, recap = playbook(MODULE_PLAY, DEMO, extra, env)
        assert 'changed=0' in recap[0], recap
        items, skipped = ufw_items(rules)
        loop_first, _recap = playbook(UFW_LOOP_PLAY, DEMO, {'bench_items': items}, env)
        loop_noop, recap = playbook(UFW_LOOP_PLAY, DEMO, {'bench_items': items}, env)
        assert 'changed=0' in recap[0], recap
    finally:
        run([sys.executable, LAB, 'down'], check=False)
    return {'rules': len(rules), 'items': len(items), 'skipped': skipped, 'first': first, 'noop': noop,
            'loop_first': loop_first, 'loop_noop': loop_noop}


def peer_rules(count):
    generator = random.Random(count)
    peers = sorted(set('10.%d.%d.%d/32' % (generator.randrange(256), generator.randrange(256), generator.randrange(1, 255))
                       for _peer in range(count)))
    while len(peers) < count:
        peers.append('10.255.%d.%d/32' % (len(peers) // 250, len(peers) % 250 + 1))
    restricted = [{'protocol': protocol, 'port': port, 'sources': peers, 'source_set': 'cluster'}
                  for protocol, port in (('tcp', '10250'), ('udp', '4789'), ('tcp', '9100'))]
    return restricted + [{'protocol': 'tcp', 'port': '6443', 'sources': ['0.0.0.0/0', '::/0'], 'source_set': None}]


def firewall_size(host, backend):
    """(rule count, memory in kB): firewalld's rich rules and its resident memory; ufw's own
    rules plus the peer-set rules of its after rules, and the size of its iptables rules and ipsets."""
    if backend == 'firewalld':
        rich = len([line for line in lab_exec(host, 'firewall-cmd', '--list-rich-rules').splitlines() if line])
        pid = lab_exec(host, 'pgrep', '-o', 'firewalld').split()[0]
        status = lab_exec(host, 'cat', '/proc/%s/status' % pid)
        memory = int([line for line in status.splitlines() if line.startswith('VmRSS:')][0].split()[1])
        return rich, memory
    added = [line for line in lab_exec(host, 'ufw', 'show', 'added').splitlines() if line.startswith('ufw ')]
    set_rules = [line for command, chain in (('iptables', 'ufw-after-input'), ('ip6tables', 'ufw6-after-input'))
                 for line in lab_exec(host, command, '-S', chain).splitlines() if '--match-set kubeports-' in line]
    size = sum(len(lab_exec(host, *argv)) for argv in (['iptables-save'], ['ip6tables-save'], ['ipset', 'save']))
    return len(added) + len(set_rules), size // 1024


def part_peers(env):
    with tempfile.TemporaryDirectory() as work:
        spec = os.path.join(work, 'peers.yml')
        with open(spec, 'w') as handle:
            handle.write('hosts:\n  - {name: fw1, firewall: firewalld}\n  - {name: uf1, firewall: ufw}\n')
        lab_up(spec)
        rows = []
        try:
            inventory = os.path.join(work, 'inventory.json')
            with open(inventory, 'w') as handle:
                handle.write(run([sys.executable, LAB, 'inventory', '--format', 'json']).stdout)
            for label, backend, host, counts, mode in (('firewalld', 'firewalld', 'fw1', PEERS, 'auto'),
                                                       ('ufw', 'ufw', 'uf1', PEERS, 'ipset'),
                                                       (UFW_RULES, 'ufw', 'uf1', UFW_RULES_PEERS, 'rules')):
                for count in counts:
                    extra = {'bench_rules': peer_rules(count), 'bench_host': host, 'bench_backend': backend,
                             'bench_ufw_peer_sets': mode}
                    first, _recap = playbook(MODULE_PLAY, inventory, extra, env)
                    noop, recap = playbook(MODULE_PLAY, inventory, extra, env)
                    assert 'changed=0' in recap[0], recap
                    rules, memory = firewall_size(host, backend)
                    rows.append({'backend': label, 'peers': count, 'first': first, 'noop': noop,
                                 'rules': rules, 'memory': memory})
                playbook(MODULE_PLAY, inventory, dict(extra, bench_rules=[]), env)
        finally:
            run([sys.executable, LAB, 'down'], check=False)
    return rows


def part_fleets(env):
    rows = []
    for size in FLEETS:
        with tempfile.TemporaryDirectory() as work:
            spec = os.path.join(work, 'fleet.yml')
            names = ['n%02d' % index for index in range(1, size + 1)]
            with open(spec, 'w') as handle:
                handle.write('hosts:\n' + ''.join('  - {name: %s, firewall: %s}\n'
                                                  % (name, 'firewalld' if index % 2 else 'ufw')
                                                  for index, name in enumerate(names)))
            lab_up(spec)
            try:
                lab_inventory = os.path.join(work, '00-lab.json')
                with open(lab_inventory, 'w') as handle:
                    handle.write(run([sys.executable, LAB, 'inventory', '--format', 'json']).stdout)
                with open(os.path.join(work, '10-cluster.yml'), 'w') as handle:
                    handle.write('all:\n  vars: {kubeports_cni: calico, kubeports_confirm_timeout: 0}\n  children:\n'
                                 '    kube_control_plane: {hosts: {%s: }}\n    etcd: {hosts: {%s: }}\n'
                                 '    kube_node:\n      hosts:\n%s'
                                 % (names[0], names[0], ''.join('        %s:\n' % name for name in names[1:])))
                argv = [os.path.join(BIN, 'ansible-playbook'), '-i', work, 'kubeports.firewall.open_ports',
                        '-f', str(size), '-e', 'kubeports_serial=100%', '-e', 'kubeports_show_plan=false']
                started = time.perf_counter()
                run(argv, env)
                first = time.perf_counter() - started
                started = time.perf_counter()
                proc = run(argv, env)
                noop = time.perf_counter() - started
                assert 'changed=1' not in proc.stdout
            finally:
                run([sys.executable, LAB, 'down'], check=False)
        rows.append({'hosts': size, 'first': first, 'noop': noop})
    return rows


def plot(peers, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for backend in ('firewalld', 'ufw', UFW_RULES):
        mine = [row for row in peers if row['backend'] == backend]
        left.plot([row['peers'] for row in mine], [row['rules'] for row in mine], marker='o', label=backend)
        right.plot([row['peers'] for row in mine], [row['first'] for row in mine], marker='o', label=backend)
    for axis, label in ((left, 'firewall rules'), (right, 'first apply (s)')):
        axis.set_xscale('log')
        axis.set_xlabel('peer addresses')
        axis.set_ylabel(label)
        axis.legend()
    left.set_yscale('log')
    left.set_title('Rule count')
    right.set_title('Apply time (playbook)')
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def report(ufw, peers, fleets):
    lines = [
        '# Applying at scale', '',
        fleet.machine_line('benchmarks/apply_scale.py') + ' Lab hosts are network namespaces on the same machine '
        '(SSH over a veth bridge); Debian 12 firewalld with nftables, ufw with iptables-nft.', '',
        '## ufw: port_rules against a community.general.ufw loop', '',
        'The %d rules the lookup plans for cp2 of `examples/lab-demo`: the module applies them in one invocation '
        'on cp2, the loop applies them as %d task items (one per port and source) on registry1%s.'
        % (ufw['rules'], ufw['items'], ' (%s not expressible with community.general.ufw: left out)'
           % ', '.join(ufw['skipped']) if ufw['skipped'] else ''), '',
        '| Run | port_rules: playbook (s) | loop: playbook (s) | Ratio |',
        '|---|---:|---:|---:|',
        '| First apply (clean host) | %.1f | %.1f | %.1f× |' % (
            ufw['first'], ufw['loop_first'], ufw['loop_first'] / ufw['first']),
        '| No-op re-run | %.1f | %.1f | %.1f× |' % (ufw['noop'], ufw['loop_noop'], ufw['loop_noop'] / ufw['noop']),
        '', '## Rule count, apply time and memory as peers grow', '',
        'A worker\'s rules (10250/tcp, 4789/udp, 9100/tcp from the cluster, 6443/tcp from anyone) with scattered '
        'peer addresses. firewalld: rich rules (one per port, each naming an ipset) and firewalld\'s resident '
        'memory. ufw: its own rules plus the peer-set rules in its after rules (`ufw_peer_sets: ipset`, the '
        'default where ipset is installed: one ipset per family, one rule per protocol and port group), and the '
        'size of its iptables rules and ipsets. "%s" (`ufw_peer_sets: rules`, as without ipset) stops at %d '
        'peers: each rule is one rule of ufw\'s chains, added one at a time by ufw\'s frontend.'
        % (UFW_RULES, UFW_RULES_PEERS[-1]), '',
        '| Backend | Peers | Firewall rules | First apply (s) | No-op (s) | Memory (kB) |',
        '|---|---:|---:|---:|---:|---:|',
    ]
    for row in peers:
        lines.append('| %s | %d | %d | %.1f | %.1f | %d |' % (row['backend'], row['peers'], row['rules'], row['first'],
                                                              row['noop'], row['memory']))
    lines += ['', '![Rule count and apply time as peers grow](apply-scale.png)', '',
              '## open_ports on a lab fleet', '',
              'One control plane and etcd host, the rest workers, firewalld and ufw alternating; '
              '`ansible-playbook kubeports.firewall.open_ports -f HOSTS -e kubeports_serial=100%`, confirmation off.', '',
              '| Hosts | First apply (s) | No-op re-run (s) | No-op per host (s) |', '|---:|---:|---:|---:|']
    for row in fleets:
        lines.append('| %d | %.1f | %.1f | %.2f |' % (row['hosts'], row['first'], row['noop'], row['noop'] / row['hosts']))
    lines.append('')
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--output')
    parser.add_argument('--plot')
    args = parser.parse_args()
    env = environment()
    ufw = part_ufw_loop(env)
    peers = part_peers(env)
    fleets = part_fleets(env)
    text = report(ufw, peers, fleets)
    print(text)
    if args.output:
        with open(args.output, 'w', encoding='utf-8') as handle:
            handle.write(text)
    if args.plot:
        plot(peers, args.plot)


if __name__ == '__main__':
    main()
