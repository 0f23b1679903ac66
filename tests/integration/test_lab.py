"""Proves the lab is real: SSH works to every host, and on a firewalld host and a ufw host a
TCP and a UDP port are unreachable from a peer until a rule is added inside that host.

Ports 39411-39432 are used only by this file. Every listener exits after LISTENER_LIFETIME.
"""

import os
import re
import select
import subprocess
import sys
import uuid

import pytest

LISTENER_LIFETIME = 60
KPLAB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lab", "kplab")
PROBE_TIMEOUT = 1.0

# Dual-stack listener: answers every TCP connection or UDP datagram with the nonce, then
# exits when its lifetime is over. argv: proto port nonce lifetime
LISTENER = r"""
import select, socket, sys, time
proto, port, nonce, lifetime = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), float(sys.argv[4])
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET6, kind)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", port))
if proto == "tcp":
    s.listen(16)
print("ready", flush=True)
end = time.monotonic() + lifetime
while True:
    left = end - time.monotonic()
    if left <= 0:
        break
    if not select.select([s], [], [], min(left, 1.0))[0]:
        continue
    if proto == "tcp":
        conn, _ = s.accept()
        conn.settimeout(2)
        try:
            conn.sendall(nonce)
        finally:
            conn.close()
    else:
        _, peer = s.recvfrom(2048)
        s.sendto(nonce, peer)
"""

# Probes each address concurrently; prints one line per address: what the service answered,
# or NO:<reason>. argv: proto port timeout address...
PROBE = r"""
import socket, sys, threading
proto, port, timeout, addrs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
results = {}
def one(addr):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(family, kind)
    s.settimeout(timeout)
    try:
        if proto == "tcp":
            s.connect((addr, port))
            data = s.recv(256)
        else:
            s.sendto(b"probe", (addr, port))
            data, _ = s.recvfrom(256)
        results[addr] = data.decode(errors="replace") or "NO:empty"
    except OSError as exc:
        results[addr] = "NO:%s" % exc.__class__.__name__
    finally:
        s.close()
threads = [threading.Thread(target=one, args=(a,)) for a in addrs]
for t in threads:
    t.start()
for t in threads:
    t.join(timeout + 5)
for a in addrs:
    print(results.get(a, "NO:hung"))
"""

RULES = {
    "firewalld": {
        "add": ["firewall-cmd", "--add-port={port}/{proto}"],
        "remove": ["firewall-cmd", "--remove-port={port}/{proto}"],
    },
    "ufw": {
        "add": ["ufw", "allow", "{port}/{proto}"],
        "remove": ["ufw", "delete", "allow", "{port}/{proto}"],
    },
    "susefirewall2": {
        "add": ["sh", "-c", "sed -i 's/^FW_SERVICES_EXT_{PROTO}=\"/&{port} /' "
                "/etc/sysconfig/SuSEfirewall2 && SuSEfirewall2 start"],
        "remove": ["sh", "-c", "sed -i 's/^\\(FW_SERVICES_EXT_{PROTO}=\"\\){port} /\\1/' "
                   "/etc/sysconfig/SuSEfirewall2 && SuSEfirewall2 start"],
    },
}
PORTS = {("firewalld", "tcp"): 39411, ("firewalld", "udp"): 39412,
         ("ufw", "tcp"): 39421, ("ufw", "udp"): 39422,
         ("susefirewall2", "tcp"): 39431, ("susefirewall2", "udp"): 39432}


def _fmt(argv, **values):
    return [a.format(**values) for a in argv]


class Listener:
    def __init__(self, lab, host, proto, port):
        self.nonce = "kplab-" + uuid.uuid4().hex
        self.proc = lab.spawn(host, ["python3", "-c", LISTENER, proto, str(port), self.nonce,
                                     str(LISTENER_LIFETIME)])
        ready = select.select([self.proc.stdout], [], [], 15)[0]
        line = self.proc.stdout.readline().strip() if ready else ""
        if line != "ready":
            self.stop()
            raise AssertionError("listener on %s %s/%d did not start: %s %s" % (
                host, proto, port, line, self.proc.stderr.read() if self.proc.poll() is not None else ""))

    def stop(self):
        # The listener runs under nsenter in the host; ending the client process ends it.
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def probe(lab, source, proto, port, *addresses):
    """What each address answers on proto/port when asked from source (a list)."""
    out = lab.exec(source, ["python3", "-c", PROBE, proto, str(port), str(PROBE_TIMEOUT),
                            *addresses], timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_ssh_to_every_host(lab):
    assert len(lab.hosts) >= 2
    failures = []
    for host in lab.hosts:
        for family in (4, 6):
            out = lab.ssh(host, "hostname; cat /etc/kplab-host", family=family)
            if out.returncode != 0 or out.stdout.split()[:2] != [host, host]:
                failures.append("%s (IPv%d): rc=%d %s %s"
                                % (host, family, out.returncode, out.stdout, out.stderr))
    assert not failures, failures


def test_non_default_ssh_port_is_really_used(lab):
    odd = [h for h in lab.hosts if lab.hostvars[h]["ansible_port"] != 22]
    if not odd:
        pytest.skip("spec has no host on a non-default SSH port")
    for host in odd:
        port = lab.hostvars[host]["ansible_port"]
        listening = lab.exec(host, ["ss", "-Htln"], timeout=30).stdout
        assert re.search(r":%d\s" % port, listening), listening
        assert not re.search(r":22\s", listening), listening


def test_ssh_session_sees_the_host_state(lab):
    for host in lab.by_firewall("firewalld"):
        out = lab.ssh(host, "firewall-cmd --state")
        assert out.stdout.strip() == "running", out.stderr
    for host in lab.by_firewall("ufw"):
        out = lab.ssh(host, "ufw status")
        assert "Status: active" in out.stdout, out.stdout + out.stderr
    for host in lab.by_firewall("firewalld") + lab.by_firewall("none"):
        out = lab.ssh(host, "ufw status")
        assert "Status: inactive" in out.stdout, out.stdout + out.stderr
    for host in lab.by_firewall("susefirewall2"):
        out = lab.ssh(host, "grep -c ^FW_ /etc/sysconfig/SuSEfirewall2 && SuSEfirewall2 status")
        assert out.returncode == 0, out.stdout + out.stderr
    # The machine's own configuration is untouched by the hosts' private /etc.
    with open("/etc/ufw/ufw.conf") as fh:
        assert re.search(r"^ENABLED=no", fh.read(), re.M)
    assert not os.path.exists("/etc/sysconfig/SuSEfirewall2")


@pytest.mark.parametrize("firewall,proto", sorted(PORTS))
def test_port_closed_until_rule_added(lab, firewall, proto):
    targets = lab.by_firewall(firewall)
    if not targets:
        pytest.skip("spec has no %s host" % firewall)
    target = targets[0]
    peer = next(h for h in lab.hosts if h != target)
    port = PORTS[(firewall, proto)]
    values = {"port": port, "proto": proto, "PROTO": proto.upper()}
    addresses = [lab.address(target, 4), lab.address(target, 6)]
    listener = Listener(lab, target, proto, port)
    added = False
    try:
        local = probe(lab, target, proto, port, "127.0.0.1", "::1")
        assert local == [listener.nonce] * 2, "listener does not answer locally: %s" % local
        before = probe(lab, peer, proto, port, *addresses)
        assert all(b.startswith("NO:") for b in before), \
            "%s/%d reachable on %s before the rule: %s" % (proto, port, target, before)
        out = lab.exec(target, _fmt(RULES[firewall]["add"], **values), timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        added = True
        after = probe(lab, peer, proto, port, *addresses)
        assert after == [listener.nonce] * 2, "%s/%d on %s after the rule: %s" % (
            proto, port, target, after)
        out = lab.exec(target, _fmt(RULES[firewall]["remove"], **values), timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        added = False
        # Removing the rule closes the port again (new connections only).
        again = probe(lab, peer, proto, port, *addresses)
        assert all(a.startswith("NO:") for a in again), again
    finally:
        if added:
            lab.exec(target, _fmt(RULES[firewall]["remove"], **values), timeout=60)
        listener.stop()


def test_ansible_reaches_every_host(lab):
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible")
    if not os.path.exists(ansible):
        pytest.skip("ansible is not installed next to this python")
    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_DEPRECATION_WARNINGS="False")
    out = subprocess.run([ansible, "-i", lab.inventory_path, "lab", "-m", "ping"],
                         capture_output=True, text=True, timeout=120, env=env, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("SUCCESS") == len(lab.hosts), out.stdout


def test_machine_namespace_untouched(lab):
    assert lab.root_ruleset() == lab.root_ruleset_before
    addrs = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, timeout=30, check=False).stdout
    assert "198.51.100." not in addrs and "2001:db8:100:" not in addrs
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=30, check=False).stdout
    assert "kpv" not in links and "kpbr" not in links


def test_bringup_is_fast(lab):
    assert lab.bringup_seconds < 45, lab.bringup_seconds


REBOOT = {
    # firewall: (persistent rule, runtime-only rule or None, state command, cleanup)
    "firewalld": ("firewall-cmd --permanent --add-port=39441/tcp && firewall-cmd --add-port=39441/tcp",
                  "firewall-cmd --add-port=39442/tcp",
                  "firewall-cmd --list-ports",
                  "firewall-cmd --permanent --remove-port=39441/tcp && firewall-cmd --remove-port=39441/tcp"),
    "ufw": ("ufw allow 39441/tcp", None, "ufw status verbose; iptables-save | grep -v '^#' | sed 's/\\[[0-9:]*\\]//'",
            "ufw delete allow 39441/tcp"),
    "susefirewall2": ("sed -i 's/^FW_SERVICES_EXT_TCP=\"/&39441 /' /etc/sysconfig/SuSEfirewall2 && SuSEfirewall2 start",
                      None, "iptables-save | grep -v '^#' | sed 's/\\[[0-9:]*\\]//'",
                      "sed -i 's/^\\(FW_SERVICES_EXT_TCP=\"\\)39441 /\\1/' /etc/sysconfig/SuSEfirewall2 "
                      "&& SuSEfirewall2 start"),
}


@pytest.mark.parametrize("firewall", sorted(REBOOT))
def test_reboot_firewall_restores_boot_config(lab, firewall):
    """kplab reboot-firewall clears the host's netfilter state (a foreign nft table goes) and the
    firewall's boot path brings back its persistent rules, not runtime-only ones."""
    hosts = lab.by_firewall(firewall)
    if not hosts:
        pytest.skip("no %s host in this lab" % firewall)
    host = hosts[0]
    persistent, runtime_only, state, cleanup = REBOOT[firewall]
    assert lab.exec(host, ["sh", "-ec", persistent]).returncode == 0
    try:
        before = lab.exec(host, ["sh", "-c", state]).stdout
        if runtime_only:
            assert lab.exec(host, ["sh", "-ec", runtime_only]).returncode == 0
        assert lab.exec(host, "nft add table inet kplab-foreign").returncode == 0
        done = subprocess.run([sys.executable, str(KPLAB), "reboot-firewall", host], capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert "kplab-foreign" not in lab.exec(host, "nft list tables").stdout
        after = lab.exec(host, ["sh", "-c", state]).stdout
        if firewall == "ufw":
            # The collection's peer-set block holds only ACCEPT rules: the running chain may hold
            # them in another order than after.rules, which the boot path loads.
            assert sorted(after.splitlines()) == sorted(before.splitlines())
        else:
            assert after == before
        assert "39441" in after
        if firewall == "firewalld":
            assert lab.exec(host, "firewall-cmd --state").stdout.strip() == "running"
            assert "39442" not in after
        listener = Listener(lab, host, "tcp", 39441)
        try:
            peer = [h for h in lab.hosts if h != host][0]
            assert probe(lab, peer, "tcp", 39441, lab.address(host)) == [listener.nonce]
        finally:
            listener.stop()
    finally:
        lab.exec(host, ["sh", "-c", cleanup])
