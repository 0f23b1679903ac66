# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports import audit_report as audit_reports
from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError, dict_without, kind_of
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.peer_updates import update_note
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.flow_diagram import svg
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.flows import audit_flows, plan_flows, verify_flows
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.plan_report import markdown, table_lines
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.verify_report import (
    build_report, report_html, report_lines, report_markdown)


def port_table(plan, width=60, document=None):
    """Text table lines of one host plan (from required_ports with details=true, or a host of output=plan)."""
    if not isinstance(plan, dict) or not ('rules' in plan or ('rule_list' in plan and document)):
        got = dict_without(plan, ('rules', 'rule_list') if document else ('rules',))
        raise AnsibleFilterError('port_table expects one host plan (a dict) from required_ports(details=true), or a host '
                                 'of output=plan with its document=, got %s' % got)
    try:
        return table_lines(plan, int(width), document)
    except (PlanError, KeyError) as exc:
        raise AnsibleFilterError('port_table: %s (give the whole plan of output=plan with document=)' % exc)


def port_markdown(plans, title='Planned firewall rules', clusters=None, document=None):
    """A Markdown report of host plans, with the resolved cluster profiles first."""
    if not isinstance(plans, (list, dict)):
        raise AnsibleFilterError('port_markdown expects a list of host plans or the hosts of a plan (a dict), got %s'
                                 % kind_of(plans))
    try:
        return markdown(plans, title, clusters or (), document)
    except (PlanError, KeyError) as exc:
        raise AnsibleFilterError('port_markdown: %s (give the whole plan of output=plan with document=)' % exc)


def verify_report(plan, listeners, results, inventory=None):
    """Probe results compared with the plan, with text lines, Markdown and the HTML page
    (``inventory`` named in its header)."""
    if not isinstance(plan, dict) or 'probes' not in plan:
        raise AnsibleFilterError('verify_report expects the result of the probe_plan lookup (a dict), got %s'
                                 % dict_without(plan, ('probes',)))
    for name, value in (('listeners', listeners), ('results', results)):
        if not isinstance(value, dict):
            raise AnsibleFilterError('verify_report: %s must map host names to module results (a dict), got %s'
                                     % (name, kind_of(value)))
    report = build_report(plan, listeners, results)
    report['clusters'] = plan.get('clusters') or []
    report['lines'] = report_lines(report)
    report['markdown'] = report_markdown(report)
    diagram = svg(verify_flows(plan['flows'], report)) if plan.get('flows') else None
    report['html'] = report_html(report, inventory=_inventory(inventory), diagram=diagram)
    return report


def _inventory(value):
    """The inventory as given (a path or a list of sources), as plain text for the page."""
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return str(value) if value else None


def audit_report(plan, results, fail_on=None, skipped=None, inventory=None):
    """The fleet audit of each host's port_rules_info result against the plan: the report's
    JSON shape plus its summary line, Markdown, HTML and the failing categories."""
    if not isinstance(plan, dict) or 'hosts' not in plan:
        raise AnsibleFilterError('audit_report expects the plan of plan_hosts or required_ports(output=plan) (a dict), '
                                 'got %s' % dict_without(plan, ('hosts',)))
    if not isinstance(results, dict):
        raise AnsibleFilterError('audit_report: results must map host names to port_rules_info results (a dict), got %s'
                                 % kind_of(results))
    report = audit_reports.build_report(plan, results, skipped or ())
    try:
        report['failing'] = audit_reports.failing(report, list(fail_on or ()))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))
    report['line'] = audit_reports.summary_line(report)
    report['markdown'] = audit_reports.markdown(report)
    diagram = svg(audit_flows(plan_flows(plan), report))
    report['html'] = audit_reports.html(report, inventory=_inventory(inventory), diagram=diagram)
    return report


def peer_update_note(update, results, run_hosts):
    """The line naming the hosts outside a limited run that do not admit its new hosts yet, and
    the command that updates them ('' when none): ``update`` is plan_hosts' peers_to_update,
    ``results`` maps the run's hosts to their port_rules results (new_to_peer_sets)."""
    if not update:
        return ''
    if not isinstance(update, dict) or 'holders' not in update:
        raise AnsibleFilterError('peer_update_note expects the peers_to_update of plan_hosts (a dict), got %s'
                                 % dict_without(update, ('holders',)))
    if not isinstance(results, dict):
        raise AnsibleFilterError('peer_update_note: results must map host names to port_rules results (a dict), got %s'
                                 % kind_of(results))
    new = [host for host, result in results.items() if isinstance(result, dict) and result.get('new_to_peer_sets')]
    return update_note(update, new, list(run_hosts or ()))


class FilterModule(object):

    def filters(self):
        return {'port_table': port_table, 'port_markdown': port_markdown, 'verify_report': verify_report,
                'audit_report': audit_report, 'peer_update_note': peer_update_note}
