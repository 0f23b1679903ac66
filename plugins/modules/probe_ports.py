#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: probe_ports
author: kubeports maintainers (@kubeports)
version_added: 0.2.0
short_description: Probe TCP and UDP ports of other hosts from this host, concurrently
description:
  - Runs every probe given in one invocation, at most O(concurrency) at once, each bounded
    by O(timeout).
  - TCP probes connect. UDP probes send a nonce and wait for its echo, which only a
    M(kubeports.firewall.probe_listeners) listener sends; a UDP send alone proves nothing.
  - "Each result is V(open) (connected, or nonce echoed), V(closed) (refused: the host is
    reachable and nothing listens) or V(filtered) (no answer in time, or an ICMP error saying
    the traffic is prohibited or cannot be delivered)."
  - Probes are sent from C(source_address) when it is on this host, so they test what the
    target's firewall sees for this host's inventory address.
  - Read-only; C(changed) is always false.
options:
  probes:
    description:
      - The probes. Each needs C(address), C(protocol) (V(tcp) or V(udp)) and C(port), and
        may have C(id) (returned with its result) and C(source_address). Other keys are ignored.
    type: list
    elements: dict
    required: true
  timeout:
    description: Seconds to wait for one probe's answer.
    type: float
    default: 1.5
  concurrency:
    description: Probes in flight at once.
    type: int
    default: 64
  udp_attempts:
    description: Times a UDP nonce is sent within O(timeout) before the port counts as filtered.
    type: int
    default: 3
  run_id:
    description: An identifier of the verify run, returned as is (RV(run_id)).
    type: str
attributes:
  check_mode:
    support: full
    description: Probes as in a real run; probing changes nothing.
  diff_mode:
    support: none
    description: Nothing is configured, so there is no diff.
seealso:
  - module: kubeports.firewall.probe_listeners
'''

EXAMPLES = r'''
- name: Probe etcd and VXLAN on a peer
  kubeports.firewall.probe_ports:
    probes:
      - {id: etcd, address: 192.0.2.10, protocol: tcp, port: 2379}
      - {id: vxlan, address: 192.0.2.10, protocol: udp, port: 8472, source_address: 192.0.2.11}
    timeout: 1.5
  register: probed
'''

RETURN = r'''
run_id:
  description: The O(run_id) given, or null.
  returned: always
  type: str
results:
  description: One result per probe, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The probe's C(id).
      type: str
    observed:
      description: V(open), V(closed) or V(filtered); V(error) when this host could not send the probe at all.
      type: str
    detail:
      description: What was seen (connected, refused, no answer, the ICMP error).
      type: str
    started:
      description: Unix time at which the probe started (on this host's clock).
      type: float
    seconds:
      description: Time the probe took.
      type: float
seconds:
  description: Wall time of all probes.
  returned: always
  type: float
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubeports.firewall.plugins.module_utils.probe_sockets import probe_all


def validated(probes):
    checked = []
    for index, probe in enumerate(probes):
        where = 'probes[%d]' % index
        missing = [key for key in ('address', 'protocol', 'port') if probe.get(key) in (None, '')]
        if missing:
            raise ValueError('%s: missing %s' % (where, ', '.join(missing)))
        if probe['protocol'] not in ('tcp', 'udp'):
            raise ValueError('%s: protocol %r cannot be probed (tcp or udp)' % (where, probe['protocol']))
        try:
            port = int(probe['port'])
        except (TypeError, ValueError):
            port = 0
        if not 1 <= port <= 65535:
            raise ValueError('%s: invalid port %r (ports are 1-65535)' % (where, probe['port']))
        item = {'id': probe.get('id', index), 'address': str(probe['address']),
                'protocol': probe['protocol'], 'port': port}
        if probe.get('source_address'):
            item['source_address'] = str(probe['source_address'])
        checked.append(item)
    return checked


def main():
    module = AnsibleModule(
        argument_spec=dict(
            probes=dict(type='list', elements='dict', required=True),
            timeout=dict(type='float', default=1.5),
            concurrency=dict(type='int', default=64),
            udp_attempts=dict(type='int', default=3),
            run_id=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params['timeout'] <= 0 or params['concurrency'] < 1 or params['udp_attempts'] < 1:
        module.fail_json(msg='timeout must be above 0, concurrency and udp_attempts at least 1 '
                             '(got %s, %s, %s)' % (params['timeout'], params['concurrency'], params['udp_attempts']))
    try:
        probes = validated(params['probes'])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    started = time.monotonic()
    results = probe_all(probes, params['timeout'], params['concurrency'], params['udp_attempts'])
    module.exit_json(changed=False, run_id=params['run_id'], results=results, seconds=round(time.monotonic() - started, 3))


if __name__ == '__main__':
    main()
