# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One self-contained HTML page for the reports (audit, verify): inline style and script
only, so it opens on an air-gapped machine. Rows of class "row" with data-category and
data-host are filtered by the category boxes and the host field.

Runs on the controller.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
from html import escape

STYLE = '''
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
.critical,.mismatch{background:#f4b6b6}.high{background:#fbd9a5}.medium{background:#fdf1a8}
.info{background:#dfe9f7}.clean,.ok{background:#d5f0d5}.filters label{margin-right:1em}.hidden{display:none}
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


def table(headers, rows, table_id=None):
    """A table; ``rows`` are (cells, attributes) with cells already escaped."""
    out = ['<table%s><tr>%s</tr>' % (' id="%s"' % table_id if table_id else '',
                                     ''.join('<th>%s</th>' % escape(str(name)) for name in headers))]
    for cells, attributes in rows:
        out.append('<tr%s>%s</tr>' % (''.join(' %s="%s"' % (name, escape(str(value)))
                                              for name, value in sorted(attributes.items())),
                                      ''.join('<td>%s</td>' % cell for cell in cells)))
    out.append('</table>')
    return '\n'.join(out)


def filters(categories):
    return ('<div class="filters">%s<label>Host <input type="search" id="host-filter"></label></div>'
            % ''.join('<label><input type="checkbox" value="%s" checked> %s</label>' % (escape(name), escape(name))
                      for name in categories))


def page(title, summary, body, data):
    """The page: title, summary line, body (HTML), ``data`` embedded as JSON for tools."""
    return '\n'.join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<title>%s</title><style>%s</style></head><body>' % (escape(title), STYLE),
        '<h1>%s</h1><p id="summary">%s</p>' % (escape(title), escape(summary)),
        body,
        '<script type="application/json" id="report-data">%s</script>' % json.dumps(data).replace('</', '<\\/'),
        '<script>%s</script></body></html>' % SCRIPT]) + '\n'
