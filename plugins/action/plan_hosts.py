# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan_hosts action: plans hosts on the controller and returns the plan as its result
(see plugins/modules/plan_hosts.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning import PlanningAction


class ActionModule(PlanningAction):

    def planned(self, result, document, args):
        result.update(document)
        result['changed'] = False
        return result
