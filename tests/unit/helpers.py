"""Helpers shared by the unit tests."""

import os
import subprocess
import sys

from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.vars.manager import VariableManager

# Imported before Ansible's collection loader is set up (it finds the collection installed, not this checkout).
from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.installer_groups import groups_to_form

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


def installer_inventory(path):
    """(loader, inventory, variable manager) of an inventory file as ansible-core reads it, with
    the groups its installer forms at run time added (kubespray's k8s_cluster, as the
    collection's actions and lookups form them), so their group_vars apply."""
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[path])
    for group, hosts in groups_to_form(inventory.get_groups_dict()).items():
        inventory.add_group(group)
        for host in hosts:
            inventory.add_host(host, group=group)
    inventory.reconcile_inventory()
    return loader, inventory, VariableManager(loader=loader, inventory=inventory)
