"""Planner at fleet scale: sequential and scattered addresses, 100 to 20,000 hosts.

Each measurement is the first plan of a fresh Python process, after a 10-host warm-up plan,
as in Ansible, where the lookup plans once per run (so peak memory is that size's own too):
the inventory planner (profiles, checks, index) and the plan with every peer set listed once
(output=plan), against the expanded form where every rule carries its sources (output=rules,
what the plan was before). The expanded form's size is counted, not serialized: at 5,000
scattered hosts it is a hundred million entries. Repeated plans in one process would reuse
memory the first one mapped, which makes small inventories look cheaper per host.

Usage: PYTHONPATH=.build/dev python benchmarks/planner.py [--sizes 100 1000 5000 20000]
           [--output benchmarks/planner-results.md] [--plot benchmarks/planner.png]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleet  # noqa: E402  (the benchmarks' inventory generator)

LAYOUTS = ('sequential', 'scattered')
# Fresh processes per size and layout: at least PROCESSES, more (up to MAX_PROCESSES) until
# their plans took MIN_SECONDS together, so that small plans are not one scheduler hiccup.
PROCESSES = 5
MIN_SECONDS = 2.0
MAX_PROCESSES = 20


def measure_one(size, layout):
    """One measurement, in this process: printed as JSON."""
    from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.catalog import default_catalog_dir, load_catalog
    from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_planner import InventoryPlanner

    # A small plan first, so that one-time work (imports, compiled patterns) is not counted per host.
    warm_groups, warm_hostvars = fleet.inventory(10, layout)
    InventoryPlanner(warm_groups, warm_hostvars).plan_document()
    groups, hostvars = fleet.inventory(size, layout)
    started = time.perf_counter()
    components = load_catalog([default_catalog_dir()])
    catalog = time.perf_counter() - started
    started = time.perf_counter()
    planner = InventoryPlanner(groups, hostvars, components=components)
    planner.profiles()
    middle = time.perf_counter()
    document = planner.plan_document()
    ended = time.perf_counter()
    profiles, planning = middle - started, ended - middle
    total = profiles + planning
    started = time.perf_counter()
    text = json.dumps(document)
    serialize = time.perf_counter() - started
    set_entries = sum(len(members) for members in document['sets'].values())
    inline = sum(len(rule.get('sources') or ()) for listed in document['rule_lists'].values()
                 for rule in listed['rules'])
    inline += sum(len(members) for host in document['hosts'].values() for members in host['own_sets'].values())
    rules = sum(len(document['rule_lists'][host['rule_list']]['rules']) for host in document['hosts'].values())
    expanded = sum(len(rule['sources']) for plan in planner.plan() for rule in plan.rules)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({'size': size, 'layout': layout, 'profiles': profiles, 'planning': planning,
                      'total': total, 'catalog': catalog, 'per_host_ms': total / size * 1000,
                      'serialize': serialize,
                      'bytes': len(text), 'rules': rules, 'sets': len(document['sets']),
                      'rule_lists': len(document['rule_lists']),
                      'entries': set_entries + inline, 'expanded_entries': expanded, 'peak': peak}))


def measure_in_fresh_process(size, layout):
    out = subprocess.run([sys.executable, __file__, '--one', str(size), layout], check=True,
                         stdout=subprocess.PIPE, universal_newlines=True, env=os.environ).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(cases):
    """The best process (the least total) of each (size, layout), with how many ran. The cases
    take turns, so that a slow spell of the machine falls on all sizes alike."""
    runs = dict((case, []) for case in cases)
    while True:
        due = [case for case, done in runs.items() if len(done) < PROCESSES or (
            sum(run['total'] for run in done) < MIN_SECONDS and len(done) < MAX_PROCESSES)]
        if not due:
            break
        for case in due:
            runs[case].append(measure_in_fresh_process(*case))
    return [dict(min(runs[case], key=lambda run: run['total']), processes=len(runs[case])) for case in cases]


def plot(rows, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for layout in LAYOUTS:
        mine = [row for row in rows if row['layout'] == layout]
        sizes = [row['size'] for row in mine]
        left.plot(sizes, [row['per_host_ms'] for row in mine], marker='o', label=layout)
        right.plot(sizes, [row['entries'] for row in mine], marker='o', label='%s, sets once' % layout)
        right.plot(sizes, [row['expanded_entries'] for row in mine], marker='x', linestyle='--',
                   label='%s, sources in every rule' % layout)
    left.set_xscale('log')
    left.set_ylim(bottom=0)
    left.set_xlabel('hosts')
    left.set_ylabel('planner cost per host (ms)')
    left.set_title('Cost per host')
    left.legend()
    right.set_xscale('log')
    right.set_yscale('log')
    right.set_xlabel('hosts')
    right.set_ylabel('source entries in the plan')
    right.set_title('Plan size')
    right.legend(fontsize='small')
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def report(rows):
    lines = [
        '# Planner at fleet scale', '',
        fleet.machine_line('benchmarks/planner.py'), '',
        'Inventories: 3 control plane and etcd hosts, the rest workers, kubespray-shaped variables',
        '(Calico, MetalLB, kube-vip, node-exporter, ingress, admin and API client CIDRs).',
        '*Sequential*: consecutive addresses, which merge into a few CIDRs. *Scattered*: random /32s',
        'in 10.0.0.0/8, as real fleets have. Each time is the first plan of a fresh process (after a 10-host',
        'warm-up plan), as the lookup plans once per Ansible run; each row is the best of at least %d such '
        'processes, more until their plans took %.0f s together (at most %d; *processes* says how many), '
        'the sizes taking turns.'
        % (PROCESSES, MIN_SECONDS, MAX_PROCESSES), '',
        '*Catalog* reads the catalog, once per run whatever the size; *profiles* indexes the inventory,',
        'resolves and checks every host\'s profile; *planning* plans every host and lists each peer set',
        'and each distinct rule list once. *Per host* is profiles and planning divided by the hosts. *Entries*',
        'counts the source CIDRs in that plan; *expanded* counts them',
        'in the form where every rule carries its sources (the obvious alternative, and the plan\'s',
        'form before).', '',
        '| Layout | Hosts | Processes | Catalog (s) | Profiles (s) | Planning (s) | Per host (ms) | Peak memory (MB) '
        '| Rules | Sets | Rule lists | Entries | Expanded entries | Expanded / sets once | JSON (MB) |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for row in rows:
        lines.append('| %s | %d | %d | %.2f | %.2f | %.2f | %.3f | %.0f | %d | %d | %d | %d | %d | %.0f× | %.2f |' % (
            row['layout'], row['size'], row['processes'], row['catalog'], row['profiles'], row['planning'], row['per_host_ms'],
            row['peak'] / 1e6, row['rules'], row['sets'], row['rule_lists'], row['entries'], row['expanded_entries'],
            row['expanded_entries'] / max(1, row['entries']), row['bytes'] / 1e6))
    lines.append('')
    for layout in LAYOUTS:
        mine = [row for row in rows if row['layout'] == layout]
        if len(mine) > 1:
            costs = [row['per_host_ms'] for row in mine]
            lines.append('- %s: cost per host from %d to %d hosts varies by %.2f× (highest / lowest).'
                         % (layout, mine[0]['size'], mine[-1]['size'], max(costs) / min(costs)))
    lines += ['', '![Planner cost per host and plan size](planner.png)', '']
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--sizes', type=int, nargs='+', default=[100, 1000, 5000, 20000])
    parser.add_argument('--output')
    parser.add_argument('--plot')
    parser.add_argument('--one', nargs=2, metavar=('SIZE', 'LAYOUT'))
    args = parser.parse_args()
    if args.one:
        measure_one(int(args.one[0]), args.one[1])
        return
    rows = measure([(size, layout) for layout in LAYOUTS for size in args.sizes])
    text = report(rows)
    print(text)
    if args.output:
        with open(args.output, 'w', encoding='utf-8') as handle:
            handle.write(text)
    if args.plot:
        plot(rows, args.plot)


if __name__ == '__main__':
    main()
