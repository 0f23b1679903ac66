# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SuSEfirewall2 (SLES 12 era): tokens in /etc/sysconfig/SuSEfirewall2.

- Open to everyone: FW_SERVICES_EXT_TCP / FW_SERVICES_EXT_UDP (ports, ranges "a:b"),
  FW_SERVICES_EXT_IP for protocol-only rules (esp, gre, icmp, and IPIP as "4").
- Restricted to a peer set: FW_SERVICES_ACCEPT_EXT, "net,proto[,dport]" per member.
- Trusted networks (protocol "all": pods, services): FW_TRUSTED_NETS for traffic to the
  host, FW_FORWARD "net,0/0" and "0/0,net" for forwarded traffic, and FW_ROUTE="yes"
  (its earlier value is put back when no rule needs it any more).
- Trusted interfaces (the CNI's devices, DesiredState.trusted_interfaces): a custom rules
  file of the collection's own (CUSTOM_RULES, named in FW_CUSTOMRULES, whose earlier value is
  put back) with SuSEfirewall2's fw_custom_before_port_handling hook: everything arriving on
  the devices is accepted to the host and forwarded, replies to it are forwarded, and so are
  connections the host DNAT'd (kube-proxy); FW_ROUTE="yes" as for trusted networks. Zones
  cannot say this on every SuSEfirewall2 version (docs/backends.md, "Forwarded pod traffic").

The file is edited in place: only the values of those variables change, and in them only
the collection's own tokens (recorded in <state_dir>/susefirewall2.json); every other token,
comment, quote style and line layout stays as the user wrote it.

Applying writes the file atomically, then runs "SuSEfirewall2 start" when SuSEfirewall2 is
running. That start flushes every iptables table (kube-proxy and CNI chains included), so on
a host already running Kubernetes it is refused, before anything is written, unless
allow_restart is set. A stopped SuSEfirewall2 is left stopped: the file is written and the
result's messages say so.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import ipaddress
import os
import re
import shutil
import socket
import tempfile

from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import (
    BUILTIN_CHAINS, Admission, Backend, BackendError, Change, exposure)
from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import (
    ANYONE_BY_FAMILY, FAMILY_OF_PROTOCOL, format_port, parse_port, parse_ports)

CONFIG = '/etc/sysconfig/SuSEfirewall2'
COMMAND = 'SuSEfirewall2'
TOKEN_VARIABLES = ('FW_SERVICES_EXT_TCP', 'FW_SERVICES_EXT_UDP', 'FW_SERVICES_EXT_IP',
                   'FW_SERVICES_ACCEPT_EXT', 'FW_TRUSTED_NETS', 'FW_FORWARD')
ROUTE = 'FW_ROUTE'
CUSTOM = 'FW_CUSTOMRULES'
# The collection's custom rules file (in SuSEfirewall2's SCRIPTSDIR); only the collection writes it.
CUSTOM_RULES = '/etc/sysconfig/scripts/SuSEfirewall2-kubeports'
CUSTOM_MARK = '# kubeports.firewall: the CNI\'s devices trusted'
_CUSTOM_INTERFACES = re.compile(r'^kubeports_trusted_interfaces="([^"]*)"$', re.M)
# IP protocols as iptables takes them. IPIP is IP protocol 4 ("ipencap" or "ipv4" in
# /etc/protocols, depending on the distribution); "ipip" there is protocol 94.
IP_PROTOCOLS = {'ipip': '4', 'gre': 'gre', 'esp': 'esp', 'icmp': 'icmp', 'icmpv6': 'ipv6-icmp'}
IPTABLES_PROTOCOL_NAMES = {'ipencap': '4', 'ip-encap': '4', 'ipv4': '4', 'icmpv6': 'ipv6-icmp', '58': 'ipv6-icmp',
                           '1': 'icmp', '47': 'gre', '50': 'esp', '6': 'tcp', '17': 'udp'}
# Anyone as FW_FORWARD writes it.
FORWARD_ANYONE = {4: '0/0', 6: '::/0'}
_ASSIGNMENT = re.compile(r'^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=', re.M)
_UNQUOTED = re.compile(r'[^\s#;]*')
# Signs that Kubernetes runs on the host (SuSEfirewall2 start would flush its chains).
KUBERNETES_PATHS = ('/etc/kubernetes', '/var/lib/kubelet/config.yaml', '/etc/rancher/k3s', '/etc/rancher/rke2')
KUBERNETES_PROCESSES = ('kubelet', 'k3s', 'k3s-server', 'k3s-agent', 'rke2')
# Chains SuSEfirewall2 creates itself (input_ext, forward_int, reject_func...).
OWN_CHAINS = re.compile(r'^(input|forward)_(ext|int|dmz)$|^reject_func$')

Assignment = collections.namedtuple('Assignment', 'name quote start end value')
Assignment.__doc__ = """A variable's last assignment: ``value`` is text[start:end] (inside the quotes)."""


def parse_config(text):
    """{variable: Assignment} of a sysconfig file. Double- or single-quoted values may span
    lines; an unquoted value ends at whitespace or "#". The last assignment of a name wins,
    as in the shell that sources the file."""
    found, position = {}, 0
    while True:
        match = _ASSIGNMENT.search(text, position)
        if not match:
            return found
        name, start = match.group(1), match.end()
        quote = text[start:start + 1]
        if quote in ('"', "'"):
            index = start + 1
            while index < len(text) and text[index] != quote:
                index += 2 if quote == '"' and text[index] == '\\' else 1
            if index >= len(text):
                line = text.count('\n', 0, start) + 1
                raise BackendError('cannot parse %s: the value of %s (line %d) has no closing quote; fix the file'
                                   % (CONFIG, name, line))
            found[name] = Assignment(name, quote, start + 1, index, text[start + 1:index])
            position = index + 1
        else:
            end = _UNQUOTED.match(text, start).end()
            found[name] = Assignment(name, '', start, end, text[start:end])
            position = end


def tokens_of(text, name):
    """The whitespace-separated tokens of a variable ([] when it is not set)."""
    found = parse_config(text).get(name)
    return found.value.split() if found else []


def edit_value(value, remove=(), add=()):
    """``value`` with the last occurrence of each ``remove`` token taken out and ``add``
    appended, keeping the rest as written: a multi-line value gets one token per line (with
    the indentation of its last token line, before a closing line of its own), a one-line
    value a space-separated token. A line left empty by a removal goes."""
    lines = value.split('\n')
    for token in remove:
        for number in range(len(lines) - 1, -1, -1):
            words = re.split(r'(\s+)', lines[number])
            places = [index for index, word in enumerate(words) if word == token]
            if not places:
                continue
            index = places[-1]
            if index + 1 < len(words) and (index < 2 or words[index - 2] == ''):
                del words[index:index + 2]      # first on its line: the space after it goes
            elif index > 0:
                del words[index - 1:index + 1]  # otherwise the space before it
            else:
                del words[index]
            edited = ''.join(words)
            if len(lines) > 1 and not edited.strip():
                del lines[number]
            else:
                lines[number] = edited
            break
    if add:
        if len(lines) > 1:
            indent = ''
            for line in reversed(lines):
                if line.strip():
                    indent = line[:len(line) - len(line.lstrip())]
                    break
            place = len(lines) - 1 if not lines[-1].strip() else len(lines)
            lines[place:place] = [indent + token for token in add]
        else:
            lines[0] = (lines[0].rstrip() + ' ' if lines[0].strip() else '') + ' '.join(add)
    return '\n'.join(lines)


def edit_config(text, edits):
    """The file with each variable of ``edits`` ({name: (remove, add)} or {name: value}) set
    in place; variables not in the file are appended. Everything else stays byte for byte."""
    found = parse_config(text)
    splices, appended = [], []
    for name in sorted(edits):
        edit = edits[name]
        if name in found:
            old = found[name]
            new = edit if not isinstance(edit, tuple) else edit_value(old.value, *edit)
            if new == old.value:
                continue
            if old.quote:
                splices.append((old.start, old.end, new))
            else:
                splices.append((old.start, old.end, '"%s"' % new))
        else:
            new = edit if not isinstance(edit, tuple) else ' '.join(edit[1])
            appended.append('%s="%s"' % (name, new))
    for start, end, new in sorted(splices, reverse=True):
        text = text[:start] + new + text[end:]
    if appended:
        if text and not text.endswith('\n'):
            text += '\n'
        text += '\n'.join(appended) + '\n'
    return text


def _network(text):
    if text == FORWARD_ANYONE[4]:
        return ANYONE_BY_FAMILY['ipv4']
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return text


def _port(text):
    """SuSEfirewall2 writes ranges "30000:32767"."""
    try:
        low, high = parse_port(text.replace(':', '-'), 'port')
    except PlanError:
        return text
    return '%d:%d' % (low, high) if high != low else str(low)


def canonical_token(name, token):
    """A canonical form of a token, so that a user's "192.0.2.11,TCP,02379" counts as the
    collection's "192.0.2.11/32,tcp,2379"."""
    if name in ('FW_SERVICES_EXT_TCP', 'FW_SERVICES_EXT_UDP'):
        return _port(token)
    if name == 'FW_SERVICES_EXT_IP':
        return IPTABLES_PROTOCOL_NAMES.get(token.lower(), token.lower())
    parts = token.split(',')
    networks = 2 if name == 'FW_FORWARD' else 1
    parts[:networks] = [_network(part) for part in parts[:networks]]
    if len(parts) > networks:
        parts[networks] = IPTABLES_PROTOCOL_NAMES.get(parts[networks].lower(), parts[networks].lower())
    parts[networks + 1:networks + 3] = [_port(part) for part in parts[networks + 1:networks + 3]]
    while parts and parts[-1] == '':
        parts.pop()
    return ','.join(parts)


def desired_tokens(desired):
    """({variable: [tokens]}, whether routing must be on) for a DesiredState."""
    tokens = dict((name, []) for name in TOKEN_VARIABLES)
    for protocol, port in sorted(desired.open_to_all):
        if protocol in ('tcp', 'udp'):
            tokens['FW_SERVICES_EXT_%s' % protocol.upper()].append(port.replace('-', ':'))
        elif protocol in IP_PROTOCOLS:
            tokens['FW_SERVICES_EXT_IP'].append(IP_PROTOCOLS[protocol])
        elif protocol == 'all':
            raise BackendError('a rule opens every protocol to everyone; refusing (give it a source set)')
        else:
            raise BackendError('SuSEfirewall2 cannot express %s %s from anyone (FW_SERVICES_EXT_* takes tcp, '
                               'udp and IP protocols); drop the rule with kubeports_drop_rules' % (protocol, port))
    route = False
    for identifier, protocol, port in sorted(desired.restricted):
        members = desired.peer_sets[identifier]
        for cidr in members['ipv4'] + members['ipv6']:
            version = ipaddress.ip_network(cidr).version
            if FAMILY_OF_PROTOCOL.get(protocol, 'ipv%d' % version) != 'ipv%d' % version:
                continue
            if protocol == 'all':
                tokens['FW_TRUSTED_NETS'].append(cidr)
                tokens['FW_FORWARD'].append('%s,%s' % (cidr, FORWARD_ANYONE[version]))
                tokens['FW_FORWARD'].append('%s,%s' % (FORWARD_ANYONE[version], cidr))
                route = True
            elif protocol in ('tcp', 'udp'):
                tokens['FW_SERVICES_ACCEPT_EXT'].append('%s,%s,%s' % (cidr, protocol, port.replace('-', ':')))
            elif protocol in IP_PROTOCOLS:
                tokens['FW_SERVICES_ACCEPT_EXT'].append('%s,%s' % (cidr, IP_PROTOCOLS[protocol]))
            else:
                raise BackendError("SuSEfirewall2 cannot express %s %s from peer set '%s' (FW_SERVICES_ACCEPT_EXT "
                                   "takes tcp, udp and IP protocols); drop the rule with kubeports_drop_rules"
                                   % (protocol, port, members['name']))
    for name in tokens:
        tokens[name] = list(collections.OrderedDict.fromkeys(tokens[name]))
    # Forwarded pod traffic needs routing on (SuSEfirewall2 before 3.6.346 sets ip_forward to 0
    # at every start unless FW_ROUTE is "yes").
    return tokens, route or bool(getattr(desired, 'trusted_interfaces', ()))


def custom_rules_text(interfaces):
    """The collection's custom rules file for trusted ``interfaces`` (sorted, deterministic).

    SuSEfirewall2 sources it (FW_CUSTOMRULES, root-owned and not world-writable) and calls
    fw_custom_before_port_handling after its basic rules (loopback, established) and before it
    dispatches INPUT and FORWARD to the zones' chains and logs what is left as ILL-TARGET or
    ILL-ROUTING. $IPTABLES and $IP6TABLES are its own commands (batch mode, IPv6 off)."""
    return '\n'.join([
        CUSTOM_MARK,
        '# Written by the kubeports.firewall collection, named in FW_CUSTOMRULES of %s;' % CONFIG,
        '# the collection rewrites and removes it (see docs/backends.md, "Forwarded pod traffic").',
        '# Everything arriving on these devices is accepted, to this host and forwarded to any',
        '# interface; replies to it are forwarded, and so are connections this host DNAT\'d',
        '# (kube-proxy\'s NodePorts and external IPs to pods), which SuSEfirewall2 start drops',
        '# until kube-proxy puts its own FORWARD rules back. A trailing + matches any suffix.',
        'kubeports_trusted_interfaces="%s"' % ' '.join(sorted(interfaces)),
        '',
        'fw_custom_before_port_handling() {',
        '    local iptables dev',
        '    [ -n "$kubeports_trusted_interfaces" ] || return 0',
        '    for iptables in "$IPTABLES" "$IP6TABLES"; do',
        '        for dev in $kubeports_trusted_interfaces; do',
        '            $iptables -A INPUT -i "$dev" -j ACCEPT',
        '            $iptables -A FORWARD -i "$dev" -j ACCEPT',
        '            $iptables -A FORWARD -o "$dev" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
        '        done',
        '        $iptables -A FORWARD -m conntrack --ctstate DNAT -j ACCEPT',
        '    done',
        '    true',
        '}',
        ''])


def custom_interfaces(text):
    """The interfaces the collection's custom rules file trusts ([] when there is none);
    BackendError when a file at its path is not the collection's."""
    if text is None:
        return []
    match = _CUSTOM_INTERFACES.search(text)
    if not text.startswith(CUSTOM_MARK) or not match:
        raise BackendError('%s exists but was not written by the collection (its first line is not "%s"); '
                           'nothing was changed. Move it away: the collection writes its custom rules for the '
                           'CNI\'s devices there' % (CUSTOM_RULES, CUSTOM_MARK))
    return match.group(1).split()


def remove_assignment(text, name):
    """``text`` without the last line that only assigns ``name`` (a line the collection appended)."""
    found = None
    for found in re.finditer(r'^[ \t]*%s=(?:"[^"\n]*"|\'[^\'\n]*\'|[^\s#;]*)[ \t]*(?:\n|$)' % re.escape(name),
                             text, re.M):
        pass
    return text if found is None else text[:found.start()] + text[found.end():]


def _routing_on(value):
    """Does FW_ROUTE route IPv4? "yes" (every version) or a list naming IPv4 (3.6.346 and later)."""
    return value == 'yes' or 'IPv4' in [item.strip() for item in (value or '').split(',')]


def load_owned(state):
    """The ownership record, in the current shape (also reads the first cut's flat one)."""
    if 'tokens' in state:
        tokens = state['tokens']
        route_before = state.get('route_before')
    else:
        tokens = dict((name, state[name]) for name in TOKEN_VARIABLES if name in state)
        route_before = state.get('FW_ROUTE_BEFORE')
    owned = {'tokens': dict((name, list(tokens.get(name, []))) for name in TOKEN_VARIABLES)}
    if route_before is not None:
        owned['route_before'] = route_before
    if state.get('interfaces'):
        owned['interfaces'] = sorted(state['interfaces'])
    if 'customrules_before' in state:
        # None: FW_CUSTOMRULES was not in the file (the line the collection appended goes).
        owned['customrules_before'] = state['customrules_before']
    return owned


def _route_value(before):
    """The FW_ROUTE the collection writes: "yes" (IPv4 routing on every version), or the
    user's list of families with IPv4 added (3.6.346 and later read "IPv6" as IPv6 only)."""
    return 'yes' if before in (None, '', 'no') else '%s,IPv4' % before


def diff_config(text, wanted, route, owned, prune, interfaces=(), custom=None):
    """(new text, added, removed, new ownership record). Pure; the unit tests drive it.

    A wanted token already in the file (in any equivalent spelling, the user's or the
    collection's) is not added again. With prune, a token the record says the collection
    added and that is no longer wanted is removed (one occurrence: an identical token the
    user wrote as well stays). FW_ROUTE is set to "yes" while a trusted network needs it and
    put back to the value it had before once none does (with prune).

    ``interfaces`` are the trusted interfaces wanted, ``custom`` the text of the collection's
    custom rules file (None when there is none). The record's ``interfaces`` are what that
    file must trust (without prune, the ones it trusts stay); FW_CUSTOMRULES names the file
    while there are any, and gets its earlier value back once there are none (with prune).
    A FW_CUSTOMRULES of the user's is refused."""
    found = parse_config(text)
    edits, added, removed = {}, [], []
    record = {'tokens': {}}
    for name in TOKEN_VARIABLES:
        current = found[name].value.split() if name in found else []
        mine = list(owned['tokens'].get(name, []))
        want = set(canonical_token(name, token) for token in wanted[name])
        remove = [token for token in mine if prune and token in current and canonical_token(name, token) not in want]
        left = list(current)
        for token in remove:
            left.reverse()
            left.remove(token)
            left.reverse()
        present = set(canonical_token(name, token) for token in left)
        add = [token for token in wanted[name] if canonical_token(name, token) not in present]
        removed.extend('%s %s' % (name, token) for token in remove)
        added.extend('%s %s' % (name, token) for token in add)
        # Ours from now on: what we add, and what we added before that is still there.
        record['tokens'][name] = sorted(set(token for token in mine if token in left) | set(add))
        if remove or add:
            edits[name] = (remove, add)
    custom_now = found[CUSTOM].value.strip() if CUSTOM in found else None
    have = custom_interfaces(custom) if custom_now == CUSTOM_RULES else []
    keep = set(interfaces) if prune else set(interfaces) | set(have)
    if keep:
        route = True
    route_now = found[ROUTE].value.strip() if ROUTE in found else None
    before = owned.get('route_before')
    if route:
        if not _routing_on(route_now):
            value = _route_value(before if before is not None else route_now)
            edits[ROUTE] = value
            added.append('%s %s' % (ROUTE, value))
            record['route_before'] = before if before is not None else (route_now or 'no')
        elif before is not None:
            record['route_before'] = before
    elif before is not None:
        if prune and route_now == _route_value(before):
            edits[ROUTE] = before
            removed.append('%s %s' % (ROUTE, route_now))
        elif route_now == _route_value(before):
            record['route_before'] = before
    _diff_custom(found, owned, prune, sorted(keep), have, edits, added, removed, record)
    new_text = text
    if edits.get(CUSTOM, '') is None:
        del edits[CUSTOM]
        new_text = remove_assignment(new_text, CUSTOM)
    new_text = edit_config(new_text, edits) if edits else new_text
    return new_text, added, removed, record


def _diff_custom(found, owned, prune, keep, have, edits, added, removed, record):
    """FW_CUSTOMRULES and the trusted interfaces of diff_config (its edits, added, removed, record)."""
    custom_now = found[CUSTOM].value.strip() if CUSTOM in found else None
    known = 'customrules_before' in owned
    if keep:
        if custom_now not in (None, '', CUSTOM_RULES):
            raise BackendError(
                '%s is "%s" in %s: SuSEfirewall2 reads one custom rules file, and the collection needs it for the '
                'CNI\'s devices (%s: everything arriving on them accepted and forwarded); nothing was changed. '
                'Empty %s (your hooks can go into %s only by hand, after the collection\'s; see docs/backends.md, '
                '"Forwarded pod traffic"), or set kubeports_pod_interfaces to [] to trust the pod networks by '
                'source instead' % (CUSTOM, custom_now, CONFIG, ', '.join(keep), CUSTOM, CUSTOM_RULES))
        if custom_now != CUSTOM_RULES:
            edits[CUSTOM] = CUSTOM_RULES
            added.append('%s %s' % (CUSTOM, CUSTOM_RULES))
        if known or custom_now != CUSTOM_RULES:
            record['customrules_before'] = owned['customrules_before'] if known else custom_now
    elif known and custom_now == CUSTOM_RULES:
        if prune:
            # None: the collection appended the line; it goes again.
            edits[CUSTOM] = owned['customrules_before']
            removed.append('%s %s' % (CUSTOM, CUSTOM_RULES))
        else:
            record['customrules_before'] = owned['customrules_before']
    added.extend('%s trusts interface %s' % (CUSTOM_RULES, name) for name in keep if name not in have)
    removed.extend('%s trusts interface %s' % (CUSTOM_RULES, name) for name in have if name not in keep)
    if keep:
        record['interfaces'] = keep


def foreign_chains(saved):
    """User chains of iptables-save output that are not SuSEfirewall2's own."""
    chains = re.findall(r'^:(\S+)', saved, re.M)
    return sorted(set(chain for chain in chains if chain not in BUILTIN_CHAINS and not OWN_CHAINS.match(chain)))


def kubernetes_signs(run_command, exists=os.path.exists, proc='/proc'):
    """Why a start of SuSEfirewall2 would destroy state it did not create: Kubernetes on the
    host, or chains of other tools (kube-proxy, CNIs, fail2ban...). [] when there is none."""
    signs = ['%s exists' % path for path in KUBERNETES_PATHS if exists(path)]
    try:
        pids = [entry for entry in os.listdir(proc) if entry.isdigit()]
    except OSError:
        pids = []
    running = set()
    for pid in pids:
        try:
            with open(os.path.join(proc, pid, 'comm')) as handle:
                name = handle.read().strip()
        except (IOError, OSError):
            continue
        if name in KUBERNETES_PROCESSES:
            running.add(name)
    signs.extend('a %s process runs' % name for name in sorted(running))
    for command in ('iptables-save', 'ip6tables-save'):
        if shutil.which(command):
            rc, out, _err = run_command([command], check=False)
            foreign = foreign_chains(out) if rc == 0 else []
            if foreign:
                more = ' and %d more' % (len(foreign) - 5) if len(foreign) > 5 else ''
                signs.append('%s shows chains SuSEfirewall2 did not create (%s%s)'
                             % (command, ', '.join(foreign[:5]), more))
    if shutil.which('nft'):
        rc, out, _err = run_command(['nft', 'list', 'tables'], check=False)
        if rc == 0 and re.search(r'\bkube-proxy\b', out):
            signs.append('nft shows a kube-proxy table')
    return signs


class SuseFirewall2Backend(Backend):
    name = 'susefirewall2'

    @classmethod
    def detect(cls, run_command):
        return os.path.exists(CONFIG) and bool(shutil.which(COMMAND))

    @classmethod
    def running(cls, run_command):
        return cls.detect(run_command) and run_command([COMMAND, 'status'], check=False)[0] == 0

    def check_usable(self):
        if not os.path.exists(CONFIG):
            raise BackendError('SuSEfirewall2 is not configured on this host (no %s)' % CONFIG)
        if not shutil.which(COMMAND):
            raise BackendError('SuSEfirewall2 is not installed on this host (no %s command)' % COMMAND)

    def note(self, message):
        if message not in self.messages:
            self.messages.append(message)

    def read(self):
        try:
            with open(CONFIG) as handle:
                text = handle.read()
        except (IOError, OSError) as exc:
            raise BackendError('cannot read %s: %s' % (CONFIG, exc))
        parse_config(text)  # fails clearly on a file it cannot edit safely
        try:
            with open(CUSTOM_RULES) as handle:
                custom = handle.read()
        except (IOError, OSError):
            custom = None
        state = self.load_state()
        rc, _out, _err = self.run_command([COMMAND, 'status'], check=False)
        return {'text': text, 'custom': custom, 'owned': load_owned(state),
                'pending_start': bool(state.get('pending_start')),
                'running': rc == 0, 'kubernetes': kubernetes_signs(self.run_command)}

    def compare(self, desired, current, prune):
        wanted, route = desired_tokens(desired)
        text, added, removed, owned = diff_config(current['text'], wanted, route, current['owned'], prune,
                                                  desired.trusted_interfaces, current.get('custom'))
        # The custom rules file: written while it trusts any interface; once none, removed when
        # the configuration no longer names it, else left trusting none (SuSEfirewall2 cannot
        # start without a file FW_CUSTOMRULES names). A file at its path that is not ours stays.
        custom = current.get('custom')
        ours = custom is not None and custom.startswith(CUSTOM_MARK)
        if owned.get('interfaces'):
            custom_interfaces(custom)
            wanted_custom = custom_rules_text(owned['interfaces'])
        elif custom is not None and not ours:
            wanted_custom = custom
        elif CUSTOM_RULES in tokens_of(text, CUSTOM):
            wanted_custom = custom_rules_text(())
        else:
            wanted_custom = None
        custom_changed = wanted_custom != custom
        if custom_changed and wanted_custom is not None and not any(CUSTOM_RULES in item for item in added):
            added.append('%s rewritten' % CUSTOM_RULES)
        change = Change(added=added, removed=removed, before=current['text'], after=text)
        changed = text != current['text'] or custom_changed
        # A start an earlier run could not finish is made up for while SuSEfirewall2 runs.
        retry = current['pending_start'] and current['running']
        if changed or retry:
            start = current['running']
            change.operations = [{'text': text if text != current['text'] else None, 'owned': owned,
                                  'start': start, 'kubernetes': current['kubernetes']}]
            if custom_changed:
                change.operations[0]['custom'] = wanted_custom
            if retry:
                self.note('an earlier run wrote %s but "%s start" did not finish; it is started now'
                          % (CONFIG, COMMAND))
            if start and current['kubernetes'] and not self.options.get('allow_restart'):
                self.note('applying this needs "%s start", which is refused on this host: %s'
                          % (COMMAND, self.refusal(current['kubernetes'])))
        return change

    @staticmethod
    def refusal(signs):
        return ('this host has state that SuSEfirewall2 did not create (%s) and "%s start" flushes every iptables '
                'table, kube-proxy\'s, the CNI\'s and other tools\' chains included; nothing was written. Set allow_restart: true to apply anyway, best in a '
                'maintenance window (with SuSEfirewall2 stopped, the file is written without a restart)'
                % ('; '.join(signs), COMMAND))

    @staticmethod
    def write_file(path, text, mode=None):
        """Writes ``path`` atomically: an existing file keeps its mode and owner; a new one gets
        ``mode``, owned by root (SuSEfirewall2 sources only root-owned, not world-writable files)."""
        directory = os.path.dirname(path)
        try:
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o755)
            handle, temporary = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(path))
        except (IOError, OSError) as exc:
            raise BackendError('cannot write %s: %s' % (path, exc))
        try:
            with os.fdopen(handle, 'w') as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            if os.path.exists(path):
                info = os.stat(path)
                os.chmod(temporary, info.st_mode & 0o7777)
                if os.geteuid() == 0:
                    os.chown(temporary, info.st_uid, info.st_gid)
            else:
                os.chmod(temporary, mode if mode is not None else 0o644)
                if os.geteuid() == 0:
                    os.chown(temporary, 0, 0)
            os.rename(temporary, path)
        except (IOError, OSError) as exc:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise BackendError('cannot write %s: %s' % (path, exc))

    def write_config(self, text):
        self.write_file(CONFIG, text)

    def apply(self, change):
        for operation in change.operations:
            if operation['start'] and operation['kubernetes'] and not self.options.get('allow_restart'):
                # Before anything is written: the file and the running firewall stay as they are.
                raise BackendError(self.refusal(operation['kubernetes']))
            record = dict(operation['owned'])
            if operation['text'] is not None or 'custom' in operation:
                # Until the write is done, both the old and the new tokens count as ours, so a
                # failure half-way leaves nothing the collection added unrecorded.
                previous = load_owned(self.load_state())
                merged = {'tokens': dict((name, sorted(set(previous['tokens'].get(name, [])) |
                                                       set(record['tokens'].get(name, []))))
                                         for name in TOKEN_VARIABLES)}
            if operation['text'] is not None or 'custom' in operation:
                for source in (previous, record):
                    for key in ('route_before', 'customrules_before'):
                        if key in source:
                            merged[key] = source[key]
                interfaces = set(previous.get('interfaces', ())) | set(record.get('interfaces', ()))
                if interfaces:
                    merged['interfaces'] = sorted(interfaces)
                merged['pending_start'] = operation['start']
                self.save_state(merged)
                # The file FW_CUSTOMRULES names exists before the configuration names it, and
                # goes only once the configuration no longer does.
                if operation.get('custom') is not None:
                    self.write_file(CUSTOM_RULES, operation['custom'], 0o644)
                if operation['text'] is not None:
                    self.write_file(CONFIG, operation['text'])
                if 'custom' in operation and operation['custom'] is None:
                    try:
                        os.unlink(CUSTOM_RULES)
                    except OSError as exc:
                        if os.path.exists(CUSTOM_RULES):
                            raise BackendError('cannot remove %s: %s' % (CUSTOM_RULES, exc))
            record['pending_start'] = operation['start']
            self.save_state(record)
            if operation['start']:
                self.run_command([COMMAND, 'start'])
                record['pending_start'] = False
                self.save_state(record)
                if operation['kubernetes']:
                    self.note('SuSEfirewall2 restarted on a Kubernetes host because allow_restart is true (%s): '
                              'every iptables table was flushed; kube-proxy and the CNI rebuild their rules'
                              % '; '.join(operation['kubernetes']))
                else:
                    self.note('SuSEfirewall2 restarted with the new configuration')
            elif operation['text'] is not None or 'custom' in operation:
                self.note('SuSEfirewall2 is not running: %s is written and takes effect when it starts' % CONFIG)

    def admissions_after(self, current, change, client):
        """What admits TCP traffic once the configuration of ``change`` is in force."""
        if not current['running']:
            return [Admission(None, None, 'SuSEfirewall2 is not running')]
        text = change.after if change.after is not None else current['text']
        found = []
        for token in tokens_of(text, 'FW_SERVICES_EXT_TCP'):
            spans = _service_spans(token)
            if spans:
                found.append(Admission(None, spans, 'FW_SERVICES_EXT_TCP %s' % token))
        if 'sshd' in tokens_of(text, 'FW_CONFIGURATIONS_EXT'):
            found.append(Admission(None, [(22, 22)], 'FW_CONFIGURATIONS_EXT sshd'))
        for name in ('FW_SERVICES_ACCEPT_EXT', 'FW_TRUSTED_NETS'):
            for token in tokens_of(text, name):
                parts = token.split(',')
                network = _network(parts[0])
                protocol = parts[1].lower() if len(parts) > 1 and parts[1] else None
                try:
                    ipaddress.ip_network(network, strict=False)
                except ValueError:
                    continue
                if protocol not in (None, 'tcp'):
                    continue
                spans = _service_spans(parts[2]) if len(parts) > 2 and parts[2] else None
                if len(parts) > 2 and parts[2] and not spans:
                    continue
                found.append(Admission([network], spans, '%s %s' % (name, token)))
        return found

    def exposures(self, current):
        """What the configuration admits from the external zone (exposure entries): the
        FW_SERVICES_EXT_* tokens (open to anyone), FW_CONFIGURATIONS_EXT sshd, and the
        network-bound FW_SERVICES_ACCEPT_EXT and FW_TRUSTED_NETS; the collection's tokens owned."""
        text = current['text']
        mine = current['owned']['tokens']
        found = []
        for name, protocol in (('FW_SERVICES_EXT_TCP', 'tcp'), ('FW_SERVICES_EXT_UDP', 'udp')):
            for token in tokens_of(text, name):
                for low, high in _service_spans(token, protocol) or ():
                    found.append(exposure(protocol, format_port((low, high)), None, '%s %s' % (name, token),
                                          owned=token in mine.get(name, ())))
        for token in tokens_of(text, 'FW_SERVICES_EXT_IP'):
            protocol = ALIAS_NAMES.get(IPTABLES_PROTOCOL_NAMES.get(token.lower(), token.lower()), token.lower())
            found.append(exposure(protocol, '', None, 'FW_SERVICES_EXT_IP %s' % token,
                                  owned=token in mine.get('FW_SERVICES_EXT_IP', ())))
        for name in tokens_of(text, 'FW_CONFIGURATIONS_EXT'):
            found.extend(_configuration_exposures(name))
        for protocol in ('tcp', 'udp'):
            if [token.lower() for token in tokens_of(text, 'FW_ALLOW_INCOMING_HIGHPORTS_%s' % protocol.upper())] == ['yes']:
                found.append(exposure(protocol, '1024-65535', None, 'FW_ALLOW_INCOMING_HIGHPORTS_%s yes'
                                      % protocol.upper()))
        for name in ('FW_SERVICES_ACCEPT_EXT', 'FW_TRUSTED_NETS'):
            for token in tokens_of(text, name):
                parts = token.split(',')
                network = _network(parts[0])
                try:
                    ipaddress.ip_network(network, strict=False)
                except ValueError:
                    continue
                protocol = parts[1].lower() if len(parts) > 1 and parts[1] else 'all'
                protocol = ALIAS_NAMES.get(IPTABLES_PROTOCOL_NAMES.get(protocol, protocol), protocol)
                owned = token in mine.get(name, ())
                what = '%s %s' % (name, token)
                if len(parts) > 2 and parts[2] and protocol in ('tcp', 'udp'):
                    for low, high in _service_spans(parts[2], protocol) or ():
                        found.append(exposure(protocol, format_port((low, high)), [network], what, owned=owned))
                else:
                    found.append(exposure(protocol, '', [network], what, owned=owned))
        found.extend(_interface_exposures(text, current.get('custom')))
        return found


def _interface_exposures(text, custom):
    """Trust on interfaces only: the devices of the collection's custom rules file (while
    FW_CUSTOMRULES names it), and FW_DEV_INT while FW_PROTECT_FROM_INT is "no" or "notrack"
    (unset is "no"): everything arriving there reaches the host."""
    found = []
    if CUSTOM_RULES in tokens_of(text, CUSTOM) and custom is not None and custom.startswith(CUSTOM_MARK):
        for name in custom_interfaces(custom):
            found.append(exposure('all', '', None, '%s %s: interface %s' % (CUSTOM, CUSTOM_RULES, name),
                                  owned=True, interfaces=[name]))
    protect = (tokens_of(text, 'FW_PROTECT_FROM_INT') or ['no'])[0]
    if protect in ('no', 'notrack'):
        for name in tokens_of(text, 'FW_DEV_INT'):
            if name not in ('any', 'auto') and ':' not in name:
                found.append(exposure('all', '', None, 'FW_DEV_INT %s (FW_PROTECT_FROM_INT %s)' % (name, protect),
                                      scope='zone', interfaces=[name]))
    return found


SERVICES_DIR = '/etc/sysconfig/SuSEfirewall2.d/services'


def _configuration_exposures(name):
    """The ports of one FW_CONFIGURATIONS_EXT service (its file in SERVICES_DIR: TCP, UDP, IP);
    sshd without a file is port 22."""
    what = 'FW_CONFIGURATIONS_EXT %s' % name
    try:
        with open(os.path.join(SERVICES_DIR, os.path.basename(name))) as handle:
            text = handle.read()
        tokens_of(text, 'TCP')
    except (IOError, OSError, BackendError):
        return [exposure('tcp', '22', None, what)] if name == 'sshd' else []
    found = []
    for key, protocol in (('TCP', 'tcp'), ('UDP', 'udp')):
        for token in tokens_of(text, key):
            for low, high in _service_spans(token, protocol) or ():
                found.append(exposure(protocol, format_port((low, high)), None, what))
    for token in tokens_of(text, 'IP'):
        found.append(exposure(IPTABLES_PROTOCOL_NAMES.get(token.lower(), token.lower()), '', None, what))
    return found


# iptables protocol names back to the collection's.
ALIAS_NAMES = {'4': 'ipip', 'ipv6-icmp': 'icmpv6'}


def _service_spans(token, protocol='tcp'):
    """Port spans of a FW_SERVICES_* token: a port, "low:high", or a service name."""
    text = token.strip()
    try:
        if text.replace(':', '').isdigit():
            return parse_ports(text)
        return [(socket.getservbyname(text, protocol),) * 2]
    except (OSError, ValueError):
        return None
