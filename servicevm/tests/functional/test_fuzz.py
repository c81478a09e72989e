"""Fuzzing the API with schemathesis, driven by its OpenAPI document,
against an all-in-one server (tools/fuzz.sh: at least 2,000 generated
requests, no 5xx, every response as the document says). bench/fuzz.sh
runs a longer one."""

import os
import subprocess
import sys

import testtools

from servicevm.tests.functional import base


class TestFuzz(testtools.TestCase):

    def test_fuzz_the_api(self):
        env = dict(os.environ, SERVICEVM_BIN=os.path.dirname(sys.executable))
        result = subprocess.run(
            ['bash', os.path.join(base.REPO_ROOT, 'tools', 'fuzz.sh'),
             '--max-examples', '120', '--min-requests', '2000'],
            env=env, capture_output=True, text=True, timeout=900)
        self.assertEqual(0, result.returncode,
                         'tools/fuzz.sh failed:\n%s\n%s' % (
                             result.stdout[-6000:], result.stderr[-6000:]))
        self.assertIn('no 5xx', result.stderr)
