#!/usr/bin/python3
"""Lab stand-in for SuSEfirewall2 (not packaged on Debian); installed as
/usr/local/sbin/SuSEfirewall2 on lab hosts of type susefirewall2 only.

It reads /etc/sysconfig/SuSEfirewall2 and loads the iptables/ip6tables filter rules that a
subset of its variables implies (see docs/lab.md): FW_SERVICES_EXT_TCP/UDP/IP,
FW_CONFIGURATIONS_EXT (sshd, or files in /etc/sysconfig/SuSEfirewall2.d/services),
FW_SERVICES_ACCEPT_EXT, FW_TRUSTED_NETS, FW_ROUTE, FW_ALLOW_PING_FW. Like the real script,
`start` replaces the whole filter table. Usage: SuSEfirewall2 start|stop|status.
"""

import ipaddress
import os
import re
import shlex
import socket
import subprocess
import sys

CONFIG = "/etc/sysconfig/SuSEfirewall2"
SERVICES_DIR = "/etc/sysconfig/SuSEfirewall2.d/services"
BUILTIN_SERVICES = {"sshd": {"TCP": "ssh"}}
STATUS_FILE = "/run/SuSEfirewall2.status"


def in_lab_host():
    """The marker kplab writes into the host's private /etc names its network namespace."""
    try:
        with open("/etc/kplab-host") as fh:
            marker = fh.read().split()
    except OSError:
        return False
    return len(marker) == 2 and marker[1] == os.readlink("/proc/self/ns/net")


def parse(path):
    values = {}
    if not os.path.exists(path):
        return values
    with open(path) as fh:
        for line in fh:
            match = re.match(r'^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$', line)
            if match:
                words = shlex.split(match.group(2), comments=True)
                values[match.group(1)] = words[0] if words else ""
    return values


def port_spec(word, proto):
    """'ssh', '22', '8000:8100' -> iptables --dport value."""
    if re.match(r"^\d+(:\d+)?$", word):
        return word
    return str(socket.getservbyname(word, proto))


def family_of(net):
    try:
        return ipaddress.ip_network(net, strict=False).version
    except ValueError:
        return None


def rules_for(family, cfg):
    ext = ["-A input_ext -p %s --dport %s -j ACCEPT" % (proto, port_spec(word, proto))
           for proto, var in (("tcp", "FW_SERVICES_EXT_TCP"), ("udp", "FW_SERVICES_EXT_UDP"))
           for word in cfg.get(var, "").split()]
    for name in cfg.get("FW_CONFIGURATIONS_EXT", "").split():
        service = parse(os.path.join(SERVICES_DIR, name)) or BUILTIN_SERVICES.get(name, {})
        for proto in ("TCP", "UDP"):
            for word in service.get(proto, "").split():
                ext.append("-A input_ext -p %s --dport %s -j ACCEPT" % (
                    proto.lower(), port_spec(word, proto.lower())))
    for proto in cfg.get("FW_SERVICES_EXT_IP", "").split():
        ext.append("-A input_ext -p %s -j ACCEPT" % proto)
    for entry in cfg.get("FW_SERVICES_ACCEPT_EXT", "").split():
        parts = entry.split(",")
        if family_of(parts[0]) != family:
            continue
        rule = "-A input_ext -s %s" % parts[0]
        if len(parts) > 1 and parts[1]:
            rule += " -p %s" % parts[1]
            if len(parts) > 2 and parts[2]:
                rule += " --dport %s" % port_spec(parts[2], parts[1])
            if len(parts) > 3 and parts[3]:
                rule += " --sport %s" % port_spec(parts[3], parts[1])
        ext.append(rule + " -j ACCEPT")
    for entry in cfg.get("FW_TRUSTED_NETS", "").split():
        parts = entry.split(",")
        if family_of(parts[0]) != family:
            continue
        rule = "-A input_ext -s %s" % parts[0]
        if len(parts) > 1 and parts[1]:
            rule += " -p %s" % parts[1]
            if len(parts) > 2 and parts[2]:
                rule += " --dport %s" % port_spec(parts[2], parts[1])
        ext.append(rule + " -j ACCEPT")
    route = cfg.get("FW_ROUTE", "no") == "yes"
    lines = ["*filter", ":INPUT DROP [0:0]", ":FORWARD %s [0:0]" % ("ACCEPT" if route else "DROP"),
             ":OUTPUT ACCEPT [0:0]", ":input_ext - [0:0]",
             "-A INPUT -i lo -j ACCEPT",
             "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"]
    if family == 4:
        lines.append("-A INPUT -p icmp --icmp-type echo-request -j %s" % (
            "ACCEPT" if cfg.get("FW_ALLOW_PING_FW", "yes") == "yes" else "DROP"))
        lines.append("-A INPUT -p icmp -j ACCEPT")
    else:
        lines.append("-A INPUT -p ipv6-icmp -j ACCEPT")
    lines.append("-A INPUT -j input_ext")
    lines.extend(dict.fromkeys(ext))
    lines.append("-A input_ext -j DROP")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def restore(text, family):
    cmd = "iptables-restore" if family == 4 else "ip6tables-restore"
    subprocess.run([cmd], input=text, text=True, check=True, timeout=30)


def main(argv):
    if not in_lab_host():
        sys.exit("SuSEfirewall2 (kplab shim): refusing to run outside a lab host")
    action = argv[1] if len(argv) > 1 else "start"
    if action == "start":
        cfg = parse(CONFIG)
        for family in (4, 6):
            restore(rules_for(family, cfg), family)
        with open(STATUS_FILE, "w") as fh:
            fh.write("started\n")
    elif action == "stop":
        open_all = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
        for family in (4, 6):
            restore(open_all, family)
        with open(STATUS_FILE, "w") as fh:
            fh.write("stopped\n")
    elif action == "status":
        state = open(STATUS_FILE).read().strip() if os.path.exists(STATUS_FILE) else "stopped"
        print("SuSEfirewall2 (kplab shim): " + state)
        subprocess.run(["iptables", "-S"], timeout=30)
        subprocess.run(["ip6tables", "-S"], timeout=30)
        return 0 if state == "started" else 3
    else:
        sys.exit("usage: SuSEfirewall2 start|stop|status")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
