# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one frame of the HTML reports (audit, verify, plan): a banner saying pass or what is
worst, the inventory, clusters, collection version and time, a legend of the colours, and
a host table sorted worst-first with each row coloured by the host's state. Self-contained:
inline style and script only, so it opens on an air-gapped machine; every text escaped.
Rows of class "row" with data-category and data-host are filtered by the category boxes and
the host field.

Runs on the controller.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import json
import os
import re
from html import escape

# Host and cell states, worst first: (name, label, what it means), in the audit's words; the
# verify and plan pages name them their own way (labels). docs/audit.md and docs/verify.md
# explain them; the legend on each page lists the ones the page uses.
STATES = (
    ('critical', 'critical', 'a must-not-be-public port open to anyone'),
    ('high', 'high', 'a planned port missing, or a port open wider than planned'),
    ('unknown', 'unknown', 'the host failed or was unreachable: its state is unknown'),
    ('medium', 'medium', 'an item the collection owns that the plan no longer wants'),
    ('info', 'info', 'something the collection did not create admits traffic (foreign), within the plan'),
    ('clean', 'clean', 'matches the plan'),
    ('skipped', 'skipped', 'planned for nothing (no role), so not looked at'),
)
STATE_NAMES = tuple(name for name, _label, _text in STATES)
STATE_LABELS = dict((name, label) for name, label, _text in STATES)
# States that put a host "in trouble" in the banner.
TROUBLE = ('critical', 'high', 'unknown', 'medium')

STYLE = '''
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:.2em 0}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top}th{background:#f3f3f3}
#banner{font-size:1.3em;font-weight:bold;padding:.6em 1em;margin:.5em 0 1em;border-radius:4px;border:2px solid #0003}
#meta{color:#444;margin:0 0 1em}#meta span{margin-right:1.5em}#meta b{color:#222}
.critical,.mismatch{background:#f08080}.high{background:#f9b870}.medium{background:#fbe77a}
.unknown{background:#9a9a9a;color:#fff}.info{background:#cfe0f7}.clean,.ok,.restricted{background:#a8dca8}
.skipped{background:#ececec;color:#555}.anyone{background:#fbe77a}.self{background:#dff2df}
#banner.critical{background:#d9534f;color:#fff}#banner.high{background:#f0883e}#banner.unknown{background:#777}
#banner.clean{background:#5cb85c;color:#fff}#banner.plan{background:#cfe0f7}
.legend{font-size:.85em}.legend span{display:inline-block;padding:.1em .5em;margin:0 .3em .3em 0;border:1px solid #0002}
td.cell{text-align:center;min-width:3em}.filters label{margin-right:1em}.hidden{display:none}
'''

SCRIPT = '''
(function(){
  function apply(){
    var shown={};
    document.querySelectorAll('.filters input[type=checkbox]').forEach(function(box){shown[box.value]=box.checked;});
    var text=document.getElementById('host-filter').value.toLowerCase();
    document.querySelectorAll('tr.row').forEach(function(row){
      var visible=shown[row.dataset.category]!==false&&row.dataset.host.toLowerCase().indexOf(text)>=0;
      row.classList.toggle('hidden',!visible);
    });
  }
  document.querySelectorAll('.filters input').forEach(function(box){
    box.addEventListener(box.type==='checkbox'?'change':'input',apply);
  });
  document.body.dataset.ready='yes';
})();
'''

# The time stamp's element: write_if_changed callers compare pages without it.
GENERATED = re.compile(r'<time id="generated"[^>]*>[^<]*</time>')


def rank(state):
    """Sort key of a state, worst first (unknown names last)."""
    return STATE_NAMES.index(state) if state in STATE_NAMES else len(STATE_NAMES)


def worst(states, default='clean'):
    """The worst of ``states``; ``default`` when there are none."""
    states = [state for state in states if state]
    return min(states, key=rank) if states else default


def cell(text, state=None):
    """A table cell whose background carries ``state`` (text escaped)."""
    return {'html': escape(str(text)), 'class': ('cell %s' % state) if state else 'cell'}


def table(headers, rows, table_id=None):
    """A table; ``rows`` are (cells, attributes) with cells already escaped HTML, or dicts
    {html, class} (see cell) for cells that carry a colour."""
    out = ['<table%s><tr>%s</tr>' % (' id="%s"' % table_id if table_id else '',
                                     ''.join('<th>%s</th>' % escape(str(name)) for name in headers))]
    for cells, attributes in rows:
        tds = []
        for item in cells:
            if isinstance(item, dict):
                tds.append('<td class="%s">%s</td>' % (escape(item.get('class') or ''), item['html']))
            else:
                tds.append('<td>%s</td>' % item)
        out.append('<tr%s>%s</tr>' % (''.join(' %s="%s"' % (name, escape(str(value)))
                                              for name, value in sorted(attributes.items())), ''.join(tds)))
    out.append('</table>')
    return '\n'.join(out)


def host_table(headers, hosts, table_id='hosts', labels=None):
    """The host table, worst first: ``hosts`` are (host, state, cells) with cells escaped HTML;
    each row carries its state as class and data-state. The first column is the host, the
    second its state."""
    ordered = sorted(hosts, key=lambda item: (rank(item[1]), item[0]))
    labels = dict(STATE_LABELS, **(labels or {}))
    rows = [([escape(host), escape(labels.get(state, state))] + list(cells),
             {'class': state, 'data-state': state, 'data-host': host}) for host, state, cells in ordered]
    return table(['Host', 'State'] + list(headers), rows, table_id)


def filters(categories):
    return ('<div class="filters">%s<label>Host <input type="search" id="host-filter"></label></div>'
            % ''.join('<label><input type="checkbox" value="%s" checked> %s</label>' % (escape(name), escape(name))
                      for name in categories))


def legend(states, extra=(), labels=None):
    """The colours used: ``states`` names from STATES (``labels`` renames some), ``extra``
    (class, label, meaning) more."""
    known = dict((name, ((labels or {}).get(name, label), text)) for name, label, text in STATES)
    items = [(name,) + known[name] for name in states if name in known] + list(extra)
    return '<div class="legend" id="legend">Colours: %s</div>' % ''.join(
        '<span class="%s" title="%s">%s</span>' % (escape(name), escape(text), escape('%s: %s' % (label, text)))
        for name, label, text in items)


def banner(state, text):
    """The first thing on the page: ``state`` colours it, ``text`` says pass or what is worst."""
    return '<div id="banner" class="%s" data-state="%s">%s</div>' % (escape(state), escape(state), escape(text))


def now():
    """The time, UTC, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace('+00:00', 'Z')


def meta(inventory=None, clusters=(), version=None, generated=None):
    """The header line: inventory, clusters (names with their host counts), collection version, time."""
    shown_clusters = ', '.join('%s (%d host%s)' % (item['name'], len(item.get('hosts') or ()),
                                                   '' if len(item.get('hosts') or ()) == 1 else 's')
                               for item in clusters or ()) or 'none'
    parts = [('Inventory', inventory_text(inventory)), ('Clusters', shown_clusters),
             ('kubeports.firewall', version or collection_version())]
    out = ''.join('<span><b>%s:</b> %s</span>' % (escape(label), escape(value)) for label, value in parts)
    stamp = generated or now()
    out += '<span><b>Generated:</b> <time id="generated" datetime="%s">%s</time></span>' % (escape(stamp), escape(stamp))
    return '<div id="meta">%s</div>' % out


def inventory_text(inventory):
    """The inventory as Ansible knows it: a path, or a list of sources; "unknown" when not given."""
    if isinstance(inventory, (list, tuple)):
        inventory = ', '.join(str(item) for item in inventory if item)
    return str(inventory) if inventory else 'unknown'


def collection_version(root=None):
    """The version of the installed collection, from its MANIFEST.json (built) or galaxy.yml
    (a checkout); "unknown" when neither says."""
    root = root or os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
    try:
        with open(os.path.join(root, 'MANIFEST.json'), encoding='utf-8') as handle:
            version = (json.load(handle).get('collection_info') or {}).get('version')
        if version:
            return str(version)
    except (IOError, OSError, ValueError, AttributeError):
        pass
    try:
        with open(os.path.join(root, 'galaxy.yml'), encoding='utf-8') as handle:
            for line in handle:
                found = re.match(r'''^version:\s*['"]?([^'"\s#]+)''', line)
                if found:
                    return found.group(1)
    except (IOError, OSError):
        pass
    return 'unknown'


def page(title, top, body, data, diagram=None, hosts='', legend_html=''):
    """The page: title, ``top`` (banner and meta HTML), the optional ``diagram`` (SVG, inserted
    as given), the legend and the host table, then ``body`` (HTML), and ``data`` embedded as
    JSON for tools."""
    return '\n'.join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<title>%s</title><style>%s</style></head><body>' % (escape(title), STYLE),
        '<h1>%s</h1>' % escape(title),
        top,
        diagram or '',
        legend_html,
        hosts,
        body,
        '<script type="application/json" id="report-data">%s</script>' % json.dumps(data, sort_keys=True).replace('</', '<\\/'),
        '<script>%s</script></body></html>' % SCRIPT]) + '\n'


def frame(title, state, headline, body, data, hosts_html='', legend_states=(), legend_extra=(), inventory=None,
          clusters=(), version=None, generated=None, diagram=None, labels=None):
    """The whole page of a report: banner, meta header, diagram, legend, host table, body."""
    top = banner(state, headline) + '\n' + meta(inventory, clusters, version, generated)
    hosts = ('<h2>Hosts</h2>\n' + hosts_html) if hosts_html else ''
    return page(title, top, body, data, diagram, hosts, legend(legend_states, legend_extra, labels))


def same_page(first, second):
    """Are two pages equal but for their time stamp?"""
    return GENERATED.sub('', first) == GENERATED.sub('', second)
