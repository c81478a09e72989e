"""servicevmclient.client (requests through a fake keystoneauth adapter)
and the OSC plugin module."""

import argparse
import json
import logging
import types
from unittest import mock

import fixtures
from keystoneauth1 import exceptions as ks_exc
from oslotest import base

from servicevm.tests.unit.client import fakes
from servicevmclient import client as svm_client
from servicevmclient.osc import plugin

URL = 'http://svm.example.org:9890'


class FakeResponse:

    def __init__(self, status, body=None, text=None, headers=None):
        self.status_code = status
        self.text = text if text is not None else (
            json.dumps(body) if body is not None else '')
        self.content = self.text.encode()
        self.headers = headers or {}

    def json(self):
        return json.loads(self.text)


class FakeAdapter:

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests = []

    def request(self, url, method, **kwargs):
        self.requests.append((method, url, kwargs))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class ClientTestCase(base.BaseTestCase):

    def client(self, *answers, endpoint=URL):
        svm = svm_client.Client(session=mock.Mock(), endpoint=endpoint)
        svm._adapter = FakeAdapter(*answers)
        return svm


class TestEndpoint(ClientTestCase):

    def test_v1_appended_once(self):
        for url in (URL, URL + '/', URL + '/v1', URL + '/v1/'):
            self.assertEqual(URL + '/v1', self.client(endpoint=url).endpoint)

    def test_from_the_catalog(self):
        session = mock.Mock()
        session.get_endpoint.return_value = URL + '/v1'
        svm = svm_client.Client(session=session, interface='internal',
                                region_name='R1')
        self.assertEqual(URL + '/v1', svm.endpoint)
        session.get_endpoint.assert_called_once_with(
            service_type='servicevm', interface='internal',
            region_name='R1')

    def test_not_in_the_catalog(self):
        session = mock.Mock()
        session.get_endpoint.side_effect = ks_exc.EndpointNotFound()
        svm = svm_client.Client(session=session)
        err = self.assertRaises(svm_client.EndpointNotFound, lambda:
                                svm.endpoint)
        self.assertIn('--os-endpoint', str(err))

    def test_for_url(self):
        svm = svm_client.Client.for_url(URL, headers={'X-Project-Id': 'p'})
        self.assertEqual(URL + '/v1', svm.endpoint)


class TestRequests(ClientTestCase):

    def test_create_device(self):
        answer = {'device': fakes.DEVICE, 'operation_id': fakes.OP_ID}
        svm = self.client(FakeResponse(202, answer))
        self.assertEqual(answer, svm.create_device(
            name='fw1', template_id=fakes.TEMPLATE_ID))
        (method, url, kwargs), = svm._adapter.requests
        self.assertEqual(('POST', URL + '/v1/devices'), (method, url))
        self.assertEqual({'device': {'name': 'fw1',
                                     'template_id': fakes.TEMPLATE_ID}},
                         kwargs['json'])
        self.assertIs(False, kwargs['raise_exc'])
        self.assertNotIn('log', kwargs)

    def test_delete_and_action_bodies(self):
        svm = self.client(FakeResponse(202, {'device': {}}),
                          FakeResponse(202, {'device': {}}),
                          FakeResponse(204), FakeResponse(204))
        svm.delete_device(fakes.DEVICE_ID, force=True, cascade=False)
        svm.device_action(fakes.DEVICE_ID, 'scale', {'count': 2},
                          on_failure='rollback')
        self.assertIsNone(svm.delete_template(fakes.TEMPLATE_ID))
        self.assertIsNone(svm.delete_service(fakes.SERVICE_ID))
        first, second, third, fourth = svm._adapter.requests
        self.assertEqual({'force': 'true'}, first[2]['params'])
        self.assertEqual({'action': 'scale', 'params': {'count': 2},
                          'on_failure': 'rollback'}, second[2]['json'])
        self.assertEqual(URL + '/v1/devices/%s/action' % fakes.DEVICE_ID,
                         second[1])
        self.assertEqual(('DELETE', URL + '/v1/device_templates/' +
                          fakes.TEMPLATE_ID), third[:2])

    def test_error_detail_and_field(self):
        svm = self.client(FakeResponse(400, {'errors': [{
            'status': 400, 'code': 'servicevm.invalid_parameter',
            'title': 'Bad Request', 'detail': 'kwargs must be an object.',
            'request_id': 'req-9', 'field': 'device.kwargs'}]}))
        err = self.assertRaises(svm_client.ApiError, svm.create_device,
                                kwargs=3)
        self.assertEqual('kwargs must be an object. (field: device.kwargs) '
                         '(HTTP 400, request req-9)', str(err))
        self.assertEqual(400, err.status)
        self.assertEqual('servicevm.invalid_parameter', err.code)

    def test_not_found_and_conflict(self):
        svm = self.client(
            FakeResponse(404, {'errors': [{'detail': 'Device x could not '
                                           'be found.'}]},
                         headers={'x-openstack-request-id': 'req-4'}),
            FakeResponse(409, {'errors': [{'detail': 'busy'}]}))
        err = self.assertRaises(svm_client.NotFound, svm.get_device, 'x')
        self.assertIn('Device x could not be found. (HTTP 404, request '
                      'req-4)', str(err))
        self.assertRaises(svm_client.Conflict, svm.delete_device, 'x')

    def test_error_that_is_not_json(self):
        svm = self.client(FakeResponse(502, text='<html>Bad gateway</html>'))
        err = self.assertRaises(svm_client.ApiError, svm.list_devices)
        self.assertIn('Bad gateway', str(err))
        self.assertIn('HTTP 502', str(err))

    def test_unreachable(self):
        svm = self.client(ks_exc.ConnectFailure('refused'))
        err = self.assertRaises(svm_client.ClientError, svm.list_devices)
        self.assertIn('Unable to reach the servicevm API at %s/v1' % URL,
                      str(err))

    def test_list_follows_next_links(self):
        page1 = {'devices': [{'id': 'a'}, {'id': 'b'}], 'devices_links': [
            {'rel': 'next', 'href': 'http://elsewhere/v1/devices?status='
                                    'ACTIVE&marker=b&limit=2'}]}
        page2 = {'devices': [{'id': 'c'}], 'devices_links': []}
        svm = self.client(FakeResponse(200, page1), FakeResponse(200, page2))
        self.assertEqual(['a', 'b', 'c'], [d['id'] for d in svm.list_devices(
            status='ACTIVE', name=None)])
        first, second = svm._adapter.requests
        self.assertEqual({'status': 'ACTIVE'}, first[2]['params'])
        self.assertEqual({'status': 'ACTIVE', 'marker': 'b', 'limit': '2'},
                         second[2]['params'])
        self.assertEqual(URL + '/v1/devices', second[1])

    def test_list_one_page(self):
        page = {'devices': [{'id': 'a'}], 'devices_links': [
            {'rel': 'next', 'href': URL + '/v1/devices?marker=a&limit=1'}]}
        svm = self.client(FakeResponse(200, page))
        self.assertEqual([{'id': 'a'}], svm.list_devices(limit=1))
        self.assertEqual({'limit': 1}, svm._adapter.requests[0][2]['params'])

    def test_secrets_are_not_logged(self):
        logger = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        svm = self.client(FakeResponse(201, {'device_template': {}}))
        svm.create_template(device_driver='noop', attributes={
            'mgmt_auth': {'private_key': 'KEYMATERIAL'}})
        (_, _, kwargs), = svm._adapter.requests
        self.assertIs(False, kwargs['log'])
        self.assertEqual('KEYMATERIAL', kwargs['json']['device_template'][
            'attributes']['mgmt_auth']['private_key'])
        self.assertNotIn('KEYMATERIAL', logger.output)
        self.assertIn('"private_key": "***"', logger.output)


class TestFind(ClientTestCase):

    def test_by_id(self):
        svm = self.client(FakeResponse(200, {'device': fakes.DEVICE}))
        self.assertEqual(fakes.DEVICE, svm.find_device(fakes.DEVICE_ID))

    def test_by_name(self):
        svm = self.client(FakeResponse(200, {'devices': [fakes.DEVICE]}))
        self.assertEqual(fakes.DEVICE, svm.find_device('fw1'))
        self.assertEqual({'name': 'fw1'},
                         svm._adapter.requests[0][2]['params'])

    def test_missing_id_is_the_apis_answer(self):
        svm = self.client(
            FakeResponse(404, {'errors': [{'detail': 'Device %s could not '
                                           'be found.' % fakes.DEVICE_ID}]}),
            FakeResponse(200, {'devices': []}))
        err = self.assertRaises(svm_client.NotFound, svm.find_device,
                                fakes.DEVICE_ID)
        self.assertIn('could not be found', str(err))

    def test_missing_and_ambiguous_names(self):
        svm = self.client(FakeResponse(200, {'devices': []}),
                          FakeResponse(200, {'devices': [{'id': 'a'},
                                                         {'id': 'b'}]}))
        err = self.assertRaises(svm_client.NotFound, svm.find_device, 'x')
        self.assertIn('No device with name or ID x', str(err))
        err = self.assertRaises(svm_client.ClientError, svm.find_device, 'x')
        self.assertIn('2 devices are named x; give the ID of one: a, b',
                      str(err))


class TestPlugin(base.BaseTestCase):

    def test_make_client(self):
        instance = types.SimpleNamespace(
            _api_version={'servicevm': '1'}, session=mock.Mock(),
            region_name='R1', interface='public',
            get_endpoint_for_service_type=mock.Mock(return_value=URL))
        svm = plugin.make_client(instance)
        self.assertEqual(URL + '/v1', svm.endpoint)
        self.assertIs(instance.session, svm.session)
        instance.get_endpoint_for_service_type.assert_called_once_with(
            'servicevm', region_name='R1', interface='public')

    def test_option_parser(self):
        parser = plugin.build_option_parser(argparse.ArgumentParser())
        self.assertEqual('1', parser.parse_args([]).os_servicevm_api_version)
        self.assertEqual('servicevm', plugin.API_NAME)
        self.assertIn('1', plugin.API_VERSIONS)
