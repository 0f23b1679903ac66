"""No placeholder URL or to-do marker in the built artifact (.build/dist/*.tar.gz, written by
`make install`) nor in any file of the checkout."""

import glob
import os
import re
import subprocess
import tarfile

import pytest

from helpers import ROOT

# Reserved documentation domains (RFC 2606, RFC 6761) and local addresses in links, and to-do markers.
PLACEHOLDER = re.compile(
    r'(?i:\bexample\.(?:invalid|com|org|net)\b|://[^/\s"\']*\.(?:invalid|test|example|localhost)\b'
    r'|https?://(?:localhost|127\.0\.0\.1)\b|lorem ipsum)|\b(?:TODO|FIXME|TBD|XXX)\b')
# The checks that name a placeholder to refuse it.
CHECKS = (os.path.relpath(__file__, ROOT), 'tests/integration/test_artifact.py')
TARBALLS = sorted(glob.glob(os.path.join(ROOT, '.build', 'dist', '*.tar.gz')))


def _found(name, text):
    return ['%s:%d: %s' % (name, number, line.strip()[:160])
            for number, line in enumerate(text.splitlines(), 1) if PLACEHOLDER.search(line)]


@pytest.mark.parametrize('text, found', [
    ('link: https://example.invalid/kubeports/docs', True),
    ('see https://docs.example.com/ports', True),
    ('http://host.test/ page', True),
    ('# TODO: fill in', True),
    ('http://localhost:8080/x', True),
    ('https://github.com/kubeports/kubeports.firewall/blob/main/docs/port-matrix.md', False),
    ('the test plays run locally', False),
    ('address 192.0.2.11', False),
    ('https://a.example/x', True),
    ("ansible_host: 'cp1.example' is not an IP address", False),
    ('found, todo = [], [pid]', False),
])
def test_the_pattern(text, found):
    assert bool(PLACEHOLDER.search(text)) is found


@pytest.mark.skipif(not TARBALLS, reason='needs the built artifact (make install)')
def test_the_artifact_has_no_placeholder():
    hits = []
    with tarfile.open(TARBALLS[-1]) as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name not in CHECKS:
                data = archive.extractfile(member).read()
                if b'\0' not in data:  # text only: images are no docs
                    hits += _found(member.name, data.decode('utf-8', 'replace'))
    assert not hits, '\n'.join(hits)


@pytest.mark.skipif(not os.path.isdir(os.path.join(ROOT, '.git')) and not os.path.isfile(os.path.join(ROOT, '.git')),
                    reason='needs the git checkout')
def test_the_checkout_has_no_placeholder():
    names = subprocess.run(['git', 'ls-files', '-z'], cwd=ROOT, capture_output=True, check=True).stdout.decode().split('\0')
    hits = []
    for name in names:
        path = os.path.join(ROOT, name)
        if not name or name in CHECKS or not os.path.isfile(path) or name.endswith(('.png', '.gz')):
            continue
        with open(path, 'rb') as handle:
            data = handle.read()
        if b'\0' not in data:
            hits += _found(name, data.decode('utf-8', 'replace'))
    assert not hits, '\n'.join(hits)
