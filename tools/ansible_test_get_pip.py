"""Stand-in for the get-pip.py that ansible-test downloads to bootstrap pip in its venvs.

That download host is unreachable here; Python's own ensurepip provides pip instead, then
pip installs what ansible-test asked for (its pinned pip version) from the package index.
The Makefile copies this file to ~/.ansible/test/cache/get_pip_<version>.py.
"""

import subprocess
import sys

# get-pip.py options that pip install does not know.
GET_PIP_ONLY = ('--no-setuptools', '--no-wheel')

if __name__ == '__main__':
    # In a child process: ensurepip points PIP_CONFIG_FILE at /dev/null in its own
    # environment, which would hide the machine's pip configuration from the install.
    subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade'])
    arguments = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    sys.exit(subprocess.call([sys.executable, '-m', 'pip', 'install', '--upgrade'] + arguments))
