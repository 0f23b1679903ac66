# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by the actions that plan hosts on the controller (plan_hosts, plan_reports)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options:
  hosts:
    description:
      - Inventory host names to plan. Empty plans every inventory host that has a role.
    type: list
    elements: str
    default: []
  role_groups:
    description:
      - As the lookup's O(kubeports.firewall.required_ports#lookup:role_groups); the default understands the installers' groups.
      - When not given, the variable C(kubeports_role_groups) as the lookup reads it.
    type: dict
  catalog_dirs:
    description:
      - As the lookup's O(kubeports.firewall.required_ports#lookup:catalog_dirs).
      - When not given, the variable C(kubeports_catalog_dirs) as the lookup reads it.
    type: list
    elements: path
    default: []
  hosts_without_role:
    description: As the lookup's O(kubeports.firewall.required_ports#lookup:hosts_without_role).
    type: str
    choices: [fail, skip]
    default: fail
'''
