# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backend contract: read current state, compare it with the desired one, apply the change once;
and what a backend tells the lock-out guard (Admission entries) and the audit (exposure entries).

Runs on the managed host: standard library only (no netaddr, no PyYAML).
docs/backends.md describes the backends and the module that drives them.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import ipaddress
import json
import os
import re
import tempfile

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import (
    check_interfaces, format_port, is_anyone, is_whole_family, parse_selector, private_ports_hit, rule_port,
    rule_sources)

OWNER = 'kubeports'
_SET_NAME = re.compile(r'[^A-Za-z0-9_-]')
# ipset names are at most 31 characters; backends add "kubeports-" and a family suffix.
SET_ID_MAX = 18

# The chains iptables, ip6tables and ebtables have of their own; every other chain was made by someone.
BUILTIN_CHAINS = frozenset(('INPUT', 'FORWARD', 'OUTPUT', 'PREROUTING', 'POSTROUTING', 'BROUTING'))
# Every file the collection writes in state_dir is first written under this prefix, then renamed;
# a run killed in between leaves one, which uninstall removes.
TEMPORARY_PREFIX = '.tmp.'


# Other names and numbers of the collection's protocols (firewalld writes IP-in-IP as
# ipencap, iptables rules use numbers).
PROTOCOL_ALIASES = {'ipencap': 'ipip', 'ip-encap': 'ipip', '4': 'ipip', '6': 'tcp', '17': 'udp', '47': 'gre',
                    '50': 'esp', '132': 'sctp', '1': 'icmp', '58': 'icmpv6', 'ipv6-icmp': 'icmpv6', 'any': 'all'}


class BackendError(Exception):
    """A clear, user-facing failure; nothing more is changed after it is raised."""


class Admission(object):
    """Traffic a firewall admits, for the lock-out guard: from ``sources`` (networks; None is
    anyone), to TCP ``ports`` ((low, high) spans; None is every port). ``what`` says where it
    comes from."""

    __slots__ = ('sources', 'ports', 'what')

    def __init__(self, sources, ports, what):
        self.sources = None if sources is None else [ipaddress.ip_network(str(item), strict=False)
                                                     for item in sources]
        self.ports = ports
        self.what = what

    def matches(self, address, port):
        if self.ports is not None and not any(low <= port <= high for low, high in self.ports):
            return False
        if self.sources is None:
            return True
        return any(address.version == net.version and address in net for net in self.sources)


def protocol_name(protocol):
    """The collection's name of a protocol a firewall names otherwise (PROTOCOL_ALIASES)."""
    text = str(protocol).strip().lower()
    return PROTOCOL_ALIASES.get(text, text)


def exposure(protocol, port, sources, what, owned=False, scope='rule', interfaces=None):
    """What a firewall admits, for the audit: {protocol, port ('' for every port), sources
    (None for anyone), what, owned, scope ('rule' or 'zone'), interfaces (None: arriving on
    any interface)}. ``port`` '', None or "any" is every port."""
    return {'protocol': protocol_name(protocol), 'port': '' if port in (None, '', 'any') else str(port),
            'sources': None if sources is None else [_cidr(item) for item in sources],
            'what': what, 'owned': bool(owned), 'scope': scope,
            'interfaces': None if not interfaces else [str(item) for item in interfaces]}


def _cidr(source):
    """A source as a CIDR ("10.0.0.1" is 10.0.0.1/32); text that is none is kept as it is."""
    try:
        return str(ipaddress.ip_network(str(source), strict=False))
    except ValueError:
        return str(source)


def set_id(name):
    """A short, stable identifier for a peer set name, safe for ipset and ufw comments."""
    clean = _SET_NAME.sub('_', name)
    if len(clean) <= SET_ID_MAX:
        return clean
    digest = hashlib.sha1(name.encode('utf-8')).hexdigest()[:5]
    return '%s_%s' % (clean[:SET_ID_MAX - 6], digest)


def family_of(cidr):
    return 'ipv%d' % ipaddress.ip_network(cidr, strict=False).version


class DesiredState(object):
    """What the planner asked for, in the shapes backends need.

    - ``open_to_all``: {(protocol, port)} opened to everyone (port '' for protocol-only).
    - ``peer_sets``: {set_id: {'name': source_set, 'ipv4': [cidrs], 'ipv6': [cidrs]}}.
    - ``restricted``: {(set_id, protocol, port)} opened to one peer set.
    - ``ssh``: the restricted ones of a rule of the ``ssh`` component (what keeps the operator in).
    - ``trusted_interfaces``: {interface}: everything arriving on them is accepted, to the host and
      forwarded (the CNI's devices; a trailing + matches any suffix).
    ``items()`` flattens everything to (family, protocol, port, source or None).
    """

    def __init__(self, open_to_all, peer_sets, restricted, ssh=frozenset(), trusted_interfaces=frozenset()):
        self.open_to_all = open_to_all
        self.peer_sets = peer_sets
        self.restricted = restricted
        self.ssh = ssh
        self.trusted_interfaces = frozenset(trusted_interfaces)

    @classmethod
    def from_rules(cls, rules, public_ports=(), sets=None):
        """The state for the module's ``rules`` (the rule contract, rule_contract.py) and ``sets``
        (peer set name to members). The sources decide who may connect: a rule is open to
        everyone only when its sources are 0.0.0.0/0 and ::/0, and then only if it exposes no
        must-not-be-public port (PRIVATE_PORTS) outside ``public_ports``."""
        try:
            allowed = [parse_selector(item, 'public_ports') for item in public_ports or ()]
        except PlanError as exc:
            raise BackendError(str(exc))
        open_to_all, peer_sets, restricted, ssh, interfaces = set(), {}, set(), set(), set()
        parsed = {}
        for index, rule in enumerate(rules):
            where = 'rules[%d]' % index
            try:
                port_range = rule_port(rule, where)
                sources = rule_sources(rule, sets, where)
                if rule.get('interfaces'):
                    interfaces.update(_interface_rule(rule, sources, where))
                    continue
            except PlanError as exc:
                raise BackendError(str(exc))
            protocol, port = str(rule['protocol']).lower(), format_port(port_range)
            name = rule.get('source_set')
            # The members of a named set are parsed once, however many rules use it.
            cache_key = name if name is not None and not rule.get('sources') else None
            networks = parsed.get(cache_key) if cache_key is not None else None
            if networks is None:
                try:
                    networks = [ipaddress.ip_network(str(item), strict=True) for item in sources]
                except ValueError as exc:
                    raise BackendError('%s (%s %s): invalid source: %s' % (where, protocol, port, exc))
                if cache_key is not None:
                    parsed[cache_key] = networks
            everyone = [net for net in networks if is_whole_family(net)]
            if everyone:
                if len(everyone) != len(networks) or len(set(net.version for net in everyone)) != 2:
                    raise BackendError('%s (%s %s): sources %s are not everyone: give both 0.0.0.0/0 and ::/0 for '
                                       'everyone, or only the networks allowed'
                                       % (where, protocol, port, ', '.join(str(net) for net in networks)))
                if name is not None:
                    raise BackendError('%s (%s %s): source_set %r disagrees with its sources (everyone); '
                                       'give a null source_set or the set\'s members'
                                       % (where, protocol, port, name))
                hits = private_ports_hit(protocol, port_range, allowed)
                if hits:
                    reference = (rule.get('references') or [''])[0]
                    raise BackendError('%s: %s (%s) would be open to anyone%s; restrict its sources, or name '
                                       '"%s" in public_ports (kubeports_public_ports)'
                                       % (where, hits[0][0], hits[0][1], ' (see %s)' % reference if reference
                                          else '', hits[0][0]))
                open_to_all.add((protocol, port))
                continue
            if name is None:
                # Restricted sources without a name: the set is named after its members.
                digest = hashlib.sha1(' '.join(sorted(str(net) for net in networks)).encode('utf-8'))
                name = 'src-' + digest.hexdigest()[:10]
            identifier = set_id(str(name))
            known = peer_sets.get(identifier)
            if known is None or cache_key is None:
                members = {'name': str(name),
                           'ipv4': sorted(str(net) for net in networks if net.version == 4),
                           'ipv6': sorted(str(net) for net in networks if net.version == 6)}
                if known is not None and known != members:
                    raise BackendError('%s: peer set %r has different members in another rule' % (where, name))
                peer_sets[identifier] = known = members
            elif known['name'] != str(name):
                raise BackendError('%s: peer sets %r and %r share the identifier %s'
                                   % (where, known['name'], name, identifier))
            restricted.add((identifier, protocol, port))
            if 'ssh' in (rule.get('components') or ()):
                ssh.add((identifier, protocol, port))
        return cls(open_to_all, peer_sets, restricted, frozenset(ssh), interfaces)

    def items(self):
        flat = set()
        for protocol, port in self.open_to_all:
            for family in ('ipv4', 'ipv6'):
                flat.add((family, protocol, port, None))
        for identifier, protocol, port in self.restricted:
            for family in ('ipv4', 'ipv6'):
                for cidr in self.peer_sets[identifier][family]:
                    flat.add((family, protocol, port, cidr))
        return flat


def _interface_rule(rule, sources, where):
    """The interfaces of a rule that trusts them: protocol all, from anyone (the interfaces decide)."""
    if str(rule['protocol']).lower() != 'all' or not is_anyone(sources) or rule.get('source_set') is not None:
        raise PlanError('%s: a rule with interfaces (%s) trusts everything arriving on them; give protocol all, '
                        'sources 0.0.0.0/0 and ::/0 and no source_set'
                        % (where, ', '.join(str(item) for item in rule['interfaces'])))
    return check_interfaces(rule['interfaces'], where)


class Backend(object):
    """One firewall. Subclasses implement the four methods below; the module calls
    ``detect`` (for backend=auto), then ``read``, ``compare``, and, unless in check mode and
    only when the change is not empty, ``apply`` followed by ``read`` and ``verify``.

    ``compare`` is pure: it compares DesiredState with what ``read`` returned and returns a
    Change. Nothing is written before ``apply``; ``apply`` writes the whole change in one
    go and never reloads, restarts or flushes the firewall in steady state.
    """

    name = None

    def __init__(self, run_command, options):
        # run_command(argv, check=True) -> (rc, stdout, stderr), AnsibleModule.run_command style.
        self.run_command = run_command
        self.options = options
        self.messages = []

    def check_usable(self):
        """For an explicitly chosen backend: fail clearly when it is missing or not active."""
        if not self.detect(self.run_command):
            raise BackendError('%s is not installed or not active on this host' % self.name)

    @classmethod
    def running(cls, run_command):
        """True when this firewall is the one filtering traffic now (default: detect)."""
        return cls.detect(run_command)

    def check_state_dir(self, writable=True):
        """Before any change: the record of what the collection creates can be written."""
        directory = self.options.get('state_dir') or '/var/lib/kubeports'
        hint = ('the collection records there what it creates, so that prune can always find it; choose a '
                'writable directory with state_dir (kubeports_state_dir)')
        if os.path.lexists(directory) and not os.path.isdir(directory):
            raise BackendError('state_dir %s is not a directory; nothing was changed; %s' % (directory, hint))
        if not writable:
            return
        try:
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o700)
            handle, probe = tempfile.mkstemp(dir=directory, prefix=TEMPORARY_PREFIX)
            os.close(handle)
            os.unlink(probe)
        except (IOError, OSError) as exc:
            raise BackendError('state_dir %s cannot be written (%s); nothing was changed; %s'
                               % (directory, exc.strerror or exc, hint))

    def state_path(self):
        return os.path.join(self.options.get('state_dir') or '/var/lib/kubeports', '%s.json' % self.name)

    def load_state(self):
        """The record of what the collection created on this host ({} when none)."""
        try:
            with open(self.state_path()) as handle:
                return json.load(handle)
        except (IOError, OSError):
            return {}
        except ValueError as exc:
            raise BackendError('ownership record %s is not valid JSON (%s); fix or remove it'
                               % (self.state_path(), exc))

    def save_state(self, state):
        """Writes the ownership record at once; BackendError when it cannot be written."""
        path = self.state_path()
        directory = os.path.dirname(path)
        try:
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o700)
            handle, temporary = tempfile.mkstemp(dir=directory, prefix=TEMPORARY_PREFIX)
            with os.fdopen(handle, 'w') as stream:
                json.dump(state, stream, indent=2, sort_keys=True)
            os.rename(temporary, path)
        except (IOError, OSError) as exc:
            raise BackendError('cannot write the ownership record %s: %s' % (path, exc))

    @classmethod
    def detect(cls, run_command):
        """True when this firewall is installed and active on the host."""
        raise NotImplementedError

    def read(self):
        """Current state: what the collection owns (and enough of the rest to never touch it)."""
        raise NotImplementedError

    def compare(self, desired, current, prune):
        """A Change from current to desired; with prune, owned items no longer wanted go."""
        raise NotImplementedError

    def apply(self, change):
        """Write the change once. Raise BackendError on failure."""
        raise NotImplementedError

    def admissions_after(self, current, change, client):
        """What admits TCP traffic from ``client`` once ``change`` is applied, as a list of
        Admission (the collection's rules and the ones already there), or None when the
        backend cannot tell. Used by the lock-out guard before anything is written."""
        raise NotImplementedError

    def exposures(self, current):
        """Everything the firewall admits, read from its whole effective state ``current``, as
        exposure entries. Used by the audit (port_rules_info)."""
        raise NotImplementedError

    def verify(self, desired, current, prune):
        """After apply: the re-read state must need no further change."""
        leftover = self.compare(desired, current, prune)
        if not leftover.empty:
            raise BackendError('%s did not apply all changes; still to add: %s; still to remove: %s'
                               % (self.name, ', '.join(leftover.added) or '-', ', '.join(leftover.removed) or '-'))


class Change(object):
    """The difference to apply. ``added``/``removed`` are readable item strings for the
    diff; ``operations`` are backend-specific and only used by that backend's apply."""

    def __init__(self, added=None, removed=None, operations=None, before=None, after=None):
        self.added = sorted(added or [])
        self.removed = sorted(removed or [])
        self.operations = operations or []
        self.before = before
        self.after = after

    @property
    def empty(self):
        return not self.added and not self.removed and not self.operations

    def diff(self, host_label='firewall'):
        """Ansible's diff: ``before``/``after`` texts (the configuration file where the backend
        edits one, else the rules removed and added, one per line), plus ``added``/``removed``."""
        result = {'added': self.added, 'removed': self.removed}
        if self.before is not None or self.after is not None:
            result['before'] = self.before or ''
            result['after'] = self.after or ''
        else:
            result['before'] = ''.join('%s\n' % line for line in self.removed)
            result['after'] = ''.join('%s\n' % line for line in self.added)
            result['before_header'] = '%s: rules removed' % host_label
            result['after_header'] = '%s: rules added' % host_label
        return result
