"""kubespray's reading tables: every row reads a documented variable with a default of the kind
its reading takes, a CNI's rows belong to a CNI kubespray deploys, and a CNI's variables are
read only when kubespray runs that CNI."""

import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.installers import (
    AS_SET, BY_NAME, FLAG, KUBESPRAY_CNI, KUBESPRAY_CNI_READINGS, KUBESPRAY_DEFAULTS, KUBESPRAY_READINGS,
    KUBESPRAY_VARIABLES, NONE_IF_TRUE, Context, read_values)

ROWS = [(cni, row) for cni, readings in sorted(KUBESPRAY_CNI_READINGS.items()) for row in readings if not callable(row)]
ROWS += [(None, row) for row in KUBESPRAY_READINGS if not callable(row)]
DOCUMENTED = set(row[0] for row in KUBESPRAY_VARIABLES)
# A variable each CNI checks in a reading of its own (a function, not a row); kube-router's
# (its peer router IPs) checks none.
CHECKED_BY_FUNCTION = {'calico': 'calico_ipip_mode', 'cilium': 'cilium_encryption_enabled',
                       'flannel': 'flannel_backend_type', 'kube-ovn': 'kube_ovn_tunnel_type'}


def read(variables):
    return read_values(BY_NAME['kubespray'], Context('w1', variables, {'kube_node': ['w1']}))


@pytest.mark.parametrize('cni, row', ROWS, ids=['%s %s' % (cni or 'any', row[1]) for cni, row in ROWS])
def test_a_row_reads_a_documented_variable_with_a_default_of_its_kind(cni, row):
    _key, name, reading = row
    assert name in DOCUMENTED
    default = KUBESPRAY_DEFAULTS[name]
    if reading in (FLAG, NONE_IF_TRUE):
        assert isinstance(default, bool)
    elif reading != AS_SET:
        accepted, checked_by = reading
        assert default in [spelling for spelling, _meaning in accepted]
        assert '(' in checked_by and checked_by.endswith(')')


def test_the_cnis_read_are_cnis_kubespray_deploys():
    deployed = set(spelling for spelling, meaning in KUBESPRAY_CNI if meaning)
    assert set(KUBESPRAY_CNI_READINGS) <= deployed


def bad_values(cnis):
    """A value no variable takes, for the variables the readings of ``cnis`` check."""
    names = [row[1] for cni, row in ROWS if cni in cnis and row[2] != AS_SET]
    names += [CHECKED_BY_FUNCTION[cni] for cni in cnis if cni in CHECKED_BY_FUNCTION]
    return dict((name, 'not a value') for name in names)


@pytest.mark.parametrize('cni', sorted(KUBESPRAY_CNI_READINGS))
def test_a_cni_reads_its_own_variables_only(cni):
    others = set(KUBESPRAY_CNI_READINGS) - set([cni])
    assert read(dict(bad_values(others), kube_network_plugin=cni))['cni'] == ([cni], 'kube_network_plugin')
    for name, bad in bad_values([cni]).items():
        with pytest.raises(PlanError, match='^%s .*not a value' % name):
            read({'kube_network_plugin': cni, name: bad})


@pytest.mark.parametrize('cni, name', [('calico', 'calico_bpf_enabled'), ('kube-router', 'kube_router_run_service_proxy')])
def test_none_if_true_replaces_kube_proxy_only_when_true(cni, name):
    assert read({'kube_network_plugin': cni, name: True})['kube_proxy'] == ('none', name)
    assert read({'kube_network_plugin': cni, name: False})['kube_proxy'] == ('ipvs', 'kubespray default of kube_proxy_mode')
