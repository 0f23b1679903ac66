"""The resolved profile rendered once: one value per row in the profile's order, aligned on the
console, a table in Markdown, the notes listed apart in both."""

import pytest

from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports.profile_report import (
    console_lines, markdown_lines, rows, with_lines)

CLUSTER = {
    'name': 'cluster', 'hosts': ['cp1', 'node1', 'node2', 'node3', 'node4'],
    'values': {'cni': {'value': '[calico]', 'origin': 'kube_network_plugin'},
               'installer': {'value': 'kubespray', 'origin': 'the host is in groups of kubespray'},
               'service_cidrs': {'value': '[10.233.0.0/18]', 'origin': 'kubespray default of kube_service_addresses'},
               'kube_proxy': {'value': None, 'origin': 'varies by host: kube_proxy_mode, kubespray default of kube_proxy_mode'},
               'api_port': {'value': '6443', 'origin': 'a | b'}},
    'notes': ['first note', 'second note'],
}


def test_rows_follow_the_order_of_the_profile():
    assert [row[0] for row in rows(CLUSTER)] == ['installer', 'cni', 'api_port', 'kube_proxy', 'service_cidrs']
    assert rows(CLUSTER)[3][1] == 'varies by host'


def test_console_lines_one_value_per_line_in_columns_then_the_notes():
    lines = console_lines(CLUSTER)
    assert lines[0] == 'Profile: cluster (5 hosts: cp1, node1, node2, node3, node4)'
    assert lines[1].split() == ['KEY', 'VALUE', 'ORIGIN']
    assert lines[2] == '  installer      kubespray        the host is in groups of kubespray'
    starts = set(line.index(row[2]) for line, row in zip(lines[2:], rows(CLUSTER)))
    assert len(starts) == 1
    assert lines[-3:] == ['Notes:', '  - first note', '  - second note']


@pytest.mark.parametrize('notes, tail', [
    (['first note'], ['Notes:', '', '- first note', '']),
    ([], ['| service_cidrs | [10.233.0.0/18] | kubespray default of kube_service_addresses |', '']),
])
def test_markdown_table_then_the_notes(notes, tail):
    lines = markdown_lines(dict(CLUSTER, notes=notes))
    assert lines[:6] == ['## Profile: cluster', '', 'Hosts (5): cp1, node1, node2, node3, node4', '',
                         '| Key | Value | Origin |', '|---|---|---|']
    assert '| api_port | 6443 | a \\| b |' in lines
    assert lines[-len(tail):] == tail


def test_with_lines_adds_the_console_lines_to_each_cluster():
    assert with_lines([CLUSTER]) == [dict(CLUSTER, lines=console_lines(CLUSTER))]
    assert 'lines' not in CLUSTER
