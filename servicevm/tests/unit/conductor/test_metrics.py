"""GET /metrics: Prometheus text that a Prometheus parser reads, with the
deployment's counts (devices, services, operations, alarms), step
durations and each device's power state; off (404) unless enabled."""

from prometheus_client import parser

from servicevm.tests import base
from servicevm.tests.unit.conductor import base as op_base

D = op_base.D


class TestMetrics(op_base.OperationTestCase):

    autostart = False

    def scrape(self):
        response = self.app.get('/metrics', status=200)
        self.assertTrue(response.content_type.startswith('text/plain'))
        families = {f.name: f for f in parser.text_string_to_metric_families(
            response.text)}
        samples = {}
        for family in families.values():
            for sample in family.samples:
                samples.setdefault(sample.name, {})[tuple(sorted(
                    sample.labels.items()))] = sample.value
        return samples, families

    def test_off_by_default(self):
        self.app.get('/metrics', status=404)

    def test_metrics(self):
        self.config(metrics_enabled=True, group='api')
        # The health watch publishes the VIM calls of its conductor.
        self.config(sync_interval=0.1, group='conductor')
        self.start_conductor_now()
        active = self.make_device()
        failed = self.make_device({'delete': {'fail': 'disk busy'}})
        response = self.delete('%s/%s' % (D, failed), base.MEMBER,
                               status=202)
        self.wait_rest(response.json['operation_id'], 'FAILED_TEMP')
        samples, families = self.scrape()
        self.assertEqual(1, samples['servicevm_devices'][
            (('status', 'ACTIVE'),)])
        self.assertEqual(1, samples['servicevm_devices'][
            (('status', 'ERROR'),)])
        self.assertEqual(2, samples['servicevm_operations'][
            (('kind', 'create'), ('state', 'COMPLETED'))])
        self.assertEqual(1, samples['servicevm_operations'][
            (('kind', 'delete'), ('state', 'FAILED_TEMP'))])
        self.assertEqual(1, samples['servicevm_alarms'][
            (('acknowledged', 'false'),)])
        self.assertEqual('summary',
                         families['servicevm_step_duration_seconds'].type)
        self.assertEqual(2, samples[
            'servicevm_step_duration_seconds_count'][(('step', 'create_vm'),)])
        self.assertGreater(samples['servicevm_step_duration_seconds_sum'][
            (('step', 'create_vm'),)], 0)
        self.assertEqual('counter', families['servicevm_vim_calls'].type)
        failed_delete = (('call', 'delete'), ('driver', 'fault'),
                         ('host', 'test-conductor'), ('result', 'error'))
        calls = self.wait_until(
            lambda: failed_delete in self.scrape()[0].get(
                'servicevm_vim_calls_total', {}) and self.scrape()[0][
                'servicevm_vim_calls_total'], 'VIM call counts',
            interval=0.1)
        self.assertGreaterEqual(calls[failed_delete], 1)
        self.assertGreaterEqual(calls[(
            ('call', 'create'), ('driver', 'fault'),
            ('host', 'test-conductor'), ('result', 'ok'))], 2)
        power = samples['servicevm_device_power_state']
        self.assertEqual(1, power[(('device_id', active),
                                   ('power_state', 'running'),
                                   ('project_id', 'project-a'))])
