"""Fixtures for tests that run against the kplab lab (tests/integration/lab/kplab).

The session fixture `lab` brings up the spec named by KPLAB_SPEC (default
lab/specs/default.yml), cleaning any lab left by an earlier killed run first, and tears it
down at the end. KPLAB_KEEP=1 leaves the lab running after the session (for debugging).
"""

import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
COLLECTIONS = ROOT / ".build" / "collections"
PLAYBOOKS = COLLECTIONS / "ansible_collections" / "kubeports" / "firewall" / "playbooks"
BIN = Path(sys.executable).parent
KPLAB = HERE / "lab" / "kplab"
DEFAULT_SPEC = HERE / "lab" / "specs" / "default.yml"
# One lab per machine: concurrent test sessions wait for each other (bounded).
SESSION_LOCK = "/run/kplab-session.lock"
SESSION_LOCK_WAIT = 1200


def kplab(*args, check=True, timeout=300, **kwargs):
    cmd = [sys.executable, str(KPLAB), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if check and proc.returncode != 0:
        raise RuntimeError("kplab %s failed (%d):\n%s%s" % (
            " ".join(args), proc.returncode, proc.stdout, proc.stderr))
    return proc


def _as_argv(cmd):
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def root_ruleset():
    """The machine's own packet filter rules (comments dropped)."""
    parts = []
    for cmd in (["nft", "list", "ruleset"], ["iptables-save"], ["ip6tables-save"]):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False).stdout
        except FileNotFoundError:
            continue
        parts.append("\n".join(line for line in out.splitlines() if not line.startswith("#")))
    return "\n".join(parts)


def descendants(pid):
    """Every process below ``pid`` (Ansible's workers start sessions of their own)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(proc):
    """Kills a controller started by a test and every process it started, by id."""
    for pid in [proc.pid] + descendants(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)


def cluster_layer(control, workers, outside=(), **profile):
    """An inventory layer of one kubeadm-shaped cluster: ``control`` hosts run the control plane
    and etcd, ``workers`` are nodes, ``outside`` hosts have no role; ``profile`` its variables
    (default: Flannel, no installer's variables)."""
    return {'all': {'children': {
        'kube_control_plane': {'hosts': dict((host, None) for host in control)},
        'etcd': {'hosts': dict((host, None) for host in control)},
        'kube_node': {'hosts': dict((host, None) for host in workers)},
        'outside': {'hosts': dict((host, None) for host in outside)},
    }, 'vars': profile or {'kubeports_cni': 'flannel', 'kubeports_installer': 'none'}}}


def run_playbook(lab, workdir, cluster, name, *extra, timeout=600):
    """Runs an installed playbook of the collection on the lab with a cluster inventory layer.

    The inventory is the lab's hosts (00-lab.yml) plus ``cluster`` (10-cluster.yml);
    ansible-playbook runs in ``workdir`` without the checkout's ansible.cfg.
    """
    workdir = Path(workdir)
    inventory = workdir / "inventory"
    if inventory.exists():
        shutil.rmtree(str(inventory))
    inventory.mkdir()
    shutil.copy(lab.inventory_path, str(inventory / "00-lab.yml"))
    (inventory / "10-cluster.yml").write_text(json.dumps(cluster))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_HOST_KEY_CHECKING="False",
               ANSIBLE_NOCOLOR="1", PATH=str(BIN) + os.pathsep + os.environ.get("PATH", ""))
    env.pop("ANSIBLE_CONFIG", None)
    return subprocess.run([str(BIN / "ansible-playbook"), str(PLAYBOOKS / name), "-i", str(inventory)]
                          + list(extra), capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=str(workdir), check=False)


# New connections to ADDRESS:PORT in a loop, each with CONNECT_TIMEOUT seconds to connect and
# answer, until the file STOP exists (at most 3,000 attempts and 90 s). Prints "done", the
# attempts, the failures and the slowest attempt in seconds.
CONNECTIONS = r"""
import os, socket, sys, time
address, port, connect_timeout, stop = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
failures, slowest, attempts = 0, 0.0, 0
end = time.monotonic() + 90
while time.monotonic() < end and not os.path.exists(stop) and attempts < 3000:
    attempts += 1
    started = time.monotonic()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(connect_timeout)
    try:
        s.connect((address, port))
        if not s.recv(64):
            failures += 1
    except OSError:
        failures += 1
    finally:
        s.close()
    slowest = max(slowest, time.monotonic() - started)
    time.sleep(0.02)
print("done %d %d %.2f" % (attempts, failures, slowest), flush=True)
"""


# Screenshots of the report pages tested, kept with the test output.
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".build" / "test-output"


def browse(page, screenshot):
    """Opens an HTML report in headless Chromium: returns its DOM once its script has run
    (the page marks its body ready; a script error would leave it unmarked), and keeps a
    screenshot in SCREENSHOTS."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "chromium is not installed (make apt installs it)"
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--enable-logging=stderr", "--v=0", "--user-data-dir=" + str(Path(page).parent / "chromium")]
    done = subprocess.run(common + ["--dump-dom", "file://" + str(page)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'data-ready="yes"' in done.stdout, done.stderr[-2000:]
    assert "Uncaught" not in done.stderr, done.stderr[-2000:]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / screenshot
    taken = subprocess.run(common + ["--window-size=1280,1600", "--screenshot=" + str(shot), "file://" + str(page)],
                           capture_output=True, text=True, timeout=120, check=False)
    assert taken.returncode == 0 and shot.stat().st_size > 10000, taken.stderr[-2000:]
    return done.stdout


class Lab:
    """A running lab: hosts, inventory and helpers to run commands in it."""

    def __init__(self, inventory, inventory_path, spec):
        self.inventory = inventory
        self.inventory_path = str(inventory_path)
        self.spec = str(spec)
        self.hostvars = inventory["all"]["children"]["lab"]["hosts"]
        self.hosts = list(self.hostvars)
        self.key = next(iter(self.hostvars.values()))["ansible_ssh_private_key_file"]

    @staticmethod
    def root_ruleset():
        """The machine's own packet filter rules now."""
        return root_ruleset()

    def by_firewall(self, firewall):
        return [h for h, v in self.hostvars.items() if v["lab_firewall"] == firewall]

    def address(self, host, family=4):
        v = self.hostvars[host]
        return v["ansible_host"] if family == 4 else v["lab_ipv6"]

    def ctl(self, cmd, timeout=120, check=False, **kwargs):
        """Runs a command in the controller (bridge) namespace."""
        return kplab("ctl", "--", *_as_argv(cmd), timeout=timeout, check=check, **kwargs)

    def exec(self, host, cmd, timeout=120, check=False, **kwargs):
        """Runs a command inside one host (its network and mount namespaces)."""
        return kplab("exec", host, "--", *_as_argv(cmd), timeout=timeout, check=check, **kwargs)

    def spawn(self, host, cmd):
        """Starts a command inside a host in the background; caller bounds its lifetime."""
        return subprocess.Popen([sys.executable, str(KPLAB), "exec", host, "--", *_as_argv(cmd)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def ssh_argv(self, host, command, family=4):
        """A real ssh command (to run with ctl) that logs in to host with the lab key."""
        v = self.hostvars[host]
        return ["ssh", "-i", self.key, "-p", str(v["ansible_port"]),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                "root@" + self.address(host, family), command]

    def ssh(self, host, command, family=4, timeout=60):
        return self.ctl(self.ssh_argv(host, command, family), timeout=timeout)


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network and mount namespaces)")
    spec = Path(os.environ.get("KPLAB_SPEC", DEFAULT_SPEC)).resolve()
    lock = open(SESSION_LOCK, "w")  # pylint: disable=consider-using-with
    deadline = time.monotonic() + SESSION_LOCK_WAIT
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                pytest.fail("another lab session held %s for %d s" % (SESSION_LOCK, SESSION_LOCK_WAIT))
            time.sleep(2)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        # SIGTERM unwinds like Ctrl-C so the finalizer below still tears the lab down.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    # A lab left by a killed run is cleaned first.
    kplab("down", timeout=120)
    before = root_ruleset()
    started = time.monotonic()
    try:
        kplab("up", str(spec), timeout=300)
        bringup = time.monotonic() - started
        inventory = json.loads(kplab("inventory", "--format", "json").stdout)
        path = tmp_path_factory.mktemp("kplab") / "inventory.yml"
        kplab("inventory", "-o", str(path))
        lab = Lab(inventory, path, spec)
        lab.bringup_seconds = bringup
        lab.root_ruleset_before = before
        yield lab
    finally:
        if os.environ.get("KPLAB_KEEP") != "1":
            kplab("down", timeout=120)
        lock.close()
