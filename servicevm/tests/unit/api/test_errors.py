"""Errors that are not the client's fault still use the error shape."""

from unittest import mock

from oslo_db import exception as db_exc

from servicevm.db.sqlalchemy import api as sqla_api
from servicevm.tests import base


class TestServerSideErrors(base.APITestCase):

    start_conductor = False

    def test_unreachable_database_is_503_with_retry_after(self):
        with mock.patch.object(sqla_api.Connection, 'device_list',
                               side_effect=db_exc.DBConnectionError()):
            response = self.get('/v1/devices', status=503)
        self.assertError(response, 503)
        self.assertEqual('5', response.headers['Retry-After'])

    def test_unexpected_error_is_500_without_details(self):
        with mock.patch.object(sqla_api.Connection, 'device_list',
                               side_effect=RuntimeError('secret detail')):
            response = self.get('/v1/devices', status=500)
        error = self.assertError(response, 500)
        self.assertNotIn('secret', error['detail'])
