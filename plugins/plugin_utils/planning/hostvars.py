# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible's hostvars for a plan of many hosts: each value templated as Ansible templates it,
and a value without a template that hosts share (the same object from group_vars)
templated once for all of them."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import re
from collections.abc import Mapping

_UNTEMPLATED_TYPES = (bool, int, float, type(None))
# Deeper values are simply templated for every host.
_NESTING = 32
# Exactly a dict: a subclass (Ansible's lazy containers) could template on access.
_RAW_TYPES = (dict,)
# Marks a raw value that holds a template: rendered for every host.
_RENDER_EACH_TIME = object()
_MISSING = object()
# A template that is one variable of the same host and nothing else ("{{ metallb_enabled }}", as
# kubespray's sample group_vars have): its value is that variable's.
_ALIAS = re.compile(r'\{\{ *([A-Za-z_][A-Za-z0-9_]*) *\}\}')
# Aliases of aliases followed at most; deeper (or a loop) is rendered as Ansible renders it.
_ALIAS_HOPS = 8


try:
    from ansible.template import is_trusted_as_template
except ImportError:  # ansible-core before 2.19 templates every string
    def is_trusted_as_template(value):
        return True


def alias_of(value):
    """The variable name when ``value`` is a template of exactly one variable that Ansible would
    render (2.19 renders only strings trusted as templates, not facts), else None."""
    if not isinstance(value, str):
        return None
    found = _ALIAS.fullmatch(value)
    return found.group(1) if found and is_trusted_as_template(value) else None


def without_template(value, depth=0):
    """Whether ``value`` holds no template, so that its templated result is the same for every
    host: Jinja needs "{" to open one, and "#jinja2:" starts a header that changes the
    delimiters."""
    if isinstance(value, str):
        return '{' not in value and not value.startswith('#jinja2:')
    if isinstance(value, _UNTEMPLATED_TYPES):
        return True
    if depth >= _NESTING:
        return False
    if isinstance(value, dict):
        return all(without_template(key, depth + 1) and without_template(item, depth + 1)
                   for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return all(without_template(item, depth + 1) for item in value)
    return False


class SharedTemplating(object):
    """Templated values of raw values without a template, by the raw object's identity (the
    raw object is kept, so its identity is not reused while this lives)."""

    def __init__(self):
        self._templated = {}
        self._kept = {}

    def value(self, raw, render):
        """``render()``'s result, once per raw object without a template."""
        found = self._templated.get(id(raw))
        if found is not None:
            return render() if found[1] is _RENDER_EACH_TIME else found[1]
        value = render()
        self._templated[id(raw)] = (raw, value if without_template(raw) else _RENDER_EACH_TIME)
        return value

    def token(self, raw):
        """A token equal for two raw values when they are one object without a template (so
        every host's templated value is the same), or None when the raw value holds one."""
        kept = self._kept.get(id(raw))
        if kept is None:
            kept = self._kept[id(raw)] = (raw, without_template(raw))
        return ('raw', id(raw)) if kept[1] else None


class _KeysOf(Mapping):
    """A mapping with the keys of ``self._keys``."""

    def __contains__(self, key):
        return key in self._keys

    def __iter__(self):
        return iter(self._keys)

    def __len__(self):
        return len(self._keys)


class HostView(_KeysOf):
    """One host's variables, templated on access like Ansible's own view of them."""

    def __init__(self, view, raw, shared):
        self._view, self._keys, self._shared = view, raw, shared

    def __getitem__(self, name):
        name = self._target(name)
        raw = self._keys[name]
        return self._shared.value(raw, lambda: self._view[name])

    def _target(self, name):
        """``name``, or the variable it is an alias of (followed through aliases): the same value,
        templated as that variable is, so hosts sharing the target share its rendering."""
        raw = self._keys[name]
        if not isinstance(raw, str) or not raw.startswith('{{'):
            return name
        target = name
        for _hop in range(_ALIAS_HOPS):
            alias = alias_of(self._keys[target])
            if alias is None or alias not in self._keys:
                return target
            if alias == name:
                return name  # a loop: rendered as Ansible renders it
            target = alias
        return name

    def get(self, key, default=None):
        if key not in self._keys:
            return default
        return self[key]

    def shared_token(self, name):
        """A token that another host's view gives for ``name`` only when the templated value is
        the same for both (one raw object without a template), else None (see the planner's
        value_token)."""
        return self._shared.token(self._keys[self._target(name)])

    def shared_tokens(self, names, absent):
        """shared_token of each of ``names``, ``absent`` for those the host does not have."""
        keys, token, tokens = self._keys, self._shared.token, []
        for name in names:
            raw = keys.get(name, _MISSING)
            if raw is _MISSING:
                tokens.append(absent)
                continue
            if isinstance(raw, str) and raw.startswith('{{'):
                raw = keys[self._target(name)]
            tokens.append(token(raw))
        return tuple(tokens)


class PlanHostvars(_KeysOf):
    """``hostvars`` for the planner: every host's view templates as Ansible's does, and the
    values hosts share are templated once. Mappings that are not Ansible's (plain dicts of
    tests) pass through."""

    def __init__(self, hostvars):
        self._keys = hostvars if hostvars is not None else {}
        self._shared = SharedTemplating()

    def __getitem__(self, host):
        view = self._keys[host]
        # Ansible's HostVarsVars keeps the host's untemplated variables in _vars, a dict (2.16
        # to 2.19); anything else is read as Ansible gives it.
        if type(view).__name__ != 'HostVarsVars' or type(getattr(view, '_vars', None)) not in _RAW_TYPES:
            return view
        return HostView(view, view._vars, self._shared)


class _ListedOnce(object):
    """A plugin loader whose listing of plugin paths (``all(path_only=True)``) is made once;
    everything else is the loader's own."""

    def __init__(self, loader):
        self._loader, self._paths = loader, None

    def all(self, *args, **kwargs):
        if args or kwargs != {'path_only': True}:
            return self._loader.all(*args, **kwargs)
        if self._paths is None:
            self._paths = list(self._loader.all(path_only=True))
        return iter(self._paths)

    def __getattr__(self, name):
        return getattr(self._loader, name)


@contextlib.contextmanager
def connection_plugins_listed_once():
    """While a plan reads every host's variables: Ansible builds each host's variables with
    its facts cleaned by ``ansible.vars.clean.clean_facts``, which lists the files of every
    connection plugin directory again for every host (half the cost of a host's variables
    when it has no facts). The directories do not change within one task, so they are listed
    once; every value stays what Ansible gives. Where ansible-core has no such loader there,
    or another plan of the process lists it once already, nothing changes; the loader is put
    back only while it is still this plan's (plans that overlap never leave one behind)."""
    try:
        from ansible.vars import clean
    except ImportError:  # pragma: no cover - ansible-core without that module
        clean = None
    loader = getattr(clean, 'connection_loader', None)
    if loader is None or isinstance(loader, _ListedOnce) or not callable(getattr(loader, 'all', None)):
        yield
        return
    listed_once = _ListedOnce(loader)
    clean.connection_loader = listed_once
    try:
        yield
    finally:
        if clean.connection_loader is listed_once:
            clean.connection_loader = loader


class _GroupVarsOnce(object):
    """``get_vars_from_path`` that reads each group's variables once: a call whose entities are
    all groups gives the first result again (the same path, groups and stage); calls with a
    host are passed on."""

    def __init__(self, read):
        self.read = read
        self._found = {}

    def __call__(self, loader, path, entities, stage):
        entities = list(entities)
        if not entities or any(type(entity).__name__ != 'Group' for entity in entities):
            return self.read(loader, path, entities, stage)
        key = (id(loader), path, tuple(id(entity) for entity in entities), stage)
        found = self._found.get(key)
        if found is None:
            # The loader and the groups are kept, so their identities are not reused meanwhile.
            found = self._found[key] = (loader, entities, self.read(loader, path, entities, stage))
        return found[2]


@contextlib.contextmanager
def group_vars_read_once():
    """While a plan reads every host's variables: Ansible runs the vars plugins on "all" and on
    each of a host's groups again for every host, though the groups, their files and the task
    are the same throughout one plan. Each group's result is read once and given again
    (Ansible combines it into a new mapping for each host, never changing it); a host's own
    (host_vars) are read for each host. Where ansible-core has no such function, nothing
    changes; the functions are put back only while they are still this plan's."""
    try:
        from ansible.vars import manager, plugins
    except ImportError:  # pragma: no cover - ansible-core without these modules
        yield
        return
    read = getattr(plugins, 'get_vars_from_path', None)
    if not callable(read) or isinstance(read, _GroupVarsOnce) or getattr(manager, 'get_vars_from_path', None) is not read:
        yield
        return
    once = _GroupVarsOnce(read)
    plugins.get_vars_from_path = manager.get_vars_from_path = once
    try:
        yield
    finally:
        for module in (plugins, manager):
            if module.get_vars_from_path is once:
                module.get_vars_from_path = read


class _CleanedWhenPresent(object):
    """``clean_facts`` that gives {} for a host without facts (what cleaning nothing gives),
    without listing connection plugins and copying; facts are cleaned by Ansible's own."""

    def __init__(self, clean):
        self.clean = clean

    def __call__(self, facts):
        if isinstance(facts, dict) and not facts:
            return {}
        return self.clean(facts)


@contextlib.contextmanager
def empty_facts_not_cleaned():
    """While a plan reads every host's variables: Ansible cleans each host's facts for the
    deprecated injection of facts as variables even when the host has none (most hosts of a
    plan that gathers no facts), which costs about as much as the rest of reading its
    variables. Cleaning no facts gives {}: that is given at once. Where ansible-core has no
    such function, nothing changes; it is put back only while it is still this plan's."""
    try:
        from ansible.vars import manager
    except ImportError:  # pragma: no cover - ansible-core without that module
        yield
        return
    clean = getattr(manager, 'clean_facts', None)
    if not callable(clean) or isinstance(clean, _CleanedWhenPresent):
        yield
        return
    cleaned = _CleanedWhenPresent(clean)
    manager.clean_facts = cleaned
    try:
        yield
    finally:
        if manager.clean_facts is cleaned:
            manager.clean_facts = clean
