#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: port_rules_info
author: kubeports maintainers (@kubeports)
version_added: 0.2.0
short_description: Read everything a host's firewall admits and judge it against the host's rules
description:
  - Reads the whole effective state of the active firewall, changing nothing, and lists
    everything it admits as RV(exposures) - the collection's own rules (marked C(owned)),
    every other rule, zone services and targets, default policies, interfaces bound to
    permissive zones.
  - B(firewalld), its runtime - every active zone and the default one, with target, services
    and their ports, ports, protocols and accepting rich rules (ipsets expanded); a zone bound
    to sources admits only them; the trusted zone admits everything.
  - B(ufw) - the default incoming policy, every allowing incoming rule, the accepts of the
    before rules.
  - B(SuSEfirewall2) - C(FW_SERVICES_EXT_*), C(FW_CONFIGURATIONS_EXT) sshd,
    C(FW_SERVICES_ACCEPT_EXT) and C(FW_TRUSTED_NETS) tokens.
  - With no active firewall, every listening socket not bound to loopback is exposed to anyone.
  - With O(rules), RV(findings) sorts them into C(missing) (a planned port not open to all the
    peers that need it), C(extra) (an item the collection owns that the rules no longer want),
    C(over_exposed) (anything not the collection's that lets more sources reach a planned port
    than the rules allow; a must-not-be-public port open to anyone is C(critical)) and
    C(foreign) (everything else that admits traffic beyond the rules, listed, not judged).
    ICMP is not judged.
  - Nothing is written, no listener is started, no lock is taken; the result is the same in
    check mode.
  - Runs as root only (C(become=true)), since without root a firewall reads as inactive or empty, so
    the module fails instead, naming C(become=true).
extends_documentation_fragment:
  - kubeports.firewall.rules
options:
  rules:
    description:
      - The host's planned rules, as M(kubeports.firewall.port_rules) takes them (an empty list
        is a plan with no rule). Without them only RV(exposures) is returned.
attributes:
  check_mode:
    description: Can run in check mode and return the same result.
    support: full
  diff_mode:
    description: Returns no diff; it changes nothing.
    support: none
notes:
  - docs/audit.md describes the audit and the report.
seealso:
  - module: kubeports.firewall.port_rules
'''

EXAMPLES = r'''
- name: Plan the hosts of the play once
  kubeports.firewall.plan_hosts:
    hosts: "{{ ansible_play_hosts }}"
  register: plan
  run_once: true

- name: Judge the firewall against the host's plan
  kubeports.firewall.port_rules_info:
    rules: "{{ view.rules }}"
    sets: "{{ view.sets }}"
  vars:
    view: "{{ plan | kubeports.firewall.host_view(inventory_hostname) }}"
  register: audit
  when: inventory_hostname in plan.hosts

- name: Show what is open to more sources than planned
  ansible.builtin.debug:
    msg: "{{ audit.findings.over_exposed }}"
  when: audit is not skipped
'''

RETURN = r'''
backend:
  description: The firewall read, or V(none) when no firewall is active.
  returned: always
  type: str
  sample: firewalld
exposures:
  description:
    - Everything the firewall admits, one entry per protocol and port (V('') is every port).
    - C(sources) is null for anyone; C(scope) is V(zone) for zone-wide or policy findings.
  returned: always
  type: list
  elements: dict
  sample: [{"protocol": "tcp", "port": "9090", "sources": null, "what": "firewalld service cockpit in zone public",
            "owned": false, "scope": "rule"}]
findings:
  description:
    - The exposures judged against O(rules) - C(missing), C(extra), C(over_exposed), C(foreign),
      each a list of entries with C(protocol), C(port), C(sources), C(description), C(reference)
      and C(severity) (V(critical), V(high), V(medium) or V(info)).
  returned: when O(rules) is given
  type: dict
  sample: {"missing": [], "extra": [], "over_exposed": [], "foreign": []}
messages:
  description: Notes of the backend.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubeports.firewall.plugins.module_utils import apply, audit
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import BackendError, DesiredState
from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.module_utils.port_rules_args import argument_spec, invalid_sets
from ansible_collections.kubeports.firewall.plugins.module_utils.privileges import os_error_message, root_required
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import rule_sources


def run(module):
    params = module.params
    run_command = apply.command_runner(module)

    judged = params['rules'] is not None
    desired = DesiredState.from_rules(params['rules'] or [], params['public_ports'], params['sets'])
    backend = apply.choose_backend(params['backend'], run_command, params, reading=True)
    if backend is None:
        result = {'backend': 'none', 'exposures': audit.listening_exposures(), 'messages': [
            'no active firewall: every listening socket is reachable from anyone']}
        extra = []
    else:
        backend.check_state_dir(writable=False)
        current = backend.read()
        extra = backend.compare(desired, current, prune=True).removed if judged else []
        result = {'backend': backend.name, 'exposures': backend.exposures(current),
                  'messages': list(backend.messages)}
    if judged:
        expanded = [dict(rule, sources=rule_sources(rule, params['sets'], 'rules[%d]' % index))
                    for index, rule in enumerate(params['rules'])]
        result['findings'] = audit.judge(expanded, result['exposures'], extra, params['public_ports'])
    return result


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
    )
    refused = invalid_sets(module.params['sets'])
    if refused:
        module.fail_json(msg=refused)
    # Without root a firewall reads as inactive or empty: a wrong audit, not a failed one.
    refused = root_required('port_rules_info', 'reads the firewall and the records in %s, which only root may read'
                            % module.params['state_dir'])
    if refused:
        module.fail_json(msg=refused)
    try:
        module.exit_json(changed=False, **run(module))
    except (BackendError, PlanError) as exc:
        module.fail_json(msg=str(exc))
    except (IOError, OSError) as exc:
        module.fail_json(msg=os_error_message(exc, 'read the firewall:'))


if __name__ == '__main__':
    main()
