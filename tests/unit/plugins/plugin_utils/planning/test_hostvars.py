"""PlanHostvars: the planner reads every value as Ansible's hostvars template it, and values
without a template that hosts share are templated once."""

import json

import pytest

from ansible import template as ansible_template
from ansible.parsing.dataloader import DataLoader

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.inventory_planner import plan_request
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.hostvars import (
    PlanHostvars, SharedTemplating, alias_of, connection_plugins_listed_once, without_template)


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


PLAIN = ['10.0.0.0/8']
TEMPLATE = ['{{ x }}']


@pytest.mark.parametrize('first, second, same', [
    (PLAIN, PLAIN, True),
    (PLAIN, list(PLAIN), False),  # equal, but another object: not known to be the same
    ('calico', 'calico', True),
    (TEMPLATE, TEMPLATE, False),  # one object, but rendered per host
    ('{{ x }}', '{{ x }}', False),
])
def test_a_token_is_shared_only_by_one_object_without_a_template(first, second, same):
    shared = SharedTemplating()
    tokens = shared.token(first), shared.token(second)
    assert (tokens[0] is not None and tokens[0] == tokens[1]) is same
    if not without_template(first):
        assert tokens == (None, None)


def test_the_views_tokens_follow_the_raw_values(templated_inventory):
    _directory, _groups, hostvars = templated_inventory
    planned = PlanHostvars(hostvars)
    w1, w2, w3 = planned['w1'], planned['w2'], planned['w3']
    assert w1.shared_token('kubeports_api_client_cidrs') is not None
    assert w1.shared_token('kubeports_api_client_cidrs') == w2.shared_token('kubeports_api_client_cidrs')
    assert w1.shared_token('kubeports_admin_cidrs') is not None
    assert w3.shared_token('kubeports_admin_cidrs') is None  # the host's own template
    # An alias of a shared plain value ("{{ chosen_cni }}") shares that value's token.
    assert w1.shared_token('chosen_cni') is not None
    assert w1.shared_token('kube_network_plugin') == w1.shared_token('chosen_cni')
    assert w1.shared_token('kube_service_addresses') is None  # a template in group_vars
    assert w1.shared_token('ip') != w2.shared_token('ip')
    names = ('kubeports_api_client_cidrs', 'kube_network_plugin', 'no_such_variable', 'ip')
    absent = ('absent',)
    assert w1.shared_tokens(names, absent) == tuple(w1.shared_token(name) for name in names[:2]) + (
        absent, w1.shared_token('ip'))
    assert w1.get('no_such_variable') is None and w1.get('no_such_variable', 7) == 7
    assert w1.get('kube_network_plugin') == hostvars['w1']['kube_network_plugin'] == 'calico'


def test_connection_plugins_are_listed_once_and_facts_clean_the_same(plugin_loader):
    from ansible.vars import clean
    original = clean.connection_loader
    facts = {'ansible_ssh_user': 'x', 'ansible_local_thing': 1, 'ansible_become_pass': 'y', 'kept': 2}
    expected = clean.clean_facts(facts)
    listed = list(original.all(path_only=True))
    with connection_plugins_listed_once():
        wrapped = clean.connection_loader
        assert wrapped is not original
        assert list(wrapped.all(path_only=True)) == listed
        assert list(wrapped.all(path_only=True)) == listed
        assert wrapped.package == original.package
        assert clean.clean_facts(facts) == expected
    assert clean.connection_loader is original
    with pytest.raises(RuntimeError):
        with connection_plugins_listed_once():
            raise RuntimeError('planning failed')
    assert clean.connection_loader is original


def test_plans_that_overlap_never_leave_a_listing_behind(plugin_loader):
    from ansible.vars import clean
    original = clean.connection_loader
    first, second = connection_plugins_listed_once(), connection_plugins_listed_once()
    first.__enter__()
    second.__enter__()  # another plan while the first lists once: nothing more is wrapped
    first.__exit__(None, None, None)
    assert clean.connection_loader is original
    second.__exit__(None, None, None)
    assert clean.connection_loader is original


@pytest.mark.parametrize('value, alias', [
    ('{{ metallb_enabled }}', 'metallb_enabled'),
    ('{{metallb_enabled}}', 'metallb_enabled'),
    ('{{ _x1 }}', '_x1'),
    ('{{ metallb_enabled | bool }}', None),
    ('{{ a.b }}', None),
    ("{{ a['b'] }}", None),
    ('{{ a }} {{ b }}', None),
    (' {{ a }}', None),
    ('{{- a }}', None),
    ('{{ a }}\n', None),
    ('metallb_enabled', None),
    (['{{ a }}'], None),
    (None, None),
])
def test_alias_of(value, alias):
    assert alias_of(_trusted(value)) == alias


def test_an_untrusted_string_is_no_alias():
    # ansible-core 2.19 renders only strings trusted as templates (facts are not).
    if not hasattr(ansible_template, 'trust_as_template'):
        pytest.skip('ansible-core before 2.19 trusts every string')
    assert alias_of('{{ a }}') is None


ALIASES = {
    'enabled': True,
    'speaker': '{{ enabled }}',
    'speaker_again': '{{ speaker }}',
    'networks': ['10.0.0.0/8', '{{ "192.0.2.0/24" }}'],
    'networks_alias': '{{ networks }}',
    'plain_networks': ['10.0.0.0/8'],
    'plain_alias': '{{ plain_networks }}',
    'loop_a': '{{ loop_b }}',
    'loop_b': '{{ loop_a }}',
    'missing': '{{ no_such_variable }}',
    'of_the_host': '{{ inventory_hostname }}',
    'of_a_host_var': '{{ site }}',
}


def test_aliases_read_as_ansibles_hostvars_give_them(tmp_path, plugin_loader):
    """A template of one variable gives that variable's value, as Ansible renders it, for every
    host; loops and undefined targets fail as they fail in Ansible."""
    import os
    from ansible.inventory.manager import InventoryManager
    from ansible.vars.hostvars import HostVars
    from ansible.vars.manager import VariableManager
    (tmp_path / 'inventory.ini').write_text('[kube_node]\nw1 site=east\nw2 site=west\n')
    (tmp_path / 'group_vars').mkdir()
    (tmp_path / 'group_vars' / 'all.yml').write_text(json.dumps(ALIASES))
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[os.path.join(str(tmp_path), 'inventory.ini')])
    hostvars = HostVars(inventory=manager, variable_manager=VariableManager(loader=loader, inventory=manager),
                        loader=loader)
    planned = PlanHostvars(hostvars)
    for host in ('w1', 'w2'):
        view, own = planned[host], hostvars[host]
        for name in ('enabled', 'speaker', 'speaker_again', 'networks', 'networks_alias', 'plain_alias',
                     'of_the_host', 'of_a_host_var'):
            assert view[name] == own[name], (host, name)
        for name in ('loop_a', 'missing'):
            with pytest.raises(Exception) as raised:
                own[name]
            with pytest.raises(type(raised.value)):
                view[name]
    assert planned['w1']['speaker_again'] is True
    assert planned['w1']['of_a_host_var'] == 'east' and planned['w2']['of_a_host_var'] == 'west'
    # Hosts share the rendering of a shared target, and its token.
    assert planned['w1']['plain_alias'] is planned['w2']['plain_alias']
    assert planned['w2'].shared_token('enabled') is not None
    assert planned['w1'].shared_token('speaker') == planned['w2'].shared_token('enabled')
    assert planned['w1'].shared_token('of_a_host_var') != planned['w2'].shared_token('of_a_host_var')
