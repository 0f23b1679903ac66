# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load and validate the port catalog: one YAML file per component."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible.module_utils.six.moves.urllib.parse import urlsplit

from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.module_utils.rule_contract import (
    PORT_PROTOCOLS, check_protocol, parse_port)
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.profile import (
    CIDR_SETS, CONDITION_KEYS, OPTIONS, parse_interfaces)

# The collection's root: plugins/plugin_utils/planning/ is three levels below it.
COLLECTION_ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..'))

try:
    import yaml
    HAS_YAML = True
    # libyaml's loader when PyYAML was built with it: the same data, several times faster.
    SAFE_LOADER = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    HAS_YAML = False

# Host roles, derived from inventory groups (kubeports_role_groups).
ROLES = ('etcd', 'controlplane', 'worker', 'route_reflector', 'registry', 'bootstrap', 'rancher')
# Destination selectors: a role, "node" (runs kubelet) or "all" (every managed host).
# kubespray's calico_rr hosts (route_reflector) are Kubernetes nodes too.
DESTINATIONS = ROLES + ('node', 'all')
# Source selectors: everyone, the host itself, all cluster nodes, a role, or a CIDR set.
SOURCES = ('any', 'self', 'cluster') + ROLES + tuple(CIDR_SETS)
PORT_VARIABLES = {'$api_port': 'api_port', '$nodeport_range': 'nodeport_range', '$ssh_port': 'ssh_port',
                  '$calico_vxlan_port': 'calico_vxlan_port', '$flannel_vxlan_port': 'flannel_vxlan_port',
                  '$kube_vip_metrics_port': 'kube_vip_metrics_port',
                  '$kube_router_metrics_port': 'kube_router_metrics_port'}
RULE_FIELDS = frozenset(('id', 'protocol', 'port', 'to', 'from', 'when', 'description',
                         'reference', 'note', 'interfaces'))
# Interface lists a rule may name by variable (profile values).
INTERFACE_VARIABLES = {'$pod_interfaces': 'pod_interfaces'}
COMPONENT_FIELDS = frozenset(('component', 'description', 'applies_when', 'rules'))


class CatalogRule(object):
    """One validated catalog rule. ``port`` is (low, high), a $variable name, or None."""

    __slots__ = ('id', 'component', 'protocol', 'port', 'to', 'sources', 'when',
                 'description', 'references', 'note', 'interfaces')

    def __init__(self, **fields):
        fields.setdefault('interfaces', None)
        for name in self.__slots__:
            setattr(self, name, fields[name])


def is_url(reference):
    """A reference that is a public page (http or https with a host)."""
    parts = urlsplit(str(reference))
    return parts.scheme in ('https', 'http') and bool(parts.netloc)


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def validate_when(when, where):
    if when is None:
        return {}
    if not isinstance(when, dict):
        raise PlanError('%s: "when" must be a mapping, got %r' % (where, when))
    for key in when:
        if key not in CONDITION_KEYS:
            raise PlanError('%s: unknown condition %r (choose from %s)'
                            % (where, key, ', '.join(sorted(CONDITION_KEYS))))
        choices = OPTIONS.get(key, (None, None))[1]
        if choices:
            for value in _as_list(when[key]):
                if value not in choices:
                    raise PlanError('%s: condition %s has unknown value %r (choose from %s)'
                                    % (where, key, value, ', '.join(choices)))
    return dict(when)


def _selectors(raw, field, plural, singular, allowed, where):
    """The non-empty list of a rule's "to" or "from" field, each value one of ``allowed``."""
    values = _as_list(raw.get(field))
    if not values:
        raise PlanError('%s: missing "%s" (%s: %s)' % (where, field, plural, ', '.join(allowed)))
    for value in values:
        if value not in allowed:
            raise PlanError('%s: unknown %s %r in "%s" (choose from %s)'
                            % (where, singular, value, field, ', '.join(allowed)))
    return values


def build_rule(raw, component, where, default_reference=None):
    """Validate one rule mapping (catalog entry or kubeports_extra_rules item)."""
    if not isinstance(raw, dict):
        raise PlanError('%s: a rule must be a mapping, got %r' % (where, raw))
    unknown = set(raw) - RULE_FIELDS
    if unknown:
        raise PlanError('%s: unknown rule field(s) %s' % (where, ', '.join(sorted(str(key) for key in unknown))))
    if raw.get('id'):
        where = '%s (rule %s)' % (where, raw['id'])
    if 'protocol' not in raw:
        raise PlanError('%s: missing "protocol"' % where)
    protocol = check_protocol(raw['protocol'], where)
    port = raw.get('port')
    if protocol in PORT_PROTOCOLS:
        if port is None or port == '':
            raise PlanError('%s: protocol %s needs a port' % (where, protocol))
        if isinstance(port, str) and port.startswith('$'):
            if port not in PORT_VARIABLES:
                raise PlanError('%s: unknown port variable %r (choose from %s)'
                                % (where, port, ', '.join(sorted(PORT_VARIABLES))))
        else:
            port = parse_port(port, where)
    elif port not in (None, ''):
        raise PlanError('%s: protocol %s takes no port, got %r' % (where, protocol, port))
    else:
        port = None
    to = _selectors(raw, 'to', 'destination roles', 'role', DESTINATIONS, where)
    sources = _selectors(raw, 'from', 'sources', 'source', SOURCES, where)
    references = [str(item) for item in _as_list(raw.get('reference'))] or _as_list(default_reference)
    if not references:
        raise PlanError('%s: missing "reference"' % where)
    interfaces = _interfaces(raw, protocol, sources, where)
    return CatalogRule(id=str(raw.get('id') or ''), component=component, protocol=protocol, port=port,
                       to=tuple(to), sources=tuple(sources), when=validate_when(raw.get('when'), where),
                       description=str(raw.get('description') or raw.get('id') or protocol),
                       references=tuple(references), note=str(raw.get('note') or '').strip(), interfaces=interfaces)


def _interfaces(raw, protocol, sources, where):
    """A rule's "interfaces": None, a $variable name, or a tuple of interface names. Such a rule
    accepts everything that arrives on the interfaces (protocol all, from any)."""
    value = raw.get('interfaces')
    if value is None:
        return None
    if protocol != 'all' or list(sources) != ['any']:
        raise PlanError('%s: "interfaces" trusts everything arriving on them; it needs protocol: all and '
                        'from: any' % where)
    if isinstance(value, str) and value.startswith('$'):
        if value not in INTERFACE_VARIABLES:
            raise PlanError('%s: unknown interface variable %r (choose from %s)'
                            % (where, value, ', '.join(sorted(INTERFACE_VARIABLES))))
        return value
    names = parse_interfaces(value, where)
    if not names:
        raise PlanError('%s: "interfaces" is empty' % where)
    return tuple(names)


def check_reference_url(reference, where):
    """A catalog reference is a public page: an absolute http(s) URL, percent-encoded."""
    if not is_url(reference):
        raise PlanError('%s: reference %r is not a URL; cite the public page (https://...#section) '
                        'the port comes from' % (where, reference))
    if any(char.isspace() or ord(char) > 126 for char in reference):
        raise PlanError('%s: reference %r must be percent-encoded (no spaces or non-ASCII characters)'
                        % (where, reference))


class Component(object):
    __slots__ = ('name', 'description', 'applies_when', 'rules', 'path')

    def __init__(self, name, description, applies_when, rules, path):
        self.name, self.description, self.applies_when = name, description, applies_when
        self.rules, self.path = rules, path


def load_component(path):
    try:
        with open(path, 'rb') as handle:
            data = yaml.load(handle, Loader=SAFE_LOADER)
    except (IOError, OSError, yaml.YAMLError) as exc:
        raise PlanError('catalog file %s: cannot be read: %s' % (path, exc))
    where = 'catalog file %s' % os.path.basename(path)
    if not isinstance(data, dict) or 'component' not in data:
        raise PlanError('%s: expected a mapping with "component" and "rules"' % where)
    unknown = set(data) - COMPONENT_FIELDS
    if unknown:
        raise PlanError('%s: unknown field(s) %s' % (where, ', '.join(sorted(str(key) for key in unknown))))
    name = str(data['component'])
    raw_rules = data.get('rules') or []
    if not isinstance(raw_rules, list) or not raw_rules:
        raise PlanError('%s: "rules" must be a non-empty list' % where)
    rules = []
    for index, raw in enumerate(raw_rules):
        rule = build_rule(raw, name, '%s rules[%d]' % (where, index))
        if not rule.id.startswith(name + '.'):
            raise PlanError('%s rules[%d]: id %r must start with %r' % (where, index, rule.id, name + '.'))
        for reference in rule.references:
            check_reference_url(reference, '%s rules[%d] (rule %s)' % (where, index, rule.id))
        rules.append(rule)
    return Component(name, str(data.get('description') or name),
                     validate_when(data.get('applies_when'), where + ' applies_when'), rules, path)


def load_catalog(directories):
    """All components of the given directories, in file name order; ids are unique."""
    if not HAS_YAML:
        raise PlanError('PyYAML is required to read the catalog')
    components, seen_ids, seen_names = [], {}, {}
    for directory in directories:
        if not os.path.isdir(directory):
            raise PlanError('catalog directory %s does not exist' % directory)
        for filename in sorted(os.listdir(directory)):
            if not filename.endswith(('.yml', '.yaml')):
                continue
            component = load_component(os.path.join(directory, filename))
            if component.name in seen_names:
                raise PlanError('catalog file %s: component %r is already defined in %s'
                                % (filename, component.name, seen_names[component.name]))
            seen_names[component.name] = filename
            for rule in component.rules:
                if rule.id in seen_ids:
                    raise PlanError('catalog file %s: rule id %r is already used in %s'
                                    % (filename, rule.id, seen_ids[rule.id]))
                seen_ids[rule.id] = filename
            components.append(component)
    return components


def default_catalog_dir():
    """The catalog/ directory of this collection (checkout or installed copy)."""
    return os.path.join(COLLECTION_ROOT, 'catalog')
