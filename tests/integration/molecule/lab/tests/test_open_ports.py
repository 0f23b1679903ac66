"""Verify (testinfra) after converging playbooks/open-ports.yml on the lab.

Assumptions about the converge, with the groups of inventory/10-cluster.yml:
- every host keeps its firewall running and still accepts a NEW SSH connection on its port;
- kube-apiserver 6443/tcp is reachable on kube_control_plane hosts from another lab host;
- kubelet 10250/tcp is reachable on every k8s_cluster host from a control plane host;
- a port no rule names (39499/tcp) stays closed: default deny is still in effect;
- the converge also ran playbooks/verify.yml (twice, with idempotence): no temporary
  listener is left on any host.
Probes use a listener with a bounded lifetime on the target and a probe run on a peer.
"""

import os
import shlex
import subprocess
import uuid

import pytest
import testinfra

INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE")
if not INVENTORY:
    pytest.skip("runs as molecule's verifier only (molecule test -s lab)", allow_module_level=True)

testinfra_hosts = ["ansible://lab"]
LISTENER_LIFETIME = 20
UNUSED_PORT = 39499

LISTENER = (
    "import socket,sys,time,select\n"
    "p,n,t=int(sys.argv[1]),sys.argv[2].encode(),float(sys.argv[3])\n"
    "s=socket.socket(socket.AF_INET6);s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,0)\n"
    "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('::',p));s.listen(8)\n"
    "e=time.monotonic()+t\n"
    "while time.monotonic()<e:\n"
    " if select.select([s],[],[],1)[0]:\n"
    "  c,_=s.accept();c.sendall(n);c.close()\n"
)
PROBE = (
    "import socket,sys\n"
    "s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=2)\n"
    "print(s.recv(128).decode())\n"
)


def _hostvars(host):
    return host.ansible.get_variables()


def _host(name):
    return testinfra.get_host("ansible://%s" % name, ansible_inventory=_inventory_dir())


def _inventory_dir():
    return os.path.dirname(INVENTORY) if INVENTORY else None


def _group(host, name):
    return name in _hostvars(host).get("group_names", [])


def _reachable(target, peer, port):
    """Starts a listener on target, probes it from peer; returns (nonce seen?, detail)."""
    nonce = "kplab-" + uuid.uuid4().hex
    started = target.run("nohup timeout %d python3 -c %s %d %s %d >/dev/null 2>&1 & echo $!" % (
        LISTENER_LIFETIME + 5, shlex.quote(LISTENER), port, nonce, LISTENER_LIFETIME))
    pid = int(started.stdout.strip())
    try:
        ready = False
        for _attempt in range(50):
            if target.run("ss -Htln 'sport = :%d'" % port).stdout.strip():
                ready = True
                break
            target.run("sleep 0.1")
        assert ready, "listener on %d did not start" % port
        address = _hostvars(target)["ansible_host"]
        out = peer.run("python3 -c %s %s %d" % (shlex.quote(PROBE), address, port))
    finally:
        target.run("kill %d 2>/dev/null || true" % pid)
    return nonce in out.stdout, out.stdout + out.stderr


def _peer(host, group=None):
    vars_ = _hostvars(host)
    for name in vars_["groups"][group or "lab"]:
        if name != vars_["inventory_hostname"]:
            return _host(name)
    pytest.skip("no peer")


def test_firewall_still_running(host):
    firewall = _hostvars(host)["lab_firewall"]
    if firewall == "firewalld":
        assert host.run("firewall-cmd --state").stdout.strip() == "running"
    elif firewall == "ufw":
        assert "Status: active" in host.run("ufw status").stdout
    elif firewall == "susefirewall2":
        assert host.file("/etc/sysconfig/SuSEfirewall2").exists
        assert host.run("SuSEfirewall2 status").rc == 0


def test_sshd_listening(host):
    port = _hostvars(host)["ansible_port"]
    assert host.socket("tcp://0.0.0.0:%d" % port).is_listening


def test_new_ssh_connection_still_accepted(host):
    """A fresh connection (no ControlMaster) proves the converge did not lock SSH out."""
    v = _hostvars(host)
    cmd = ["ssh", "-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "BatchMode=yes",
           "-o", "ConnectTimeout=10", "-i", v["ansible_ssh_private_key_file"],
           "-p", str(v["ansible_port"])] + shlex.split(v.get("ansible_ssh_common_args", "")) + \
          ["root@" + v["ansible_host"], "hostname"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0 and out.stdout.strip() == v["inventory_hostname"], out.stderr


def test_apiserver_port_open(host):
    if not _group(host, "kube_control_plane"):
        pytest.skip("not a control plane host")
    ok, detail = _reachable(host, _peer(host), 6443)
    assert ok, detail


def test_kubelet_port_open_to_control_plane(host):
    if not _group(host, "k8s_cluster"):
        pytest.skip("not a cluster host")
    ok, detail = _reachable(host, _peer(host, "kube_control_plane"), 10250)
    assert ok, detail


def test_unlisted_port_stays_closed(host):
    if _hostvars(host)["lab_firewall"] == "none":
        pytest.skip("no firewall")
    ok, detail = _reachable(host, _peer(host), UNUSED_PORT)
    assert not ok, detail


def test_firewall_lists_apiserver_port(host):
    """The backend's own state names 6443 (not only the probe)."""
    if not _group(host, "kube_control_plane"):
        pytest.skip("not a control plane host")
    firewall = _hostvars(host)["lab_firewall"]
    if firewall == "firewalld":
        text = host.run("firewall-cmd --list-all-zones; firewall-cmd --list-all-policies").stdout
        text += host.run("firewall-cmd --permanent --list-all-zones").stdout
    elif firewall == "ufw":
        # ufw's own rules, and the peer-set rules of its after rules (ufw_peer_sets).
        text = host.run("ufw status").stdout + "\n".join(host.iptables.rules("filter", "ufw-after-input"))
    elif firewall == "susefirewall2":
        text = host.file("/etc/sysconfig/SuSEfirewall2").content_string
    else:
        pytest.skip("no firewall")
    assert "6443" in text


def test_no_verify_listener_left(host):
    """The verify play's listeners are gone: no socket but sshd's, no listener record."""
    sockets = host.run("ss -Htlnup").stdout.splitlines()
    assert [line for line in sockets if "sshd" not in line] == []
    assert not host.file("/run/kubeports/verify-listeners.json").exists
