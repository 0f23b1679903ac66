# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SuSEfirewall2 (SLES 12 era): tokens in /etc/sysconfig/SuSEfirewall2.

Open-to-all ports go to FW_SERVICES_EXT_TCP/UDP/IP, restricted ones to
FW_SERVICES_ACCEPT_EXT ("net,proto[,port]"), trusted networks to FW_TRUSTED_NETS with
FW_ROUTE="yes". Every token the user wrote is kept; the collection's own tokens are
recorded in its state file. SuSEfirewall2 flushes every iptables table when it starts,
so it is only restarted on a host running Kubernetes when allow_restart is set.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import shutil
import tempfile

from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import (
    Backend, BackendError, Change)

CONFIG = '/etc/sysconfig/SuSEfirewall2'
COMMAND = 'SuSEfirewall2'
TOKEN_VARIABLES = ('FW_SERVICES_EXT_TCP', 'FW_SERVICES_EXT_UDP', 'FW_SERVICES_EXT_IP',
                   'FW_SERVICES_ACCEPT_EXT', 'FW_TRUSTED_NETS')
_ASSIGNMENT = re.compile(r'^\s*([A-Z][A-Z0-9_]*)=(.*)$')
IP_PROTOCOLS = {'ipip': 'ipip', 'gre': 'gre', 'esp': 'esp', 'icmp': 'icmp', 'icmpv6': 'ipv6-icmp'}


def parse_config(text):
    """{variable: (first line, last line, value)} of a sysconfig file (quoted values may span lines)."""
    lines = text.split('\n')
    found, index = {}, 0
    while index < len(lines):
        match = _ASSIGNMENT.match(lines[index])
        if not match:
            index += 1
            continue
        name, rest = match.group(1), match.group(2)
        start = index
        if rest[:1] in ('"', "'"):
            quote, body = rest[0], rest[1:]
            while quote not in body and index + 1 < len(lines):
                index += 1
                body += '\n' + lines[index]
            value = body.split(quote, 1)[0]
        else:
            value = rest.split('#', 1)[0].strip()
        found[name] = (start, index, value)
        index += 1
    return found


def render_config(text, values):
    """The file with each variable of ``values`` set (in place, or appended), all else kept."""
    lines = text.split('\n')
    found = parse_config(text)
    replaced = {}
    for name, value in values.items():
        if name in found:
            start, end, _old = found[name]
            replaced[start] = (end, '%s="%s"' % (name, value))
    out, index = [], 0
    while index < len(lines):
        if index in replaced:
            end, line = replaced[index]
            out.append(line)
            index = end + 1
            continue
        out.append(lines[index])
        index += 1
    missing = [name for name in values if name not in found]
    if missing:
        if out and out[-1] == '':
            out.pop()
        out.extend('%s="%s"' % (name, values[name]) for name in missing)
        out.append('')
    return '\n'.join(out)


def desired_tokens(desired):
    """{variable: [tokens]} for a DesiredState, and whether routing must be on."""
    tokens = dict((name, []) for name in TOKEN_VARIABLES)
    for protocol, port in sorted(desired.open_to_all):
        if protocol in ('tcp', 'udp'):
            tokens['FW_SERVICES_EXT_%s' % protocol.upper()].append(port.replace('-', ':'))
        elif protocol in IP_PROTOCOLS:
            tokens['FW_SERVICES_EXT_IP'].append(IP_PROTOCOLS[protocol])
        else:
            raise BackendError('SuSEfirewall2 cannot open %s to everyone' % protocol)
    route = False
    for identifier, protocol, port in sorted(desired.restricted):
        members = desired.peer_sets[identifier]
        for cidr in members['ipv4'] + members['ipv6']:
            if protocol == 'all':
                tokens['FW_TRUSTED_NETS'].append(cidr)
                route = True
            elif protocol in ('tcp', 'udp'):
                tokens['FW_SERVICES_ACCEPT_EXT'].append('%s,%s,%s' % (cidr, protocol, port.replace('-', ':')))
            elif protocol in IP_PROTOCOLS:
                tokens['FW_SERVICES_ACCEPT_EXT'].append('%s,%s' % (cidr, IP_PROTOCOLS[protocol]))
            else:
                raise BackendError('SuSEfirewall2 cannot express %s rules' % protocol)
    for name in tokens:
        seen = []
        for token in tokens[name]:
            if token not in seen:
                seen.append(token)
        tokens[name] = seen
    return tokens, route


def plan_config(text, wanted, route, owned, prune):
    """(new text, added, removed, new owned record). Pure; the unit tests drive it."""
    found = parse_config(text)
    values, added, removed = {}, [], []
    new_owned = {}
    for name in TOKEN_VARIABLES:
        current = found[name][2].split() if name in found else []
        mine = set(owned.get(name, []))
        keep = [token for token in current if not (prune and token in mine and token not in wanted[name])]
        removed.extend('%s %s' % (name, token) for token in current if token not in keep)
        new = [token for token in wanted[name] if token not in keep]
        added.extend('%s %s' % (name, token) for token in new)
        # Ours: what we added now, and what we added before and still want.
        new_owned[name] = sorted(set(new) | (mine & set(keep)))
        if new or len(keep) != len(current):
            values[name] = ' '.join(keep + new)
    route_now = found['FW_ROUTE'][2] if 'FW_ROUTE' in found else None
    changed_by_us = 'FW_ROUTE_BEFORE' in owned
    if route:
        if route_now != 'yes':
            values['FW_ROUTE'] = 'yes'
            added.append('FW_ROUTE yes')
            new_owned['FW_ROUTE_BEFORE'] = owned.get('FW_ROUTE_BEFORE', route_now or 'no')
        elif changed_by_us:
            new_owned['FW_ROUTE_BEFORE'] = owned['FW_ROUTE_BEFORE']
    elif changed_by_us:
        if prune and route_now == 'yes':
            values['FW_ROUTE'] = owned['FW_ROUTE_BEFORE']
            removed.append('FW_ROUTE yes')
        else:
            new_owned['FW_ROUTE_BEFORE'] = owned['FW_ROUTE_BEFORE']
    return (render_config(text, values) if values else text), added, removed, new_owned


class SuseFirewall2Backend(Backend):
    name = 'susefirewall2'

    @classmethod
    def detect(cls, run_command):
        return os.path.exists(CONFIG) and bool(shutil.which(COMMAND))

    def check_usable(self):
        if not os.path.exists(CONFIG):
            raise BackendError('SuSEfirewall2 is not configured on this host (no %s)' % CONFIG)
        if not shutil.which(COMMAND):
            raise BackendError('SuSEfirewall2 is not installed on this host (no %s command)' % COMMAND)

    def read(self):
        try:
            with open(CONFIG) as handle:
                text = handle.read()
        except (IOError, OSError) as exc:
            raise BackendError('cannot read %s: %s' % (CONFIG, exc))
        return {'text': text, 'owned': self.load_state()}

    def plan(self, desired, current, prune):
        wanted, route = desired_tokens(desired)
        text, added, removed, owned = plan_config(current['text'], wanted, route, current['owned'], prune)
        change = Change(added=added, removed=removed, before=current['text'], after=text)
        change.operations = [('write', text, owned)] if text != current['text'] else []
        return change

    def kubernetes_running(self):
        if os.path.isdir('/etc/kubernetes/manifests') or os.path.exists('/var/lib/kubelet/config.yaml'):
            return True
        if shutil.which('iptables-save'):
            rc, out, _err = self.run_command(['iptables-save'], check=False)
            if rc == 0 and ':KUBE-' in out:
                return True
        return False

    def apply(self, change):
        for _action, text, owned in change.operations:
            if self.kubernetes_running() and not self.options.get('allow_restart'):
                raise BackendError('Kubernetes runs on this host and SuSEfirewall2 flushes every iptables '
                                   'table when it starts; nothing was changed. Set allow_restart (for '
                                   'example in a maintenance window) to apply.')
            directory = os.path.dirname(CONFIG)
            handle, temporary = tempfile.mkstemp(dir=directory, prefix='.SuSEfirewall2.')
            with os.fdopen(handle, 'w') as stream:
                stream.write(text)
            if os.path.exists(CONFIG):
                os.chmod(temporary, os.stat(CONFIG).st_mode & 0o7777)
            os.rename(temporary, CONFIG)
            self.save_state(owned)
            self.run_command([COMMAND, 'start'])
            self.messages.append('SuSEfirewall2 restarted with the new configuration')
