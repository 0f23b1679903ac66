# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors raised by the planner, with the bad value and where it came from."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class PlanError(ValueError):
    """Invalid input to the planner (catalog, profile, inventory or extra rules)."""
