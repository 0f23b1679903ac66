"""Helpers shared by the unit tests."""

import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
COLLECTIONS = os.environ.get('KUBEPORTS_COLLECTIONS_PATH', os.path.join(ROOT, '.build', 'collections'))
BIN = os.path.dirname(sys.executable)
KUBESPRAY = os.path.join(ROOT, 'examples', 'kubespray', 'inventory.ini')


def ports_of(host_plan):
    """{"6443/tcp": rule} for a HostPlan."""
    return dict(('%s/%s' % (rule['port'], rule['protocol']) if rule['port'] else rule['protocol'], rule)
                for rule in host_plan.rules)


def is_installed():
    return os.path.isdir(os.path.join(COLLECTIONS, 'ansible_collections', 'kubeports', 'firewall'))


def run_playbook(path, inventory, *extra):
    """(rc, stdout and stderr) of ansible-playbook with the installed collection, outside the
    checkout (no ansible.cfg)."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1', ANSIBLE_STDOUT_CALLBACK='default',
               ANSIBLE_LOCALHOST_WARNING='0', PATH=BIN + os.pathsep + os.environ.get('PATH', ''))
    env.pop('ANSIBLE_CONFIG', None)
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), str(path), '-i', inventory] + list(extra),
                          cwd='/', env=env, capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, proc.stdout + proc.stderr
