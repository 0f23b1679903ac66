# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plans hosts of an Ansible inventory (groups and hostvars, as lookups receive them)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.kubeports.firewall.plugins.module_utils.catalog import (
    default_catalog_dir, load_catalog)
from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.module_utils.peers import InventoryIndex
from ansible_collections.kubeports.firewall.plugins.module_utils.planner import Planner

# Host variables the planner reads besides kubeports_* ones.
PLAIN_VARIABLES = ('ansible_port', 'ansible_ssh_port')


def host_variables(hostvars, host):
    """A mapping of a host's variables (templated on access), or {} for unknown hosts."""
    try:
        return hostvars[host]
    except KeyError:
        return {}


def planner_variables(variables):
    wanted = {}
    for name in variables:
        if name.startswith('kubeports_') or name in PLAIN_VARIABLES:
            wanted[name] = variables[name]
    return wanted


class InventoryPlanner(object):
    """The catalog, the inventory index and a planner for one inventory."""

    def __init__(self, groups, hostvars, role_groups=None, catalog_dirs=()):
        self.groups, self.hostvars = groups or {}, hostvars or {}
        components = load_catalog([default_catalog_dir()] + list(catalog_dirs or ()))
        self.index = InventoryIndex(self.groups, lambda host: host_variables(self.hostvars, host), role_groups)
        self.planner = Planner(components, self.index)

    def check_known(self, host):
        if host not in self.hostvars and host not in (self.groups.get('all') or ()):
            raise PlanError('host %s is not in the inventory' % host)

    def plan(self, hosts=None):
        """HostPlans of ``hosts`` (default: every host that has a role)."""
        plans = []
        for host in hosts or self.index.planned_hosts():
            self.check_known(host)
            plans.append(self.planner.plan(host, planner_variables(host_variables(self.hostvars, host))))
        return plans
