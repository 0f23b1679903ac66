#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: port_rules
author: kubeports maintainers (@kubeports)
version_added: 0.2.0
short_description: Open exactly the given ports, to exactly the given sources, on the host firewall
description:
  - Takes a host's whole rule set (the output of the P(kubeports.firewall.required_ports#lookup)
    lookup for that host) in one invocation, reads the firewall's current state, computes the
    difference, applies it once, re-reads and checks that nothing is missing.
  - Restricted rules are grouped by peer set. On firewalld each peer set is one ipset
    (C(kubeports-<set>), plus C(kubeports-<set>-v6) for IPv6 members) used by rich rules, so the
    number of rules does not grow with the number of nodes. On ufw every rule carries a
    C(kubeports) comment.
  - Only what the collection created is ever removed (O(prune)); rules opened by hand stay,
    even for the same port.
  - No change ever reloads firewalld or ufw (a firewalld reload deletes kube-proxy's and the
    CNI's chains). firewalld cannot create an ipset at runtime: a new peer set is created in
    the permanent configuration, and opened in the runtime with one rich rule per source until
    firewalld next loads its permanent configuration; an ipset no longer wanted is deleted from
    the permanent configuration and emptied in the runtime.
  - What the collection is about to create is recorded in O(state_dir) before the firewall is
    touched, so a run killed at any point leaves nothing that O(prune) cannot find. O(state_dir)
    is checked before anything changes.
  - An explicitly chosen O(backend) that is not running while another firewall is active is
    refused.
  - Runs under an exclusive lock per host, so two plays against one host serialize.
options:
  rules:
    description:
      - The rules, as returned by the P(kubeports.firewall.required_ports#lookup) lookup.
      - Each needs C(protocol), C(port) (empty for protocol-only rules) and C(sources); the
        sources decide who may connect. C(source_set) names the peer set; a rule whose sources
        are restricted but that has no C(source_set) gets a set named after its members, and a
        C(source_set) given with sources of everyone is an error.
    type: list
    elements: dict
    required: true
  backend:
    description:
      - The firewall to manage. V(auto) picks the active one (firewalld, then ufw, then SuSEfirewall2).
    type: str
    choices: [auto, firewalld, ufw, susefirewall2]
    default: auto
  prune:
    description:
      - Remove rules the collection created earlier that are no longer in O(rules).
      - Rules the collection did not create are never removed.
    type: bool
    default: true
  firewalld_zone:
    description: firewalld zone of the rules. Default is firewalld's default zone.
    type: str
  state_dir:
    description: Directory for the record of what the collection created, one file per backend.
    type: path
    default: /var/lib/kubeports
  public_ports:
    description:
      - C(protocol/port) selectors (for example V(tcp/10250)) that may be open to everyone.
      - A rule open to everyone (sources V(0.0.0.0/0) and V(::/0)) that would expose etcd
        (2379-2381), the kubelet (10250, 10255), kube-controller-manager or kube-scheduler (10257,
        10259), an overlay (4789, 8472, 6081/udp, IP-in-IP), BGP 179, Calico Typha 5473 or a
        health port is refused, before anything changes, unless this names that port.
    type: list
    elements: str
    default: []
  allow_restart:
    description:
      - SuSEfirewall2 flushes every iptables table when it starts. On a host already running
        Kubernetes nothing is written unless this is V(true). A stopped SuSEfirewall2 is left
        stopped; its configuration file is still updated.
    type: bool
    default: false
  lock_timeout:
    description: Seconds to wait for another run on the same host to finish.
    type: int
    default: 60
attributes:
  check_mode:
    support: full
    description: Reports the same diff a real run would make and changes nothing.
  diff_mode:
    support: full
    description: C(added) and C(removed) items; C(before) and C(after) for file-based backends.
notes:
  - Protocol-only rules (ICMP, IPIP, ESP, GRE) are opened where the backend can express them;
    elsewhere the module fails naming the rule.
'''

EXAMPLES = r'''
- name: Open the planned ports of this host
  kubeports.firewall.port_rules:
    rules: "{{ lookup('kubeports.firewall.required_ports', inventory_hostname) }}"

- name: Audit drift without changing anything
  kubeports.firewall.port_rules:
    rules: "{{ lookup('kubeports.firewall.required_ports', inventory_hostname) }}"
    backend: firewalld
  check_mode: true
  diff: true
  register: drift
'''

RETURN = r'''
backend:
  description: The firewall that was managed.
  returned: always
  type: str
  sample: firewalld
diff:
  description: What was (or in check mode would be) added and removed.
  returned: always
  type: dict
  contains:
    added:
      description: Items added, one readable line each.
      type: list
      elements: str
    removed:
      description: Items removed, one readable line each.
      type: list
      elements: str
    before:
      description: The configuration file before (file-based backends).
      type: str
    after:
      description: The configuration file after (file-based backends).
      type: str
summary:
  description: Counts of the desired rules and of the changes.
  returned: always
  type: dict
  sample: {"rules": 17, "peer_sets": 4, "added": 3, "removed": 0}
messages:
  description: Notes about what the backend did (for example peer sets opened per source in firewalld's runtime).
  returned: always
  type: list
  elements: str
'''

import errno
import fcntl
import platform
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import (
    BackendError, DesiredState)
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.firewalld import FirewalldBackend
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.susefirewall2 import SuseFirewall2Backend
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.ufw import UfwBackend

BACKENDS = (FirewalldBackend, UfwBackend, SuseFirewall2Backend)
LOCK_PATH = '/run/kubeports-firewall.lock'


def acquire_lock(timeout):
    handle = open(LOCK_PATH, 'w')  # pylint: disable=consider-using-with
    deadline = time.time() + max(0, timeout)
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except (IOError, OSError) as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            if time.time() >= deadline:
                handle.close()
                raise BackendError('another kubeports run holds %s; gave up after %d s (lock_timeout)'
                                   % (LOCK_PATH, timeout))
            time.sleep(0.2)


def choose_backend(name, run_command, options):
    if name == 'auto':
        for backend in BACKENDS:
            if backend.detect(run_command):
                return backend(run_command, options)
        raise BackendError('no active firewall found: looked for a running firewalld, an active ufw and '
                           'a SuSEfirewall2 configuration; choose one with backend')
    for backend in BACKENDS:
        if backend.name == name:
            if not backend.running(run_command):
                active = [other.name for other in BACKENDS if other is not backend and other.running(run_command)]
                if active:
                    raise BackendError('backend %s was chosen but %s is the active firewall on this host; nothing was '
                                       'changed. Choose backend: %s (or auto)' % (name, active[0], active[0]))
            instance = backend(run_command, options)
            instance.check_usable()
            return instance
    raise BackendError('unknown backend %r' % name)


def run(module):
    params = module.params
    desired = DesiredState.from_rules(params['rules'], params['public_ports'])

    def run_command(argv, check=True, data=None):
        rc, out, err = module.run_command(argv, data=data)
        if check and rc != 0:
            raise BackendError('%s failed (rc=%d): %s' % (' '.join(argv), rc, (err or out).strip()))
        return rc, out, err

    lock = acquire_lock(params['lock_timeout'])
    try:
        backend = choose_backend(params['backend'], run_command, params)
        backend.check_state_dir(writable=not module.check_mode)
        current = backend.read()
        change = backend.plan(desired, current, params['prune'])
        if not change.empty and not module.check_mode:
            backend.apply(change)
            backend.verify(desired, backend.read(), params['prune'])
    finally:
        lock.close()
    return {
        'changed': not change.empty,
        'backend': backend.name,
        'diff': change.diff('%s on %s' % (backend.name, platform.node())),
        'summary': {'rules': len(params['rules']), 'peer_sets': len(desired.peer_sets),
                    'added': len(change.added), 'removed': len(change.removed)},
        'messages': list(getattr(backend, 'messages', [])),
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            rules=dict(type='list', elements='dict', required=True),
            backend=dict(type='str', default='auto', choices=['auto', 'firewalld', 'ufw', 'susefirewall2']),
            prune=dict(type='bool', default=True),
            firewalld_zone=dict(type='str'),
            state_dir=dict(type='path', default='/var/lib/kubeports'),
            allow_restart=dict(type='bool', default=False),
            lock_timeout=dict(type='int', default=60),
            public_ports=dict(type='list', elements='str', default=[]),
        ),
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run(module))
    except BackendError as exc:
        module.fail_json(msg=str(exc))


if __name__ == '__main__':
    main()
