# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the actions that plan hosts on the controller share: their planning arguments (the
doc fragment kubeports.firewall.planning) and the action itself up to the plan."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib

from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.common.validation import check_type_list
from ansible.plugins.action import ActionBase

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_planner import plan_request
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.hostvars import (
    PlanHostvars, connection_plugins_listed_once, empty_facts_not_cleaned, group_vars_read_once)
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.installer_groups import installer_groups_formed

PLANNING_ARGUMENTS = dict(
    hosts=dict(type='list', elements='str', default=[]),
    role_groups=dict(type='dict'),
    catalog_dirs=dict(type='list', elements='path', default=[]),
    hosts_without_role=dict(type='str', choices=['fail', 'skip'], default='fail'),
)
# Options that, when not given, come from the inventory variable the lookup reads for them.
FROM_VARIABLES = (('role_groups', 'kubeports_role_groups'), ('catalog_dirs', 'kubeports_catalog_dirs'))


@contextlib.contextmanager
def planning_inventory(variables, play_hosts=None):
    """(groups, hostvars) of the whole inventory for the planner, from a task's or lookup's
    variables: the installer's groups formed for every host (see installer_groups), every
    host's variables templated as Ansible templates them; connection plugins are listed and
    group variables read once, and hosts without facts skip the cleaning of facts (hostvars).
    ``play_hosts``: the hosts a play applies to (installer_groups_formed)."""
    variables = variables or {}
    hostvars = variables.get('hostvars')
    with connection_plugins_listed_once(), empty_facts_not_cleaned(), group_vars_read_once():
        with installer_groups_formed(variables.get('groups'), hostvars, play_hosts) as groups:
            yield groups, PlanHostvars(hostvars)


class PlanningAction(ActionBase):
    """An action that plans the hosts of its arguments on the controller, touching no host;
    ``planned(result, document, args)`` makes its result from the plan (``self.task_vars`` are
    the task's variables). Bad input fails the task with the planner's message before
    ``planned`` runs."""

    TRANSFERS_FILES = False
    _requires_connection = False
    ARGUMENT_SPEC = PLANNING_ARGUMENTS
    # Whether the hosts planned are the hosts a play applies the plan to (with their own variables).
    APPLIES = False

    def run(self, tmp=None, task_vars=None):
        result = super(PlanningAction, self).run(tmp, task_vars)
        task_vars = self.task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        try:
            for option, variable in FROM_VARIABLES:
                if option not in self._task.args and variable in task_vars:
                    args[option] = self._templar.template(task_vars[variable])
            args['catalog_dirs'] = self._catalog_dirs(args['catalog_dirs'])
            hosts = [to_native(host) for host in args['hosts']]
            run_hosts = args.get('play_hosts')
            run_hosts = [to_native(host) for host in run_hosts] if run_hosts is not None else None
            with planning_inventory(task_vars, hosts if self.APPLIES else None) as (groups, hostvars):
                document = plan_request(groups, hostvars, args['role_groups'], args['catalog_dirs'], hosts,
                                        args['hosts_without_role'], run_hosts=run_hosts)
        except PlanError as exc:
            result.update(failed=True, msg=to_native(exc))
            return result
        return self.planned(result, document, args)

    @staticmethod
    def _catalog_dirs(value):
        try:
            return [to_native(item) for item in check_type_list(value if value is not None else [])]
        except TypeError:
            raise PlanError('kubeports_catalog_dirs (catalog_dirs): expected a list of directories, got %r' % (value,))

    def planned(self, result, document, args):
        raise NotImplementedError
