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
    number of rules does not grow with the number of nodes. On ufw each peer set is one ipset
    per IP family (C(kubeports-<set>-v4), C(-v6)) matched by rules in a marked block of ufw's
    after rules (O(ufw_peer_sets)); ufw's own rules (open to everyone, trusted networks) carry a
    C(kubeports) comment.
  - Only what the collection created is ever removed (O(prune)); rules opened by hand stay,
    even for the same port.
  - ufw is never reloaded. firewalld cannot create an ipset at runtime, so a new peer set is
    created in the permanent configuration and brought into the runtime by one reload, only
    when that is safe (O(firewalld_reload)). Otherwise it is opened in the runtime with one
    rich rule per source until firewalld next loads its permanent configuration, and
    C(messages) says why. An ipset no longer wanted is deleted from the permanent
    configuration and emptied in the runtime.
  - What the collection is about to create is recorded in O(state_dir) before the firewall is
    touched, so a run killed at any point leaves nothing that O(prune) cannot find. O(state_dir)
    is checked before anything changes.
  - An explicitly chosen O(backend) that is not running while another firewall is active is
    refused.
  - Runs under an exclusive lock per host, so two plays against one host serialize; a change
    awaiting confirmation is settled first (O(confirm_timeout)).
  - Runs as root only (C(become=true)); otherwise it fails before anything, naming C(become=true)
    and the lock C(/run/kubeports-firewall.lock). A firewall command that is not installed, a
    O(state_dir) that cannot be written and a lock another run holds longer than O(lock_timeout)
    fail the task with a message, and nothing is changed.
extends_documentation_fragment:
  - kubeports.firewall.rules
options:
  rules:
    description:
      - The host's rules, as the P(kubeports.firewall.required_ports#lookup) lookup returns them,
        either its list of rules with their C(sources), or, with O(sets), the C(rules) of the host's
        entry in its O(kubeports.firewall.required_ports#lookup:output=plan) form, which name
        their peer set instead.
      - The sources decide who may connect. A rule with C(sources) and a C(source_set) that
        O(sets) lists with other members is an error; a rule without C(sources) takes the
        members of its C(source_set) from O(sets). A restricted rule without C(source_set)
        gets a set named after its members. C(source_set) given with sources of everyone is
        an error.
      - Required with O(state=present) (an empty list removes every rule the collection created);
        empty with O(state=absent).
    type: list
    elements: dict
  state:
    description:
      - V(present) opens exactly O(rules).
      - V(absent) uninstalls - removes every rule, ipset and token the collection created (and
        nothing else), then its records in O(state_dir) and the directory when it is left
        empty. The lock-out guard still applies; there is no commit-confirmed rollback (its
        records are what is removed). firewalld keeps the emptied ipsets in its runtime until it
        next loads its configuration. Check mode and diff show what would go.
    type: str
    choices: [present, absent]
    default: present
  prune:
    description:
      - Remove rules the collection created earlier that are no longer in O(rules).
      - Rules the collection did not create are never removed.
    type: bool
    default: true
  allow_restart:
    description:
      - SuSEfirewall2 flushes every iptables table when it starts. On a host already running
        Kubernetes nothing is written unless this is V(true). A stopped SuSEfirewall2 is left
        stopped; its configuration file is still updated.
    type: bool
    default: false
  confirm_timeout:
    description:
      - Seconds within which a change must be confirmed with M(kubeports.firewall.port_rules_confirm)
        (over a new SSH connection), else the host restores the previous rules by itself; it
        removes what was added and re-adds what was removed, without a reload or a flush.
      - The rollback is armed before anything changes and runs detached on the host, without
        systemd; it survives the controller and the connection dying. V(0) applies without it.
      - A run that finds a change of an earlier run still awaiting confirmation settles it first,
        under the host's lock, after checking its own input. It waits while the module that
        armed it is still applying it, or while the host is rolling it back. A change applied
        completely whose rules, sets and public ports equal this run's is taken over - this
        run returns its token in RV(rollback) (with C(taken_over)), the deadline moves to
        O(confirm_timeout) from now, and this run's confirmation over a new connection confirms
        it (either run's confirmation does; with V(0) it is confirmed at once). Any other is
        rolled back to the rules before it - at once when the module that armed it ended
        before applying it completely (killed) or its timer is gone; otherwise after waiting up
        to O(lock_timeout) for its own run to confirm it. C(messages) and a warning name the
        token and what was done; a confirmation of a settled change answers how it was settled.
    type: int
    default: 0
  firewalld_reload:
    description:
      - Whether a change that creates a firewalld ipset may reload firewalld once, so that the
        runtime uses the ipset (one rich rule per peer set and port, however many peers).
      - V(auto) reloads only when the reload provably loses nothing, checked right before it
        as well. firewalld uses its nftables backend; it is not in panic mode; C(iptables-save),
        C(ip6tables-save) and C(ebtables-save) show no chain or rule (a reload flushes those
        tables on either backend, kube-proxy's and the CNI's chains included); and every zone,
        policy, ipset, the default zone, lockdown and direct rules are the same in the runtime
        as in the permanent configuration, apart from the collection's own pending rules and
        the interfaces the reload binds again. Otherwise, and with V(never), the runtime gets
        one rich rule per source, and C(messages) names what prevented the reload.
      - A rollback (O(confirm_timeout)) never reloads. After a change that reloaded, it restores
        every previous rule; a peer set that only the change created stays in the runtime, empty,
        until firewalld next loads its configuration.
    type: str
    choices: [auto, never]
    default: auto
  ufw_peer_sets:
    description:
      - How ufw matches the sources of a restricted TCP, UDP, ESP or GRE rule.
      - V(ipset) - each peer set is one ipset per IP family (C(kubeports-<set>-v4), C(kubeports-<set>-v6)),
        matched by a few C(-m set) rules in a marked block first in the after-input chain of
        C(/etc/ufw/after.rules) and C(after6.rules), after ufw's own rules, so a deny rule of
        yours still comes first. The number of rules does not grow with the number of peers.
        The rules of the C(ssh) component stay ufw rules per source. Members change by filling a
        temporary set and swapping it in; the running chain gets the block's rules inserted or
        deleted; ufw is never reloaded. The sets are saved to C(/etc/ufw/kubeports.ipsets) and
        restored by a marked block in the C(start) case of C(/etc/ufw/before.init) (made
        executable if it is not, unless it holds commands of its own), which ufw runs before it
        loads its rules, at boot and on every reload. Requires a working C(ipset) command.
      - V(rules) - one ufw rule per source CIDR and group of at most 15 ports, each with a
        C(kubeports:<set>) comment (C(ufw status) lists them).
      - V(auto) - V(ipset) where C(ipset save) works on the host, else V(rules) and C(messages)
        says why and how many rules that made.
      - Switching either way adds the new form before the old one goes. Uninstalling
        (O(state=absent)) removes the block, the sets, the saved sets and the C(before.init) block.
    type: str
    choices: [auto, ipset, rules]
    default: auto
  own_addresses:
    description:
      - The addresses (CIDRs) by which this host's peers know it. With them, RV(new_to_peer_sets)
        says whether this host is new to its own peer sets, that is a peer set that holds one of
        them now did not hold it as last applied here, or nothing was applied here before.
      - The C(kubeports.firewall.open_ports) role gives them on a run limited to some hosts, to
        name the hosts outside the run that do not admit a new host yet.
    type: list
    elements: str
    default: []
  lockout_guard:
    description:
      - Before any change, refuse a change under which a new SSH connection from the client
        this module runs for (SSH_CONNECTION on the host) to the port sshd answered on would be
        refused by the resulting firewall, the collection's rules and the ones already there
        (zone services and targets, ufw's policy and rules, SuSEfirewall2's tokens) counted
        together. Also in check mode.
      - V(false) for a bastion or out-of-band access, where the connection is not the one to keep.
    type: bool
    default: true
  lock_timeout:
    description:
      - Seconds to wait for another run on the same host to finish, its confirmation included
        (O(confirm_timeout)). Then a change of another run whose plan differs is rolled back; one
        that is still being applied or rolled back fails the task, and nothing is changed.
    type: int
    default: 60
attributes:
  check_mode:
    support: full
    description: Reports the same diff a real run would make and changes nothing.
  diff_mode:
    support: full
    description: The rules removed and added, or the configuration file before and after (SuSEfirewall2).
notes:
  - Protocol-only rules (ICMP, IPIP, ESP, GRE) are opened where the backend can express them;
    elsewhere the module fails naming the rule.
'''

EXAMPLES = r'''
- name: Open the planned ports of this host
  kubeports.firewall.port_rules:
    rules: "{{ lookup('kubeports.firewall.required_ports', inventory_hostname) }}"

- name: Open the ports of a rule given by hand, to a peer set given once
  kubeports.firewall.port_rules:
    rules:
      - {protocol: tcp, port: 2379-2380, source_set: etcd_clients}
      - {protocol: tcp, port: 10250, source_set: etcd_clients}
    sets:
      etcd_clients: [10.0.0.11/32, 10.0.0.12/32, 10.0.1.0/28]

- name: Audit drift without changing anything
  kubeports.firewall.port_rules:
    rules: "{{ lookup('kubeports.firewall.required_ports', inventory_hostname) }}"
    backend: firewalld
  check_mode: true
  diff: true
  register: drift
'''

RETURN = r'''
new_to_peer_sets:
  description:
    - Whether one of O(own_addresses) is in a peer set of this run that did not hold it as last
      applied on this host (or nothing was applied here before). So the host joined the cluster,
      or its address changed, since this host was last applied.
  returned: when O(own_addresses) is given and O(state=present)
  type: bool
  sample: true
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
      description: The rules removed, one per line, or the configuration file before (SuSEfirewall2).
      type: str
    after:
      description: The rules added, one per line, or the configuration file after (SuSEfirewall2).
      type: str
rollback:
  description: The armed rollback of a change (with O(confirm_timeout)); confirm it with its C(token).
  returned: when a change was applied, or taken over, with O(confirm_timeout)
  type: dict
  contains:
    token:
      description: Identifies the pending change.
      type: str
    deadline:
      description: Seconds since the epoch after which the host rolls back by itself.
      type: float
    timeout:
      description: The O(confirm_timeout) it was armed with.
      type: int
    taken_over:
      description:
        - V(true) when the change is one an earlier run armed and this run took over (its plan
          is the same); this run's confirmation confirms it.
      type: bool
      returned: when the change was taken over
summary:
  description: Counts of the desired rules and of the changes.
  returned: always
  type: dict
  sample: {"rules": 17, "peer_sets": 4, "added": 3, "removed": 0}
removed_files:
  description: With O(state=absent), the collection's records removed from O(state_dir) (or that would be, in check mode).
  returned: when O(state=absent)
  type: list
  elements: str
messages:
  description: Notes about what the backend did (for example peer sets opened per source in firewalld's runtime).
  returned: always
  type: list
  elements: str
'''

import os
import signal

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubeports.firewall.plugins.module_utils import apply, guard, rollback
from ansible_collections.kubeports.firewall.plugins.module_utils.apply import BACKENDS, apply_rules, command_runner
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import BackendError
from ansible_collections.kubeports.firewall.plugins.module_utils.port_rules_args import argument_spec, invalid_sets
from ansible_collections.kubeports.firewall.plugins.module_utils.privileges import os_error_message, root_required


def settle_notes(module, result, settler):
    """What settling an earlier run's pending change did: in messages, and as a warning."""
    if settler is None:
        return
    for note in settler.notes:
        module.warn(note)
        result['messages'].append(note)
    if settler.rolled_back:
        result['changed'] = True


def pending_note(params):
    """Check mode settles nothing: it names a pending change a real run would settle first."""
    record = rollback.read_json(os.path.join(params['state_dir'], rollback.PENDING))
    if not record:
        return []
    return ['a change of an earlier run (token %s) awaits confirmation; a real run settles it first (see '
            'confirm_timeout)' % record.get('token')]


def uninstall(module, run_command):
    """state=absent: remove every rule the collection created, then its records."""
    params = dict(module.params, prune=True)
    if params['rules']:
        raise BackendError('state=absent removes everything the collection created; give no rules')
    settler = None if module.check_mode else rollback.Settler(params['state_dir'], None, 0)
    applied = apply_rules(run_command, params, [], module.check_mode, connection=guard.ssh_connection(), sets={},
                          settle=settler)
    result = applied.result([])
    settle_notes(module, result, settler)
    if module.check_mode:
        result['messages'].extend(pending_note(params))
    names = [os.path.basename(backend(run_command, params).state_path()) for backend in BACKENDS]
    result['removed_files'] = rollback.forget(params['state_dir'], names, module.check_mode)
    result['changed'] = result['changed'] or bool(result['removed_files'])
    if applied.backend.name == 'firewalld' and applied.change.removed:
        result['messages'].append('firewalld keeps the emptied ipsets in its runtime until it next loads its '
                                  'configuration; they admit nothing')
    return result


def run(module):
    params = module.params
    run_command = command_runner(module)

    if params['state'] == 'absent':
        return uninstall(module, run_command)
    timeout = params['confirm_timeout']
    armed = []
    settler = None if module.check_mode else rollback.Settler(
        params['state_dir'], rollback.plan_of(params['rules'], params['sets'], params['public_ports']), timeout)

    def arm(backend, _change):
        if timeout > 0:
            armed.append(rollback.arm(params, params['rules'], timeout, backend.name, params['sets']))

    previous_sets = rollback.applied_sets(params['state_dir']) if params['own_addresses'] else None
    connection = guard.ssh_connection()
    if not module.check_mode:
        # A dropped connection (its terminal hung up) does not stop a change half-way.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        applied = apply_rules(run_command, params, params['rules'], module.check_mode, before_write=arm,
                              connection=connection, sets=params['sets'], settle=settler)
    except (BackendError, IOError, OSError) as exc:
        message = str(exc) if isinstance(exc, BackendError) else os_error_message(exc, 'apply the change:')
        if armed:
            # Half a change is no state to leave: the previous rules come back now.
            restored = rollback.roll_back(armed[0], reason='the change failed: %s' % message)
            raise BackendError('%s; %s' % (message, restored or 'the previous rules were restored'))
        raise BackendError(message)
    result = applied.result(params['rules'])
    settle_notes(module, result, settler)
    if module.check_mode:
        result['messages'].extend(pending_note(params))
    if params['own_addresses']:
        result['new_to_peer_sets'] = rollback.new_to_peer_sets(previous_sets, params['sets'], params['own_addresses'])
    if armed:
        record = rollback.mark_applied(armed[0], connection[3] if connection else 22)
        result['rollback'] = {'token': record['token'], 'deadline': record['deadline'], 'timeout': timeout}
    elif settler is not None and settler.adopted:
        # The change of an earlier run this run took over: this run's confirmation confirms it.
        record = settler.adopted
        result['rollback'] = {'token': record['token'], 'deadline': record['deadline'], 'timeout': timeout,
                              'taken_over': True}
    elif not module.check_mode:
        rollback.record_applied(params['state_dir'], params['rules'], params['public_ports'], params['sets'])
    return result


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            state=dict(type='str', default='present', choices=['present', 'absent']),
            prune=dict(type='bool', default=True),
            allow_restart=dict(type='bool', default=False),
            lock_timeout=dict(type='int', default=60),
            confirm_timeout=dict(type='int', default=0),
            lockout_guard=dict(type='bool', default=True),
            firewalld_reload=dict(type='str', choices=['auto', 'never'], default='auto'),
            ufw_peer_sets=dict(type='str', choices=['auto', 'ipset', 'rules'], default='auto'),
            own_addresses=dict(type='list', elements='str', default=[]),
        ),
        required_if=[('state', 'present', ['rules'])],
        supports_check_mode=True,
    )
    refused = invalid_sets(module.params['sets'])
    if refused:
        module.fail_json(msg=refused)
    if module.params['confirm_timeout'] < 0:
        module.fail_json(msg='confirm_timeout must be 0 (no confirmation) or a number of seconds, got %d'
                         % module.params['confirm_timeout'])
    refused = root_required('port_rules', 'takes the lock %s, reads and changes the firewall and writes its '
                                          'records in %s' % (apply.LOCK_PATH, module.params['state_dir']))
    if refused:
        module.fail_json(msg=refused)
    try:
        module.exit_json(**run(module))
    except BackendError as exc:
        module.fail_json(msg=str(exc))
    except (IOError, OSError) as exc:
        module.fail_json(msg=os_error_message(exc, 'complete the run:'))


if __name__ == '__main__':
    main()
