# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan_hosts action: plans hosts on the controller and returns the plan as its result
(see plugins/modules/plan_hosts.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.peer_updates import update_command
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.action_base import PLANNING_ARGUMENTS, PlanningAction
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.profile_report import with_lines


class ActionModule(PlanningAction):

    APPLIES = True
    ARGUMENT_SPEC = dict(PLANNING_ARGUMENTS, play_hosts=dict(type='list', elements='str'))

    def planned(self, result, document, args):
        # Ansible strips "_ansible_" keys from a registered result at every depth: such a host
        # would drop out of the plan the play sees.
        hidden = sorted(host for host in document['hosts'] if host.startswith('_ansible_'))
        if hidden:
            result.update(failed=True, msg='host %s: a name that starts with "_ansible_" cannot be planned (Ansible '
                                           'removes such keys from a registered result); rename the host'
                                           % hidden[0])
            return result
        update = document.get('peers_to_update')
        if update is not None:
            update['inventories'] = list(self.task_vars.get('ansible_inventory_sources') or [])
            update['command'] = (update_command(update['hosts'], args['play_hosts'], update['inventories'])
                                 if update['hosts'] else None)
        result.update(document)
        result['clusters'] = with_lines(document['clusters'])
        result['changed'] = False
        return result
