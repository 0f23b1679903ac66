# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet audit report from each host's port_rules_info result: the JSON shape
(docs/audit.md), a summary line, Markdown, and one self-contained HTML page.

Runs on the controller.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

from ansible_collections.kubeports.firewall.plugins.module_utils.audit import CATEGORIES, SEVERITIES, summarize

try:
    from html import escape
except ImportError:  # Python 2.7
    from cgi import escape  # pylint: disable=deprecated-module


def build_report(plan, results, skipped=()):
    """{hosts: {host: findings}, summary, backends, roles} of {host: port_rules_info result}."""
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
    return {'hosts': hosts, 'summary': summary, 'backends': backends, 'roles': roles, 'unaudited': failed,
            'skipped_hosts': list(skipped)}


def summary_line(report):
    summary = report['summary']
    return ('audit of %d hosts: %d clean; %d missing, %d extra, %d over-exposed (%d critical), %d foreign%s'
            % (summary['hosts'], summary['clean_hosts'], summary['missing'], summary['extra'],
               summary['over_exposed'], summary['critical'], summary['foreign'],
               '; %d hosts not audited' % summary['unaudited'] if summary['unaudited'] else ''))


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
        lines.append('| %s | %s | %s | %s |' % (host, report['backends'][host], '+'.join(report['roles'][host]) or '-',
                                                 ' | '.join(str(len(findings[name])) for name in CATEGORIES)))
    for host, reason in sorted(report['unaudited'].items()):
        lines.append('| %s | not audited: %s |%s' % (host, reason.replace('|', '/'), ' |' * (len(CATEGORIES) + 1)))
    for host, findings in sorted(report['hosts'].items()):
        if not any(findings.values()):
            continue
        lines += ['', '## %s' % host, '', '| Category | Severity | Port | Sources | What | Reference |',
                  '|---|---|---|---|---|---|']
        for category in CATEGORIES:
            for entry in findings[category]:
                lines.append('| %s | %s | %s | %s | %s | %s |' % (
                    category, entry['severity'], _port(entry), _sources(entry),
                    entry['description'].replace('|', '/'), entry.get('reference') or ''))
    return '\n'.join(lines) + '\n'


STYLE = '''
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
.critical{background:#f4b6b6}.high{background:#fbd9a5}.medium{background:#fdf1a8}.info{background:#dfe9f7}
.clean{background:#d5f0d5}.filters label{margin-right:1em}.hidden{display:none}
'''

SCRIPT = '''
(function(){
  function apply(){
    var shown={};
    document.querySelectorAll('.filters input').forEach(function(box){shown[box.value]=box.checked;});
    var text=document.getElementById('host-filter').value.toLowerCase();
    document.querySelectorAll('tr.finding').forEach(function(row){
      var visible=shown[row.dataset.category]&&row.dataset.host.toLowerCase().indexOf(text)>=0;
      row.classList.toggle('hidden',!visible);
    });
  }
  document.querySelectorAll('.filters input').forEach(function(box){box.addEventListener('change',apply);});
  document.getElementById('host-filter').addEventListener('input',apply);
  document.body.dataset.ready='yes';
})();
'''


def _worst(entries):
    ranks = [SEVERITIES.index(entry['severity']) for entry in entries]
    return SEVERITIES[min(ranks)] if ranks else None


def html(report, title='Firewall audit'):
    """One self-contained page: summary, a roles x ports matrix coloured by the worst finding,
    per-host findings with filters. No external scripts, fonts or styles."""
    parts = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
             '<title>%s</title><style>%s</style></head><body>' % (escape(title), STYLE),
             '<h1>%s</h1><p id="summary">%s</p>' % (escape(title), escape(summary_line(report)))]
    summary = report['summary']
    parts.append('<table id="totals"><tr>%s</tr><tr>%s</tr></table>' % (
        ''.join('<th>%s</th>' % name for name in ('hosts', 'clean_hosts') + CATEGORIES + ('critical',)),
        ''.join('<td>%s</td>' % summary[name] for name in ('hosts', 'clean_hosts') + CATEGORIES + ('critical',))))
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
        parts.append('<h2>Roles and ports</h2><table id="matrix"><tr><th>Roles</th>%s</tr>'
                     % ''.join('<th>%s</th>' % escape(port) for port in ordered))
        for label in sorted(cells):
            row = []
            for port in ordered:
                entries = cells[label].get(port) or []
                worst = _worst(entries)
                row.append('<td class="%s">%s</td>' % (worst or 'clean', len(entries) if entries else ''))
            parts.append('<tr><th>%s</th>%s</tr>' % (escape(label), ''.join(row)))
        parts.append('</table>')
    parts.append('<h2>Findings</h2><div class="filters">%s<label>Host <input type="search" id="host-filter">'
                 '</label></div>' % ''.join('<label><input type="checkbox" value="%s" checked> %s</label>'
                                            % (name, name) for name in CATEGORIES))
    parts.append('<table id="findings"><tr><th>Host</th><th>Category</th><th>Severity</th><th>Port</th>'
                 '<th>Sources</th><th>What</th><th>Reference</th></tr>')
    for host, findings in sorted(report['hosts'].items()):
        for category in CATEGORIES:
            for entry in findings[category]:
                parts.append('<tr class="finding %s" data-host="%s" data-category="%s"><td>%s</td><td>%s</td>'
                             '<td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>' % (
                                 entry['severity'], escape(host), category, escape(host), category,
                                 entry['severity'], escape(_port(entry)), escape(_sources(entry)),
                                 escape(entry['description']), escape(entry.get('reference') or '')))
    parts.append('</table><h2>Hosts</h2><table id="hosts"><tr><th>Host</th><th>Backend</th><th>Roles</th>%s</tr>'
                 % ''.join('<th>%s</th>' % name for name in CATEGORIES))
    for host, findings in sorted(report['hosts'].items()):
        clean = not any(findings[name] for name in CATEGORIES[:3])
        parts.append('<tr class="%s"><td>%s</td><td>%s</td><td>%s</td>%s</tr>' % (
            'clean' if clean else '', escape(host), escape(str(report['backends'][host])),
            escape('+'.join(report['roles'][host]) or '-'),
            ''.join('<td>%d</td>' % len(findings[name]) for name in CATEGORIES)))
    parts.append('</table><script type="application/json" id="audit-data">%s</script>'
                 % json.dumps(report['summary']).replace('</', '<\\/'))
    parts.append('<script>%s</script></body></html>' % SCRIPT)
    return '\n'.join(parts) + '\n'
