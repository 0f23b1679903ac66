#!/usr/bin/env python
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Renders the flows diagram of each example inventory into docs/images/flows-<example>.png
with headless Chromium (run by hand; see docs/plan.md, "The flows diagram").

    PYTHONPATH=$PWD/.build/dev ANSIBLE_COLLECTIONS_PATH=$PWD/.build/dev .venv/bin/python docs/screenshots.py

Each plan comes from the required_ports lookup (output=plan) run by ansible on the example's
inventory; Chromium is /usr/bin/chromium unless --chromium says otherwise.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = (('kubespray', 'inventory.ini'), ('kubean', 'hosts.yml'), ('k3s-ansible', 'inventory.yml'),
            ('rke2-lablabs', 'inventory.ini'), ('rke2-ansible', 'hosts.yml'), ('overrides/kubean-dce5', 'inventory.yml'),
            ('overrides/rke-rancher', 'inventory.yml'))
CHROMIUM_FLAGS = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync', '--no-first-run', '--hide-scrollbars')


def example_plan(example, inventory, workdir):
    """The plan document of an example inventory, from the lookup run by ansible."""
    target = os.path.join(workdir, 'plan-%s.json' % os.path.basename(example))
    environment = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'))
    environment.setdefault('ANSIBLE_COLLECTIONS_PATH', os.path.join(ROOT, '.build', 'dev'))
    subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible'), 'localhost', '-i',
                    os.path.join(ROOT, 'examples', example, inventory), '-m', 'ansible.builtin.copy', '-a',
                    "content={{ lookup('kubeports.firewall.required_ports', output='plan') | to_json }} dest=%s" % target],
                   check=True, stdout=subprocess.DEVNULL, env=environment, cwd=ROOT, timeout=600)
    with open(target) as handle:
        return json.load(handle)


def page(svg_text):
    return '<!DOCTYPE html><html><head><meta charset="utf-8"><style>body{margin:0;background:#fff}</style>' \
           '</head><body>%s</body></html>' % svg_text


def screenshot(chromium, svg_text, output, workdir):
    """A PNG of the SVG at its own size."""
    width, height = [int(float(value)) + 1 for value in
                     re.search(r'width="([\d.]+)" height="([\d.]+)"', svg_text).groups()]
    path = os.path.join(workdir, 'page.html')
    with open(path, 'w') as handle:
        handle.write(page(svg_text))
    profile = tempfile.mkdtemp(prefix='kubeports-chromium-', dir=workdir)
    subprocess.run([chromium] + list(CHROMIUM_FLAGS) + ['--user-data-dir=%s' % profile,
                                                        '--window-size=%d,%d' % (width, height),
                                                        '--screenshot=%s' % output, 'file://' + path],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--chromium', default='/usr/bin/chromium')
    parser.add_argument('--output', default=os.path.join(ROOT, 'docs', 'images'))
    parser.add_argument('examples', nargs='*', help='examples to render (all by default)')
    args = parser.parse_args()
    from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports import flow_diagram, flows
    workdir = tempfile.mkdtemp(prefix='kubeports-screenshots-')
    try:
        for example, inventory in EXAMPLES:
            if args.examples and example not in args.examples:
                continue
            graph = flows.plan_flows(example_plan(example, inventory, workdir))
            output = os.path.join(args.output, 'flows-%s.png' % os.path.basename(example))
            screenshot(args.chromium, flow_diagram.svg(graph, title='Planned flows of examples/%s' % example),
                       output, workdir)
            print(output)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    main()
