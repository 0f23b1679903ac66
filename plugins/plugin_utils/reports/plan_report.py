# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readable renderings of planned rules: text table lines and Markdown.

Host plans come in either form of the rule contract: rules with their ``sources``, or
rules naming a ``source_set`` whose members the plan's ``sets`` hold.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports import profile_report, references
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import host_view, rule_sources

ANYONE_LABEL = 'anyone'


def _sources(plan, rule):
    return rule_sources(rule, plan.get('sets') or {}, 'host %s' % plan.get('host'))


def _on_interfaces(rule):
    return 'anything arriving on %s' % ', '.join(rule['interfaces'])


def _who(plan, rule, width):
    if rule.get('interfaces'):
        return _on_interfaces(rule)
    if rule.get('source_set') is None:
        return ANYONE_LABEL
    sources = _sources(plan, rule)
    text, shown = '%s: ' % rule['source_set'], 0
    for source in sources:
        if len(text) > width:
            break
        text += (', ' if shown else '') + source
        shown += 1
    return text if shown == len(sources) else '%s and %d more' % (text, len(sources) - shown)


def _port(rule):
    return '%s/%s' % (rule['port'], rule['protocol']) if rule['port'] else rule['protocol']


def table_lines(plan, width=60, document=None):
    """Text table lines for one host plan ({host, roles, rules, skipped}, or an entry of the
    ``document`` of output=plan)."""
    plan = host_view(document, plan) if document else plan
    rows = [(_port(rule), _who(plan, rule, width), rule['description']) for rule in plan['rules']]
    heading = ('PORT', 'FROM', 'PURPOSE')
    widths = [max([len(heading[col])] + [len(row[col]) for row in rows]) for col in (0, 1)]
    widths[1] = min(widths[1], width)
    lines = ['%s (%s): %d rules' % (plan['host'], ', '.join(plan['roles']), len(rows))]
    for row in [heading] + rows:
        who = row[1] if len(row[1]) <= widths[1] else row[1][:widths[1] - 3] + '...'
        lines.append('%-*s  %-*s  %s' % (widths[0], row[0], widths[1], who, row[2]))
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


def _rule_table(out, plan, shared, document):
    out.append('| Protocol | Port | Allowed from | Peer set | Purpose | References |')
    out.append('|---|---|---|---|---|---|')
    for rule in plan['rules']:
        out.append('| %s | %s | %s | %s | %s | %s |' % (
            rule['protocol'], rule['port'] or '-', _allowed(plan, rule, shared, document),
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
        _rule_table(out, dict(listed, host=key, sets=own), listed['sets'], document)
    out.append('## Hosts')
    out.append('')
    out.append('| Host | Roles | Rule list | Own sets |')
    out.append('|---|---|---|---|')
    for entry in entries:
        own = '; '.join('%s: %s' % (name, ', '.join(members)) for name, members in sorted(entry['own_sets'].items()))
        out.append('| %s | %s | %s | %s |' % (entry['host'], ', '.join(entry['roles']), entry['rule_list'], own or '-'))
    out.append('')
    if document.get('sets'):
        out.append('## Peer sets')
        out.append('')
        for key, members in sorted(document['sets'].items()):
            out.append('- `%s` (%d): %s' % (key, len(members), ', '.join(members)))
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


def _allowed(plan, rule, shared, document):
    """Who may connect, for Markdown: a shared peer set by its key (its members are listed once,
    under Peer sets), anything else by its members."""
    if rule.get('interfaces'):
        return _on_interfaces(rule)
    if rule['source_set'] is None:
        return ANYONE_LABEL
    key = shared.get(rule['source_set'])
    if key is not None:
        return 'peer set `%s` (%d)' % (key, len(document['sets'][key]))
    found = (plan.get('sets') or {}).get(rule['source_set'])
    if isinstance(found, str):
        return found
    return ', '.join(_sources(plan, rule))
