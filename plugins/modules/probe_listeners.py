#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: probe_listeners
author: kubeports maintainers (@kubeports)
version_added: 0.2.0
short_description: Temporary listeners that answer reachability probes
description:
  - With O(state=started), binds every given port on the given addresses and hands the
    sockets to one detached process that accepts and closes TCP connections and echoes the
    nonce of UDP probes sent by M(kubeports.firewall.probe_ports). Other UDP datagrams get
    no answer.
  - Ports something else already holds are reported in RV(in_use) with their owner and left
    alone; they are probed as they are.
  - A UDP port held by a kernel tunnel device (VXLAN, Geneve) is named with that device, and
    the host's tunnel devices are returned in RV(tunnels) (read with C(ip -d -j addr show)),
    so M(kubeports.firewall.probe_ports) can prove the port with traffic through the overlay.
  - The process has a hard lifetime (O(lifetime)) and exits at its deadline even if the play
    or the controller dies. O(state=stopped) ends it at once, so tools that need the ports
    free (such as C(kubeadm) preflight) can run right after.
  - Starting also stops a listener process left by an earlier run on the host.
  - Listeners change nothing that outlives them, so the module reports C(changed=false).
    In check mode it only reports which ports are free and which are in use.
options:
  state:
    description: Start the listeners, or stop the ones this module started on the host.
    type: str
    choices: [started, stopped]
    default: started
  ports:
    description: Ports to listen on. Required with O(state=started).
    type: list
    elements: dict
    suboptions:
      protocol:
        description: Transport protocol.
        type: str
        choices: [tcp, udp]
        required: true
      port:
        description: Port number.
        type: int
        required: true
  addresses:
    description:
      - Addresses to bind, one socket per address and port. An address that is not on the
        host is replaced by the wildcard address of its family.
      - Required with O(state=started).
    type: list
    elements: str
  lifetime:
    description: Seconds after which the listener process exits by itself.
    type: int
    default: 300
  run_dir:
    description: Directory holding the record of the running listener process.
    type: path
    default: /run/kubeports
  run_id:
    description: An identifier of the verify run, returned as is (RV(run_id)).
    type: str
notes:
  - Run it with C(check_mode=false) inside a verify play, since the listeners are temporary.
attributes:
  check_mode:
    support: full
    description: Reports which ports are free and which are in use; starts no listener.
  diff_mode:
    support: none
    description: Nothing is configured, so there is no diff.
seealso:
  - module: kubeports.firewall.probe_ports
'''

EXAMPLES = r'''
- name: Listen on the ports to probe for at most five minutes
  kubeports.firewall.probe_listeners:
    ports:
      - {protocol: tcp, port: 2379}
      - {protocol: udp, port: 8472}
    addresses: [192.0.2.10]
    lifetime: 300
  check_mode: false

- name: Stop the listeners
  kubeports.firewall.probe_listeners:
    state: stopped
  check_mode: false
'''

RETURN = r'''
run_id:
  description: The O(run_id) given, or null.
  returned: always
  type: str
pid:
  description: Process id of the listener process; null when nothing was bound or it was stopped.
  returned: always
  type: int
listening:
  description: Sockets the listener holds (C(protocol), C(port), C(family) 4 or 6, C(address)).
  returned: state is started
  type: list
  elements: dict
in_use:
  description:
    - Ports something else holds on that address or family; probed as they are.
    - C(owner) names the holder (C(process etcd (pid 812)), C(kernel vxlan device flannel.1, port 8472),
      C(a kernel socket (no process holds it))); C(device) is the tunnel device holding a UDP port.
  returned: state is started
  type: list
  elements: dict
tunnels:
  description:
    - The kernel tunnel devices holding a UDP port in RV(in_use), read with C(ip -d -j addr show). Each has
      C(device), C(kind) (V(vxlan) or V(geneve)), C(port), C(local) (the underlay address it sends
      from), C(family) (of the underlay), C(external) (driven by the CNI's datapath), C(id), C(mac),
      C(up) and C(addresses) (C(family), C(address), C(prefixlen)).
  returned: state is started
  type: list
  elements: dict
tunnels_error:
  description: Why the tunnel devices could not be read, or null.
  returned: state is started
  type: str
errors:
  description: Ports that could not be bound for another reason, with C(error).
  returned: state is started
  type: list
  elements: dict
deadline:
  description: Unix time at which the listener process exits by itself.
  returned: state is started
  type: float
stopped:
  description: Process id of the listener process that was ended (state=stopped), or null.
  returned: state is stopped
  type: int
stale_stopped:
  description: Process id of a listener left by an earlier run and ended first, or null.
  returned: state is started
  type: int
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubeports.firewall.plugins.module_utils.probe_sockets import (
    open_listeners, start_listeners, stop_listeners)
from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.module_utils.privileges import os_error_message
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import parse_port
from ansible_collections.kubeports.firewall.plugins.module_utils.probe_tunnels import name_owners


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', default='started', choices=['started', 'stopped']),
            ports=dict(type='list', elements='dict', options=dict(
                protocol=dict(type='str', required=True, choices=['tcp', 'udp']),
                port=dict(type='int', required=True),
            )),
            addresses=dict(type='list', elements='str'),
            lifetime=dict(type='int', default=300),
            run_dir=dict(type='path', default='/run/kubeports'),
            run_id=dict(type='str'),
        ),
        required_if=[('state', 'started', ('ports', 'addresses'))],
        supports_check_mode=True,
    )
    params = module.params
    for item in params['ports'] or ():
        try:
            parse_port(item['port'], 'ports')
        except PlanError as exc:
            module.fail_json(msg=str(exc))
    if params['lifetime'] < 1:
        module.fail_json(msg='lifetime: must be at least 1 second, got %d' % params['lifetime'])
    if params['state'] == 'stopped':
        if module.check_mode:
            module.exit_json(changed=False, run_id=params['run_id'], pid=None, stopped=None)
        result = stop_listeners(params['run_dir'])
        module.exit_json(changed=False, run_id=params['run_id'], pid=None, stopped=result['stopped'])
    if module.check_mode:
        sockets, listening, in_use, errors = open_listeners(params['ports'], params['addresses'])
        for _protocol, sock in sockets:
            sock.close()
        tunnels, error = name_owners(in_use)
        module.exit_json(changed=False, run_id=params['run_id'], pid=None, listening=listening, in_use=in_use, errors=errors,
                         deadline=None, stale_stopped=None, tunnels=tunnels, tunnels_error=error)
    try:
        result = start_listeners(params['ports'], params['addresses'], params['lifetime'], params['run_dir'])
    except OSError as exc:
        module.fail_json(msg=os_error_message(exc, 'start the listeners:'))
    result['tunnels'], result['tunnels_error'] = name_owners(result['in_use'])
    module.exit_json(changed=False, run_id=params['run_id'], **result)


if __name__ == '__main__':
    main()
