# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ufw peer sets: each peer set is one kernel ipset per IP family (``kubeports-<set>-v4``,
``-v6``), matched by a few iptables rules in a marked block first in ufw's after-input chain
(``/etc/ufw/after.rules``, ``after6.rules``; the place ufw's documentation gives for rules
run after the ufw command line's own), so the number of rules does not grow with the peers.

- Members change at runtime by filling a temporary set and swapping it in (no moment without
  members); the rules in the block change only when a port or a set comes or goes, and then
  the running chain gets the same rules inserted or deleted: ufw is never reloaded.
- The sets are saved to ``/etc/ufw/kubeports.ipsets`` and restored by a marked block in
  ``/etc/ufw/before.init start`` (ufw runs it before it loads its rules files, at boot and on
  every reload): every set is created on its own, then filled, so a set whose members cannot
  be restored is there empty and the after rules still load. Without the ipset command the
  after rules cannot load; the hook says so in the system log.
- What is the collection's: the lines between the block's markers, running rules of exactly
  the shape written here, and the sets its record lists.
- The same block holds, where the host trusts the CNI's devices, one line in the after-forward
  chain that accepts forwarded connections the host itself DNAT'd (kube-proxy's NodePorts and
  external IPs to pods on other nodes): ufw's forward policy stays DROP, its CLI cannot match a
  conntrack state, and kube-proxy's nftables mode (or a flushed KUBE-FORWARD) accepts nothing
  in ufw's FORWARD chain. After ufw's own route rules, so a route deny rule of the user's comes
  first; ufw loads it at boot with the file (no ipset needed).

Pure functions: parsing and rendering. The ufw backend (ufw.py) reads and writes.
Runs on the managed host: standard library only.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import ipaddress
import re
import shlex

from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import OWNER, BackendError

AFTER_RULES = {'ipv4': '/etc/ufw/after.rules', 'ipv6': '/etc/ufw/after6.rules'}
CHAINS = {'ipv4': 'ufw-after-input', 'ipv6': 'ufw6-after-input'}
FORWARD_CHAINS = {'ipv4': 'ufw-after-forward', 'ipv6': 'ufw6-after-forward'}
DNAT_COMMENT = '%s:dnat' % OWNER
IPTABLES = {'ipv4': 'iptables', 'ipv6': 'ip6tables'}
SETS_FILE = '/etc/ufw/kubeports.ipsets'
BEFORE_INIT = '/etc/ufw/before.init'
BEGIN = '# BEGIN kubeports.firewall peer sets (managed, do not edit)'
END = '# END kubeports.firewall peer sets'
HOOK_BEGIN = '    # BEGIN kubeports.firewall: restore the peer sets that the after rules match'
HOOK_END = '    # END kubeports.firewall'
# Protocols a set rule is written for (the others stay with ufw's own rules or its before rules).
SET_PROTOCOLS = ('tcp', 'udp', 'esp', 'gre')
IPSET_FAMILY = {'ipv4': 'inet', 'ipv6': 'inet6'}
SUFFIX = {'ipv4': 'v4', 'ipv6': 'v6'}
TEMPORARY_SUFFIX = {'ipv4': 'n4', 'ipv6': 'n6'}
_OWN_SET = re.compile(r'^%s-(?P<id>[A-Za-z0-9_-]+)-(?P<suffix>v4|v6|n4|n6)$' % OWNER)


def set_name(identifier, family, temporary=False):
    return '%s-%s-%s' % (OWNER, identifier, (TEMPORARY_SUFFIX if temporary else SUFFIX)[family])


def own_set(name):
    """(identifier, family, temporary) of a set name this module writes, or None."""
    match = _OWN_SET.match(name)
    if not match:
        return None
    suffix = match.group('suffix')
    return match.group('id'), 'ipv4' if suffix.endswith('4') else 'ipv6', suffix.startswith('n')


class SetRule(collections.namedtuple('SetRule', 'family protocol ports identifier')):
    """One rule of the block: ``protocol`` from the members of peer set ``identifier`` (its
    ``family`` set), to ``ports`` (iptables multiport notation "2379,30000:32767", or "any")."""

    __slots__ = ()

    @property
    def set_name(self):
        return set_name(self.identifier, self.family)

    @property
    def chain(self):
        return CHAINS[self.family]

    @property
    def comment(self):
        return '%s:%s' % (OWNER, self.identifier)

    def spec(self):
        """The rule's match and target, as iptables arguments (after "-A <chain>")."""
        words = ['-p', self.protocol]
        if self.ports != 'any':
            words += ['-m', 'multiport', '--dports', self.ports]
        words += ['-m', 'set', '--match-set', self.set_name, 'src', '-m', 'comment', '--comment', self.comment,
                  '-j', 'ACCEPT']
        return words

    def line(self):
        return ' '.join(['-A', self.chain] + self.spec())

    def text(self):
        """The rule as the diff shows it."""
        ports = '' if self.ports == 'any' else ' port %s' % self.ports
        return 'allow %s from ipset %s%s (%s, %s)' % (self.protocol, self.set_name, ports, self.comment,
                                                      AFTER_RULES[self.family].rsplit('/', 1)[-1])


class DnatRule(collections.namedtuple('DnatRule', 'family')):
    """The block's line in the after-forward chain of ``family``: accepts the forwarded
    connections this host DNAT'd itself (conntrack state DNAT: kube-proxy's NodePorts and
    external IPs to pods); replies pass ufw's own RELATED,ESTABLISHED rule."""

    __slots__ = ()

    @property
    def chain(self):
        return FORWARD_CHAINS[self.family]

    def spec(self):
        return ['-m', 'conntrack', '--ctstate', 'DNAT', '-m', 'comment', '--comment', DNAT_COMMENT, '-j', 'ACCEPT']

    def line(self):
        return ' '.join(['-A', self.chain] + self.spec())

    def text(self):
        where = AFTER_RULES[self.family].rsplit('/', 1)[-1]
        return 'route allow connections this host DNAT\'d (%s, %s)' % (DNAT_COMMENT, where)


def block_order(rules):
    """The block's rules in the order they are written: the peer sets' rules, then the DNAT lines."""
    rules = list(rules)
    return sorted(rule for rule in rules if isinstance(rule, SetRule)) + \
        sorted(rule for rule in rules if isinstance(rule, DnatRule))


def parse_rule(words, family):
    """The SetRule (or DnatRule) of an iptables rule (words of ``-A <chain> ...``), or None when
    it is not exactly what ``SetRule.spec`` (``DnatRule.spec``) writes."""
    if words[:2] == ['-A', FORWARD_CHAINS[family]]:
        rule = DnatRule(family)
        return rule if words[2:] == rule.spec() else None
    if words[:3] != ['-A', CHAINS[family], '-p'] or len(words) < 4 or '--match-set' not in words[:-1]:
        return None
    owned = own_set(words[words.index('--match-set') + 1])
    if owned is None or owned[1] != family or owned[2] or words[3] not in SET_PROTOCOLS:
        return None
    ports = words[words.index('--dports') + 1] if '--dports' in words[:-1] else 'any'
    rule = SetRule(family, words[3], ports, owned[0])
    return rule if words[2:] == rule.spec() else None


def split_line(line):
    try:
        return shlex.split(line)
    except ValueError:
        return []


def running_rules(text, family):
    """The collection's rules among ``iptables -S <chain>`` output lines."""
    found = []
    for line in text.splitlines():
        rule = parse_rule(split_line(line), family)
        if rule is not None:
            found.append(rule)
    return found


def marked_span(lines, begin, end, path):
    """(first, last) index of the lines ``begin`` and ``end`` (as stripped) enclosing a block of
    the collection's, or None when there is none; a damaged block is an error naming the file."""
    starts = [index for index, line in enumerate(lines) if line.strip() == begin.strip()]
    ends = [index for index, line in enumerate(lines) if line.strip() == end.strip()]
    if not starts and not ends:
        return None
    if len(starts) == 1 and len(ends) == 1 and starts[0] < ends[0]:
        return starts[0], ends[0]
    raise BackendError('%s: the kubeports.firewall block is damaged (%d BEGIN and %d END markers); restore the file '
                       'or remove the block, then run again' % (path, len(starts), len(ends)))


def parse_block(text, family, path):
    """The collection's rules in an after rules file: [SetRule and DnatRule] of its marked block ([]
    without one). A block that is not closed, or holds a line of another shape, is an error naming the file."""
    lines = text.splitlines()
    span = marked_span(lines, BEGIN, END, path)
    found = []
    for line in lines[span[0] + 1:span[1]] if span else ():
        if not line.strip() or line.strip().startswith('#'):
            continue
        rule = parse_rule(split_line(line), family)
        if rule is None:
            raise BackendError('%s: the kubeports.firewall block holds a line it did not write: %s; remove it from the '
                               'block (rules of your own go outside it)' % (path, line.strip()))
        found.append(rule)
    return found


def render_block(text, rules, family, path):
    """``text`` of an after rules file with the block holding ``rules`` (no block when empty):
    replaced where it is, else placed before the first rule of the filter table (so that no
    rule of ufw's or the user's there, such as ufw's skips to the policy, comes first)."""
    parse_block(text, family, path)
    lines = text.splitlines()
    for chain in sorted(set(rule.chain for rule in rules if isinstance(rule, DnatRule))):
        if not any(line.strip().startswith(':%s ' % chain) for line in lines):
            raise BackendError('%s does not declare the chain %s (":%s - [0:0]" among the required lines of ufw\'s '
                               'after rules), where forwarded connections this host DNAT\'d are accepted; restore '
                               'ufw\'s own file' % (path, chain, chain))
    span = marked_span(lines, BEGIN, END, path)
    if span:
        del lines[span[0]:span[1] + 1]
        where = span[0]
    else:
        where = _first_filter_rule(lines, path)
    if rules:
        lines[where:where] = [BEGIN] + [rule.line() for rule in block_order(rules)] + [END]
    return '\n'.join(lines) + '\n'


def _first_filter_rule(lines, path):
    """Index of the first rule (or else the COMMIT) of the ``*filter`` table."""
    table = None
    for index, line in enumerate(lines):
        word = line.strip()
        if word.startswith('*'):
            table = word[1:]
        elif table == 'filter' and (word == 'COMMIT' or word.startswith('-')):
            return index
        elif word == 'COMMIT':
            table = None
    raise BackendError('%s has no *filter table ending in COMMIT, where ufw\'s after rules belong; restore it '
                       '(or use ufw_peer_sets: rules)' % path)


def parse_ipset_save(text):
    """The collection's sets in ``ipset save`` output: {name: (family, frozenset of CIDRs)}."""
    sets = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) < 3 or own_set(words[1]) is None:
            continue
        if words[0] == 'create':
            family = 'ipv6' if 'inet6' in words[3:] else 'ipv4'
            sets.setdefault(words[1], (family, set()))
        elif words[0] == 'add' and words[1] in sets:
            sets[words[1]][1].add(str(ipaddress.ip_network(words[2], strict=False)))
    return dict((name, (family, frozenset(members))) for name, (family, members) in sets.items())


def _create(name, family, members):
    return 'create %s hash:net family %s maxelem %d' % (name, IPSET_FAMILY[family], max(65536, 2 * len(members)))


def render_sets_file(sets):
    """The saved sets, in ``ipset save`` format: {name: (family, members)}."""
    lines = ['# kubeports.firewall peer sets, restored by %s before ufw loads its rules' % BEFORE_INIT]
    for name in sorted(sets):
        family, members = sets[name]
        lines.append(_create(name, family, members))
        lines.extend('add %s %s' % (name, member) for member in sorted(members, key=_member_key))
    return '\n'.join(lines) + '\n'


def parse_sets_file(text):
    return parse_ipset_save('\n'.join(line for line in text.splitlines() if not line.startswith('#')))


def _member_key(member):
    network = ipaddress.ip_network(member)
    return network.version, network.network_address, network.prefixlen


def restore_script(changes):
    """``ipset restore`` input for {name: (family, members, exists)}: a new set is created and
    filled, an existing one gets a filled temporary set swapped in (never flushed in place)."""
    lines = []
    for name in sorted(changes):
        family, members, exists = changes[name]
        identifier, _family, _temporary = own_set(name)
        target = set_name(identifier, family, temporary=True) if exists else name
        lines.append(_create(target, family, members) + ' -exist')
        lines.append('flush %s' % target)
        lines.extend('add %s %s' % (target, member) for member in sorted(members, key=_member_key))
        if exists:
            lines.append('swap %s %s' % (target, name))
            lines.append('destroy %s' % target)
    return '\n'.join(lines) + '\n'


def hook_lines(sets_file=SETS_FILE):
    """The block of before.init's start case: creates each saved set on its own, then fills
    them (one member at a time if the whole fails), logs what fails, and never fails itself
    (a failing before.init stops ufw's reload)."""
    log = 'logger -t kubeports.firewall'
    return [
        HOOK_BEGIN,
        '    if [ -s %s ] && command -v ipset >/dev/null 2>&1; then' % sets_file,
        "        grep '^create ' %s | while read -r line; do" % sets_file,
        '            ipset -exist $line 2>/dev/null || %s "cannot create: $line" || true' % log,
        '        done',
        "        grep '^add ' %s | ipset -exist restore 2>/dev/null || grep '^add ' %s | while read -r line; do"
        % (sets_file, sets_file),
        '            ipset -exist $line 2>/dev/null || %s "cannot restore: $line" || true' % log,
        '        done',
        '    elif [ -s %s ]; then' % sets_file,
        '        %s "no ipset command: the peer sets of %s are not restored" || true' % (log, sets_file),
        '    fi',
        HOOK_END,
    ]


def hook_span(text, path=BEFORE_INIT):
    """(first, last) line index of the restore block in before.init's text, or None."""
    return marked_span(text.splitlines(), HOOK_BEGIN, HOOK_END, path)


# The lines of ufw's own before.init: executable, it runs nothing else.
_STOCK_INIT = ('#!/bin/sh', 'set -e', 'case "$1" in', 'start)', 'stop)', 'status)', 'flush-all)', ';;', '*)', 'esac')


def own_commands(text):
    """The lines of before.init that would run something beyond ufw's own skeleton and the
    restore block (comments, the cases, their ";;" and the usage "echo" lines)."""
    lines = text.splitlines()
    span = hook_span(text)
    if span is not None:
        del lines[span[0]:span[1] + 1]
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith('#')
            and line.strip() not in _STOCK_INIT and not line.strip().startswith('echo ')]


def with_hook(text, path=BEFORE_INIT):
    """before.init's text with the restore block first in its ``start)`` case (as it is when present)."""
    lines = text.splitlines()
    span = hook_span(text, path)
    if span is not None:
        if lines[span[0]:span[1] + 1] == hook_lines():
            return text
        del lines[span[0]:span[1] + 1]
    starts = [index for index, line in enumerate(lines) if line.strip() == 'start)']
    if len(starts) != 1:
        raise BackendError('%s has %d "start)" cases where exactly one is needed to restore the peer sets at boot; '
                           'restore ufw\'s own before.init, or use ufw_peer_sets: rules' % (path, len(starts)))
    lines[starts[0] + 1:starts[0] + 1] = hook_lines()
    return '\n'.join(lines) + '\n'


def without_hook(text):
    lines = text.splitlines()
    span = hook_span(text)
    if span is None:
        return text
    del lines[span[0]:span[1] + 1]
    return '\n'.join(lines) + '\n'
