"""The filters' input errors name what they expected and what they got in a playbook author's
words (a list, a dict, a string), never a Python or Ansible internal type."""

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.kubeports.firewall.plugins.filter.host_view import host_view
from ansible_collections.kubeports.firewall.plugins.filter.reports import (
    audit_report, peer_update_note, port_markdown, port_table, verify_report)
from ansible_collections.kubeports.firewall.plugins.module_utils.errors import kind_of

from helpers import KUBESPRAY, is_installed, run_playbook


class _LazyList(list):
    """Stands for a template's lazy list (ansible-core's _AnsibleLazyTemplateList)."""


class _LazyDict(dict):
    pass


@pytest.mark.parametrize('value, kind', [
    ([], 'a list'),
    (_LazyList([1]), 'a list'),
    ((1, 2), 'a list'),
    ({'a': 1}, 'a dict'),
    (_LazyDict(), 'a dict'),
    ('text', 'a string'),
    (3, 'a number'),
    (1.5, 'a number'),
    (True, 'a boolean'),
    (None, 'nothing (null)'),
    (object(), 'a value that is no list, dict, string or number'),
])
def test_kind_of(value, kind):
    assert kind_of(value) == kind


PLAN = {'hosts': {}, 'rule_lists': {}, 'sets': {}}


@pytest.mark.parametrize('call, message', [
    (lambda: port_table(_LazyList([{'rules': []}])),
     'port_table expects one host plan (a dict) from required_ports(details=true), or a host of output=plan with '
     'its document=, got a list'),
    (lambda: port_table({'host': 'w1'}), "got a dict without 'rules'"),
    (lambda: port_table({'host': 'w1'}, document=PLAN), "got a dict without 'rules' or 'rule_list'"),
    (lambda: port_table('w1', document=PLAN), 'got a string'),
    (lambda: port_markdown('plan'), 'port_markdown expects a list of host plans or the hosts of a plan (a dict), '
                                    'got a string'),
    (lambda: verify_report(_LazyList(), {}, {}), 'verify_report expects the result of the probe_plan lookup (a dict), '
                                                 'got a list'),
    (lambda: verify_report({'hosts': {}}, {}, {}), "got a dict without 'probes'"),
    (lambda: verify_report({'probes': {}}, _LazyList(), {}),
     'verify_report: listeners must map host names to module results (a dict), got a list'),
    (lambda: verify_report({'probes': {}}, {}, None), 'verify_report: results must map host names to module results '
                                                      '(a dict), got nothing (null)'),
    (lambda: audit_report(_LazyList([PLAN]), {}), 'audit_report expects the plan of plan_hosts or '
                                                  'required_ports(output=plan) (a dict), got a list'),
    (lambda: audit_report(PLAN, _LazyList()), 'audit_report: results must map host names to port_rules_info '
                                              'results (a dict), got a list'),
    (lambda: peer_update_note(_LazyList([1]), {}, []), 'peer_update_note expects the peers_to_update of plan_hosts '
                                                       '(a dict), got a list'),
    (lambda: peer_update_note({'holders': []}, 'x', []), 'peer_update_note: results must map host names to '
                                                         'port_rules results (a dict), got a string'),
    (lambda: host_view(_LazyList([PLAN]), 'w1'), 'host_view expects the plan of plan_hosts or of '
                                                 'required_ports(output=plan) (a dict), got a list'),
    (lambda: host_view({'hosts': ['w1']}, 'w1'), 'got a dict whose hosts are a list'),
    (lambda: host_view(PLAN, _LazyList(['w1'])), 'host_view: host must be a host name (a string), got a list'),
])
def test_input_errors_name_the_kinds(call, message):
    with pytest.raises(AnsibleFilterError) as raised:
        call()
    assert message in str(raised.value)
    assert '_Lazy' not in str(raised.value)


@pytest.mark.skipif(not is_installed(), reason='needs the installed collection (make install)')
def test_a_template_list_given_to_a_filter_is_called_a_list(tmp_path):
    """The mistake that showed ansible-core's _AnsibleLazyTemplateList: the whole list of host plans
    given to port_table, which takes one."""
    play = [{'hosts': 'cp1', 'gather_facts': False, 'connection': 'local', 'tasks': [
        {'ansible.builtin.debug': {
            'msg': "{{ query('kubeports.firewall.required_ports', details=true) | kubeports.firewall.port_table }}"}}]}]
    playbook = tmp_path / 'wrong.yml'
    playbook.write_text(yaml.safe_dump(play))
    rc, output = run_playbook(playbook, KUBESPRAY)
    assert rc != 0 and 'got a list' in output, output
    assert '_AnsibleLazy' not in output and 'Lazy' not in output, output
