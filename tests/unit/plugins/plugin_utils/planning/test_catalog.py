import fnmatch
import os
import re

import pytest

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.catalog import (
    build_rule, default_catalog_dir, load_catalog)
from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError

from ansible.module_utils.six.moves.urllib.parse import urlsplit
from helpers import ROOT

SOURCES_PAGE = 'https://github.com/kubeports/kubeports.firewall/blob/main/docs/sources.md'
SOURCES_MD = os.path.join(ROOT, 'docs', 'sources.md')


def test_catalog_loads_one_component_per_file(catalog):
    files = [name for name in os.listdir(default_catalog_dir()) if name.endswith('.yml')]
    assert len(catalog) == len(files)
    for component in catalog:
        assert os.path.basename(component.path) == component.name + '.yml'


def test_every_reference_is_a_public_url_with_its_section(catalog):
    for component in catalog:
        for rule in component.rules:
            assert rule.references, rule.id
            for reference in rule.references:
                parts = urlsplit(reference)
                assert parts.scheme == 'https' and parts.netloc, (rule.id, reference)
                assert reference.isascii() and ' ' not in reference, (rule.id, reference)


def _sources_sections():
    """docs/sources.md: GitHub's anchor of each "###" heading -> the rule ids in its section."""
    with open(SOURCES_MD, encoding='utf-8') as handle:
        text = handle.read()
    sections = {}
    for section in re.split(r'^### ', text, flags=re.M)[1:]:
        title = section.splitlines()[0]
        anchor = re.sub(r'[^\w\- ]', '', title.strip().lower()).replace(' ', '-')
        sections[anchor] = re.findall(r'`([a-z0-9-]+\.[a-z0-9.*-]+)`', section)
    return sections


def test_references_to_the_sources_page_name_a_section_that_lists_the_rule(catalog):
    sections = _sources_sections()
    cited = set()
    for component in catalog:
        for rule in component.rules:
            for reference in rule.references:
                if reference.startswith(SOURCES_PAGE + '#'):
                    anchor = reference.split('#', 1)[1]
                    assert anchor in sections, (rule.id, anchor)
                    assert any(fnmatch.fnmatch(rule.id, pattern) for pattern in sections[anchor]), (rule.id, anchor)
                    cited.add(anchor)
    assert cited == set(sections)


@pytest.mark.parametrize('reference, message', [
    ('dce5-kubean-port-requirements.zh.md#Calico', 'is not a URL'),
    ('docs.k3s.io/ports', 'is not a URL'),
    ('https://kubernetes.io/ports#端口', 'must be percent-encoded'),
    ('https://kubernetes.io/a page', 'must be percent-encoded'),
])
def test_catalog_files_reject_references_that_are_no_public_url(tmp_path, reference, message):
    (tmp_path / 'x.yml').write_text(
        'component: x\nrules:\n  - {id: x.a, protocol: tcp, port: 1, to: [all], from: [any], reference: "%s"}\n'
        % reference, encoding='utf-8')
    with pytest.raises(PlanError) as exc:
        load_catalog([str(tmp_path)])
    assert message in str(exc.value) and 'x.a' in str(exc.value) and 'x.yml' in str(exc.value)


def test_health_and_overlay_ports_are_never_open_to_anyone(catalog):
    restricted = {('udp', (8472, 8472)), ('tcp', (2379, 2379)), ('tcp', (2380, 2380)),
                  ('tcp', (10250, 10250)), ('tcp', (179, 179)), ('tcp', (9099, 9099)),
                  ('tcp', (10254, 10254)), ('udp', (4789, 4789)), ('tcp', (10256, 10256))}
    for component in catalog:
        for rule in component.rules:
            if (rule.protocol, rule.port) in restricted:
                assert 'any' not in rule.sources, rule.id
                assert not set(rule.sources) & {'workload_clients', 'ui_clients', 'api_clients'}, rule.id


GOOD = {'protocol': 'tcp', 'port': 80, 'to': ['worker'], 'from': ['any'], 'reference': 'x'}


@pytest.mark.parametrize('change, message', [
    ({'protocol': 'tpc'}, "unknown protocol 'tpc'"),
    ({'port': 0}, 'invalid port 0'),
    ({'port': '32767-30000'}, 'start is above end'),
    ({'port': None}, 'protocol tcp needs a port'),
    ({'port': '$api'}, "unknown port variable '$api'"),
    ({'protocol': 'ipip'}, 'protocol ipip takes no port'),
    ({'to': ['workers']}, "unknown role 'workers' in \"to\""),
    ({'to': []}, 'missing "to"'),
    ({'from': ['everyone']}, "unknown source 'everyone'"),
    ({'from': None}, 'missing "from"'),
    ({'when': {'cni': 'calcio'}}, "condition cni has unknown value 'calcio'"),
    ({'when': {'colour': 'blue'}}, "unknown condition 'colour'"),
    ({'when': ['cni']}, '"when" must be a mapping'),
    ({'ports': 80}, 'unknown rule field(s) ports'),
    ({'reference': None}, 'missing "reference"'),
])
def test_build_rule_rejects(change, message):
    raw = dict(GOOD)
    raw.update(change)
    raw = dict((key, value) for key, value in raw.items() if not (key == 'reference' and value is None))
    with pytest.raises(PlanError) as exc:
        build_rule(raw, 'test', 'catalog file test.yml rules[0]')
    assert message in str(exc.value)
    assert 'test.yml' in str(exc.value)


def test_build_rule_protocol_only():
    rule = build_rule({'protocol': 'ipip', 'to': 'node', 'from': 'cluster', 'reference': 'x'}, 't', 'w')
    assert rule.port is None and rule.to == ('node',) and rule.sources == ('cluster',)


@pytest.mark.parametrize('text, message', [
    ('component: x\nrules: []\n', '"rules" must be a non-empty list'),
    ('- just a list\n', 'expected a mapping with "component"'),
    ('component: x\nrules:\n  - {id: y.a, protocol: tcp, port: 1, to: [all], from: [any], reference: "https://kubernetes.io/r"}\n',
     "id 'y.a' must start with 'x.'"),
    ('component: x\nextra: 1\nrules: []\n', 'unknown field(s) extra'),
    ('component: x\nrules: [\n', 'cannot be read'),
])
def test_load_catalog_rejects_bad_files(tmp_path, text, message):
    (tmp_path / 'x.yml').write_text(text)
    with pytest.raises(PlanError) as exc:
        load_catalog([str(tmp_path)])
    assert message in str(exc.value)


def test_load_catalog_rejects_duplicate_ids(tmp_path):
    rule = '  - {id: %s, protocol: tcp, port: 1, to: [all], from: [any], reference: "https://kubernetes.io/r"}\n'
    (tmp_path / 'a.yml').write_text('component: a\nrules:\n' + rule % 'a.one')
    (tmp_path / 'b.yml').write_text('component: a\nrules:\n' + rule % 'a.one')
    with pytest.raises(PlanError, match="component 'a' is already defined"):
        load_catalog([str(tmp_path)])


def test_extra_catalog_dir_adds_a_component(tmp_path, catalog):
    (tmp_path / 'antrea.yml').write_text(
        'component: antrea\napplies_when: {cni: none}\nrules:\n'
        '  - {id: antrea.geneve, protocol: udp, port: 6081, to: [node], from: [cluster], reference: "https://kubernetes.io/r"}\n')
    components = load_catalog([default_catalog_dir(), str(tmp_path)])
    assert len(components) == len(catalog) + 1


def test_missing_catalog_dir():
    with pytest.raises(PlanError, match='does not exist'):
        load_catalog(['/nonexistent/kubeports'])
