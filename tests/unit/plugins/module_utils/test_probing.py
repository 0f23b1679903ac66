"""Probes and temporary listeners on loopback only (plugins/module_utils/probing.py).

Ports 39700-39799 only; every listener lives at most 10 s and is stopped by the fixture.
"""

import os
import socket
import time

import pytest

from ansible_collections.kubeports.firewall.plugins.module_utils import probing

TCP, UDP, FREE_TCP, FREE_UDP = 39701, 39702, 39703, 39704


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(('::1', 0))
        return True
    except OSError:
        return False


ADDRESSES = ['127.0.0.1'] + (['::1'] if ipv6_loopback() else [])


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
                                      ADDRESSES, 10, run_dir)
    assert started['pid'] and not started['in_use'] and not started['errors']
    return started


@pytest.mark.parametrize('address', ADDRESSES)
@pytest.mark.parametrize('probe, observed, detail', [
    ({'protocol': 'tcp', 'port': TCP}, 'open', 'connected'),
    ({'protocol': 'udp', 'port': UDP}, 'open', 'nonce echoed'),
    ({'protocol': 'tcp', 'port': FREE_TCP}, 'closed', 'refused'),
    ({'protocol': 'udp', 'port': FREE_UDP}, 'closed', 'refused'),
])
def test_probe_results(listeners, address, probe, observed, detail):
    result = probing.probe_one(dict(probe, id='p1', address=address, source_address=address), 1.0)
    assert (result['id'], result['observed'], result['detail']) == ('p1', observed, detail)


def test_source_address_not_on_host_is_reported(listeners):
    result = probing.probe_one({'address': '127.0.0.1', 'protocol': 'udp', 'port': UDP,
                                'source_address': '192.0.2.1'}, 1.0)
    assert result['observed'] == 'open'
    assert '192.0.2.1 not usable' in result['detail']


def test_only_kubeports_nonces_are_echoed(listeners):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        sock.connect(('127.0.0.1', UDP))
        sock.send(b'hello')
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
    assert sorted((item['protocol'], item['family']) for item in listeners['listening']) == sorted(
        (protocol, 6 if ':' in address else 4) for protocol in ('tcp', 'udp') for address in ADDRESSES)


def test_stop_ends_the_process_and_frees_the_ports(listeners, run_dir):
    result = probing.stop_listeners(run_dir)
    assert result['stopped'] == listeners['pid']
    assert wait_gone(listeners['pid'])
    assert probing.read_record(run_dir) is None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers (and kubeadm's port check) do: connections of earlier probes may be in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(('127.0.0.1', TCP))
        sock.listen(1)
    assert probing.stop_listeners(run_dir)['stopped'] is None


def test_start_ends_a_stale_listener_first(listeners, run_dir):
    again = probing.start_listeners([{'protocol': 'tcp', 'port': TCP}], ['127.0.0.1'], 10, run_dir)
    assert again['stale_stopped'] == listeners['pid']
    assert again['listening'] and not again['in_use']
    assert wait_gone(listeners['pid'])


def test_a_record_of_another_process_is_not_killed(run_dir):
    os.makedirs(run_dir)
    with open(probing.record_path(run_dir), 'w') as handle:
        handle.write('{"pid": %d, "start_time": "1"}' % os.getpid())
    assert probing.stop_listeners(run_dir)['stopped'] is None
    assert probing.read_record(run_dir) is None


def test_listener_ends_at_its_lifetime(run_dir):
    started = probing.start_listeners([{'protocol': 'tcp', 'port': TCP}], ['127.0.0.1'], 1, run_dir)
    assert live(started['pid'])
    assert wait_gone(started['pid'], 10)
    assert probing.read_record(run_dir) is None
    assert probing.probe_one({'address': '127.0.0.1', 'protocol': 'tcp', 'port': TCP}, 1.0)['observed'] == 'closed'


def test_busy_port_is_left_alone_and_missing_address_falls_back_to_wildcard():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(('127.0.0.1', FREE_TCP))
        busy.listen(1)
        sockets, listening, in_use, errors = probing.open_listeners(
            [{'protocol': 'tcp', 'port': FREE_TCP}, {'protocol': 'udp', 'port': FREE_UDP}], ['127.0.0.1', '192.0.2.1'])
        for _protocol, sock in sockets:
            sock.close()
    assert [(item['protocol'], item['address']) for item in in_use] == [('tcp', '127.0.0.1'), ('tcp', '0.0.0.0')]
    # The wildcard replaces this run's own socket on 127.0.0.1 instead of colliding with it.
    assert [(item['protocol'], item['address']) for item in listening] == [('udp', '0.0.0.0')]
    assert len(sockets) == 1 and errors == []


@pytest.mark.parametrize('concurrency', [1, 8])
def test_probe_all_keeps_order(listeners, concurrency):
    probes = [{'id': index, 'address': '127.0.0.1', 'protocol': protocol, 'port': port}
              for index, (protocol, port) in enumerate([('tcp', TCP), ('tcp', FREE_TCP), ('udp', UDP)] * 3)]
    results = probing.probe_all(probes, 1.0, concurrency)
    assert [result['id'] for result in results] == list(range(9))
    assert [result['observed'] for result in results] == ['open', 'closed', 'open'] * 3
    assert probing.probe_all([], 1.0, concurrency) == []
