"""Input checks of the probe_ports module (plugins/modules/probe_ports.py)."""

import pytest

from ansible_collections.kubeports.firewall.plugins.modules.probe_ports import validated


@pytest.mark.parametrize('probe, checked', [
    ({'address': '192.0.2.1', 'protocol': 'udp', 'port': '8472', 'id': 'p1', 'target': 'node5', 'source': 'node4',
      'expected': 'open', 'source_address': '192.0.2.2', 'rule': '8472', 'ids': ['flannel.vxlan']},
     {'address': '192.0.2.1', 'protocol': 'udp', 'port': 8472, 'id': 'p1', 'target': 'node5', 'source': 'node4',
      'expected': 'open', 'source_address': '192.0.2.2'}),
    ({'address': '192.0.2.1', 'protocol': 'tcp', 'port': 22},
     {'address': '192.0.2.1', 'protocol': 'tcp', 'port': 22, 'id': 0}),
])
def test_probes_keep_what_the_prober_uses(probe, checked):
    assert validated([probe]) == [checked]


@pytest.mark.parametrize('probe, message', [
    ({'address': '192.0.2.1', 'protocol': 'udp', 'port': 1, 'expected': 'maybe'},
     "probes[0]: expected 'maybe' is neither open nor blocked"),
    ({'address': '192.0.2.1', 'protocol': 'icmp', 'port': 1}, "probes[0]: protocol 'icmp' cannot be probed"),
    ({'protocol': 'udp', 'port': 1}, 'probes[0]: missing address'),
    ({'address': '192.0.2.1', 'protocol': 'tcp', 'port': 70000}, "probes[0]: invalid port 70000 (ports are 1-65535)"),
    ({'address': '192.0.2.1', 'protocol': 'tcp', 'port': 'ssh'}, "probes[0]: invalid port 'ssh'"),
    ({'address': '192.0.2.1', 'protocol': 'tcp', 'port': '80-90'}, "probes[0]: a probe goes to one port, got '80-90'"),
])
def test_bad_probes_are_refused(probe, message):
    with pytest.raises(ValueError) as caught:
        validated([probe])
    assert str(caught.value).startswith(message)
