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
  - A UDP port held on the target by a kernel tunnel device (a VXLAN or Geneve device, as
    O(tunnels) says) cannot echo a nonce. Such a probe is made with traffic through the
    overlay instead, when this host has a device of the same kind and port; an ICMP echo
    from this host's device address to the target's device address. The kernel encapsulates
    it to the target's node on that port and the target answers the same way, so an answer
    proves the port on the target from this host and on this host from the target (method
    V(overlay)). Without an answer the port counts as V(filtered) when the probe's
    C(expected) is V(open); when it is V(blocked) a plain UDP probe decides.
  - The echo uses an ICMP socket bound to the device (a ping socket where allowed, else a raw
    socket, as root), or the C(ping) command when neither may be opened.
  - Read-only; C(changed) is always false.
options:
  probes:
    description:
      - The probes. Each needs C(address), C(protocol) (V(tcp) or V(udp)) and C(port), and
        may have C(id) (returned with its result), C(source_address), C(source) and C(target)
        (host names, C(target) keys O(tunnels)) and C(expected) (V(open) or V(blocked)). Other
        keys are ignored.
    type: list
    elements: dict
    required: true
  tunnels:
    description:
      - Per target host, its tunnel devices (RV(kubeports.firewall.probe_listeners#module:tunnels)).
        A UDP probe of a port one of them holds goes through this host's own device of that
        port. Empty makes every UDP probe a plain one.
    type: dict
    default: {}
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

- name: Listen on VXLAN's port on node3, naming the kernel's tunnel device if it holds the port
  kubeports.firewall.probe_listeners:
    ports:
      - {protocol: udp, port: 8472}
    addresses: ["{{ ansible_host }}"]
    lifetime: 300
  check_mode: false
  register: listeners
  when: inventory_hostname == 'node3'

- name: Probe VXLAN on node3 through the overlay where the kernel's device holds the port
  kubeports.firewall.probe_ports:
    probes:
      - {id: vxlan, target: node3, expected: open, address: 192.0.2.23, protocol: udp, port: 8472}
    tunnels:
      node3: "{{ hostvars['node3'].listeners.tunnels }}"
  register: probed
  when: inventory_hostname != 'node3'
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
      description: What was seen (connected, refused, no answer, the ICMP error, the echo through the overlay).
      type: str
    method:
      description:
        - V(connect) (TCP), V(echo) (a UDP nonce) or V(overlay) (an ICMP echo through a tunnel device).
      type: str
    silent:
      description: UDP only; true when nothing answered at all (no echo and no ICMP error).
      type: bool
    owner:
      description: The tunnel device holding the target's port (C(kernel vxlan device flannel.1, port 8472)), if any.
      type: str
    via:
      description: This host's tunnel device the echo went through (method V(overlay)).
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

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.module_utils.probe_sockets import probe_all
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import parse_port


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
            port, last = parse_port(probe['port'], where)
        except PlanError as exc:
            raise ValueError(str(exc))
        if port != last:
            raise ValueError('%s: a probe goes to one port, got %r' % (where, probe['port']))
        item = {'id': probe.get('id', index), 'address': str(probe['address']),
                'protocol': probe['protocol'], 'port': port}
        for optional in ('source_address', 'source', 'target'):
            if probe.get(optional):
                item[optional] = str(probe[optional])
        if probe.get('expected') not in (None, ''):
            if probe['expected'] not in ('open', 'blocked'):
                raise ValueError('%s: expected %r is neither open nor blocked' % (where, probe['expected']))
            item['expected'] = probe['expected']
        checked.append(item)
    return checked


def main():
    module = AnsibleModule(
        argument_spec=dict(
            probes=dict(type='list', elements='dict', required=True),
            timeout=dict(type='float', default=1.5),
            concurrency=dict(type='int', default=64),
            udp_attempts=dict(type='int', default=3),
            tunnels=dict(type='dict', default={}),
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
    tunnels = dict((str(host), [item for item in devices if isinstance(item, dict)])
                   for host, devices in (params['tunnels'] or {}).items() if isinstance(devices, list))
    results = probe_all(probes, params['timeout'], params['concurrency'], params['udp_attempts'], tunnels)
    module.exit_json(changed=False, run_id=params['run_id'], results=results, seconds=round(time.monotonic() - started, 3))


if __name__ == '__main__':
    main()
