# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who holds a port the verify listeners cannot bind, and traffic through kernel tunnels.

Runs on the managed hosts (standard library only).

- ``parse_tunnels`` / ``read_tunnels``: the kernel's VXLAN and Geneve devices (``ip -d -j
  addr show``): name, kind, UDP port, underlay (``local``) address, addresses on the device.
- ``socket_owners``: the process holding a port (``/proc/net`` and ``/proc/PID/fd``), or
  none (a kernel socket).
- ``overlay_plan`` decides how a UDP probe of a port held by a tunnel device is made;
  ``overlay_echo`` sends an ICMP echo through the prober's own device of that port to the
  target's device address. The kernel encapsulates it to the target's node address on that
  port, and the target answers the same way: an answer proves the port on both nodes, each
  from the other.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import time
import uuid

TUNNEL_KINDS = ('vxlan', 'geneve')
OVERLAY = 'overlay'
# Where the ip command usually is, when the module's PATH lacks the sbin directories.
_IP_PATHS = ('/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip')
_PING_PATHS = ('/usr/bin/ping', '/bin/ping', '/usr/sbin/ping', '/sbin/ping')
ECHO_PREFIX = b'kubeports-overlay '
# TCP listening and UDP unconnected socket states in /proc/net/{tcp,udp}[6].
_BOUND_STATES = {'tcp': '0A', 'udp': '07'}


def _family_of(address):
    return 6 if ':' in address else 4


def _is_link_local(address):
    return address.lower().startswith('fe80:') or address.startswith('169.254.')


def parse_tunnels(data):
    """Tunnel devices from the parsed JSON of ``ip -d -j addr show`` (or ``link show``).

    Each: ``device``, ``kind`` (vxlan or geneve), ``port`` (its UDP port), ``local`` (the
    underlay address it sends from, or None), ``family`` (4 or 6 of the underlay, None when
    unknown), ``external`` (true when the CNI's datapath, not the kernel's forwarding table,
    decides where it sends: Cilium's or OVN's devices), ``id`` (VNI), ``mac``, ``up`` and
    ``addresses`` (``family``, ``address``, ``prefixlen``; link-local last).
    """
    tunnels = []
    for link in data if isinstance(data, list) else ():
        if not isinstance(link, dict):
            continue
        info = link.get('linkinfo') or {}
        kind = info.get('info_kind')
        if kind not in TUNNEL_KINDS:
            continue
        details = info.get('info_data') or {}
        port = details.get('port', details.get('dstport'))
        try:
            port = int(port)
        except (TypeError, ValueError):
            continue
        local = details.get('local') or details.get('local6')
        family = _family_of(local) if local else (6 if details.get('remote6') or details.get('group6') else
                                                  4 if details.get('remote') or details.get('group') else None)
        addresses = []
        for item in link.get('addr_info') or ():
            if not isinstance(item, dict) or not item.get('local') or item.get('family') not in ('inet', 'inet6'):
                continue
            addresses.append({'family': 4 if item['family'] == 'inet' else 6, 'address': str(item['local']),
                              'prefixlen': item.get('prefixlen')})
        addresses.sort(key=lambda item: _is_link_local(item['address']))
        tunnels.append({
            'device': str(link.get('ifname')), 'kind': kind, 'port': port, 'local': local, 'family': family,
            'external': bool(details.get('external') or details.get('collect_metadata')),
            'id': details.get('id'), 'mac': link.get('address'),
            'up': 'UP' in (link.get('flags') or ()), 'addresses': addresses,
        })
    return tunnels


def _command(names, paths):
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    for path in paths:
        if os.access(path, os.X_OK):
            return path
    return None


def read_tunnels(timeout=10):
    """(tunnel devices of this host, None), or ([], why they could not be read)."""
    ip = _command(('ip',), _IP_PATHS)
    if not ip:
        return [], 'no ip command (iproute2) to list the tunnel devices'
    try:
        proc = subprocess.run([ip, '-d', '-j', 'addr', 'show'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], 'ip -d -j addr show: %s' % exc
    if proc.returncode != 0:
        return [], 'ip -d -j addr show failed: %s' % proc.stderr.decode('utf-8', 'replace').strip()[:200]
    try:
        data = json.loads(proc.stdout.decode('utf-8', 'replace') or '[]')
    except ValueError:
        return [], 'ip -d -j addr show gave no JSON (iproute2 too old for -j)'
    return parse_tunnels(data), None


def owner_text(tunnel):
    """"kernel vxlan device flannel.1, port 8472"."""
    return 'kernel %s device %s, port %d' % (tunnel['kind'], tunnel['device'], tunnel['port'])


def tunnel_for(tunnels, port, address):
    """The tunnel device holding UDP ``port`` for traffic to ``address`` (one of the host's), or None.

    A device whose underlay address is ``address`` first, then one of the same family without
    an underlay address, then one of the same family on another address (the kernel's socket
    of a tunnel holds the port on every address), then one of unknown family.
    """
    family = _family_of(address)
    holding = [tunnel for tunnel in tunnels or () if int(tunnel.get('port') or 0) == int(port)]
    for wanted in (lambda t: t.get('local') == address,
                   lambda t: not t.get('local') and t.get('family') == family,
                   lambda t: t.get('family') == family,
                   lambda t: t.get('family') is None):
        for tunnel in holding:
            if wanted(tunnel):
                return tunnel
    return None


def _device_addresses(tunnel, family=None):
    return [item['address'] for item in tunnel.get('addresses') or ()
            if (family is None or item['family'] == family) and not _is_link_local(item['address'])]


def overlay_plan(probe, target_tunnel, own_tunnels):
    """How a UDP probe of a port the target's tunnel device holds is made.

    Returns {``owner``, ``how``, ...}: ``how`` is "overlay" (with ``device``, ``source``,
    ``destination``: send an ICMP echo through this host's device) or "datagram" (a plain UDP
    probe) with ``why`` (why no traffic can go through the overlay from this host).
    """
    owner = owner_text(target_tunnel)
    plan = {'owner': owner, 'how': 'datagram'}
    if target_tunnel.get('external'):
        plan['why'] = ('%s is driven by its CNI\'s datapath (external), so traffic cannot be sent through it '
                       'by address' % target_tunnel['device'])
        return plan
    destinations = _device_addresses(target_tunnel)
    if not destinations:
        plan['why'] = '%s on %s has no address to send traffic to' % (target_tunnel['device'], probe.get('target'))
        return plan
    family = _family_of(probe['address'])
    candidates = [tunnel for tunnel in own_tunnels or ()
                  if tunnel['kind'] == target_tunnel['kind'] and int(tunnel['port']) == int(target_tunnel['port'])
                  and tunnel.get('family') in (family, None) and not tunnel.get('external')]
    # A device whose underlay address is the probe's source first: it sends from that address.
    candidates.sort(key=lambda tunnel: (tunnel.get('local') != probe.get('source_address'),
                                        tunnel.get('family') is None))
    for tunnel in candidates:
        for destination in destinations:
            sources = _device_addresses(tunnel, _family_of(destination))
            if sources:
                plan.update(how=OVERLAY, device=tunnel['device'], source=sources[0], destination=destination,
                            local=tunnel.get('local'), up=tunnel.get('up', True))
                return plan
    if candidates:
        plan['why'] = '%s on %s has no address of the family of %s' % (
            candidates[0]['device'], probe.get('source') or 'the probing host', ', '.join(destinations))
    else:
        plan['why'] = '%s has no %s device on port %d over IPv%d: it is not in this overlay' % (
            probe.get('source') or 'the probing host', target_tunnel['kind'], int(target_tunnel['port']), family)
    return plan


# ---------------------------------------------------------------------------- ICMP echo

def _checksum(data):
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xffff)
    total += total >> 16
    return ~total & 0xffff


def _echo_request(family, ident, sequence, payload):
    kind = 8 if family == 4 else 128
    header = struct.pack('!BBHHH', kind, 0, 0, ident, sequence)
    checksum = _checksum(header + payload) if family == 4 else 0
    return struct.pack('!BBHHH', kind, 0, checksum, ident, sequence) + payload


def _echo_reply(family, data, raw):
    """(identifier, payload) of an ICMP echo reply, or None."""
    if raw and family == 4:
        if len(data) < 20:
            return None
        data = data[(data[0] & 0x0f) * 4:]
    if len(data) < 8 or data[0] != (0 if family == 4 else 129) or data[1] != 0:
        return None
    return struct.unpack('!H', data[4:6])[0], data[8:]


def _icmp_socket(family, device, source):
    """An ICMP socket bound to ``device`` and ``source``: a ping socket, else a raw one (root)."""
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    proto = socket.IPPROTO_ICMP if family == 4 else socket.IPPROTO_ICMPV6
    last = None
    for kind, raw in ((socket.SOCK_DGRAM, False), (socket.SOCK_RAW, True)):
        try:
            sock = socket.socket(af, kind, proto)
        except OSError as exc:
            last = exc
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, getattr(socket, 'SO_BINDTODEVICE', 25), device.encode() + b'\0')
            sock.bind((source, 0))
        except OSError as exc:
            sock.close()
            last = exc
            continue
        return sock, raw
    raise last or OSError(errno.EPERM, 'no ICMP socket')


def overlay_echo(device, source, destination, timeout, attempts=3):
    """(answered, detail): an ICMP echo from ``source`` on ``device`` to ``destination``.

    Uses an ICMP socket bound to the device (an unprivileged ping socket where allowed, else a
    raw socket as root), or the ping command when neither may be opened. ``answered`` is None
    when this host could not send at all.
    """
    family = _family_of(destination)
    try:
        sock, raw = _icmp_socket(family, device, source)
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES, errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT):
            return _ping_command(device, source, destination, timeout)
        return None, 'cannot send an ICMP echo through %s from %s: %s' % (device, source, exc.strerror or exc)
    payload = ECHO_PREFIX + uuid.uuid4().hex.encode()
    ident = random.randint(1, 0xffff)
    address = (destination, 0)
    wait = timeout / max(1, attempts)
    try:
        for sequence in range(1, max(1, attempts) + 1):
            try:
                sock.sendto(_echo_request(family, ident, sequence, payload), address)
            except OSError as exc:
                return False, 'cannot send through %s to %s: %s' % (device, destination, exc.strerror or exc)
            deadline = time.monotonic() + wait
            for _packet in range(10000):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                try:
                    data, peer = sock.recvfrom(2048)
                except socket.timeout:
                    break
                except OSError as exc:
                    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES):
                        return False, 'ICMP error through %s from %s: %s' % (device, destination, exc.strerror)
                    continue
                reply = _echo_reply(family, data, raw)
                # A ping socket's identifier is the kernel's; the payload identifies this echo.
                if reply and reply[1] == payload and peer[0].split('%')[0] == destination and \
                        (not raw or reply[0] == ident):
                    return True, 'echo answered through %s (%s -> %s)' % (device, source, destination)
    finally:
        sock.close()
    return False, 'no echo through %s to %s in %gs' % (device, destination, timeout)


def _ping_command(device, source, destination, timeout):
    ping = _command(('ping',), _PING_PATHS)
    if not ping:
        return None, ('cannot send an ICMP echo through %s: no permission for an ICMP socket and no ping command'
                      % device)
    argv = [ping, '-%d' % _family_of(destination), '-n', '-c', '1', '-W', str(max(1, int(round(timeout)))),
            '-I', device, destination]
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout + 5,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, 'ping through %s: %s' % (device, exc)
    if proc.returncode == 0:
        return True, 'echo answered through %s (%s -> %s, ping)' % (device, source, destination)
    if proc.returncode == 1:
        return False, 'no echo through %s to %s in %gs (ping)' % (device, destination, timeout)
    return None, 'ping through %s failed: %s' % (device, proc.stderr.decode('utf-8', 'replace').strip()[:200])


# ---------------------------------------------------------------------------- socket owners

def _bound_inodes(wanted, proc_net='/proc/net'):
    """{inode: (protocol, port)} of the listening TCP and unconnected UDP sockets on ``wanted`` ports."""
    found = {}
    for protocol in sorted(set(protocol for protocol, _port in wanted)):
        for suffix in ('', '6'):
            try:
                with open(os.path.join(proc_net, protocol + suffix)) as handle:
                    lines = handle.read().splitlines()[1:]
            except (IOError, OSError):
                continue
            for line in lines:
                fields = line.split()
                if len(fields) < 10 or fields[3] != _BOUND_STATES[protocol]:
                    continue
                try:
                    port = int(fields[1].rsplit(':', 1)[1], 16)
                except (IndexError, ValueError):
                    continue
                if (protocol, port) in wanted:
                    found[fields[9]] = (protocol, port)
    return found


def socket_owners(wanted, proc='/proc', limit=200000):
    """{(protocol, port): owner text} for ports something else holds on this host.

    The owner is a process ("process etcd (pid 812)"), "a kernel socket (no process holds
    it)", or "an unknown owner" when the sockets cannot be read. ``limit`` bounds the file
    descriptors looked at.
    """
    wanted = set((protocol, int(port)) for protocol, port in wanted)
    owners = {}
    if not wanted:
        return owners
    inodes = _bound_inodes(wanted, os.path.join(proc, 'net'))
    holders = {}
    seen = 0
    try:
        pids = [name for name in os.listdir(proc) if name.isdigit()]
    except OSError:
        pids = []
    for pid in pids:
        if len(holders) == len(inodes) or seen > limit:
            break
        directory = os.path.join(proc, pid, 'fd')
        try:
            fds = os.listdir(directory)
        except OSError:
            continue
        for fd in fds:
            seen += 1
            try:
                link = os.readlink(os.path.join(directory, fd))
            except OSError:
                continue
            if link.startswith('socket:[') and link[8:-1] in inodes and link[8:-1] not in holders:
                holders[link[8:-1]] = pid
    for inode, (protocol, port) in inodes.items():
        pid = holders.get(inode)
        if pid is None:
            continue
        try:
            with open(os.path.join(proc, pid, 'comm')) as handle:
                name = handle.read().strip()
        except (IOError, OSError):
            name = '?'
        owners.setdefault((protocol, port), 'process %s (pid %s)' % (name, pid))
    for protocol, port in wanted:
        if (protocol, port) in owners:
            continue
        if any(value == (protocol, port) for value in inodes.values()):
            owners[(protocol, port)] = 'a kernel socket (no process holds it)'
        else:
            owners[(protocol, port)] = 'an unknown owner'
    return owners


def name_owners(in_use):
    """Names the owner of each port in ``in_use`` (entries of open_listeners), in place.

    Returns (the tunnel devices holding one of those UDP ports, and why the devices could not
    be read, or None). Tunnel devices are read only when a UDP port is held. Each entry gets
    ``owner`` and, when a tunnel device holds it, ``device``.
    """
    tunnels, error = [], None
    if any(item['protocol'] == 'udp' for item in in_use):
        tunnels, error = read_tunnels()
    owners = socket_owners([(item['protocol'], item['port']) for item in in_use]) if in_use else {}
    for item in in_use:
        tunnel = tunnel_for(tunnels, item['port'], item['address']) if item['protocol'] == 'udp' else None
        if tunnel:
            item['owner'] = owner_text(tunnel)
            item['device'] = tunnel['device']
        else:
            item['owner'] = owners.get((item['protocol'], int(item['port'])), 'an unknown owner')
    held = set(int(item['port']) for item in in_use if item['protocol'] == 'udp')
    return [tunnel for tunnel in tunnels if tunnel['port'] in held], error
