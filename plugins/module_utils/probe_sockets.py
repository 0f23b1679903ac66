# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probes and temporary listeners, run on the managed hosts (standard library only).

A probe connects (TCP) or sends a nonce and waits for its echo (UDP): the result is
"open", "closed" (refused: reachable, nothing listening) or "filtered" (no answer, or an
ICMP error saying the traffic is prohibited). A listener set is one detached process
holding sockets bound before it starts; it exits at its deadline whatever happens to the
play that started it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import os
import selectors
import signal
import socket
import struct
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.kubeports.firewall.plugins.module_utils import probe_tunnels

NONCE_PREFIX = b'kubeports-probe '
RECORD_NAME = 'verify-listeners.json'
# Process name of the listener process (ps, pgrep -x).
PROCESS_NAME = 'kubeports-lsnr'
OPEN, CLOSED, FILTERED, ERROR = 'open', 'closed', 'filtered', 'error'
# Errors meaning the traffic was refused by a firewall or cannot get through.
_FILTERED_ERRORS = {
    errno.EHOSTUNREACH: 'host unreachable or prohibited (ICMP)',
    errno.ENETUNREACH: 'network unreachable (ICMP)',
    errno.EACCES: 'prohibited (ICMP)',
    errno.EPERM: "refused by the probing host's own firewall",
    errno.ETIMEDOUT: 'no answer',
}


def _family(address):
    return socket.AF_INET6 if ':' in address else socket.AF_INET


def _socket_for(probe):
    kind = socket.SOCK_STREAM if probe['protocol'] == 'tcp' else socket.SOCK_DGRAM
    sock = socket.socket(_family(probe['address']), kind)
    note = ''
    source = probe.get('source_address')
    if source:
        try:
            sock.bind((source, 0))
        except OSError as exc:
            # The inventory address is not on this host (NAT, a VIP elsewhere): the kernel picks one.
            note = 'sent from the address the kernel chose (%s not usable: %s)' % (source, exc.strerror)
    return sock, note


def _error_result(exc):
    if exc.errno == errno.ECONNREFUSED:
        return CLOSED, 'refused'
    if exc.errno in _FILTERED_ERRORS:
        return FILTERED, _FILTERED_ERRORS[exc.errno]
    return FILTERED, os.strerror(exc.errno) if exc.errno else str(exc)


def _probe_tcp(sock, probe, timeout):
    sock.settimeout(timeout)
    try:
        sock.connect((probe['address'], int(probe['port'])))
    except socket.timeout:
        return FILTERED, 'no answer in %gs' % timeout
    except OSError as exc:
        return _error_result(exc)
    return OPEN, 'connected'


def _probe_udp(sock, probe, timeout, attempts):
    """(observed, detail, silent): silent when nothing at all answered (no echo, no ICMP error)."""
    nonce = NONCE_PREFIX + uuid.uuid4().hex.encode()
    try:
        sock.connect((probe['address'], int(probe['port'])))
    except OSError as exc:
        return _error_result(exc) + (False,)
    wait = timeout / attempts
    for _attempt in range(attempts):
        try:
            sock.send(nonce)
            deadline = time.monotonic() + wait
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                if sock.recv(512) == nonce:
                    return OPEN, 'nonce echoed', False
        except socket.timeout:
            continue
        except OSError as exc:
            return _error_result(exc) + (False,)
    return FILTERED, 'no echo in %gs' % timeout, True


def probe_one(probe, timeout, attempts=3):
    """Result dict for one probe ({id, address, protocol, port, source_address?}).

    ``observed`` is "error" when this host could not send the probe at all (no IPv6, out of
    file descriptors): that says nothing about the target. ``method`` is "connect" (TCP) or
    "echo" (a UDP nonce, which only the kubeports listener echoes); a UDP result is
    ``silent`` when nothing answered at all.
    """
    began, started = time.time(), time.monotonic()
    method = 'connect' if probe['protocol'] == 'tcp' else 'echo'
    try:
        sock, note = _socket_for(probe)
    except OSError as exc:
        return {'id': probe.get('id'), 'observed': ERROR, 'detail': 'cannot probe from this host: %s'
                % (exc.strerror or exc), 'started': round(began, 3), 'seconds': 0.0, 'method': method}
    silent = False
    try:
        if probe['protocol'] == 'tcp':
            observed, detail = _probe_tcp(sock, probe, timeout)
        else:
            observed, detail, silent = _probe_udp(sock, probe, timeout, attempts)
    finally:
        sock.close()
    if note:
        detail = '%s; %s' % (detail, note)
    result = {'id': probe.get('id'), 'observed': observed, 'detail': detail, 'started': round(began, 3),
              'seconds': round(time.monotonic() - started, 3), 'method': method}
    if probe['protocol'] == 'udp':
        result['silent'] = silent
    return result


def _port_text(probe, host):
    return '%s/%s of %s' % (probe['port'], probe['protocol'], host)


def probe_through_overlay(probe, plan, timeout, attempts=3):
    """A UDP probe of a port the target's tunnel device holds, made as ``plan`` says
    (probe_tunnels.overlay_plan): an ICMP echo through this host's device of that port, or a
    plain datagram when this host has none. The result names the owner of the port.
    """
    began, started = time.time(), time.monotonic()
    source = probe.get('source') or 'this host'
    target = probe.get('target') or probe['address']
    prefix = None
    if plan['how'] == probe_tunnels.OVERLAY:
        answered, detail = probe_tunnels.overlay_echo(plan['device'], plan['source'], plan['destination'],
                                                      timeout, attempts)
        notes = []
        if plan.get('local') and probe.get('source_address') and plan['local'] != probe['source_address']:
            notes.append('%s sends from %s, not %s' % (plan['device'], plan['local'], probe['source_address']))
        if not plan.get('up', True):
            notes.append('%s is down on %s' % (plan['device'], source))
        note = ('; ' + '; '.join(notes)) if notes else ''
        result = {'id': probe.get('id'), 'method': probe_tunnels.OVERLAY, 'owner': plan['owner'],
                  'via': plan['device'], 'started': round(began, 3)}
        if answered:
            result.update(observed=OPEN, detail='%s: proves %s from %s and %s from %s%s' % (
                detail, _port_text(probe, target), source, _port_text(probe, source), target, note))
        elif answered is None:
            result.update(observed=ERROR, detail=detail + note)
        elif probe.get('expected') != 'blocked':
            result.update(observed=FILTERED, detail='%s: %s from %s or %s from %s is closed, or the overlay does not '
                          'carry traffic between them%s' % (detail, _port_text(probe, target), source,
                                                            _port_text(probe, source), target, note))
        else:
            # No way through the overlay says nothing about a port that must be closed: the plain probe decides.
            prefix = detail
            result = None
        if result is not None:
            result['seconds'] = round(time.monotonic() - started, 3)
            return result
    result = probe_one(probe, timeout, attempts)
    if result['observed'] == ERROR:
        return result
    result['owner'] = plan['owner']
    why = plan.get('why') or prefix
    if why:
        result['detail'] = '%s; %s' % (result['detail'], why)
    result['seconds'] = round(time.monotonic() - started, 3)
    return result


def _overlay_plans(probes, tunnels):
    """{probe index: overlay plan} for the UDP probes of ports a target's tunnel device holds."""
    held = {}
    for index, probe in enumerate(probes):
        if probe['protocol'] != 'udp' or not probe.get('target'):
            continue
        tunnel = probe_tunnels.tunnel_for(tunnels.get(probe['target']) or (), probe['port'], probe['address'])
        if tunnel:
            held[index] = tunnel
    if not held:
        return {}
    own, error = probe_tunnels.read_tunnels()
    plans = {}
    for index, tunnel in held.items():
        plans[index] = probe_tunnels.overlay_plan(probes[index], tunnel, own)
        if error and plans[index]['how'] != probe_tunnels.OVERLAY:
            plans[index]['why'] = '%s (%s)' % (plans[index].get('why'), error)
    return plans


def probe_all(probes, timeout, concurrency, attempts=3, tunnels=None):
    """Runs the probes concurrently (at most ``concurrency`` at once); results in input order.

    ``tunnels``: {target host: its tunnel devices (probe_listeners' result)}; a UDP probe of a
    port such a device holds goes through this host's own device of that port when it has one.
    """
    if not probes:
        return []
    plans = _overlay_plans(probes, tunnels or {})

    def run(item):
        index, probe = item
        if index in plans:
            return probe_through_overlay(probe, plans[index], timeout, attempts)
        return probe_one(probe, timeout, attempts)

    workers = max(1, min(int(concurrency), len(probes)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, enumerate(probes)))


# ---------------------------------------------------------------------------- listeners

def _bind(protocol, address, port):
    """A bound (and listening, for TCP) socket on address:port."""
    family = _family(address)
    sock = socket.socket(family, socket.SOCK_STREAM if protocol == 'tcp' else socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if protocol == 'tcp':
            # Lets the port be reused right after TIME_WAIT; never binds over a listening socket.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        if protocol == 'tcp':
            sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def open_listeners(ports, addresses):
    """Binds every port on every address: (sockets, listening, in_use, errors).

    An address that is not on the host (EADDRNOTAVAIL) is replaced by the wildcard of its
    family. A port something else holds is reported in ``in_use`` and left alone.
    """
    sockets, listening, in_use, errors = [], [], [], []
    targets = []
    for address in addresses:
        family = 6 if ':' in address else 4
        if (address, family) not in targets:
            targets.append((address, family))
    for item in ports:
        protocol, port = item['protocol'], int(item['port'])
        wildcards = set()
        for address, family in targets:
            if family in wildcards:
                continue
            entry = {'protocol': protocol, 'port': port, 'family': family, 'address': address}
            try:
                try:
                    sock = _bind(protocol, address, port)
                except OSError as exc:
                    if exc.errno != errno.EADDRNOTAVAIL:
                        raise
                    # Not on this host: the wildcard serves it, once per family.
                    entry['address'] = '::' if family == 6 else '0.0.0.0'
                    wildcards.add(family)
                    if any(mine['protocol'] == protocol and mine['port'] == port and mine['family'] == family
                           for mine in listening):
                        _close_same(sockets, listening, protocol, port, family)
                    sock = _bind(protocol, entry['address'], port)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    in_use.append(entry)
                else:
                    entry['error'] = '%s %s:%d: %s' % (protocol, entry['address'], port, exc.strerror)
                    errors.append(entry)
                continue
            sockets.append((protocol, sock))
            listening.append(entry)
    return sockets, listening, in_use, errors


def _close_same(sockets, listening, protocol, port, family):
    """Drops this run's sockets for one protocol, port and family (the wildcard replaces them)."""
    for index in reversed(range(len(listening))):
        mine = listening[index]
        if (mine['protocol'], mine['port'], mine['family']) == (protocol, port, family):
            sockets[index][1].close()
            del sockets[index]
            del listening[index]


# Linux socket options to learn, and choose, the local address of a UDP datagram.
_IP_PKTINFO = getattr(socket, 'IP_PKTINFO', 8)
_PKTINFO = {socket.AF_INET: (socket.IPPROTO_IP, _IP_PKTINFO, _IP_PKTINFO),
            socket.AF_INET6: (socket.IPPROTO_IPV6, getattr(socket, 'IPV6_RECVPKTINFO', 49),
                              getattr(socket, 'IPV6_PKTINFO', 50))}


def _want_pktinfo(sock):
    """Asks for each datagram's local address; False where the system does not tell it."""
    level, receive, _send = _PKTINFO[sock.family]
    try:
        sock.setsockopt(level, receive, 1)
    except OSError:
        return False
    return True


def _reply_info(sock, ancdata):
    """Control data that sends the echo from the address the probe was sent to."""
    level, _receive, send = _PKTINFO[sock.family]
    for cmsg_level, cmsg_type, data in ancdata:
        if cmsg_level != level or cmsg_type != send:
            continue
        if sock.family == socket.AF_INET and len(data) >= 12:
            # struct in_pktinfo {ifindex; spec_dst; addr}: send from addr, any interface.
            return [(level, send, struct.pack('=i4s4s', 0, data[8:12], b'\0' * 4))]
        if sock.family == socket.AF_INET6 and len(data) >= 20:
            return [(level, send, data[:20])]
    return []


def _echo(sock, pktinfo):
    if not pktinfo:
        data, peer = sock.recvfrom(512)
        if data.startswith(NONCE_PREFIX):
            sock.sendto(data, peer)
        return
    data, ancdata, _flags, peer = sock.recvmsg(512, socket.CMSG_SPACE(64))
    if data.startswith(NONCE_PREFIX):
        sock.sendmsg([data], _reply_info(sock, ancdata), 0, peer)


def serve(sockets, deadline):
    """Accept-and-close on TCP, echo kubeports nonces on UDP (from the address probed), until the deadline."""
    with selectors.DefaultSelector() as selector:
        for protocol, sock in sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, (protocol, protocol == 'udp' and _want_pktinfo(sock)))
        while True:
            left = deadline - time.time()
            if left <= 0:
                return
            for key, _mask in selector.select(min(left, 1.0)):
                protocol, pktinfo = key.data
                try:
                    if protocol == 'tcp':
                        conn, _peer = key.fileobj.accept()
                        conn.close()
                    else:
                        _echo(key.fileobj, pktinfo)
                except OSError:
                    continue


def process_start_time(pid):
    """The kernel's start time of a process (field 22 of /proc/PID/stat), or None if gone."""
    try:
        with open('/proc/%d/stat' % pid) as handle:
            fields = handle.read().rsplit(')', 1)[1].split()
    except (IOError, OSError, IndexError):
        return None
    # fields[0] is the state (field 3); a zombie holds no sockets any more.
    if fields[0] == 'Z':
        return None
    return fields[19]


def record_path(run_dir):
    return os.path.join(run_dir, RECORD_NAME)


def read_record(run_dir):
    try:
        with open(record_path(run_dir)) as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError):
        return None


def _detach(sockets, deadline, lifetime, run_dir):
    """Forks the serving process (double fork, new session); returns its pid to the caller."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child:
        os.close(write_end)
        with os.fdopen(read_end) as reader:
            pid = int(reader.read() or 0)
        os.waitpid(child, 0)
        for _protocol, sock in sockets:
            sock.close()
        return pid
    # First child: new session, then fork the server and leave.
    try:
        os.close(read_end)
        os.setsid()
        server = os.fork()
        if server:
            os.write(write_end, str(server).encode())
            os._exit(0)
        os.close(write_end)
        _become_daemon(sockets)
        # Backstop: SIGALRM ends the process even if the loop were stuck.
        signal.alarm(int(lifetime) + 5)
        serve(sockets, deadline)
        record = read_record(run_dir)
        if record and record.get('pid') == os.getpid():
            os.unlink(record_path(run_dir))
    except BaseException:  # pylint: disable=broad-except
        pass
    os._exit(0)


def _become_daemon(sockets):
    keep = set(sock.fileno() for _protocol, sock in sockets)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    for name in os.listdir('/proc/self/fd'):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    os.chdir('/')
    try:
        with open('/proc/self/comm', 'w') as handle:
            handle.write(PROCESS_NAME)
    except (IOError, OSError):
        pass
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def start_listeners(ports, addresses, lifetime, run_dir):
    """Starts the listener process; returns its description (pid is None if nothing bound)."""
    stale = stop_listeners(run_dir)
    if not os.path.isdir(run_dir):
        os.makedirs(run_dir, 0o700)
    sockets, listening, in_use, errors = open_listeners(ports, addresses)
    result = {'pid': None, 'listening': listening, 'in_use': in_use, 'errors': errors,
              'stale_stopped': stale['stopped'], 'deadline': None}
    if not sockets:
        return result
    deadline = time.time() + lifetime
    pid = _detach(sockets, deadline, lifetime, run_dir)
    if not pid:
        raise OSError(errno.ECHILD, 'the listener process did not start')
    record = {'pid': pid, 'start_time': process_start_time(pid), 'deadline': deadline,
              'listening': listening}
    path = record_path(run_dir)
    try:
        with open(path + '.tmp', 'w') as handle:
            json.dump(record, handle)
        os.rename(path + '.tmp', path)
    except (IOError, OSError):
        # Without its record nothing could stop it: end it now.
        os.kill(pid, signal.SIGTERM)
        raise
    result.update(pid=pid, deadline=deadline)
    return result


def stop_listeners(run_dir, wait=5.0):
    """Ends the listener process recorded in run_dir (if it is still the same process)."""
    record = read_record(run_dir)
    stopped = None
    if record and record.get('pid'):
        pid = int(record['pid'])
        started = process_start_time(pid)
        if started is not None and started == record.get('start_time'):
            try:
                os.kill(pid, signal.SIGTERM)
                stopped = pid
            except OSError:
                pass
            deadline = time.monotonic() + wait
            while process_start_time(pid) == started and time.monotonic() < deadline:
                time.sleep(0.05)
            if process_start_time(pid) == started:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
                end = time.monotonic() + wait
                while process_start_time(pid) == started and time.monotonic() < end:
                    time.sleep(0.05)
    if record is not None:
        try:
            os.unlink(record_path(run_dir))
        except OSError:
            pass
    return {'stopped': stopped, 'record': record}
