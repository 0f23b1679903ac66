# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet audit report from each host's port_rules_info result: the JSON shape
(docs/audit.md), a summary line, Markdown, and one self-contained HTML page.

Runs on the controller.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from html import escape

from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports import html_page
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports import references
from ansible_collections.kubeports.firewall.plugins.module_utils.audit import CATEGORIES, SEVERITIES, summarize


def build_report(plan, results, skipped=()):
    """{hosts: {host: findings}, summary, backends, roles} of {host: port_rules_info result};
    ``skipped`` hosts (no role) are named with why (the plan's ``unplanned``)."""
    hosts, backends, roles, failed = {}, {}, {}, {}
    for host in sorted(results):
        result = results[host] or {}
        if result.get('failed') or 'findings' not in result:
            failed[host] = result.get('msg') or 'no audit result'
            continue
        hosts[host] = dict((category, list(result['findings'].get(category) or [])) for category in CATEGORIES)
        backends[host] = result.get('backend')
        roles[host] = list((plan.get('hosts') or {}).get(host, {}).get('roles') or [])
    summary = summarize(hosts)
    summary['unaudited'] = len(failed)
    why = plan.get('unplanned') or {}
    return {'hosts': hosts, 'summary': summary, 'backends': backends, 'roles': roles, 'unaudited': failed,
            'skipped_hosts': list(skipped),
            'unplanned': dict((host, why.get(host, 'no role')) for host in skipped)}


def summary_line(report):
    summary = report['summary']
    skipped = len(report.get('skipped_hosts') or ())
    return ('audit of %d hosts: %d clean; %d missing, %d extra, %d over-exposed (%d critical), %d foreign%s%s'
            % (summary['hosts'], summary['clean_hosts'], summary['missing'], summary['extra'],
               summary['over_exposed'], summary['critical'], summary['foreign'],
               '; %d hosts not audited' % summary['unaudited'] if summary['unaudited'] else '',
               '; %d hosts skipped, planned for nothing' % skipped if skipped else ''))


def failing(report, fail_on):
    """The categories of ``fail_on`` that have findings."""
    unknown = [name for name in fail_on if name not in CATEGORIES]
    if unknown:
        raise ValueError('kubeports_audit_fail_on: unknown category %r (choose from %s)'
                         % (unknown[0], ', '.join(CATEGORIES)))
    return [name for name in fail_on if report['summary'][name]]


def _sources(entry):
    sources = entry.get('sources')
    if sources is None:
        return 'anyone'
    return ', '.join(sources[:4]) + (' and %d more' % (len(sources) - 4) if len(sources) > 4 else '')


def _port(entry):
    if entry.get('protocol') is None:
        return ''
    return '%s/%s' % (entry['protocol'], entry['port'] or 'every port')


def markdown(report):
    lines = ['# Firewall audit', '', summary_line(report), '']
    lines += ['| Host | Backend | Roles | ' + ' | '.join(CATEGORIES) + ' |',
              '|---|---|---|' + '---:|' * len(CATEGORIES)]
    for host, findings in sorted(report['hosts'].items()):
        counts = ' | '.join(str(len(findings[name])) for name in CATEGORIES)
        roles = '+'.join(report['roles'][host]) or '-'
        lines.append('| %s | %s | %s | %s |' % (host, report['backends'][host], roles, counts))
    for host, reason in sorted(report['unaudited'].items()):
        lines.append('| %s | not audited: %s |%s' % (host, reason.replace('|', '/'), ' |' * (len(CATEGORIES) + 1)))
    for host, reason in sorted((report.get('unplanned') or {}).items()):
        lines.append('| %s | skipped, planned for nothing: %s |%s' % (host, reason.replace('|', '/'),
                                                                      ' |' * (len(CATEGORIES) + 1)))
    for host, findings in sorted(report['hosts'].items()):
        if not any(findings.values()):
            continue
        lines += ['', '## %s' % host, '', '| Category | Severity | Port | Sources | What | Reference |',
                  '|---|---|---|---|---|---|']
        for category in CATEGORIES:
            for entry in findings[category]:
                lines.append('| %s | %s | %s | %s | %s | %s |' % (
                    category, entry['severity'], _port(entry), _sources(entry),
                    entry['description'].replace('|', '/'), references.markdown(entry['reference']) if entry.get('reference') else ''))
    return '\n'.join(lines) + '\n'


def _worst(entries):
    ranks = [SEVERITIES.index(entry['severity']) for entry in entries]
    return SEVERITIES[min(ranks)] if ranks else None


def html(report, title='Firewall audit'):
    """One self-contained page: the totals, a roles x ports matrix coloured by the worst
    finding, every finding with filters by category and host, and the hosts."""
    summary = report['summary']
    totals = ('hosts', 'clean_hosts') + CATEGORIES + ('critical',)
    body = [html_page.table(totals, [([str(summary[name]) for name in totals], {})], 'totals')]
    # Roles x ports: each cell the worst finding of the hosts with those roles on that port.
    cells, ports = {}, set()
    for host, findings in report['hosts'].items():
        label = '+'.join(report['roles'][host]) or '-'
        cells.setdefault(label, {})
        for category in CATEGORIES[:3]:
            for entry in findings[category]:
                port = _port(entry) or 'owned items'
                ports.add(port)
                cells[label].setdefault(port, []).append(entry)
    if ports:
        ordered = sorted(ports)
        rows = []
        for label in sorted(cells):
            row = ['<b>%s</b>' % escape(label)]
            for port in ordered:
                entries = cells[label].get(port) or []
                row.append('<span class="%s">%s</span>' % (_worst(entries) or 'clean', len(entries) if entries else ''))
            rows.append((row, {}))
        body += ['<h2>Roles and ports</h2>', html_page.table(['Roles'] + ordered, rows, 'matrix')]
    rows = []
    for host, findings in sorted(report['hosts'].items()):
        for category in CATEGORIES:
            for entry in findings[category]:
                rows.append(([escape(host), category, entry['severity'], escape(_port(entry)),
                              escape(_sources(entry)), escape(entry['description']),
                              references.html(entry['reference']) if entry.get('reference') else ''],
                             {'class': 'row %s' % entry['severity'], 'data-host': host, 'data-category': category}))
    body += ['<h2>Findings</h2>', html_page.filters(CATEGORIES),
             html_page.table(['Host', 'Category', 'Severity', 'Port', 'Sources', 'What', 'Reference'], rows,
                             'findings')]
    rows = []
    for host, findings in sorted(report['hosts'].items()):
        clean = not any(findings[name] for name in CATEGORIES[:3])
        rows.append(([escape(host), escape(str(report['backends'][host])), escape('+'.join(report['roles'][host]) or '-')]
                     + [str(len(findings[name])) for name in CATEGORIES], {'class': 'clean' if clean else ''}))
    for host, reason in sorted(report['unaudited'].items()):
        rows.append(([escape(host), 'not audited', escape(reason)] + [''] * len(CATEGORIES), {'class': 'critical'}))
    for host, reason in sorted((report.get('unplanned') or {}).items()):
        rows.append(([escape(host), 'skipped', escape('planned for nothing: %s' % reason)] + [''] * len(CATEGORIES), {}))
    body += ['<h2>Hosts</h2>', html_page.table(['Host', 'Backend', 'Roles'] + list(CATEGORIES), rows, 'hosts')]
    return html_page.page(title, summary_line(report), '\n'.join(body), summary)
