"""Probes and temporary listeners on loopback only (plugins/module_utils/probe_sockets.py).

Ports 39700-39799 only; every listener lives at most 10 s, keeps its record under tmp_path
and is stopped by the fixture.
"""

import json
import os
import signal
import socket
import time

import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils import probe_sockets as probing

TCP, UDP, FREE_TCP, FREE_UDP, BUSY, OTHER = 39701, 39702, 39703, 39704, 39705, 39706
LIFETIME = 10


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(('::1', 0))
        return True
    except OSError:
        return False


IPV6 = ipv6_loopback()
ADDRESSES = ['127.0.0.1'] + (['::1'] if IPV6 else [])
LOOPBACKS = ['127.0.0.1', pytest.param('::1', marks=pytest.mark.skipif(not IPV6, reason='::1 cannot be bound'))]


def live(pid):
    return probing.process_start_time(pid) is not None


def wait_gone(pid, seconds=10):
    deadline = time.monotonic() + seconds
    while live(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not live(pid)


@pytest.fixture
def run_dir(tmp_path):
    path = str(tmp_path / 'run')
    yield path
    probing.stop_listeners(path)


@pytest.fixture
def listeners(run_dir):
    started = probing.start_listeners([{'protocol': 'tcp', 'port': TCP}, {'protocol': 'udp', 'port': UDP}],
                                      ADDRESSES, LIFETIME, run_dir)
    assert started['pid'] and not started['in_use'] and not started['errors']
    return started


@pytest.mark.parametrize('address', LOOPBACKS)
@pytest.mark.parametrize('probe, observed, detail', [
    ({'protocol': 'tcp', 'port': TCP}, ('open',), 'connected'),
    ({'protocol': 'udp', 'port': UDP}, ('open',), 'nonce echoed'),
    ({'protocol': 'tcp', 'port': FREE_TCP}, ('closed',), 'refused'),
    # ICMP port unreachable on loopback normally gives "closed"; no answer at all would be "filtered".
    ({'protocol': 'udp', 'port': FREE_UDP}, ('closed', 'filtered'), ''),
])
def test_probe_results(listeners, address, probe, observed, detail):
    result = probing.probe_one(dict(probe, id='p1', address=address, source_address=address), 1.0)
    assert result['id'] == 'p1' and result['observed'] in observed
    assert detail in result['detail'] and 'not usable' not in result['detail']
    assert result['seconds'] < 2 and abs(result['started'] - time.time()) < 5


@pytest.mark.parametrize('protocol, port', [('tcp', TCP), ('udp', UDP)])
def test_source_address_not_on_host_is_reported(listeners, protocol, port):
    result = probing.probe_one({'address': '127.0.0.1', 'protocol': protocol, 'port': port,
                                'source_address': '192.0.2.1'}, 1.0)
    assert result['observed'] == 'open'
    assert 'sent from the address the kernel chose (192.0.2.1 not usable' in result['detail']


def test_only_kubeports_nonces_are_echoed(listeners):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        sock.connect(('127.0.0.1', UDP))
        for data in (b'hello', b'kubeports-probe', b' ' + probing.NONCE_PREFIX):
            sock.send(data)
            with pytest.raises(socket.timeout):
                sock.recv(64)
        sock.send(probing.NONCE_PREFIX + b'1234')
        assert sock.recv(64) == probing.NONCE_PREFIX + b'1234'


def test_listener_process_and_record(listeners, run_dir):
    pid = listeners['pid']
    with open('/proc/%d/comm' % pid) as handle:
        assert handle.read().strip() == probing.PROCESS_NAME
    record = probing.read_record(run_dir)
    assert record['pid'] == pid and record['start_time'] == probing.process_start_time(pid)
    assert record['deadline'] == listeners['deadline'] and 0 < listeners['deadline'] - time.time() <= LIFETIME
    assert record['listening'] == listeners['listening']
    assert sorted((item['protocol'], item['family'], item['address']) for item in listeners['listening']) == sorted(
        (protocol, 6 if ':' in address else 4, address) for protocol in ('tcp', 'udp') for address in ADDRESSES)
    assert listeners['stale_stopped'] is None


def test_stop_ends_the_process_and_frees_the_ports(listeners, run_dir):
    result = probing.stop_listeners(run_dir)
    assert result['stopped'] == listeners['pid'] and result['record']['pid'] == listeners['pid']
    assert wait_gone(listeners['pid'], 3)
    assert probing.read_record(run_dir) is None
    assert not os.path.exists(probing.record_path(run_dir))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers (and kubeadm's port check) do: connections of earlier probes may be in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(('127.0.0.1', TCP))
        sock.listen(1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(('127.0.0.1', UDP))
    assert probing.stop_listeners(run_dir) == {'stopped': None, 'record': None}


def test_start_ends_a_stale_listener_first(listeners, run_dir):
    again = probing.start_listeners([{'protocol': 'tcp', 'port': TCP}], ['127.0.0.1'], LIFETIME, run_dir)
    assert again['stale_stopped'] == listeners['pid']
    assert again['pid'] and again['pid'] != listeners['pid']
    assert again['listening'] and not again['in_use']
    assert wait_gone(listeners['pid'], 3)
    assert probing.read_record(run_dir)['pid'] == again['pid']


def test_a_record_of_another_process_is_not_killed(listeners, run_dir):
    pid, path = listeners['pid'], probing.record_path(run_dir)
    with open(path) as handle:
        record = json.load(handle)
    try:
        with open(path, 'w') as handle:
            json.dump(dict(record, start_time='1'), handle)
        result = probing.stop_listeners(run_dir, wait=0.5)
        assert result['stopped'] is None and result['record']['pid'] == pid
        assert probing.read_record(run_dir) is None
        assert live(pid)
        assert probing.probe_one({'address': '127.0.0.1', 'protocol': 'tcp', 'port': TCP}, 1.0)['observed'] == 'open'
    finally:
        if live(pid):
            os.kill(pid, signal.SIGTERM)
            wait_gone(pid, 5)


@pytest.mark.parametrize('record, removed', [
    ('{"pid": 999999999, "start_time": "1"}', True),
    ('{}', True),
    ('not json', False),  # unreadable: left for start_listeners to replace
])
def test_stop_with_a_dead_or_broken_record_kills_nothing(run_dir, record, removed):
    os.makedirs(run_dir)
    with open(probing.record_path(run_dir), 'w') as handle:
        handle.write(record)
    assert probing.stop_listeners(run_dir, wait=0.5)['stopped'] is None
    assert os.path.exists(probing.record_path(run_dir)) is not removed


def test_listener_ends_at_its_lifetime(run_dir):
    started = probing.start_listeners([{'protocol': 'tcp', 'port': OTHER}], ['127.0.0.1'], 2, run_dir)
    assert live(started['pid'])
    assert probing.probe_one({'address': '127.0.0.1', 'protocol': 'tcp', 'port': OTHER}, 1.0)['observed'] == 'open'
    assert wait_gone(started['pid'], 10)
    assert probing.read_record(run_dir) is None
    assert probing.probe_one({'address': '127.0.0.1', 'protocol': 'tcp', 'port': OTHER}, 1.0)['observed'] == 'closed'


def test_nothing_bound_starts_no_process(run_dir):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(('127.0.0.1', BUSY))
        started = probing.start_listeners([{'protocol': 'udp', 'port': BUSY}], ['127.0.0.1'], LIFETIME, run_dir)
    assert started['pid'] is None and started['deadline'] is None and started['listening'] == []
    assert started['in_use'] == [{'protocol': 'udp', 'port': BUSY, 'family': 4, 'address': '127.0.0.1'}]
    assert probing.read_record(run_dir) is None


def close_all(sockets):
    for _protocol, sock in sockets:
        sock.close()


@pytest.mark.parametrize('addresses, in_use, listening', [
    # The wildcard replaces this run's own socket on 127.0.0.1 instead of colliding with it.
    (['127.0.0.1', '192.0.2.1'], [('tcp', '127.0.0.1'), ('tcp', '0.0.0.0')], [('udp', '0.0.0.0')]),
    (['192.0.2.1', '127.0.0.1'], [('tcp', '0.0.0.0')], [('udp', '0.0.0.0')]),
    (['127.0.0.1'], [('tcp', '127.0.0.1')], [('udp', '127.0.0.1')]),
])
def test_busy_port_is_left_alone_and_missing_address_falls_back_to_wildcard(addresses, in_use, listening):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(('127.0.0.1', BUSY))
        busy.listen(1)
        sockets, bound, busy_ports, errors = probing.open_listeners(
            [{'protocol': 'tcp', 'port': BUSY}, {'protocol': 'udp', 'port': BUSY}], addresses)
        close_all(sockets)
    assert [(item['protocol'], item['address']) for item in busy_ports] == in_use
    assert [(item['protocol'], item['address']) for item in bound] == listening
    assert all(item['port'] == BUSY and item['family'] == 4 for item in busy_ports + bound)
    assert len(sockets) == len(listening) and errors == []


def test_address_not_on_host_is_served_by_the_wildcard():
    sockets, bound, in_use, errors = probing.open_listeners([{'protocol': 'tcp', 'port': OTHER}], ['192.0.2.1'])
    try:
        assert [(item['address'], item['family']) for item in bound] == [('0.0.0.0', 4)]
        assert in_use == [] and errors == []
        assert sockets[0][1].getsockname() == ('0.0.0.0', OTHER)
    finally:
        close_all(sockets)


@pytest.mark.skipif(not IPV6, reason='::1 cannot be bound')
def test_ipv6_listener_is_ipv6_only():
    sockets, bound, in_use, errors = probing.open_listeners([{'protocol': 'udp', 'port': OTHER}], ['::1', '127.0.0.1'])
    try:
        assert [(item['address'], item['family']) for item in bound] == [('::1', 6), ('127.0.0.1', 4)]
        assert in_use == [] and errors == []
        assert sockets[0][1].getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    finally:
        close_all(sockets)


@pytest.mark.parametrize('concurrency', [1, 8])
def test_probe_all_keeps_order(listeners, concurrency):
    probes = [{'id': index, 'address': '127.0.0.1', 'protocol': protocol, 'port': port}
              for index, (protocol, port) in enumerate([('tcp', TCP), ('tcp', FREE_TCP), ('udp', UDP)] * 3)]
    results = probing.probe_all(probes, 1.0, concurrency)
    assert [result['id'] for result in results] == list(range(9))
    assert [result['observed'] for result in results] == ['open', 'closed', 'open'] * 3
    assert probing.probe_all([], 1.0, concurrency) == []


WILDCARD_ECHO = r"""
import threading, time
from ansible_collections.kubeports.firewall.plugins.module_utils import probe_sockets as probing
sockets, listening, _in_use, _errors = probing.open_listeners([{'protocol': 'udp', 'port': 39790}],
                                                            ['127.0.0.2', '192.0.2.1'])
assert [item['address'] for item in listening] == ['0.0.0.0'], listening
server = threading.Thread(target=probing.serve, args=(sockets, time.time() + 3))
server.start()
print(probing.probe_one({'address': '127.0.0.2', 'protocol': 'udp', 'port': 39790}, 1.0)['observed'])
server.join()
"""


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists('/usr/bin/unshare'),
                    reason='needs root to make a private network namespace')
def test_wildcard_listener_echoes_from_the_probed_address():
    # The wildcard socket must answer from 127.0.0.2, not from the kernel's choice (127.0.0.1):
    # a connected UDP probe drops replies from another address. Runs in a network namespace
    # of its own (loopback only), so the wildcard socket is reachable from nowhere else.
    import subprocess
    import sys
    script = 'ip link set lo up && exec "%s" -c "$0"' % sys.executable
    proc = subprocess.run(['/usr/bin/unshare', '--net', 'sh', '-c', script, WILDCARD_ECHO],
                          capture_output=True, text=True, timeout=60, check=False,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == 'open'


def test_a_probe_this_host_cannot_send_is_an_error_not_a_result(monkeypatch):
    def no_socket(*_args, **_kwargs):
        raise OSError(97, 'Address family not supported by protocol')
    monkeypatch.setattr(probing.socket, 'socket', no_socket)
    result = probing.probe_one({'id': 'p1', 'address': '::1', 'protocol': 'udp', 'port': UDP}, 1.0)
    assert (result['observed'], result['detail']) == (
        'error', 'cannot probe from this host: Address family not supported by protocol')


def test_a_listener_whose_record_cannot_be_written_is_ended(run_dir, monkeypatch):
    started = []
    real_detach = probing._detach

    def detach(*args):
        started.append(real_detach(*args))
        return started[-1]

    def no_record(*_args, **_kwargs):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(probing, '_detach', detach)
    monkeypatch.setattr(probing.json, 'dump', no_record)
    with pytest.raises(OSError):
        probing.start_listeners([{'protocol': 'tcp', 'port': TCP}], ['127.0.0.1'], 10, run_dir)
    assert started and wait_gone(started[0])
