"""The flows diagram looked at by headless Chromium: an inline script measures every box and
label (getBBox) and writes its verdict to document.title, which --dump-dom prints."""

import json
import os
import re
import subprocess
import sys
import tempfile

import pytest

from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports import flows as flows_module
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.flow_diagram import svg
from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.flows import (
    audit_flows, plan_flows, verify_flows)

CHROMIUM = '/usr/bin/chromium'
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run']
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', '..'))
EXAMPLES = (('kubespray', 'inventory.ini'), ('kubean', 'hosts.yml'), ('k3s-ansible', 'inventory.yml'),
            ('rke2-lablabs', 'inventory.ini'), ('rke2-ansible', 'hosts.yml'), ('overrides/kubean-dce5', 'inventory.yml'),
            ('overrides/rke-rancher', 'inventory.yml'))

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason='%s is missing (make apt installs it)' % CHROMIUM)

# Boxes must not overlap boxes, labels must not overlap labels or boxes, every text must stay
# inside its box or label and inside the picture.
CHECK = '''
function boxOf(element) { var b = element.getBBox(); return {x: b.x, y: b.y, r: b.x + b.width, b: b.y + b.height}; }
function meet(a, b) { return a.x < b.r - 0.5 && b.x < a.r - 0.5 && a.y < b.b - 0.5 && b.y < a.b - 0.5; }
function inside(a, b) { return a.x >= b.x - 0.5 && a.r <= b.r + 0.5 && a.y >= b.y - 0.5 && a.b <= b.b + 0.5; }
var problems = [];
var root = document.querySelector('svg');
var picture = {x: 0, y: 0, r: root.width.baseVal.value, b: root.height.baseVal.value};
var solid = [];
document.querySelectorAll('g.kp-node').forEach(function (g) {
  var rect = boxOf(g.querySelector('rect.kp-box'));
  solid.push({name: 'box ' + g.getAttribute('data-node') + '/' + g.getAttribute('data-side'), box: rect});
  g.querySelectorAll('text').forEach(function (t) {
    if (!inside(boxOf(t), rect)) problems.push('text out of box ' + g.getAttribute('data-node') + ': ' + t.textContent);
  });
});
document.querySelectorAll('g.kp-edge').forEach(function (g) {
  var rect = boxOf(g.querySelector('rect.kp-label-box'));
  solid.push({name: 'label ' + g.getAttribute('data-edge'), box: rect});
  var t = g.querySelector('text.kp-label');
  if (!inside(boxOf(t), rect)) problems.push('label text out of its box: ' + t.textContent);
});
document.querySelectorAll('text').forEach(function (t) {
  if (!inside(boxOf(t), picture)) problems.push('text outside the picture: ' + t.textContent);
});
for (var i = 0; i < solid.length; i++) {
  if (!inside(solid[i].box, picture)) problems.push(solid[i].name + ' outside the picture');
  for (var j = i + 1; j < solid.length; j++) {
    if (meet(solid[i].box, solid[j].box)) problems.push(solid[i].name + ' overlaps ' + solid[j].name);
  }
}
document.title = problems.length ? 'OVERLAP ' + problems.slice(0, 5).join('; ') :
  'CLEAN ' + solid.length + ' items';
'''


def collections_path():
    """Where ansible finds this collection: the installed copy, else the tree this test imports."""
    installed = os.environ.get('KUBEPORTS_COLLECTIONS_PATH', os.path.join(ROOT, '.build', 'collections'))
    if os.path.isdir(os.path.join(installed, 'ansible_collections', 'kubeports', 'firewall')):
        return installed
    path = os.path.abspath(flows_module.__file__)
    return path[:path.index(os.sep + 'ansible_collections' + os.sep)]


def example_plan(example, inventory):
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_LOCALHOST_WARNING='0',
                       ANSIBLE_INVENTORY_UNPARSED_WARNING='0', ANSIBLE_NOCOLOR='1', ANSIBLE_STDOUT_CALLBACK='default')
    environment.pop('ANSIBLE_CONFIG', None)
    result = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible'), 'localhost', '-i',
                             os.path.join(ROOT, 'examples', example, inventory), '-m', 'ansible.builtin.debug', '-a',
                             "msg={{ lookup('kubeports.firewall.required_ports', output='plan') | to_json }}"],
                            cwd='/', env=environment, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(json.loads(result.stdout.split('=>', 1)[1])['msg'])


def verdict(svg_text, tmp_path):
    page = tmp_path / 'page.html'
    page.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"><title>pending</title></head><body>%s'
                    '<script>%s</script></body></html>' % (svg_text, CHECK))
    profile = tempfile.mkdtemp(prefix='chromium-', dir=str(tmp_path))
    result = subprocess.run([CHROMIUM] + FLAGS + ['--user-data-dir=%s' % profile, '--dump-dom', 'file://%s' % page],
                            capture_output=True, text=True, timeout=120, check=False)
    match = re.search(r'<title>(.*?)</title>', result.stdout)
    assert match, 'no title in the dumped page: %s' % (result.stdout[-500:] + result.stderr[-2000:])
    return match.group(1)


def observed(graph):
    """The graph with something of every status: a verify mismatch and an audit over-exposure."""
    role_boxes = [node for node in graph['nodes'] if node['kind'] == 'role']
    first = role_boxes[0]['hosts'][0]
    other = role_boxes[-1]['hosts'][0]
    probes = [{'source': other, 'target': first, 'protocol': 'tcp', 'port': 2379, 'expected': 'blocked',
               'observed': 'open', 'result': 'mismatch', 'planned': True},
              {'source': other, 'target': first, 'protocol': 'tcp', 'port': 22, 'expected': 'open',
               'observed': 'filtered', 'result': 'mismatch', 'planned': True}]
    findings = {'missing': [{'protocol': 'tcp', 'port': '22', 'sources': None, 'description': 'SSH',
                             'severity': 'high'}], 'extra': [], 'foreign': [],
                'over_exposed': [{'protocol': 'tcp', 'port': '10250', 'sources': None, 'severity': 'critical',
                                  'description': 'kubelet open to anyone'}]}
    return [verify_flows(graph, {'probes': probes}), audit_flows(graph, {'hosts': {first: findings}})]


@pytest.mark.parametrize('example, inventory', EXAMPLES)
def test_example_diagrams_have_no_overlap(example, inventory, tmp_path):
    graph = plan_flows(example_plan(example, inventory))
    for drawn in [graph] + observed(graph):
        result = verdict(svg(drawn), tmp_path)
        assert result.startswith('CLEAN'), '%s (%s): %s' % (example, drawn['mode'], result)


def test_ten_role_diagram_has_no_overlap(ten_role_plan, tmp_path):
    graph = plan_flows(ten_role_plan)
    assert len([node for node in graph['nodes'] if node['kind'] == 'role']) == 10
    for drawn in [graph] + observed(graph):
        result = verdict(svg(drawn), tmp_path)
        assert result.startswith('CLEAN'), '%s: %s' % (drawn['mode'], result)


def test_the_check_sees_an_overlap(small_plan, tmp_path):
    text = svg(plan_flows(small_plan))
    # Move every label onto the first one: the check must say so.
    text = re.sub(r'(<rect class="kp-label-box" x="[\d.]+" y=")[\d.]+', r'\g<1>100', text)
    assert verdict(text, tmp_path).startswith('OVERLAP')
