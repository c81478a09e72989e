"""Base of the command tests: a fake client behind a fake OSC app."""

import json
from unittest import mock

from oslotest import base

from servicevm.tests.unit.client import fakes
from servicevmclient.osc.v1 import common


class CommandTestCase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.svm = fakes.FakeClient()
        self.app = fakes.FakeApp(self.svm)
        self.sleeps = []
        patcher = mock.patch.object(common, 'sleep', self.sleeps.append)
        patcher.start()
        self.addCleanup(patcher.stop)

    def parse(self, cls, args):
        cmd = cls(self.app, None)
        parser = cmd.get_parser('openstack servicevm test')
        return cmd, parser.parse_args(args)

    def take(self, cls, args):
        """take_action's result."""
        cmd, parsed = self.parse(cls, args)
        return cmd.take_action(parsed)

    def run_cmd(self, cls, args):
        """The exit code and what went to stdout, as the shell formats
        it (e.g. with -f json)."""
        cmd, parsed = self.parse(cls, args)
        code = cmd.run(parsed)
        return code, self.app.stdout.getvalue()

    def run_json(self, cls, args):
        code, out = self.run_cmd(cls, list(args) + ['-f', 'json'])
        self.assertEqual(0, code)
        return json.loads(out)

    @staticmethod
    def as_dict(result):
        """A ShowOne's (columns, data) as {column: machine value}."""
        columns, data = result
        return {c: v.machine_readable() if hasattr(v, 'machine_readable')
                else v for c, v in zip(columns, data)}

    @staticmethod
    def rows(result):
        headers, rows = result
        return headers, [tuple(v.machine_readable()
                               if hasattr(v, 'machine_readable') else v
                               for v in row) for row in rows]

    def stderr(self):
        return self.app.stderr.getvalue()
