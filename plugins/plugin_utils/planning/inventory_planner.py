# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plans hosts of an Ansible inventory (groups and hostvars, as lookups receive them).

Before any rule is computed, every planned host's profile is resolved (kubeports_*
variables, then the installer's own variables, then defaults), unknown variables and
values are refused, and the hosts of the cluster must agree on what peers depend on.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import gc
import hashlib
import ipaddress
from collections.abc import Mapping

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning import installers
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning import inventory_groups
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.catalog import (
    default_catalog_dir, load_catalog)
from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import few
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_index import NODE_ROLES, InventoryIndex
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.host_planner import Planner
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.peer_updates import hosts_to_update
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.profile import (
    AGREED, DEFAULT_ORIGIN, INSTALLER_ALIASES, PORTLESS_CNIS, VARIABLE_PREFIX, agreed_value, check_variable_names, cidr_sets,
    resolve, show, values_with_origins)

# Host variables the planner reads besides kubeports_* ones.
PLAIN_VARIABLES = ('ansible_port', 'ansible_ssh_port')
SHOWN_HOSTS = 4
# Profile values printed even when they are the collection's defaults (the JSON has them all).
# CNIs whose IPv6 pod traffic travels between the nodes' IPv6 addresses (and IPv4 between IPv4).
UNDERLAY_PER_FAMILY = frozenset(('flannel', 'canal', 'calico'))
# Hosts that carry pod traffic.
NODE_ROLE_SET = frozenset(NODE_ROLES)
ALWAYS_SHOWN = frozenset(AGREED) | frozenset(('addons', 'kube_proxy', 'ssh_port', 'ip_families'))


def host_variables(hostvars, host):
    """A mapping of a host's variables (templated on access), or {} for unknown hosts."""
    try:
        return hostvars[host]
    except KeyError:
        return {}


_ABSENT = ('absent',)
_PLAIN_MAPPINGS = (dict,)
# The installer values of a host of no installer (never changed).
_NO_VALUES = {}
# Distinct sets of variable names an installer's reader is remembered with, per installer and server.
_READ_VARIANTS = 8


def value_token(variables, name):
    """A hashable token of one variable of a host: two hosts' tokens are equal only when their
    values are the same (the variable is absent from both, or both hold one object without a
    template); None when that cannot be told (a value with a template, a mapping of unknown
    kind). The objects behind a token must be kept alive while tokens are compared: the
    planner keeps every host's variables."""
    if name not in variables:
        return _ABSENT
    shared_token = getattr(variables, 'shared_token', None)
    if shared_token is not None:
        return shared_token(name)
    # Exactly a dict: a subclass (Ansible's lazy containers) could make its values on access.
    if type(variables) in _PLAIN_MAPPINGS:
        return ('value', id(variables[name]))
    return None


def value_tokens(variables, names):
    """value_token of each of ``names``, as a tuple."""
    tokens = getattr(variables, 'shared_tokens', None)
    if tokens is not None:
        return tokens(names, _ABSENT)
    return tuple(value_token(variables, name) for name in names)


class RecordedReads(Mapping):
    """A host's variables that note the names looked up (``names``; None once iterated, as
    then every name counts)."""

    def __init__(self, variables):
        self._variables = variables
        self.names = set()

    def __contains__(self, name):
        if self.names is not None:
            self.names.add(name)
        return name in self._variables

    def __getitem__(self, name):
        if self.names is not None:
            self.names.add(name)
        return self._variables[name]

    def __iter__(self):
        self.names = None
        return iter(self._variables)

    def __len__(self):
        self.names = None
        return len(self._variables)


def planner_variables(variables, names=None):
    wanted = {}
    for name in variables if names is None else names:
        if name.startswith(VARIABLE_PREFIX) or name in PLAIN_VARIABLES:
            wanted[name] = variables[name]
    return wanted


@contextlib.contextmanager
def paused_gc():
    """No cycle collection while a plan is built: it allocates many small acyclic objects, and
    full collections over a large heap would make the cost per host grow with the inventory."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def host_list(hosts):
    return few(sorted(hosts), SHOWN_HOSTS)


class InventoryPlanner(object):
    """The catalog, the inventory index, the resolved profiles and a planner for one inventory."""

    def __init__(self, groups, hostvars, role_groups=None, catalog_dirs=(), components=None):
        """``components``: an already loaded catalog (default: the collection's and ``catalog_dirs``)."""
        self.groups, self.hostvars = groups or {}, hostvars or {}
        if components is None:
            components = load_catalog([default_catalog_dir()] + list(catalog_dirs or ()))
        self.components = components
        self._variables = {}
        self._wanted = {}
        self.index = InventoryIndex(self.groups, self.variables_of, role_groups)
        self.planner = Planner(self.components, self.index)
        self._profiles = None
        self._clusters = None
        self._unplanned = None
        # Hosts whose profile inputs are alike share one resolution: {inputs: (alike, profile)}.
        self._resolved = {}
        self._same_inputs = {}
        self._alike = {}
        # Installer values by what the reader read: {(installer, server): [(names, {tokens: values})]}.
        self._installer_values = {}
        # Tokens of each host's wanted variables (None when one cannot be told), and the
        # kubeports_* name lists already checked.
        self._wanted_tokens = {}
        self._checked_names = set()
        # {every variable name of a host, in order: the names the planner reads}
        self._names_of = {}

    def variables_of(self, host):
        """A host's variables, fetched once (Ansible builds them on every access)."""
        found = self._variables.get(host)
        if found is None:
            found = self._variables[host] = host_variables(self.hostvars, host)
        return found

    def wanted_of(self, host):
        """The variables of a host that the planner reads (kubeports_* names checked), once."""
        found = self._wanted.get(host)
        if found is None:
            variables = self.variables_of(host)
            # Hosts mostly have the same variable names in the same order: picked once per list.
            every = tuple(variables)
            names = self._names_of.get(every)
            if names is None:
                names = self._names_of[every] = tuple(name for name in every
                                                      if name.startswith(VARIABLE_PREFIX) or name in PLAIN_VARIABLES)
            if names not in self._checked_names:
                check_variable_names(names, 'host %s' % host)
                self._checked_names.add(names)
            found = self._wanted[host] = planner_variables(variables, names)
            tokens = value_tokens(variables, names)
            self._wanted_tokens[host] = None if None in tokens else (names, tokens)
        return found

    def check_known(self, host):
        if host not in self.hostvars and host not in (self.groups.get('all') or ()):
            raise PlanError('host %s is not in the inventory' % host)

    # Profiles -----------------------------------------------------------------------------

    def profiles(self):
        """{host: profile} of every host that has a role, resolved and checked once."""
        if self._profiles is None:
            with paused_gc():
                self._profiles = self._resolve_all()
        return self._profiles

    def _resolve_all(self):
        self._check_group_names()
        self._check_installer_groups()
        detected = installers.detect(self.groups, self._sets_any)
        profiles = {}
        for host in self.index.planned_hosts():
            profiles[host] = self._resolve(host, detected.get(host))
        self._check_catalog(profiles)
        self._check_families(profiles)
        self._check_agreement(profiles)
        return profiles

    def _check_families(self, profiles):
        """Refuses a node without an address of a family its pod network has, where the CNI carries
        that family's pod traffic between node addresses of the same family (its peers would
        admit it over the other family only)."""
        families_of = {}
        for host, profile in profiles.items():
            if not UNDERLAY_PER_FAMILY.intersection(profile['cni']) or not self.index.host_roles(host) & NODE_ROLE_SET:
                continue
            where, pods = profile['cidr_sets']['pods']
            key = tuple(str(item) for item in pods)
            wanted = families_of.get(key)
            if wanted is None:
                wanted = families_of[key] = set()
                for item in pods:
                    try:
                        wanted.add(ipaddress.ip_network(str(item).strip(), strict=False).version)
                    except ValueError:
                        continue
            have = set(net.version for net in self.index.addresses[host])
            for version in sorted(wanted - have):
                raise PlanError('host %s: the pod network has IPv%d (%s from %s), which %s carries between the '
                                'nodes\' IPv%d addresses, but the host has none (%s), so no peer would admit it '
                                'over IPv%d; set kubeports_address to all its addresses (kubespray: ip and ip6)'
                                % (host, version, ', '.join(key), where, '/'.join(sorted(
                                    UNDERLAY_PER_FAMILY.intersection(profile['cni']))), version,
                                   ', '.join(str(net.ip) for net in self.index.addresses[host]), version))

    def kind_of(self, host):
        """A key that planned hosts share only when they are planned alike (the same roles and
        profile inputs: the same rules but for their own addresses), or None."""
        alike = self._alike.get(host)
        return None if alike is None else (alike, frozenset(self.index.host_roles(host)))

    def _sets_any(self, host, names):
        variables = self.variables_of(host)
        return any(name in variables for name in names)

    def _check_group_names(self):
        """Refuses groups whose names are close to a known group's while their hosts lack its role."""
        named = set()
        for host in self.groups.get('all') or ():
            variables = self.variables_of(host)
            for var in installers.GROUP_NAME_VARIABLES:
                if var in variables and variables[var]:
                    named.add(str(variables[var]))
        others = set(installers.KNOWN_GROUPS) | named
        for installer in installers.INSTALLERS:
            for group, sources in installer.formed.items():
                others.add(group)
                others.update(sources)
        known = inventory_groups.known_groups(self.index.role_groups, others)
        misses = inventory_groups.near_misses(self.groups, known, self.index.host_roles, self.index.explicit)
        if misses:
            raise PlanError('; '.join(near_miss_message(miss) for miss in misses))

    def unplanned(self):
        """{host: why it is planned for nothing} of every inventory host without a role."""
        if self._unplanned is None:
            self._unplanned = inventory_groups.unplanned_reasons(self.groups, self.index.host_roles)
        return self._unplanned

    def _check_installer_groups(self):
        for group in sorted(installers.KNOWN_GROUPS):
            dropped = [host for host in self.groups.get(group) or () if not self.index.host_roles(host)]
            if dropped:
                raise PlanError('host(s) %s in group %s have no role: add them to a group named in '
                                'kubeports_role_groups or set kubeports_roles' % (host_list(dropped), group))
        for host in self.groups.get('all') or ():
            for var in installers.GROUP_NAME_VARIABLES:
                group = self.variables_of(host).get(var)
                dropped = [member for member in self.groups.get(str(group)) or () if not self.index.host_roles(member)]
                if group and dropped:
                    raise PlanError('%s (host %s) names group %s, whose host(s) %s have no role: map it in '
                                    'kubeports_role_groups' % (var, host, group, host_list(dropped)))
        for installer in installers.INSTALLERS:
            if not installer.formed or not any(self.groups.get(group) for group in installer.markers):
                continue
            missing = installers.missing_formed_groups(installer, self.groups)
            for group, hosts in sorted(missing.items()):
                raise PlanError('group %s lacks %s, which %s adds to it when it runs (its group_vars/%s would '
                                'not apply): plan through the collection\'s actions or lookups, which form it from '
                                'Ansible\'s inventory, run the playbook kubeports.firewall.installer_groups first, '
                                'or define %s in the inventory'
                                % (group, host_list(hosts), installer.name, group, group))

    def _resolve(self, host, detected):
        variables = self.variables_of(host)
        source = 'host %s' % host
        wanted = self.wanted_of(host)
        name = detected or 'none'
        explicit = wanted.get(VARIABLE_PREFIX + 'installer')
        if explicit not in (None, ''):
            name = INSTALLER_ALIASES.get(str(explicit).strip().lower(), str(explicit).strip().lower())
            if name not in installers.BY_NAME and name != 'none':
                resolve(wanted, source)  # names the bad value
        values = _NO_VALUES
        if name != 'none':
            installer = installers.BY_NAME[name]
            server = None
            if installer.server_groups and not installers.is_server(installer, host, self.groups):
                server = installers.server_of(installer, self.groups)
            values, shared = self._read_installer(installer, host, variables, server)
        else:
            shared = True  # _NO_VALUES
        tokens = self._wanted_tokens.get(host)
        # The same installer values (one object) and the same wanted variables (value_token):
        # the same inputs, known without comparing their contents.
        same = ('shared', tokens, id(values)) if shared and tokens is not None else None
        found = self._same_inputs.get(same) if same is not None else None
        if found is None:
            inputs = _input_key((wanted, values))
            found = self._resolved.get(inputs)
        if found is not None:
            alike, profile = found
            # Only the CIDR lists' "where" names the host (for error messages).
            profile = dict(profile, cidr_sets=cidr_sets(wanted, source, values, {}))
        else:
            profile = resolve(wanted, source, values)
            if not profile['ip_families']:
                profile['ip_families'] = list(self.index.ip_families) or ['ipv4']
                profile['origins']['ip_families'] = 'inventory addresses'
            alike = len(self._resolved)
            found = self._resolved[inputs] = (alike, profile)
        if same is not None:
            self._same_inputs[same] = found
        self._alike[host] = alike
        return profile

    def _read_installer(self, installer, host, variables, server):
        """(the installer's values for a host, whether other hosts share that object).

        A reader's values depend only on the variables it reads (and the groups and server,
        the same for the hosts compared): a host whose variables it read are the same as an
        earlier host's (value_token) gets that host's values. Values naming their host (a
        refused CNI) are the host's own."""
        variants = self._installer_values.setdefault((installer.name, server), [])
        for names, known in variants:
            tokens = value_tokens(variables, names)
            if None not in tokens and tokens in known:
                return known[tokens], True
        recorded = RecordedReads(variables)
        context = installers.Context(host, recorded, self.groups, server,
                                     self.variables_of(server) if server else None)
        values = installers.read_values(installer, context)
        if recorded.names is None or any(isinstance(item, tuple) and item and isinstance(item[0], installers.Refused)
                                         for item in values.values()):
            return values, False
        names = tuple(sorted(recorded.names))
        tokens = value_tokens(variables, names)
        if None in tokens:
            return values, False
        for known_names, known in variants:
            if known_names == names:
                known[tokens] = values
                return values, True
        if len(variants) < _READ_VARIANTS:
            variants.append((names, {tokens: values}))
            return values, True
        return values, False

    def _check_catalog(self, profiles):
        served = set()
        for component in self.components:
            served.update(component.applies_when.get('cni') or ())
            cni = component.applies_when.get('cni')
            if isinstance(cni, str):
                served.add(cni)
        for host, profile in sorted(profiles.items()):
            for cni in profile['cni']:
                if cni not in served and cni not in PORTLESS_CNIS:
                    raise PlanError('cni=%s (%s, host %s): the catalog has no component for this CNI; add one '
                                    '(kubeports_catalog_dirs), or set kubeports_cni: none and open its ports '
                                    'with kubeports_extra_rules' % (cni, profile['origins']['cni'], host))

    def _check_agreement(self, profiles):
        # Alike hosts have equal profiles: each kind is looked at once (its hosts in order).
        kinds = {}
        for host in self.index.members['cluster']:
            if host in profiles:
                kinds.setdefault(self._alike.get(host, ('host', host)), []).append(host)
        for key in AGREED:
            sides = {}
            for hosts in kinds.values():
                value = agreed_value(profiles[hosts[0]], key)
                sides.setdefault(value, []).extend(hosts)
            if len(sides) < 2:
                continue
            parts = []
            for value, hosts in sorted(sides.items(), key=lambda item: (-len(item[1]), str(item[0]))):
                origins = sorted(set(profiles[host]['origins'][key] for host in hosts))
                parts.append('%s (%s) on %s' % (show(list(value) if isinstance(value, tuple) else value),
                                                ', '.join(origins), host_list(hosts)))
            raise PlanError('the hosts of one cluster disagree on %s: %s. Peers must agree: set it once for '
                            'the whole cluster (group_vars of all or k8s_cluster)' % (key, '; '.join(parts)))

    def clusters(self):
        """The resolved profiles as reports: the cluster's, then one per other profile outside it."""
        if self._clusters is None:
            profiles = self.profiles()
            members = set(self.index.members['cluster'])
            groups = []
            cluster_hosts = sorted(host for host in profiles if host in members)
            if cluster_hosts:
                groups.append(('cluster', cluster_hosts))
            outside = {}
            for host in sorted(profiles):
                if host not in members:
                    signature = tuple(values_with_origins(profiles[host]))
                    outside.setdefault(signature, []).append(host)
            for hosts in outside.values():
                groups.append(('outside the cluster', hosts))
            self._clusters = [self._cluster_report(name, hosts, profiles) for name, hosts in groups]
        return self._clusters

    def _cluster_report(self, name, hosts, profiles):
        # Hosts with the same profile (most of a cluster) are described and looked at once.
        alike, kinds = {}, {}
        for host in hosts:
            key = self._alike[host]
            if key not in alike:
                alike[key] = dict((item, (value, origin)) for item, value, origin in values_with_origins(profiles[host]))
                kinds[key] = host
        values = {}
        shown = []
        for key, value, origin in values_with_origins(profiles[hosts[0]]):
            seen = [found[key] for found in alike.values() if key in found]
            origins = sorted(set(item[1] for item in seen))
            if any(item[0] != value for item in seen):
                values[key] = {'value': None, 'origin': 'varies by host: %s' % ', '.join(origins)}
                shown.append('%s varies by host' % key)
                continue
            if len(origins) > 1:
                origin = ', '.join(origins[:2]) + (' and %d more' % (len(origins) - 2) if len(origins) > 2 else '')
            values[key] = {'value': value, 'origin': origin}
            if origin != DEFAULT_ORIGIN or key in ALWAYS_SHOWN:
                shown.append('%s=%s (%s)' % (key, value, origin))
        notes = sorted(set(note for host in kinds.values() for note in profiles[host]['notes']))
        line = '%s (%s): %s' % (name, host_list(hosts), ', '.join(shown))
        if notes:
            line += '. Note: ' + '; '.join(notes)
        return {'name': name, 'hosts': hosts, 'values': values, 'notes': notes, 'line': line}

    # Plans --------------------------------------------------------------------------------

    def plan(self, hosts=None):
        """HostPlans of ``hosts`` (None: every host that has a role; an empty list plans nothing)."""
        profiles = self.profiles()
        plans = []
        for host in self.index.planned_hosts() if hosts is None else hosts:
            self.check_known(host)
            if not self.index.host_roles(host):
                raise PlanError('host %s has no role: it is %s. Add it to a group named in kubeports_role_groups, '
                                'set kubeports_roles for it, or leave it out of the play'
                                % (host, self.unplanned().get(host, 'in no group')))
            variables = self.wanted_of(host)
            # Alike hosts have equal planner variables and installer values (see _resolve).
            plans.append(self.planner.plan(host, variables, profile=profiles.get(host), alike=self._alike.get(host)))
        return plans

    def plan_document(self, hosts=None, skipped_hosts=()):
        """The plan of ``hosts``, every peer set and every distinct rule list once (see compact)."""
        with paused_gc():
            sets, rule_lists, hosts_out = compact(self.plan(hosts))
        # Every host with a role by its addresses, so reports name the hosts behind a set's CIDRs.
        addresses = dict((host, [str(net) for net in self.index.addresses[host]]) for host in self.index.planned_hosts())
        return {'clusters': self.clusters(), 'sets': sets, 'rule_lists': rule_lists, 'hosts': hosts_out,
                'skipped_hosts': list(skipped_hosts), 'unplanned': dict(self.unplanned()), 'addresses': addresses}


def near_miss_message(miss):
    """The refusal of one inventory_groups.NearMiss, naming both groups, the hosts and the fix."""
    one = len(miss.hosts) == 1
    hosts = '%s %s' % ('host' if one else 'hosts', host_list(miss.hosts))
    if miss.roles:
        what = 'role %s' % ', '.join(sorted(miss.roles))
        lack = '%s %s, so %s would be planned without it' % (
            'does not have' if one else 'do not have', what, 'it' if one else 'they')
    else:
        what = 'a group the collection knows'
        lack = '%s no role, so %s would be planned for nothing' % ('has' if one else 'have', 'it' if one else 'they')
    return ('group %s looks like a misspelling of %s (%s): its %s %s. Rename the group to %s; if %s is meant, map '
            'it in kubeports_role_groups or set kubeports_roles for %s'
            % (miss.group, miss.known, what, hosts, lack, miss.known, miss.group, 'that host' if one else 'those hosts'))


def plan_request(groups, hostvars, role_groups, catalog_dirs, hosts, hosts_without_role='fail', output='plan',
                 run_hosts=None):
    """The plan of the requested ``hosts`` (every host with a role when empty), as the lookup
    and the plan_reports action give it: the document (``output='plan'``) or the host plans.
    With ``hosts_without_role='skip'`` requested hosts without a role are left out (listed in
    the document's skipped_hosts); the inventory is checked even when none has a role.
    ``run_hosts``: every host the run applies to (a play's hosts under --limit); the document's
    peers_to_update then names the planned hosts outside it that must admit them
    (peer_updates.hosts_to_update)."""
    planner = InventoryPlanner(groups, hostvars, role_groups, catalog_dirs)
    skipped = []
    if hosts and hosts_without_role == 'skip':
        skipped = [host for host in hosts if not planner.index.host_roles(host)]
        hosts = [host for host in hosts if planner.index.host_roles(host)]
        if not hosts:
            planner.profiles()
            if output != 'plan':
                return []
            document = planner.plan_document([], skipped)
            if run_hosts is not None:
                document['peers_to_update'] = hosts_to_update(planner, run_hosts)
            return document
    if output != 'plan':
        return planner.plan(hosts or None)
    document = planner.plan_document(hosts or None, skipped)
    if run_hosts is not None:
        document['peers_to_update'] = hosts_to_update(planner, run_hosts)
    return document


def _keyed(variants, text_of):
    """Keys of named variants: the name alone, or with "@" and a digest of the content when a
    name has several; the digest grows until the keys of one name differ (never two contents
    under one key)."""
    keys = {}
    for name, members in variants.items():
        if len(members) == 1:
            keys[(name, next(iter(members)))] = name
            continue
        digests = dict((content, hashlib.sha1(text_of(content).encode('utf-8')).hexdigest()) for content in members)
        length = next((size for size in (8, 12, 16, 40)
                       if len(set(digest[:size] for digest in digests.values())) == len(digests)), None)
        if length is None:
            raise PlanError('%s: two different contents have one digest; please report this' % name)
        for content, digest in digests.items():
            keys[(name, content)] = '%s@%s' % (name, digest[:length])
    return keys


def _input_key(value):
    """A hashable, type-preserving copy of variable values (mappings, sequences, scalars):
    equal keys mean equal inputs (1 and "1" differ)."""
    tokens = []
    _add_tokens(value, tokens)
    return tuple(tokens)


def _add_tokens(value, tokens):
    kind = type(value)
    if kind in _TOKEN_TYPES:
        tokens.append(kind)
        tokens.append(value)
    elif isinstance(value, Mapping):
        tokens.append(dict)
        tokens.append(len(value))
        for key in sorted(value, key=str):
            tokens.append(str(key))
            _add_tokens(value[key], tokens)
    elif isinstance(value, (list, tuple)):
        tokens.append(list)
        tokens.append(len(value))
        for item in value:
            _add_tokens(item, tokens)
    elif isinstance(value, (str, int, float)):
        tokens.append(kind)
        tokens.append(value)
    else:
        # Anything else (an installer's refusal, say) makes the inputs alike to no other.
        tokens.append(object)
        tokens.append(object())


_TOKEN_TYPES = frozenset((str, int, float, bool, type(None)))


def _shown_rule(rule, signature, key_of):
    """(its set's key or None, the rule as a rule list shows it, that as text, its sources when
    they are the host's own or None) of one host's rule."""
    shown = dict((field, value) for field, value in rule.items() if field != 'host')
    key = own_sources = None
    if signature is None and rule['source_set'] is not None:
        own_sources = rule['sources']
        del shown['sources']
    elif signature is not None:
        key = key_of[signature]
        del shown['sources']
    # Everything shown counts: hosts share a rule list only when it reads the same for them.
    return key, shown, repr(shown), own_sources


def compact(plans):
    """({set key: members}, {rule list key: rule list}, host entries) of HostPlans.

    Each peer set's members are listed once: a restricted rule names its set in ``source_set``
    and carries no ``sources``; rules open to anyone keep theirs. Each distinct rule list is
    listed once too, as {rules, sets, skipped}, where ``sets`` maps the name of each shared set
    its rules use to the set's key; hosts with the same rules (most workers) share one. Host
    entries are keyed by host name: {host, roles, rule_list, own_sets}, ``own_sets`` holding the members of the sets
    that are the host's own (its addresses, alone or with a few CIDRs). Keys are the set's name (or the hosts' roles for rule lists),
    with "@" and a digest of the content when one name has several contents. The size is
    linear in hosts plus the total size of the distinct sets and rule lists.
    """
    contents, variants = {}, {}
    for plan in plans:
        for rule, signature in zip(plan.rules, plan.signatures):
            if signature is not None and signature not in contents:
                content = tuple(rule['sources'])
                contents[signature] = (rule['source_set'], content)
                variants.setdefault(rule['source_set'], {}).setdefault(content, rule['sources'])
    keys = _keyed(variants, '\n'.join)
    sets = dict((keys[(name, content)], sources) for name, members in variants.items()
                for content, sources in members.items())
    key_of = dict((signature, keys[found]) for signature, found in contents.items())
    lists, owners, list_variants, entries = {}, {}, {}, []
    # A rule that hosts share (plan.shared) reads the same for all of them: shown once.
    shown_once = {}
    # Rules of hosts' own addresses with one shape and signature read the same but for their
    # own sources: {(shape, signature): (key, shown, text)}.
    shown_shaped = {}
    for plan in plans:
        shown_rules, used, own, fingerprint = [], {}, {}, []
        for rule, signature, shared, shape in zip(plan.rules, plan.signatures, plan.shared, plan.shapes):
            if shape is not None:
                shaped = shown_shaped.get((id(shape), signature))
                if shaped is None:
                    shaped = shown_shaped[(id(shape), signature)] = _shown_rule(rule, signature, key_of)[:3]
                found = shaped + ((rule['sources'] if signature is None else None),)
            else:
                found = shown_once.get(id(shared)) if shared is not None else None
                if found is None:
                    found = _shown_rule(rule, signature, key_of)
                    if shared is not None and found[3] is None:
                        shown_once[id(shared)] = found
            key, shown, text, own_sources = found
            if own_sources is not None:
                own[rule['source_set']] = own_sources
            if key is not None:
                used[rule['source_set']] = key
            fingerprint.append((key, text))
            shown_rules.append(shown)
        fingerprint.append(repr(plan.skipped))
        fingerprint = tuple(fingerprint)
        label = '+'.join(plan.roles)
        if fingerprint not in lists:
            lists[fingerprint] = {'rules': [dict(shown) for shown in shown_rules], 'sets': used,
                                  'skipped': plan.skipped}
            owners[fingerprint] = label
            list_variants.setdefault(label, {})[fingerprint] = True
        entries.append((plan, owners[fingerprint], fingerprint, own))
    list_keys = _keyed(list_variants, repr)
    rule_lists = dict((list_keys[(label, fingerprint)], lists[fingerprint])
                      for label, members in list_variants.items() for fingerprint in members)
    hosts = dict((plan.host, {'host': plan.host, 'roles': plan.roles, 'rule_list': list_keys[(label, fingerprint)],
                              'own_sets': own}) for plan, label, fingerprint, own in entries)
    return sets, rule_lists, hosts
