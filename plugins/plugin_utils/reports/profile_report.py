# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The resolved profile of a cluster, one value per row (key, value, origin) with its notes
listed apart: the rows once, rendered as console lines and as Markdown.

A cluster is an entry of a plan's ``clusters``: {name, hosts, values: {key: {value, origin}},
notes}.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_planner import host_list
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.profile import PROFILE_KEYS

HEADING_WORDS = ('Key', 'Value', 'Origin')
HEADING = tuple(word.upper() for word in HEADING_WORDS)
# Values longer than this push their origin to the right instead of widening the column.
VALUE_WIDTH = 40
VARIES = 'varies by host'


def rows(cluster):
    """[(key, value, origin)] of the cluster's profile, in the order of the profile's options."""
    values = cluster.get('values') or {}
    order = dict((key, index) for index, key in enumerate(PROFILE_KEYS))
    out = []
    for key in sorted(values, key=lambda item: (order.get(item, len(order)), item)):
        item = values[key]
        out.append((key, VARIES if item['value'] is None else str(item['value']), str(item['origin'])))
    return out


def heading(cluster):
    hosts = cluster.get('hosts') or ()
    return 'Profile: %s (%d host%s: %s)' % (cluster['name'], len(hosts), '' if len(hosts) == 1 else 's', host_list(hosts))


def console_lines(cluster):
    """Text lines: a heading, then one value per line in aligned columns, then the notes."""
    found = rows(cluster)
    key_width = max(len(row[0]) for row in [HEADING] + found)
    value_width = min(max(len(row[1]) for row in [HEADING] + found), VALUE_WIDTH)
    lines = [heading(cluster)]
    for key, value, origin in [HEADING] + found:
        lines.append(('  %-*s  %-*s  %s' % (key_width, key, value_width, value, origin)).rstrip())
    notes = cluster.get('notes') or ()
    if notes:
        lines.append('Notes:')
        lines.extend('  - %s' % note for note in notes)
    return lines


def _cell(text):
    return str(text).replace('|', '\\|').replace('\n', ' ')


def markdown_lines(cluster, level=2):
    """Markdown lines: a heading, the hosts, a key | value | origin table, then the notes."""
    out = ['%s Profile: %s' % ('#' * level, cluster['name']), '']
    out.append('Hosts (%d): %s' % (len(cluster.get('hosts') or ()), ', '.join(cluster.get('hosts') or ())))
    out.append('')
    out.append('| %s |' % ' | '.join(HEADING_WORDS))
    out.append('|---|---|---|')
    for key, value, origin in rows(cluster):
        out.append('| %s | %s | %s |' % (key, _cell(value), _cell(origin)))
    out.append('')
    notes = cluster.get('notes') or ()
    if notes:
        out.append('Notes:')
        out.append('')
        out.extend('- %s' % _cell(note) for note in notes)
        out.append('')
    return out


def with_lines(clusters):
    """The clusters, each with its console ``lines`` added (for plays that show them)."""
    return [dict(cluster, lines=console_lines(cluster)) for cluster in clusters or ()]
