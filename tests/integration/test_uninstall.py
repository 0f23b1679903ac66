"""Uninstall (kubeports_state: absent) on the default lab: after open-ports, the firewall is as
it was before the first apply, a foreign rule for a planned port intact; check mode and diff
show what would go and change nothing; a second run changes nothing.
"""

import re

from conftest import cluster_layer, run_playbook

CLUSTER = cluster_layer(['node1', 'node3'], ['node4', 'node5'], ['node2'])
ABSENT = ('-e', 'kubeports_state=absent')
# What the firewall admits and keeps: its permanent and runtime configuration (firewalld's
# runtime ipsets apart: emptied ones stay until firewalld loads its configuration).
STATE = ("firewall-cmd --permanent --list-all-zones 2>/dev/null; firewall-cmd --permanent --get-ipsets 2>/dev/null; "
         "firewall-cmd --list-all-zones 2>/dev/null; ufw status verbose 2>/dev/null; "
         "grep -h '^### tuple' /etc/ufw/user.rules /etc/ufw/user6.rules 2>/dev/null; "
         "cat /etc/sysconfig/SuSEfirewall2 2>/dev/null; ls -A /var/lib/kubeports 2>/dev/null")
MANAGED = ('node1', 'node3', 'node4', 'node5')
# A rule of the operator's for a port the plan opens too (etcd's client port).
FOREIGN = {'firewalld': (['firewall-cmd', '--add-port=2379/tcp'], ['firewall-cmd', '--remove-port=2379/tcp']),
           'ufw': (['ufw', 'allow', 'from', '192.0.2.99', 'to', 'any', 'port', '2379', 'proto', 'tcp'],
                   ['ufw', '--force', 'delete', 'allow', 'from', '192.0.2.99', 'to', 'any', 'port', '2379',
                    'proto', 'tcp'])}


def states(lab):
    return dict((host, lab.exec(host, ['sh', '-c', STATE]).stdout) for host in MANAGED)


def runtime_ipsets(lab, host):
    names = lab.exec(host, ['firewall-cmd', '--get-ipsets']).stdout.split()
    return dict((name, lab.exec(host, ['firewall-cmd', '--ipset=' + name, '--get-entries']).stdout.split())
                for name in names)


def test_uninstall_leaves_the_firewall_as_before_the_first_apply(lab, tmp_path):
    proc = run_playbook(lab, tmp_path, CLUSTER, 'open_ports.yml', *ABSENT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    kinds = dict((host, lab.hostvars[host]['lab_firewall']) for host in MANAGED)
    for host in MANAGED:
        lab.exec(host, FOREIGN[kinds[host]][0], check=True)
    try:
        before = states(lab)
        assert all('kubeports' not in text for text in before.values()), before
        proc = run_playbook(lab, tmp_path, CLUSTER, 'open_ports.yml')
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        applied = states(lab)
        assert all(applied[host] != before[host] for host in MANAGED)

        proc = run_playbook(lab, tmp_path, CLUSTER, 'open_ports.yml', *ABSENT, '--check', '--diff')
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert re.search(r'node1 .* changed=[1-9]', proc.stdout) and '/var/lib/kubeports' in proc.stdout
        assert states(lab) == applied

        proc = run_playbook(lab, tmp_path, CLUSTER, 'open_ports.yml', *ABSENT)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert states(lab) == before
        for host in MANAGED:
            # The lab bind-mounts the directory, so it stays, empty.
            assert lab.exec(host, ['ls', '-A', '/var/lib/kubeports']).stdout == '', host
            if kinds[host] == 'firewalld':
                assert all(entries == [] for name, entries in runtime_ipsets(lab, host).items()
                           if name.startswith('kubeports-')), host

        proc = run_playbook(lab, tmp_path, CLUSTER, 'open_ports.yml', *ABSENT)
        assert proc.returncode == 0 and not re.search(r'changed=[1-9]', proc.stdout), proc.stdout
    finally:
        for host in MANAGED:
            lab.exec(host, FOREIGN[kinds[host]][1])
