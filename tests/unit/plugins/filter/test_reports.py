"""The report filters name the inventory in their pages and report counts that add up."""

import pytest

from ansible_collections.kubeports.firewall.plugins.filter.reports import audit_report, verify_report

# A plan (output=plan) of one etcd host with no rules.
PLAN = {'hosts': {'a': {'host': 'a', 'roles': ['etcd'], 'rule_list': 'r1'}},
        'rule_lists': {'r1': {'rules': [], 'sets': {}, 'skipped': []}}, 'sets': {},
        'clusters': [{'name': 'cluster', 'hosts': ['a'], 'values': {}}], 'addresses': {'a': ['192.0.2.1/32']}}
CLEAN = {'backend': 'ufw', 'findings': {'missing': [], 'extra': [], 'over_exposed': [], 'foreign': []}}


@pytest.mark.parametrize('inventory, shown', [
    (['/srv/inventory/hosts.ini', '/srv/inventory/extra.yml'], '/srv/inventory/hosts.ini, /srv/inventory/extra.yml'),
    ('/srv/inventory/hosts.ini', '/srv/inventory/hosts.ini'),
    (None, 'unknown'),
    ('', 'unknown'),
])
def test_the_audit_page_names_the_inventory(inventory, shown):
    report = audit_report(PLAN, {'a': CLEAN}, inventory=inventory)
    assert '<b>Inventory:</b> %s</span>' % shown in report['html']
    assert 'cluster (1 host)' in report['html'] and 'PASS: all 1 audited hosts match the plan' in report['html']
    assert report['line'].startswith('audit of 1 hosts: 1 clean, 0 with findings')


def test_the_verify_page_names_the_inventory():
    plan = {'probes': {}, 'not_probed': [], 'targets': {'a': {'roles': 'etcd', 'addresses': ['192.0.2.1']}},
            'clusters': PLAN['clusters'], 'run_id': 'r'}
    report = verify_report(plan, {}, {}, inventory=['/srv/inventory/hosts.ini'])
    assert '<b>Inventory:</b> /srv/inventory/hosts.ini</span>' in report['html']
    assert report['hosts'] == {'a': {'roles': 'etcd', 'probes': 0, 'ok': 0, 'mismatches': 0, 'unproven': 0,
                                     'not_probed': 0, 'state': 'clean', 'worst': ''}}
