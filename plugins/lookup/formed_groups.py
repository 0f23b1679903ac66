# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: formed_groups
author: kubeports maintainers (@kubeports)
version_added: 0.2.0
short_description: The groups an installer adds a host to when it runs
description:
  - kubespray forms some groups at run time (C(k8s_cluster) from C(kube_control_plane),
    C(kube_node) and C(calico_rr), and the current names of legacy groups such as
    C(kube-master)); its C(group_vars/k8s_cluster/) apply only once the hosts are in them.
  - Returns, for each host given, the groups of a recognised installer inventory that the
    installer would add it to and that it is not in yet. Pass the result to
    M(ansible.builtin.group_by) so the installer's group_vars apply before planning, as the
    collection's playbooks do.
options:
  _terms:
    description: Inventory host names.
    type: list
    elements: str
    required: true
'''

EXAMPLES = r'''
- name: Form the groups kubespray forms, so its group_vars/k8s_cluster apply
  ansible.builtin.group_by:
    key: "{{ item }}"
  loop: "{{ query('kubeports.firewall.formed_groups', inventory_hostname) }}"
'''

RETURN = r'''
_list:
  description: Group names, for all hosts given together.
  type: list
  elements: str
'''

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.lookup import LookupBase

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.installers import INSTALLERS, missing_formed_groups


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        groups = (variables or {}).get('groups') or {}
        hosts = set(to_native(term) for term in terms)
        found = []
        for installer in INSTALLERS:
            if not installer.formed or not any(groups.get(group) for group in installer.markers):
                continue
            for group, missing in sorted(missing_formed_groups(installer, groups).items()):
                if hosts.intersection(missing) and group not in found:
                    found.append(group)
        return found
