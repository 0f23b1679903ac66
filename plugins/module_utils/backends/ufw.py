# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ufw: restricted TCP, UDP, ESP and GRE rules match their peer set as one ipset per family
from a few rules in ufw's after rules (ufw_sets.py; ufw_peer_sets: auto where the ipset
command is, or ipset). Everything else, and every rule with ufw_peer_sets: rules, goes
through the ufw CLI: one rule per source CIDR and multiport group, each with a
"kubeports:<set>" comment that marks it as the collection's own. Forwarded traffic of
trusted networks (pods, services) uses "route allow" rules. The CNI's devices (pod_interfaces)
get "allow in on IFACE" and "route allow in on IFACE" ("kubeports:interface"), and then the
after rules' block accepts forwarded connections the host DNAT'd itself (ufw_sets.DnatRule).
State is read from ufw's user rules files (/etc/ufw/user.rules, user6.rules), never from
"ufw status" text.

Every ufw delete reloads ufw's user chains, so the change keeps every rule that is still
right (a new port gets a new rule instead of rewriting a group), adds before it deletes
(no gap for traffic that stays allowed), deletes with the rule's comment (ufw then only
matches the collection's own rule) and uses one "any" command for an IPv4 and IPv6 pair.
ufw commands run one at a time, all of a change in one process of ufw's own Python frontend
(ufw's lock, one frontend, each command parsed and done as the ufw command does it) when the
ufw command is a Python script, else as ufw commands; the module's host lock keeps other runs
out.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import binascii
import collections
import ipaddress
import json
import os
import shutil
import stat
import tempfile

from ansible_collections.kubeports.firewall.plugins.module_utils.backends import ufw_sets
from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import (
    OWNER, Admission, Backend, BackendError, Change, DesiredState, exposure)
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import (
    ANYONE_BY_FAMILY, FAMILY_OF_PROTOCOL, format_port, parse_port, parse_ports)

USER_RULES = {'ipv4': '/etc/ufw/user.rules', 'ipv6': '/etc/ufw/user6.rules'}
BEFORE_RULES = {'ipv4': '/etc/ufw/before.rules', 'ipv6': '/etc/ufw/before6.rules'}
DEFAULTS = '/etc/default/ufw'
MULTIPORT_LIMIT = 15
FAMILIES = ('ipv4', 'ipv6')
# Runs ufw commands (JSON argv lists on stdin) one after the other in one process of ufw's
# Python frontend, each parsed and done as the ufw script does it, through one frontend (as
# ufw applies several rules itself, e.g. for both families); says "ready" once ufw's modules
# are imported, then one JSON line: how many were done, and the failing command and ufw's
# error if any.
BATCH_PROGRAM = r'''
import gettext, json, sys
sys.argv = sys.argv[1:2]  # the ufw script's path: ufw checks its own file's permissions
import ufw.common, ufw.frontend
from ufw.util import create_lock, release_lock
gettext.install(ufw.common.programName)
sys.stdout.write("ready\n")
sys.stdout.flush()
done, failure = 0, None
lock = create_lock(lockfile="/run/ufw.lock", dryrun=False)
try:
    ui = ufw.frontend.UFWFrontend(False)
    for argv in json.load(sys.stdin):
        try:
            pr = ufw.frontend.parse_command(argv)
            if "rule" in pr.data:
                ui.do_action(pr.action, pr.data["rule"], pr.data["iptype"], pr.force)
            else:
                ui.do_action(pr.action, "", "", pr.force)
        except (ufw.common.UFWError, ValueError) as exc:
            failure = {"argv": argv, "error": str(getattr(exc, "value", exc)) or "invalid ufw command"}
            break
        done += 1
finally:
    release_lock(lock)
sys.stdout.write("\n" + json.dumps({"done": done, "failure": failure}) + "\n")
sys.exit(1 if failure else 0)
'''
# Protocols without ports that ufw's CLI takes with "proto" (of those the collection uses).
UFW_PROTOCOLS = ('esp', 'gre')
# Protocols ufw's CLI cannot express; they are accepted when ufw's before rules accept them.
# "-p" values of iptables that mean them (IPIP is IP protocol 4, "ipencap" in /etc/protocols;
# "ipip" there is protocol 94, something else).
BEFORE_ONLY = {'icmp': ('icmp', '1'), 'icmpv6': ('icmpv6', 'ipv6-icmp', '58'), 'ipip': ('4', 'ipencap'),
               'sctp': ('sctp', '132')}
ICMP_TYPE_OPTIONS = ('--icmp-type', '--icmpv6-type')
# The comment of the rules that trust the CNI's devices (DesiredState.trusted_interfaces).
INTERFACE_COMMENT = '%s:interface' % OWNER


class UfwRule(tuple):
    """(kind, protocol, ports, source, destination, comment, interface); kind is "in" or "route".
    ``ports`` is ufw's notation ("80,443", "30000:32767") or "any"; ``interface`` the one the
    traffic arrives on ("in on IFACE"), '' for every interface."""

    __slots__ = ()

    def __new__(cls, kind, protocol, ports, source, destination, comment, interface=''):
        return tuple.__new__(cls, (kind, protocol, ports, _net(source), _net(destination), comment, interface or ''))

    kind = property(lambda self: self[0])
    protocol = property(lambda self: self[1])
    ports = property(lambda self: self[2])
    source = property(lambda self: self[3])
    destination = property(lambda self: self[4])
    comment = property(lambda self: self[5])
    interface = property(lambda self: self[6])

    @property
    def match(self):
        """What ufw matches a rule by (everything but the comment)."""
        return self[:5] + self[6:]

    @property
    def family(self):
        return 'ipv6' if ':' in self.source + self.destination else 'ipv4'

    def text(self):
        words = ['route allow' if self.kind == 'route' else 'allow']
        if self.interface:
            words.append('in on %s' % self.interface)
        if self.protocol != 'any':
            words.append(self.protocol)
        words.append('from %s to %s' % (_label(self.source), _label(self.destination)))
        if self.ports != 'any':
            words.append('port %s' % self.ports)
        return ' '.join(words) + ' (%s)' % self.comment

    def argv(self, delete=False, both_families=False):
        """The ufw command adding (or deleting) this rule. ``both_families``: "any" for a
        source and destination that are "anywhere", so one command covers IPv4 and IPv6."""
        argv = ['ufw']
        if delete:
            argv.append('--force')
        if self.kind == 'route':
            argv.append('route')
        if delete:
            argv.append('delete')
        argv.append('allow')
        if self.interface:
            argv += ['in', 'on', self.interface]
        if self.protocol != 'any':
            argv += ['proto', self.protocol]
        source, destination = self.source, self.destination
        if both_families and self.interface:
            # "ufw allow in on IFACE" alone: both families (ufw shows "Anywhere on IFACE").
            argv += ['comment', self.comment]
            return argv
        if both_families:
            source, destination = 'any', 'any'
        elif source in ANYONE_BY_FAMILY.values() and destination not in ANYONE_BY_FAMILY.values():
            source = 'any'
        elif destination in ANYONE_BY_FAMILY.values() and source not in ANYONE_BY_FAMILY.values():
            destination = 'any'
        argv += ['from', source, 'to', destination]
        if self.ports != 'any':
            argv += ['port', self.ports]
        # Deleting with the comment: ufw only matches a rule with exactly this comment,
        # so a rule the user added for the same traffic is never deleted.
        argv += ['comment', self.comment]
        return argv


class UserRule(collections.namedtuple(
        'UserRule', 'family kind action protocol ports destination sport source apps direction comment')):
    """One rule of a user rules file. ``action`` as ufw writes it ("allow", "allow_log", "deny"…),
    ``apps`` the (destination, source) application profiles, ``direction`` "in", "out" or
    "in_eth0"-style with an interface."""

    __slots__ = ()

    @property
    def rule(self):
        return UfwRule(self.kind, self.protocol, self.ports, self.source, self.destination, self.comment,
                       self.interface)

    @property
    def interface(self):
        """The interface of an "in on IFACE" rule ("in_IFACE"), '' otherwise."""
        if self.direction.startswith('in_') and '!' not in self.direction:
            return self.direction[3:]
        return ''

    @property
    def simple(self):
        """Nothing but protocol, ports and addresses, incoming on every interface."""
        return self.sport == 'any' and self.apps == ('', '') and self.direction == 'in'

    @property
    def on_interface(self):
        """Nothing but protocol, ports and addresses, incoming on one interface ("in on IFACE")."""
        return self.sport == 'any' and self.apps == ('', '') and bool(self.interface)

    @property
    def allows(self):
        """Allows the traffic it matches on every interface (limit: rate-limited, still allowed)."""
        return self.simple and self.action.split('_')[0] in ('allow', 'limit')

    @property
    def covers(self):
        """Allows the traffic it matches (on every interface or on its own): a need it matches gets no rule."""
        return (self.simple or self.on_interface) and self.action.split('_')[0] in ('allow', 'limit')

    @property
    def owned(self):
        """The collection's: its comment, and exactly the kind of rule it writes (and can delete):
        protocol, ports and addresses on every interface, or everything on one interface."""
        if self.action != 'allow' or not is_owned(self.comment):
            return False
        if self.on_interface:
            return (self.protocol, self.ports) == ('any', 'any') and self.source == self.destination \
                and self.source in ANYONE_BY_FAMILY.values()
        return self.simple


def is_owned(comment):
    return comment == OWNER or comment.startswith(OWNER + ':')


def _net(value):
    if value in ('any', None):
        return value
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        return value


def _label(cidr):
    return 'anywhere' if cidr in ANYONE_BY_FAMILY.values() else cidr


def parse_user_rules(text, family='ipv4'):
    """The rules of a ufw user.rules / user6.rules file, from its "### tuple ###" lines:
    ``action proto dport dst sport src [dapp sapp] direction[_iface] [comment=hex]``."""
    rules = []
    for line in text.splitlines():
        if not line.startswith('### tuple ### '):
            continue
        body, _sep, hexcomment = line[len('### tuple ### '):].partition(' comment=')
        fields = body.split()
        if len(fields) not in (7, 9):
            continue
        comment = ''
        if hexcomment.strip():
            try:
                comment = binascii.unhexlify(hexcomment.strip()).decode('utf-8')
            except (binascii.Error, ValueError, UnicodeDecodeError):
                comment = hexcomment.strip()
        action, protocol, dport, destination, sport, source = fields[:6]
        apps = ('', '')
        if len(fields) == 9:
            apps = tuple('' if app == '-' else app for app in fields[6:8])
        kind = 'in'
        if action.startswith('route:'):
            kind, action = 'route', action[len('route:'):]
        rules.append(UserRule(family, kind, action, protocol, dport, _net(destination), sport,
                              _net(source), apps, fields[-1], comment))
    return rules


def parse_defaults(text):
    """The IP families ufw manages, from /etc/default/ufw (IPV6=yes is ufw's default)."""
    for line in text.splitlines():
        key, sep, value = line.strip().partition('=')
        if sep and key.strip() == 'IPV6':
            if value.split('#')[0].strip().strip('"\'').lower() != 'yes':
                return ('ipv4',)
    return FAMILIES


def parse_input_policy(text):
    """DEFAULT_INPUT_POLICY of /etc/default/ufw (DROP when unset)."""
    for line in text.splitlines():
        key, sep, value = line.strip().partition('=')
        if sep and key.strip() == 'DEFAULT_INPUT_POLICY':
            return value.split('#')[0].strip().strip('"\'').upper()
    return 'DROP'


def before_accepts(text):
    """What a ufw before.rules / before6.rules file accepts in ufw's before-input chain, as
    [(protocol, source network, icmp type or None)]. Lines with any other match are left out."""
    accepted = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != '-A' or words[1] not in ('ufw-before-input', 'ufw6-before-input'):
            continue
        options, index = {}, 2
        while index + 1 < len(words) and words[index].startswith('-'):
            options[words[index]] = words[index + 1]
            index += 2
        if index != len(words) or options.get('-j') != 'ACCEPT':
            continue
        icmp_type = None
        for option in ICMP_TYPE_OPTIONS:
            icmp_type = options.pop(option, icmp_type)
        if '-p' not in options or set(options) - set(['-p', '-s', '-j']):
            continue
        try:
            family = 'ipv6' if words[1].startswith('ufw6') else 'ipv4'
            source = ipaddress.ip_network(options.get('-s', ANYONE_BY_FAMILY[family]), strict=False)
        except ValueError:
            continue
        accepted.append((options['-p'].lower(), source, icmp_type))
    return accepted


def before_exposures(text, family):
    """What the ACCEPT lines of ufw's before-input chain admit (exposure entries): any
    match the audit cannot narrow (an interface, a destination, a source port) is left out of
    the judgement, so it over-states, never hides. Loopback and replies to connections already
    made are not exposures."""
    found = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != '-A' or words[1] not in ('ufw-before-input', 'ufw6-before-input'):
            continue
        options, index = {}, 2
        while index < len(words):
            key = words[index]
            value = words[index + 1] if index + 1 < len(words) and not words[index + 1].startswith('-') else ''
            options[key] = value
            index += 2 if value else 1
        if options.get('-j') != 'ACCEPT' or options.get('-i') == 'lo':
            continue
        states = options.get('--ctstate', options.get('--state'))
        if states is not None and 'NEW' not in states.split(','):
            continue
        protocol = options.get('-p', 'all')
        source = options.get('-s', ANYONE_BY_FAMILY[family])
        ports = options.get('--dport', options.get('--dports', ''))
        what = 'ufw before rules: %s' % ' '.join(words[2:])
        for span in parse_ports(ports) if ports else [None]:
            found.append(exposure(protocol, '' if span is None else format_port(span), [source], what))
    return found


def covered(spans, cover):
    """Whether every (low, high) of ``spans`` lies within the union of ``cover``."""
    merged = []
    for low, high in sorted(cover):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return all(any(c_low <= low and high <= c_high for c_low, c_high in merged) for low, high in spans)


def port_groups(ports):
    """Ports and ranges ("30000-32767") in multiport groups of at most 15 entries (a range
    counts twice), each as ufw writes it: "80,443", "30000:32767"."""
    groups, current, weight = [], [], 0
    for port in sorted(ports, key=lambda item: parse_port(item, 'port')):
        cost = 2 if '-' in port else 1
        if weight + cost > MULTIPORT_LIMIT:
            groups.append(current)
            current, weight = [], 0
        current.append(port.replace('-', ':'))
        weight += cost
    if current:
        groups.append(current)
    return [','.join(group) for group in groups]


def rule_for_messages(protocol, port, identifier, peer_sets):
    """A rule as the user knows it, for error messages: "ipip from peer set 'cluster' (…)"."""
    what = protocol + (' ' + port if port else '')
    if identifier is None:
        return '%s from anyone' % what
    members = peer_sets[identifier]
    return "%s from peer set '%s' (%s)" % (what, members['name'], ', '.join(members['ipv4'] + members['ipv6']))


def desired_needs(desired, families, before=None, skipped_v6=()):
    """What the DesiredState needs from ufw: ({(kind, family, protocol, source, destination,
    comment, interface): set of ports ("6443", "30000-32767" or "any")}, notes). ``interface``
    is '' but for the trusted interfaces: everything arriving on each is allowed in and routed.

    ``families``: the IP families ufw manages. ``before``: {family: before_accepts(...)}; a
    protocol ufw's CLI cannot express (ICMP, IPIP, SCTP) is fine when those rules accept it
    from every source, and an error naming the rule otherwise. ``skipped_v6``: peer sets whose
    IPv6 members another part left out already (one note names them all)."""
    before = before or {}
    needs, notes = {}, []
    targets = [(None, protocol, port) for protocol, port in desired.open_to_all]
    targets += list(desired.restricted)
    skipped_v6 = set(skipped_v6)
    for interface in sorted(desired.trusted_interfaces):
        for kind in ('in', 'route'):
            for family in families:
                needs[(kind, family, 'any', ANYONE_BY_FAMILY[family], ANYONE_BY_FAMILY[family], INTERFACE_COMMENT, interface)] = set(['any'])
    for identifier, protocol, port in sorted(targets, key=lambda item: (str(item[0]), item[1], item[2])):
        comment = '%s:%s' % (OWNER, identifier or 'any')
        if identifier is None:
            sources = dict((family, [ANYONE_BY_FAMILY[family]]) for family in FAMILIES)
        else:
            sources = dict((family, desired.peer_sets[identifier][family]) for family in FAMILIES)
        if 'ipv6' not in families and identifier is not None and sources['ipv6']:
            skipped_v6.add(identifier)
        sources = dict((family, sources[family]) for family in families
                       if FAMILY_OF_PROTOCOL.get(protocol, family) == family)
        rule_name = rule_for_messages(protocol, port, identifier, desired.peer_sets)
        if protocol == 'all':
            if identifier is None:
                raise BackendError('%s opens every protocol to everyone; refusing (give it a source set)' % rule_name)
            # Trusted by source (pods routed over the node network): to the host, forwarded from
            # the network, and forwarded to it from anywhere (the node network reaches natively
            # routed pods through their node; encapsulated pods come as trusted_interfaces).
            for family, cidrs in sources.items():
                for cidr in cidrs:
                    for key in (('in', family, 'any', cidr, ANYONE_BY_FAMILY[family], comment, ''),
                                ('route', family, 'any', cidr, ANYONE_BY_FAMILY[family], comment, ''),
                                ('route', family, 'any', ANYONE_BY_FAMILY[family], cidr, comment, '')):
                        needs.setdefault(key, set()).add('any')
        elif protocol in ('tcp', 'udp') or protocol in UFW_PROTOCOLS:
            for family, cidrs in sources.items():
                for cidr in cidrs:
                    needs.setdefault(('in', family, protocol, cidr, ANYONE_BY_FAMILY[family], comment, ''), set()).add(port or 'any')
        elif protocol in BEFORE_ONLY:
            missing = [cidr for family, cidrs in sources.items() for cidr in cidrs
                       if not _before_accepts(before.get(family, []), protocol, port, cidr)]
            if missing:
                raise BackendError(
                    "ufw cannot express %s: its CLI takes only tcp, udp, esp, ah, gre, igmp and ipv6, and ufw's "
                    "before rules (%s) do not accept it from %s. Add an ACCEPT rule for it to the "
                    "ufw-before-input chain there (for IPIP use \"-p 4\") and reload ufw once, drop the rule with "
                    "kubeports_drop_rules, or use firewalld" % (
                        rule_name, ' / '.join(BEFORE_RULES[family] for family in sorted(sources) if sources[family]),
                        ', '.join(missing)))
            if any(sources.values()):
                notes.append("%s: accepted by ufw's before rules; ufw's CLI cannot express it, no ufw rule "
                             "added" % rule_name)
        else:
            raise BackendError('ufw cannot express %s; drop the rule with kubeports_drop_rules or use '
                               'firewalld' % rule_name)
    if skipped_v6:
        notes.append('ufw has IPv6 off (IPV6=no in %s): IPv6 sources of %s get no rules'
                     % (DEFAULTS, ', '.join(sorted(skipped_v6))))
    return needs, notes


def _before_accepts(accepted, protocol, port, cidr):
    """Whether the parsed before rules accept ``protocol`` (echo for ICMP) from ``cidr``."""
    network = ipaddress.ip_network(cidr)
    for name, source, icmp_type in accepted:
        if name not in BEFORE_ONLY[protocol] or source.version != network.version:
            continue
        if icmp_type not in (None, 'echo-request', '8', '128'):
            continue
        if network.subnet_of(source):
            return True
    return False


def diff_rules(needs, current, prune):
    """Pure comparison: (rules to add, rules to remove, removed rules replaced by an add).

    ``current`` is the parsed user rules of both families. A rule of the collection
    (comment "kubeports…") stays while every port of it is still needed under its comment;
    otherwise, with prune, it goes. Needed ports already allowed by a kept rule with the same
    protocol, source, destination and interface (the user's, or the collection's under another
    peer set) get nothing new; the others are packed into new multiport rules."""
    to_remove = []
    for user_rule in current:
        if not user_rule.owned or not prune:
            continue
        key = (user_rule.kind, user_rule.family, user_rule.protocol, user_rule.source, user_rule.destination,
               user_rule.comment, user_rule.interface)
        wanted = needs.get(key)
        if wanted is None or not covered(parse_ports(user_rule.ports), [span for port in wanted for span in parse_ports(port)]):
            to_remove.append(user_rule)
    removing = set(id(user_rule) for user_rule in to_remove)
    cover, blockers = {}, {}
    for user_rule in current:
        if id(user_rule) in removing:
            continue
        key = (user_rule.kind, user_rule.family, user_rule.protocol, user_rule.source, user_rule.destination,
               user_rule.interface)
        if user_rule.covers:
            cover.setdefault(key, []).extend(parse_ports(user_rule.ports))
        elif user_rule.simple or user_rule.on_interface:
            blockers.setdefault(key + (user_rule.ports,), user_rule)
    to_add = []
    for key in sorted(needs):
        kind, family, protocol, source, destination, comment, interface = key
        match = key[:5] + key[6:]
        have = cover.get(match, [])
        missing = [port for port in needs[key] if not covered(parse_ports(port), have)]
        if not missing:
            continue
        groups = ['any'] if 'any' in missing else port_groups(missing)
        for group in groups:
            rule = UfwRule(kind, protocol, group, source, destination, comment, interface)
            blocker = blockers.get(match + (group,))
            if blocker is not None:
                # ufw would replace that rule (same match, other action) with the new one.
                raise BackendError('the ufw rule "%s %s" (not the collection\'s) matches exactly what "%s" needs; '
                                   'ufw would replace it. Remove or change it, or drop the kubeports rule'
                                   % (blocker.action, blocker.rule.text().split(' ', 1)[1].rsplit(' (', 1)[0],
                                      rule.text()))
            to_add.append(rule)
    # A rule whose only change is its comment (peer set renamed): adding it makes ufw take
    # the comment over, so the delete is left out (it would be a second reload for nothing).
    added = set(rule.match for rule in to_add)
    replaced = [user_rule for user_rule in to_remove if user_rule.rule.match in added]
    return to_add, [user_rule.rule for user_rule in to_remove], [user_rule.rule for user_rule in replaced]


def commands(to_add, to_remove, replaced=()):
    """ufw commands for a change, adds first: one command for an IPv4 + IPv6 "anywhere" pair."""
    argvs = []
    skip = set(replaced)
    for delete, rules in ((False, to_add), (True, [rule for rule in to_remove if rule not in skip])):
        pending = list(rules)
        present = set(pending)
        done = set()
        for rule in pending:
            if rule in done:
                continue
            both = False
            if rule.source in ANYONE_BY_FAMILY.values() and rule.destination in ANYONE_BY_FAMILY.values():
                other = ANYONE_BY_FAMILY['ipv6' if rule.family == 'ipv4' else 'ipv4']
                twin = UfwRule(rule.kind, rule.protocol, rule.ports, other, other, rule.comment, rule.interface)
                if twin in present:
                    both = True
                    done.add(twin)
            done.add(rule)
            argvs.append(rule.argv(delete=delete, both_families=both))
    return argvs


def split_desired(desired, families, use_sets):
    """(the DesiredState left for ufw's own rules, set needs, set members, IPv6 set ids skipped).

    With ``use_sets``, restricted TCP, UDP, ESP and GRE rules go to peer sets: needs
    {(family, protocol, set id): ports ("6443", "30000-32767", "any")} and members {set name:
    (family, frozenset of CIDRs)}. The rest stays for ufw's own rules, and so do the rules of
    the ssh component: the operator's way in never depends on sets being restored at boot."""
    if not use_sets:
        return desired, {}, {}, set()
    rest, needs, members, skipped_v6 = set(), {}, {}, set()
    for key in desired.restricted:
        identifier, protocol, port = key
        if protocol not in ufw_sets.SET_PROTOCOLS or key in desired.ssh:
            rest.add(key)
            continue
        for family in FAMILIES:
            cidrs = desired.peer_sets[identifier][family]
            if not cidrs:
                continue
            if family not in families:
                skipped_v6.add(identifier)
                continue
            needs.setdefault((family, protocol, identifier), set()).add(port or 'any')
            members[ufw_sets.set_name(identifier, family)] = (family, frozenset(cidrs))
    return (DesiredState(desired.open_to_all, desired.peer_sets, rest, desired.ssh, desired.trusted_interfaces), needs,
            members, skipped_v6)


class SetChange(object):
    """The peer sets' part of a change (see ufw_sets.py): the ``final`` rules of the block with
    their sets' ``targets`` members, and the steps that get there, in the order ``apply`` runs
    them. Files are written twice when something goes: first holding what stays and what goes
    (so that ufw loads them whenever it starts meanwhile), then what stays."""

    def __init__(self):
        self.final = []
        self.forward = []           # the DNAT lines (ufw_sets.DnatRule) the block holds afterwards
        self.targets = {}
        self.leftovers = []         # temporary sets of a run that did not finish: destroyed first
        self.restore = {}           # {set name: (family, members, exists)}: created, or filled and swapped in
        self.files = []             # [(path, text or None)] written before the rules change (None: removed)
        self.hook = None            # before.init's text with the restore block, written with the files
        self.make_executable = False
        self.insert = []            # rules inserted into the running chains
        self.delete = []            # rules deleted from them, after ufw's own commands ran
        self.destroy = []           # sets destroyed then
        self.files_after = []       # and the files as they stay
        self.hook_after = None      # before.init without the restore block
        self.remove_execute = False
        self.record = None          # set names recorded before the change
        self.record_after = None    # and after it
        self.added, self.removed = [], []

    @property
    def empty(self):
        return not (self.leftovers or self.restore or self.files or self.hook is not None or self.insert
                    or self.delete or self.destroy or self.files_after or self.hook_after is not None)


def _set_rules(needs, file_rules, prune):
    """(rules kept, rules dropped, rules added) of the block: a rule stays while every port of it
    is still needed from its set; the ports missing go into new multiport groups."""
    keep, drop = [], []
    for rule in file_rules:
        wanted = needs.get((rule.family, rule.protocol, rule.identifier))
        if (wanted is not None and covered(parse_ports(rule.ports), [span for port in wanted for span in parse_ports(port)])) \
                or not prune:
            keep.append(rule)
        else:
            drop.append(rule)
    cover = {}
    for rule in keep:
        cover.setdefault((rule.family, rule.protocol, rule.identifier), []).extend(parse_ports(rule.ports))
    added = []
    for key in sorted(needs):
        missing = [port for port in needs[key] if not covered(parse_ports(port), cover.get(key, []))]
        if missing:
            for group in ['any'] if 'any' in missing else port_groups(missing):
                added.append(ufw_sets.SetRule(key[0], key[1], group, key[2]))
    return keep, drop, added


def plan_sets(needs, members, state, prune, dnat=()):
    """A SetChange from the read ``state`` (UfwBackend.read_sets) to ``needs`` and ``members``,
    with the DNAT line (ufw_sets.DnatRule) in the block of each family of ``dnat``."""
    change = SetChange()
    file_rules = [rule for family in FAMILIES for rule in state['file_rules'].get(family, [])]
    set_file_rules = [rule for rule in file_rules if isinstance(rule, ufw_sets.SetRule)]
    keep, drop, added_rules = _set_rules(needs, set_file_rules, prune)
    final = sorted(set(keep + added_rules))
    change.final = final
    # The DNAT lines: one per family wanted; one no longer wanted stays without prune.
    have_dnat = set(rule for rule in file_rules if isinstance(rule, ufw_sets.DnatRule))
    wanted_dnat = set(ufw_sets.DnatRule(family) for family in dnat)
    change.forward = sorted(wanted_dnat | (set() if prune else have_dnat))
    drop = drop + sorted(have_dnat - set(change.forward))
    added_rules = added_rules + sorted(wanted_dnat - have_dnat)
    final_block = final + change.forward
    for rule in ufw_sets.block_order(set(added_rules) - set(file_rules)):
        change.added.append(rule.text())
    for rule in ufw_sets.block_order(set(drop) - set(final_block)):
        change.removed.append(rule.text())

    # The running chains: exactly the final rules of the collection's shape.
    running = collections.Counter(rule for family in FAMILIES for rule in state['running_rules'].get(family, []))
    wanted = collections.Counter(final_block)
    change.insert = ufw_sets.block_order((wanted - running).elements())
    change.delete = ufw_sets.block_order((running - wanted).elements())
    for rule in ufw_sets.block_order(set(change.insert) - set(added_rules)):
        change.added.append('%s (running)' % rule.text())
    for rule in ufw_sets.block_order(set(change.delete) - set(drop)):
        change.removed.append('%s (running)' % rule.text())

    # The sets: what the final rules name, with the desired members (as they are when kept without prune).
    sets, saved, known = state['sets'], state['saved_sets'], state['sets_known']
    for name in sorted(set(rule.set_name for rule in final)):
        family = ufw_sets.own_set(name)[1]
        target = (members.get(name) or sets.get(name) or saved.get(name) or (family, frozenset()))[1]
        change.targets[name] = target
        have = sets.get(name)
        if have is None or have[1] != target:
            change.restore[name] = (family, target, have is not None)
            before = have[1] if have else frozenset()
            change.added.extend('ipset %s: %s' % (name, member) for member in sorted(target - before))
            change.removed.extend('ipset %s: %s' % (name, member) for member in sorted(before - target))
    recorded = set(state['record'].get('ipsets') or ())
    leaving = {}
    for name in sorted(sets):
        if name in change.targets:
            continue
        if ufw_sets.own_set(name)[2]:
            change.leftovers.append(name)
        elif prune and name in recorded:
            change.destroy.append(name)
            leaving[name] = sets[name]
            change.removed.append('ipset %s (%d members)' % (name, len(sets[name][1])))
    change.record = sorted(recorded | set(change.targets))
    # Recorded sets not seen (no ipset command to look) stay recorded.
    change.record_after = sorted(set(change.targets) | ((recorded & set(sets)) if known else recorded)
                                 - set(change.destroy))

    # The files: the saved sets, then before.init, then the after rules (a reboot between two
    # writes finds every set the after rules name).
    final_sets = dict((name, (ufw_sets.own_set(name)[1], target)) for name, target in change.targets.items())
    _write_twice(change, ufw_sets.SETS_FILE, state['sets_file'],
                 ufw_sets.render_sets_file(dict(final_sets, **leaving)) if final_sets or leaving else None,
                 ufw_sets.render_sets_file(final_sets) if final_sets else None)
    if change.files and not change.restore and not leaving:
        change.added.append('saved peer sets (%s)' % ufw_sets.SETS_FILE)
    hook = state['before_init']
    if final_sets:
        if hook is None:
            raise BackendError('%s is missing; ufw runs it before loading its rules, and the peer sets must be '
                               'restored there at boot. Restore ufw\'s own before.init, or use ufw_peer_sets: rules'
                               % ufw_sets.BEFORE_INIT)
        text = ufw_sets.with_hook(hook)
        if text != hook or not state['before_init_executable']:
            if not state['before_init_executable'] and ufw_sets.own_commands(hook):
                raise BackendError(
                    '%s is not executable and holds commands of its own (%s); ufw runs it once it is executable, and '
                    'the peer sets must be restored there at boot. Make it executable yourself if those commands '
                    'should run, or use ufw_peer_sets: rules; nothing was changed'
                    % (ufw_sets.BEFORE_INIT, ufw_sets.own_commands(hook)[0]))
            change.hook = text
            change.make_executable = not state['before_init_executable']
            change.added.append('restore of the peer sets at boot (%s)' % ufw_sets.BEFORE_INIT)
    elif hook is not None and prune and ufw_sets.hook_span(hook) is not None:
        change.hook_after = ufw_sets.without_hook(hook)
        change.remove_execute = bool(state['record'].get('made_executable'))
        change.removed.append('restore of the peer sets at boot (%s)' % ufw_sets.BEFORE_INIT)
    for family in FAMILIES:
        text, path = state['after_text'].get(family), ufw_sets.AFTER_RULES[family]
        mine = [rule for rule in final_block if rule.family == family]
        if text is None:
            if any(isinstance(rule, ufw_sets.DnatRule) for rule in mine):
                raise BackendError('%s is missing; ufw\'s after rules are where forwarded connections this host '
                                   'DNAT\'d (kube-proxy\'s NodePorts to pods) are accepted. Restore it' % path)
            if mine:
                raise BackendError('%s is missing; ufw\'s after rules are where the peer sets are matched. Restore it '
                                   '(or use ufw_peer_sets: rules)' % path)
            continue
        going = [rule for rule in drop if rule.family == family]
        _write_twice(change, path, text, ufw_sets.render_block(text, mine + going, family, path),
                     ufw_sets.render_block(text, mine, family, path))
    return change


def _write_twice(change, path, now, first, last):
    """Adds the writes of one file: ``first`` before the rules change, ``last`` after, each only
    when it differs from what is there by then."""
    if first != now:
        change.files.append((path, first))
    if last != first:
        change.files_after.append((path, last))


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

    @staticmethod
    def _read(path):
        try:
            with open(path) as handle:
                return handle.read()
        except (IOError, OSError):
            return None

    def read(self):
        defaults = self._read(DEFAULTS)
        families = parse_defaults(defaults) if defaults is not None else FAMILIES
        rules, before = [], {}
        for family in FAMILIES:
            text = self._read(USER_RULES[family])
            if text is not None:
                rules.extend(parse_user_rules(text, family))
            before[family] = before_accepts(self._read(BEFORE_RULES[family]) or '')
        current = {'rules': rules, 'families': families, 'before': before}
        current['ipset'] = self.read_sets()
        current['peer_sets'] = self.peer_sets_mode(current['ipset'])
        return current

    def peer_sets_mode(self, state):
        """'ipset' or 'rules' (ufw_peer_sets; auto is ipset where the ipset command works)."""
        mode = self.options.get('ufw_peer_sets') or 'auto'
        if mode == 'ipset' and not state['sets_known']:
            raise BackendError('ufw_peer_sets is ipset but ipset does not work on this host (%s); install ipset '
                               '(Debian and Ubuntu: apt install ipset) or choose ufw_peer_sets: rules; nothing was '
                               'changed' % state['sets_error'])
        return 'ipset' if mode == 'ipset' or (mode == 'auto' and state['sets_known']) else 'rules'

    def read_sets(self):
        """What the peer sets' side holds (see ufw_sets.py): the block of each after rules file,
        the running rules of the collection's shape, its ipsets (``sets_known`` False when they
        cannot be listed), the saved sets, before.init and the ownership record."""
        state = {'file_rules': {}, 'after_text': {}, 'running_rules': {}, 'sets': {}, 'sets_known': False}
        for family in FAMILIES:
            path = ufw_sets.AFTER_RULES[family]
            text = self._read(path)
            state['after_text'][family] = text
            state['file_rules'][family] = ufw_sets.parse_block(text, family, path) if text is not None else []
            state['running_rules'][family] = []
            for chain in (ufw_sets.CHAINS[family], ufw_sets.FORWARD_CHAINS[family]):
                argv = [ufw_sets.IPTABLES[family], '-S', chain]
                rc, out, err = self.run_command(argv, check=False)
                if rc != 0 and not (family == 'ipv6' and 'No chain' in err):
                    raise BackendError('%s failed (rc=%d): %s' % (' '.join(argv), rc, (err or out).strip()))
                state['running_rules'][family].extend(ufw_sets.running_rules(out, family) if rc == 0 else [])
        if shutil.which('ipset'):
            rc, out, err = self.run_command(['ipset', 'save'], check=False)
            state['sets_known'] = rc == 0
            state['sets_error'] = (err or out).strip() or 'rc=%d' % rc
            state['sets'] = ufw_sets.parse_ipset_save(out) if rc == 0 else {}
        else:
            state['sets_error'] = 'no ipset command'
        saved = self._read(ufw_sets.SETS_FILE)
        state['sets_file'] = saved
        state['saved_sets'] = ufw_sets.parse_sets_file(saved) if saved else {}
        state['before_init'] = self._read(ufw_sets.BEFORE_INIT)
        state['before_init_executable'] = os.access(ufw_sets.BEFORE_INIT, os.X_OK)
        state['record'] = self.load_state()
        return state

    def note(self, message):
        if message not in self.messages:
            self.messages.append(message)

    def compare(self, desired, current, prune):
        families = current['families']
        state = current.get('ipset')
        use_sets = state is not None and current.get('peer_sets') == 'ipset'
        rest, set_needs, set_members, skipped_v6 = split_desired(desired, families, use_sets)
        needs, notes = desired_needs(rest, families, current['before'], skipped_v6)
        for message in notes:
            self.note(message)
        if state is not None and not use_sets and (self.options.get('ufw_peer_sets') or 'auto') == 'auto':
            count = sum(1 for key in needs if key[5] not in ('%s:any' % OWNER, INTERFACE_COMMENT))
            if count:
                self.note('ufw without ipset (%s): %d rules of ufw\'s own for the peer sets, one per source and port '
                          'group; install ipset (Debian and Ubuntu: apt install ipset) so that each peer set is one '
                          'set matched by a few rules (ufw_peer_sets: auto)' % (state['sets_error'], count))
        to_add, to_remove, replaced = diff_rules(needs, current['rules'], prune)
        added = [rule.text() for rule in to_add]
        removed = [rule.text() for rule in to_remove]
        sets, set_rules = None, []
        if state is not None:
            dnat = families if desired.trusted_interfaces else ()
            sets = plan_sets(set_needs, set_members, state, prune, dnat=dnat)
            added += sets.added
            removed += sets.removed
            if not sets.empty and not (sets.added or sets.removed):
                added.append('peer sets brought in line with their saved state (%s, %s)'
                             % (ufw_sets.SETS_FILE, ', '.join(sorted(ufw_sets.AFTER_RULES.values()))))
            set_rules = [(rule, sets.targets[rule.set_name]) for rule in sets.final]
            if sets.empty:
                sets = None
        change = Change(added=added, removed=removed, operations=commands(to_add, to_remove, replaced))
        change.rules = (to_add, to_remove)
        change.sets = sets
        change.set_rules = set_rules
        return change

    def admissions_after(self, current, change, client):
        """What admits TCP traffic after ``change``: ufw's default incoming policy, the user
        rules that stay and those added (incoming on every interface), before.rules accepts."""
        policy = parse_input_policy(self._read(DEFAULTS) or '')
        if policy == 'ACCEPT':
            return [Admission(None, None, 'ufw default incoming policy ACCEPT')]
        to_add, to_remove = getattr(change, 'rules', ((), ()))
        removed = set(to_remove)
        rules = [rule.rule for rule in current['rules'] if rule.allows and rule.kind == 'in' and rule.rule not in removed]
        # Rules "in on IFACE" (the CNI's devices) do not admit a client on the node network.
        rules.extend(rule for rule in to_add if rule.kind == 'in' and not rule.interface)
        found = []
        for rule in rules:
            if rule.protocol not in ('tcp', 'any') or rule.destination not in ANYONE_BY_FAMILY.values():
                continue
            sources = None if rule.source in ('any', None) else [rule.source]
            found.append(Admission(sources, parse_ports(rule.ports), 'ufw rule %s' % rule.text()))
        for family in FAMILIES:
            for protocol, source, _icmp in current['before'].get(family, ()):
                if protocol in ('tcp', 'all'):
                    found.append(Admission([source], None, 'ufw before rules: %s from %s' % (protocol, source)))
        for rule, members in getattr(change, 'set_rules', ()):
            if rule.protocol == 'tcp' and members:
                found.append(Admission(sorted(members), parse_ports(rule.ports), 'ufw after rules: %s' % rule.text()))
        return found

    def exposures(self, current):
        """Everything ufw admits incoming (exposure entries): the default incoming policy,
        every allowing user rule (the collection's marked owned) and the before rules' accepts."""
        found = []
        policy = parse_input_policy(self._read(DEFAULTS) or '')
        if policy == 'ACCEPT':
            found.append(exposure('all', '', None, 'ufw default incoming policy ACCEPT', scope='zone'))
        for rule in current['rules']:
            if rule.action.split('_')[0] not in ('allow', 'limit') or rule.kind != 'in' or not rule.direction.startswith('in'):
                continue
            what = 'ufw rule %s' % rule.rule.text()
            if rule.owned and rule.interface:
                # The collection's trust of a CNI device: everything arriving on it, from anyone.
                found.append(on_interface(exposure('all', '', None, what, owned=True), rule.interface))
                continue
            if rule.apps != ('', ''):
                what += ' (application %s)' % (rule.apps[0] or rule.apps[1])
            sources = None if rule.source in ('any', None) or rule.source in ANYONE_BY_FAMILY.values() else [rule.source]
            protocols = ('tcp', 'udp') if rule.protocol == 'any' and rule.ports != 'any' else (rule.protocol,)
            for protocol in protocols:
                for span in parse_ports(rule.ports) if rule.ports != 'any' else [None]:
                    port = '' if span is None else format_port(span)
                    found.append(exposure('all' if protocol == 'any' else protocol, port, sources, what,
                                          owned=rule.owned))
        for family in FAMILIES:
            found.extend(before_exposures(self._read(BEFORE_RULES[family]) or '', family))
        state = current.get('ipset')
        for family in FAMILIES if state else ():
            for rule in state['running_rules'].get(family, []):
                if not isinstance(rule, ufw_sets.SetRule):
                    continue  # the DNAT line: forwarded traffic, nothing incoming
                # Members that cannot be read count as everyone: over-stated, never hidden.
                have = state['sets'].get(rule.set_name)
                members = sorted(have[1]) if have is not None else None
                for span in parse_ports(rule.ports) if rule.ports != 'any' else [None]:
                    found.append(exposure(rule.protocol, '' if span is None else format_port(span), members,
                                          'ufw after rules: %s' % rule.text(), owned=True))
        return found

    def apply(self, change):
        """Peer sets and their rules first, then ufw's own commands, then what goes of the sets."""
        sets = getattr(change, 'sets', None)
        if sets is not None:
            self.apply_sets_before(sets)
        self.apply_commands(change)
        if sets is not None:
            self.apply_sets_after(sets)

    def apply_sets_before(self, sets):
        """Recorded; leftover temporary sets destroyed; the sets created, or filled and swapped
        in; the saved sets, before.init and the after rules written (in that order, so that a
        reboot between two writes finds every set the after rules name); the rules inserted
        first into the running after-input chains."""
        record = dict(self.load_state(), ipsets=sets.record)
        if sets.make_executable:
            record['made_executable'] = True
        self.save_state(record)
        for name in sets.leftovers:
            self.run_command(['ipset', 'destroy', name])
        if sets.restore:
            self.run_command(['ipset', 'restore'], data=ufw_sets.restore_script(sets.restore))
        for path, text in sets.files:
            if path == ufw_sets.SETS_FILE:
                write_file(path, text)
        if sets.hook is not None:
            write_file(ufw_sets.BEFORE_INIT, sets.hook, executable=True)
        for path, text in sets.files:
            if path != ufw_sets.SETS_FILE:
                write_file(path, text)
        for rule in sets.insert:
            self.run_command([ufw_sets.IPTABLES[rule.family], '-I', rule.chain, '1'] + rule.spec())

    def apply_sets_after(self, sets):
        """Once ufw's own commands ran: the rules that go deleted, their sets destroyed, the
        files written as they stay, the restore block taken out when no set is left."""
        for rule in sets.delete:
            self.run_command([ufw_sets.IPTABLES[rule.family], '-D', rule.chain] + rule.spec())
        for name in sets.destroy:
            self.run_command(['ipset', 'destroy', name])
        for path, text in sorted(sets.files_after, key=lambda item: item[0] == ufw_sets.SETS_FILE):
            write_file(path, text)
        record = dict(self.load_state(), ipsets=sets.record_after)
        if sets.hook_after is not None:
            write_file(ufw_sets.BEFORE_INIT, sets.hook_after, executable=False if sets.remove_execute else None)
            record.pop('made_executable', None)
        if record.get('ipsets') or record.get('made_executable'):
            self.save_state(record)
        elif os.path.exists(self.state_path()):
            os.unlink(self.state_path())

    def apply_commands(self, change):
        """ufw's own commands, in order: adds first, then deletes (each reloads ufw's user chains)."""
        if not change.operations:
            return
        script = shutil.which('ufw')
        interpreter = ufw_interpreter(script)
        if interpreter:
            rc, out, err = self.run_command([interpreter, '-c', BATCH_PROGRAM, script], check=False,
                                            data=json.dumps(change.operations))
            lines = [line for line in out.splitlines() if line.strip()]
            if lines[:1] == ['ready']:
                result = _batch_result(lines[-1])
                if rc == 0 and result and not result['failure'] and result['done'] == len(change.operations):
                    return
                if result and result['failure']:
                    failure = result['failure']
                    raise BackendError('%s failed: %s' % (' '.join(failure['argv']), failure['error']))
                raise BackendError('ufw stopped after %s of %d commands (rc=%d): %s'
                                   % (result['done'] if result else 'an unknown number', len(change.operations),
                                      rc, (err or out).strip()[-2000:]))
            reason = ((err or out).strip().splitlines() or ['no output'])[-1]
            self.note('ufw commands ran one process each: ufw\'s Python frontend could not be loaded (%s)' % reason)
        for argv in change.operations:
            self.run_command(argv)


def on_interface(entry, interface):
    """An exposure entry scoped to the interface the traffic arrives on."""
    entry['interfaces'] = [interface]
    return entry


def write_file(path, text, executable=None):
    """Replaces ``path`` (the file a link points to) by ``text`` at once (None removes it),
    keeping its mode and owner; ``executable`` True adds the execute bits of whoever may read
    it, False takes them away."""
    path = os.path.realpath(path)
    if text is None:
        if os.path.lexists(path):
            os.unlink(path)
        return
    try:
        info = os.stat(path)
        mode, owner = stat.S_IMODE(info.st_mode), (info.st_uid, info.st_gid)
    except OSError:
        mode, owner = 0o640, None
    if executable:
        mode |= (mode & 0o444) >> 2
    elif executable is False:
        mode &= ~0o111
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix='.kubeports.')
    try:
        with os.fdopen(handle, 'w') as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        if owner is not None:
            os.chown(temporary, owner[0], owner[1])
        os.rename(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def ufw_interpreter(path):
    """The Python interpreter of the ufw script (its "#!" line), or None when it is no Python script."""
    try:
        with open(path, 'rb') as handle:
            first = handle.readline(256).decode('utf-8', 'replace')
    except (IOError, OSError, TypeError):
        return None
    words = first[2:].split() if first.startswith('#!') else []
    if words and words[0].endswith('/env') and len(words) > 1:
        words = [shutil.which(words[1]) or '']
    if words and 'python' in words[0].rsplit('/', 1)[-1] and shutil.which(words[0]):
        return words[0]
    return None


def _batch_result(line):
    try:
        result = json.loads(line)
    except ValueError:
        return None
    return result if isinstance(result, dict) and 'done' in result else None
