# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet audit report from each host's port_rules_info result: the JSON shape
(docs/audit.md), a summary line, Markdown, and one self-contained HTML page.

Runs on the controller.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
from html import escape

from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports import html_page
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports import references
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.set_hosts import SHOWN, SetHosts
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import few
from ansible_collections.kubeports.firewall.plugins.module_utils.audit import CATEGORIES, SEVERITIES, summarize


def build_report(plan, results, skipped=()):
    """{hosts: {host: findings}, summary, backends, roles} of {host: port_rules_info result};
    ``skipped`` hosts (no role) are named with why (the plan's ``unplanned``)."""
    hosts, backends, roles, failed = {}, {}, {}, {}
    for host in sorted(results):
        result = results[host] or {}
        roles[host] = list((plan.get('hosts') or {}).get(host, {}).get('roles') or [])
        if result.get('failed') or 'findings' not in result:
            failed[host] = result.get('msg') or 'no audit result'
            continue
        hosts[host] = dict((category, list(result['findings'].get(category) or [])) for category in CATEGORIES)
        backends[host] = result.get('backend')
    summary = summarize(hosts)
    summary['unaudited'] = len(failed)
    why = plan.get('unplanned') or {}
    return {'hosts': hosts, 'summary': summary, 'backends': backends, 'roles': roles, 'unaudited': failed,
            'skipped_hosts': list(skipped),
            'unplanned': dict((host, why.get(host, 'no role')) for host in skipped),
            'clusters': list(plan.get('clusters') or ()), 'addresses': dict(plan.get('addresses') or {})}


def host_counts(report):
    """{hosts (every row of the host table), clean, findings, unaudited, skipped}: the rows add up."""
    summary = report['summary']
    skipped = len(report.get('unplanned') or report.get('skipped_hosts') or ())
    return {'hosts': summary['hosts'] + summary['unaudited'] + skipped, 'clean': summary['clean_hosts'],
            'findings': summary['hosts'] - summary['clean_hosts'], 'unaudited': summary['unaudited'], 'skipped': skipped}


def summary_line(report):
    """One line whose host counts add up to the hosts the report lists."""
    summary, counts = report['summary'], host_counts(report)
    return ('audit of %d hosts: %d clean, %d with findings%s%s; findings: %d missing, %d extra, %d over-exposed '
            '(%d critical), %d foreign'
            % (counts['hosts'], counts['clean'], counts['findings'],
               ', %d not audited' % counts['unaudited'] if counts['unaudited'] else '',
               ', %d skipped (planned for nothing)' % counts['skipped'] if counts['skipped'] else '',
               summary['missing'], summary['extra'], summary['over_exposed'], summary['critical'], summary['foreign']))


def failing(report, fail_on):
    """The categories of ``fail_on`` that have findings."""
    unknown = [name for name in fail_on if name not in CATEGORIES]
    if unknown:
        raise ValueError('kubeports_audit_fail_on: unknown category %r (choose from %s)'
                         % (unknown[0], ', '.join(CATEGORIES)))
    return [name for name in fail_on if report['summary'][name]]


# The sources of an item the audit did not parse (an extra item is its backend's text).
UNPARSED_SOURCES = 'as the item says'


def _sources(entry, names=None):
    """Who the finding is about: "anyone" only for a parsed item open to everyone; an address
    of an inventory host with the host's name."""
    sources = entry.get('sources')
    if sources is None:
        return UNPARSED_SOURCES if entry.get('protocol') is None else 'anyone'
    shown = []
    for source in sources[:4]:
        hosts = names.members('', [source])['hosts'] if names is not None else []
        shown.append('%s (%s)' % (source, few(hosts, SHOWN)) if hosts else source)
    return ', '.join(shown) + (' and %d more' % (len(sources) - 4) if len(sources) > 4 else '')


def _port(entry):
    if entry.get('protocol') is None:
        return ''
    return '%s/%s' % (entry['protocol'], entry['port'] or 'every port')


def markdown(report):
    lines = ['# Firewall audit', '', '**%s**' % banner(report)[1].replace('|', '/'), '', summary_line(report), '']
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


# The audit's name for the unknown state.
LABELS = {'unknown': 'not audited'}
# Category names as the banner says them.
CATEGORY_TEXT = {'missing': 'missing', 'extra': 'extra', 'over_exposed': 'over-exposed', 'foreign': 'foreign'}


def _entries(findings):
    return [(category, entry) for category in CATEGORIES for entry in findings.get(category) or ()]


def _worst(entries):
    ranks = [SEVERITIES.index(entry['severity']) for entry in entries]
    return SEVERITIES[min(ranks)] if ranks else None


def host_states(report):
    """{host: state} of every host the report lists (html_page.STATES): an audited host by the
    worst severity of its findings (clean without any), a host not audited "unknown", a host
    planned for nothing "skipped"."""
    states = {}
    for host, findings in report['hosts'].items():
        states[host] = _worst([entry for _category, entry in _entries(findings)]) or 'clean'
    for host in report.get('unaudited') or {}:
        states[host] = 'unknown'
    for host in report.get('unplanned') or {}:
        states.setdefault(host, 'skipped')
    return states


def worst_finding(report):
    """(host, category, entry) of the worst finding of the fleet (severity, then category, then host), or None."""
    found = [(SEVERITIES.index(entry['severity']), CATEGORIES.index(category), host, category, entry)
             for host, findings in report['hosts'].items() for category, entry in _entries(findings)]
    if not found:
        return None
    best = min(found, key=lambda item: item[:3])
    return best[2], best[3], best[4]


def finding_text(host, category, entry):
    """"node3: etcd 2379/tcp open to anyone (over-exposed, critical)": the host, the port and what is wrong."""
    protocol = entry.get('protocol')
    port = '%s/%s' % (entry['port'], protocol) if protocol and entry.get('port') else \
        '' if protocol in (None, 'all') else protocol
    what = entry['description']
    public = re.search(r'(?:^|: )([^:]+) open to anyone \(', what)
    if public and category == 'over_exposed':
        what = ' '.join(item for item in (public.group(1), port, 'open to anyone') if item)
    elif port and port not in what and _port(entry) not in what:
        what = '%s %s' % (port, what)
    return '%s: %s (%s, %s)' % (host, what, CATEGORY_TEXT.get(category, category), entry['severity'])


def banner(report):
    """(state, text) of the page's banner: pass, or how many hosts are in trouble and the worst finding."""
    states = host_states(report)
    counts = host_counts(report)
    trouble = [host for host, state in states.items() if state in html_page.TROUBLE]
    state = html_page.worst(states.values())
    if not trouble:
        text = 'PASS: all %d audited hosts match the plan' % report['summary']['hosts']
        if counts['skipped']:
            text += '; %d skipped (planned for nothing)' % counts['skipped']
        return ('clean' if state in ('clean', 'info', 'skipped') else state), text
    labels = dict(html_page.STATE_LABELS, **LABELS)
    by_state = ', '.join('%d %s' % (sum(1 for host in trouble if states[host] == name), labels[name])
                         for name in html_page.TROUBLE if any(states[host] == name for host in trouble))
    text = 'FAIL: %d of %d hosts in trouble (%s)' % (len(trouble), counts['hosts'], by_state)
    worst = worst_finding(report)
    unaudited = sorted(report.get('unaudited') or ())
    # A host not audited ranks below critical and high findings, above the others.
    if worst and (not unaudited or html_page.rank(worst[2]['severity']) < html_page.rank('unknown')):
        text += '; worst: %s' % finding_text(*worst)
    elif unaudited:
        text += '; worst: %s not audited: %s' % (unaudited[0], report['unaudited'][unaudited[0]])
    return state, text


def html(report, title='Firewall audit', inventory=None, version=None, generated=None, diagram=None):
    """One self-contained page: the banner, the hosts worst-first coloured by their worst
    finding, a roles x ports matrix whose cells carry the worst finding's colour, and every
    finding with filters by category and host."""
    names = SetHosts({'addresses': report.get('addresses') or {}})
    states = host_states(report)
    state, headline = banner(report)
    hosts = []
    for host, findings in report['hosts'].items():
        worst = worst_finding({'hosts': {host: findings}})
        hosts.append((host, states[host], [escape(str(report['backends'][host])),
                                           escape('+'.join(report['roles'][host]) or '-')]
                      + [html_page.cell(len(findings[name]) or '', _worst(findings[name]) if findings[name] else None)
                         for name in CATEGORIES]
                      + [escape(finding_text(*worst).split(': ', 1)[1]) if worst else '']))
    for host, reason in (report.get('unaudited') or {}).items():
        hosts.append((host, 'unknown', ['-', escape('+'.join(report['roles'].get(host) or ()) or '-')]
                      + [''] * len(CATEGORIES) + [escape('not audited: %s' % reason)]))
    for host, reason in (report.get('unplanned') or {}).items():
        hosts.append((host, 'skipped', ['-', '-'] + [''] * len(CATEGORIES) + [escape('planned for nothing: %s' % reason)]))
    hosts_html = html_page.host_table(['Backend', 'Roles'] + [CATEGORY_TEXT[name] for name in CATEGORIES]
                                      + ['Worst finding, or why not audited'], hosts, labels=LABELS)
    body = []
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
                row.append(html_page.cell(len(entries) if entries else 'ok', _worst(entries) or 'clean'))
            rows.append((row, {}))
        body += ['<h2>Roles and ports</h2><p>Findings on each port of the hosts with those roles (missing, extra, '
                 'over-exposed), coloured by the worst of them.</p>', html_page.table(['Roles'] + ordered, rows, 'matrix')]
    rows = []
    for host, findings in sorted(report['hosts'].items(), key=lambda item: (html_page.rank(states[item[0]]), item[0])):
        for category in CATEGORIES:
            for entry in findings[category]:
                rows.append(([escape(host), category, entry['severity'], escape(_port(entry)),
                              escape(_sources(entry, names)), escape(entry['description']),
                              references.html(entry['reference']) if entry.get('reference') else ''],
                             {'class': 'row %s' % entry['severity'], 'data-host': host, 'data-category': category}))
    body += ['<h2>Findings</h2>', html_page.filters(CATEGORIES),
             html_page.table(['Host', 'Category', 'Severity', 'Port', 'Sources', 'What', 'Reference'], rows,
                             'findings')]
    data = dict(report['summary'], host_counts=host_counts(report), states=states)
    return html_page.frame(title, state, headline, '\n'.join(body), data, hosts_html,
                           legend_states=html_page.STATE_NAMES, inventory=inventory or report.get('inventory'),
                           clusters=report.get('clusters') or (), version=version, generated=generated,
                           diagram=diagram, labels=LABELS)
