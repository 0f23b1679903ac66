"""Plan documents before and after a change to the planner: runs ``ansible-playbook
kubeports.firewall.plan`` from the installed collection on a set of inventories (the
examples, fleet inventories with tidy and scattered addresses, and a mixed one: a host with
its own variables and overrides, hosts outside the cluster with other CNI variables, a route
reflector group, templated group_vars and host variables, an IPv6 address) and copies each
plan.json and plan.md into a directory. Compare two such directories with ``diff -r``.

Usage: python benchmarks/planner_equality.py OUTPUT_DIR
(with ANSIBLE_COLLECTIONS_PATH naming the installed collection, as `make bench` does).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleet  # noqa: E402 pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write(path, data):
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path))
    with open(path, 'w') as handle:
        handle.write(data if isinstance(data, str) else json.dumps(data))


def mixed(directory, size, cni_vars):
    """A fleet inventory with per-host variables, other profiles outside the cluster and templates."""
    path = fleet.write_inventory(directory, size, 'scattered')
    with open(path) as handle:
        text = handle.read()
    lines = ['', '[calico_rr]', 'node00010', 'node00011', '',
             '[registry]', 'reg1 ansible_host=198.51.100.7', 'reg2 ip=198.51.100.8', '',
             '[bootstrap]', 'seed1 ansible_host=198.51.100.9', '']
    write(path, text + '\n'.join(lines))
    # Templated group_vars: the same raw value for every host, rendered per host.
    write(os.path.join(directory, 'group_vars', 'all', 'nets.yml'), {
        'pods_net': '10.233.64.0/18',
        'kube_pods_subnet': '{{ pods_net }}',
        'kubeports_workload_client_cidrs': ['{{ pods_net | replace("64.0/18", "0.0/16") }}', '203.0.113.0/24'],
        'kubeports_peer_cidrs': {'api_clients': ['198.51.100.0/24']},
        'kube_vip_metrics_enabled': '{{ inventory_hostname == "node00002" }}',
    })
    write(os.path.join(directory, 'group_vars', 'k8s_cluster', 'cni.yml'), cni_vars)
    # Hosts outside the cluster with other variables.
    write(os.path.join(directory, 'group_vars', 'registry.yml'), {
        'kubeports_cni': 'none', 'kubeports_addons': ['harbor'], 'ansible_port': 2200})
    write(os.path.join(directory, 'host_vars', 'seed1.yml'),
          {'kubeports_installer': 'none', 'kubeports_admin_cidrs': ['192.0.2.99']})
    # A host with its own overrides and extra rules; a host with an IPv6 address too.
    write(os.path.join(directory, 'host_vars', 'node00004.yml'), {
        'ansible_port': 2222,
        'kubeports_admin_cidrs': ['192.0.2.10', '192.0.2.11'],
        'kubeports_extra_rules': [{'protocol': 'tcp', 'port': 9100, 'to': ['worker'], 'from': 'cluster',
                                   'description': 'node exporter', 'reference': 'https://kubernetes.io/ne'}],
        'kubeports_drop_rules': ['tcp/30000-32767'],
    })
    write(os.path.join(directory, 'host_vars', 'node00006.yml'), {'ip6': 'fd00::6'})
    write(os.path.join(directory, 'host_vars', 'node00007.yml'), {'kubeports_address': '{{ ansible_host }}'})
    return path


def inventories(directory):
    found = []
    for name in sorted(os.listdir(os.path.join(ROOT, 'examples'))):
        source = os.path.join(ROOT, 'examples', name)
        entries = [entry for entry in os.listdir(source) if entry.startswith('inventory')]
        if entries:
            shutil.copytree(source, os.path.join(directory, name))
            found.append((name, os.path.join(directory, name, entries[0])))
    for name, size, layout in (('tidy-7', 7, 'sequential'), ('scattered-300', 300, 'scattered'),
                               ('tidy-1000', 1000, 'sequential'), ('scattered-1000', 1000, 'scattered')):
        found.append((name, fleet.write_inventory(os.path.join(directory, name), size, layout)))
    found.append(('mixed-calico-320', mixed(os.path.join(directory, 'mixed-calico-320'), 320,
                                            {'calico_network_backend': 'vxlan', 'typha_enabled': True})))
    found.append(('mixed-cilium-9', mixed(os.path.join(directory, 'mixed-cilium-9'), 12,
                                          {'kube_network_plugin': 'cilium', 'cilium_enable_hubble': True,
                                           'cilium_encryption_enabled': True,
                                           'cilium_encryption_type': 'wireguard'})))
    return found


def main():
    output = os.path.abspath(sys.argv[1])
    os.makedirs(output)
    work = tempfile.mkdtemp(prefix='kubeports-equality-')
    try:
        for name, path in inventories(work):
            reports = os.path.join(work, 'reports-' + name)
            done = subprocess.run(
                [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', path,
                 'kubeports.firewall.plan', '-e', 'kubeports_report_dir=%s' % reports],
                cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
            if done.returncode != 0:
                write(os.path.join(output, name, 'failed.txt'), done.stdout[-4000:])
                print('%s: failed (see %s)' % (name, os.path.join(output, name, 'failed.txt')))
                continue
            for report in ('plan.json', 'plan.md'):
                os.makedirs(os.path.join(output, name), exist_ok=True)
                shutil.copy(os.path.join(reports, report), os.path.join(output, name, report))
            print('%s: %d bytes of plan.json' % (name, os.path.getsize(os.path.join(output, name, 'plan.json'))))
    finally:
        shutil.rmtree(work)


if __name__ == '__main__':
    main()
