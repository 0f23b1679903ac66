# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ufw: one rule per source CIDR and multiport group, each with a "kubeports:<set>"
comment that marks it as the collection's own. Forwarded traffic of trusted networks
(pods, services) uses route rules. State is read from ufw's user rules files.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import binascii
import ipaddress
import os
import shutil

from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import (
    OWNER, Backend, BackendError, Change)

USER_RULES = ('/etc/ufw/user.rules', '/etc/ufw/user6.rules')
DEFAULTS = '/etc/default/ufw'
MULTIPORT_LIMIT = 15
ANY = {'ipv4': '0.0.0.0/0', 'ipv6': '::/0'}
# Protocol-only rules ufw can express with "proto".
UFW_PROTOCOLS = ('esp', 'gre')
# ufw's before.rules already accept ICMP echo; a restricted ICMP rule cannot be expressed.
ICMP = ('icmp', 'icmpv6')


class Rule(tuple):
    """(kind, protocol, ports, source, destination, comment); kind is "in" or "route"."""

    __slots__ = ()

    def __new__(cls, kind, protocol, ports, source, destination, comment):
        return tuple.__new__(cls, (kind, protocol, ports, _net(source), _net(destination), comment))

    kind = property(lambda self: self[0])
    protocol = property(lambda self: self[1])
    ports = property(lambda self: self[2])
    source = property(lambda self: self[3])
    destination = property(lambda self: self[4])
    comment = property(lambda self: self[5])

    def text(self):
        words = ['route allow' if self.kind == 'route' else 'allow']
        if self.protocol != 'any':
            words.append(self.protocol)
        words.append('from %s to %s' % (_label(self.source), _label(self.destination)))
        if self.ports != 'any':
            words.append('port %s' % self.ports)
        return ' '.join(words) + ' (%s)' % self.comment

    def argv(self, delete=False):
        argv = ['ufw']
        if delete:
            argv.append('--force')
        if self.kind == 'route':
            argv.append('route')
        if delete:
            argv.append('delete')
        argv.append('allow')
        if self.protocol != 'any':
            argv += ['proto', self.protocol]
        argv += ['from', _arg(self.source), 'to', _arg(self.destination)]
        if self.ports != 'any':
            argv += ['port', self.ports]
        if not delete:
            argv += ['comment', self.comment]
        return argv


def _net(value):
    if value in ('any', None):
        return value
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        return value


def _label(cidr):
    return 'anywhere' if cidr in ANY.values() else cidr


def _arg(cidr):
    return 'any' if cidr in ANY.values() else cidr


def parse_user_rules(text):
    """Rules of a ufw user.rules / user6.rules file: [(Rule, action)] from "### tuple ###" lines."""
    rules = []
    for line in text.splitlines():
        if not line.startswith('### tuple ### '):
            continue
        fields = line[len('### tuple ### '):].split()
        if len(fields) < 7:
            continue
        action, protocol, dport, destination, _sport, source = fields[:6]
        comment = ''
        for extra in fields[7:]:
            if extra.startswith('comment='):
                try:
                    comment = binascii.unhexlify(extra[len('comment='):]).decode('utf-8')
                except (binascii.Error, ValueError, UnicodeDecodeError):
                    comment = extra[len('comment='):]
        kind = 'in'
        if action.startswith('route:'):
            kind, action = 'route', action[len('route:'):]
        rules.append((Rule(kind, protocol, dport, source, destination, comment), action))
    return rules


def port_groups(ports):
    """Ports and ranges ("30000-32767") in multiport groups of at most 15 entries (a range
    counts twice), each as ufw writes it: "80,443", "30000:32767"."""
    groups, current, weight = [], [], 0
    for port in sorted(ports, key=lambda item: int(item.split('-')[0])):
        cost = 2 if '-' in port else 1
        if weight + cost > MULTIPORT_LIMIT:
            groups.append(current)
            current, weight = [], 0
        current.append(port.replace('-', ':'))
        weight += cost
    if current:
        groups.append(current)
    return [','.join(group) for group in groups]


def desired_rules(desired, families):
    """The ufw rules for a DesiredState; ``families`` are the IP families ufw manages."""
    rules, notes = set(), []
    by_target = {}
    for protocol, port in desired.open_to_all:
        by_target.setdefault((None, protocol), set()).add(port)
    for identifier, protocol, port in desired.restricted:
        by_target.setdefault((identifier, protocol), set()).add(port)
    for (identifier, protocol), ports in sorted(by_target.items(), key=lambda item: (str(item[0][0]), item[0][1])):
        comment = '%s:%s' % (OWNER, identifier or 'any')
        if identifier is None:
            sources = dict((family, [ANY[family]]) for family in families)
        else:
            members = desired.peer_sets[identifier]
            sources = dict((family, members[family]) for family in families)
        if protocol in ICMP:
            notes.append('ICMP from %s: ufw accepts ICMP echo in its before.rules; no rule added'
                         % (identifier or 'anyone'))
            continue
        if protocol == 'all':
            if identifier is None:
                raise BackendError('a rule opens every protocol to everyone; refusing (give it a source set)')
            for family, cidrs in sources.items():
                for cidr in cidrs:
                    rules.add(Rule('in', 'any', 'any', cidr, ANY[family], comment))
                    rules.add(Rule('route', 'any', 'any', cidr, ANY[family], comment))
                    rules.add(Rule('route', 'any', 'any', ANY[family], cidr, comment))
            continue
        if protocol in ('tcp', 'udp'):
            groups = port_groups(ports)
        elif protocol in UFW_PROTOCOLS:
            groups = ['any']
        else:
            raise BackendError('ufw cannot express %s rules (from %s); drop the rule with kubeports_drop_rules '
                               'or use firewalld' % (protocol, identifier or 'anyone'))
        for family, cidrs in sources.items():
            for cidr in cidrs:
                for group in groups:
                    rules.add(Rule('in', protocol, group, cidr, ANY[family], comment))
    return rules, notes


class UfwBackend(Backend):
    name = 'ufw'

    @classmethod
    def detect(cls, run_command):
        if not shutil.which('ufw'):
            return False
        rc, out, _err = run_command(['ufw', 'status'], check=False)
        return rc == 0 and 'Status: active' in out

    def check_usable(self):
        if not shutil.which('ufw'):
            raise BackendError('ufw is not installed on this host (no ufw command)')
        rc, out, err = self.run_command(['ufw', 'status'], check=False)
        if rc != 0 or 'Status: active' not in out:
            raise BackendError('ufw is not active (ufw status: %s); enable it with SSH allowed first'
                               % (out or err).strip())

    def families(self):
        try:
            with open(DEFAULTS) as handle:
                for line in handle:
                    if line.strip().lower().startswith('ipv6='):
                        if line.split('=', 1)[1].strip().strip('"\'').lower() != 'yes':
                            return ('ipv4',)
        except (IOError, OSError):
            pass
        return ('ipv4', 'ipv6')

    def read(self):
        rules = []
        for path in USER_RULES:
            if os.path.exists(path):
                with open(path) as handle:
                    rules.extend(parse_user_rules(handle.read()))
        return {'rules': rules}

    def plan(self, desired, current, prune):
        wanted, notes = desired_rules(desired, self.families())
        self.messages.extend(notes)
        have = set(rule for rule, action in current['rules'] if action == 'allow')
        ours = set(rule for rule in have if rule.comment == OWNER or rule.comment.startswith(OWNER + ':'))
        # A rule the user added by hand for the same traffic counts as present (not ours).
        present = set(rule[:5] for rule in have)
        to_add = sorted(rule for rule in wanted if rule[:5] not in present)
        wanted_keys = set(rule[:5] for rule in wanted)
        to_remove = sorted(rule for rule in ours if rule[:5] not in wanted_keys) if prune else []
        operations = [('delete', rule) for rule in to_remove] + [('add', rule) for rule in to_add]
        return Change(added=[rule.text() for rule in to_add], removed=[rule.text() for rule in to_remove],
                      operations=operations)

    def apply(self, change):
        # One command covers both families when source and destination are "any".
        done = set()
        for action, rule in change.operations:
            argv = rule.argv(delete=action == 'delete')
            if tuple(argv) not in done:
                done.add(tuple(argv))
                self.run_command(argv)
