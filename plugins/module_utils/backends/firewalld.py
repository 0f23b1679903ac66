# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""firewalld through its Python bindings: zone ports and protocols for rules open to
everyone, one ipset per peer set with rich rules for restricted rules, trusted-zone
sources for trusted networks and trusted-zone interfaces for the CNI's devices. Runtime and
permanent configuration are changed together.

firewalld creates ipsets only in its permanent configuration; a reload brings them into the
runtime. A reload flushes every iptables, ip6tables and ebtables table (on the nftables
backend too) and drops whatever the runtime holds that the permanent configuration does not.
So a change reloads only when that loses nothing (reload_blockers); otherwise the runtime
gets one rich rule per source until firewalld next loads its configuration.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import shutil

from ansible_collections.kubeports.firewall.plugins.module_utils.backends.base import (
    BUILTIN_CHAINS, OWNER, Admission, Backend, BackendError, Change, exposure)
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import (
    FAMILY_OF_PROTOCOL, PORT_PROTOCOLS, parse_ports)

OWN_NAME_PREFIX = OWNER + '-'
VIEWS = ('permanent', 'runtime')
# firewalld protocol names (from /etc/protocols); IPIP is IP protocol 4, "ipencap" there.
PROTOCOL_NAMES = {'icmp': 'icmp', 'icmpv6': 'ipv6-icmp', 'ipip': 'ipencap', 'gre': 'gre', 'esp': 'esp'}
TRUSTED_ZONE = 'trusted'
# Items the ownership record lists (rich rules and ipsets are recognised by the kubeports- prefix).
OWNED_KINDS = ('ports', 'protocols', 'trusted', 'interfaces', 'source_rich')
# Kinds that live in the trusted zone.
TRUSTED_KINDS = ('trusted', 'interfaces')
OFFLINE = 'firewall-offline-cmd'


# The D-Bus client of this run, shared by detection and the backend (one connection).
_CLIENT = []


def dbus_client():
    """(client, None) with a connected firewall.client.FirewallClient, or (None, why not)."""
    if _CLIENT:
        return _CLIENT[0], None
    try:
        from firewall.client import FirewallClient  # pylint: disable=import-outside-toplevel
    except ImportError:
        return None, 'the firewalld Python bindings (python3-firewall) are missing on this host'
    try:
        fw = FirewallClient()
    except Exception:  # pylint: disable=broad-except
        fw = None
    if fw is None or not fw.connected:
        return None, 'cannot reach firewalld over D-Bus; is it running?'
    _CLIENT.append(fw)
    return fw, None


def dbus_state():
    """firewalld's state property ('RUNNING', 'FAILED', 'INIT'), or None when D-Bus does not tell."""
    fw = dbus_client()[0]
    try:
        return fw.get_property('state') if fw is not None else None
    except Exception:  # pylint: disable=broad-except
        return None


def firewalld_state(run_command, state=dbus_state):
    """'running', 'failed' or 'not running': firewalld's state over D-Bus when it answers
    RUNNING, as firewall-cmd --state decides, else firewall-cmd --state itself (without a
    reachable daemon it prints "not running" or a D-Bus error)."""
    if state() == 'RUNNING':
        return 'running'
    rc, out, err = run_command(['firewall-cmd', '--state'], check=False)
    if rc == 0:
        return 'running'
    if (out or err).strip().lower() == 'failed':
        return 'failed'
    return 'not running'


def parse_ipset_info(text):
    """family and entries from firewall-cmd --info-ipset output."""
    info = {'family': 'inet', 'entries': set()}
    for line in text.splitlines():
        key, _sep, value = line.strip().partition(':')
        if key == 'options':
            for option in value.split():
                if option.startswith('family='):
                    info['family'] = option.split('=', 1)[1]
        elif key == 'entries':
            info['entries'] = set(normalize_entry(entry) for entry in value.split())
    return info


def ipset_name(identifier, family):
    return OWN_NAME_PREFIX + identifier + ('-v6' if family == 'ipv6' else '')


def rich_rule(family, ipset, protocol, port):
    """firewalld's canonical rich rule text."""
    if protocol in PORT_PROTOCOLS:
        element = 'port port="%s" protocol="%s"' % (port, protocol)
    else:
        element = 'protocol value="%s"' % PROTOCOL_NAMES[protocol]
    return 'rule family="%s" source ipset="%s" %s accept' % (family, ipset, element)


def normalize_entry(entry):
    try:
        return str(ipaddress.ip_network(entry, strict=False))
    except ValueError:
        return entry


def empty_view():
    return {'ports': set(), 'protocols': set(), 'rich': set(), 'trusted': set(), 'interfaces': set(), 'ipsets': {}}


def desired_view(desired):
    """The firewalld items for a DesiredState (the same for runtime and permanent)."""
    view = empty_view()
    view['interfaces'] = set(desired.trusted_interfaces)
    for protocol, port in desired.open_to_all:
        if protocol in PORT_PROTOCOLS:
            view['ports'].add('%s/%s' % (port, protocol))
        elif protocol == 'all':
            raise BackendError('a rule opens every protocol to everyone; refusing (give it a source set)')
        else:
            view['protocols'].add(PROTOCOL_NAMES[protocol])
    for identifier, protocol, port in sorted(desired.restricted):
        members = desired.peer_sets[identifier]
        if protocol == 'all':
            view['trusted'].update(members['ipv4'] + members['ipv6'])
            continue
        for family, ipset_family in (('ipv4', 'inet'), ('ipv6', 'inet6')):
            if not members[family] or FAMILY_OF_PROTOCOL.get(protocol, family) != family:
                continue
            name = ipset_name(identifier, family)
            view['ipsets'][name] = {'family': ipset_family, 'entries': set(members[family])}
            view['rich'].add(rich_rule(family, name, protocol, port))
    return view


def source_rich_rule(family, cidr, protocol, port):
    """firewalld's canonical rich rule text for one source network."""
    if protocol in PORT_PROTOCOLS:
        element = 'port port="%s" protocol="%s"' % (port, protocol)
    else:
        element = 'protocol value="%s"' % PROTOCOL_NAMES[protocol]
    return 'rule family="%s" source address="%s" %s accept' % (family, cidr, element)


def runtime_view(wanted, desired, runtime):
    """The runtime items for ``wanted`` when some of its ipsets are not in the runtime yet and
    firewalld is not reloaded: until the runtime has the ipset (after a reload or a restart),
    its rules are opened in the runtime with one rich rule per source.
    """
    missing = set(name for name in wanted['ipsets'] if name not in runtime['ipsets'])
    if not missing:
        return wanted
    view = dict(wanted, ipsets=dict((name, value) for name, value in wanted['ipsets'].items()
                                    if name not in missing),
                rich=set(rule for rule in wanted['rich'] if not any('ipset="%s"' % name in rule for name in missing)),
                source_rich=set())
    for identifier, protocol, port in sorted(desired.restricted):
        if protocol == 'all':
            continue
        members = desired.peer_sets[identifier]
        for family in ('ipv4', 'ipv6'):
            if ipset_name(identifier, family) not in missing or FAMILY_OF_PROTOCOL.get(protocol, family) != family:
                continue
            for cidr in members[family]:
                view['source_rich'].add(source_rich_rule(family, cidr, protocol, port))
    view['rich'] = view['rich'] | view['source_rich']
    return view


def diff_views(wanted, current, owned, prune):
    """Operations and readable lines turning each current view into ``wanted``.

    ``wanted`` is one view for both, or {view name: view}. ``current`` maps view name to a
    view; ``owned`` lists ports, protocols, trusted sources and runtime per-source rich rules
    the collection added earlier. ipsets are created and deleted in the permanent
    configuration only, and emptied (not deleted) in the runtime. Pure: used by compare() and
    the unit tests.
    """
    operations, added, removed = [], {}, {}
    by_view = wanted if 'permanent' in wanted else dict((name, wanted) for name in VIEWS)

    def note(lines, text, view):
        lines.setdefault(text, []).append(view)

    for view_name in VIEWS:
        want, have = by_view[view_name], current[view_name]
        for kind, label in (('ports', 'port'), ('protocols', 'protocol'), ('rich', 'rich rule'),
                            ('trusted', 'trusted source'), ('interfaces', 'trusted interface')):
            for item in sorted(want[kind] - have[kind]):
                operations.append((view_name, 'add', kind, item))
                note(added, '%s %s' % (label, item), view_name)
            if not prune:
                continue
            for item in sorted(have[kind] - want[kind]):
                if kind == 'rich':
                    ours = ('ipset="%s' % OWN_NAME_PREFIX) in item or item in owned.get('source_rich', ())
                else:
                    ours = item in owned.get(kind, ())
                if ours:
                    operations.append((view_name, 'remove', kind, item))
                    note(removed, '%s %s' % (label, item), view_name)
        for name, wanted_set in sorted(want['ipsets'].items()):
            existing = have['ipsets'].get(name)
            if existing is not None and existing['family'] != wanted_set['family']:
                raise BackendError('ipset %s exists with family %s, not %s; remove it by hand (firewall-cmd '
                                   '--permanent --delete-ipset=%s) and run again'
                                   % (name, existing['family'], wanted_set['family'], name))
            if existing is None:
                # Only the permanent configuration can create an ipset (runtime_view keeps
                # missing runtime ipsets out of the runtime's wanted view).
                operations.append((view_name, 'create_ipset', name, wanted_set))
                note(added, 'ipset %s (%s: %s)' % (name, wanted_set['family'],
                                                   ', '.join(sorted(wanted_set['entries']))), view_name)
                continue
            for entry in sorted(wanted_set['entries'] - existing['entries']):
                operations.append((view_name, 'add_entry', name, entry))
                note(added, 'ipset %s entry %s' % (name, entry), view_name)
            for entry in sorted(existing['entries'] - wanted_set['entries']):
                operations.append((view_name, 'remove_entry', name, entry))
                note(removed, 'ipset %s entry %s' % (name, entry), view_name)
        if prune:
            for name in sorted(set(have['ipsets']) - set(want['ipsets'])):
                if view_name == 'permanent':
                    operations.append((view_name, 'delete_ipset', name, None))
                    note(removed, 'ipset %s' % name, view_name)
                    continue
                for entry in sorted(have['ipsets'][name]['entries']):
                    # A runtime ipset cannot be deleted without a reload: it is emptied.
                    operations.append((view_name, 'remove_entry', name, entry))
                    note(removed, 'ipset %s entry %s' % (name, entry), view_name)
    return operations, _lines(added), _lines(removed)


def _lines(items):
    lines = []
    for text, views in items.items():
        lines.append(text if len(views) == len(VIEWS) else '%s (%s only)' % (text, views[0]))
    return lines


class FirewalldBackend(Backend):
    name = 'firewalld'

    def __init__(self, run_command, options):
        super(FirewalldBackend, self).__init__(run_command, options)
        self._fw = None
        self.zone = None
        self.offline = False

    @classmethod
    def detect(cls, run_command):
        if not shutil.which('firewall-cmd'):
            return False
        return firewalld_state(run_command) == 'running'

    def note(self, message):
        if message not in self.messages:
            self.messages.append(message)

    def check_usable(self):
        if not shutil.which('firewall-cmd'):
            raise BackendError('firewalld is not installed on this host (no firewall-cmd)')
        state = firewalld_state(self.run_command)
        if state == 'not running':
            if not shutil.which(OFFLINE):
                raise BackendError('firewalld is not running and %s is missing' % OFFLINE)
            self.offline = True
            self.messages.append('firewalld is not running: only its permanent configuration was read '
                                 'and changed (%s); it applies when firewalld starts' % OFFLINE)
        elif state != 'running':
            raise BackendError('firewalld is in state %r (firewall-cmd --state); fix it (see its log) '
                               'before applying rules' % state)

    def client(self):
        if self._fw is None:
            fw, why_not = dbus_client()
            if fw is None:
                raise BackendError(why_not)
            self._fw = fw
            self.zone = self.options.get('firewalld_zone') or fw.getDefaultZone()
        return self._fw

    @staticmethod
    def _normalize_rich(rule):
        try:
            from firewall.core.rich import Rich_Rule  # pylint: disable=import-outside-toplevel
            return str(Rich_Rule(rule_str=rule))
        except Exception:  # pylint: disable=broad-except
            return rule

    def offline_cmd(self, *args):
        return self.run_command([OFFLINE] + list(args))[1]

    def read_offline(self):
        """The permanent configuration, through firewall-offline-cmd (firewalld stopped)."""
        self.zone = self.options.get('firewalld_zone') or self.offline_cmd('--get-default-zone').strip()
        view = empty_view()
        view['ports'] = set(self.offline_cmd('--zone=' + self.zone, '--list-ports').split())
        view['protocols'] = set(self.offline_cmd('--zone=' + self.zone, '--list-protocols').split())
        view['rich'] = set(self._normalize_rich(line) for line in
                           self.offline_cmd('--zone=' + self.zone, '--list-rich-rules').splitlines() if line.strip())
        view['trusted'] = set(self.offline_cmd('--zone=' + TRUSTED_ZONE, '--list-sources').split())
        view['interfaces'] = set(self.offline_cmd('--zone=' + TRUSTED_ZONE, '--list-interfaces').split())
        for name in self.offline_cmd('--get-ipsets').split():
            if name.startswith(OWN_NAME_PREFIX):
                info = parse_ipset_info(self.offline_cmd('--info-ipset=' + name))
                view['ipsets'][name] = info
        # The runtime is what firewalld loads from this when it starts.
        runtime = dict((key, dict((name, {'family': value['family'], 'entries': set(value['entries'])})
                                  for name, value in view[key].items()) if key == 'ipsets' else set(view[key]))
                       for key in view)
        return {'runtime': runtime, 'permanent': view, 'owned': self.load_state()}

    def record_intent(self, change):
        """Records what the change adds before anything is touched (a kill at any point then
        leaves nothing prune cannot find); returns the owned items to update as it goes."""
        state = self.load_state()
        owned = dict((kind, set(state.get(kind, []))) for kind in OWNED_KINDS)
        intended = dict((kind, set(items)) for kind, items in owned.items())
        for view, action, kind, item in change.operations:
            kind = owned_kind(view, kind, item)
            if action == 'add' and kind in intended:
                intended[kind].add(item)
        self.save_record(intended)
        return owned

    def save_record(self, owned):
        self.save_state(dict([('zone', self.zone)] + [(kind, sorted(items)) for kind, items in owned.items()]))

    def apply_offline(self, change):
        owned = self.record_intent(change)
        flags = {'ports': 'port', 'protocols': 'protocol', 'rich': 'rich-rule', 'trusted': 'source',
                 'interfaces': 'interface'}
        try:
            for view, action, kind, item in sorted(change.operations, key=_apply_order):
                if view != 'permanent':
                    continue
                if action in ('add', 'remove'):
                    zone = TRUSTED_ZONE if kind in TRUSTED_KINDS else self.zone
                    self.offline_cmd('--zone=' + zone, '--%s-%s=%s' % (action, flags[kind], item))
                    if kind in owned:
                        (owned[kind].add if action == 'add' else owned[kind].discard)(item)
                elif action == 'create_ipset':
                    self.offline_cmd('--new-ipset=' + kind, '--type=hash:net', '--option=family=' + item['family'])
                    for entry in sorted(item['entries']):
                        self.offline_cmd('--ipset=' + kind, '--add-entry=' + entry)
                elif action == 'delete_ipset':
                    self.offline_cmd('--delete-ipset=' + kind)
                elif action in ('add_entry', 'remove_entry'):
                    self.offline_cmd('--ipset=' + kind, '--%s=%s' % (action.replace('_', '-'), item))
        finally:
            self.save_record(owned)

    def read(self):
        if self.offline:
            return self.read_offline()
        fw = self.client()
        if self.zone not in fw.config().getZoneNames():
            raise BackendError('firewalld zone %r does not exist' % self.zone)
        runtime = empty_view()
        runtime['ports'] = set('%s/%s' % (port, proto) for port, proto in fw.getPorts(self.zone))
        runtime['protocols'] = set(fw.getProtocols(self.zone))
        runtime['rich'] = set(self._normalize_rich(rule) for rule in fw.getRichRules(self.zone))
        runtime['trusted'] = set(fw.getSources(TRUSTED_ZONE))
        runtime['interfaces'] = set(fw.getInterfaces(TRUSTED_ZONE))
        for name in fw.getIPSets():
            if name.startswith(OWN_NAME_PREFIX):
                settings = fw.getIPSetSettings(name)
                runtime['ipsets'][name] = {'family': settings.getOptions().get('family', 'inet'),
                                           'entries': set(normalize_entry(e) for e in fw.getEntries(name))}
        config = fw.config()
        zone = config.getZoneByName(self.zone).getSettings()
        permanent = empty_view()
        permanent['ports'] = set('%s/%s' % (port, proto) for port, proto in zone.getPorts())
        permanent['protocols'] = set(zone.getProtocols())
        permanent['rich'] = set(self._normalize_rich(rule) for rule in zone.getRichRules())
        trusted = config.getZoneByName(TRUSTED_ZONE).getSettings()
        permanent['trusted'] = set(trusted.getSources())
        permanent['interfaces'] = set(trusted.getInterfaces())
        for name in config.getIPSetNames():
            if name.startswith(OWN_NAME_PREFIX):
                settings = config.getIPSetByName(name).getSettings()
                permanent['ipsets'][name] = {'family': settings.getOptions().get('family', 'inet'),
                                             'entries': set(normalize_entry(e) for e in settings.getEntries())}
        return {'runtime': runtime, 'permanent': permanent, 'owned': self.load_state()}

    def compare(self, desired, current, prune):
        wanted = desired_view(desired)
        wanted['rich'] = set(self._normalize_rich(rule) for rule in wanted['rich'])
        for cidr in wanted['trusted']:
            zone = None
            if self._fw is not None and not self.offline:
                zone = self._fw.getZoneOfSource(cidr) or None
            if zone not in (None, '', TRUSTED_ZONE):
                raise BackendError('source %s is already bound to firewalld zone %s; it cannot also be '
                                   'trusted' % (cidr, zone))
        if self._fw is not None and not self.offline:
            self._check_interfaces_free(wanted['interfaces'] - current['runtime']['interfaces'])
        owned = current['owned'] if current['owned'].get('zone') in (None, self.zone) else {}
        if not self.offline:
            runtime = runtime_view(wanted, desired, current['runtime'])
            if runtime is not wanted:
                pending = ', '.join(sorted(set(wanted['ipsets']) - set(runtime['ipsets'])))
                if self.options.get('firewalld_reload') == 'auto':
                    blockers = self.reload_blockers(owned)
                else:
                    blockers = ['firewalld_reload is %s' % (self.options.get('firewalld_reload') or 'never')]
                if not blockers:
                    return self._reloading_change(wanted, current, owned, prune, pending)
                runtime['rich'] = set(self._normalize_rich(rule) for rule in runtime['rich'])
                runtime['source_rich'] = set(self._normalize_rich(rule) for rule in runtime['source_rich'])
                self.note('new peer sets are opened per source in the runtime until firewalld next loads its '
                          'permanent configuration: %s. No reload, because %s%s'
                          % (pending, '; '.join(blockers[:3]),
                             ' (and %d more differences)' % (len(blockers) - 3) if len(blockers) > 3 else ''))
            wanted = {'permanent': wanted, 'runtime': runtime}
        operations, added, removed = diff_views(wanted, current, owned, prune)
        return Change(added=added, removed=removed, operations=operations)

    def _check_interfaces_free(self, interfaces):
        """A CNI device the trusted zone is to get must not be bound to another zone (firewalld
        binds an interface to one zone only)."""
        fw = self._fw
        for name in sorted(interfaces):
            zones = [(view, zone) for view, zone in (('runtime', fw.getZoneOfInterface(name)),
                                                     ('permanent', fw.config().getZoneOfInterface(name)))
                     if zone and zone != TRUSTED_ZONE]
            if zones:
                view, zone = zones[0]
                raise BackendError('interface %s (pod_interfaces) is bound to firewalld zone %s in its %s '
                                   'configuration; the collection trusts the CNI\'s devices in zone %s. Remove it '
                                   'from zone %s (firewall-cmd%s --zone=%s --remove-interface=%s) or leave it out '
                                   'of kubeports_pod_interfaces; nothing was changed'
                                   % (name, zone, view, TRUSTED_ZONE, zone,
                                      ' --permanent' if view == 'permanent' else '', zone, name))

    def _reloading_change(self, wanted, current, owned, prune, pending):
        """The change that writes the permanent configuration and reloads once: the runtime
        then holds exactly the permanent configuration, the new ipsets included."""
        operations, added, removed = diff_views(wanted, current, owned, prune)
        operations = [operation for operation in operations if operation[0] == 'permanent']
        operations.append(('runtime', 'reload', None, None))
        added.append('firewalld reload, bringing the new peer sets into the runtime: %s' % pending)
        self.note('firewalld is reloaded once, to bring the new peer sets into its runtime (%s): it uses its '
                  'nftables backend, no iptables, ip6tables or ebtables table holds a chain or rule for the '
                  'reload to flush, and its runtime and permanent configuration differ only in the '
                  "collection's own pending rules" % pending)
        return Change(added=added, removed=removed, operations=operations)

    def reload_blockers(self, owned):
        """Why a firewalld reload would lose, or bring, something that is not the collection's
        pending change; empty when it is safe."""
        fw = self.client()
        config = fw.config()
        backend = config.get_property('FirewallBackend')
        if backend != 'nftables':
            return ['firewalld uses its %s backend' % backend]
        if fw.queryPanicMode():
            return ['firewalld is in panic mode']
        flushed = []
        for command, tool in zip(SAVE_COMMANDS, ('iptables', 'ip6tables', 'ebtables')):
            if not shutil.which(command):
                if shutil.which(tool):
                    return ['%s is missing, so what a reload would flush from %s is unknown' % (command, tool)]
                continue
            rc, out, err = self.run_command([command], check=False)
            if rc != 0:
                return ['%s failed (rc=%d: %s), so what a reload would flush is unknown'
                        % (command, rc, (err or out).strip()[:200])]
            flushed.extend(flushed_by_reload(tool, out))
        blockers = []
        if flushed:
            blockers.append('a reload flushes %s' % ', '.join(flushed[:5])
                            + (' and %d more' % (len(flushed) - 5) if len(flushed) > 5 else ''))
        runtime, permanent, ours = self._configurations(fw, config, owned)
        return blockers + runtime_drift(runtime, permanent, ours)

    def _configurations(self, fw, config, owned):
        """(runtime, permanent, ours) for runtime_drift: every zone, policy and ipset, the
        default zone, lockdown and direct rules, read over D-Bus."""
        flush_all = str(config.get_property('FlushAllOnReload')).lower() in ('yes', 'true', '1')
        runtime = {'zone': {}, 'policy': {}, 'ipset': {}, 'firewalld': {}}
        permanent = {'zone': {}, 'policy': {}, 'ipset': {}, 'firewalld': {}}
        for zone in fw.getZones():
            runtime['zone'][zone] = fw.getZoneSettings(zone).getSettingsDict()
        for zone in config.getZoneNames():
            permanent['zone'][zone] = config.getZoneByName(zone).getSettings().getSettingsDict()
        if hasattr(fw, 'getPolicies'):
            for policy in fw.getPolicies():
                runtime['policy'][policy] = fw.getPolicySettings(policy).getSettingsDict()
            for policy in config.getPolicyNames():
                permanent['policy'][policy] = config.getPolicyByName(policy).getSettings().getSettingsDict()
        for name in fw.getIPSets():
            runtime['ipset'][name] = _ipset_settings(fw.getIPSetSettings(name), fw.getEntries(name))
        for name in config.getIPSetNames():
            settings = config.getIPSetByName(name).getSettings()
            permanent['ipset'][name] = _ipset_settings(settings, settings.getEntries())
        lockdown = config.policies()
        runtime['firewalld']['firewalld'] = {
            'default zone': fw.getDefaultZone(), 'lockdown': bool(fw.queryLockdown()),
            'lockdown commands': fw.getLockdownWhitelistCommands(),
            'lockdown contexts': fw.getLockdownWhitelistContexts(),
            'lockdown users': fw.getLockdownWhitelistUsers(), 'lockdown uids': fw.getLockdownWhitelistUids()}
        permanent['firewalld']['firewalld'] = {
            'default zone': config.get_property('DefaultZone'),
            'lockdown': str(config.get_property('Lockdown')).lower() in ('yes', 'true', '1'),
            'lockdown commands': lockdown.getLockdownWhitelistCommands(),
            'lockdown contexts': lockdown.getLockdownWhitelistContexts(),
            'lockdown users': lockdown.getLockdownWhitelistUsers(),
            'lockdown uids': lockdown.getLockdownWhitelistUids()}
        if flush_all:
            # Without FlushAllOnReload firewalld restores its runtime direct rules itself.
            direct = config.direct()
            runtime['firewalld']['firewalld'].update({
                'direct chains': fw.getAllChains(), 'direct rules': fw.getAllRules(),
                'direct passthroughs': fw.getAllPassthroughs()})
            permanent['firewalld']['firewalld'].update({
                'direct chains': direct.getAllChains(), 'direct rules': direct.getAllRules(),
                'direct passthroughs': direct.getAllPassthroughs()})
        # The collection's: its ipsets the runtime does not have yet (and the rules on them), its
        # emptied runtime ipsets the permanent configuration no longer has, its per-source rules.
        pending_sets = set(name for name in permanent['ipset'] if name.startswith(OWN_NAME_PREFIX) and name not in runtime['ipset'])
        emptied = set(name for name, value in runtime['ipset'].items()
                      if name.startswith(OWN_NAME_PREFIX) and name not in permanent['ipset'] and not value['entries'])
        ours = dict((('ipset', name), {}) for name in pending_sets | emptied)
        pending_rules = set(self._normalize_rich(rule) for rule in permanent['zone'].get(self.zone, {}).get('rules_str', ())
                            if any('ipset="%s"' % name in rule for name in pending_sets))
        ours[('zone', self.zone)] = {'rules_str': pending_rules | set(owned.get('source_rich', ()))}
        for zone, interfaces in self._restored_interfaces(fw, runtime['zone'], flush_all).items():
            ours.setdefault(('zone', zone), {})['interfaces'] = interfaces
        return runtime, permanent, ours

    @staticmethod
    def _restored_interfaces(fw, runtime_zones, flush_all):
        """{zone: runtime interfaces} a reload binds again: all of them without FlushAllOnReload,
        else those NetworkManager assigns (as firewalld's reload asks it)."""
        if not flush_all:
            return dict((zone, set(settings.get('interfaces') or ())) for zone, settings in runtime_zones.items())
        try:
            from firewall.core.fw_nm import nm_get_bus_name, nm_get_interfaces_in_zone  # pylint: disable=import-outside-toplevel
            if not nm_get_bus_name():
                return {}
            restored = {}
            for zone in list(runtime_zones) + ['']:
                name = zone or fw.getDefaultZone()
                restored.setdefault(name, set()).update(nm_get_interfaces_in_zone(zone) or ())
            return restored
        except Exception:  # pylint: disable=broad-except
            return {}

    def apply(self, change):
        if self.offline:
            self.apply_offline(change)
            return
        fw = self.client()
        if any(operation[1] == 'reload' for operation in change.operations):
            blockers = self.reload_blockers(self.load_state())
            if blockers:
                raise BackendError('firewalld changed after this run read it, and a reload is no longer safe (%s); '
                                   'nothing was written; run again' % '; '.join(blockers[:3]))
        config = fw.config()
        zone_config = config.getZoneByName(self.zone)
        trusted_config = config.getZoneByName(TRUSTED_ZONE)
        owned = self.record_intent(change)
        try:
            for view, action, kind, item in sorted(batch_permanent(change.operations), key=_apply_order):
                if action == 'reload':
                    fw.reload()
                    # The reload dropped every runtime per-source rule.
                    owned['source_rich'] = set()
                    continue
                self._apply_one(fw, config, zone_config, trusted_config, view, action, kind, item)
                for done in (item if action == 'update_zone' else [(view, action, kind, item)]):
                    _record_done(owned, *done)
        except BackendError:
            raise
        except Exception as exc:  # pylint: disable=broad-except
            raise BackendError('firewalld rejected a change: %s' % exc)
        finally:
            self.save_record(owned)

    def _apply_one(self, fw, config, zone_config, trusted_config, view, action, kind, item):
        if kind in TRUSTED_KINDS:
            target, runtime_zone = trusted_config, TRUSTED_ZONE
        else:
            target, runtime_zone = zone_config, self.zone
        if action in ('add', 'remove'):
            add = action == 'add'
            if view == 'permanent':
                method = {'ports': 'Port', 'protocols': 'Protocol', 'rich': 'RichRule', 'trusted': 'Source',
                          'interfaces': 'Interface'}[kind]
                if kind == 'ports':
                    port, protocol = item.split('/')
                    getattr(target, ('add' if add else 'remove') + method)(port, protocol)
                else:
                    getattr(target, ('add' if add else 'remove') + method)(item)
            else:
                if kind == 'ports':
                    port, protocol = item.split('/')
                    (fw.addPort if add else fw.removePort)(runtime_zone, port, protocol)
                elif kind == 'protocols':
                    (fw.addProtocol if add else fw.removeProtocol)(runtime_zone, item)
                elif kind == 'rich':
                    (fw.addRichRule if add else fw.removeRichRule)(runtime_zone, item)
                elif kind == 'interfaces':
                    (fw.addInterface if add else fw.removeInterface)(runtime_zone, item)
                else:
                    (fw.addSource if add else fw.removeSource)(runtime_zone, item)
        elif action == 'create_ipset':
            from firewall.client import FirewallClientIPSetSettings  # pylint: disable=import-outside-toplevel
            settings = FirewallClientIPSetSettings()
            settings.setType('hash:net')
            settings.setShort('kubeports peer set')
            settings.setOptions({'family': item['family']})
            settings.setEntries(sorted(item['entries']))
            config.addIPSet(kind, settings)
        elif action == 'delete_ipset':
            config.getIPSetByName(kind).remove()
        elif action == 'update_zone':
            target = trusted_config if kind == TRUSTED_ZONE else zone_config
            settings = target.getSettings()
            for _view, change, item_kind, value in item:
                _change_zone_settings(settings, change == 'add', item_kind, value)
            target.update(settings)
        elif action == 'set_entries':
            ipset = config.getIPSetByName(kind)
            added, removed = item
            kept = [entry for entry in ipset.getEntries() if normalize_entry(entry) not in removed]
            present = set(normalize_entry(entry) for entry in kept)
            ipset.setEntries(kept + sorted(entry for entry in added if entry not in present))
        elif action in ('add_entry', 'remove_entry'):
            if view == 'permanent':
                ipset = config.getIPSetByName(kind)
                (ipset.addEntry if action == 'add_entry' else ipset.removeEntry)(item)
            else:
                (fw.addEntry if action == 'add_entry' else fw.removeEntry)(kind, item)

    def admissions_after(self, current, change, client):
        """What admits TCP traffic from ``client`` in firewalld's runtime after ``change``: the
        zone that takes the client's packets (a zone bound to a source that contains it, else
        the zone of the interface they arrive on, else the default zone), its target, ports,
        services, protocols and accepting rich rules."""
        if self.offline:
            return [Admission(None, None, 'firewalld is not running')]
        fw = self.client()
        if any(operation[1] == 'reload' for operation in change.operations):
            # After the reload the runtime is the permanent configuration.
            runtime = simulate(current['permanent'], change.operations, 'permanent')
        else:
            runtime = simulate(current['runtime'], change.operations, 'runtime')
        address = ipaddress.ip_address(client)
        zone = None
        for name, info in sorted((fw.getActiveZones() or {}).items()):
            sources = runtime['trusted'] if name == TRUSTED_ZONE else info.get('sources') or ()
            if any(_contains(source, address) for source in sources):
                zone = name
                break
        if zone is None and any(_contains(source, address) for source in runtime['trusted']):
            zone = TRUSTED_ZONE
        if zone is None:
            interface = route_interface(self.run_command, client)
            zone = (fw.getZoneOfInterface(interface) if interface else None) or fw.getDefaultZone()
        settings = fw.getZoneSettings(zone)
        if zone == TRUSTED_ZONE or settings.getTarget() == 'ACCEPT':
            return [Admission(None, None, 'firewalld zone %s accepts everything' % zone)]
        if zone == self.zone:
            ports, protocols, rich = runtime['ports'], runtime['protocols'], runtime['rich']
        else:
            ports = set('%s/%s' % item for item in settings.getPorts())
            protocols, rich = set(settings.getProtocols()), set(settings.getRichRules())
        found = [Admission(None, parse_ports(item.split('/')[0]), 'firewalld port %s in zone %s' % (item, zone))
                 for item in sorted(ports) if item.endswith('/tcp')]
        if 'tcp' in protocols:
            found.append(Admission(None, None, 'firewalld protocol tcp in zone %s' % zone))
        for service in settings.getServices():
            for port, protocol in fw.getServiceSettings(service).getPorts():
                if protocol == 'tcp' and port:
                    found.append(Admission(None, parse_ports(port), 'firewalld service %s in zone %s' % (service, zone)))
        for text in sorted(rich):
            admission = self._rich_admission(fw, runtime, text)
            if admission is not None:
                found.append(admission)
        return found

    def exposures(self, current):
        """Everything firewalld's runtime admits (exposure entries), zone by zone: each
        active zone and the default one, with its target, services, ports, protocols and
        accepting rich rules; a zone bound to sources admits only them. The collection's items
        (its record, its ipsets) are marked owned."""
        fw = self.client()
        owned = current['owned'] if current['owned'].get('zone') in (None, self.zone) else {}
        active = fw.getActiveZones() or {}
        default = fw.getDefaultZone()
        found = []
        for zone in sorted(set(active) | {default, self.zone}):
            info = active.get(zone) or {}
            interfaces, bound = info.get('interfaces') or [], info.get('sources') or []
            if zone != default and not interfaces and not bound:
                continue
            bound = [entry for source in bound for entry in
                     (fw.getEntries(source[6:]) if str(source).startswith('ipset:') else [source])]
            # A zone takes the packets of its sources, and of its interfaces (the default
            # zone: of every interface no other zone has).
            sources = None if interfaces or zone == default else list(bound)
            where = 'zone %s' % zone
            settings = fw.getZoneSettings(zone)
            if zone == TRUSTED_ZONE:
                mine = set(owned.get('trusted', ()))
                for source in bound:
                    found.append(exposure('all', '', [source], 'firewalld trusted zone source %s' % source,
                                          owned=source in mine, scope='zone'))
                mine = set(owned.get('interfaces', ()))
                for name in interfaces:
                    found.append(exposure('all', '', None, 'firewalld trusted zone on interface %s' % name,
                                          owned=name in mine, scope='zone', interfaces=[name]))
                if zone == default:
                    found.append(exposure('all', '', None, 'firewalld trusted zone on every interface', scope='zone'))
                continue
            if settings.getTarget() == 'ACCEPT':
                found.append(exposure('all', '', sources, 'firewalld %s target ACCEPT' % where, scope='zone'))
            mine_ports = set(owned.get('ports', ())) if zone == self.zone else set()
            for port, protocol in settings.getPorts():
                item = '%s/%s' % (port, protocol)
                found.append(exposure(protocol, port, sources, 'firewalld port %s in %s' % (item, where),
                                      owned=item in mine_ports))
            mine_protocols = set(owned.get('protocols', ())) if zone == self.zone else set()
            for protocol in settings.getProtocols():
                found.append(exposure(protocol, '', sources, 'firewalld protocol %s in %s' % (protocol, where),
                                      owned=protocol in mine_protocols))
            for service in settings.getServices():
                found.extend(self._service_exposures(fw, service, sources, 'firewalld service %s in %s'
                                                     % (service, where)))
            for port, protocol in _settings_list(settings, 'getSourcePorts'):
                # Any destination port, from a source port the client chooses.
                found.append(exposure(protocol, '', sources, 'firewalld source port %s/%s in %s'
                                      % (port, protocol, where)))
            for forward in _settings_list(settings, 'getForwardPorts'):
                found.append(exposure(forward[1], forward[0], sources, 'firewalld forward port %s in %s'
                                      % ('/'.join(str(part) for part in forward if part), where)))
            for text in settings.getRichRules():
                found.extend(self._rich_exposures(fw, current['runtime'], owned, text, sources, where,
                                                  zone == self.zone))
        return found

    @staticmethod
    def _service_exposures(fw, service, sources, what, seen=None):
        """A service's ports, protocols and source ports, and those of the services it includes."""
        seen = set() if seen is None else seen
        if service in seen:
            return []
        seen.add(service)
        found = []
        details = fw.getServiceSettings(service)
        for port, protocol in details.getPorts():
            found.append(exposure(protocol, port, sources, what))
        for protocol in details.getProtocols():
            found.append(exposure(protocol, '', sources, what))
        for _port, protocol in _settings_list(details, 'getSourcePorts'):
            found.append(exposure(protocol, '', sources, what + ' (by source port)'))
        for included in _settings_list(details, 'getIncludes'):
            found.extend(FirewalldBackend._service_exposures(fw, included, sources, what, seen))
        return found

    def _rich_exposures(self, fw, runtime, owned, text, zone_sources, where, own_zone):
        try:
            from firewall.core import rich as rich_rules  # pylint: disable=import-outside-toplevel
            rule = rich_rules.Rich_Rule(rule_str=text)
        except Exception:  # pylint: disable=broad-except
            return [exposure('all', '', zone_sources, 'firewalld rich rule %s in %s (not understood)' % (text, where))]
        # Rich_Drop subclasses Rich_Accept: only accept itself admits.
        if type(rule.action) is not rich_rules.Rich_Accept or rule.destination is not None:  # pylint: disable=unidiomatic-typecheck
            return []
        normalized = self._normalize_rich(text)
        mine = own_zone and (('ipset="%s' % OWN_NAME_PREFIX) in normalized or normalized in owned.get('rich', ())
                             or normalized in owned.get('source_rich', ()))
        what = 'firewalld rich rule %s in %s' % (text, where)
        source = rule.source
        if source is None:
            sources = zone_sources
        elif getattr(source, 'invert', False) or getattr(source, 'mac', None):
            sources = None
            what += ' (an inverted or MAC source: counted as anyone)'
        elif getattr(source, 'ipset', None):
            ours = runtime['ipsets'].get(source.ipset) if own_zone else None
            sources = sorted(ours['entries']) if ours is not None else list(fw.getEntries(source.ipset))
        else:
            sources = [source.addr]
        element = rule.element
        if isinstance(element, rich_rules.Rich_SourcePort):
            # Any destination port, from a source port the client chooses.
            return [exposure(element.protocol, '', sources, what + ' (by source port)', owned=mine)]
        if isinstance(element, rich_rules.Rich_Port):
            return [exposure(element.protocol, element.port, sources, what, owned=mine)]
        if isinstance(element, rich_rules.Rich_Service):
            return [dict(item, owned=mine) for item in self._service_exposures(fw, element.name, sources, what)]
        if isinstance(element, rich_rules.Rich_Protocol):
            return [exposure(element.value, '', sources, what, owned=mine)]
        if element is None:
            return [exposure('all', '', sources, what, owned=mine)]
        return []

    @staticmethod
    def _rich_admission(fw, runtime, text):
        try:
            from firewall.core import rich as rich_rules  # pylint: disable=import-outside-toplevel
            rule = rich_rules.Rich_Rule(rule_str=text)
        except Exception:  # pylint: disable=broad-except
            return None
        # Rich_Drop subclasses Rich_Accept: only accept itself admits.
        if type(rule.action) is not rich_rules.Rich_Accept or rule.destination is not None:  # pylint: disable=unidiomatic-typecheck
            return None
        element = rule.element
        if isinstance(element, rich_rules.Rich_SourcePort):
            return None
        if isinstance(element, rich_rules.Rich_Port) and element.protocol == 'tcp':
            spans = parse_ports(element.port)
        elif isinstance(element, rich_rules.Rich_Service):
            spans = [span for port, protocol in fw.getServiceSettings(element.name).getPorts()
                     if protocol == 'tcp' and port for span in parse_ports(port)]
        elif element is None or (isinstance(element, rich_rules.Rich_Protocol) and element.value == 'tcp'):
            spans = None
        else:
            return None
        source = rule.source
        if source is None:
            sources = None
        elif getattr(source, 'invert', False) or getattr(source, 'mac', None):
            return None
        elif getattr(source, 'ipset', None):
            ours = runtime['ipsets'].get(source.ipset)
            sources = sorted(ours['entries']) if ours is not None else fw.getEntries(source.ipset)
        else:
            sources = [source.addr]
        return Admission(sources, spans, 'firewalld rich rule %s' % text)


def _settings_list(settings, getter):
    """A list of a settings object, empty where this firewalld has no such getter."""
    method = getattr(settings, getter, None)
    return list(method() or ()) if method is not None else []


def _record_done(owned, view, action, kind, item):
    """Updates the ownership record after one operation is done."""
    recorded = owned_kind(view, kind, item)
    if recorded in owned and action == 'add':
        owned[recorded].add(item)
    elif recorded in owned and action == 'remove' and (view == 'permanent' or recorded == 'source_rich'):
        owned[recorded].discard(item)


def _same(entry):
    return entry


def _canonical_rich(rule):
    return FirewalldBackend._normalize_rich(rule)


# kind: (getter, setter, the key two entries are the same by) of firewalld's zone settings.
ZONE_SETTINGS = {'ports': ('getPorts', 'setPorts', tuple), 'protocols': ('getProtocols', 'setProtocols', _same),
                 'rich': ('getRichRules', 'setRichRules', _canonical_rich),
                 'trusted': ('getSources', 'setSources', _same),
                 'interfaces': ('getInterfaces', 'setInterfaces', _same)}


def _change_zone_settings(settings, add, kind, item):
    """Adds ``item`` to, or removes it from, a permanent zone's settings (firewalld's client
    settings object); rich rules compare in firewalld's canonical form."""
    getter, setter, key = ZONE_SETTINGS[kind]
    value = tuple(item.split('/')) if kind == 'ports' else item
    wanted = key(value)
    items = [entry for entry in getattr(settings, getter)() if key(entry) != wanted]
    if add:
        items.append(value)
    getattr(settings, setter)(items)


def owned_kind(view, kind, item):
    """The ownership record's kind for an operation's item (runtime per-source rules have one)."""
    if kind == 'rich' and view == 'runtime' and 'source address=' in str(item):
        return 'source_rich'
    return kind


def _apply_order(operation):
    """Permanent before runtime; additions (ipsets, then rules) before removals (rules, then
    ipsets), so what stays open is never closed in between. Within an ipset, entries go before
    entries come: firewalld refuses an entry that overlaps one still there (a /31 split into a
    /32), and the two changes follow each other at once."""
    view, action, kind, _item = operation
    rank = {'create_ipset': 0, 'remove_entry': 1, 'set_entries': 1, 'add_entry': 1.5, 'add': 2, 'update_zone': 2.5,
            'remove': 3, 'delete_ipset': 5, 'reload': 9}[action]
    if action in ('add', 'remove') and kind == 'rich':
        rank = rank + 0.5 if action == 'add' else rank - 0.5
    return (VIEWS.index(view), rank)


def batch_permanent(operations):
    """The operations with the permanent configuration written once per object: each ipset's
    entry changes as one ('permanent', 'set_entries', ipset, (added, removed)), each zone's
    port, protocol, rich rule and source changes as one ('permanent', 'update_zone', zone,
    [operations]) with zone 'trusted' for trusted sources, else None (the collection's zone).
    The permanent configuration admits nothing until firewalld loads it, so one write cannot
    close what stays open. Runtime operations stay one by one: firewalld's runtime setEntries
    empties the set first, and a runtime change is live at once."""
    batched, entries, zones = [], {}, {}
    for operation in operations:
        view, action, kind, item = operation
        if view == 'permanent' and action in ('add_entry', 'remove_entry'):
            if kind not in entries:
                entries[kind] = (set(), set())
                batched.append((view, 'set_entries', kind, entries[kind]))
            entries[kind][0 if action == 'add_entry' else 1].add(item)
        elif view == 'permanent' and action in ('add', 'remove'):
            zone = TRUSTED_ZONE if kind in TRUSTED_KINDS else None
            if zone not in zones:
                zones[zone] = []
                batched.append((view, 'update_zone', zone, zones[zone]))
            zones[zone].append(operation)
        else:
            batched.append(operation)
    return batched


def route_interface(run_command, address):
    """The interface packets from ``address`` arrive on (its route), or None."""
    rc, out, _err = run_command(['ip', 'route', 'get', address], check=False)
    words = out.split() if rc == 0 else []
    return words[words.index('dev') + 1] if 'dev' in words[:-1] else None


def simulate(view, operations, view_name):
    """A copy of ``view`` with the operations of one view applied (pure)."""
    after = dict((kind, set(items)) for kind, items in view.items() if kind != 'ipsets')
    after['ipsets'] = dict((name, {'family': value['family'], 'entries': set(value['entries'])})
                           for name, value in view['ipsets'].items())
    for op_view, action, kind, item in operations:
        if op_view != view_name:
            continue
        if action == 'add':
            after[kind].add(item)
        elif action == 'remove':
            after[kind].discard(item)
        elif action == 'create_ipset':
            after['ipsets'][kind] = {'family': item['family'], 'entries': set(item['entries'])}
        elif action == 'delete_ipset':
            after['ipsets'].pop(kind, None)
        elif action == 'add_entry':
            after['ipsets'][kind]['entries'].add(item)
        elif action == 'remove_entry':
            after['ipsets'][kind]['entries'].discard(item)
    return after


def _ipset_settings(settings, entries):
    return {'type': settings.getType(), 'options': sorted((settings.getOptions() or {}).items()),
            'entries': set(normalize_entry(entry) for entry in entries or ())}


def _contains(source, address):
    try:
        network = ipaddress.ip_network(source, strict=False)
    except ValueError:
        return False
    return network.version == address.version and address in network


# The tools whose tables a firewalld reload flushes (-F, -X, -Z), on either of its backends.
SAVE_COMMANDS = ('iptables-save', 'ip6tables-save', 'ebtables-save')
# Settings whose items are rich rules, in zones and in policies.
RICH_SETTINGS = ('rules_str', 'rich_rules')


def flushed_by_reload(command, output):
    """What a firewalld reload would delete from one ``*tables-save`` output: its non-built-in
    chains and every rule, as 'command table/chain' strings (pure)."""
    found, table = [], None
    for line in output.splitlines():
        line = line.strip()
        if line.startswith('*'):
            table = line[1:]
        elif line.startswith(':'):
            chain = line[1:].split()[0] if line[1:].split() else ''
            if chain not in BUILTIN_CHAINS:
                found.append('%s %s/%s' % (command, table, chain))
        elif line.startswith('-A '):
            chain = line.split()[1] if len(line.split()) > 1 else ''
            found.append('%s %s/%s' % (command, table, chain))
    return sorted(set(found))


def _comparable(key, value):
    """A settings value in a form that compares equal however firewalld orders it."""
    if isinstance(value, (list, tuple)):
        items = set()
        for item in value:
            if key in RICH_SETTINGS:
                item = FirewalldBackend._normalize_rich(item)
            items.add(tuple(item) if isinstance(item, (list, tuple)) else item)
        return items
    return value


def runtime_drift(runtime, permanent, ours=None):
    """What a firewalld reload would change beyond the collection's own pending items: each
    difference between the runtime and the permanent configuration (pure).

    ``runtime`` and ``permanent`` map a kind ('zone', 'policy', 'ipset', or 'firewalld' for
    global settings) to {name: settings dict}. ``ours`` maps (kind, name) to
    {setting: items} the comparison leaves out: the collection's runtime per-source rules and
    the rules on its ipsets the runtime does not have yet, interfaces the reload restores.
    Returns readable strings, empty when the reload loses nothing and adds nothing.
    """
    ours = ours or {}
    drift = []
    for kind in sorted(set(runtime) | set(permanent)):
        have, want = runtime.get(kind, {}), permanent.get(kind, {})
        for name in sorted(set(have) | set(want)):
            if name not in want or name not in have:
                if (kind, name) not in ours:
                    drift.append('%s %s exists in the %s only'
                                 % (kind, name, 'runtime' if name in have else 'permanent configuration'))
                continue
            left_out = ours.get((kind, name), {})
            for key in sorted(set(have[name]) | set(want[name])):
                run_value = _comparable(key, have[name].get(key))
                perm_value = _comparable(key, want[name].get(key))
                skip = left_out.get(key, ())
                if isinstance(run_value, set) or isinstance(perm_value, set):
                    run_value = set(run_value or ()) - set(skip)
                    perm_value = set(perm_value or ()) - set(skip)
                    for items, where in ((run_value - perm_value, 'the runtime'),
                                         (perm_value - run_value, 'the permanent configuration')):
                        if items:
                            shown = sorted('/'.join(item) if isinstance(item, tuple) else str(item) for item in items)
                            drift.append('%s %s: %s only in %s: %s%s'
                                         % (kind, name, key, where, ', '.join(shown[:3]),
                                            ' and %d more' % (len(shown) - 3) if len(shown) > 3 else ''))
                elif run_value != perm_value:
                    drift.append('%s %s: %s is %r in the runtime, %r in the permanent configuration'
                                 % (kind, name, key, run_value, perm_value))
    return drift
