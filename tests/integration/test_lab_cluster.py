"""The lab's cluster traffic (tests/integration/lab/cluster.py) works without firewalls.

Run on specs/cluster.yml (three nodes and an outsider, no firewall): pod overlays (flannel
VXLAN, Calico VXLAN, Calico IPIP where the kernel has it) carry pod-to-pod, pod-to-node,
node-to-pod and NodePort traffic over IPv4 and IPv6; the attacker's hand-built packets DO
reach their pods and ports (so the attack tooling is real); etcd forms quorum; BIRD's iBGP
sessions establish (the outsider's too, as nothing stops it); a firewall reboot clears the
overlay's NAT table until it is restored. Every server lives at most LIFETIME seconds.

KPLAB_SPEC=$PWD/tests/integration/lab/specs/cluster.yml pytest tests/integration/test_lab_cluster.py
"""

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "lab"))
import cluster  # noqa: E402  pylint: disable=wrong-import-position

LIFETIME = 240
NODES = ["node1", "node2", "node3"]
OUTSIDER = "outsider"


@pytest.fixture(scope="module", autouse=True)
def cluster_spec(lab):
    missing = [h for h in NODES + [OUTSIDER] if h not in lab.hosts]
    if missing:
        pytest.skip("needs KPLAB_SPEC=tests/integration/lab/specs/cluster.yml (missing %s)" % missing)


@pytest.fixture(scope="module")
def flannel(lab, cluster_spec):
    ov = cluster.overlay_up(lab, NODES, mode="flannel", lifetime=LIFETIME)
    yield ov
    cluster.overlay_down(lab, ov)


def summary(results):
    return "\n".join("%s %s->%s v%s %s %s: %s" % (r["kind"], r["src"], r["dst"], r["family"], r["proto"],
                                                  r["address"], r["error"] or r["served_by"])
                     for r in results)


def assert_all_ok(report, kinds, families=(4, 6)):
    for kind in kinds:
        results = report[kind]
        assert results, kind
        assert {r["family"] for r in results} == set(families), kind
        bad = [r for r in results if not r["ok"]]
        assert not bad, summary(bad)


def test_flannel_overlay(lab, flannel):
    report = cluster.prove_overlay(lab, flannel)
    assert_all_ok(report, ("pod_to_pod", "pod_to_host", "node_to_pod", "nodeport"))
    # Every ordered node pair, both families, TCP and UDP.
    assert len(report["pod_to_pod"]) == 6 * 2 * 2
    assert {r["served_by"] for r in report["nodeport"]} == {"node3-pod0"}
    devices = lab.exec("node1", "ip -d link show flannel.1").stdout
    assert "dstport 8472" in devices and "nolearning" in devices
    assert "dstport 8472" in lab.exec("node1", "ip -d link show flannel-v6.1").stdout
    fdb = lab.exec("node1", "bridge fdb show dev flannel.1").stdout
    assert lab.address("node2") in fdb and lab.address("node3") in fdb


def test_attacks_reach_targets_without_firewall(lab, flannel):
    node2_pod_addr = flannel.pod("node1").addr[4]
    attacks = [
        cluster.attack_vxlan(lab, flannel, OUTSIDER, "node2"),
        cluster.attack_vxlan(lab, flannel, OUTSIDER, "node2", spoof=node2_pod_addr),
        cluster.attack_vxlan(lab, flannel, OUTSIDER, "node2", spoof=lab.address("node3")),
        cluster.attack_vxlan(lab, flannel, OUTSIDER, "node3", family=6),
        cluster.attack_vxlan(lab, flannel, OUTSIDER, "node3", family=6, spoof=lab.address("node1", 6)),
        cluster.attack_vxlan(lab, flannel, OUTSIDER, "node2", proto="tcp"),
        cluster.attack_direct(lab, flannel, OUTSIDER, "node2", 2379, proto="tcp"),
        cluster.attack_direct(lab, flannel, OUTSIDER, "node2", 10250, proto="udp"),
        cluster.attack_direct(lab, flannel, OUTSIDER, "node3", 2379, proto="tcp", family=6),
        cluster.attack_direct(lab, flannel, OUTSIDER, "node2", flannel.echo_port, to_pod=True),
        cluster.attack_direct(lab, flannel, OUTSIDER, "node3", flannel.echo_port, to_pod=True, family=6,
                              proto="tcp"),
    ]
    results = cluster.wait_arrivals(attacks, timeout=5)
    missed = [r for r in results if not r["arrived"]]
    assert not missed, missed
    first = results[0]["events"][0]
    assert first["src"] == flannel.pod("node1").addr[4] and first["proto"] in ("udp", "udp-raw")
    direct = results[6]["events"][0]
    assert direct["proto"] == "tcp-raw" and direct["dport"] == 2379


def test_calico_vxlan_overlay(lab, flannel):
    cluster.overlay_down(lab, flannel)
    ov = cluster.overlay_up(lab, NODES, mode="calico-vxlan", lifetime=LIFETIME)
    try:
        report = cluster.prove_overlay(lab, ov)
        assert_all_ok(report, ("pod_to_pod", "pod_to_host", "node_to_pod", "nodeport"))
        assert "dstport 4789" in lab.exec("node2", "ip -d link show vxlan.calico").stdout
        assert "cali" in lab.exec("node2", "ip -o link").stdout
        attack = cluster.wait_arrivals([cluster.attack_vxlan(lab, ov, OUTSIDER, "node1")], timeout=5)
        assert attack[0]["arrived"], attack
    finally:
        cluster.overlay_down(lab, ov)
    assert not lab.exec("node1", "ip link show vxlan.calico").returncode == 0


def test_ipip_overlay(lab, cluster_spec):
    ov = cluster.ipip_up(lab, NODES, lifetime=LIFETIME)
    try:
        if ov.skipped:
            assert "IPIP" in ov.skipped
            assert cluster.prove_overlay(lab, ov) == {"skipped": ov.skipped}
            pytest.skip(ov.skipped)
        report = cluster.prove_overlay(lab, ov)
        assert_all_ok(report, ("pod_to_pod", "node_to_pod", "nodeport"), families=(4,))
    finally:
        cluster.overlay_down(lab, ov)


@pytest.mark.parametrize("family", [4, 6])
def test_etcd_cluster(lab, cluster_spec, family):
    et = cluster.etcd_up(lab, NODES, family=family, lifetime=LIFETIME)
    try:
        report = cluster.prove_etcd(lab, et, outsiders=[OUTSIDER])
        assert len(report["health"]) == 9 and all(r["ok"] for r in report["health"]), report["health"]
        assert all(r["ok"] for r in report["members"]), report["members"]
        assert len(report["put_get"]) == 3 and all(r["ok"] for r in report["put_get"]), report["put_get"]
        # No firewall: the outsider connects to every member's client and peer port.
        assert len(report["outsiders"]) == 6
        assert all(r["ok"] and r["error"] is None for r in report["outsiders"]), report["outsiders"]
    finally:
        cluster.etcd_down(et)
    assert "etcd" not in lab.exec("node1", "ps -eo comm").stdout.split()


@pytest.mark.parametrize("family", [4, 6])
def test_bgp_mesh(lab, cluster_spec, family):
    bgp = cluster.bgp_up(lab, NODES, outsiders=[OUTSIDER], family=family, lifetime=LIFETIME)
    try:
        report = cluster.prove_bgp(lab, bgp)
        assert len(report["sessions"]) == 6
        assert all(r["ok"] for r in report["sessions"]), report["sessions"]
        # No firewall and the nodes list the outsider: its sessions establish too.
        assert len(report["outsiders"]) == 6
        assert all(r["established"] for r in report["outsiders"]), report["outsiders"]
        ss = lab.exec("node1", "ss -tn state established '( sport = :179 or dport = :179 )'").stdout
        assert lab.address("node2", family) in ss
    finally:
        cluster.bgp_down(bgp)


def test_reboot_firewall_clears_and_restores(lab, cluster_spec):
    # RKE2's flannel port; IPv6 pods share the IPv4 VXLAN device here.
    ov = cluster.overlay_up(lab, NODES, mode="flannel", port=4789, v6_underlay=False, lifetime=LIFETIME)
    try:
        before = cluster.prove_overlay(lab, ov, kinds=("nodeport",), families=(4,), protos=("tcp",))
        assert not cluster.failures(before)
        proc = cluster.reboot_firewall(lab, "node1")  # no overlays: NAT table stays gone
        assert "netfilter cleared" in proc.stderr
        assert cluster.NAT_TABLE not in lab.exec("node1", "nft list tables").stdout
        broken = cluster.prove_overlay(lab, ov, kinds=("nodeport",), families=(4,), protos=("tcp",), timeout=1)
        assert [r["dst"] for r in cluster.failures(broken)] == ["node1"]
        cluster.restore_netfilter(lab, ov, ["node1"])
        after = cluster.prove_overlay(lab, ov)
        assert not cluster.failures(after), summary(cluster.failures(after))
        assert "dstport 4789" in lab.exec("node2", "ip -d link show flannel.1").stdout
        assert lab.exec("node2", "ip link show flannel-v6.1").returncode != 0
    finally:
        cluster.overlay_down(lab, ov)


def test_nothing_left_in_hosts(lab, cluster_spec):
    for host in NODES + [OUTSIDER]:
        ps = lab.exec(host, "ps -eo pid,args").stdout
        assert "kpnet" not in ps and "etcd" not in ps and "bird" not in ps, ps
        assert lab.exec(host, "ip netns list").stdout.strip() == ""
        assert cluster.NAT_TABLE not in lab.exec(host, "nft list tables").stdout
    # The machine's own namespace: no rule and no device of the cluster.
    assert lab.root_ruleset() == lab.root_ruleset_before
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=30, check=False).stdout
    assert not [n for n in ("flannel", "cni0", "calico", "kp-pod") if n in links], links
