"""PlanHostvars: the planner reads every value as Ansible's hostvars template it, and values
without a template that hosts share are templated once."""

import json

import pytest

from ansible import template as ansible_template
from ansible.parsing.dataloader import DataLoader

from ansible_collections.kubeports.firewall.plugins.module_utils.inventory_planner import plan_request
from ansible_collections.kubeports.firewall.plugins.plugin_utils.hostvars import (
    PlanHostvars, SharedTemplating, without_template)


class Word(str):
    """A str subclass, as Ansible's tagged strings are."""


VALUES = [
    ('calico', True),
    (Word('calico'), True),
    ({1: 'one', 2: ['x']}, True),
    ('', True),
    (6443, True),
    (True, True),
    (None, True),
    (1.5, True),
    (['10.0.0.0/8', 'any'], True),
    ({'a': [1, {'b': 'c'}]}, True),
    (('x', 'y'), True),
    ('{{ cni }}', False),
    ('{% if x %}a{% endif %}', False),
    ('{# comment #}', False),
    ('a {brace} b', False),
    ('#jinja2:variable_start_string:"[%"\n[% x %]', False),
    (['ok', '{{ x }}'], False),
    ({'k': '{{ x }}'}, False),
    ({'{{ key }}': 'v'}, False),
    (Word('{{ x }}'), False),
    ({'a', 'b'}, False),
    (b'bytes', False),
    (object(), False),
]


@pytest.mark.parametrize('value, expected', VALUES)
def test_without_template(value, expected):
    assert without_template(value) is expected


def _trusted(value):
    """The value with every string trusted as a template (as strings from inventory files are)."""
    trust = getattr(ansible_template, 'trust_as_template', lambda item: item)
    if isinstance(value, str):
        return trust(str(value))
    if isinstance(value, dict):
        return dict((key, _trusted(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [_trusted(item) for item in value]
    return value


@pytest.mark.parametrize('value', [value for value, expected in VALUES if expected])
def test_what_holds_no_template_is_no_template_to_ansible_either(value):
    templar = ansible_template.Templar(loader=DataLoader())
    assert not templar.is_template(_trusted(value))
    assert templar.template(_trusted(value)) == (list(value) if isinstance(value, tuple) else value)


def test_deep_nesting_is_treated_as_a_template():
    value = 'leaf'
    for _level in range(40):
        value = [value]
    assert without_template(value) is False


def test_shared_templating_renders_a_shared_plain_value_once_and_a_template_every_time():
    shared, calls = SharedTemplating(), []
    plain, copy, template = ['10.0.0.0/8'], ['10.0.0.0/8'], '{{ x }}'

    def render(raw, name):
        def run():
            calls.append(name)
            return list(raw) if isinstance(raw, list) else 'rendered'
        return run
    first = shared.value(plain, render(plain, 'plain'))
    assert shared.value(plain, render(plain, 'plain')) is first
    assert shared.value(copy, render(copy, 'copy')) == plain  # an equal but other object: rendered again
    for _host in range(3):
        assert shared.value(template, render(template, 'template')) == 'rendered'
    assert calls == ['plain', 'copy', 'template', 'template', 'template']


def test_every_value_reads_as_ansibles_hostvars_give_it(templated_inventory):
    _directory, groups, hostvars = templated_inventory
    planned = PlanHostvars(hostvars)
    for host in groups['all']:
        view, own = planned[host], hostvars[host]
        assert sorted(view) == sorted(own)
        assert len(view) == len(own)
        for name in own:
            assert name in view
            assert view[name] == own[name], (host, name)
    assert planned['w3']['kubeports_admin_cidrs'] == ['198.51.100.0/24']
    assert planned['w1']['kubeports_admin_cidrs'] == ['192.0.2.10']
    assert planned['w1']['kube_network_plugin'] == 'calico'


def test_a_shared_list_is_templated_once_and_the_plan_is_the_same(templated_inventory):
    _directory, groups, hostvars = templated_inventory
    planned = PlanHostvars(hostvars)
    assert planned['w1']['kubeports_api_client_cidrs'] is planned['w2']['kubeports_api_client_cidrs']
    assert planned['w1']['kube_service_addresses'] == planned['w2']['kube_service_addresses'] == '10.233.0.0/18'
    expected = plan_request(groups, hostvars, None, [], [])
    assert json.dumps(plan_request(groups, planned, None, [], []), sort_keys=True) == json.dumps(expected, sort_keys=True)


def test_plain_mappings_pass_through():
    planned = PlanHostvars({'h1': {'ip': '10.0.0.1'}})
    assert planned['h1'] == {'ip': '10.0.0.1'}
    assert 'h1' in planned and 'h2' not in planned
    assert list(planned) == ['h1'] and len(planned) == 1
    with pytest.raises(KeyError):
        planned['h2']
    assert len(PlanHostvars(None)) == 0
