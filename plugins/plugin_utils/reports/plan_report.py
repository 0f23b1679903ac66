# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readable renderings of planned rules: text table lines and Markdown.

Host plans come in either form of the rule contract: rules with their ``sources``, or
rules naming a ``source_set`` whose members the plan's ``sets`` hold.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import textwrap
from html import escape

from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports import html_page, profile_report, references
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.set_hosts import SHOWN, SetHosts
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import few
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import host_view, rule_sources

ANYONE_LABEL = 'anyone'
# Host names plan.md lists before "and N more" (plan.json has them all).
LISTED = 50


def _sources(plan, rule):
    return rule_sources(rule, plan.get('sets') or {}, 'host %s' % plan.get('host'))


def _on_interfaces(rule):
    return 'anything arriving on %s' % ', '.join(rule['interfaces'])


def _who(plan, rule, names=None):
    if rule.get('interfaces'):
        return _on_interfaces(rule)
    if rule.get('source_set') is None:
        return ANYONE_LABEL
    sources = _sources(plan, rule)
    if names is not None and names.addresses:
        return '%s: %s' % (rule['source_set'], names.describe(rule['source_set'], sources))
    return '%s: %s' % (rule['source_set'], few(sources, SHOWN))


def _port(rule):
    return '%s/%s' % (rule['port'], rule['protocol']) if rule['port'] else rule['protocol']


def table_lines(plan, width=60, document=None):
    """Text table lines for one host plan ({host, roles, rules, skipped}, or an entry of the
    ``document`` of output=plan). The FROM column names the hosts behind a peer set (when
    the document gives their addresses) and wraps at ``width``, never cut."""
    names = SetHosts.of(document) if document else None
    plan = host_view(document, plan) if document else plan
    rows = [(_port(rule), _who(plan, rule, names), rule['description']) for rule in plan['rules']]
    heading = ('PORT', 'FROM', 'PURPOSE')
    width = max(int(width), 20)
    wrapped = [(row[0], textwrap.wrap(row[1], width, break_long_words=False, break_on_hyphens=False) or [''], row[2])
               for row in rows]
    widths = [max([len(heading[0])] + [len(row[0]) for row in rows]),
              max([len(heading[1])] + [len(line) for row in wrapped for line in row[1]])]
    lines = ['%s (%s): %d rules' % (plan['host'], ', '.join(plan['roles']), len(rows))]
    lines.append(('%-*s  %-*s  %s' % (widths[0], heading[0], widths[1], heading[1], heading[2])).rstrip())
    for port, who, purpose in wrapped:
        lines.append('%-*s  %-*s  %s' % (widths[0], port, widths[1], who[0], purpose))
        lines.extend(('%-*s  %s' % (widths[0], '', more)).rstrip() for more in who[1:])
    for skipped in plan.get('skipped') or ():
        lines.append('skipped %s (%s): %s' % (skipped['id'], _port(skipped), skipped['reason']))
    return lines


def _cell(text):
    return str(text).replace('|', '\\|').replace('\n', ' ')


def markdown(plans, title='Planned firewall rules', clusters=(), document=None):
    """One Markdown document for a list of host plans (or the ``hosts`` mapping of the
    ``document`` of output=plan), after the resolved cluster profiles."""
    out = ['# %s' % title, '']
    for cluster in clusters or ():
        out.extend(profile_report.markdown_lines(cluster))
    if document:
        out.extend(_document_sections(plans, document))
        return '\n'.join(out)
    for plan in plans:
        out.append('## %s' % plan['host'])
        out.append('')
        out.append('Roles: %s' % ', '.join(plan['roles']))
        out.append('')
        _rule_table(out, plan, {}, None)
    return '\n'.join(out)


def _rule_table(out, plan, shared, document, names=None):
    out.append('| Protocol | Port | Allowed from | Peer set | Purpose | References |')
    out.append('|---|---|---|---|---|---|')
    for rule in plan['rules']:
        out.append('| %s | %s | %s | %s | %s | %s |' % (
            rule['protocol'], rule['port'] or '-', _allowed(plan, rule, shared, document, names),
            rule['source_set'] or '-', _cell(rule['description']),
            '<br>'.join(references.markdown(ref) for ref in rule['references'])))
    if plan.get('skipped'):
        out.append('')
        out.append('Not opened (no peers in the source set):')
        out.append('')
        for skipped in plan['skipped']:
            out.append('- `%s` %s: %s' % (skipped['id'], _port(skipped), skipped['reason']))
    out.append('')


def _document_sections(hosts, document):
    """A plan's rule lists once each, then which host has which, then the peer sets: the size
    grows with the hosts, not with hosts times rules."""
    entries = sorted(hosts.values() if isinstance(hosts, dict) else hosts, key=lambda item: item['host'])
    names = SetHosts.of(document)
    users = {}
    for entry in entries:
        users.setdefault(entry['rule_list'], []).append(entry['host'])
    out = []
    for key in sorted(users):
        listed = document['rule_lists'][key]
        out.append('## Rule list %s' % key)
        out.append('')
        out.append('Hosts (%d): %s' % (len(users[key]), ', '.join(users[key])))
        out.append('')
        own = dict((rule['source_set'], '(the host\'s own; see Hosts)') for rule in listed['rules']
                   if rule['source_set'] is not None and rule['source_set'] not in listed['sets'])
        _rule_table(out, dict(listed, host=key, sets=own), listed['sets'], document, names)
    out.append('## Hosts')
    out.append('')
    out.append('| Host | Roles | Rule list | Own sets |')
    out.append('|---|---|---|---|')
    for entry in entries:
        own = '; '.join('%s: %s' % (name, names.describe(name, members, LISTED) if names.addresses else ', '.join(members))
                        for name, members in sorted(entry['own_sets'].items()))
        out.append('| %s | %s | %s | %s |' % (entry['host'], ', '.join(entry['roles']), entry['rule_list'], own or '-'))
    out.append('')
    if document.get('sets') and not names.addresses:
        out.append('## Peer sets')
        out.append('')
        for key, members in sorted(document['sets'].items()):
            out.append('- `%s` (%d CIDRs): %s' % (key, len(members), ', '.join(members)))
        out.append('')
    elif document.get('sets'):
        out.append('## Peer sets')
        out.append('')
        out.append('Who stands behind each set (hosts by name; members that are no inventory host by their '
                   'CIDR and the variable they came from), then the merged CIDRs the firewalls get.')
        out.append('')
        out.append('| Set | Hosts | Other CIDRs | Members (merged CIDRs) |')
        out.append('|---|---|---|---|')
        for key, members in sorted(document['sets'].items()):
            found = names.members(key, members)
            hosts = ('%d: %s' % (len(found['hosts']), few(found['hosts'], LISTED))) if found['hosts'] else '-'
            others = ('%s: %s' % (found['variable'] or 'not an inventory host', ', '.join(found['cidrs']))
                      if found['cidrs'] else '-')
            out.append('| `%s` | %s | %s | %s |' % (key, _cell(hosts), _cell(others), ', '.join(members)))
        out.append('')
    unplanned = document.get('unplanned') or {}
    if unplanned:
        out.append('## Hosts planned for nothing')
        out.append('')
        out.append('No rule is opened on these hosts, and they are in no peer set.')
        out.append('')
        out.append('| Host | Why |')
        out.append('|---|---|')
        for host, why in sorted(unplanned.items()):
            out.append('| %s | %s |' % (_cell(host), _cell(why)))
        out.append('')
    return out


def unplanned_lines(document, shown):
    """"host: why" of the first ``shown`` hosts of the plan planned for nothing, and how many more."""
    unplanned = document.get('unplanned') or {}
    hosts = sorted(unplanned)
    lines = ['%s: %s' % (host, unplanned[host]) for host in hosts[:max(shown, 0)]]
    if len(hosts) > len(lines):
        lines.append('and %d more (plan.md and plan.json name them all)' % (len(hosts) - len(lines)))
    return lines


def _allowed(plan, rule, shared, document, names=None):
    """Who may connect, for Markdown: a shared peer set by its key (its members are listed once,
    under Peer sets), anything else by its members."""
    if rule.get('interfaces'):
        return _on_interfaces(rule)
    if rule['source_set'] is None:
        return ANYONE_LABEL
    key = shared.get(rule['source_set'])
    if key is not None:
        members = document['sets'][key]
        if names is not None and names.addresses:
            return 'peer set `%s` (%s)' % (key, names.counted(key, members))
        return 'peer set `%s` (%d CIDRs)' % (key, len(members))
    found = (plan.get('sets') or {}).get(rule['source_set'])
    if isinstance(found, str):
        return found
    if names is not None and names.addresses:
        return names.describe(rule['source_set'], _sources(plan, rule), LISTED)
    return ', '.join(_sources(plan, rule))


# The plan page ------------------------------------------------------------------------------

PLAN_LABELS = {'clean': 'planned', 'skipped': 'planned for nothing'}
PLAN_LEGEND = (
    ('clean', 'planned', 'the host has a role: its rules are planned'),
    ('skipped', 'planned for nothing', 'no role: nothing is opened on it, and it is in no peer set'),
    ('anyone', 'anyone', 'open to every address'),
    ('restricted', 'peer set', 'open to the hosts (and CIDRs) of a peer set only'),
    ('self', 'own', 'open to the host itself, or its own set'),
    ('info', 'devices', 'anything arriving on the pod network devices'),
)


def _rule_state(rule, own):
    if rule.get('interfaces'):
        return 'info'
    if rule.get('source_set') is None:
        return 'anyone'
    return 'self' if rule['source_set'] in own else 'restricted'


def plan_banner(document):
    """(state, text) of plan.html: what was planned; hosts planned for nothing are named by count."""
    hosts, unplanned = document['hosts'], document.get('unplanned') or {}
    clusters = document.get('clusters') or ()
    text = 'PLAN: %d hosts planned in %d cluster%s (%d rule lists, %d peer sets)' % (
        len(hosts), len(clusters), '' if len(clusters) == 1 else 's', len(document['rule_lists']), len(document['sets']))
    if unplanned:
        text += '; %d hosts planned for nothing (no role)' % len(unplanned)
    return 'plan', text


def html(document, title='Planned firewall rules', inventory=None, version=None, generated=None, diagram=None):
    """plan.html: the shared frame (banner, inventory, hosts), a rule lists x ports matrix whose
    cells say who may connect, each rule list with the hosts behind its sets, the peer sets and
    the resolved profiles."""
    names = SetHosts.of(document)
    state, headline = plan_banner(document)
    rows = []
    for host, entry in document['hosts'].items():
        listed = document['rule_lists'][entry['rule_list']]
        public = [_port(rule) for rule in listed['rules'] if rule.get('source_set') is None and not rule.get('interfaces')]
        rows.append((host, 'clean', [escape(', '.join(entry['roles'])), escape(entry['rule_list']),
                                     str(len(listed['rules'])), escape(', '.join(public) or '-')]))
    for host, why in (document.get('unplanned') or {}).items():
        rows.append((host, 'skipped', [escape(why), '-', '0', '-']))
    hosts_html = html_page.host_table(['Roles', 'Rule list', 'Rules', 'Open to anyone'], rows, labels=PLAN_LABELS)
    body = []
    # Rule lists x ports: who may connect, the cell coloured by how open it is.
    ports, cells = [], {}
    for key, listed in sorted(document['rule_lists'].items()):
        own = set(rule['source_set'] for rule in listed['rules']
                  if rule['source_set'] is not None and rule['source_set'] not in listed['sets'])
        for rule in listed['rules']:
            port = _port(rule)
            if port not in ports:
                ports.append(port)
            if rule.get('interfaces'):
                text = 'devices'
            elif rule['source_set'] is None:
                text = ANYONE_LABEL
            elif rule['source_set'] in own:
                text = 'own' if rule['source_set'] == 'self' else '%s (own)' % rule['source_set']
            else:
                set_key = listed['sets'][rule['source_set']]
                text = '%s (%s)' % (rule['source_set'], names.counted(set_key, document['sets'][set_key]))
            cells[(key, port)] = html_page.cell(text, _rule_state(rule, own))
    if ports:
        matrix = [([escape(key)] + [cells.get((key, port), html_page.cell('-')) for port in ports], {})
                  for key in sorted(document['rule_lists'])]
        body += ['<h2>Rule lists and ports</h2><p>Who may connect to each port of the hosts of each rule list.</p>',
                 html_page.table(['Rule list'] + ports, matrix, 'matrix')]
    users = {}
    for entry in document['hosts'].values():
        users.setdefault(entry['rule_list'], []).append(entry['host'])
    for key, listed in sorted(document['rule_lists'].items()):
        own = set(rule['source_set'] for rule in listed['rules']
                  if rule['source_set'] is not None and rule['source_set'] not in listed['sets'])
        hosts = sorted(users.get(key) or ())
        rows = []
        for rule in listed['rules']:
            if rule.get('interfaces'):
                who = _on_interfaces(rule)
            elif rule['source_set'] is None:
                who = ANYONE_LABEL
            elif rule['source_set'] in own:
                who = _own_hosts(document, names, hosts, rule['source_set'])
            else:
                set_key = listed['sets'][rule['source_set']]
                who = names.describe(set_key, document['sets'][set_key], LISTED) if names.addresses else \
                    ', '.join(document['sets'][set_key])
            rows.append(([escape(_port(rule)), html_page.cell(who, _rule_state(rule, own)),
                          escape(rule['source_set'] or '-'), escape(rule['description']),
                          '<br>'.join(references.html(ref) for ref in rule['references'])], {}))
        body += ['<h2>Rule list %s</h2><p>Hosts (%d): %s</p>' % (escape(key), len(hosts), escape(few(hosts, LISTED))),
                 html_page.table(['Port', 'Allowed from', 'Peer set', 'Purpose', 'References'], rows)]
        if listed.get('skipped'):
            body.append('<p>Not opened (no peers in the source set): %s</p>' % escape('; '.join(
                '%s %s: %s' % (item['id'], _port(item), item['reason']) for item in listed['skipped'])))
    if document.get('sets'):
        rows = []
        for key, members in sorted(document['sets'].items()):
            found = names.members(key, members)
            rows.append(([escape(key), escape('%d: %s' % (len(found['hosts']), few(found['hosts'], LISTED)))
                          if found['hosts'] else '-',
                          escape('%s: %s' % (found['variable'] or 'not an inventory host', ', '.join(found['cidrs'])))
                          if found['cidrs'] else '-', escape(', '.join(members))], {}))
        body += ['<h2>Peer sets</h2>', html_page.table(['Set', 'Hosts', 'Other CIDRs', 'Members (merged CIDRs)'],
                                                       rows, 'sets')]
    for cluster in document.get('clusters') or ():
        rows = [([escape(key), escape(value), escape(origin)], {}) for key, value, origin in profile_report.rows(cluster)]
        body += ['<h2>Profile: %s</h2><p>Hosts (%d): %s</p>' % (escape(cluster['name']), len(cluster['hosts']),
                                                                escape(few(cluster['hosts'], LISTED))),
                 html_page.table(list(profile_report.HEADING_WORDS), rows)]
        if cluster.get('notes'):
            body.append('<ul>%s</ul>' % ''.join('<li>%s</li>' % escape(note) for note in cluster['notes']))
    data = {'hosts': len(document['hosts']), 'unplanned': len(document.get('unplanned') or {}),
            'rule_lists': len(document['rule_lists']), 'sets': len(document['sets'])}
    return html_page.frame(title, state, headline, '\n'.join(body), data, hosts_html,
                           legend_extra=PLAN_LEGEND, labels=PLAN_LABELS,
                           inventory=inventory, clusters=document.get('clusters') or (), version=version,
                           generated=generated, diagram=diagram)


def _own_hosts(document, names, hosts, name):
    """Who a set of each host's own holds, for all ``hosts`` of a rule list: "the host itself",
    "the host itself and cp1, cp2, cp3"."""
    common = None
    for host in hosts:
        members = (document['hosts'][host].get('own_sets') or {}).get(name) or ()
        found = set(names.members(name, members)['hosts']) - set([host]) if names.addresses else set()
        common = found if common is None else common & found
    others = sorted(common or ())
    return 'the host itself' + (' and %s' % few(others, LISTED) if others else '')
