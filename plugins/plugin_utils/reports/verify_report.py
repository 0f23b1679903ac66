# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reachability report: probe results judged against the probe plan, as text, Markdown
and one self-contained HTML page."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from html import escape

from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports import html_page
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.catalog import ROLES
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.probe_planner import (
    BLOCKED, ERROR, SATISFIES, address_family)


def _current(result, plan):
    """A module result that ran, succeeded, and belongs to this plan's run (not an earlier one)."""
    if not isinstance(result, dict) or result.get('failed') or result.get('skipped') or result.get('unreachable'):
        return False
    return result.get('run_id') == plan.get('run_id')


# How a probe was proven, in the order the report lists them.
METHODS = ('connect', 'echo', 'overlay', 'datagram', 'none')
METHOD_TEXT = {
    'connect': 'TCP connection (handshake completed, refused, or no answer)',
    'echo': "UDP nonce sent to the kubeports listener, which echoes it",
    'overlay': 'ICMP echo through the kernel tunnel device holding the port (VXLAN, Geneve): an answer proves '
               'the port on both nodes, each from the other',
    'datagram': 'plain UDP datagram to a port another owner holds: only an ICMP error answers it, silence '
                'proves nothing',
    'none': 'no probe result (the probing host failed, no listener result, or the probe could not be sent)',
}
OUTCOMES = ('passed', 'failed', 'unproven')


def _listener_entry(plan, listeners, target, protocol, port, address):
    """(status, error, owner) of the target's port: "kubeports", "in use", "failed" or "unknown"."""
    result = listeners.get(target)
    if not _current(result, plan):
        return 'unknown', result.get('msg') if isinstance(result, dict) else None, None
    family = address_family(address)
    wildcard = '::' if family == 6 else '0.0.0.0'
    # The socket for this very address first, then the family's wildcard.
    for wanted in (address, wildcard):
        for kind, status in (('listening', 'kubeports'), ('in_use', 'in use'), ('errors', 'failed')):
            for item in result.get(kind) or ():
                if item.get('protocol') == protocol and int(item.get('port')) == port and \
                        item.get('family', family) == family and item.get('address', address) == wanted:
                    return status, item.get('error'), item.get('owner')
    return 'unknown', None, None


def _listener_status(plan, listeners, target, protocol, port, address):
    """How the target's port was served: "kubeports", "in use", "failed" or "unknown"."""
    return _listener_entry(plan, listeners, target, protocol, port, address)[:2]


def _after_deadline(result, listener, margin=2.0):
    """True when a probe may have ended after the target's listeners did (clocks may differ a little)."""
    deadline = listener.get('deadline')
    ended = result.get('started')
    if not deadline or ended is None:
        return False
    return float(ended) + float(result.get('seconds') or 0) > float(deadline) - margin


def build_report(plan, listeners, results):
    """Compare every probe with its expectation.

    ``listeners``: {target: result of probe_listeners}; ``results``: {source: result of
    probe_ports}. A host whose module failed or did not run is named in not_probed.
    """
    checked, not_probed = [], list(plan['not_probed'])
    probe_seconds = 0.0
    for source in sorted(plan['probes']):
        outcome = results.get(source)
        observed = {}
        source_failed = None
        if not _current(outcome, plan):
            source_failed = outcome.get('msg') if isinstance(outcome, dict) else None
            source_failed = source_failed or 'the probing host did not run its probes'
        else:
            observed = dict((item['id'], item) for item in outcome.get('results') or ())
            probe_seconds = max(probe_seconds, float(outcome.get('seconds') or 0))
        for probe in plan['probes'][source]:
            record = dict(probe)
            status, error, owner = _listener_entry(plan, listeners, probe['target'], probe['protocol'],
                                                   probe['port'], probe['address'])
            record['listener'] = status
            seen = None if source_failed else observed.get(probe['id'])
            method = _method(probe, status, seen)
            record['method'] = method
            owner = owner or (seen or {}).get('owner')
            if owner and status == 'in use':
                record['owner'] = owner
            reason = None
            if source_failed:
                reason = 'not probed from %s: %s' % (source, source_failed)
            elif status == 'unknown':
                reason = 'no listener result from %s%s' % (probe['target'], ': %s' % error if error else '')
            elif seen is None:
                reason = 'no result for this probe from %s' % source
            elif seen['observed'] == ERROR:
                reason = seen.get('detail') or 'could not probe from %s' % source
            elif status == 'kubeports' and _after_deadline(seen, listeners[probe['target']]):
                reason = 'the listeners on %s had reached their lifetime when this probe ran; raise ' \
                         'kubeports_verify_listener_lifetime (or the forks)' % probe['target']
            elif method == 'datagram' and seen.get('silent', True):
                reason = _silent_reason(probe, owner, seen)
            if reason:
                record['reason'] = reason
                record['outcome'] = 'unproven'
                if method != 'datagram':
                    record['method'] = 'none' if seen is None or seen.get('observed') == ERROR else method
                not_probed.append(record)
                continue
            record['observed'] = seen['observed']
            record['detail'] = seen.get('detail', '')
            if seen.get('via'):
                record['via'] = seen['via']
            if status == 'failed':
                record['detail'] = ('%s; listener failed: %s' % (record['detail'], error)).strip('; ')
            record['result'] = 'ok' if seen['observed'] in SATISFIES[probe['expected']] else 'mismatch'
            record['outcome'] = 'passed' if record['result'] == 'ok' else 'failed'
            checked.append(record)
    mismatches = sorted((record for record in checked if record['result'] == 'mismatch'), key=_order)
    others = sorted((record for record in checked if record['result'] == 'ok'), key=_order)
    hosts = host_summary(plan, checked, not_probed)
    return {
        'hosts': hosts,
        'summary': {'probes': len(checked), 'ok': len(others), 'mismatches': len(mismatches),
                    'not_probed': len(not_probed),
                    'hosts': len(hosts),
                    'probe_seconds': probe_seconds,
                    'unproven': sum(1 for item in not_probed if item.get('outcome') == 'unproven'),
                    'methods': method_counts(checked + not_probed)},
        'mismatches': mismatches,
        'probes': mismatches + others,
        'not_probed': sorted(not_probed, key=_unprobed_order),
        'matrix': matrix(mismatches + others),
    }


def record_state(record):
    """The state (html_page.STATES) a probe gives its destination: a probe that reached a port
    that must be blocked "critical", one blocked where it must pass "high", a probe that cannot
    prove anything by its nature (a UDP port another program holds, a protocol without ports)
    "info", a probe that failed to run (no listener, no result, the prober failed) "unknown",
    a probe as expected "clean"."""
    if 'result' not in record:
        if record.get('outcome') == 'unproven' and record.get('method') != 'datagram':
            return 'unknown'
        return 'info'
    if record['result'] == 'ok':
        return 'clean'
    return 'critical' if record['expected'] == BLOCKED else 'high'


def host_summary(plan, checked, not_probed):
    """{host: {roles, probes, ok, mismatches, unproven, not_probed, state, worst}} of every host of
    the plan (destinations and probing hosts). A probe not made counts against the host that
    failed to probe, when that is why, else against its destination."""
    hosts = {}

    def entry(host, roles=None):
        found = hosts.setdefault(host, {'roles': roles or '', 'probes': 0, 'ok': 0, 'mismatches': 0, 'unproven': 0,
                                        'not_probed': 0, 'state': 'clean', 'worst': ''})
        if roles and not found['roles']:
            found['roles'] = roles
        return found

    for host, target in (plan.get('targets') or {}).items():
        entry(host, target.get('roles'))
    for source in plan.get('probes') or {}:
        entry(source)
    for record in checked:
        entry(record['source'], record.get('source_roles'))
        found = entry(record['target'], record.get('target_roles'))
        found['probes'] += 1
        found['ok' if record['result'] == 'ok' else 'mismatches'] += 1
        _judge(found, record_state(record), record)
    for record in not_probed:
        if not record.get('target'):
            continue
        failed_source = record.get('source') and str(record.get('reason', '')).startswith('not probed from ')
        found = entry(record['source'] if failed_source else record['target'])
        state = 'unknown' if failed_source else record_state(record)
        found['unproven' if state == 'info' else 'not_probed'] += 1
        _judge(found, state, record)
    return hosts


def _judge(found, state, record):
    if html_page.rank(state) < html_page.rank(found['state']):
        found['state'] = state
        found['worst'] = _short(record)


def _short(record):
    """"cp2 -> etcd1 2379/tcp: expected open, observed filtered", or why it was not probed."""
    port = '%s/%s' % (record['port'], record['protocol']) if record.get('port') else record.get('protocol') or ''
    text = '%s -> %s %s' % (record.get('source') or '-', record.get('target') or '-', port)
    if 'observed' in record:
        return '%s: expected %s, observed %s' % (text, record['expected'], record['observed'])
    return '%s: %s' % (text, record.get('reason') or 'not probed')


def _method(probe, status, seen):
    """How a probe was (or would have been) proven; see METHODS."""
    if probe['protocol'] == 'tcp':
        return 'connect'
    method = (seen or {}).get('method')
    if method == 'overlay':
        return 'overlay'
    if status == 'in use':
        return 'datagram'
    return 'echo'


def _silent_reason(probe, owner, seen):
    text = '%s/%s on %s (%s) is held by %s, which answers no datagram: no answer proves neither open nor ' \
           'blocked' % (probe['protocol'], probe['port'], probe['target'], probe['address'], owner or 'another owner')
    extra = (seen.get('detail') or '').split('; ', 1)
    if len(extra) == 2 and extra[1]:
        text += '; ' + extra[1]
    return text


def method_counts(records):
    """{method: {passed, failed, unproven}} over judged probes and unproven ones (plan-level items left out)."""
    counts = {}
    for record in records:
        outcome = record.get('outcome')
        if outcome not in OUTCOMES:
            continue
        cell = counts.setdefault(record.get('method') or 'none', dict((name, 0) for name in OUTCOMES))
        cell[outcome] += 1
    return counts


def _ordered_methods(summary):
    methods = summary.get('methods') or {}
    return [method for method in METHODS if method in methods] + sorted(set(methods) - set(METHODS))


def _method_text(counts):
    return ', '.join('%d %s' % (counts[outcome], outcome) for outcome in OUTCOMES if counts.get(outcome))


def _unprobed_order(item):
    return (item['target'], item.get('source', ''), item['protocol'], str(item['port']))


def _order(record):
    return (record['target'], record['protocol'], int(record['port']), record['source'], record['address'])


def matrix(records):
    """Rows (destination roles, protocol, port, planned) by source roles: expected and ok counts."""
    rows = {}
    for record in records:
        key = (record['target_roles'], record['protocol'], int(record['port']), bool(record['planned']))
        cell = rows.setdefault(key, {}).setdefault(record['source_roles'], {
            'expected': set(), 'probes': 0, 'ok': 0, 'mismatches': 0})
        cell['expected'].add(record['expected'])
        cell['probes'] += 1
        cell['ok' if record['result'] == 'ok' else 'mismatches'] += 1
    out = []
    for key in sorted(rows, key=lambda item: (_label_order(item[0]), not item[3], item[1], item[2])):
        cells = {}
        for label, cell in rows[key].items():
            expected = sorted(cell['expected'])
            cells[label] = dict(cell, expected=expected[0] if len(expected) == 1 else 'mixed')
        out.append({'destination': key[0], 'protocol': key[1], 'port': key[2], 'planned': key[3],
                    'cells': cells})
    return out


def _label_order(label):
    first = label.split('+')[0]
    return (ROLES.index(first) if first in ROLES else len(ROLES), label)


def _cell_text(cell):
    if not cell:
        return '-'
    text = '%s %d/%d' % (cell['expected'], cell['ok'], cell['probes'])
    return text + ' !' if cell['mismatches'] else text


def _describe(record):
    text = '%s (%s, %s) -> %s (%s, %s) %s/%d: expected %s, observed %s' % (
        record['source'], record['source_roles'], record['source_address'], record['target'],
        record['target_roles'], record['address'], record['protocol'], record['port'],
        record['expected'], record['observed'])
    if record.get('detail'):
        text += ' (%s)' % record['detail']
    if not record['planned']:
        text += ' [not planned on %s]' % record['target']
    elif record.get('ids'):
        text += ' [%s]' % ', '.join(record['ids'])
    return text


def _columns(report):
    return sorted(set(label for row in report['matrix'] for label in row['cells']), key=_label_order)


def _row_port(row):
    return '%s/%d%s' % (row['protocol'], row['port'], '' if row['planned'] else '*')


def report_lines(report):
    """The report as text lines for the play output: summary, mismatches, not probed, matrix."""
    summary = report['summary']
    lines = ['%d probes: %d ok, %d mismatches; %d not probed; probing took %.1f s on the slowest host' % (
        summary['probes'], summary['ok'], summary['mismatches'], summary['not_probed'],
        summary.get('probe_seconds', 0))]
    if report['mismatches']:
        lines.append('MISMATCHES (source -> destination port: expected, observed):')
        lines.extend('  ' + _describe(record) for record in report['mismatches'])
    methods = _ordered_methods(summary)
    if methods:
        lines.append('BY METHOD (passed, failed, unproven):')
        width = max(len(method) for method in methods)
        lines.extend('  %s  %s' % (method.ljust(width), _method_text(summary['methods'][method])) for method in methods)
    unproven = [item for item in report['not_probed'] if item.get('outcome') == 'unproven']
    if unproven:
        lines.append('UNPROVEN (source -> destination port [method; owner]: why):')
        lines.extend('  %s' % _describe_unproven(item) for item in unproven)
    others = [item for item in report['not_probed'] if item.get('outcome') != 'unproven']
    if others:
        lines.append('NOT PROBED:')
        for item in others:
            if not item['target']:
                lines.append('  %s' % item['reason'])
                continue
            source = '%s -> ' % item['source'] if item.get('source') else ''
            lines.append('  %s%s: %s' % (source, _where(item), item['reason']))
    columns = _columns(report)
    if columns:
        lines.append('MATRIX (destination roles and port by source roles: expected ok/probes, '
                     '! = mismatch, * = port not planned there):')
        table = [['DESTINATION', 'PORT'] + columns]
        for row in report['matrix']:
            table.append([row['destination'], _row_port(row)] +
                         [_cell_text(row['cells'].get(label)) for label in columns])
        widths = [max(len(line[col]) for line in table) for col in range(len(table[0]))]
        for line in table:
            lines.append('  ' + '  '.join(value.ljust(widths[col]) for col, value in enumerate(line)).rstrip())
    return lines


def _describe_unproven(item):
    text = '%s (%s) -> %s (%s) %s/%s [%s' % (
        item['source'], item.get('source_address', ''), item['target'], item['address'], item['protocol'],
        item['port'], item.get('method', 'none'))
    if item.get('owner'):
        text += '; owner: %s' % item['owner']
    return text + ']: ' + item['reason']


def _where(item):
    if item['port']:
        return '%s %s/%s' % (item['target'], item['protocol'], item['port'])
    return '%s %s' % (item['target'], item['protocol'])


def _md(text):
    return str(text).replace('|', '\\|')


def report_markdown(report, title='Reachability check'):
    """The report as a Markdown document."""
    summary = report['summary']
    out = ['# %s' % title, '', '**%s**' % _md(banner(report)[1]), '',
           '%d probes over %d hosts: **%d ok, %d mismatches**; %d not probed (%d of them unproven probes).' % (
               summary['probes'], summary['hosts'], summary['ok'], summary['mismatches'],
               summary['not_probed'], summary.get('unproven', 0)), '']
    methods = _ordered_methods(summary)
    if methods:
        out += ['| Method | Passed | Failed | Unproven | How it proves |', '|---|---|---|---|---|']
        for method in methods:
            counts = summary['methods'][method]
            out.append('| %s | %d | %d | %d | %s |' % (method, counts.get('passed', 0), counts.get('failed', 0),
                                                       counts.get('unproven', 0), _md(METHOD_TEXT.get(method, ''))))
        out.append('')
    out += ['## Mismatches', '']
    if report['mismatches']:
        out += ['| Source | Destination | Port | Expected | Observed | Method | Detail | Rules |',
                '|---|---|---|---|---|---|---|---|']
        for record in report['mismatches']:
            out.append('| %s (%s, %s) | %s (%s, %s) | %s/%d%s | %s | %s | %s | %s | %s |' % (
                record['source'], record['source_roles'], record['source_address'],
                record['target'], record['target_roles'], record['address'], record['protocol'],
                record['port'], '' if record['planned'] else ' (not planned)', record['expected'],
                record['observed'], record.get('method', ''), _md(record.get('detail', '')),
                ', '.join(record.get('ids') or ())))
    else:
        out.append('None.')
    unproven = [item for item in report['not_probed'] if item.get('outcome') == 'unproven']
    others = [item for item in report['not_probed'] if item.get('outcome') != 'unproven']
    out += ['', '## Unproven', '']
    if unproven:
        out += ['| Source | Destination | Port | Method | Owner | Reason |', '|---|---|---|---|---|---|']
        for item in unproven:
            out.append('| %s (%s) | %s (%s) | %s/%s | %s | %s | %s |' % (
                item['source'], item.get('source_address', ''), item['target'], item['address'], item['protocol'],
                item['port'], item.get('method', 'none'), _md(item.get('owner') or '-'), _md(item['reason'])))
    else:
        out.append('None.')
    out += ['', '## Not probed', '']
    if others:
        out += ['| Source | Destination | Port | Reason |', '|---|---|---|---|']
        for item in others:
            out.append('| %s | %s | %s | %s |' % (
                item.get('source') or '-', item['target'] or '-',
                ('%s/%s' % (item['protocol'], item['port']) if item['port'] else item['protocol']) or '-',
                _md(item['reason'])))
    else:
        out.append('None.')
    columns = _columns(report)
    out += ['', '## Matrix', '',
            'Destination roles and port (`*`: not planned there, expected blocked) by source roles: '
            'expected result, ok probes / probes, `!` marks mismatches.', '']
    if columns:
        out.append('| Destination | Port | %s |' % ' | '.join(columns))
        out.append('|---|---|%s' % ('---|' * len(columns)))
        for row in report['matrix']:
            out.append('| %s | %s | %s |' % (row['destination'], _md(_row_port(row)).replace('*', '\\*'),
                                             ' | '.join(_cell_text(row['cells'].get(label)) for label in columns)))
    return '\n'.join(out) + '\n'


# The verify report's names for the states.
LABELS = {'unknown': 'not probed', 'info': 'unproven probes', 'critical': 'reached where blocked',
          'high': 'blocked where open'}
LEGEND_STATES = ('critical', 'high', 'unknown', 'info', 'clean')
LEGEND_TEXT = (
    ('critical', LABELS['critical'], 'a probe reached a port the plan keeps blocked (over-exposed)'),
    ('high', LABELS['high'], 'a probe was blocked on a port the plan opens to it (missing)'),
    ('unknown', LABELS['unknown'], 'the host failed, was unreachable, or gave no listener result'),
    ('info', LABELS['info'], 'a UDP port another program holds answers no datagram: neither open nor blocked proven'),
    ('clean', 'ok', 'every probe saw what the plan expects'),
)


def banner(report):
    """(state, text): pass, or how many hosts are in trouble and the worst one with its problem."""
    hosts = report.get('hosts') or {}
    summary = report['summary']
    trouble = sorted((html_page.rank(item['state']), host) for host, item in hosts.items()
                     if item['state'] in html_page.TROUBLE)
    state = html_page.worst(item['state'] for item in hosts.values())
    if not trouble:
        text = 'PASS: %d probes over %d hosts saw what the plan expects' % (summary['probes'], len(hosts))
        unproven = sum(1 for item in hosts.values() if item['state'] == 'info')
        if unproven:
            text += '; %d hosts with unproven probes' % unproven
        return ('clean' if state in ('clean', 'info') else state), text
    counts = ', '.join('%d %s' % (sum(1 for _rank, host in trouble if hosts[host]['state'] == name), LABELS.get(name, name))
                       for name in html_page.TROUBLE if any(hosts[host]['state'] == name for _rank, host in trouble))
    host = trouble[0][1]
    return state, 'FAIL: %d of %d hosts in trouble (%s); worst: %s: %s (%s)' % (
        len(trouble), len(hosts), counts, host, hosts[host]['worst'], LABELS.get(hosts[host]['state']))


def _cell_state(cell):
    if not cell:
        return None
    if cell['mismatches']:
        return 'critical' if cell['expected'] == BLOCKED else 'high'
    return 'clean'


def report_html(report, title='Reachability check', inventory=None, version=None, generated=None, diagram=None):
    """The report as one self-contained HTML page: the banner, the hosts worst-first coloured
    by what their probes saw, the matrix whose cells carry the result, the probes not made,
    and every probe with filters by result and host."""
    summary = report['summary']
    state, headline = banner(report)
    line = '%d probes over %d hosts: %d ok, %d mismatches; %d not probed (%d of them unproven probes)' % (
        summary['probes'], summary['hosts'], summary['ok'], summary['mismatches'], summary['not_probed'],
        summary.get('unproven', 0))
    rows = [(host, item['state'], [escape(item['roles'] or '-'), str(item['probes']), str(item['ok']),
                                   html_page.cell(item['mismatches'] or '', item['state'] if item['mismatches'] else None),
                                   str(item['unproven'] or ''), str(item['not_probed'] or ''), escape(item['worst'])])
            for host, item in (report.get('hosts') or {}).items()]
    hosts_html = html_page.host_table(['Roles', 'Probes to it', 'Ok', 'Mismatches', 'Unproven', 'Not probed',
                                       'Worst'], rows, labels=LABELS)
    body = ['<p id="summary">%s</p>' % escape(line)]
    methods = _ordered_methods(summary)
    if methods:
        rows = [([escape(method)] + ['%d' % summary['methods'][method].get(outcome, 0) for outcome in OUTCOMES] +
                 [escape(METHOD_TEXT.get(method, ''))], {}) for method in methods]
        body += ['<h2>By method</h2>', html_page.table(['Method', 'Passed', 'Failed', 'Unproven', 'How it proves'],
                                                       rows, 'methods')]
    columns = _columns(report)
    if columns:
        rows = []
        for row in report['matrix']:
            cells = [escape(row['destination']), escape(_row_port(row))]
            for label in columns:
                cell = row['cells'].get(label)
                cells.append(html_page.cell(_cell_text(cell), _cell_state(cell)))
            rows.append((cells, {}))
        body += ['<h2>Matrix</h2><p>Destination roles and port (* not planned there, expected blocked) by source '
                 'roles: expected result, ok probes / probes, ! marks mismatches.</p>',
                 html_page.table(['Destination', 'Port'] + columns, rows, 'matrix')]
    rows = [([escape(item.get('source') or '-'), escape(item['target'] or '-'),
              escape('%s/%s' % (item['protocol'], item['port']) if item['port'] else item['protocol'] or '-'),
              escape(item.get('method') or '-'), escape(item.get('owner') or '-'), escape(item['reason'])], {})
            for item in report['not_probed']]
    body += ['<h2>Unproven and not probed</h2>',
             html_page.table(['Source', 'Destination', 'Port', 'Method', 'Owner', 'Reason'], rows, 'not-probed')]
    rows = []
    for record in report['probes']:
        rows.append(([escape('%s (%s)' % (record['source'], record['source_address'])),
                      escape('%s (%s)' % (record['target'], record['address'])),
                      escape('%s/%d%s' % (record['protocol'], record['port'], '' if record['planned'] else '*')),
                      escape(record['expected']), escape(record['observed']), record['result'],
                      escape(record.get('method', '')), escape(record.get('detail', ''))],
                     {'class': 'row %s' % (record['result'] if record['result'] == 'ok' else record_state(record)),
                      'data-category': record['result'], 'data-host': '%s %s' % (record['source'], record['target'])}))
    body += ['<h2>Probes</h2>', html_page.filters(('mismatch', 'ok')),
             html_page.table(['Source', 'Destination', 'Port', 'Expected', 'Observed', 'Result', 'Method', 'Detail'], rows,
                             'probes')]
    data = dict(summary, states=dict((host, item['state']) for host, item in (report.get('hosts') or {}).items()))
    return html_page.frame(title, state, headline, '\n'.join(body), data, hosts_html, legend_extra=LEGEND_TEXT,
                           inventory=inventory or report.get('inventory'), clusters=report.get('clusters') or (),
                           version=version, generated=generated, diagram=diagram)
