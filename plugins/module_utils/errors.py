# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors raised by the planner, with the bad value and where it came from."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections.abc import Mapping, Sequence, Set


class PlanError(ValueError):
    """Invalid input to the planner (catalog, profile, inventory or extra rules)."""


def kind_of(value):
    """A value's kind in the words of a playbook's author ("a list", "a dict"...), for messages
    that must not name Python or Ansible internal types (such as a template's lazy list)."""
    if value is None:
        return 'nothing (null)'
    if isinstance(value, bool):
        return 'a boolean'
    if isinstance(value, (int, float)):
        return 'a number'
    if isinstance(value, (str, bytes)):
        return 'a string'
    if isinstance(value, Mapping):
        return 'a dict'
    if isinstance(value, (Sequence, Set)):
        return 'a list'
    return 'a value that is no list, dict, string or number'


def dict_without(value, keys):
    """What a filter got instead of a dict with ``keys``: its kind, or the keys it lacks."""
    if not isinstance(value, Mapping):
        return kind_of(value)
    return 'a dict without %s' % ' or '.join(repr(key) for key in keys if key not in value)
