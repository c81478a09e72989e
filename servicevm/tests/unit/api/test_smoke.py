from servicevm.tests import base


class TestDeviceLifecycle(base.APITestCase):

    def test_create_active_delete(self):
        device = self.create_device(kwargs={'mgmt_address': '192.0.2.9'})
        self.assertEqual('ACTIVE', device['status'])
        self.assertEqual('192.0.2.9', device['mgmt_address'])
        self.assertTrue(device['ready'])
        response = self.delete('/v1/devices/%s' % device['id'], status=202)
        self.assertIn('/v1/operations/', response.headers['Location'])
        self.assertIsNone(self.wait_for_device(device['id'], None))
        events = self.get('/v1/devices/%s/events' % device['id']).json
        types = [e['event_type'] for e in events['events']]
        self.assertEqual('device.create.requested', types[0])
        self.assertIn('device.create.end', types)
        self.assertEqual('device.delete.end', types[-1])
