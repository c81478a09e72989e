"""The checked-in configuration and policy samples are current."""

import os
import subprocess
import sys

import fixtures

from servicevm.tests import base

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)


class TestSamples(base.TestCase):

    def _generate(self, tool, config, sample):
        out = os.path.join(self.useFixture(fixtures.TempDir()).path,
                           'sample')
        subprocess.run(
            [os.path.join(BIN, tool), '--config-file',
             os.path.join(ROOT, 'etc', 'servicevm', config),
             '--output-file', out],
            check=True, cwd=ROOT, capture_output=True, timeout=120)
        with open(out) as f:
            generated = f.read()
        with open(os.path.join(ROOT, 'etc', 'servicevm', sample)) as f:
            self.assertEqual(generated, f.read(),
                             '%s is stale: run tox -e %s' % (
                                 sample, 'genconfig' if 'conf' in sample
                                 else 'genpolicy'))

    def test_config_sample_is_current(self):
        self._generate('oslo-config-generator',
                       'servicevm-config-generator.conf',
                       'servicevm.conf.sample')

    def test_policy_sample_is_current(self):
        self._generate('oslopolicy-sample-generator',
                       'servicevm-policy-generator.conf',
                       'policy.yaml.sample')
