"""The audit playbook against a no-op open-ports check run (--check, nothing to change) on lab
clusters of 10 and 20 hosts, best of three each, alternated in the same run. Writes a
Markdown table.

Usage (root, from the repository, after `make install`):
  .venv/bin/python benchmarks/audit.py --output benchmarks/audit-results.md

Each lab (tests/integration/lab/kplab, hosts alternating firewalld and ufw) is brought up,
opened with the open-ports playbook, measured, and torn down.
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleet  # noqa: E402  (machine_line)
from verify import BIN, LAB, PLAYBOOKS, cluster, run  # noqa: E402

SIZES = (10, 20)
REPEAT = 3


def timed(work, playbook, *extra):
    started = time.monotonic()
    run([os.path.join(BIN, 'ansible-playbook'), os.path.join(PLAYBOOKS, playbook), '-i',
         os.path.join(work, 'inventory')] + list(extra), cwd=work)
    return time.monotonic() - started


def lab_size(size):
    names = ['n%02d' % index for index in range(1, size + 1)]
    with tempfile.TemporaryDirectory() as work:
        spec = os.path.join(work, 'spec.yml')
        with open(spec, 'w') as handle:
            handle.write('hosts:\n' + ''.join('  - {name: %s, firewall: %s}\n'
                                              % (name, 'firewalld' if index % 2 else 'ufw')
                                              for index, name in enumerate(names)))
        inventory = os.path.join(work, 'inventory')
        os.mkdir(inventory)
        run([sys.executable, LAB, 'up', spec])
        try:
            run([sys.executable, LAB, 'inventory', '-o', os.path.join(inventory, '00-lab.yml')])
            with open(os.path.join(inventory, '10-cluster.yml'), 'w') as handle:
                json.dump(cluster(names), handle)
            forks = ['-f', str(size)]
            timed(work, 'open-ports.yml', *forks)
            check, audit = [], []
            for _run in range(REPEAT):
                check.append(timed(work, 'open-ports.yml', '--check', *forks))
                audit.append(timed(work, 'audit.yml', '-e', 'kubeports_audit_report_dir=' + os.path.join(work, 'reports'),
                                   *forks))
            with open(os.path.join(work, 'reports', 'audit.json')) as handle:
                report = json.load(handle)
        finally:
            run([sys.executable, LAB, 'down'], check=False)
    summary = report['summary']
    found = ['%d %s' % (summary[name], name) for name in ('missing', 'extra', 'over_exposed', 'foreign') if summary[name]]
    kinds = sorted(set('%s: %s' % (category, entry['description']) for findings in report['hosts'].values()
                       for category, entries in findings.items() if category != 'foreign' for entry in entries))
    return {'hosts': size, 'check': min(check), 'audit': min(audit), 'clean': summary['clean_hosts'],
            'findings': ', '.join(found) or 'none', 'kinds': kinds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--output', required=True)
    args = parser.parse_args()
    rows = [lab_size(size) for size in SIZES]
    out = ['# Audit against a no-op open-ports check run', '', fleet.machine_line('benchmarks/audit.py'), '',
           'Lab hosts are network namespaces on one machine (SSH over a veth bridge), alternating firewalld '
           'and ufw; Flannel cluster, IPv4; `-f` = hosts. After one open-ports run, each lab alternates '
           '`open-ports.yml --check` (nothing to change) and `audit.yml` %d times; the best of each is shown.'
           % REPEAT, '',
           '| Hosts | open-ports --check (s) | audit (s) | ratio | clean hosts | findings |',
           '|---:|---:|---:|---:|---:|---|']
    for row in rows:
        ratio = row['audit'] / row['check']
        cells = (row['hosts'], row['check'], row['audit'], ratio, row['clean'], row['findings'])
        out.append('| %d | %.1f | %.1f | %.2f× | %d | %s |' % cells)
    out += ['', 'The profile allows SSH from one admin address, while each lab host\'s own firewall setup allows '
            'SSH from anyone, which the audit reports. The findings (foreign ones apart):', '']
    out += ['- %s' % kind for kind in sorted(set(kind for row in rows for kind in row['kinds']))]
    text = '\n'.join(out) + '\n'
    print(text)
    with open(args.output, 'w', encoding='utf-8') as handle:
        handle.write(text)


if __name__ == '__main__':
    main()
