# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan_reports action: plans on the controller and writes plan.json, plan.md and plan.html there,
returning only what the play shows (see plugins/modules/plan_reports.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import tempfile

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports import html_page
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.flow_diagram import svg
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.flows import plan_flows
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.plan_report import html, markdown, table_lines, unplanned_lines
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.profile_report import console_lines
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.action_base import PLANNING_ARGUMENTS, PlanningAction

REPORT_ARGUMENTS = dict(PLANNING_ARGUMENTS, report_dir=dict(type='path', required=True),
                        shown_hosts=dict(type='int', default=20))


REPORTS = (('json', 'plan.json'), ('markdown', 'plan.md'), ('html', 'plan.html'))


def report_texts(document, inventory=None):
    """{file name: content} of the plan's reports; ``inventory`` names the inventory in plan.html."""
    return {
        'plan.json': json.dumps(document, indent=2, sort_keys=True, separators=(',', ': ')) + '\n',
        'plan.md': markdown(document['hosts'], 'Planned firewall rules', document['clusters'], document) + '\n',
        'plan.html': html(document, inventory=inventory, diagram=svg(plan_flows(document))),
    }


def inventory_of(task_vars):
    """The inventory as Ansible knows it: its sources, else the inventory file; None if neither."""
    task_vars = task_vars or {}
    return task_vars.get('ansible_inventory_sources') or task_vars.get('inventory_file') or None


def differs(path, content):
    """Does the file hold other content (an HTML page: other but for its time stamp)?"""
    try:
        with open(path, encoding='utf-8') as handle:
            found = handle.read()
    except (IOError, OSError):
        return True
    if path.endswith('.html'):
        return not html_page.same_page(found, content)
    return found != content


def write_if_changed(path, content):
    """Writes ``content`` to ``path`` (atomically, mode 0644) unless it is there already; True if written."""
    if not differs(path, content):
        return False
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix='.tmp.')
    try:
        with os.fdopen(handle, 'w', encoding='utf-8') as stream:
            stream.write(content)
        os.chmod(temporary, 0o644)
        os.rename(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return True


class ActionModule(PlanningAction):

    ARGUMENT_SPEC = REPORT_ARGUMENTS

    def planned(self, result, document, args):
        shown = sorted(document['hosts'])[:max(args['shown_hosts'], 0)]
        result.update(
            profiles=[{'name': cluster['name'], 'lines': console_lines(cluster)} for cluster in document['clusters']],
            tables=[{'host': host, 'lines': table_lines(document['hosts'][host], 60, document)} for host in shown],
            summary={'hosts': len(document['hosts']), 'rule_lists': len(document['rule_lists']),
                     'sets': len(document['sets']), 'skipped_hosts': list(document['skipped_hosts']),
                     'unplanned': len(document['unplanned'])},
            unplanned=unplanned_lines(document, args['shown_hosts']),
            reports=dict((kind, os.path.join(args['report_dir'], name)) for kind, name in REPORTS),
            written=[], changed=False)
        # Never changed: the reports are the action's output on the controller, not a change to a host.
        directory = args['report_dir']
        texts = report_texts(document, inventory_of(self.task_vars))
        if self._task.check_mode:
            result['written'] = [name for name, text in sorted(texts.items())
                                 if differs(os.path.join(directory, name), text)]
            return result
        try:
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o755)
            for name, text in sorted(texts.items()):
                if write_if_changed(os.path.join(directory, name), text):
                    result['written'].append(name)
        except (IOError, OSError) as exc:
            result.update(failed=True, msg='cannot write the plan reports into %s: %s' % (directory, to_native(exc)))
        return result
