"""The user guide (doc/, tox -e docs) builds without a warning: the
README sections it includes are valid reStructuredText."""

import os
import subprocess
import sys

import fixtures

from servicevm.tests import base

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))


class TestDocs(base.TestCase):

    def test_user_guide_builds(self):
        out = self.useFixture(fixtures.TempDir()).path
        result = subprocess.run(
            [sys.executable, '-m', 'sphinx', '-q', '-W', '-b', 'html',
             os.path.join(ROOT, 'doc', 'source'), out],
            capture_output=True, text=True, timeout=300)
        self.assertEqual(0, result.returncode, result.stdout + result.stderr)
        for page in ('index', 'install', 'concepts', 'operations',
                     'drivers', 'cli', 'reference'):
            self.assertTrue(os.path.exists(os.path.join(out, page + '.html')),
                            page)

    def test_readme_is_valid_restructuredtext(self):
        import io

        import docutils.core
        warnings = io.StringIO()
        with open(os.path.join(ROOT, 'README.rst')) as f:
            docutils.core.publish_string(
                f.read(), writer_name='null',
                settings_overrides={'warning_stream': warnings,
                                    'report_level': 2, 'halt_level': 5})
        self.assertEqual('', warnings.getvalue())
