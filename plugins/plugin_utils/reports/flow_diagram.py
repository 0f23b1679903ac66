# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The flows graph (reports/flows.py) drawn as one inline SVG: no script, no external asset.

Layout, the same for the same graph: the boxes that send on the left ("from": outsiders,
the cluster group, then role boxes), the role boxes that receive on the right ("to"), one
arrow per edge. Each arrow ends in a slot of its own on the receiving box, with its ports'
label just before the arrowhead, so labels never overlap: a box grows with its arrows.
Sizes come from the lengths of the texts. Hovering a box shows its hosts (<title>), an
arrow its full port list with each port's purpose; a legend names the colours.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from html import escape

from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.flows import STATUS_TEXT

FONT = 'DejaVu Sans, Verdana, Arial, Helvetica, sans-serif'
TITLE_SIZE, TEXT_SIZE, LABEL_SIZE = 13, 11, 12
# Text width per character, generous for the widest common fonts (DejaVu Sans).
BOLD_WIDTH, TEXT_WIDTH = 0.70, 0.64
PAD, SLOT, OUT_STEP, GAP, ARROW, MARGIN = 10, 26, 10, 20, 18, 20
MAX_BOX_WIDTH, MIN_BOX_WIDTH, CURVE_WIDTH = 300, 150, 190
HOSTS_SHOWN = 4
COLOURS = {
    'planned': '#455a64',
    'ok': '#2e7d32',
    'mismatch': '#e65100',
    'missing': '#e65100',
    'over_exposed': '#c62828',
    'unobserved': '#9e9e9e',
}
FILLS = {
    'outsider': '#fff8e1',
    'group': '#e3f2fd',
    'role': '#f5f7f8',
    'ok': '#e8f5e9',
    'mismatch': '#fff3e0',
    'missing': '#fff3e0',
    'over_exposed': '#ffebee',
}
LEGENDS = {
    'plan': ('planned',),
    'verify': ('ok', 'mismatch', 'over_exposed', 'unobserved'),
    'audit': ('ok', 'missing', 'over_exposed', 'unobserved'),
}
TITLES = {
    'plan': 'Planned flows: who may connect to whom',
    'verify': 'Flows as the probes saw them',
    'audit': 'Flows as the audit found them',
}


def _width(text, size, factor=TEXT_WIDTH):
    return len(text) * size * factor


def _fit(text, size, width, factor=TEXT_WIDTH):
    """The text cut with an ellipsis to fit ``width``."""
    most = int(width / (size * factor))
    return text if len(text) <= most else text[:max(most - 1, 1)] + u'\u2026'


def _num(value):
    return ('%.1f' % value).rstrip('0').rstrip('.')


def _host_line(node):
    hosts = node['hosts']
    if node['kind'] == 'outsider':
        return ', '.join(hosts)
    shown = ', '.join(hosts[:HOSTS_SHOWN]) + (' +%d more' % (len(hosts) - HOSTS_SHOWN) if len(hosts) > HOSTS_SHOWN else '')
    return '%d host%s: %s' % (len(hosts), '' if len(hosts) == 1 else 's', shown)


def _problem_lines(node):
    """At most two lines naming the hosts in trouble, worst first."""
    problems = node.get('problems') or {}
    lines = ['%s: %s' % (host, problems[host][0]) for host in sorted(problems, key=lambda host: (-len(problems[host]), host))]
    if len(lines) > 2:
        lines = lines[:1] + ['+%d more hosts with findings' % (len(lines) - 1)]
    return lines


def _node_title(node):
    lines = [node['label']]
    if node['kind'] == 'outsider':
        lines.append('sources: ' + (', '.join(node['hosts']) or '-'))
    else:
        lines.append('hosts: ' + (', '.join(node['hosts']) or '-'))
    if node.get('local'):
        lines.append('from the host itself only:')
        lines.extend('  ' + item for item in node['local'])
    for host in sorted(node.get('problems') or {}):
        lines.append('%s:' % host)
        lines.extend('  ' + item for item in node['problems'][host])
    return '\n'.join(lines)


def _edge_title(edge, nodes):
    head = '%s -> %s' % (nodes[edge['source']]['label'], nodes[edge['target']]['label'])
    if edge['status'] != 'planned':
        head += ' (%s)' % STATUS_TEXT.get(edge['status'], edge['status'])
    counts = ', '.join('%d %s' % (edge['counts'][name], name) for name in sorted(edge['counts']))
    if counts:
        head += ' [%s]' % counts
    return '\n'.join([head] + ['  ' + item for item in edge['details']])


class _Box(object):
    def __init__(self, node, side, lines):
        self.node, self.side, self.lines = node, side, lines
        self.x = self.y = self.width = self.height = 0
        self.slots = []


def _box_lines(node, width):
    """[(text, size, bold, colour)] inside a box of ``width``."""
    inner = width - 2 * PAD
    lines = [(_fit(node['label'], TITLE_SIZE, inner, BOLD_WIDTH), TITLE_SIZE, True, '#212121')]
    if node['hosts']:
        lines.append((_fit(_host_line(node), TEXT_SIZE, inner), TEXT_SIZE, False, '#424242'))
    for text in _problem_lines(node):
        lines.append((_fit(text, TEXT_SIZE, inner), TEXT_SIZE, True, COLOURS['over_exposed']))
    return lines


def _natural_width(node):
    texts = [_width(node['label'], TITLE_SIZE, BOLD_WIDTH), _width(_host_line(node), TEXT_SIZE) if node['hosts'] else 0]
    texts += [_width(text, TEXT_SIZE) for text in _problem_lines(node)]
    return min(MAX_BOX_WIDTH, max(MIN_BOX_WIDTH, max(texts) + 2 * PAD))


def _content_height(lines):
    return PAD * 2 + sum(size + 5 for _text, size, _bold, _colour in lines)


def _stack(boxes, top):
    y = top
    for box in boxes:
        box.y = y
        y += box.height + GAP
    return y - GAP - top if boxes else 0


def svg(graph, title=None):
    """The graph of ``flows.plan_flows`` / ``verify_flows`` / ``audit_flows`` as an SVG
    string (one <svg> element, ready to be put inline in an HTML page or saved as a file).
    ``title`` replaces the heading drawn at the top (by default one for the graph's mode)."""
    nodes = dict((node['id'], node) for node in graph['nodes'])
    order = dict((node['id'], index) for index, node in enumerate(graph['nodes']))
    edges = graph['edges']
    mode = graph.get('mode', 'plan')
    sources = [node for node in graph['nodes'] if any(edge['source'] == node['id'] for edge in edges)]
    targets = [node for node in graph['nodes'] if any(edge['target'] == node['id'] for edge in edges)]
    left_width = max([_natural_width(node) for node in sources] or [MIN_BOX_WIDTH])
    right_width = max([_natural_width(node) for node in targets] or [MIN_BOX_WIDTH])
    left = [_Box(node, 'from', _box_lines(node, left_width)) for node in sources]
    right = [_Box(node, 'to', _box_lines(node, right_width)) for node in targets]
    by_source = dict((box.node['id'], box) for box in left)
    by_target = dict((box.node['id'], box) for box in right)
    incoming = dict((box.node['id'], []) for box in right)
    outgoing = dict((box.node['id'], []) for box in left)
    for edge in edges:
        incoming[edge['target']].append(edge)
        outgoing[edge['source']].append(edge)
    for box in left:
        box.width = left_width
        box.height = max(_content_height(box.lines), OUT_STEP * (len(outgoing[box.node['id']]) + 1))
    for box in right:
        box.width = right_width
        box.slots = sorted(incoming[box.node['id']], key=lambda edge: (order[edge['source']], edge['observed_only']))
        box.height = max(_content_height(box.lines), SLOT * len(box.slots) + PAD)
    label_width = max([_width(edge['label'], LABEL_SIZE) for edge in edges] or [40]) + 2 * 6
    heading = title or TITLES.get(mode, TITLES['plan'])
    top = MARGIN + 30 + 22
    left_height, right_height = _stack(left, 0), _stack(right, 0)
    body_height = max(left_height, right_height)
    for boxes, height in ((left, left_height), (right, right_height)):
        for box in boxes:
            box.y += top + (body_height - height) / 2.0
    left_x = MARGIN
    label_x = left_x + left_width + CURVE_WIDTH
    right_x = label_x + label_width + ARROW
    for box in left:
        box.x = left_x
    for box in right:
        box.x = right_x
    width = right_x + right_width + MARGIN
    # Where each edge ends: its slot on the receiving box; where it starts: spread on the sender.
    ends = {}
    for box in right:
        for index, edge in enumerate(box.slots):
            ends[edge['id']] = box.y + PAD / 2.0 + SLOT * (index + 0.5)
    starts = {}
    for box in left:
        leaving = sorted(outgoing[box.node['id']], key=lambda edge: (ends[edge['id']], edge['id']))
        for index, edge in enumerate(leaving):
            starts[edge['id']] = box.y + box.height * (index + 1) / (len(leaving) + 1.0)
    legend_top = top + body_height + 30
    legend = _legend(mode, legend_top, width)
    height = legend_top + legend['height'] + MARGIN
    out = ['<svg xmlns="http://www.w3.org/2000/svg" class="kubeports-flows" role="img" width="%s" height="%s" '
           'viewBox="0 0 %s %s" font-family="%s" aria-label="%s">' % (
               _num(width), _num(height), _num(width), _num(height), escape(FONT), escape(heading))]
    out.append('<title>%s</title>' % escape(heading))
    out.append('<defs>%s</defs>' % ''.join(
        '<marker id="kp-arrow-%s" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="%s"/></marker>' % (status, colour)
        for status, colour in sorted(COLOURS.items())))
    out.append('<rect x="0" y="0" width="%s" height="%s" fill="#ffffff"/>' % (_num(width), _num(height)))
    out.append('<text class="kp-heading" x="%s" y="%s" font-size="16" font-weight="bold" fill="#212121">%s</text>' % (
        _num(MARGIN), _num(MARGIN + 14), escape(heading)))
    for text, x in (('from', left_x), ('to', right_x)):
        out.append('<text class="kp-column" x="%s" y="%s" font-size="%d" fill="#616161">%s</text>' % (
            _num(x), _num(MARGIN + 40), TEXT_SIZE, text))
    for edge in edges:
        out.append(_edge(edge, nodes, by_source[edge['source']], starts[edge['id']], ends[edge['id']],
                         label_x, right_x, label_width))
    for box in left + right:
        out.append(_node(box))
    out.append(legend['svg'])
    out.append('</svg>')
    return '\n'.join(out)


def _edge(edge, nodes, source, start, end, label_x, right_x, label_width):
    colour = COLOURS.get(edge['status'], COLOURS['planned'])
    sx = source.x + source.width
    bend = (label_x - sx) / 2.0
    path = 'M%s,%s C%s,%s %s,%s %s,%s L%s,%s' % (
        _num(sx), _num(start), _num(sx + bend), _num(start), _num(label_x - bend), _num(end), _num(label_x), _num(end),
        _num(right_x - 1), _num(end))
    dash = ' stroke-dasharray="6,4"' if edge['observed_only'] else ''
    weight = 2.5 if edge['status'] in ('over_exposed', 'mismatch', 'missing') else 1.6
    text_width = _width(edge['label'], LABEL_SIZE) + 12
    box_height = LABEL_SIZE + 6
    return ''.join([
        '<g class="kp-edge" data-edge="%s" data-source="%s" data-target="%s" data-status="%s">' % (
            escape(edge['id']), escape(edge['source']), escape(edge['target']), escape(edge['status'])),
        '<title>%s</title>' % escape(_edge_title(edge, nodes)),
        '<path d="%s" fill="none" stroke="%s" stroke-width="%s"%s marker-end="url(#kp-arrow-%s)"/>' % (
            path, colour, _num(weight), dash, escape(edge['status'] if edge['status'] in COLOURS else 'planned')),
        '<rect class="kp-label-box" x="%s" y="%s" width="%s" height="%s" rx="3" fill="#ffffff" stroke="%s"/>' % (
            _num(label_x + 2), _num(end - box_height / 2.0), _num(min(text_width, label_width - 2)), _num(box_height), colour),
        '<text class="kp-label" x="%s" y="%s" font-size="%d" fill="%s"%s>%s</text>' % (
            _num(label_x + 8), _num(end + LABEL_SIZE * 0.35), LABEL_SIZE,
            colour if edge['status'] != 'planned' else '#263238',
            ' font-weight="bold"' if edge['status'] == 'over_exposed' else '', escape(edge['label'])),
        '</g>'])


def _node(box):
    node = box.node
    stroke = COLOURS.get(node.get('status'), COLOURS['planned']) if node['kind'] == 'role' else '#78909c'
    if node['kind'] == 'role' and node.get('status') in ('planned', 'unobserved'):
        stroke = COLOURS['planned']
    fill = FILLS.get(node.get('status')) if node['kind'] == 'role' else None
    fill = fill or FILLS[node['kind']]
    dash = ' stroke-dasharray="4,3"' if node['kind'] == 'group' else ''
    weight = 3 if node.get('problems') else 1.5
    out = ['<g class="kp-node" data-node="%s" data-kind="%s" data-side="%s">' % (
        escape(node['id']), escape(node['kind']), box.side),
        '<title>%s</title>' % escape(_node_title(node)),
        '<rect class="kp-box" x="%s" y="%s" width="%s" height="%s" rx="6" fill="%s" stroke="%s" stroke-width="%s"%s/>' % (
            _num(box.x), _num(box.y), _num(box.width), _num(box.height), fill, stroke, _num(weight), dash)]
    y = box.y + PAD
    for text, size, bold, colour in box.lines:
        y += size
        out.append('<text class="kp-text" x="%s" y="%s" font-size="%d"%s fill="%s">%s</text>' % (
            _num(box.x + PAD), _num(y), size, ' font-weight="bold"' if bold else '', colour, escape(text)))
        y += 5
    out.append('</g>')
    return ''.join(out)


def _legend(mode, top, width):
    """The colours of the page's mode and how to read the picture, wrapped to ``width``."""
    items = [(status, STATUS_TEXT[status], False) for status in LEGENDS.get(mode, LEGENDS['plan'])]
    if mode != 'plan':
        items.append(('over_exposed', 'dashed: a flow the plan does not have', True))
    out = ['<g class="kp-legend">']
    x, y = MARGIN, top
    for status, text, dashed in items:
        item_width = 34 + _width(text, TEXT_SIZE) + 24
        if x > MARGIN and x + item_width > width - MARGIN:
            x, y = MARGIN, y + 22
        out.append('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2.5"%s/>' % (
            _num(x), _num(y), _num(x + 26), _num(y), COLOURS[status], ' stroke-dasharray="6,4"' if dashed else ''))
        out.append('<text class="kp-legend-text" x="%s" y="%s" font-size="%d" fill="#424242">%s</text>' % (
            _num(x + 34), _num(y + 4), TEXT_SIZE, escape(text)))
        x += item_width
    y += 22
    for note in ('Boxes: outsiders (yellow), every cluster node (blue, dashed), the role combinations of the hosts.',
                 'Hover a box for its hosts, an arrow for all its ports and what each is for.'):
        out.append('<text class="kp-legend-text" x="%s" y="%s" font-size="%d" fill="#616161">%s</text>' % (
            _num(MARGIN), _num(y + 4), TEXT_SIZE, escape(_fit(note, TEXT_SIZE, width - 2 * MARGIN))))
        y += 18
    out.append('</g>')
    return {'svg': ''.join(out), 'height': y - top}
