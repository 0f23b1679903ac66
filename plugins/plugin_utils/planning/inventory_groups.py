# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory groups the planner does not take at their word: a group whose name is close to a
group the collection knows (a misspelling would drop its hosts from a role silently), and the
hosts that no group gives a role (planned for nothing, and named with why).

Pure functions over {group: [hosts]}; each is linear in the inventory's group memberships.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

# Groups every inventory has.
IMPLICIT_GROUPS = ('all', 'ungrouped')
# Names shorter than this (after folding) are compared only after folding: "etc", "db", "lb".
SHORTEST = 4
# Edits (insert, delete, substitute, swap two neighbours) that still make a name close.
EDITS = 1
SHOWN_GROUPS = 5


def folded(name):
    """A group name with case and "-" versus "_" folded away."""
    return str(name).casefold().replace('-', '_')


def edit_distance(first, second, limit):
    """The optimal string alignment distance of two strings (insertions, deletions,
    substitutions and swaps of neighbours each count one), or ``limit + 1`` once it is above
    ``limit``."""
    if abs(len(first) - len(second)) > limit:
        return limit + 1
    before, previous = None, list(range(len(second) + 1))
    for i in range(1, len(first) + 1):
        current = [i] + [0] * len(second)
        for j in range(1, len(second) + 1):
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (first[i - 1] != second[j - 1]))
            if i > 1 and j > 1 and first[i - 1] == second[j - 2] and first[i - 2] == second[j - 1]:
                value = min(value, before[j - 2] + 1)
            current[j] = value
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return min(previous[-1], limit + 1)


def closeness(name, known):
    """How close two folded names are: 0 when equal, the edit distance when within EDITS (and
    both at least SHORTEST long), else None."""
    if name == known:
        return 0
    if min(len(name), len(known)) < SHORTEST:
        return None
    distance = edit_distance(name, known, EDITS)
    return distance if distance <= EDITS else None


def _deletions(name):
    """The name and each string one character shorter: two names within one edit share one."""
    return [name] + [name[:index] + name[index + 1:] for index in range(len(name))]


def known_groups(role_groups, other_groups=()):
    """{group: frozenset of the roles it gives} of the groups the collection knows: the role
    mapping's (``role_groups``: {role: [groups]}) and ``other_groups`` (the installers' groups,
    groups named by installer variables), which give no role of their own (an empty set: their
    hosts need some role)."""
    known = {}
    for role, names in role_groups.items():
        for name in names:
            known.setdefault(name, set()).add(role)
    for name in other_groups:
        known.setdefault(name, set())
    return dict((name, frozenset(roles)) for name, roles in known.items())


class NearMiss(object):
    """A group close to a known one whose hosts lack what the known group would give them."""

    def __init__(self, group, known, roles, hosts):
        self.group, self.known, self.roles, self.hosts = group, known, roles, hosts

    def __repr__(self):
        return 'NearMiss(%r, %r, %r, %r)' % (self.group, self.known, sorted(self.roles), self.hosts)


def near_misses(groups, known, roles_of, deliberate=frozenset()):
    """NearMiss of each group of ``groups`` ({group: [hosts]}) whose name is close to a group
    of ``known`` (known_groups) without being one, and whose hosts (other than those in
    ``deliberate``, which chose their roles) lack the roles of the closest known group (any
    role, for a group that gives none): renamed, they would have them. Empty groups and groups
    whose hosts have those roles already are no misses. ``roles_of(host)`` is a host's roles.
    Known names are indexed by their deletions, so each group costs its length, not the
    number of known groups."""
    index = {}
    for original in known:
        for key in _deletions(folded(original)):
            index.setdefault(key, set()).add(original)
    found = []
    for group in sorted(groups):
        members = groups[group]
        if not members or group in known or group in IMPLICIT_GROUPS:
            continue
        name = folded(group)
        candidates = set()
        for key in _deletions(name):
            candidates.update(index.get(key, ()))
        ranked = []
        for original in candidates:
            distance = closeness(name, folded(original))
            if distance is not None:
                # Among equally close names, the one spelled most like the group.
                spelling = edit_distance(group.casefold(), original.casefold(), len(group) + len(original))
                ranked.append((distance, spelling, original))
        if not ranked:
            continue
        nearest = min(ranked)[0]
        for distance, _spelling, original in sorted(ranked):
            if distance != nearest:
                break
            roles = known[original]
            dropped = [host for host in members if host not in deliberate
                       and (not roles_of(host) if not roles else not roles <= roles_of(host))]
            if dropped:
                found.append(NearMiss(group, original, roles, sorted(set(dropped))))
                break
    return found


def unplanned_reasons(groups, has_role):
    """{host: why it is planned for nothing} of every inventory host without a role
    (``has_role(host)``), from one pass over the groups: "in no group" (only all and
    ungrouped), or the groups it is in, none of which any role maps to."""
    hosts = groups.get('all')
    if hosts is None:
        hosts = set(host for members in groups.values() for host in members or ())
    memberships = dict((host, []) for host in hosts if not has_role(host))
    if not memberships:
        return {}
    for group in sorted(groups):
        if group in IMPLICIT_GROUPS:
            continue
        for host in groups[group] or ():
            found = memberships.get(host)
            if found is not None:
                found.append(group)
    return dict((host, reason(names)) for host, names in sorted(memberships.items()))


def reason(group_names):
    """Why a host in ``group_names`` (all and ungrouped left out) is planned for nothing."""
    if not group_names:
        return 'in no group'
    shown = ', '.join(group_names[:SHOWN_GROUPS])
    if len(group_names) > SHOWN_GROUPS:
        shown += ' and %d more' % (len(group_names) - SHOWN_GROUPS)
    return 'in group%s %s, which no role maps to (kubeports_role_groups)' % (
        's' if len(group_names) > 1 else '', shown)
