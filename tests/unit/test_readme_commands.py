"""The README's commands for a clone run as written (after `make install`, which the unit tests
need anyway): each `ansible-playbook` line of its "From a clone" block, from the checkout."""

import os
import re
import shlex
import subprocess

import pytest

from helpers import BIN, ROOT, is_installed

pytestmark = pytest.mark.skipif(not is_installed() or not os.path.isfile(os.path.join(ROOT, 'ansible.cfg')),
                                reason='needs a clone with the installed collection (make install)')


def _clone_commands():
    with open(os.path.join(ROOT, 'README.md')) as handle:
        readme = handle.read()
    section = readme.split('### From a clone', 1)[1].split('\n## ', 1)[0]
    block = re.search(r'```sh\n(.*?)```', section, re.S).group(1)
    lines = [line.split('#', 1)[0].strip() for line in block.splitlines()]
    assert lines[:2] == ['make install', '. .venv/bin/activate']
    return [line for line in lines[2:] if line]


COMMANDS = _clone_commands()


def test_the_clone_block_runs_playbooks():
    assert COMMANDS and all(command.startswith('ansible-playbook ') for command in COMMANDS)


@pytest.mark.parametrize('command', COMMANDS)
def test_a_clone_command_runs_as_written(command, tmp_path):
    # PWD is where the plan playbook writes its reports (kubeports-reports under it).
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get('PATH', ''), ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
               PWD=str(tmp_path), ANSIBLE_NOCOLOR='1')
    env.pop('ANSIBLE_COLLECTIONS_PATH', None)
    proc = subprocess.run(shlex.split(command), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / 'kubeports-reports' / 'plan.json').is_file()
