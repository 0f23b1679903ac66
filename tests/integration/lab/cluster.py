"""Kubernetes-like cluster traffic inside the lab (tests/integration/lab/kplab), for tests.

Everything here runs inside lab hosts (their network and mount namespaces) through the
``lab`` object of tests/integration/conftest.py (``exec``, ``spawn``, ``address``); nothing
touches the machine's own network namespace. Every process started has a lifetime
(``timeout``), is recorded by PID in the lab's state directory (so ``kplab down`` stops it)
and can be stopped by PID here. See docs/lab.md, "Cluster traffic".

Components (each ``*_up`` returns an object; each ``prove_*`` returns per-pair results):

- ``overlay_up``: pod network (flannel VXLAN + cni0 bridge, Calico VXLAN routed, Calico IPIP),
  pods as network namespaces nested in the hosts, echo servers in pods and on nodes, the
  kube-proxy NodePort and flannel masquerade emulation in ``table ip/ip6 kplab-kubeproxy``.
- ``attack_vxlan`` / ``attack_direct`` and ``wait_arrivals``: hand-built packets from an
  outsider and whether their nonce reached a pod or a node.
- ``etcd_up`` / ``prove_etcd``: a static etcd cluster (Debian's etcd-server).
- ``bgp_up`` / ``prove_bgp``: BIRD 2 iBGP full mesh (Debian's bird2).
- ``reboot_firewall``: ``kplab reboot-firewall HOST``, then the overlay's netfilter pieces
  put back (as kube-proxy and flannel would after a real reboot).
"""

import ipaddress
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
KPLAB = os.path.join(HERE, "kplab")
KPNET_SOURCE = os.path.join(HERE, "kpnet")
STATE = os.environ.get("KPLAB_STATE_DIR", "/var/tmp/kplab")
# Inside each host's private /run (gone with the host).
RUN_DIR = "/run/kplab-cluster"
KPNET = RUN_DIR + "/kpnet"
PYTHON = "/usr/bin/python3"
NAT_TABLE = "kplab-kubeproxy"
MASQ_MARK = "0x00004000"

MODES = {
    # mode: vxlan/ipip device names, port, VNI, bridge, host-side veth prefix
    "flannel": {"encap": "vxlan", "device": "flannel.1", "device6": "flannel-v6.1", "port": 8472,
                "vni": 1, "bridge": "cni0", "veth": "veth"},
    "calico-vxlan": {"encap": "vxlan", "device": "vxlan.calico", "device6": "vxlan-v6.calico",
                     "port": 4789, "vni": 4096, "bridge": None, "veth": "cali"},
    "calico-ipip": {"encap": "ipip", "device": "tunl0", "device6": None, "port": None, "vni": None,
                    "bridge": None, "veth": "cali"},
}
# Calico's host-side veth MAC and the link-local address it implies (the pods' IPv6 gateway).
CALICO_MAC = "ee:ee:ee:ee:ee:ee"
CALICO_LL6 = "fe80::ecee:eeff:feee:eeee"
CALICO_GW4 = "169.254.1.1"


class ClusterError(Exception):
    pass


# ---------------------------------------------------------------- helpers

def run_in(lab, host, argv, timeout=60, check=True, input=None):
    """Runs argv inside a lab host; returns CompletedProcess."""
    proc = lab.exec(host, argv, timeout=timeout, check=False, input=input)
    if check and proc.returncode != 0:
        raise ClusterError("%s: %s failed (%d):\n%s%s" % (
            host, " ".join(argv)[:300], proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
    return proc


def sh(lab, host, script, timeout=60, check=True, input=None):
    return run_in(lab, host, ["/bin/sh", "-ec", script], timeout=timeout, check=check, input=input)


def parallel(func, items):
    """func(item) for every item concurrently; returns the results in order (errors re-raised)."""
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(items))) as pool:
        return list(pool.map(func, items))


def _holder_record(host):
    """The lab's PID record of the host's holder (changes with every bring-up)."""
    try:
        with open(os.path.join(STATE, "pids", host + ".holder")) as fh:
            return fh.read().strip()
    except OSError:
        return None


def install_tools(lab, hosts):
    """Copies kpnet into each host's private /run (once per host and bring-up of the host)."""
    with open(KPNET_SOURCE) as fh:
        source = fh.read()
    done = getattr(lab, "_kpcluster_tools", None)
    if done is None:
        done = lab._kpcluster_tools = set()
    todo = [h for h in dict.fromkeys(hosts) if (h, _holder_record(h)) not in done]

    def install(host):
        sh(lab, host, "mkdir -p %s && cat > %s && chmod 755 %s" % (RUN_DIR, KPNET, KPNET), input=source)
        done.add((host, _holder_record(host)))

    parallel(install, todo)


def has_ipv6(lab, host):
    try:
        return bool(lab.address(host, 6))
    except (KeyError, TypeError):
        return False


def proc_start_time(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def record_pid(label, pid):
    """Records a PID the way kplab does, so that 'kplab down' stops it too."""
    directory = os.path.join(STATE, "pids")
    if not os.path.isdir(directory):
        return None
    with open("/proc/sys/kernel/random/boot_id") as fh:
        boot = fh.read().strip()
    path = os.path.join(directory, label)
    with open(path, "w") as fh:
        fh.write("%d %s %s\n" % (pid, proc_start_time(pid), boot))
    return path


class Process:
    """A process started inside a lab host by this module (PID recorded, output collected).

    stdout lines that are JSON objects are kept in ``events``; stderr's last lines in ``stderr``.
    """

    def __init__(self, lab, host, argv, label):
        self.host = host
        self.label = label
        self.argv = argv
        self.proc = lab.spawn(host, argv)
        self.pid = self.proc.pid
        self.started = proc_start_time(self.pid)
        self.record = record_pid(label, self.pid)
        self.events = []
        self.stdout = deque(maxlen=200)
        self.stderr = deque(maxlen=200)
        self.closed = False
        self.cond = threading.Condition()
        self.threads = [threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
                        threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True)]
        for thread in self.threads:
            thread.start()

    def _read(self, stream, is_stdout):
        for line in stream:
            with self.cond:
                if is_stdout:
                    self.stdout.append(line)
                    try:
                        event = json.loads(line)
                    except ValueError:
                        event = None
                    if isinstance(event, dict):
                        self.events.append(event)
                else:
                    self.stderr.append(line)
                self.cond.notify_all()
        if is_stdout:
            with self.cond:
                self.closed = True
                self.cond.notify_all()

    def wait_event(self, predicate, timeout):
        """The first event matching predicate, waiting at most timeout seconds (None if none)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            for dummy_round in range(100000):
                for event in self.events:
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return None
                self.cond.wait(left)
        return None

    def matching(self, predicate):
        with self.cond:
            return [e for e in self.events if predicate(e)]

    def alive(self):
        return self.proc.poll() is None

    def stop(self, grace=5.0):
        """SIGTERM, then SIGKILL after grace, by PID (only while it is still our process)."""
        if self.proc.poll() is None and proc_start_time(self.pid) == self.started:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                if proc_start_time(self.pid) == self.started:
                    self.proc.kill()
                self.proc.wait(10)
        for thread in self.threads:
            thread.join(5)
        if self.record and os.path.exists(self.record):
            os.unlink(self.record)

    def output(self):
        with self.cond:
            return "".join(self.stdout)[-3000:] + "".join(self.stderr)[-3000:]


def wait_ready(processes, timeout):
    """Waits (bounded) until every kpnet server printed its ready line."""
    deadline = time.monotonic() + timeout
    for proc in processes:
        left = max(0.1, deadline - time.monotonic())
        if proc.wait_event(lambda e: e.get("event") == "ready", left) is None:
            raise ClusterError("%s on %s did not become ready:\n%s" % (proc.label, proc.host, proc.output()))


def probe(lab, host, targets, netns=None, timeout=2.0, source=None):
    """Runs kpnet probe in a host (or in its pod netns): a list of result dicts."""
    if not targets:
        return []
    argv = ["timeout", str(int(timeout * 2 + 15)), PYTHON, KPNET, "probe", "--timeout", str(timeout)]
    if source:
        argv += ["--source", source]
    argv += list(targets)
    if netns:
        argv = ["ip", "netns", "exec", netns] + argv
    proc = run_in(lab, host, argv, timeout=timeout * 2 + 30)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def target(proto, address, port):
    return "%s:%s:%d" % (proto, "[%s]" % address if ":" in address else address, port)


def host_mac(lab, host, dev="eth0"):
    return run_in(lab, host, ["cat", "/sys/class/net/%s/address" % dev]).stdout.strip()


# ---------------------------------------------------------------- pod overlay

class Pod:
    def __init__(self, node, index, netns, veth, addr4, addr6):
        self.node, self.index, self.netns, self.veth = node, index, netns, veth
        self.addr = {4: addr4, 6: addr6}
        self.name = "%s-pod%d" % (node, index)
        self.server = None

    def __repr__(self):
        return "Pod(%s %s %s)" % (self.name, self.addr[4], self.addr[6])


class Overlay:
    """A pod network over lab hosts (see overlay_up)."""

    def __init__(self, lab, nodes, mode, families, settings):
        self.lab = lab
        self.nodes = list(nodes)
        self.mode = mode
        self.families = tuple(families)
        self.__dict__.update(settings)
        self.skipped = None
        self.pods = {}           # node -> [Pod]
        self.node_servers = {}   # node -> Process
        self.subnet = {}         # (node, family) -> ip_network of the node's pod subnet
        self.vtep = {}           # (node, family) -> address on the vxlan/ipip device
        self.gateway = {}        # (node, family) -> address pods use as next hop
        self.device_mac = {}     # (node, family) -> MAC of the vxlan device carrying family
        self.eth_mac = {}        # node -> MAC of the node's lab interface (eth0)
        self.nodeport_pod = None

    # -- addressing
    def device_for(self, family):
        if family == 6 and self.v6_underlay and self.device6:
            return self.device6
        return self.device

    def underlay_family(self, family):
        return 6 if family == 6 and self.v6_underlay and self.device6 else 4

    def host_addresses(self, node, family):
        """Addresses of the node's host-network listener: lab address and pod-network address."""
        return [self.lab.address(node, family), self.gateway_or_vtep(node, family)]

    def gateway_or_vtep(self, node, family):
        return self.gateway[(node, family)] if self.bridge else self.vtep[(node, family)]

    def pod(self, node, index=0):
        return self.pods[node][index]

    def all_pods(self):
        return [p for node in self.nodes for p in self.pods.get(node, [])]

    def processes(self):
        procs = [p.server for p in self.all_pods() if p.server] + list(self.node_servers.values())
        return [p for p in procs if p]


def _subnets(pod_cidr4, pod_cidr6, k):
    net4 = ipaddress.ip_network(pod_cidr4)
    net6 = ipaddress.ip_network(pod_cidr6)
    if net4.prefixlen > 24 or net6.prefixlen > 64:
        raise ClusterError("pod CIDRs must be at most /24 (IPv4) and /64 (IPv6)")
    sub4 = ipaddress.ip_network((int(net4.network_address) + (k << 8), 24))
    sub6 = ipaddress.ip_network((int(net6.network_address) + (k << 64), 64))
    return sub4, sub6


def _mac(k, family):
    return "0e:6b:70:%02x:%02x:%02x" % ((k >> 8) & 255, k & 255, family)


def overlay_up(lab, nodes, mode="flannel", port=None, vni=None, device=None, device6=None,
               pod_cidr4="10.244.0.0/16", pod_cidr6="fd00:10:244::/56", families=None,
               v6_underlay=True, pods_per_node=1, echo_port=8080, host_ports=(53,),
               nodeport=30080, nodeport_node=None, lifetime=600, start_servers=True):
    """Builds a pod network on lab hosts ``nodes`` and starts echo servers; returns an Overlay.

    mode: ``flannel`` (VXLAN ``flannel.1``/``flannel-v6.1``, port 8472, bridge ``cni0``; pass
    port=4789 for RKE2's flannel), ``calico-vxlan`` (``vxlan.calico``/``vxlan-v6.calico``, port
    4789, VNI 4096, routed ``cali*`` veths, no bridge) or ``calico-ipip`` (``tunl0``, protocol 4,
    IPv4 only; when the kernel cannot create it, the Overlay has ``skipped`` set to the reason
    and nothing else is done). Node *k* (0-based, in ``nodes`` order) gets the *k*-th /24 of
    pod_cidr4 and the *k*-th /64 of pod_cidr6. families: (4,) or (4, 6) (default: 6 too when
    every node has an IPv6 lab address). v6_underlay: IPv6 pod traffic in its own VXLAN device
    over the IPv6 lab addresses (as flannel's dual stack does); else both families share the
    IPv4 device. Each pod runs an echo server (TCP and UDP ``echo_port``); each node one on
    ``host_ports`` (bound to its lab and pod-network addresses). ``nodeport`` (TCP and UDP) on
    every node is DNAT'd to pod 0 of ``nodeport_node`` (default: the last node), masqueraded.
    Every server lives at most ``lifetime`` seconds.
    """
    if mode not in MODES:
        raise ClusterError("mode must be one of %s" % sorted(MODES))
    if len(nodes) < 1 or len(nodes) > 200:
        raise ClusterError("1 to 200 nodes")
    settings = dict(MODES[mode])
    settings.update({k: v for k, v in (("device", device), ("device6", device6), ("port", port),
                                       ("vni", vni)) if v is not None})
    if families is None:
        families = (4, 6) if all(has_ipv6(lab, n) for n in nodes) else (4,)
    if settings["encap"] == "ipip":
        families = (4,)
        v6_underlay = False
    settings.update(v6_underlay=bool(v6_underlay), pod_cidr4=pod_cidr4, pod_cidr6=pod_cidr6,
                    pods_per_node=pods_per_node, echo_port=echo_port, host_ports=tuple(host_ports),
                    nodeport=nodeport, lifetime=lifetime)
    ov = Overlay(lab, nodes, mode, families, settings)
    install_tools(lab, nodes)
    if settings["encap"] == "ipip":
        reason = ipip_unavailable(lab, nodes[0])
        if reason:
            ov.skipped = reason
            return ov
    for k, node in enumerate(nodes):
        sub4, sub6 = _subnets(pod_cidr4, pod_cidr6, k)
        ov.subnet[(node, 4)], ov.subnet[(node, 6)] = sub4, sub6
        ov.vtep[(node, 4)], ov.vtep[(node, 6)] = str(sub4[0]), str(sub6[0])
        if ov.bridge:
            ov.gateway[(node, 4)], ov.gateway[(node, 6)] = str(sub4[1]), str(sub6[1])
        else:
            ov.gateway[(node, 4)], ov.gateway[(node, 6)] = CALICO_GW4, CALICO_LL6
        for family in (4, 6):
            ov.device_mac[(node, family)] = _mac(k, 6 if ov.device_for(family) == ov.device6 else 4)
        ov.pods[node] = []
        for j in range(pods_per_node):
            veth = ("%s%x%02x%02x" % (ov.veth, 0xa, k, j))[:15]
            ov.pods[node].append(Pod(node, j, "kp-pod%d" % j, veth, str(sub4[2 + j]), str(sub6[2 + j])))
    ov.nodeport_pod = ov.pod(nodeport_node or nodes[-1])

    def setup(node):
        sh(lab, node, _node_script(ov, node), timeout=120)
        ov.eth_mac[node] = host_mac(lab, node)

    parallel(setup, nodes)
    restore_netfilter(lab, ov)
    if start_servers:
        start_overlay_servers(lab, ov)
    return ov


def ipip_unavailable(lab, node):
    """None when the host can have an IPIP device (tunl0), else the reason."""
    proc = sh(lab, node, "ip link show tunl0 >/dev/null 2>&1 || ip link add tunl0 type ipip", check=False)
    if proc.returncode != 0:
        return "IPIP (tunl0) cannot be created in a lab namespace on this kernel: " + \
            (proc.stderr.strip() or proc.stdout.strip())[:200]
    return None


def _node_script(ov, node):
    """Shell commands that build one node's part of the pod network."""
    k = ov.nodes.index(node)
    lines = ["sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1"]
    under = {4: ov.lab.address(node, 4)}
    if 6 in ov.families and ov.v6_underlay:
        under[6] = ov.lab.address(node, 6)
    devices = []
    if ov.encap == "vxlan":
        devices.append((ov.device, 4))
        if 6 in ov.families and ov.v6_underlay and ov.device6:
            devices.append((ov.device6, 6))
        for dev, ufam in devices:
            lines += [
                "ip link add %s type vxlan id %d local %s dev eth0 dstport %d nolearning" % (
                    dev, ov.vni, under[ufam], ov.port),
                "ip link set %s address %s" % (dev, _mac(k, ufam)),
                "ip link set %s up" % dev,
            ]
    else:
        lines += ["ip link show tunl0 >/dev/null 2>&1 || ip link add tunl0 type ipip",
                  "ip link set tunl0 up"]
    for family in ov.families:
        dev = ov.device_for(family)
        plen = 32 if family == 4 else 128
        lines.append("ip -%d addr add %s/%d dev %s%s" % (family, ov.vtep[(node, family)], plen, dev,
                                                         " nodad" if family == 6 else ""))
    mtu = 1400
    if ov.bridge:
        lines += ["ip link add %s type bridge" % ov.bridge, "ip link set %s mtu %d" % (ov.bridge, mtu)]
        for family in ov.families:
            sub = ov.subnet[(node, family)]
            lines.append("ip -%d addr add %s/%d dev %s%s" % (family, ov.gateway[(node, family)], sub.prefixlen,
                                                             ov.bridge, " nodad" if family == 6 else ""))
        lines.append("ip link set %s up" % ov.bridge)
    # Routes to the other nodes' pod subnets, with flannel-style static neighbour and FDB entries.
    for peer in ov.nodes:
        if peer == node:
            continue
        for family in ov.families:
            dev = ov.device_for(family)
            sub = ov.subnet[(peer, family)]
            if ov.encap == "ipip":
                lines.append("ip route add %s via %s dev tunl0 onlink" % (sub, ov.lab.address(peer, 4)))
                continue
            mac = ov.device_mac[(peer, family)]
            lines += ["ip -%d route add %s via %s dev %s onlink" % (family, sub, ov.vtep[(peer, family)], dev),
                      "ip -%d neigh replace %s lladdr %s dev %s nud permanent" % (
                          family, ov.vtep[(peer, family)], mac, dev)]
        if ov.encap == "vxlan":
            for dev, ufam in devices:
                lines.append("bridge fdb append %s dev %s dst %s" % (
                    _mac(ov.nodes.index(peer), ufam), dev, ov.lab.address(peer, ufam)))
    for pod in ov.pods[node]:
        ns = pod.netns
        lines += ["ip netns add %s" % ns,
                  "ip link add %s type veth peer name eth0 netns %s" % (pod.veth, ns),
                  "ip link set %s mtu %d" % (pod.veth, mtu),
                  "ip -n %s link set lo up" % ns,
                  "ip -n %s link set eth0 mtu %d up" % (ns, mtu)]
        if ov.bridge:
            lines.append("ip link set %s master %s up" % (pod.veth, ov.bridge))
            for family in ov.families:
                sub = ov.subnet[(node, family)]
                lines += ["ip -n %s -%d addr add %s/%d dev eth0%s" % (
                    ns, family, pod.addr[family], sub.prefixlen, " nodad" if family == 6 else ""),
                    "ip -n %s -%d route add default via %s dev eth0" % (ns, family, ov.gateway[(node, family)])]
        else:
            # Calico: a routed veth per pod, proxy ARP, a fixed link-local gateway for IPv6.
            lines += ["ip link set %s address %s" % (pod.veth, CALICO_MAC),
                      "sysctl -qw net.ipv4.conf.%s.proxy_arp=1" % pod.veth,
                      "sysctl -qw net.ipv6.conf.%s.addr_gen_mode=1" % pod.veth,
                      "ip link set %s up" % pod.veth]
            for family in ov.families:
                plen = 32 if family == 4 else 128
                lines += ["ip -n %s -%d addr add %s/%d dev eth0%s" % (
                    ns, family, pod.addr[family], plen, " nodad" if family == 6 else ""),
                    "ip -%d route add %s/%d dev %s scope link" % (family, pod.addr[family], plen, pod.veth)]
            # The pods' static neighbour entries for the gateway, as Calico's CNI plugin adds.
            lines += ["ip -n %s route add %s dev eth0 scope link" % (ns, CALICO_GW4),
                      "ip -n %s route add default via %s dev eth0" % (ns, CALICO_GW4),
                      "ip -n %s neigh replace %s lladdr %s dev eth0 nud permanent" % (ns, CALICO_GW4, CALICO_MAC)]
            if 6 in ov.families:
                lines += ["ip -6 addr add %s/64 dev %s nodad" % (CALICO_LL6, pod.veth),
                          "ip -n %s -6 route add default via %s dev eth0" % (ns, CALICO_LL6),
                          "ip -n %s -6 neigh replace %s lladdr %s dev eth0 nud permanent" % (
                              ns, CALICO_LL6, CALICO_MAC)]
    return "\n".join(lines) + "\n"


def nat_ruleset(ov, node):
    """nft script of the node's kube-proxy NodePort DNAT and flannel masquerade emulation."""
    out = []
    for family in ov.families:
        table = "ip" if family == 4 else "ip6"
        saddr = "ip saddr" if family == 4 else "ip6 saddr"
        daddr = "ip daddr" if family == 4 else "ip6 daddr"
        pod_net = ov.pod_cidr4 if family == 4 else ov.pod_cidr6
        multicast = "224.0.0.0/4" if family == 4 else "ff00::/8"
        target = ov.nodeport_pod.addr[family]
        target = target if family == 4 else "[%s]" % target
        out += ["table %s %s" % (table, NAT_TABLE), "delete table %s %s" % (table, NAT_TABLE),
                "table %s %s {" % (table, NAT_TABLE),
                "  chain prerouting {",
                "    type nat hook prerouting priority dstnat; policy accept;"]
        for proto in ("tcp", "udp"):
            out.append("    fib daddr type local %s dport %d meta mark set mark | %s dnat to %s:%d" % (
                proto, ov.nodeport, MASQ_MARK, target, ov.echo_port))
        out += ["  }",
                "  chain postrouting {",
                "    type nat hook postrouting priority srcnat; policy accept;",
                "    meta mark & %s == %s masquerade" % (MASQ_MARK, MASQ_MARK),
                "    %s %s %s != %s %s != %s masquerade" % (saddr, pod_net, daddr, pod_net, daddr, multicast),
                "  }",
                "}"]
    return "\n".join(out) + "\n"


def restore_netfilter(lab, ov, hosts=None):
    """(Re)creates the overlay's nft tables on hosts (default: every node): what kube-proxy and
    the CNI put back after a reboot cleared the kernel's netfilter state."""
    if ov.skipped:
        return

    def apply(node):
        run_in(lab, node, ["nft", "-f", "-"], input=nat_ruleset(ov, node))

    parallel(apply, hosts or ov.nodes)


def start_overlay_servers(lab, ov):
    """Echo servers in every pod and on every node (sniffing for marked packets too)."""
    life = str(int(ov.lifetime))
    for node in ov.nodes:
        for pod in ov.pods[node]:
            argv = ["ip", "netns", "exec", pod.netns, "timeout", "-k", "5", life, PYTHON, KPNET, "serve",
                    "--name", pod.name, "--tcp", str(ov.echo_port), "--udp", str(ov.echo_port),
                    "--sniff", "--lifetime", life]
            for family in ov.families:
                argv += ["--bind", pod.addr[family]]
            pod.server = Process(lab, node, argv, "%s.cluster-%s" % (node, pod.name))
        argv = ["timeout", "-k", "5", life, PYTHON, KPNET, "serve", "--name", node + "-host", "--sniff",
                "--lifetime", life]
        for port in ov.host_ports:
            argv += ["--tcp", str(port), "--udp", str(port)]
        for family in ov.families:
            for address in ov.host_addresses(node, family):
                if not address.startswith("fe80"):
                    argv += ["--bind", address]
        ov.node_servers[node] = Process(lab, node, argv, "%s.cluster-host" % node)
    wait_ready(ov.processes(), 30)


def overlay_down(lab, ov):
    """Stops the overlay's servers and removes its pods, devices and nft tables."""
    for proc in ov.processes():
        proc.stop()
    if ov.skipped:
        return

    def clean(node):
        lines = ["ip netns del %s 2>/dev/null || true" % p.netns for p in ov.pods.get(node, [])]
        for dev in (ov.device, ov.device6, ov.bridge):
            if dev and dev != "tunl0":
                lines.append("ip link del %s 2>/dev/null || true" % dev)
        if ov.encap == "ipip":
            lines.append("ip route flush dev tunl0 2>/dev/null || true")
            lines.append("ip addr flush dev tunl0 2>/dev/null || true")
        for table in ("ip", "ip6"):
            lines.append("nft delete table %s %s 2>/dev/null || true" % (table, NAT_TABLE))
        sh(lab, node, "\n".join(lines), check=False)

    parallel(clean, ov.nodes)


def _result(kind, src, dst, family, r):
    return {"kind": kind, "src": src, "dst": dst, "family": family, "proto": r.get("proto"),
            "address": r.get("address"), "port": r.get("port"), "ok": bool(r.get("ok")),
            "served_by": r.get("served_by"), "error": r.get("error"), "seconds": r.get("seconds")}


def prove_overlay(lab, ov, families=None, protos=("tcp", "udp"), client=None, timeout=2.0,
                  kinds=("pod_to_pod", "pod_to_host", "node_to_pod", "nodeport")):
    """Probes the overlay; returns {kind: [result, ...]} where a result is a dict with kind, src,
    dst, family, proto, address, port, ok, served_by, error, seconds. ``ok`` means the nonce came
    back; ``expected`` names the server that should have answered.

    pod_to_pod: pod 0 of every node to pod 0 of every other node (echo_port).
    pod_to_host: pod 0 of every node to every other node's host_ports, at its lab address and
      its pod-network address (cni0 gateway, or the VTEP address without a bridge).
    node_to_pod: every node (host network) to pod 0 of every other node.
    nodeport: ``client`` (default: the first lab host that is not a node; else the nodes
      themselves, each to the others) to the NodePort of every node; the answer must come from
      the NodePort's pod.
    """
    if ov.skipped:
        return {"skipped": ov.skipped}
    families = [f for f in (families or ov.families) if f in ov.families]
    jobs = []  # (host, netns, [(kind, src, dst, family, expected, target)])

    for node in ov.nodes:
        src_pod = ov.pod(node)
        pod_jobs, host_jobs = [], []
        for peer in ov.nodes:
            if peer == node:
                continue
            dst_pod = ov.pod(peer)
            for family in families:
                for proto in protos:
                    if "pod_to_pod" in kinds:
                        pod_jobs.append(("pod_to_pod", src_pod.name, dst_pod.name, family, dst_pod.name,
                                         target(proto, dst_pod.addr[family], ov.echo_port)))
                    if "pod_to_host" in kinds:
                        for address in ov.host_addresses(peer, family):
                            if address.startswith("fe80"):
                                continue
                            for port in ov.host_ports:
                                pod_jobs.append(("pod_to_host", src_pod.name, peer, family, peer + "-host",
                                                 target(proto, address, port)))
                    if "node_to_pod" in kinds:
                        host_jobs.append(("node_to_pod", node, dst_pod.name, family, dst_pod.name,
                                          target(proto, dst_pod.addr[family], ov.echo_port)))
        jobs.append((node, src_pod.netns, pod_jobs))
        jobs.append((node, None, host_jobs))
    if "nodeport" in kinds:
        clients = [client] if client else [h for h in lab.hosts if h not in ov.nodes][:1]
        expected = ov.nodeport_pod.name
        for cl in clients or ov.nodes:
            np_jobs = []
            for node in ov.nodes:
                if node == cl:
                    continue
                for family in families:
                    for proto in protos:
                        np_jobs.append(("nodeport", cl, node, family, expected,
                                        target(proto, lab.address(node, family), ov.nodeport)))
            jobs.append((cl, None, np_jobs))
    if client or [h for h in lab.hosts if h not in ov.nodes]:
        install_tools(lab, [j[0] for j in jobs])

    def run_job(job):
        host, netns, items = job
        results = probe(lab, host, [i[5] for i in items], netns=netns, timeout=timeout)
        out = []
        for item, r in zip(items, results):
            res = _result(item[0], item[1], item[2], item[3], r)
            res["expected"] = item[4]
            if res["ok"] and res["served_by"] != item[4]:
                res["ok"] = False
                res["error"] = "answered by %s" % res["served_by"]
            out.append(res)
        return out

    report = {kind: [] for kind in kinds}
    for results in parallel(run_job, [j for j in jobs if j[2]]):
        for res in results:
            report[res["kind"]].append(res)
    return report


def failures(report):
    """The results of a prove_* report that are not ok (flattened)."""
    out = []
    for value in report.values():
        if isinstance(value, list):
            out += [r for r in value if isinstance(r, dict) and not r.get("ok")]
    return out


def ipip_up(lab, nodes, **kwargs):
    """overlay_up(mode='calico-ipip'): check ``.skipped`` for the reason it could not be built."""
    return overlay_up(lab, nodes, mode="calico-ipip", **kwargs)


# ---------------------------------------------------------------- attacker traffic

def _nonce():
    return "atk%013x" % random.getrandbits(52)


def _ensure_macs(lab, ov, node):
    if node not in ov.eth_mac:
        ov.eth_mac[node] = host_mac(lab, node)
    return ov.eth_mac[node]


def attack_vxlan(lab, ov, attacker, node, spoof=None, family=4, proto="udp", pod_index=0,
                 inner_src=None, count=3):
    """From ``attacker`` (a lab host), sends a VXLAN packet with the overlay's VNI to ``node``'s
    VXLAN port, carrying an inner frame to the device's MAC, inner IP ``family`` to a pod on
    ``node`` (its echo port; UDP or a TCP SYN with data). The outer source is the attacker's
    lab address, or ``spoof`` (e.g. a pod address or another node's address); the inner
    source defaults to pod 0 of another node. Returns a dict describing what was sent (with
    the nonce and the listener that would see it); pass it to wait_arrivals."""
    if ov.encap != "vxlan":
        raise ClusterError("attack_vxlan needs a VXLAN overlay")
    install_tools(lab, [attacker])
    ufam = ov.underlay_family(family)
    dst_pod = ov.pod(node, pod_index)
    other = [n for n in ov.nodes if n != node]
    inner_src = inner_src or (ov.pod(other[0]).addr[family] if other else lab.address(attacker, family))
    outer_src = spoof or lab.address(attacker, ufam)
    nonce = _nonce()
    argv = ["timeout", "30", PYTHON, KPNET, "send", "--dev", "eth0", "--dst-mac", ov.device_mac[(node, family)],
            "--src-mac", "0e:66:66:66:66:%02x" % (ufam,), "--src", inner_src, "--dst", dst_pod.addr[family],
            "--proto", proto, "--dport", str(ov.echo_port), "--nonce", nonce, "--count", str(count),
            "--vxlan-to", lab.address(node, ufam), "--vxlan-from", outer_src,
            "--vxlan-mac", _ensure_macs(lab, ov, node), "--vxlan-port", str(ov.port), "--vni", str(ov.vni)]
    sent = json.loads(run_in(lab, attacker, argv).stdout.strip().splitlines()[-1])
    return {"kind": "vxlan", "attacker": attacker, "node": node, "outer_src": outer_src,
            "outer_dst": lab.address(node, ufam), "port": ov.port, "vni": ov.vni, "inner_src": inner_src,
            "inner_dst": dst_pod.addr[family], "dport": ov.echo_port, "proto": proto, "family": family,
            "nonce": nonce, "sent": sent["sent"], "listener": dst_pod.server}


def attack_direct(lab, ov, attacker, node, port, proto="udp", family=4, spoof=None, to_pod=False,
                  pod_index=0, count=3):
    """From ``attacker``, sends a hand-built UDP datagram or TCP SYN (with the nonce as data) in
    an Ethernet frame to ``node``'s lab interface: to the node's own lab address and ``port``
    (a restricted port), or with ``to_pod`` to a pod of ``node`` (the node as next hop, so the
    node must route it). The source is ``spoof`` (default: pod 0 of another node, a pod-network
    address). Returns a dict for wait_arrivals."""
    install_tools(lab, [attacker])
    other = [n for n in ov.nodes if n != node]
    src = spoof or (ov.pod(other[0]).addr[family] if other else ov.pod(node, pod_index).addr[family])
    if to_pod:
        dst, listener = ov.pod(node, pod_index).addr[family], ov.pod(node, pod_index).server
    else:
        dst, listener = lab.address(node, family), ov.node_servers.get(node)
    nonce = _nonce()
    argv = ["timeout", "30", PYTHON, KPNET, "send", "--dev", "eth0", "--dst-mac", _ensure_macs(lab, ov, node),
            "--src", src, "--dst", dst, "--proto", proto, "--dport", str(port), "--nonce", nonce,
            "--count", str(count)]
    sent = json.loads(run_in(lab, attacker, argv).stdout.strip().splitlines()[-1])
    return {"kind": "direct-pod" if to_pod else "direct-node", "attacker": attacker, "node": node,
            "src": src, "dst": dst, "dport": port, "proto": proto, "family": family, "nonce": nonce,
            "sent": sent["sent"], "listener": listener}


def wait_arrivals(attacks, timeout=2.0):
    """Waits (at most timeout seconds in all) for each attack's nonce at its listener; returns
    the attacks (without the listener object) with ``arrived`` (bool) and ``events`` (what
    the listener recorded: proto, src, dst, dport, payload)."""
    deadline = time.monotonic() + timeout
    out = []
    for attack in attacks:
        listener = attack["listener"]
        nonce = attack["nonce"]

        def match(event, nonce=nonce):
            return event.get("event") == "recv" and nonce in event.get("payload", "")

        if listener is not None:
            listener.wait_event(match, max(0.0, deadline - time.monotonic()))
            events = listener.matching(match)
        else:
            events = []
        result = {k: v for k, v in attack.items() if k != "listener"}
        result.update(arrived=bool(events), events=events,
                      listener=listener.label if listener is not None else None)
        out.append(result)
    return out


# ---------------------------------------------------------------- etcd

class Etcd:
    def __init__(self, members, family, client_port, peer_port):
        self.members = list(members)
        self.family = family
        self.client_port = client_port
        self.peer_port = peer_port
        self.processes = {}
        self.urls = {}


def _url(address, port):
    return "http://%s:%d" % ("[%s]" % address if ":" in address else address, port)


def etcdctl(lab, host, endpoints, args, timeout=10):
    argv = ["env", "ETCDCTL_API=3", "timeout", str(timeout), "etcdctl", "--endpoints=" + ",".join(endpoints),
            "--dial-timeout=2s", "--command-timeout=%ds" % max(2, timeout - 2)] + list(args)
    return run_in(lab, host, argv, timeout=timeout + 20, check=False)


def etcd_up(lab, members, family=4, client_port=2379, peer_port=2380, lifetime=600, timeout=60):
    """A static etcd cluster (``etcd`` of Debian's etcd-server) with one member on each host in
    ``members``: peer and client URLs on the host's lab address of ``family`` (client also on
    127.0.0.1), data under the host's private /tmp, each member living at most ``lifetime``
    seconds. Waits (at most ``timeout``) until every endpoint is healthy; returns an Etcd."""
    et = Etcd(members, family, client_port, peer_port)
    cluster = ",".join("%s=%s" % (m, _url(lab.address(m, family), peer_port)) for m in members)
    for m in members:
        address = lab.address(m, family)
        et.urls[m] = _url(address, client_port)
        data = "/tmp/kplab-etcd/" + m
        argv = ["/bin/sh", "-c", 'rm -rf "$0" && mkdir -p "$0" && exec "$@"', data,
                "timeout", "-k", "5", str(int(lifetime)), "etcd", "--name", m, "--data-dir", data,
                "--listen-peer-urls", _url(address, peer_port),
                "--initial-advertise-peer-urls", _url(address, peer_port),
                "--listen-client-urls", "%s,%s" % (et.urls[m], _url("127.0.0.1", client_port)),
                "--advertise-client-urls", et.urls[m],
                "--initial-cluster", cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", "kplab", "--heartbeat-interval", "100",
                "--election-timeout", "1000", "--quota-backend-bytes", str(64 << 20),
                "--logger", "zap", "--log-level", "warn"]
        et.processes[m] = Process(lab, m, argv, "%s.cluster-etcd" % m)
    deadline = time.monotonic() + timeout
    endpoints = [et.urls[m] for m in members]
    for dummy_attempt in range(1000):
        proc = etcdctl(lab, members[0], endpoints, ["endpoint", "health", "-w", "json"], timeout=5)
        healthy = _health(proc.stdout)
        if len(healthy) == len(members) and all(h.get("health") for h in healthy):
            return et
        dead = [m for m, p in et.processes.items() if not p.alive()]
        if dead or time.monotonic() > deadline:
            detail = "\n".join("%s: %s" % (m, p.output()[-1500:]) for m, p in et.processes.items())
            etcd_down(et)
            raise ClusterError("etcd cluster not healthy (dead: %s):\n%s%s\n%s" % (
                dead, proc.stdout, proc.stderr, detail))
        time.sleep(0.2)
    raise ClusterError("etcd: no answer")


def _health(text):
    try:
        data = json.loads(text)
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def prove_etcd(lab, et, outsiders=(), timeout=2.0):
    """Returns {health: [...], members: [...], put_get: [...], outsiders: [...]}:

    health: for every member host, each endpoint's health as seen from it (etcdctl over the
      lab addresses): {src, dst, ok, error}.
    members: for every member, the member list its endpoint reports: {src, ok, names}.
    put_get: a key put through each member's endpoint, read (linearizable) through the next
      member's: {src, dst, ok, value}.
    outsiders: TCP connects from each outsider host to every member's client and peer port:
      {src, dst, port, ok (connected), error ('refused', 'timeout', ...)}.
    """
    endpoints = [et.urls[m] for m in et.members]
    report = {"health": [], "members": [], "put_get": [], "outsiders": []}

    def check(member):
        out = {"health": [], "members": [], "put_get": []}
        proc = etcdctl(lab, member, endpoints, ["endpoint", "health", "-w", "json"])
        seen = {h.get("endpoint"): h for h in _health(proc.stdout)}
        for dst in et.members:
            h = seen.get(et.urls[dst], {})
            out["health"].append({"src": member, "dst": dst, "ok": bool(h.get("health")),
                                  "error": h.get("error") or (None if h else proc.stderr.strip()[-300:])})
        proc = etcdctl(lab, member, [et.urls[member]], ["member", "list", "-w", "json"])
        try:
            names = sorted(m.get("name") for m in json.loads(proc.stdout).get("members", []))
        except ValueError:
            names = []
        out["members"].append({"src": member, "ok": names == sorted(et.members), "names": names,
                               "error": None if proc.returncode == 0 else proc.stderr.strip()[-300:]})
        nxt = et.members[(et.members.index(member) + 1) % len(et.members)]
        key, value = "/kplab/%s" % member, _nonce()
        put = etcdctl(lab, member, [et.urls[member]], ["put", key, value])
        get = etcdctl(lab, nxt, [et.urls[nxt]], ["get", key, "--print-value-only"])
        out["put_get"].append({"src": member, "dst": nxt, "ok": put.returncode == 0 and get.stdout.strip() == value,
                               "value": get.stdout.strip(), "error": (put.stderr + get.stderr).strip()[-300:] or None})
        return out

    for part in parallel(check, et.members):
        for key in part:
            report[key] += part[key]
    if outsiders:
        install_tools(lab, outsiders)

    def outside(host):
        targets = []
        for m in et.members:
            for port in (et.client_port, et.peer_port):
                targets.append(target("conn", lab.address(m, et.family), port))
        results = probe(lab, host, targets, timeout=timeout)
        return [{"src": host, "dst": m, "port": r["port"], "ok": bool(r.get("ok")), "error": r.get("error")}
                for m, r in zip([m for m in et.members for dummy_port in (0, 1)], results)]

    for part in parallel(outside, outsiders):
        report["outsiders"] += part
    return report


def etcd_down(et):
    for proc in et.processes.values():
        proc.stop()


# ---------------------------------------------------------------- BGP (BIRD 2)

BIRD_DIR = RUN_DIR + "/bird"


class Bgp:
    def __init__(self, speakers, outsiders, family, asn):
        self.speakers = list(speakers)
        self.outsiders = list(outsiders)
        self.family = family
        self.asn = asn
        self.processes = {}


def _proto_name(host):
    return "kp_" + host.replace("-", "_")


def bird_config(lab, host, peers, family, asn, passive=()):
    """BIRD's configuration: a session to each peer; ``passive`` peers only by their connecting in."""
    lines = ["log stderr all;", "router id %s;" % lab.address(host, 4),
             "protocol device { scan time 10; }"]
    channel = "ipv4" if family == 4 else "ipv6"
    for peer in peers:
        lines += ["protocol bgp %s {" % _proto_name(peer),
                  "  local %s as %d;" % (lab.address(host, family), asn),
                  "  neighbor %s as %d;" % (lab.address(peer, family), asn)]
        if peer in passive:
            lines.append("  passive on;")
        lines += ["  connect delay time 1;", "  connect retry time 2;", "  error wait time 1, 3;",
                  "  hold time 9;", "  keepalive time 3;",
                  "  %s { import all; export none; };" % channel, "}"]
    return "\n".join(lines) + "\n"


def bgp_up(lab, speakers, outsiders=(), family=4, asn=64512, accept_outsiders=True, lifetime=600):
    """BIRD 2 on each host in ``speakers`` with an iBGP session (port 179, lab addresses of
    ``family``) to every other speaker, and on each ``outsiders`` host with sessions to every
    speaker. accept_outsiders: the speakers list the outsiders as neighbours too (passive: they
    never connect out to them), so that only a firewall can keep them out. Control sockets and configs in the hosts' private /run; each
    bird lives at most ``lifetime`` seconds. Returns a Bgp (prove_bgp waits for sessions)."""
    bgp = Bgp(speakers, outsiders, family, asn)
    for host in list(speakers) + list(outsiders):
        if host in speakers:
            peers = [p for p in speakers if p != host] + (list(outsiders) if accept_outsiders else [])
        else:
            peers = list(speakers)
        sh(lab, host, "mkdir -p %s && cat > %s/bird.conf" % (BIRD_DIR, BIRD_DIR),
           input=bird_config(lab, host, peers, family, asn, passive=outsiders if host in speakers else ()))
        argv = ["timeout", "-k", "5", str(int(lifetime)), "bird", "-f", "-c", BIRD_DIR + "/bird.conf",
                "-s", BIRD_DIR + "/bird.ctl"]
        bgp.processes[host] = Process(lab, host, argv, "%s.cluster-bird" % host)
    return bgp


def bird_protocols(lab, host):
    """{protocol name: (state, info)} from ``birdc show protocols`` on host."""
    proc = run_in(lab, host, ["timeout", "10", "birdc", "-s", BIRD_DIR + "/bird.ctl", "show", "protocols"],
                  check=False, timeout=30)
    out = {}
    for line in proc.stdout.splitlines():
        words = line.split()
        if len(words) >= 4 and words[1] == "BGP":
            out[words[0]] = (words[3], " ".join(words[5:]) if len(words) > 5 else "")
    return out


def prove_bgp(lab, bgp, timeout=30, outsider_wait=6):
    """Waits (at most ``timeout``) until every session between speakers is Established, and at
    most ``outsider_wait`` more for the outsiders' sessions; returns
    {sessions: [{host, peer, state, info, ok}], outsiders: [{host, peer, side, state, info,
    established}]}: ``ok``/``established`` when birdc reports Established."""
    started = time.monotonic()
    deadline = started + timeout
    states = {}
    for dummy_attempt in range(1000):
        states = dict(zip(bgp.speakers + bgp.outsiders,
                          parallel(lambda h: bird_protocols(lab, h), bgp.speakers + bgp.outsiders)))
        mesh_done = all("Established" in states[h].get(_proto_name(p), ("", ""))[1]
                        for h in bgp.speakers for p in bgp.speakers if p != h)
        outside_done = all("Established" in states[o].get(_proto_name(s), ("", ""))[1]
                           for o in bgp.outsiders for s in bgp.speakers)
        now = time.monotonic()
        if (mesh_done and (outside_done or now > started + outsider_wait)) or now > deadline:
            break
        time.sleep(0.3)
    report = {"sessions": [], "outsiders": []}
    for host in bgp.speakers:
        for peer in bgp.speakers:
            if peer != host:
                state, info = states[host].get(_proto_name(peer), ("missing", ""))
                report["sessions"].append({"host": host, "peer": peer, "state": state, "info": info,
                                           "ok": "Established" in info})
    for o in bgp.outsiders:
        for s in bgp.speakers:
            for host, peer, side in ((o, s, "outsider"), (s, o, "speaker")):
                state, info = states[host].get(_proto_name(peer), ("missing", ""))
                report["outsiders"].append({"host": host, "peer": peer, "side": side, "state": state,
                                            "info": info, "established": "Established" in info})
    return report


def bgp_down(bgp):
    for proc in bgp.processes.values():
        proc.stop()


# ---------------------------------------------------------------- firewall reboot

def reboot_firewall(lab, host, overlays=(), timeout=120):
    """``kplab reboot-firewall HOST`` (netfilter state cleared, the firewall started by its boot
    path), then each overlay's nft tables re-created on host if it is one of its nodes (what
    kube-proxy and the CNI do after a real reboot). Returns kplab's CompletedProcess."""
    proc = subprocess.run([sys.executable, KPLAB, "reboot-firewall", host], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        raise ClusterError("kplab reboot-firewall %s failed:\n%s%s" % (host, proc.stdout, proc.stderr))
    for ov in overlays:
        if host in ov.nodes:
            restore_netfilter(lab, ov, [host])
    return proc
