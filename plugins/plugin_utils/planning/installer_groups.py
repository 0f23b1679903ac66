# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The groups an installer forms when it runs (kubespray's k8s_cluster, the current names of
legacy groups), formed in Ansible's inventory for the length of one plan.

Every host of the whole inventory is added at once and the inventory is reconciled once, so
forming is linear in hosts (a per-host group_by reconciles the whole inventory for each host).
The hosts' variables then include the formed groups' group_vars exactly as under the
installer, whatever --limit says. The inventory is put back as it was afterwards."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.installers import INSTALLERS, missing_formed_groups
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.profile import ROLE_VARIABLES, VARIABLE_PREFIX

# Variables that a play reads on each host itself (not through the plan): set only in a formed
# group, the play would not see them.
PLAY_VARIABLES = frozenset(VARIABLE_PREFIX + name for name in ROLE_VARIABLES)
PLAY_VARIABLE_PREFIXES = ('ansible_',)
_PROBE_HOST = '__kubeports_formed_group_probe__'


def groups_to_form(groups):
    """{group: [hosts]} that a recognised installer adds to its groups at run time and that are
    not in them yet."""
    groups = groups or {}
    wanted = {}
    for installer in INSTALLERS:
        if not installer.formed or not any(groups.get(group) for group in installer.markers):
            continue
        for group, hosts in missing_formed_groups(installer, groups).items():
            wanted.setdefault(group, set()).update(hosts)
    return dict((group, sorted(hosts)) for group, hosts in wanted.items())


def inventory_of(hostvars):
    """Ansible's inventory behind ``hostvars`` (HostVars keeps it), or None for plain mappings."""
    inventory = getattr(hostvars, '_inventory', None)
    needed = ('groups', 'hosts', 'add_group', 'reconcile_inventory', 'get_groups_dict', '_inventory')
    if inventory is None or not all(hasattr(inventory, name) for name in needed):
        return None
    return inventory


class _Snapshot(object):
    """The membership of every group and host (lists copied, linear in the inventory)."""

    def __init__(self, inventory):
        self.group_names = set(inventory.groups)
        self.groups = [(group, list(group.hosts), list(group.child_groups), list(group.parent_groups), group.depth)
                       for group in inventory.groups.values()]
        self.hosts = [(host, list(host.groups), host.vars) for host in inventory.hosts.values()]

    def restore(self, inventory):
        for name in list(inventory.groups):
            if name not in self.group_names:
                del inventory.groups[name]
        for group, hosts, children, parents, depth in self.groups:
            group.hosts[:] = hosts
            group.child_groups[:] = children
            group.parent_groups[:] = parents
            group.depth = depth
            group._hosts = None
            group._hosts_cache = None
        for host, groups, variables in self.hosts:
            host.groups[:] = groups
            host.vars = variables
        data = getattr(inventory, '_inventory', None)
        if data is not None and hasattr(data, '_groups_dict_cache'):
            data._groups_dict_cache = {}


def _form(inventory, wanted):
    data = inventory._inventory
    for group, hosts in sorted(wanted.items()):
        if group not in inventory.groups:
            inventory.add_group(group)
        for host in hosts:
            data.add_child(group, host)
    # Groups new to the inventory become children of "all", as after group_by.
    inventory.reconcile_inventory()


def play_variables_of(hostvars, inventory, group_names):
    """{group: sorted names} of the variables that each formed group sets (or sets differently
    from "all") and that a play reads on the host itself: kubeports_* role variables and
    ansible_* connection variables. Read with a host that is in "all" and the group only."""
    manager = getattr(hostvars, '_variable_manager', None)
    if manager is None or not group_names:
        return {}
    from ansible.inventory.host import Host
    found = {}
    probe = Host(_PROBE_HOST)
    all_group = inventory.groups['all']
    probe.groups = [all_group]
    base = manager.get_vars(host=probe, include_hostvars=False)
    for name in group_names:
        probe.groups = [all_group, inventory.groups[name]]
        formed = manager.get_vars(host=probe, include_hostvars=False)
        names = sorted(key for key, value in formed.items()
                       if (key in PLAY_VARIABLES or key.startswith(PLAY_VARIABLE_PREFIXES))
                       and (key not in base or base[key] != value))
        if names:
            found[name] = names
    return found


@contextlib.contextmanager
def installer_groups_formed(groups, hostvars, play_hosts=None):
    """The inventory's groups with the installer's groups formed for every host, while the
    block runs (the inventory behind ``hostvars`` changed, then put back).

    ``play_hosts``: hosts a play applies to with their own variables; when one of them gains a
    formed group whose group_vars set a variable the play reads on the host itself, PlanError
    says so (the play would not see that value). Plain mappings (no Ansible inventory) pass
    through unchanged; the planner then refuses groups that lack their hosts."""
    wanted = groups_to_form(groups)
    inventory = inventory_of(hostvars) if wanted else None
    if inventory is None:
        yield groups
        return
    snapshot = _Snapshot(inventory)
    try:
        _form(inventory, wanted)
        if play_hosts:
            _check_play_variables(hostvars, inventory, wanted, play_hosts)
        yield inventory.get_groups_dict()
    finally:
        snapshot.restore(inventory)


def _check_play_variables(hostvars, inventory, wanted, play_hosts):
    play_hosts = set(play_hosts)
    gained = dict((group, [host for host in hosts if host in play_hosts]) for group, hosts in wanted.items())
    gained = dict((group, hosts) for group, hosts in gained.items() if hosts)
    for group, names in sorted(play_variables_of(hostvars, inventory, sorted(gained)).items()):
        hosts = gained[group]
        shown = ', '.join(hosts[:4]) + (' and %d more' % (len(hosts) - 4) if len(hosts) > 4 else '')
        raise PlanError('%s: set by the group_vars of %s, a group the installer forms only when it runs. The '
                        'planner forms it, but this play reads %s on %s itself and does not see that value. Set it '
                        'in group_vars/all or a group of the inventory, or form the groups in the play first '
                        '(import the playbook kubeports.firewall.installer_groups)'
                        % (', '.join(names), group, 'them' if len(names) > 1 else 'it', shown))
