# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reachability checks: which host probes which port of which host, and what it should see.

Pure functions over plain data (host plans from the planner, addresses as strings). The
verify role runs the probes (modules probe_listeners and probe_ports) and hands the results
back to build_report.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import bisect

from ansible_collections.kubeports.firewall.plugins.module_utils.catalog import ROLES
from ansible_collections.kubeports.firewall.plugins.module_utils.errors import PlanError
from ansible_collections.kubeports.firewall.plugins.module_utils.peers import netaddr, require_netaddr

PROBED_PROTOCOLS = ('tcp', 'udp')
SOURCE_MODES = ('all', 'per_role')
# Observed results of one probe, and the expectations they satisfy.
OPEN, CLOSED, FILTERED, ERROR = 'open', 'closed', 'filtered', 'error'
BLOCKED = 'blocked'
SATISFIES = {OPEN: (OPEN,), BLOCKED: (CLOSED, FILTERED)}
NO_ROLE = 'none'
# SSH rules only guarantee their sources a way in: SSH open to others by the host's own
# rules (firewalld's ssh service) is left as it is, so SSH ports (the ssh component's and 22)
# are never probed as blocked, planned or not.
ALLOW_ONLY_COMPONENTS = ('ssh',)
SSH = ('tcp', 22)


def role_label(roles):
    """"etcd+controlplane" for a host's roles, in catalog order; "none" for non-cluster hosts."""
    ordered = [role for role in ROLES if role in roles]
    return '+'.join(ordered) if ordered else NO_ROLE


def probe_ports(port):
    """The ports probed for a rule's port: the port, or both ends of a range."""
    low, _sep, high = str(port).partition('-')
    return [int(low)] if not high or high == low else [int(low), int(high)]


def _family(address):
    return 6 if ':' in address else 4


def _covering(rules, protocol, port):
    """The rules of one host that open ``port``, protocol "all" rules included."""
    found = []
    for rule in rules:
        if rule['protocol'] == 'all':
            found.append(rule)
            continue
        if rule['protocol'] != protocol or not rule['port']:
            continue
        low, _sep, high = rule['port'].partition('-')
        if int(low) <= port <= int(high or low):
            found.append(rule)
    return found


class _Sides(object):
    """Probing hosts split into allowed and not allowed for one set of rules and one family.

    Built once per distinct set of sources, so the cost of a target grows with its probes,
    not with the number of hosts times its ports.
    """

    def __init__(self, hosts, rules, family):
        # Merged across the rules, so the ranges do not overlap and one bisect finds the match.
        networks = [netaddr.IPNetwork(source) for rule in rules for source in rule['sources']]
        ranges = sorted((net.first, net.last) for net in netaddr.cidr_merge(networks) if net.version == family)
        firsts = [first for first, _last in ranges]
        self.groups = {True: {}, False: {}}
        for host in hosts:
            if family not in host['numbers']:
                continue
            source, number = host['numbers'][family]
            index = bisect.bisect_right(firsts, number) - 1
            allowed = index >= 0 and number <= ranges[index][1]
            self.groups[allowed].setdefault(host['label'], []).append(dict(host, source=source, allowed=allowed))
        self.turn = {}

    def select(self, allowed, mode, excluded):
        """Every host on one side, or one per role label taken in turn, skipping ``excluded``."""
        chosen = []
        for label in sorted(self.groups[allowed]):
            members = self.groups[allowed][label]
            if mode == 'all':
                chosen.extend(host for host in members if host['source'] not in excluded)
                continue
            index = self.turn.get((allowed, label), 0)
            for step in range(min(len(members), len(excluded) + 1)):
                host = members[(index + step) % len(members)]
                if host['source'] not in excluded:
                    self.turn[(allowed, label)] = index + step + 1
                    chosen.append(host)
                    break
        return chosen


def catalog_ports(components):
    """(protocol, port) of every TCP and UDP port the catalog names, both ends of ranges."""
    found = set()
    for component in components:
        for rule in component.rules:
            if rule.protocol in PROBED_PROTOCOLS and isinstance(rule.port, tuple):
                found.update((rule.protocol, port) for port in sorted(set(rule.port)))
    return found


def plan_probes(targets, probers, sources='all', unplanned=True, other_ports=()):
    """The probes and listeners that check every target's firewall.

    ``targets``: host plans ({host, roles, rules}) plus ``addresses`` (strings).
    ``probers``: {host: {roles, addresses}} for every host that can probe, targets included.
    ``sources``: "all" probes each planned port from every prober, "per_role" from one
    prober per role label on each side (allowed and not allowed).
    ``unplanned``: also probe, on each target, the ports the cluster opens elsewhere and
    ``other_ports`` (the catalog's), expecting them blocked, from one prober per role label.
    """
    require_netaddr()
    if sources not in SOURCE_MODES:
        raise PlanError('kubeports_verify_sources: unknown mode %r (choose from %s)'
                        % (sources, ', '.join(SOURCE_MODES)))
    hosts, not_probed = [], []
    for name in sorted(probers):
        info = probers[name]
        addresses = [str(item) for item in info.get('addresses') or ()]
        if not addresses:
            if info.get('roles'):
                raise PlanError('host %s has no address to probe from' % name)
            not_probed.append({'source': name, 'target': '', 'target_roles': '', 'address': '', 'protocol': '',
                               'port': '', 'ids': [], 'reason': '%s does not probe: %s' % (
                                   name, info.get('reason') or 'no address known for it')})
            continue
        numbers = {}
        for address in addresses:
            numbers.setdefault(_family(address), (address, int(netaddr.IPAddress(address))))
        hosts.append({'host': name, 'label': role_label(info.get('roles') or ()), 'numbers': numbers})
    cluster_ports, allow_only = set(), set()
    for target in targets:
        for rule in target['rules']:
            if rule['protocol'] in PROBED_PROTOCOLS and rule['port']:
                ports = set((rule['protocol'], port) for port in probe_ports(rule['port']))
                cluster_ports.update(ports)
                if _allow_only([rule]):
                    allow_only.update(ports)
    cluster_ports.update((protocol, int(port)) for protocol, port in other_ports)
    allow_only.add(SSH)
    sides_cache = {}
    listeners, probes = {}, {}
    for target in sorted(targets, key=lambda item: item['host']):
        name, rules = target['host'], target['rules']
        label = role_label(target['roles'])
        ports, seen = [], set()
        for rule in rules:
            if rule['protocol'] not in PROBED_PROTOCOLS or not rule['port']:
                not_probed.append(_unprobed(target, rule, label))
                continue
            for port in probe_ports(rule['port']):
                if (rule['protocol'], port) not in seen:
                    seen.add((rule['protocol'], port))
                    ports.append((rule['protocol'], port, True))
        if unplanned:
            ports.extend((protocol, port, False) for protocol, port in sorted(cluster_ports - seen - allow_only))
        listeners[name] = [{'protocol': protocol, 'port': port} for protocol, port, _planned in ports]
        for protocol, port, planned in ports:
            covering = _covering(rules, protocol, port)
            specific = [rule for rule in covering if rule['protocol'] != 'all']
            # A catalog port inside a planned range (a NodePort) follows that range's rule.
            planned = planned or bool(specific)
            signature = tuple(tuple(rule['sources']) for rule in covering)
            excluded = set(target['addresses'])
            for address in target['addresses']:
                family = _family(address)
                sides = sides_cache.get((signature, family))
                if sides is None:
                    sides = sides_cache[(signature, family)] = _Sides(hosts, covering, family)
                mode = sources if planned else 'per_role'
                allowed = sides.select(True, mode, excluded)
                if specific and not allowed:
                    not_probed.append({
                        'target': name, 'target_roles': label, 'address': address,
                        'protocol': protocol, 'port': str(port), 'ids': _ids(covering),
                        'reason': _no_allowed_prober(covering, target['addresses'])})
                denied = [] if (protocol, port) in allow_only else sides.select(False, mode, excluded)
                for host in allowed + denied:
                    probes.setdefault(host['host'], []).append({
                        'source': host['host'], 'source_roles': host['label'],
                        'source_address': host['source'],
                        'target': name, 'target_roles': label, 'address': address,
                        'protocol': protocol, 'port': port,
                        'rule': _rule_port(covering, port), 'planned': planned,
                        'expected': OPEN if host['allowed'] else BLOCKED,
                        'ids': _ids(covering),
                    })
    number = 0
    for source in sorted(probes):
        for probe in probes[source]:
            number += 1
            probe['id'] = 'p%d' % number
    return {'listeners': listeners, 'probes': probes, 'not_probed': not_probed,
            'targets': dict((target['host'], {'roles': role_label(target['roles']),
                                              'addresses': list(target['addresses'])})
                            for target in targets)}


def _allow_only(rules):
    return any(component in ALLOW_ONLY_COMPONENTS for rule in rules for component in rule.get('components') or ())


def _ids(rules):
    return [rule_id for rule in rules for rule_id in rule.get('ids') or ()]


def _sources(rules):
    return [source for rule in rules for source in rule['sources']]


def _no_allowed_prober(rules, addresses):
    sources = _sources(rules)
    if all(str(netaddr.IPNetwork(item).ip) in addresses and netaddr.IPNetwork(item).size == 1
           for item in sources):
        return 'only the host itself may connect; traffic from a host to itself is not probed'
    return 'no probing host is among the allowed sources (%s)' % ', '.join(sources)


def _rule_port(rules, port):
    return rules[0]['port'] if rules else str(port)


def _unprobed(target, rule, label):
    if rule['port']:
        reason = '%s is not probed (only TCP and UDP are)' % rule['protocol'].upper()
    else:
        reason = 'protocol-only rule: no port to probe; %s traffic is not proven by this check' % rule['protocol']
    return {'target': target['host'], 'target_roles': label, 'address': '', 'protocol': rule['protocol'],
            'port': rule['port'], 'ids': list(rule.get('ids') or ()), 'reason': reason}


# ----------------------------------------------------------------------------- report

def _current(result, plan):
    """A module result that ran, succeeded, and belongs to this plan's run (not an earlier one)."""
    if not isinstance(result, dict) or result.get('failed') or result.get('skipped') or result.get('unreachable'):
        return False
    return result.get('run_id') == plan.get('run_id')


def _listener_status(plan, listeners, target, protocol, port, address):
    """How the target's port was served: "kubeports", "in use", "failed" or "unknown"."""
    result = listeners.get(target)
    if not _current(result, plan):
        return 'unknown', result.get('msg') if isinstance(result, dict) else None
    family = _family(address)
    wildcard = '::' if family == 6 else '0.0.0.0'
    # The socket for this very address first, then the family's wildcard.
    for wanted in (address, wildcard):
        for kind, status in (('listening', 'kubeports'), ('in_use', 'in use'), ('errors', 'failed')):
            for item in result.get(kind) or ():
                if item.get('protocol') == protocol and int(item.get('port')) == port and \
                        item.get('family', family) == family and item.get('address', address) == wanted:
                    return status, item.get('error')
    return 'unknown', None


def _after_deadline(result, listener, margin=2.0):
    """True when a probe may have ended after the target's listeners did (clocks may differ a little)."""
    deadline = listener.get('deadline')
    ended = result.get('started')
    if not deadline or ended is None:
        return False
    return float(ended) + float(result.get('seconds') or 0) > float(deadline) - margin


def build_report(plan, listeners, results):
    """Compare every probe with its expectation.

    ``listeners``: {target: result of probe_listeners}; ``results``: {source: result of
    probe_ports}. A host whose module failed or did not run is named in not_probed.
    """
    checked, not_probed = [], list(plan['not_probed'])
    probe_seconds = 0.0
    for source in sorted(plan['probes']):
        outcome = results.get(source)
        observed = {}
        source_failed = None
        if not _current(outcome, plan):
            source_failed = outcome.get('msg') if isinstance(outcome, dict) else None
            source_failed = source_failed or 'the probing host did not run its probes'
        else:
            observed = dict((item['id'], item) for item in outcome.get('results') or ())
            probe_seconds = max(probe_seconds, float(outcome.get('seconds') or 0))
        for probe in plan['probes'][source]:
            record = dict(probe)
            status, error = _listener_status(plan, listeners, probe['target'], probe['protocol'],
                                             probe['port'], probe['address'])
            record['listener'] = status
            reason = None
            if source_failed:
                reason = 'not probed from %s: %s' % (source, source_failed)
            elif status == 'unknown':
                reason = 'no listener result from %s%s' % (probe['target'], ': %s' % error if error else '')
            elif status == 'in use' and probe['protocol'] == 'udp':
                reason = 'UDP port in use by another process on %s: without the kubeports echo a ' \
                         'UDP probe proves nothing' % probe['target']
            elif probe['id'] not in observed:
                reason = 'no result for this probe from %s' % source
            elif observed[probe['id']]['observed'] == ERROR:
                reason = observed[probe['id']].get('detail') or 'could not probe from %s' % source
            elif status == 'kubeports' and _after_deadline(observed[probe['id']], listeners[probe['target']]):
                reason = 'the listeners on %s had reached their lifetime when this probe ran; raise ' \
                         'kubeports_verify_listener_lifetime (or the forks)' % probe['target']
            if reason:
                record['reason'] = reason
                not_probed.append(record)
                continue
            seen = observed[probe['id']]
            record['observed'] = seen['observed']
            record['detail'] = seen.get('detail', '')
            if status == 'failed':
                record['detail'] = ('%s; listener failed: %s' % (record['detail'], error)).strip('; ')
            record['result'] = 'ok' if seen['observed'] in SATISFIES[probe['expected']] else 'mismatch'
            checked.append(record)
    mismatches = sorted((record for record in checked if record['result'] == 'mismatch'), key=_order)
    others = sorted((record for record in checked if record['result'] == 'ok'), key=_order)
    return {
        'summary': {'probes': len(checked), 'ok': len(others), 'mismatches': len(mismatches),
                    'not_probed': len(not_probed),
                    'hosts': len(set(plan['targets']) | set(plan['probes'])),
                    'probe_seconds': probe_seconds},
        'mismatches': mismatches,
        'probes': mismatches + others,
        'not_probed': sorted(not_probed, key=_unprobed_order),
        'matrix': matrix(mismatches + others),
    }


def _unprobed_order(item):
    return (item['target'], item.get('source', ''), item['protocol'], str(item['port']))


def _order(record):
    return (record['target'], record['protocol'], int(record['port']), record['source'], record['address'])


def matrix(records):
    """Rows (destination roles, protocol, port, planned) by source roles: expected and ok counts."""
    rows = {}
    for record in records:
        key = (record['target_roles'], record['protocol'], int(record['port']), bool(record['planned']))
        cell = rows.setdefault(key, {}).setdefault(record['source_roles'], {
            'expected': set(), 'probes': 0, 'ok': 0, 'mismatches': 0})
        cell['expected'].add(record['expected'])
        cell['probes'] += 1
        cell['ok' if record['result'] == 'ok' else 'mismatches'] += 1
    out = []
    for key in sorted(rows, key=lambda item: (_label_order(item[0]), not item[3], item[1], item[2])):
        cells = {}
        for label, cell in rows[key].items():
            expected = sorted(cell['expected'])
            cells[label] = dict(cell, expected=expected[0] if len(expected) == 1 else 'mixed')
        out.append({'destination': key[0], 'protocol': key[1], 'port': key[2], 'planned': key[3],
                    'cells': cells})
    return out


def _label_order(label):
    first = label.split('+')[0]
    return (ROLES.index(first) if first in ROLES else len(ROLES), label)


def _cell_text(cell):
    if not cell:
        return '-'
    text = '%s %d/%d' % (cell['expected'], cell['ok'], cell['probes'])
    return text + ' !' if cell['mismatches'] else text


def _describe(record):
    text = '%s (%s, %s) -> %s (%s, %s) %s/%d: expected %s, observed %s' % (
        record['source'], record['source_roles'], record['source_address'], record['target'],
        record['target_roles'], record['address'], record['protocol'], record['port'],
        record['expected'], record['observed'])
    if record.get('detail'):
        text += ' (%s)' % record['detail']
    if not record['planned']:
        text += ' [not planned on %s]' % record['target']
    elif record.get('ids'):
        text += ' [%s]' % ', '.join(record['ids'])
    return text


def _columns(report):
    return sorted(set(label for row in report['matrix'] for label in row['cells']), key=_label_order)


def _row_port(row):
    return '%s/%d%s' % (row['protocol'], row['port'], '' if row['planned'] else '*')


def report_lines(report):
    """The report as text lines for the play output: summary, mismatches, not probed, matrix."""
    summary = report['summary']
    lines = ['%d probes: %d ok, %d mismatches; %d not probed; probing took %.1f s on the slowest host' % (
        summary['probes'], summary['ok'], summary['mismatches'], summary['not_probed'],
        summary.get('probe_seconds', 0))]
    if report['mismatches']:
        lines.append('MISMATCHES (source -> destination port: expected, observed):')
        lines.extend('  ' + _describe(record) for record in report['mismatches'])
    if report['not_probed']:
        lines.append('NOT PROBED:')
        for item in report['not_probed']:
            if not item['target']:
                lines.append('  %s' % item['reason'])
                continue
            source = '%s -> ' % item['source'] if item.get('source') else ''
            lines.append('  %s%s: %s' % (source, _where(item), item['reason']))
    columns = _columns(report)
    if columns:
        lines.append('MATRIX (destination roles and port by source roles: expected ok/probes, '
                     '! = mismatch, * = port not planned there):')
        table = [['DESTINATION', 'PORT'] + columns]
        for row in report['matrix']:
            table.append([row['destination'], _row_port(row)] +
                         [_cell_text(row['cells'].get(label)) for label in columns])
        widths = [max(len(line[col]) for line in table) for col in range(len(table[0]))]
        for line in table:
            lines.append('  ' + '  '.join(value.ljust(widths[col]) for col, value in enumerate(line)).rstrip())
    return lines


def _where(item):
    if item['port']:
        return '%s %s/%s' % (item['target'], item['protocol'], item['port'])
    return '%s %s' % (item['target'], item['protocol'])


def _md(text):
    return str(text).replace('|', '\\|')


def report_markdown(report, title='Reachability check'):
    """The report as a Markdown document."""
    summary = report['summary']
    out = ['# %s' % title, '',
           '%d probes over %d hosts: **%d ok, %d mismatches**; %d not probed.' % (
               summary['probes'], summary['hosts'], summary['ok'], summary['mismatches'],
               summary['not_probed']), '']
    out += ['## Mismatches', '']
    if report['mismatches']:
        out += ['| Source | Destination | Port | Expected | Observed | Detail | Rules |', '|---|---|---|---|---|---|---|']
        for record in report['mismatches']:
            out.append('| %s (%s, %s) | %s (%s, %s) | %s/%d%s | %s | %s | %s | %s |' % (
                record['source'], record['source_roles'], record['source_address'],
                record['target'], record['target_roles'], record['address'], record['protocol'],
                record['port'], '' if record['planned'] else ' (not planned)', record['expected'],
                record['observed'], _md(record.get('detail', '')), ', '.join(record.get('ids') or ())))
    else:
        out.append('None.')
    out += ['', '## Not probed', '']
    if report['not_probed']:
        out += ['| Source | Destination | Port | Reason |', '|---|---|---|---|']
        for item in report['not_probed']:
            out.append('| %s | %s | %s | %s |' % (
                item.get('source') or '-', item['target'] or '-',
                ('%s/%s' % (item['protocol'], item['port']) if item['port'] else item['protocol']) or '-',
                _md(item['reason'])))
    else:
        out.append('None.')
    columns = _columns(report)
    out += ['', '## Matrix', '',
            'Destination roles and port (`*`: not planned there, expected blocked) by source roles: '
            'expected result, ok probes / probes, `!` marks mismatches.', '']
    if columns:
        out.append('| Destination | Port | %s |' % ' | '.join(columns))
        out.append('|---|---|%s' % ('---|' * len(columns)))
        for row in report['matrix']:
            out.append('| %s | %s | %s |' % (row['destination'], _md(_row_port(row)).replace('*', '\\*'),
                                             ' | '.join(_cell_text(row['cells'].get(label)) for label in columns)))
    return '\n'.join(out) + '\n'
